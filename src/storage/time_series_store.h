#pragma once
// TimeSeriesStore: the seam every DataLake backend (embedded RocksDB today; ClickHouse, MongoDB,
// S3 archive later) implements. A series is identified by (tenant, device, key); the tenant is a
// mandatory argument of every call, so no query can reach another tenant's data.
//
// Thread-safety: every method may be called concurrently from any thread.
// Durability: write() returns success only once the whole batch is in the backend's write-ahead
// log (or equivalent); on failure none of the batch is visible.
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/ids.h"
#include "core/status.h"
#include "storage/value.h"

namespace sw::storage {

enum class AggFn { kAvg, kMin, kMax, kSum, kCount, kFirst, kLast };

struct RawQuery {
  std::int64_t from = 0;  // inclusive, ms
  std::int64_t to = 0;    // exclusive, ms
  std::size_t limit = 1000;
  // Stop early (more = true) once the values read hold this many bytes; 0 = no byte bound.
  std::size_t max_bytes = 0;
};

struct RawPage {
  std::vector<TimedValue> points;  // time order
  bool more = false;               // true when limit cut the range short
};

struct AggQuery {
  std::int64_t from = 0;  // inclusive, ms
  std::int64_t to = 0;    // exclusive, ms
  std::int64_t interval_ms = 60000;
  AggFn fn = AggFn::kAvg;
};

struct AggPoint {
  std::int64_t ts = 0;  // bucket start; buckets are aligned to multiples of the interval
  double value = 0;
};

struct RetentionStats {
  std::size_t series = 0;
};

struct StoreStats {
  std::uint64_t disk_bytes = 0;
  std::uint64_t pending_rollups = 0;
};

class TimeSeriesStore {
 public:
  virtual ~TimeSeriesStore() = default;

  // Last write wins for the same (series, ts). Keys are validated by the caller (ingest).
  virtual Status write(const TenantId& tenant, const DeviceId& device, std::span<const Point> points) = 0;
  // The points of several devices (of any tenants) in one commit: cheaper than one write() per
  // device for many small batches (the analytics engine's anomaly scores). Devices deleted in the
  // meantime are skipped (write() would refuse them with not_found); an invalid id fails the
  // whole call before anything is written.
  struct DeviceBatch {
    const TenantId* tenant;
    const DeviceId* device;
    std::span<const Point> points;
  };
  virtual Status writeMany(std::span<const DeviceBatch> batches) = 0;

  virtual Result<std::vector<std::string>> keys(const TenantId& tenant, const DeviceId& device) = 0;
  // Latest value per key; an empty keys list means all keys of the device. Unknown keys are absent.
  virtual Result<std::vector<std::pair<std::string, TimedValue>>> latest(const TenantId& tenant, const DeviceId& device,
                                                                         const std::vector<std::string>& keys) = 0;
  virtual Result<RawPage> readRaw(const TenantId& tenant, const DeviceId& device, const std::string& key,
                                  const RawQuery& query) = 0;
  // One point per non-empty bucket. Aggregates numeric values (booleans as 0/1); strings and
  // JSON values are not counted.
  virtual Result<std::vector<AggPoint>> aggregate(const TenantId& tenant, const DeviceId& device,
                                                  const std::string& key, const AggQuery& query) = 0;

  // Deletes every point of the device / tenant. Writes that arrive afterwards for it (a request
  // authenticated just before the deletion) are refused with not_found: ids are never reused.
  virtual Status deleteDevice(const TenantId& tenant, const DeviceId& device) = 0;
  virtual Status deleteTenant(const TenantId& tenant) = 0;
  // Deletes every point of the tenant older than cutoff_ms and reclaims the space.
  virtual Result<RetentionStats> applyRetention(const TenantId& tenant, std::int64_t cutoff_ms) = 0;

  // Makes derived data (rollups) current and flushes buffers; used at shutdown and by tests.
  virtual Status flush() = 0;
  virtual StoreStats stats() = 0;
};

}  // namespace sw::storage
