#pragma once
// Embedded time-series store on RocksDB.
//
// Column families:
//   "chunks"    one key per (series, hour): a compressed chunk of that hour's points
//               (chunk_codec.h). Writes add points with a Merge; the merge operator keeps the
//               union with last-write-wins, so writes never read and duplicates/out-of-order
//               points need no special path. One key per hour instead of one per point makes
//               ingest cheap (a 1,000-point batch of 10 keys is ~10 merges) and the data small.
//   "latest"    one key per series, kept by a max-timestamp merge operator.
//   "rollup_1m" per (series, hour): the hour's minute buckets (count, sum, min, max, first, last).
//   "rollup_1h" per (series, hour): the hour bucket.
//   "dirty"     (series, hour) whose rollups are stale; written in the same atomic batch as the
//               points, so a crash never loses one.
//
// Rollups are recomputed from a dirty hour's chunk by a background pass, and on demand for the
// series an aggregated query reads. Recomputing rather than adding keeps last-write-wins exact.
//
// Group commit: concurrent write() calls from many threads are merged by RocksDB's write
// thread into one WAL write (leader/follower), so many small device batches cost one append.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/metrics.h"
#include "storage/backends/rocksdb/chunk_codec.h"
#include "storage/time_series_store.h"

namespace rocksdb {
class DB;
class ColumnFamilyHandle;
}  // namespace rocksdb

namespace sw::storage {

struct RocksDbOptions {
  std::string path;
  bool sync_wal = false;  // fsync the WAL per commit group; without it a commit survives kill -9, not power loss
  std::size_t block_cache_bytes = 64 << 20;
  int rollup_interval_ms = 500;
  Metrics* metrics = nullptr;  // optional
};

// Hours [from_hour, to) whose stale rollups a query needs settled (default: all).
struct HourRange {
  std::int64_t from_hour = std::numeric_limits<std::int64_t>::min();
  std::int64_t to = std::numeric_limits<std::int64_t>::max();
  bool contains(std::int64_t hour) const { return hour >= from_hour && hour < to; }
};

class RocksDbTimeSeriesStore final : public TimeSeriesStore {
 public:
  static Result<std::unique_ptr<RocksDbTimeSeriesStore>> open(const RocksDbOptions& options);
  ~RocksDbTimeSeriesStore() override;

  Status write(const TenantId& tenant, const DeviceId& device, std::span<const Point> points) override;
  Status writeMany(std::span<const DeviceBatch> batches) override;
  Result<std::vector<std::string>> keys(const TenantId& tenant, const DeviceId& device) override;
  Result<std::vector<std::pair<std::string, TimedValue>>> latest(const TenantId& tenant, const DeviceId& device,
                                                                 const std::vector<std::string>& keys) override;
  Result<RawPage> readRaw(const TenantId& tenant, const DeviceId& device, const std::string& key,
                          const RawQuery& query) override;
  Result<std::vector<AggPoint>> aggregate(const TenantId& tenant, const DeviceId& device, const std::string& key,
                                          const AggQuery& query) override;
  Status deleteDevice(const TenantId& tenant, const DeviceId& device) override;
  Status deleteTenant(const TenantId& tenant) override;
  Result<RetentionStats> applyRetention(const TenantId& tenant, std::int64_t cutoff_ms) override;
  Status flush() override;
  StoreStats stats() override;

  // Raw points read by aggregate() since open (tests check that queries use rollups).
  std::uint64_t rawPointsReadForAggregates() const { return raw_points_agg_.load(); }

 private:
  struct Handles;
  RocksDbTimeSeriesStore() = default;

  std::shared_mutex& stripeFor(std::string_view device_prefix);
  std::size_t stripeIndex(std::string_view device_prefix) const;
  // write() and writeMany(): one commit for the batches; the number of devices skipped because
  // they were deleted goes to `gone`.
  Status commit(std::span<const DeviceBatch> batches, std::size_t& gone);
  // Recomputes this series' dirty rollups. In the background pass (`background`), a series
  // written in the last kActiveWindow keeps its newest dirty hour for later: it is still
  // filling, and recomputing it on every batch would redo the same work many times.
  Status settleSeries(const std::string& series, bool background = false, HourRange range = {});
  Status settleAll(bool background = false);
  Status recomputeSeries(const std::string& series, const std::set<std::int64_t>& hours);
  // Decodes the points of [from, to) from the series' chunks, in time order.
  Status readPoints(const std::string& series, std::int64_t from, std::int64_t to,
                    const std::function<bool(const rocks::PointView&)>& fn);
  Status deleteRange(const std::string& begin, const std::string& end);
  void rollupLoop();

  RocksDbOptions options_;
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> cfs_;

  static constexpr std::size_t kStripes = 64;
  std::shared_mutex stripes_[kStripes];

  struct DirtySeries {
    std::set<std::int64_t> hours;  // hour starts whose rollups are stale
    std::chrono::steady_clock::time_point last_write;
  };
  static constexpr std::chrono::seconds kActiveWindow{2};
  // The hours of d that settleSeries takes (caller holds dirty_mutex_).
  static std::set<std::int64_t> hoursToSettle(const DirtySeries& d, bool background, HourRange range);
  std::mutex dirty_mutex_;
  std::map<std::string, DirtySeries> dirty_;  // by series prefix

  // Devices and tenants deleted in the last kTombstoneTtl, by key prefix: a write that was
  // authenticated before the deletion and arrives after it is refused instead of re-creating
  // data nobody can reach. Guarded by dirty_mutex_; pruned on insert, so it stays small.
  static constexpr std::chrono::minutes kTombstoneTtl{5};
  std::map<std::string, std::chrono::steady_clock::time_point> tombstones_;
  void addTombstone(const std::string& prefix);
  bool tombstoned(const std::string& device_prefix);  // caller holds dirty_mutex_

  std::mutex settle_all_mutex_;
  std::atomic<bool> stopping_{false};
  std::mutex loop_mutex_;
  std::condition_variable loop_cv_;
  std::thread rollup_thread_;
  std::atomic<std::uint64_t> raw_points_agg_{0};
  Histogram* write_latency_ = nullptr;
};

}  // namespace sw::storage
