#include "storage/storage_factory.h"

#include <fmt/format.h>

#include <filesystem>

#include "storage/backends/rocksdb/rocksdb_time_series_store.h"
#include "storage/backends/sqlite/sqlite_metadata_store.h"

namespace sw::storage {

std::vector<std::string> timeSeriesBackends() {
  return {"embedded"};
}

Result<std::unique_ptr<TimeSeriesStore>> openTimeSeriesStore(const std::string& backend, const Config& config,
                                                             Metrics* metrics) {
  if (backend == "embedded") {
    std::error_code ec;
    std::filesystem::create_directories(config.data_dir, ec);
    if (ec)
      return fail(Code::kUnavailable, fmt::format("cannot create data dir {}: {}", config.data_dir, ec.message()));
    RocksDbOptions o;
    o.path = (std::filesystem::path(config.data_dir) / "timeseries").string();
    o.sync_wal = config.storage_sync_wal;
    o.metrics = metrics;
    auto s = RocksDbTimeSeriesStore::open(o);
    if (!s) return std::unexpected(s.error());
    return std::unique_ptr<TimeSeriesStore>(std::move(*s));
  }
  return fail(Code::kInvalidArgument, fmt::format("unknown time-series backend '{}'", backend));
}

Result<std::unique_ptr<MetadataStore>> openMetadataStore(const std::string& backend, const Config& config) {
  if (backend == "sqlite") {
    std::error_code ec;
    std::filesystem::create_directories(config.data_dir, ec);
    if (ec)
      return fail(Code::kUnavailable, fmt::format("cannot create data dir {}: {}", config.data_dir, ec.message()));
    auto s = SqliteMetadataStore::open((std::filesystem::path(config.data_dir) / "metadata.db").string(),
                                       config.storage_sync_wal);
    if (!s) return std::unexpected(s.error());
    return std::unique_ptr<MetadataStore>(std::move(*s));
  }
  return fail(Code::kInvalidArgument, fmt::format("unknown metadata backend '{}'", backend));
}

}  // namespace sw::storage
