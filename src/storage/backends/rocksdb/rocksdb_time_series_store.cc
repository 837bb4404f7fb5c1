#include "storage/backends/rocksdb/rocksdb_time_series_store.h"

#include <fmt/format.h>
#include <rocksdb/db.h>
#include <rocksdb/merge_operator.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>

#include "core/logging.h"
#include "storage/backends/rocksdb/key_codec.h"

namespace sw::storage {
namespace {

using namespace rocks;

enum Cf : std::size_t { kDefault = 0, kRaw, kLatest, kRollup1m, kRollup1h, kDirty, kNumCfs };
const char* const kCfNames[kNumCfs] = {"default", "raw", "latest", "rollup_1m", "rollup_1h", "dirty"};

constexpr std::int64_t kMinute = 60'000;
constexpr std::int64_t kHour = 3'600'000;

std::int64_t floorTo(std::int64_t ts, std::int64_t step) {
  std::int64_t q = ts / step;
  if (ts % step != 0 && ts < 0) --q;
  return q * step;
}

Error fromRocks(const rocksdb::Status& s, const char* what) {
  return Error{Code::kUnavailable, fmt::format("storage {} failed: {}", what, s.ToString()), {}};
}

// latest CF: value = ts(8) | encoded value. Keeps the operand with the greatest ts; on a tie the
// newer one (last write wins).
class LatestMergeOperator final : public rocksdb::AssociativeMergeOperator {
 public:
  bool Merge(const rocksdb::Slice&, const rocksdb::Slice* existing, const rocksdb::Slice& value, std::string* new_value,
             rocksdb::Logger*) const override {
    if (existing && existing->size() >= 8 && value.size() >= 8 && readTs(existing->data()) > readTs(value.data())) {
      new_value->assign(existing->data(), existing->size());
    } else {
      new_value->assign(value.data(), value.size());
    }
    return true;
  }
  const char* Name() const override { return "sw.LatestByTs"; }
};

// Partial aggregate of a time range.
struct Acc {
  std::uint64_t count = 0;
  double sum = 0, min = std::numeric_limits<double>::infinity(), max = -std::numeric_limits<double>::infinity();
  double first = 0, last = 0;
  std::int64_t first_ts = std::numeric_limits<std::int64_t>::max();
  std::int64_t last_ts = std::numeric_limits<std::int64_t>::min();

  void add(std::int64_t ts, double v) {
    ++count;
    sum += v;
    min = std::min(min, v);
    max = std::max(max, v);
    if (ts < first_ts) first_ts = ts, first = v;
    if (ts >= last_ts) last_ts = ts, last = v;
  }
  void merge(const Acc& o) {
    if (!o.count) return;
    count += o.count;
    sum += o.sum;
    min = std::min(min, o.min);
    max = std::max(max, o.max);
    if (o.first_ts < first_ts) first_ts = o.first_ts, first = o.first;
    if (o.last_ts >= last_ts) last_ts = o.last_ts, last = o.last;
  }
  double result(AggFn fn) const {
    switch (fn) {
      case AggFn::kAvg: return sum / static_cast<double>(count);
      case AggFn::kMin: return min;
      case AggFn::kMax: return max;
      case AggFn::kSum: return sum;
      case AggFn::kCount: return static_cast<double>(count);
      case AggFn::kFirst: return first;
      case AggFn::kLast: return last;
    }
    return 0;
  }
  std::string encode() const {
    std::string out(64, '\0');
    char* p = out.data();
    std::memcpy(p, &count, 8);
    std::memcpy(p + 8, &sum, 8);
    std::memcpy(p + 16, &min, 8);
    std::memcpy(p + 24, &max, 8);
    std::memcpy(p + 32, &first, 8);
    std::memcpy(p + 40, &last, 8);
    std::memcpy(p + 48, &first_ts, 8);
    std::memcpy(p + 56, &last_ts, 8);
    return out;
  }
  static bool decode(const rocksdb::Slice& s, Acc& a) {
    if (s.size() != 64) return false;
    const char* p = s.data();
    std::memcpy(&a.count, p, 8);
    std::memcpy(&a.sum, p + 8, 8);
    std::memcpy(&a.min, p + 16, 8);
    std::memcpy(&a.max, p + 24, 8);
    std::memcpy(&a.first, p + 32, 8);
    std::memcpy(&a.last, p + 40, 8);
    std::memcpy(&a.first_ts, p + 48, 8);
    std::memcpy(&a.last_ts, p + 56, 8);
    return true;
  }
};

std::string tsKey(const std::string& prefix, std::int64_t ts) {
  std::string k = prefix;
  appendTs(ts, k);
  return k;
}

// Iterates [lower, upper) of one column family, calling fn(key, value) until it returns false.
rocksdb::Status scan(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf, const std::string& lower,
                     const std::string& upper,
                     const std::function<bool(const rocksdb::Slice&, const rocksdb::Slice&)>& fn,
                     const rocksdb::Snapshot* snapshot = nullptr) {
  rocksdb::ReadOptions ro;
  rocksdb::Slice lo(lower), up(upper);
  ro.iterate_lower_bound = &lo;
  ro.iterate_upper_bound = &up;
  ro.snapshot = snapshot;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(ro, cf));
  for (it->Seek(lo); it->Valid(); it->Next()) {
    if (!fn(it->key(), it->value())) break;
  }
  return it->status();
}

}  // namespace

Result<std::unique_ptr<RocksDbTimeSeriesStore>> RocksDbTimeSeriesStore::open(const RocksDbOptions& options) {
  std::unique_ptr<RocksDbTimeSeriesStore> store(new RocksDbTimeSeriesStore());
  store->options_ = options;

  rocksdb::Options db_opts;
  db_opts.create_if_missing = true;
  db_opts.create_missing_column_families = true;
  db_opts.max_background_jobs = 2;
  db_opts.bytes_per_sync = 1 << 20;
  db_opts.enable_pipelined_write = true;  // WAL append and memtable insert of successive groups overlap
  db_opts.keep_log_file_num = 5;
  db_opts.info_log_level = rocksdb::InfoLogLevel::WARN_LEVEL;

  auto cache = rocksdb::NewLRUCache(options.block_cache_bytes);
  auto cf_options = [&](bool big) {
    rocksdb::ColumnFamilyOptions cfo;
    rocksdb::BlockBasedTableOptions t;
    t.block_cache = cache;
    t.block_size = big ? 32 * 1024 : 8 * 1024;
    // Keys of one series share all but their last bytes: a long restart interval lets the
    // prefix delta encoding drop them almost entirely.
    t.block_restart_interval = big ? 64 : 16;
    cfo.table_factory.reset(rocksdb::NewBlockBasedTableFactory(t));
    cfo.compression = rocksdb::kLZ4Compression;
    cfo.bottommost_compression = rocksdb::kZSTD;
    cfo.write_buffer_size = big ? 64 << 20 : 16 << 20;
    return cfo;
  };

  std::vector<rocksdb::ColumnFamilyDescriptor> descs;
  for (std::size_t i = 0; i < kNumCfs; ++i) {
    auto cfo = cf_options(i == kRaw);
    if (i == kLatest) cfo.merge_operator = std::make_shared<LatestMergeOperator>();
    descs.emplace_back(kCfNames[i], cfo);
  }
  rocksdb::DB* raw_db = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DBOptions dbo(db_opts);
  auto s = rocksdb::DB::Open(dbo, options.path, descs, &handles, &raw_db);
  if (!s.ok()) return std::unexpected(fromRocks(s, "open"));
  store->db_.reset(raw_db);
  store->cfs_ = std::move(handles);

  // Dirty markers left by a previous run (crash or shutdown before the rollup pass).
  std::size_t pending = 0;
  s = scan(store->db_.get(), store->cfs_[kDirty], std::string(), std::string(64, '\xFF'),
           [&](const rocksdb::Slice& k, const rocksdb::Slice&) {
             if (k.size() > 8) {
               std::string series(k.data(), k.size() - 8);
               store->dirty_[series].minutes.insert(readTs(k.data() + k.size() - 8));
               ++pending;
             }
             return true;
           });
  if (!s.ok()) return std::unexpected(fromRocks(s, "recovery scan"));
  if (pending) logger("storage")->info("msg=\"recovering rollups\" dirty_buckets={}", pending);

  if (options.metrics) {
    store->write_latency_ = &options.metrics->histogram(
        "sw_store_write_seconds", "Time for a batch to become durable in the time-series store",
        {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1});
    auto* raw = store.get();
    options.metrics->gauge("sw_store_pending_rollups", "Minute buckets waiting for their rollup recompute",
                           [raw] { return static_cast<double>(raw->stats().pending_rollups); });
  }
  store->rollup_thread_ = std::thread([p = store.get()] { p->rollupLoop(); });
  return store;
}

RocksDbTimeSeriesStore::~RocksDbTimeSeriesStore() {
  stopping_ = true;
  loop_cv_.notify_all();
  if (rollup_thread_.joinable()) rollup_thread_.join();
  if (db_) {
    (void)settleAll();
    db_->FlushWAL(true);
    for (auto* h : cfs_) db_->DestroyColumnFamilyHandle(h);
    db_->Close();
  }
}

std::shared_mutex& RocksDbTimeSeriesStore::stripeFor(std::string_view device_prefix) {
  return stripes_[std::hash<std::string_view>{}(device_prefix) % kStripes];
}

Status RocksDbTimeSeriesStore::write(const TenantId& tenant, const DeviceId& device, std::span<const Point> points) {
  auto dp = devicePrefix(tenant, device);
  if (!dp) return fail(Code::kInvalidArgument, "tenant and device ids must be UUIDs");
  if (points.empty()) return ok();
  auto started = std::chrono::steady_clock::now();

  rocksdb::WriteBatch batch;
  std::string key, val;
  // Per series: newest point (for "latest") and touched minutes (for rollups).
  struct SeriesInfo {
    std::size_t newest = 0;
    std::set<std::int64_t> minutes;
  };
  std::map<std::string_view, SeriesInfo> touched;
  std::string series;
  for (std::size_t i = 0; i < points.size(); ++i) {
    const Point& p = points[i];
    key.assign(*dp);  // reused buffer: no allocation per point
    key.append(p.key);
    key.push_back('\0');
    appendTs(p.ts, key);
    val.clear();
    encodeValue(p.value, val);
    batch.Put(cfs_[kRaw], key, val);
    auto [it, inserted] = touched.try_emplace(p.key, SeriesInfo{i, {}});
    if (!inserted && p.ts >= points[it->second.newest].ts) it->second.newest = i;
    it->second.minutes.insert(floorTo(p.ts, kMinute));
  }
  std::vector<std::pair<std::string, std::set<std::int64_t>>> marks;
  marks.reserve(touched.size());
  for (auto& [k, info] : touched) {
    series = seriesPrefix(*dp, k);
    const Point& newest = points[info.newest];
    val.clear();
    appendTs(newest.ts, val);
    encodeValue(newest.value, val);
    batch.Merge(cfs_[kLatest], series, val);
    for (std::int64_t m : info.minutes) batch.Put(cfs_[kDirty], tsKey(series, m), rocksdb::Slice());
    marks.emplace_back(series, std::move(info.minutes));
  }

  rocksdb::WriteOptions wo;
  wo.sync = options_.sync_wal;
  {
    std::shared_lock stripe(stripeFor(*dp));
    auto s = db_->Write(wo, &batch);
    if (!s.ok()) return std::unexpected(fromRocks(s, "write"));
    const auto now = std::chrono::steady_clock::now();
    std::lock_guard lock(dirty_mutex_);
    for (auto& [s_prefix, minutes] : marks) {
      DirtySeries& d = dirty_[s_prefix];
      d.minutes.merge(minutes);
      d.last_write = now;
    }
  }
  if (write_latency_) {
    write_latency_->observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  }
  return ok();
}

Result<std::vector<std::string>> RocksDbTimeSeriesStore::keys(const TenantId& tenant, const DeviceId& device) {
  auto dp = devicePrefix(tenant, device);
  if (!dp) return fail(Code::kNotFound, "device not found");
  std::vector<std::string> out;
  auto s =
      scan(db_.get(), cfs_[kLatest], *dp, prefixSuccessor(*dp), [&](const rocksdb::Slice& k, const rocksdb::Slice&) {
        out.emplace_back(keyOfSeries(std::string_view(k.data(), k.size())));
        return true;
      });
  if (!s.ok()) return std::unexpected(fromRocks(s, "read"));
  return out;
}

Result<std::vector<std::pair<std::string, TimedValue>>> RocksDbTimeSeriesStore::latest(
    const TenantId& tenant, const DeviceId& device, const std::vector<std::string>& keys) {
  auto dp = devicePrefix(tenant, device);
  if (!dp) return fail(Code::kNotFound, "device not found");
  std::vector<std::pair<std::string, TimedValue>> out;
  auto take = [&](std::string_view key, const rocksdb::Slice& v) {
    TimedValue tv;
    if (v.size() < 9) return;
    tv.ts = readTs(v.data());
    if (decodeValue(v.data() + 8, v.size() - 8, tv.value)) out.emplace_back(std::string(key), std::move(tv));
  };
  if (keys.empty()) {
    auto s = scan(db_.get(), cfs_[kLatest], *dp, prefixSuccessor(*dp),
                  [&](const rocksdb::Slice& k, const rocksdb::Slice& v) {
                    take(keyOfSeries(std::string_view(k.data(), k.size())), v);
                    return true;
                  });
    if (!s.ok()) return std::unexpected(fromRocks(s, "read"));
    return out;
  }
  std::string value;
  for (const auto& k : keys) {
    auto s = db_->Get(rocksdb::ReadOptions(), cfs_[kLatest], seriesPrefix(*dp, k), &value);
    if (s.IsNotFound()) continue;
    if (!s.ok()) return std::unexpected(fromRocks(s, "read"));
    take(k, value);
  }
  return out;
}

Result<RawPage> RocksDbTimeSeriesStore::readRaw(const TenantId& tenant, const DeviceId& device, const std::string& key,
                                                const RawQuery& q) {
  auto dp = devicePrefix(tenant, device);
  if (!dp) return fail(Code::kNotFound, "device not found");
  RawPage page;
  if (q.from >= q.to || q.limit == 0) return page;
  std::string series = seriesPrefix(*dp, key);
  auto s = scan(db_.get(), cfs_[kRaw], tsKey(series, q.from), tsKey(series, q.to),
                [&](const rocksdb::Slice& k, const rocksdb::Slice& v) {
                  if (page.points.size() == q.limit) {
                    page.more = true;
                    return false;
                  }
                  TimedValue tv;
                  tv.ts = readTs(k.data() + k.size() - 8);
                  if (decodeValue(v.data(), v.size(), tv.value)) page.points.push_back(std::move(tv));
                  return true;
                });
  if (!s.ok()) return std::unexpected(fromRocks(s, "read"));
  return page;
}

Result<std::vector<AggPoint>> RocksDbTimeSeriesStore::aggregate(const TenantId& tenant, const DeviceId& device,
                                                                const std::string& key, const AggQuery& query) {
  // Bucket arithmetic below must not overflow: no stored timestamp is outside +-2^62.
  constexpr std::int64_t kBound = std::int64_t{1} << 62;
  AggQuery q = query;
  q.from = std::clamp(q.from, -kBound, kBound);
  q.to = std::clamp(q.to, -kBound, kBound);
  auto dp = devicePrefix(tenant, device);
  if (!dp) return fail(Code::kNotFound, "device not found");
  if (q.interval_ms <= 0) return fail(Code::kInvalidArgument, "interval must be positive", "interval");
  std::vector<AggPoint> out;
  if (q.from >= q.to) return out;
  std::string series = seriesPrefix(*dp, key);
  if (auto st = settleSeries(series); !st) return std::unexpected(st.error());

  std::map<std::int64_t, Acc> buckets;
  auto bucketOf = [&](std::int64_t ts) { return floorTo(ts, q.interval_ms); };
  std::uint64_t raw_read = 0;

  auto readRawRange = [&](std::int64_t a, std::int64_t b) -> rocksdb::Status {
    if (a >= b) return rocksdb::Status::OK();
    return scan(db_.get(), cfs_[kRaw], tsKey(series, a), tsKey(series, b),
                [&](const rocksdb::Slice& k, const rocksdb::Slice& v) {
                  Value value;
                  double d;
                  ++raw_read;
                  if (decodeValue(v.data(), v.size(), value) && numericValue(value, d)) {
                    std::int64_t ts = readTs(k.data() + k.size() - 8);
                    buckets[bucketOf(ts)].add(ts, d);
                  }
                  return true;
                });
  };
  auto readRollups = [&](Cf cf, std::int64_t a, std::int64_t b) -> rocksdb::Status {
    if (a >= b) return rocksdb::Status::OK();
    return scan(db_.get(), cfs_[cf], tsKey(series, a), tsKey(series, b),
                [&](const rocksdb::Slice& k, const rocksdb::Slice& v) {
                  Acc part;
                  if (Acc::decode(v, part)) buckets[bucketOf(readTs(k.data() + k.size() - 8))].merge(part);
                  return true;
                });
  };

  // Whole rollup buckets lie inside one query bucket only when the interval is a multiple of
  // the rollup size; then the edges that are not whole buckets are read from the finer level.
  rocksdb::Status s;
  auto ceilTo = [](std::int64_t ts, std::int64_t step) { return -floorTo(-ts, step); };
  if (q.interval_ms % kMinute == 0) {
    std::int64_t m_lo = ceilTo(q.from, kMinute), m_hi = floorTo(q.to, kMinute);
    if (m_lo >= m_hi) {
      s = readRawRange(q.from, q.to);
    } else {
      s = readRawRange(q.from, m_lo);
      if (s.ok()) s = readRawRange(m_hi, q.to);
      if (s.ok() && q.interval_ms % kHour == 0) {
        std::int64_t h_lo = ceilTo(m_lo, kHour), h_hi = floorTo(m_hi, kHour);
        if (h_lo >= h_hi) {
          s = readRollups(kRollup1m, m_lo, m_hi);
        } else {
          s = readRollups(kRollup1m, m_lo, h_lo);
          if (s.ok()) s = readRollups(kRollup1m, h_hi, m_hi);
          if (s.ok()) s = readRollups(kRollup1h, h_lo, h_hi);
        }
      } else if (s.ok()) {
        s = readRollups(kRollup1m, m_lo, m_hi);
      }
    }
  } else {
    s = readRawRange(q.from, q.to);
  }
  if (!s.ok()) return std::unexpected(fromRocks(s, "read"));
  raw_points_agg_ += raw_read;
  out.reserve(buckets.size());
  for (const auto& [ts, acc] : buckets) {
    if (acc.count) out.push_back(AggPoint{ts, acc.result(q.fn)});
  }
  return out;
}

Status RocksDbTimeSeriesStore::settleSeries(const std::string& series, bool background) {
  std::unique_lock stripe(stripeFor(deviceOf(series)));
  std::set<std::int64_t> minutes;
  {
    std::lock_guard lock(dirty_mutex_);
    auto it = dirty_.find(series);
    if (it == dirty_.end()) return ok();
    DirtySeries& d = it->second;
    if (background && std::chrono::steady_clock::now() - d.last_write < kActiveWindow) {
      if (d.minutes.size() < 2) return ok();
      auto newest = std::prev(d.minutes.end());
      minutes.insert(d.minutes.begin(), newest);
      d.minutes.erase(d.minutes.begin(), newest);
    } else {
      minutes = std::move(d.minutes);
      dirty_.erase(it);
    }
  }
  auto st = recomputeSeries(series, minutes);
  if (!st) {
    std::lock_guard lock(dirty_mutex_);
    dirty_[series].minutes.merge(minutes);
  }
  return st;
}

Status RocksDbTimeSeriesStore::settleAll(bool background) {
  std::lock_guard one_at_a_time(settle_all_mutex_);
  std::vector<std::string> series;
  {
    std::lock_guard lock(dirty_mutex_);
    series.reserve(dirty_.size());
    for (const auto& [s, _] : dirty_) series.push_back(s);
  }
  for (const auto& s : series) {
    if (stopping_ && background) break;
    if (auto st = settleSeries(s, background); !st) return st;
  }
  return ok();
}

// Caller holds the series' stripe exclusively, so no write of this device is in flight.
Status RocksDbTimeSeriesStore::recomputeSeries(const std::string& series, const std::set<std::int64_t>& minutes) {
  rocksdb::WriteBatch minute_batch;
  std::set<std::int64_t> hours;
  for (std::int64_t m : minutes) {
    Acc acc;
    auto s = scan(db_.get(), cfs_[kRaw], tsKey(series, m), tsKey(series, m + kMinute),
                  [&](const rocksdb::Slice& k, const rocksdb::Slice& v) {
                    Value value;
                    double d;
                    if (decodeValue(v.data(), v.size(), value) && numericValue(value, d)) {
                      acc.add(readTs(k.data() + k.size() - 8), d);
                    }
                    return true;
                  });
    if (!s.ok()) return std::unexpected(fromRocks(s, "rollup read"));
    if (acc.count)
      minute_batch.Put(cfs_[kRollup1m], tsKey(series, m), acc.encode());
    else
      minute_batch.Delete(cfs_[kRollup1m], tsKey(series, m));
    hours.insert(floorTo(m, kHour));
  }
  auto s = db_->Write(rocksdb::WriteOptions(), &minute_batch);
  if (!s.ok()) return std::unexpected(fromRocks(s, "rollup write"));

  rocksdb::WriteBatch hour_batch;
  for (std::int64_t h : hours) {
    Acc acc;
    s = scan(db_.get(), cfs_[kRollup1m], tsKey(series, h), tsKey(series, h + kHour),
             [&](const rocksdb::Slice&, const rocksdb::Slice& v) {
               Acc part;
               if (Acc::decode(v, part)) acc.merge(part);
               return true;
             });
    if (!s.ok()) return std::unexpected(fromRocks(s, "rollup read"));
    if (acc.count)
      hour_batch.Put(cfs_[kRollup1h], tsKey(series, h), acc.encode());
    else
      hour_batch.Delete(cfs_[kRollup1h], tsKey(series, h));
  }
  // Markers go last, in the same batch as the hour rollups: a crash before this point redoes the work.
  for (std::int64_t m : minutes) hour_batch.Delete(cfs_[kDirty], tsKey(series, m));
  s = db_->Write(rocksdb::WriteOptions(), &hour_batch);
  if (!s.ok()) return std::unexpected(fromRocks(s, "rollup write"));
  return ok();
}

void RocksDbTimeSeriesStore::rollupLoop() {
  auto log = logger("storage");
  while (!stopping_) {
    {
      std::unique_lock lock(loop_mutex_);
      loop_cv_.wait_for(lock, std::chrono::milliseconds(options_.rollup_interval_ms), [&] { return stopping_.load(); });
    }
    if (stopping_) break;
    if (auto st = settleAll(true); !st) log->warn("msg=\"rollup pass failed\" error=\"{}\"", st.error().message);
  }
}

Status RocksDbTimeSeriesStore::deleteRange(const std::string& begin, const std::string& end) {
  rocksdb::WriteBatch batch;
  for (std::size_t cf = kRaw; cf < kNumCfs; ++cf) batch.DeleteRange(cfs_[cf], begin, end);
  rocksdb::WriteOptions wo;
  wo.sync = options_.sync_wal;
  auto s = db_->Write(wo, &batch);
  if (!s.ok()) return std::unexpected(fromRocks(s, "delete"));
  std::lock_guard lock(dirty_mutex_);
  for (auto it = dirty_.lower_bound(begin); it != dirty_.end() && it->first < end;) it = dirty_.erase(it);
  return ok();
}

Status RocksDbTimeSeriesStore::deleteDevice(const TenantId& tenant, const DeviceId& device) {
  auto dp = devicePrefix(tenant, device);
  if (!dp) return fail(Code::kNotFound, "device not found");
  std::unique_lock stripe(stripeFor(*dp));
  return deleteRange(*dp, prefixSuccessor(*dp));
}

Status RocksDbTimeSeriesStore::deleteTenant(const TenantId& tenant) {
  auto tp = tenantPrefix(tenant);
  if (!tp) return fail(Code::kNotFound, "tenant not found");
  auto st = deleteRange(*tp, prefixSuccessor(*tp));
  if (!st) return st;
  std::string end = prefixSuccessor(*tp);
  rocksdb::Slice b(*tp), e(end);
  rocksdb::CompactRangeOptions cro;
  cro.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  for (std::size_t cf = kRaw; cf < kNumCfs; ++cf) db_->CompactRange(cro, cfs_[cf], &b, &e);
  return ok();
}

Result<RetentionStats> RocksDbTimeSeriesStore::applyRetention(const TenantId& tenant, std::int64_t cutoff_ms) {
  auto tp = tenantPrefix(tenant);
  if (!tp) return fail(Code::kNotFound, "tenant not found");
  std::vector<std::string> series;
  auto s =
      scan(db_.get(), cfs_[kLatest], *tp, prefixSuccessor(*tp), [&](const rocksdb::Slice& k, const rocksdb::Slice& v) {
        series.push_back(k.ToString());
        return true;
      });
  if (!s.ok()) return std::unexpected(fromRocks(s, "retention scan"));

  RetentionStats stats;
  const std::int64_t lowest = std::numeric_limits<std::int64_t>::min();
  const std::int64_t cut_minute = floorTo(cutoff_ms, kMinute);
  for (const auto& prefix : series) {
    std::unique_lock stripe(stripeFor(deviceOf(prefix)));
    // Read under the stripe lock: a write landing after this cannot lose its latest value.
    std::string latest_value;
    s = db_->Get(rocksdb::ReadOptions(), cfs_[kLatest], prefix, &latest_value);
    if (!s.ok() && !s.IsNotFound()) return std::unexpected(fromRocks(s, "retention read"));
    const bool latest_expired = s.ok() && latest_value.size() >= 8 && readTs(latest_value.data()) < cutoff_ms;
    rocksdb::WriteBatch batch;
    batch.DeleteRange(cfs_[kRaw], tsKey(prefix, lowest), tsKey(prefix, cutoff_ms));
    batch.DeleteRange(cfs_[kRollup1m], tsKey(prefix, lowest), tsKey(prefix, cut_minute));
    batch.DeleteRange(cfs_[kRollup1h], tsKey(prefix, lowest), tsKey(prefix, floorTo(cutoff_ms, kHour)));
    if (latest_expired) batch.Delete(cfs_[kLatest], prefix);
    // The minute (and hour) holding the cutoff lost some points: recompute them.
    batch.Put(cfs_[kDirty], tsKey(prefix, cut_minute), rocksdb::Slice());
    s = db_->Write(rocksdb::WriteOptions(), &batch);
    if (!s.ok()) return std::unexpected(fromRocks(s, "retention delete"));
    {
      std::lock_guard lock(dirty_mutex_);
      dirty_[prefix].minutes.insert(cut_minute);
    }
    ++stats.series;
  }
  // Compaction drops the range tombstones' data from disk.
  std::string end = prefixSuccessor(*tp);
  rocksdb::Slice b(*tp), e(end);
  rocksdb::CompactRangeOptions cro;
  cro.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  for (std::size_t cf = kRaw; cf < kNumCfs; ++cf) {
    s = db_->CompactRange(cro, cfs_[cf], &b, &e);
    if (!s.ok()) return std::unexpected(fromRocks(s, "retention compaction"));
  }
  return stats;
}

Status RocksDbTimeSeriesStore::flush() {
  if (auto st = settleAll(); !st) return st;
  auto s = db_->FlushWAL(true);
  if (!s.ok()) return std::unexpected(fromRocks(s, "flush"));
  rocksdb::FlushOptions fo;
  s = db_->Flush(fo, cfs_);
  if (!s.ok()) return std::unexpected(fromRocks(s, "flush"));
  return ok();
}

StoreStats RocksDbTimeSeriesStore::stats() {
  StoreStats st;
  for (std::size_t cf = kRaw; cf < kNumCfs; ++cf) {
    std::uint64_t v = 0;
    if (db_->GetIntProperty(cfs_[cf], "rocksdb.live-sst-files-size", &v)) st.disk_bytes += v;
  }
  std::lock_guard lock(dirty_mutex_);
  for (const auto& [_, d] : dirty_) st.pending_rollups += d.minutes.size();
  return st;
}

}  // namespace sw::storage
