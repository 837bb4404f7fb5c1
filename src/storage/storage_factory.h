#pragma once
// Explicit registry of storage backends: one place names every backend (no static-initialiser
// registration). Later backends (ClickHouse, MongoDB, S3 archive, PostgreSQL) add a line here.
#include <memory>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/metrics.h"
#include "storage/metadata_store.h"
#include "storage/time_series_store.h"

namespace sw::storage {

std::vector<std::string> timeSeriesBackends();
Result<std::unique_ptr<TimeSeriesStore>> openTimeSeriesStore(const std::string& backend, const Config& config,
                                                             Metrics* metrics);
Result<std::unique_ptr<MetadataStore>> openMetadataStore(const std::string& backend, const Config& config);

}  // namespace sw::storage
