#include "storage/backends/rocksdb/rocksdb_time_series_store.h"

#include <fmt/format.h>
#include <rocksdb/db.h>
#include <rocksdb/merge_operator.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <boost/container/small_vector.hpp>
#include <chrono>
#include <cmath>
#include <cstring>
#include <deque>
#include <functional>
#include <limits>

#include "core/logging.h"
#include "runtime/thread_name.h"
#include "storage/backends/rocksdb/chunk_codec.h"
#include "storage/backends/rocksdb/key_codec.h"

namespace sw::storage {
namespace {

using namespace rocks;

enum Cf : std::size_t { kDefault = 0, kChunks, kLatest, kRollup1m, kRollup1h, kDirty, kNumCfs };
const char* const kCfNames[kNumCfs] = {"default", "chunks", "latest", "rollup_1m", "rollup_1h", "dirty"};

// Bucket arithmetic must not overflow: queries are clamped to +-2^62 ms (the codecs accept
// nothing outside 1970..9999).
constexpr std::int64_t kBound = std::int64_t{1} << 62;
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

// chunks CF: union of chunks, last write wins (see chunk_codec.h).
class ChunkMergeOperator final : public rocksdb::MergeOperator {
 public:
  bool FullMergeV2(const MergeOperationInput& in, MergeOperationOutput* out) const override {
    std::vector<std::string_view> parts;
    parts.reserve(in.operand_list.size() + 1);
    if (in.existing_value) parts.emplace_back(in.existing_value->data(), in.existing_value->size());
    for (const auto& op : in.operand_list) parts.emplace_back(op.data(), op.size());
    return mergeChunks(parts, out->new_value);
  }
  bool PartialMergeMulti(const rocksdb::Slice&, const std::deque<rocksdb::Slice>& operands, std::string* new_value,
                         rocksdb::Logger*) const override {
    std::vector<std::string_view> parts;
    parts.reserve(operands.size());
    for (const auto& op : operands) parts.emplace_back(op.data(), op.size());
    return mergeChunks(parts, *new_value);
  }
  const char* Name() const override { return "sw.ChunkUnionLww"; }
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
                     const std::function<bool(const rocksdb::Slice&, const rocksdb::Slice&)>& fn) {
  rocksdb::ReadOptions ro;
  rocksdb::Slice lo(lower), up(upper);
  ro.iterate_lower_bound = &lo;
  ro.iterate_upper_bound = &up;
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
    cfo.table_factory.reset(rocksdb::NewBlockBasedTableFactory(t));
    cfo.compression = rocksdb::kLZ4Compression;
    cfo.bottommost_compression = rocksdb::kZSTD;
    cfo.write_buffer_size = big ? 64 << 20 : 16 << 20;
    return cfo;
  };

  std::vector<rocksdb::ColumnFamilyDescriptor> descs;
  for (std::size_t i = 0; i < kNumCfs; ++i) {
    auto cfo = cf_options(i == kChunks);
    if (i == kLatest) cfo.merge_operator = std::make_shared<LatestMergeOperator>();
    if (i == kChunks) cfo.merge_operator = std::make_shared<ChunkMergeOperator>();
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
               store->dirty_[series].hours.insert(readTs(k.data() + k.size() - 8));
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
    options.metrics->gauge("sw_store_pending_rollups", "Hour buckets waiting for their rollup recompute",
                           [raw] { return static_cast<double>(raw->stats().pending_rollups); });
  }
  store->rollup_thread_ = std::thread([p = store.get()] {
    runtime::nameThisThread("sw-rollup");
    p->rollupLoop();
  });
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

std::size_t RocksDbTimeSeriesStore::stripeIndex(std::string_view device_prefix) const {
  return std::hash<std::string_view>{}(device_prefix) % kStripes;
}

std::shared_mutex& RocksDbTimeSeriesStore::stripeFor(std::string_view device_prefix) {
  return stripes_[stripeIndex(device_prefix)];
}

namespace {

// Appends one device's points to `batch`: grouped by (key, hour), one chunk merge per group and
// one latest-value merge per key. Within the points, a later one wins over an earlier one with
// the same timestamp (stable sort, keep the last). The series and hours touched go to `marks`.
void appendDevice(std::string_view dp, std::span<const Point> points, rocksdb::WriteBatch& batch,
                  rocksdb::ColumnFamilyHandle* chunks, rocksdb::ColumnFamilyHandle* latest,
                  std::vector<std::pair<std::string, std::set<std::int64_t>>>& marks) {
  std::vector<std::uint32_t> order(points.size());
  for (std::uint32_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](std::uint32_t a, std::uint32_t b) {
    const Point& pa = points[a];
    const Point& pb = points[b];
    if (int c = pa.key.compare(pb.key); c != 0) return c < 0;
    return pa.ts < pb.ts;
  });
  std::vector<TimedValue> chunk;
  std::string val;
  std::size_t i = 0;
  while (i < order.size()) {
    const std::string& name = points[order[i]].key;
    std::string series = seriesPrefix(dp, name);
    std::set<std::int64_t> hours;
    std::size_t newest = order[i];
    while (i < order.size() && points[order[i]].key == name) {
      const std::int64_t hour = floorTo(points[order[i]].ts, kHour);
      chunk.clear();
      for (; i < order.size() && points[order[i]].key == name && floorTo(points[order[i]].ts, kHour) == hour; ++i) {
        const Point& p = points[order[i]];
        if (!chunk.empty() && chunk.back().ts == p.ts) chunk.pop_back();  // later in the batch wins
        chunk.push_back(TimedValue{p.ts, p.value});
        if (p.ts >= points[newest].ts) newest = order[i];
      }
      val.clear();
      encodeChunk(chunk, val);
      batch.Merge(chunks, tsKey(series, hour), val);
      hours.insert(hour);
    }
    val.clear();
    appendTs(points[newest].ts, val);
    encodeValue(points[newest].value, val);
    batch.Merge(latest, series, val);
    marks.emplace_back(std::move(series), std::move(hours));
  }
}

}  // namespace

Status RocksDbTimeSeriesStore::write(const TenantId& tenant, const DeviceId& device, std::span<const Point> points) {
  const DeviceBatch one{&tenant, &device, points};
  std::size_t gone = 0;
  if (auto st = commit({&one, 1}, gone); !st) return st;
  if (gone) return fail(Code::kNotFound, "device not found (deleted)");
  return ok();
}

Status RocksDbTimeSeriesStore::writeMany(std::span<const DeviceBatch> batches) {
  std::size_t gone = 0;
  return commit(batches, gone);
}

Status RocksDbTimeSeriesStore::commit(std::span<const DeviceBatch> batches, std::size_t& gone) {
  gone = 0;
  // Inline storage for the usual single device (every ingest message).
  boost::container::small_vector<std::string, 1> prefixes;
  boost::container::small_vector<std::size_t, 1> stripes;
  for (const auto& b : batches) {
    auto dp = devicePrefix(*b.tenant, *b.device);
    if (!dp) return fail(Code::kInvalidArgument, "tenant and device ids must be UUIDs");
    stripes.push_back(stripeIndex(*dp));
    prefixes.push_back(std::move(*dp));
  }
  auto started = std::chrono::steady_clock::now();
  // The devices' stripes, shared and in index order (deleteTenant takes them all exclusively in
  // the same order): while they are held, no device of the batch can be deleted or settled.
  std::sort(stripes.begin(), stripes.end());
  stripes.erase(std::unique(stripes.begin(), stripes.end()), stripes.end());
  boost::container::small_vector<std::shared_lock<std::shared_mutex>, 1> held;
  for (std::size_t i : stripes) held.emplace_back(stripes_[i]);

  rocksdb::WriteBatch batch;
  std::vector<std::pair<std::string, std::set<std::int64_t>>> marks;
  auto build = [&](auto&& skip) {
    for (std::size_t i = 0; i < batches.size(); ++i) {
      if (!skip(i)) appendDevice(prefixes[i], batches[i].points, batch, cfs_[kChunks], cfs_[kLatest], marks);
    }
  };
  build([](std::size_t) { return false; });
  if (marks.empty()) return ok();  // no points
  {
    std::lock_guard lock(dirty_mutex_);
    // A device deleted since its points were accepted (rare): its points are left out.
    for (std::size_t i = 0; i < batches.size(); ++i) {
      if (!batches[i].points.empty() && tombstoned(prefixes[i])) ++gone;
    }
    if (gone) {
      batch.Clear();
      marks.clear();
      build([&](std::size_t i) { return tombstoned(prefixes[i]); });
    }
    // A dirty marker already in memory is also on disk (markers are removed only under the
    // exclusive stripe lock, together with the memory entry): write only the missing ones.
    for (const auto& [series, hours] : marks) {
      auto it = dirty_.find(series);
      for (std::int64_t h : hours) {
        if (it == dirty_.end() || !it->second.hours.contains(h))
          batch.Put(cfs_[kDirty], tsKey(series, h), rocksdb::Slice());
      }
    }
  }
  if (marks.empty()) return ok();
  rocksdb::WriteOptions wo;
  wo.sync = options_.sync_wal;
  auto s = db_->Write(wo, &batch);
  if (!s.ok()) return std::unexpected(fromRocks(s, "write"));
  const auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard lock(dirty_mutex_);
    for (auto& [series, hours] : marks) {
      DirtySeries& d = dirty_[series];
      d.hours.merge(hours);
      d.last_write = now;
    }
  }
  held.clear();
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

Status RocksDbTimeSeriesStore::readPoints(const std::string& series, std::int64_t from, std::int64_t to,
                                          const std::function<bool(const PointView&)>& fn) {
  from = std::clamp(from, -kBound, kBound);
  to = std::clamp(to, -kBound, kBound);
  if (from >= to) return ok();
  bool corrupt = false;
  auto s = scan(db_.get(), cfs_[kChunks], tsKey(series, floorTo(from, kHour)), tsKey(series, to),
                [&](const rocksdb::Slice&, const rocksdb::Slice& v) {
                  ChunkReader reader(std::string_view(v.data(), v.size()));
                  PointView p;
                  while (reader.next(p)) {
                    if (p.ts < from) continue;
                    if (p.ts >= to) return false;
                    if (!fn(p)) return false;
                  }
                  corrupt = reader.corrupt();
                  return !corrupt;
                });
  if (!s.ok()) return std::unexpected(fromRocks(s, "read"));
  if (corrupt) return fail(Code::kInternal, "storage holds a chunk that does not decode");
  return ok();
}

Result<RawPage> RocksDbTimeSeriesStore::readRaw(const TenantId& tenant, const DeviceId& device, const std::string& key,
                                                const RawQuery& q) {
  auto dp = devicePrefix(tenant, device);
  if (!dp) return fail(Code::kNotFound, "device not found");
  RawPage page;
  if (q.from >= q.to || q.limit == 0) return page;
  std::size_t bytes = 0;
  auto st = readPoints(seriesPrefix(*dp, key), q.from, q.to, [&](const PointView& p) {
    if (page.points.size() == q.limit || (q.max_bytes && bytes > q.max_bytes)) {
      page.more = true;
      return false;
    }
    bytes += 16 + p.text.size();
    page.points.push_back(TimedValue{p.ts, p.toValue()});
    return true;
  });
  if (!st) return std::unexpected(st.error());
  return page;
}

namespace {

// rollup_1m value: the non-empty minutes of one hour, each as minute index (1 byte) + Acc.
std::string encodeMinutes(const std::map<std::int64_t, Acc>& minutes, std::int64_t hour) {
  std::string out;
  for (const auto& [m, acc] : minutes) {
    out.push_back(static_cast<char>((m - hour) / kMinute));
    out += acc.encode();
  }
  return out;
}

template <typename Fn>
bool decodeMinutes(const rocksdb::Slice& v, std::int64_t hour, Fn&& fn) {
  constexpr std::size_t kEntry = 65;
  if (v.size() % kEntry) return false;
  for (std::size_t off = 0; off < v.size(); off += kEntry) {
    Acc acc;
    auto idx = static_cast<std::uint8_t>(v.data()[off]);
    if (idx >= 60 || !Acc::decode(rocksdb::Slice(v.data() + off + 1, 64), acc)) return false;
    fn(hour + idx * kMinute, acc);
  }
  return true;
}

}  // namespace

Result<std::vector<AggPoint>> RocksDbTimeSeriesStore::aggregate(const TenantId& tenant, const DeviceId& device,
                                                                const std::string& key, const AggQuery& query) {
  AggQuery q = query;
  q.from = std::clamp(q.from, -kBound, kBound);
  q.to = std::clamp(q.to, -kBound, kBound);
  auto dp = devicePrefix(tenant, device);
  if (!dp) return fail(Code::kNotFound, "device not found");
  if (q.interval_ms <= 0) return fail(Code::kInvalidArgument, "interval must be positive", "interval");
  std::vector<AggPoint> out;
  if (q.from >= q.to) return out;
  std::string series = seriesPrefix(*dp, key);
  if (auto st = settleSeries(series, false, HourRange{floorTo(q.from, kHour), q.to}); !st) {
    return std::unexpected(st.error());
  }

  std::map<std::int64_t, Acc> buckets;
  auto bucketOf = [&](std::int64_t ts) { return floorTo(ts, q.interval_ms); };
  auto ceilTo = [](std::int64_t ts, std::int64_t step) { return -floorTo(-ts, step); };
  std::uint64_t raw_read = 0;

  auto fromRaw = [&](std::int64_t a, std::int64_t b) -> Status {
    return readPoints(series, a, b, [&](const PointView& p) {
      ++raw_read;
      if (p.numeric()) buckets[bucketOf(p.ts)].add(p.ts, p.number);
      return true;
    });
  };
  // Whole minutes in [a, b) (both minute-aligned) from the packed minute rollups.
  auto fromMinutes = [&](std::int64_t a, std::int64_t b) -> Status {
    if (a >= b) return ok();
    bool corrupt = false;
    auto s = scan(db_.get(), cfs_[kRollup1m], tsKey(series, floorTo(a, kHour)), tsKey(series, b),
                  [&](const rocksdb::Slice& k, const rocksdb::Slice& v) {
                    corrupt = !decodeMinutes(v, readTs(k.data() + k.size() - 8), [&](std::int64_t m, const Acc& acc) {
                      if (m >= a && m < b) buckets[bucketOf(m)].merge(acc);
                    });
                    return !corrupt;
                  });
    if (!s.ok()) return std::unexpected(fromRocks(s, "read"));
    if (corrupt) return fail(Code::kInternal, "storage holds a rollup that does not decode");
    return ok();
  };
  auto fromHours = [&](std::int64_t a, std::int64_t b) -> Status {
    if (a >= b) return ok();
    auto s = scan(db_.get(), cfs_[kRollup1h], tsKey(series, a), tsKey(series, b),
                  [&](const rocksdb::Slice& k, const rocksdb::Slice& v) {
                    Acc part;
                    if (Acc::decode(v, part)) buckets[bucketOf(readTs(k.data() + k.size() - 8))].merge(part);
                    return true;
                  });
    if (!s.ok()) return std::unexpected(fromRocks(s, "read"));
    return ok();
  };

  // Whole rollup buckets lie inside one query bucket only when the interval is a multiple of
  // the rollup size; the edges that are not whole buckets come from the finer level.
  Status st = ok();
  if (q.interval_ms % kMinute != 0) {
    st = fromRaw(q.from, q.to);
  } else {
    std::int64_t m_lo = ceilTo(q.from, kMinute), m_hi = floorTo(q.to, kMinute);
    if (m_lo >= m_hi) {
      st = fromRaw(q.from, q.to);
    } else {
      st = fromRaw(q.from, m_lo);
      if (st) st = fromRaw(m_hi, q.to);
      std::int64_t h_lo = ceilTo(m_lo, kHour), h_hi = floorTo(m_hi, kHour);
      if (st && q.interval_ms % kHour == 0 && h_lo < h_hi) {
        st = fromMinutes(m_lo, h_lo);
        if (st) st = fromMinutes(h_hi, m_hi);
        if (st) st = fromHours(h_lo, h_hi);
      } else if (st) {
        st = fromMinutes(m_lo, m_hi);
      }
    }
  }
  if (!st) return std::unexpected(st.error());
  raw_points_agg_ += raw_read;
  out.reserve(buckets.size());
  for (const auto& [ts, acc] : buckets) {
    if (acc.count) out.push_back(AggPoint{ts, acc.result(q.fn)});
  }
  return out;
}

std::set<std::int64_t> RocksDbTimeSeriesStore::hoursToSettle(const DirtySeries& d, bool background, HourRange range) {
  std::set<std::int64_t> out;
  if (background && std::chrono::steady_clock::now() - d.last_write < kActiveWindow) {
    if (d.hours.size() >= 2) out.insert(d.hours.begin(), std::prev(d.hours.end()));  // newest is still filling
    return out;
  }
  for (std::int64_t h : d.hours) {
    if (range.contains(h)) out.insert(h);
  }
  return out;
}

Status RocksDbTimeSeriesStore::settleSeries(const std::string& series, bool background, HourRange range) {
  {
    // Most queries find nothing to do: check before taking the stripe (which stalls writers).
    std::lock_guard lock(dirty_mutex_);
    auto it = dirty_.find(series);
    if (it == dirty_.end() || hoursToSettle(it->second, background, range).empty()) return ok();
  }
  std::unique_lock stripe(stripeFor(deviceOf(series)));
  std::set<std::int64_t> hours;
  {
    std::lock_guard lock(dirty_mutex_);
    auto it = dirty_.find(series);
    if (it == dirty_.end()) return ok();
    hours = hoursToSettle(it->second, background, range);
    for (std::int64_t h : hours) it->second.hours.erase(h);
    if (it->second.hours.empty()) dirty_.erase(it);
  }
  if (hours.empty()) return ok();
  auto st = recomputeSeries(series, hours);
  if (!st) {
    std::lock_guard lock(dirty_mutex_);
    dirty_[series].hours.merge(hours);
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
  // One failing series (a read error, a corrupt chunk) must not hold back all the others.
  Status result = ok();
  for (const auto& s : series) {
    if (stopping_ && background) break;
    if (auto st = settleSeries(s, background); !st && result) result = st;
  }
  return result;
}

// Caller holds the series' stripe exclusively, so no write of this device is in flight.
Status RocksDbTimeSeriesStore::recomputeSeries(const std::string& series, const std::set<std::int64_t>& hours) {
  rocksdb::WriteBatch batch;
  std::string chunk;
  for (std::int64_t h : hours) {
    const std::string key = tsKey(series, h);
    auto s = db_->Get(rocksdb::ReadOptions(), cfs_[kChunks], key, &chunk);
    if (!s.ok() && !s.IsNotFound()) return std::unexpected(fromRocks(s, "rollup read"));
    std::map<std::int64_t, Acc> minutes;
    Acc hour;
    if (s.ok()) {
      ChunkReader reader(chunk);
      PointView p;
      while (reader.next(p)) {
        if (!p.numeric()) continue;
        minutes[floorTo(p.ts, kMinute)].add(p.ts, p.number);
        hour.add(p.ts, p.number);
      }
      if (reader.corrupt()) return fail(Code::kInternal, "storage holds a chunk that does not decode");
    }
    // Store the merged chunk back: later reads find one value instead of re-merging every
    // operand still in the memtable (no write of this device runs while we hold its stripe).
    if (s.ok()) batch.Put(cfs_[kChunks], key, chunk);
    if (hour.count) {
      batch.Put(cfs_[kRollup1m], key, encodeMinutes(minutes, h));
      batch.Put(cfs_[kRollup1h], key, hour.encode());
    } else {
      batch.Delete(cfs_[kRollup1m], key);
      batch.Delete(cfs_[kRollup1h], key);
    }
    // The marker goes in the same batch as the rollups: a crash before it redoes the work.
    batch.Delete(cfs_[kDirty], key);
  }
  auto s = db_->Write(rocksdb::WriteOptions(), &batch);
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
  for (std::size_t cf = kChunks; cf < kNumCfs; ++cf) batch.DeleteRange(cfs_[cf], begin, end);
  rocksdb::WriteOptions wo;
  wo.sync = options_.sync_wal;
  auto s = db_->Write(wo, &batch);
  if (!s.ok()) return std::unexpected(fromRocks(s, "delete"));
  std::lock_guard lock(dirty_mutex_);
  for (auto it = dirty_.lower_bound(begin); it != dirty_.end() && it->first < end;) it = dirty_.erase(it);
  return ok();
}

void RocksDbTimeSeriesStore::addTombstone(const std::string& prefix) {
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(dirty_mutex_);
  std::erase_if(tombstones_, [&](const auto& kv) { return now - kv.second > kTombstoneTtl; });
  tombstones_[prefix] = now;
}

bool RocksDbTimeSeriesStore::tombstoned(const std::string& device_prefix) {
  if (tombstones_.empty()) return false;
  return tombstones_.contains(device_prefix) || tombstones_.contains(device_prefix.substr(0, kUuidBytes));
}

Status RocksDbTimeSeriesStore::deleteDevice(const TenantId& tenant, const DeviceId& device) {
  auto dp = devicePrefix(tenant, device);
  if (!dp) return fail(Code::kNotFound, "device not found");
  std::unique_lock stripe(stripeFor(*dp));
  addTombstone(*dp);
  return deleteRange(*dp, prefixSuccessor(*dp));
}

Status RocksDbTimeSeriesStore::deleteTenant(const TenantId& tenant) {
  auto tp = tenantPrefix(tenant);
  if (!tp) return fail(Code::kNotFound, "tenant not found");
  {
    // Every stripe, in index order: no rollup recompute or retention pass of this tenant can be
    // half-way (read before, write after the range delete) and bring data back.
    std::vector<std::unique_lock<std::shared_mutex>> all;
    all.reserve(kStripes);
    for (auto& m : stripes_) all.emplace_back(m);
    addTombstone(*tp);
    auto st = deleteRange(*tp, prefixSuccessor(*tp));
    if (!st) return st;
  }
  std::string end = prefixSuccessor(*tp);
  rocksdb::Slice b(*tp), e(end);
  rocksdb::CompactRangeOptions cro;
  cro.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  for (std::size_t cf = kChunks; cf < kNumCfs; ++cf) {
    auto s = db_->CompactRange(cro, cfs_[cf], &b, &e);
    if (!s.ok()) return std::unexpected(fromRocks(s, "compaction after delete"));
  }
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
  const std::int64_t cut_hour = floorTo(cutoff_ms, kHour);
  std::string chunk, kept;
  std::vector<TimedValue> points;
  for (const auto& prefix : series) {
    std::unique_lock stripe(stripeFor(deviceOf(prefix)));
    // Read under the stripe lock: a write landing after this cannot lose its latest value.
    std::string latest_value;
    s = db_->Get(rocksdb::ReadOptions(), cfs_[kLatest], prefix, &latest_value);
    if (!s.ok() && !s.IsNotFound()) return std::unexpected(fromRocks(s, "retention read"));
    const bool latest_expired = s.ok() && latest_value.size() >= 8 && readTs(latest_value.data()) < cutoff_ms;
    // Anything in whole hours before the cutoff?
    bool old_hours = false;
    s = scan(db_.get(), cfs_[kChunks], tsKey(prefix, lowest), tsKey(prefix, cut_hour),
             [&](const rocksdb::Slice&, const rocksdb::Slice&) {
               old_hours = true;
               return false;
             });
    if (!s.ok()) return std::unexpected(fromRocks(s, "retention read"));
    // The hour holding the cutoff keeps only its points at or after the cutoff.
    const std::string cut_key = tsKey(prefix, cut_hour);
    s = db_->Get(rocksdb::ReadOptions(), cfs_[kChunks], cut_key, &chunk);
    if (!s.ok() && !s.IsNotFound()) return std::unexpected(fromRocks(s, "retention read"));
    bool cut_changed = false;
    if (s.ok()) {
      points.clear();
      if (!decodeChunk(chunk, points)) return fail(Code::kInternal, "storage holds a chunk that does not decode");
      cut_changed = std::erase_if(points, [&](const TimedValue& p) { return p.ts < cutoff_ms; }) > 0;
    }
    if (!old_hours && !cut_changed && !latest_expired) continue;  // nothing expired: no write

    rocksdb::WriteBatch batch;
    if (old_hours) {
      for (Cf cf : {kChunks, kRollup1m, kRollup1h, kDirty}) {
        batch.DeleteRange(cfs_[cf], tsKey(prefix, lowest), tsKey(prefix, cut_hour));
      }
    }
    if (latest_expired) batch.Delete(cfs_[kLatest], prefix);
    if (cut_changed) {
      // A Put replaces the key's merge history; no write of this device runs while we hold its stripe.
      kept.clear();
      encodeChunk(points, kept);
      if (points.empty())
        batch.Delete(cfs_[kChunks], cut_key);
      else
        batch.Put(cfs_[kChunks], cut_key, kept);
      batch.Put(cfs_[kDirty], cut_key, rocksdb::Slice());
    }
    s = db_->Write(rocksdb::WriteOptions(), &batch);
    if (!s.ok()) return std::unexpected(fromRocks(s, "retention delete"));
    {
      std::lock_guard lock(dirty_mutex_);
      auto it = dirty_.find(prefix);
      if (it != dirty_.end()) std::erase_if(it->second.hours, [&](std::int64_t h) { return h < cut_hour; });
      if (cut_changed) dirty_[prefix].hours.insert(cut_hour);
    }
    ++stats.series;
  }
  if (stats.series == 0) return stats;  // nothing deleted: no compaction
  // Compaction drops the range tombstones' data from disk.
  std::string end = prefixSuccessor(*tp);
  rocksdb::Slice b(*tp), e(end);
  rocksdb::CompactRangeOptions cro;
  cro.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  for (std::size_t cf = kChunks; cf < kNumCfs; ++cf) {
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
  for (std::size_t cf = kChunks; cf < kNumCfs; ++cf) {
    std::uint64_t v = 0;
    if (db_->GetIntProperty(cfs_[cf], "rocksdb.live-sst-files-size", &v)) st.disk_bytes += v;
  }
  std::lock_guard lock(dirty_mutex_);
  for (const auto& [_, d] : dirty_) st.pending_rollups += d.hours.size();
  return st;
}

}  // namespace sw::storage
