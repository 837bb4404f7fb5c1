// TimeSeriesStore contract tests, typed over every backend (DESIGN.md section 5: one typed suite
// runs against every backend), plus RocksDB-specific checks and the value encoding.
//
// Adding a backend: write a traits struct like RocksDbBackend (open a store in a directory) and
// add it to `Backends`.
#include "storage/time_series_store.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "core/ids.h"
#include "storage/backends/rocksdb/rocksdb_time_series_store.h"
#include "storage/value.h"
#include "test_util.h"

namespace sw::storage {
namespace {

namespace fs = std::filesystem;
using sw::testing::TempDir;

constexpr std::int64_t kSecond = 1000;
constexpr std::int64_t kMinute = 60 * kSecond;
constexpr std::int64_t kHour = 60 * kMinute;
constexpr std::int64_t kDay = 24 * kHour;
// An hour-aligned base time (2023-11-14T21:00:00Z), so tests can pick aligned and unaligned ranges.
constexpr std::int64_t kT0 = 1'700'000'000'000 / kHour * kHour;

std::int64_t floorTo(std::int64_t ts, std::int64_t step) {
  std::int64_t q = ts / step;
  if (ts % step != 0 && ts < 0) --q;
  return q * step;
}

Point pt(std::int64_t ts, std::string key, Value v) {
  return Point{ts, std::move(key), std::move(v)};
}

const AggFn kAllFns[] = {AggFn::kAvg,   AggFn::kMin,   AggFn::kMax, AggFn::kSum,
                         AggFn::kCount, AggFn::kFirst, AggFn::kLast};

const char* fnName(AggFn fn) {
  switch (fn) {
    case AggFn::kAvg: return "avg";
    case AggFn::kMin: return "min";
    case AggFn::kMax: return "max";
    case AggFn::kSum: return "sum";
    case AggFn::kCount: return "count";
    case AggFn::kFirst: return "first";
    case AggFn::kLast: return "last";
  }
  return "?";
}

// Reference model of one tenant's data: last write wins per (device, key, ts).
using Series = std::map<std::int64_t, Value>;

void applyToModel(Series& s, std::span<const Point> points) {
  for (const auto& p : points) s[p.ts] = p.value;
}

// Brute-force aggregation over the model, in time order, numeric values only.
std::vector<AggPoint> bruteAggregate(const Series& s, const AggQuery& q) {
  struct B {
    std::uint64_t count = 0;
    double sum = 0, min = 0, max = 0, first = 0, last = 0;
  };
  std::map<std::int64_t, B> buckets;
  for (auto it = s.lower_bound(q.from); it != s.end() && it->first < q.to; ++it) {
    double v;
    if (!numericValue(it->second, v)) continue;
    B& b = buckets[floorTo(it->first, q.interval_ms)];
    if (b.count == 0) {
      b.min = b.max = b.first = v;
    }
    ++b.count;
    b.sum += v;
    b.min = std::min(b.min, v);
    b.max = std::max(b.max, v);
    b.last = v;
  }
  std::vector<AggPoint> out;
  for (const auto& [ts, b] : buckets) {
    double r = 0;
    switch (q.fn) {
      case AggFn::kAvg: r = b.sum / static_cast<double>(b.count); break;
      case AggFn::kMin: r = b.min; break;
      case AggFn::kMax: r = b.max; break;
      case AggFn::kSum: r = b.sum; break;
      case AggFn::kCount: r = static_cast<double>(b.count); break;
      case AggFn::kFirst: r = b.first; break;
      case AggFn::kLast: r = b.last; break;
    }
    out.push_back(AggPoint{ts, r});
  }
  return out;
}

// Exact comparison; reports only the first difference to keep failures readable.
::testing::AssertionResult sameAggregates(const std::vector<AggPoint>& got, const std::vector<AggPoint>& want) {
  if (got.size() != want.size()) {
    return ::testing::AssertionFailure() << "bucket count " << got.size() << " != expected " << want.size();
  }
  for (std::size_t i = 0; i < got.size(); ++i) {
    if (got[i].ts != want[i].ts || got[i].value != want[i].value) {
      return ::testing::AssertionFailure() << "bucket " << i << ": got (" << got[i].ts << ", " << got[i].value
                                           << ") expected (" << want[i].ts << ", " << want[i].value << ")";
    }
  }
  return ::testing::AssertionSuccess();
}

// Random points over [t0, t0 + span): integer-valued doubles (so sums are exact in any order) and
// some booleans, with duplicate timestamps; written shuffled in random-size batches.
void writeRandom(TimeSeriesStore& store, const TenantId& tenant, const DeviceId& device, const std::string& key,
                 Series& model, std::mt19937_64& rng, std::size_t n, std::int64_t t0, std::int64_t span) {
  std::vector<Point> points;
  points.reserve(n);
  std::uniform_int_distribution<std::int64_t> ts_dist(t0, t0 + span - 1);
  std::uniform_int_distribution<int> val_dist(-1000, 1000);
  std::uniform_int_distribution<int> pct(0, 99);
  for (std::size_t i = 0; i < n; ++i) {
    std::int64_t ts = (!points.empty() && pct(rng) < 10) ? points[rng() % points.size()].ts : ts_dist(rng);
    Value v = pct(rng) < 8 ? Value(pct(rng) < 50) : Value(static_cast<double>(val_dist(rng)));
    points.push_back(pt(ts, key, v));
  }
  std::shuffle(points.begin(), points.end(), rng);
  std::size_t i = 0;
  while (i < points.size()) {
    std::size_t len = std::min<std::size_t>(1 + rng() % 500, points.size() - i);
    std::span<const Point> batch(points.data() + i, len);
    auto st = store.write(tenant, device, batch);
    ASSERT_TRUE(st) << st.error().message;
    applyToModel(model, batch);
    i += len;
  }
}

std::vector<TimedValue> readAll(TimeSeriesStore& store, const TenantId& t, const DeviceId& d, const std::string& key,
                                std::int64_t from = std::numeric_limits<std::int64_t>::min() / 2,
                                std::int64_t to = std::numeric_limits<std::int64_t>::max() / 2) {
  auto page = store.readRaw(t, d, key, RawQuery{from, to, 10'000'000});
  EXPECT_TRUE(page) << page.error().message;
  if (!page) return {};
  EXPECT_FALSE(page->more);
  return page->points;
}

std::vector<std::int64_t> timestamps(const std::vector<TimedValue>& v) {
  std::vector<std::int64_t> out;
  for (const auto& tv : v) out.push_back(tv.ts);
  return out;
}

std::vector<AggPoint> agg(TimeSeriesStore& store, const TenantId& t, const DeviceId& d, const std::string& key,
                          std::int64_t from, std::int64_t to, std::int64_t interval, AggFn fn) {
  auto r = store.aggregate(t, d, key, AggQuery{from, to, interval, fn});
  EXPECT_TRUE(r) << r.error().message;
  return r ? *r : std::vector<AggPoint>{};
}

// Checks every function over a set of intervals and ranges (aligned and not) against the model.
void checkAgainstModel(TimeSeriesStore& store, const TenantId& t, const DeviceId& d, const std::string& key,
                       const Series& model, std::int64_t t0, std::int64_t span, std::mt19937_64& rng) {
  const std::int64_t intervals[] = {30 * kSecond, 45 * kSecond, kMinute, 90 * kSecond, 2 * kMinute,
                                    5 * kMinute,  90 * kMinute, kHour,   2 * kHour,    kDay};
  std::vector<std::pair<std::int64_t, std::int64_t>> ranges = {
      {t0 - kHour, t0 + span + kHour},                // everything, aligned
      {t0, t0 + span},                                // exact, aligned to hours
      {t0 + 17 * kMinute, t0 + span - 23 * kMinute},  // aligned to minutes only
      {t0 + 12'345, t0 + 37'001},                     // inside one minute
      {t0 + 59'999, t0 + 2 * kHour + 60'001},         // around minute and hour edges
  };
  std::uniform_int_distribution<std::int64_t> any(t0 - kMinute, t0 + span + kMinute);
  for (int i = 0; i < 3; ++i) {
    std::int64_t a = any(rng), b = any(rng);
    ranges.emplace_back(std::min(a, b), std::max(a, b) + 1);
  }
  for (std::int64_t interval : intervals) {
    for (auto [from, to] : ranges) {
      for (AggFn fn : kAllFns) {
        AggQuery q{from, to, interval, fn};
        auto got = store.aggregate(t, d, key, q);
        ASSERT_TRUE(got) << got.error().message;
        ASSERT_TRUE(sameAggregates(*got, bruteAggregate(model, q)))
            << fnName(fn) << " interval=" << interval << " from=t0+" << (from - t0) << " to=t0+" << (to - t0);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Backends
// ---------------------------------------------------------------------------------------------

struct RocksDbBackend {
  static std::unique_ptr<TimeSeriesStore> open(const fs::path& dir) {
    RocksDbOptions o;
    o.path = (dir / "tsdb").string();
    o.block_cache_bytes = 8 << 20;
    o.rollup_interval_ms = 50;  // the background pass races with queries on purpose
    auto s = RocksDbTimeSeriesStore::open(o);
    if (!s) {
      ADD_FAILURE() << "open failed: " << s.error().message;
      return nullptr;
    }
    return std::move(*s);
  }
};

struct BackendNames {
  template <typename T>
  static std::string GetName(int) {
    if constexpr (std::is_same_v<T, RocksDbBackend>) return "RocksDb";
    return "Unknown";
  }
};

template <typename Backend>
class TimeSeriesStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = Backend::open(dir_.path());
    ASSERT_NE(store_, nullptr);
  }
  void reopen() {
    store_.reset();
    store_ = Backend::open(dir_.path());
    ASSERT_NE(store_, nullptr);
  }
  TimeSeriesStore& store() { return *store_; }
  void write(std::vector<Point> points, const DeviceId* device = nullptr, const TenantId* tenant = nullptr) {
    auto st = store_->write(tenant ? *tenant : tenant_, device ? *device : device_, points);
    ASSERT_TRUE(st) << st.error().message;
  }

  TempDir dir_;  // declared first: outlives the store
  std::unique_ptr<TimeSeriesStore> store_;
  TenantId tenant_{newUuid()};
  DeviceId device_{newUuid()};
};

using Backends = ::testing::Types<RocksDbBackend>;
TYPED_TEST_SUITE(TimeSeriesStoreTest, Backends, BackendNames);

TYPED_TEST(TimeSeriesStoreTest, ReadRawInTimeOrderWithHalfOpenBounds) {
  std::vector<Point> points;
  for (int i = 9; i >= 0; --i) points.push_back(pt(kT0 + i * kSecond, "temp", static_cast<double>(i)));
  this->write(points);

  auto all = readAll(this->store(), this->tenant_, this->device_, "temp");
  ASSERT_EQ(all.size(), 10u);
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(all[i].ts, kT0 + i * kSecond);
    EXPECT_EQ(all[i].value, Value(static_cast<double>(i)));
  }
  // [from, to): from inclusive, to exclusive.
  auto mid = readAll(this->store(), this->tenant_, this->device_, "temp", kT0 + 2 * kSecond, kT0 + 5 * kSecond);
  EXPECT_EQ(timestamps(mid), (std::vector<std::int64_t>{kT0 + 2000, kT0 + 3000, kT0 + 4000}));
  // Bounds between points.
  auto between = readAll(this->store(), this->tenant_, this->device_, "temp", kT0 + 2500, kT0 + 4001);
  EXPECT_EQ(timestamps(between), (std::vector<std::int64_t>{kT0 + 3000, kT0 + 4000}));
  // Empty and inverted ranges.
  EXPECT_TRUE(readAll(this->store(), this->tenant_, this->device_, "temp", kT0 + 3000, kT0 + 3000).empty());
  EXPECT_TRUE(readAll(this->store(), this->tenant_, this->device_, "temp", kT0 + 5000, kT0 + 1000).empty());
  EXPECT_TRUE(readAll(this->store(), this->tenant_, this->device_, "temp", kT0 + 100 * kSecond, kT0 + kHour).empty());
  // Unknown key and unknown device: empty, not an error.
  EXPECT_TRUE(readAll(this->store(), this->tenant_, this->device_, "nope").empty());
  EXPECT_TRUE(readAll(this->store(), this->tenant_, DeviceId(newUuid()), "temp").empty());
}

TYPED_TEST(TimeSeriesStoreTest, KeysSharingAPrefixAreSeparateSeries) {
  this->write({pt(kT0, "a", 1.0), pt(kT0, "ab", 2.0), pt(kT0, "a/b", 3.0), pt(kT0 + 1, "a", 4.0)});
  EXPECT_EQ(readAll(this->store(), this->tenant_, this->device_, "a").size(), 2u);
  auto ab = readAll(this->store(), this->tenant_, this->device_, "ab");
  ASSERT_EQ(ab.size(), 1u);
  EXPECT_EQ(ab[0].value, Value(2.0));
  auto a_b = readAll(this->store(), this->tenant_, this->device_, "a/b");
  ASSERT_EQ(a_b.size(), 1u);
  EXPECT_EQ(a_b[0].value, Value(3.0));
}

TYPED_TEST(TimeSeriesStoreTest, LimitAndMore) {
  std::vector<Point> points;
  for (int i = 0; i < 10; ++i) points.push_back(pt(kT0 + i, "k", static_cast<double>(i)));
  this->write(points);

  auto p3 = this->store().readRaw(this->tenant_, this->device_, "k", RawQuery{kT0, kT0 + 10, 3});
  ASSERT_TRUE(p3);
  EXPECT_EQ(timestamps(p3->points), (std::vector<std::int64_t>{kT0, kT0 + 1, kT0 + 2}));
  EXPECT_TRUE(p3->more);

  // Paging on from the last timestamp + 1 visits every point once.
  std::vector<std::int64_t> seen;
  std::int64_t from = kT0;
  for (int guard = 0; guard < 20; ++guard) {
    auto page = this->store().readRaw(this->tenant_, this->device_, "k", RawQuery{from, kT0 + 10, 4});
    ASSERT_TRUE(page);
    for (const auto& tv : page->points) seen.push_back(tv.ts);
    if (!page->more) break;
    from = page->points.back().ts + 1;
  }
  ASSERT_EQ(seen.size(), 10u);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(seen[i], kT0 + i);

  // A limit equal to the number of points in range: all of them, no more.
  auto exact = this->store().readRaw(this->tenant_, this->device_, "k", RawQuery{kT0 + 2, kT0 + 5, 3});
  ASSERT_TRUE(exact);
  EXPECT_EQ(exact->points.size(), 3u);
  EXPECT_FALSE(exact->more);

  auto big = this->store().readRaw(this->tenant_, this->device_, "k", RawQuery{kT0, kT0 + 10, 1000});
  ASSERT_TRUE(big);
  EXPECT_EQ(big->points.size(), 10u);
  EXPECT_FALSE(big->more);
}

TYPED_TEST(TimeSeriesStoreTest, LastWriteWinsOnDuplicateTimestamp) {
  this->write({pt(kT0, "k", 1.0), pt(kT0 + 1, "k", 10.0)});
  this->write({pt(kT0, "k", 2.0)});
  // Duplicates inside one batch: the later one wins.
  this->write({pt(kT0 + 1, "k", 11.0), pt(kT0 + 1, "k", 12.0)});
  // A different kind of value replaces the old one too.
  this->write({pt(kT0 + 2, "k", 5.0)});
  this->write({pt(kT0 + 2, "k", std::string("text"))});

  auto all = readAll(this->store(), this->tenant_, this->device_, "k");
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].value, Value(2.0));
  EXPECT_EQ(all[1].value, Value(12.0));
  EXPECT_EQ(all[2].value, Value(std::string("text")));

  auto latest = this->store().latest(this->tenant_, this->device_, {"k"});
  ASSERT_TRUE(latest);
  ASSERT_EQ(latest->size(), 1u);
  EXPECT_EQ((*latest)[0].second.ts, kT0 + 2);
  EXPECT_EQ((*latest)[0].second.value, Value(std::string("text")));

  // Aggregates see only the surviving values (2 and 12), through rollups and raw reads alike.
  auto sum = agg(this->store(), this->tenant_, this->device_, "k", kT0, kT0 + 2, kMinute, AggFn::kSum);
  ASSERT_EQ(sum.size(), 1u);
  EXPECT_EQ(sum[0].value, 14.0);
  this->write({pt(kT0 + 3, "k", 1.0), pt(kT0 + 4, "k", 100.0)});
  this->write({pt(kT0 + 4, "k", 3.0)});
  sum = agg(this->store(), this->tenant_, this->device_, "k", kT0 - kHour, kT0 + kHour, kHour, AggFn::kSum);
  ASSERT_EQ(sum.size(), 1u);
  EXPECT_EQ(sum[0].value, 18.0);  // 2 + 12 + 1 + 3; the string at kT0+2 is not numeric
  auto cnt = agg(this->store(), this->tenant_, this->device_, "k", kT0, kT0 + 2, kMinute, AggFn::kCount);
  ASSERT_EQ(cnt.size(), 1u);
  EXPECT_EQ(cnt[0].value, 2.0);
}

TYPED_TEST(TimeSeriesStoreTest, OutOfOrderWritesReadBackSorted) {
  this->write({pt(kT0 + 3 * kHour, "k", 3.0)});
  this->write({pt(kT0 + 1 * kHour, "k", 1.0), pt(kT0 + 5 * kHour, "k", 5.0)});
  this->write({pt(kT0 - 1 * kHour, "k", -1.0)});
  this->write({pt(kT0 + 2 * kHour, "k", 2.0), pt(kT0 + 4 * kHour, "k", 4.0), pt(kT0, "k", 0.0)});
  auto all = readAll(this->store(), this->tenant_, this->device_, "k");
  ASSERT_EQ(all.size(), 7u);
  for (int i = 0; i < 7; ++i) {
    EXPECT_EQ(all[i].ts, kT0 + (i - 1) * kHour);
    EXPECT_EQ(all[i].value, Value(static_cast<double>(i - 1)));
  }
}

TYPED_TEST(TimeSeriesStoreTest, AllValueKindsRoundTrip) {
  const std::vector<Value> values = {
      Value(21.5),
      Value(-0.001),
      Value(42.0),
      Value(-123456789.0),
      Value(1e300),
      Value(9007199254740993.0),
      Value(true),
      Value(false),
      Value(std::string("héllo, wörld ✓")),
      Value(std::string()),
      Value(std::string("with\0nul", 8)),
      Value(JsonText{R"({"a":[1,2,{"b":null}]})"}),
      Value(JsonText{"[]"}),
  };
  std::vector<Point> points;
  for (std::size_t i = 0; i < values.size(); ++i)
    points.push_back(pt(kT0 + static_cast<std::int64_t>(i), "v", values[i]));
  this->write(points);
  auto all = readAll(this->store(), this->tenant_, this->device_, "v");
  ASSERT_EQ(all.size(), values.size());
  for (std::size_t i = 0; i < values.size(); ++i) {
    EXPECT_EQ(all[i].value, values[i]) << "index " << i;
    EXPECT_EQ(all[i].value.index(), values[i].index()) << "index " << i;
  }
  // Each kind also survives as a latest value.
  for (std::size_t i = 0; i < values.size(); ++i) {
    const std::string key = "latest" + std::to_string(i);
    this->write({pt(kT0, key, values[i])});
    auto l = this->store().latest(this->tenant_, this->device_, {key});
    ASSERT_TRUE(l);
    ASSERT_EQ(l->size(), 1u);
    EXPECT_EQ((*l)[0].second.value, values[i]) << "index " << i;
  }
}

TYPED_TEST(TimeSeriesStoreTest, EmptyBatchIsAccepted) {
  this->write({});
  auto keys = this->store().keys(this->tenant_, this->device_);
  ASSERT_TRUE(keys);
  EXPECT_TRUE(keys->empty());
}

TYPED_TEST(TimeSeriesStoreTest, KeysListsEverySeriesOfTheDevice) {
  auto none = this->store().keys(this->tenant_, this->device_);
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());

  this->write({pt(kT0, "temp", 1.0), pt(kT0, "hum", 2.0), pt(kT0 + 1, "temp", 3.0)});
  this->write({pt(kT0, "état/ü", true), pt(kT0, "a/b", std::string("x"))});
  DeviceId other(newUuid());
  this->write({pt(kT0, "other_only", 1.0)}, &other);

  auto keys = this->store().keys(this->tenant_, this->device_);
  ASSERT_TRUE(keys);
  std::vector<std::string> got = *keys;
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, (std::vector<std::string>{"a/b", "hum", "temp", "état/ü"}));
}

TYPED_TEST(TimeSeriesStoreTest, LatestAllAndSelectedKeys) {
  this->write({pt(kT0, "temp", 20.0), pt(kT0 + 1000, "temp", 21.0), pt(kT0 + 500, "hum", 40.0),
               pt(kT0 + 7, "mode", std::string("eco")), pt(kT0 + 9, "cfg", JsonText{R"({"x":1})"})});
  this->write({pt(kT0 + 2000, "hum", 41.0)});

  auto all = this->store().latest(this->tenant_, this->device_, {});
  ASSERT_TRUE(all);
  std::map<std::string, TimedValue> by_key(all->begin(), all->end());
  ASSERT_EQ(by_key.size(), 4u);
  EXPECT_EQ(by_key["temp"].ts, kT0 + 1000);
  EXPECT_EQ(by_key["temp"].value, Value(21.0));
  EXPECT_EQ(by_key["hum"].ts, kT0 + 2000);
  EXPECT_EQ(by_key["hum"].value, Value(41.0));
  EXPECT_EQ(by_key["mode"].value, Value(std::string("eco")));
  EXPECT_EQ(by_key["cfg"].value, Value(JsonText{R"({"x":1})"}));

  // Selected keys; unknown keys are absent.
  auto some = this->store().latest(this->tenant_, this->device_, {"hum", "unknown", "mode"});
  ASSERT_TRUE(some);
  std::map<std::string, TimedValue> sel(some->begin(), some->end());
  ASSERT_EQ(sel.size(), 2u);
  EXPECT_EQ(sel["hum"].value, Value(41.0));
  EXPECT_EQ(sel["mode"].ts, kT0 + 7);
  EXPECT_EQ(sel.count("unknown"), 0u);

  auto empty = this->store().latest(this->tenant_, DeviceId(newUuid()), {});
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->empty());
}

TYPED_TEST(TimeSeriesStoreTest, LatestPicksMaxTimestampEvenIfWrittenEarlier) {
  this->write({pt(kT0 + 100, "k", 1.0)});
  this->write({pt(kT0 + 50, "k", 2.0)});                          // older point written later
  this->write({pt(kT0 + 10, "k", 3.0), pt(kT0 + 99, "k", 4.0)});  // a whole older batch
  auto l = this->store().latest(this->tenant_, this->device_, {"k"});
  ASSERT_TRUE(l);
  ASSERT_EQ(l->size(), 1u);
  EXPECT_EQ((*l)[0].first, "k");
  EXPECT_EQ((*l)[0].second.ts, kT0 + 100);
  EXPECT_EQ((*l)[0].second.value, Value(1.0));

  // Within one batch the newest timestamp wins whatever its position.
  this->write({pt(kT0 + 300, "j", 3.0), pt(kT0 + 200, "j", 2.0)});
  auto j = this->store().latest(this->tenant_, this->device_, {"j"});
  ASSERT_TRUE(j);
  ASSERT_EQ(j->size(), 1u);
  EXPECT_EQ((*j)[0].second.ts, kT0 + 300);
  EXPECT_EQ((*j)[0].second.value, Value(3.0));

  // Rewriting the latest timestamp replaces the value (last write wins).
  this->write({pt(kT0 + 300, "j", 30.0)});
  j = this->store().latest(this->tenant_, this->device_, {"j"});
  ASSERT_TRUE(j);
  EXPECT_EQ((*j)[0].second.value, Value(30.0));

  // ... and it survives a reopen.
  this->reopen();
  auto after = this->store().latest(this->tenant_, this->device_, {});
  ASSERT_TRUE(after);
  std::map<std::string, TimedValue> by_key(after->begin(), after->end());
  EXPECT_EQ(by_key["k"].ts, kT0 + 100);
  EXPECT_EQ(by_key["j"].value, Value(30.0));
}

TYPED_TEST(TimeSeriesStoreTest, AggregateOverRawIntervalIsExact) {
  this->write({pt(kT0 + 0, "k", 1.0), pt(kT0 + 10'000, "k", 2.0), pt(kT0 + 20'000, "k", true),
               pt(kT0 + 29'999, "k", 4.0), pt(kT0 + 30'000, "k", 10.0), pt(kT0 + 59'000, "k", -5.0),
               pt(kT0 + 60'000, "k", 7.0), pt(kT0 + 95'000, "k", 0.5)});
  struct Want {
    AggFn fn;
    std::vector<double> values;  // per bucket T0, T0+30s, T0+60s
  };
  const Want wants[] = {
      {AggFn::kAvg, {2.0, 2.5, 7.0}},   {AggFn::kMin, {1.0, -5.0, 7.0}},  {AggFn::kMax, {4.0, 10.0, 7.0}},
      {AggFn::kSum, {8.0, 5.0, 7.0}},   {AggFn::kCount, {4.0, 2.0, 1.0}}, {AggFn::kFirst, {1.0, 10.0, 7.0}},
      {AggFn::kLast, {4.0, -5.0, 7.0}},
  };
  for (const auto& w : wants) {
    auto got = agg(this->store(), this->tenant_, this->device_, "k", kT0, kT0 + 90'000, 30'000, w.fn);
    ASSERT_EQ(got.size(), 3u) << fnName(w.fn);
    for (int i = 0; i < 3; ++i) {
      EXPECT_EQ(got[i].ts, kT0 + i * 30'000) << fnName(w.fn);
      EXPECT_EQ(got[i].value, w.values[i]) << fnName(w.fn) << " bucket " << i;
    }
  }
  // Range cut inside the first bucket; empty buckets are omitted.
  auto part =
      agg(this->store(), this->tenant_, this->device_, "k", kT0 + 10'000, kT0 + 2 * kMinute, 30'000, AggFn::kSum);
  ASSERT_EQ(part.size(), 4u);
  EXPECT_EQ(part[0].ts, kT0);
  EXPECT_EQ(part[0].value, 7.0);  // 2 + 1 + 4
  EXPECT_EQ(part[3].ts, kT0 + 90'000);
  EXPECT_EQ(part[3].value, 0.5);
  auto gap = agg(this->store(), this->tenant_, this->device_, "k", kT0, kT0 + kHour, 10'000, AggFn::kCount);
  EXPECT_EQ(gap.size(), 7u);  // buckets 0,10,20,30,50,60,90 s
}

TYPED_TEST(TimeSeriesStoreTest, AggregateMinuteAndHourIntervalsExact) {
  this->write({pt(kT0 + 5'000, "k", 1.0), pt(kT0 + 65'000, "k", 2.0), pt(kT0 + 70'000, "k", 3.0),
               pt(kT0 + kHour + 1, "k", 10.0), pt(kT0 + 2 * kHour - 1, "k", 20.0)});
  auto per_min = agg(this->store(), this->tenant_, this->device_, "k", kT0, kT0 + 3 * kHour, kMinute, AggFn::kSum);
  ASSERT_EQ(per_min.size(), 4u);
  EXPECT_EQ(per_min[0].ts, kT0);
  EXPECT_EQ(per_min[0].value, 1.0);
  EXPECT_EQ(per_min[1].ts, kT0 + kMinute);
  EXPECT_EQ(per_min[1].value, 5.0);
  EXPECT_EQ(per_min[2].ts, kT0 + kHour);
  EXPECT_EQ(per_min[3].ts, kT0 + 2 * kHour - kMinute);

  auto per_hour = agg(this->store(), this->tenant_, this->device_, "k", kT0, kT0 + 3 * kHour, kHour, AggFn::kAvg);
  ASSERT_EQ(per_hour.size(), 2u);
  EXPECT_EQ(per_hour[0].ts, kT0);
  EXPECT_EQ(per_hour[0].value, 2.0);
  EXPECT_EQ(per_hour[1].ts, kT0 + kHour);
  EXPECT_EQ(per_hour[1].value, 15.0);

  auto first = agg(this->store(), this->tenant_, this->device_, "k", kT0, kT0 + 3 * kHour, 2 * kHour, AggFn::kFirst);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].value, 1.0);
  auto last = agg(this->store(), this->tenant_, this->device_, "k", kT0, kT0 + 3 * kHour, 2 * kHour, AggFn::kLast);
  ASSERT_EQ(last.size(), 1u);
  EXPECT_EQ(last[0].value, 20.0);
  // Unaligned range cutting minutes and hours.
  auto cut =
      agg(this->store(), this->tenant_, this->device_, "k", kT0 + 66'000, kT0 + 2 * kHour - 1, kHour, AggFn::kCount);
  ASSERT_EQ(cut.size(), 2u);
  EXPECT_EQ(cut[0].value, 1.0);  // only the point at 70 s
  EXPECT_EQ(cut[1].value, 1.0);  // kT0+2h-1 is excluded
}

TYPED_TEST(TimeSeriesStoreTest, AggregateMatchesBruteForceOverRandomData) {
  std::mt19937_64 rng(20240611);
  Series model;
  const std::int64_t t0 = kT0 - 7 * kMinute - 1234;  // data starts mid-minute, mid-hour
  const std::int64_t span = 5 * kHour + 13 * kMinute;
  writeRandom(this->store(), this->tenant_, this->device_, "k", model, rng, 15000, t0, span);
  // Straight after the writes (rollups settled on demand)...
  checkAgainstModel(this->store(), this->tenant_, this->device_, "k", model, t0, span, rng);
  // ... after a flush ...
  ASSERT_TRUE(this->store().flush());
  checkAgainstModel(this->store(), this->tenant_, this->device_, "k", model, t0, span, rng);
  // ... and after overwriting many points (duplicates of existing timestamps, out of order).
  writeRandom(this->store(), this->tenant_, this->device_, "k", model, rng, 5000, t0 + kHour, kHour);
  checkAgainstModel(this->store(), this->tenant_, this->device_, "k", model, t0, span, rng);
  // Raw points equal the model too.
  auto raw = readAll(this->store(), this->tenant_, this->device_, "k");
  ASSERT_EQ(raw.size(), model.size());
  auto it = model.begin();
  for (const auto& tv : raw) {
    ASSERT_EQ(tv.ts, it->first);
    ASSERT_EQ(tv.value, it->second);
    ++it;
  }
}

TYPED_TEST(TimeSeriesStoreTest, RollupsAreCorrectAfterReopen) {
  std::mt19937_64 rng(77);
  Series model;
  const std::int64_t t0 = kT0 + 29'000;
  const std::int64_t span = 3 * kHour;
  writeRandom(this->store(), this->tenant_, this->device_, "k", model, rng, 8000, t0, span);
  this->reopen();
  checkAgainstModel(this->store(), this->tenant_, this->device_, "k", model, t0, span, rng);
  // Overwrite after the rollups exist, then reopen before any query.
  writeRandom(this->store(), this->tenant_, this->device_, "k", model, rng, 3000, t0, span);
  this->reopen();
  checkAgainstModel(this->store(), this->tenant_, this->device_, "k", model, t0, span, rng);
}

TYPED_TEST(TimeSeriesStoreTest, AggregateEdgeCases) {
  this->write({pt(kT0, "k", 1.0), pt(kT0 + 1, "s", std::string("x"))});
  auto empty =
      this->store().aggregate(this->tenant_, this->device_, "k", AggQuery{kT0 + 10, kT0 + 10, kMinute, AggFn::kSum});
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->empty());
  auto inverted =
      this->store().aggregate(this->tenant_, this->device_, "k", AggQuery{kT0 + 10, kT0, kMinute, AggFn::kSum});
  ASSERT_TRUE(inverted);
  EXPECT_TRUE(inverted->empty());
  auto unknown =
      this->store().aggregate(this->tenant_, this->device_, "nope", AggQuery{kT0, kT0 + kHour, kMinute, AggFn::kAvg});
  ASSERT_TRUE(unknown);
  EXPECT_TRUE(unknown->empty());
  for (std::int64_t bad : {std::int64_t{0}, std::int64_t{-60000}}) {
    auto r = this->store().aggregate(this->tenant_, this->device_, "k", AggQuery{kT0, kT0 + kHour, bad, AggFn::kAvg});
    ASSERT_FALSE(r) << "interval " << bad;
    EXPECT_EQ(r.error().code, Code::kInvalidArgument);
  }
  // A 1 ms interval works (one bucket per point).
  auto fine = agg(this->store(), this->tenant_, this->device_, "k", kT0 - 5, kT0 + 5, 1, AggFn::kCount);
  ASSERT_EQ(fine.size(), 1u);
  EXPECT_EQ(fine[0].ts, kT0);
}

TYPED_TEST(TimeSeriesStoreTest, TimestampsAroundTheEpoch) {
  // The store's contract is any int64 millisecond timestamp; codecs only produce >= 0, but
  // bucket arithmetic must floor (not truncate) below zero.
  std::mt19937_64 rng(5);
  Series model;
  const std::int64_t t0 = -2 * kHour - 7'777;
  const std::int64_t span = 4 * kHour;
  writeRandom(this->store(), this->tenant_, this->device_, "k", model, rng, 4000, t0, span);
  checkAgainstModel(this->store(), this->tenant_, this->device_, "k", model, t0, span, rng);
}

TYPED_TEST(TimeSeriesStoreTest, ExtremeQueryRanges) {
  Series model;
  std::vector<Point> points = {pt(kT0, "k", 1.0), pt(kT0 + kHour + 5, "k", 2.0), pt(kT0 + kDay, "k", 4.0)};
  applyToModel(model, points);
  this->write(points);
  constexpr std::int64_t kMin = std::numeric_limits<std::int64_t>::min();
  constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
  EXPECT_EQ(readAll(this->store(), this->tenant_, this->device_, "k", kMin, kMax).size(), 3u);
  for (auto [from, to] :
       {std::pair{kMin, kMax}, std::pair{kMin, kT0 + kDay + 1}, std::pair{kT0, kMax}, std::pair{kMin + 1, kMax - 1}}) {
    for (std::int64_t interval : {30 * kSecond, kMinute, kHour, kDay}) {
      AggQuery q{from, to, interval, AggFn::kSum};
      auto got = this->store().aggregate(this->tenant_, this->device_, "k", q);
      ASSERT_TRUE(got) << got.error().message;
      EXPECT_TRUE(sameAggregates(*got, bruteAggregate(model, q)))
          << "from=" << from << " to=" << to << " interval=" << interval;
    }
  }
}

TYPED_TEST(TimeSeriesStoreTest, TenantIsolation) {
  TenantId other_tenant(newUuid());
  // Same device id and key under two tenants.
  this->write({pt(kT0, "temp", 1.0), pt(kT0 + 1, "only_a", 1.0)});
  this->write({pt(kT0, "temp", 2.0), pt(kT0 + 5, "temp", 3.0), pt(kT0, "only_b", 9.0)}, &this->device_, &other_tenant);

  auto a = readAll(this->store(), this->tenant_, this->device_, "temp");
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].value, Value(1.0));
  auto b = readAll(this->store(), other_tenant, this->device_, "temp");
  ASSERT_EQ(b.size(), 2u);

  auto ka = this->store().keys(this->tenant_, this->device_);
  ASSERT_TRUE(ka);
  std::sort(ka->begin(), ka->end());
  EXPECT_EQ(*ka, (std::vector<std::string>{"only_a", "temp"}));
  auto kb = this->store().keys(other_tenant, this->device_);
  ASSERT_TRUE(kb);
  std::sort(kb->begin(), kb->end());
  EXPECT_EQ(*kb, (std::vector<std::string>{"only_b", "temp"}));

  auto la = this->store().latest(this->tenant_, this->device_, {"temp", "only_b"});
  ASSERT_TRUE(la);
  ASSERT_EQ(la->size(), 1u);
  EXPECT_EQ((*la)[0].second.value, Value(1.0));

  auto sa = agg(this->store(), this->tenant_, this->device_, "temp", kT0, kT0 + kHour, kHour, AggFn::kSum);
  ASSERT_EQ(sa.size(), 1u);
  EXPECT_EQ(sa[0].value, 1.0);
  auto sb = agg(this->store(), other_tenant, this->device_, "temp", kT0, kT0 + kHour, kHour, AggFn::kSum);
  ASSERT_EQ(sb.size(), 1u);
  EXPECT_EQ(sb[0].value, 5.0);

  // Deleting one tenant's device or the tenant leaves the other alone.
  ASSERT_TRUE(this->store().deleteDevice(other_tenant, this->device_));
  EXPECT_EQ(readAll(this->store(), this->tenant_, this->device_, "temp").size(), 1u);
  EXPECT_TRUE(readAll(this->store(), other_tenant, this->device_, "temp").empty());
  // A late write to the deleted device is refused; another device of that tenant is fine.
  EXPECT_FALSE(this->store().write(other_tenant, this->device_, std::vector<Point>{pt(kT0, "temp", 2.0)}));
  DeviceId again(newUuid());
  this->write({pt(kT0, "temp", 2.0)}, &again, &other_tenant);
  ASSERT_TRUE(this->store().deleteTenant(this->tenant_));
  EXPECT_TRUE(readAll(this->store(), this->tenant_, this->device_, "temp").empty());
  EXPECT_EQ(readAll(this->store(), other_tenant, again, "temp").size(), 1u);
  EXPECT_FALSE(this->store().write(this->tenant_, DeviceId(newUuid()), std::vector<Point>{pt(kT0, "temp", 1.0)}))
      << "a deleted tenant takes no late writes";
}

TYPED_TEST(TimeSeriesStoreTest, InvalidIdsAreErrorsNotCrashes) {
  const std::vector<std::string> bad_ids = {"",
                                            "not-a-uuid",
                                            "00000000-0000-0000-0000-00000000000",
                                            "00000000-0000-0000-0000-0000000000000",
                                            "0000000000000000000000000000000000000",
                                            "g0000000-0000-0000-0000-000000000000",
                                            "00000000_0000_0000_0000_000000000000",
                                            std::string(36, '\0'),
                                            "../../../../../../../../etc/passwd0000"};
  const TenantId good_tenant = this->tenant_;
  const DeviceId good_device = this->device_;
  std::vector<Point> points = {pt(kT0, "k", 1.0)};
  for (const auto& bad : bad_ids) {
    SCOPED_TRACE("id '" + bad + "'");
    for (int which = 0; which < 2; ++which) {
      TenantId t = which == 0 ? TenantId(bad) : good_tenant;
      DeviceId d = which == 1 ? DeviceId(bad) : good_device;
      EXPECT_FALSE(this->store().write(t, d, points));
      EXPECT_FALSE(this->store().keys(t, d));
      EXPECT_FALSE(this->store().latest(t, d, {}));
      EXPECT_FALSE(this->store().latest(t, d, {"k"}));
      EXPECT_FALSE(this->store().readRaw(t, d, "k", RawQuery{kT0, kT0 + 1, 10}));
      EXPECT_FALSE(this->store().aggregate(t, d, "k", AggQuery{kT0, kT0 + kHour, kMinute, AggFn::kAvg}));
      EXPECT_FALSE(this->store().deleteDevice(t, d));
    }
    EXPECT_FALSE(this->store().deleteTenant(TenantId(bad)));
    EXPECT_FALSE(this->store().applyRetention(TenantId(bad), kT0));
  }
  // Nothing was written by the failed calls.
  auto keys = this->store().keys(good_tenant, good_device);
  ASSERT_TRUE(keys);
  EXPECT_TRUE(keys->empty());
  // Write errors carry invalid_argument.
  auto st = this->store().write(TenantId("nope"), good_device, points);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, Code::kInvalidArgument);
}

TYPED_TEST(TimeSeriesStoreTest, DeleteDeviceRemovesAllItsData) {
  DeviceId other(newUuid());
  this->write({pt(kT0, "a", 1.0), pt(kT0 + kHour, "b", 2.0)});
  this->write({pt(kT0, "a", 5.0)}, &other);
  ASSERT_TRUE(this->store().flush());  // rollups exist before the delete

  ASSERT_TRUE(this->store().deleteDevice(this->tenant_, this->device_));
  EXPECT_TRUE(readAll(this->store(), this->tenant_, this->device_, "a").empty());
  EXPECT_TRUE(readAll(this->store(), this->tenant_, this->device_, "b").empty());
  auto keys = this->store().keys(this->tenant_, this->device_);
  ASSERT_TRUE(keys);
  EXPECT_TRUE(keys->empty());
  auto latest = this->store().latest(this->tenant_, this->device_, {});
  ASSERT_TRUE(latest);
  EXPECT_TRUE(latest->empty());
  for (std::int64_t interval : {kMinute, kHour}) {
    EXPECT_TRUE(
        agg(this->store(), this->tenant_, this->device_, "a", kT0 - kDay, kT0 + kDay, interval, AggFn::kCount).empty());
  }
  // The other device is untouched.
  EXPECT_EQ(readAll(this->store(), this->tenant_, other, "a").size(), 1u);

  // A late write (authenticated before the delete, arriving after it) is refused.
  EXPECT_FALSE(this->store().write(this->tenant_, this->device_, std::vector<Point>{pt(kT0 + 10, "a", 7.0)}));
  EXPECT_TRUE(readAll(this->store(), this->tenant_, this->device_, "a").empty());

  // Deleting a device that has no data is fine, and survives reopen.
  EXPECT_TRUE(this->store().deleteDevice(this->tenant_, DeviceId(newUuid())));
  this->reopen();
  EXPECT_TRUE(readAll(this->store(), this->tenant_, this->device_, "a").empty());

  // Written again (tombstones do not outlive a restart), the device shows only the new data:
  // no stale rollups.
  this->write({pt(kT0 + 10, "a", 7.0)});
  for (std::int64_t interval : {kMinute, kHour, kDay}) {
    auto s = agg(this->store(), this->tenant_, this->device_, "a", kT0 - kDay, kT0 + kDay, interval, AggFn::kSum);
    ASSERT_EQ(s.size(), 1u) << interval;
    EXPECT_EQ(s[0].value, 7.0) << interval;
  }
  auto l = this->store().latest(this->tenant_, this->device_, {"a"});
  ASSERT_TRUE(l);
  ASSERT_EQ(l->size(), 1u);
  EXPECT_EQ((*l)[0].second.ts, kT0 + 10);
}

TYPED_TEST(TimeSeriesStoreTest, WriteManyCommitsSeveralDevicesAndTenants) {
  DeviceId d2(newUuid());
  TenantId other(newUuid());
  const std::vector<Point> a{pt(kT0, "a", 1.0), pt(kT0 + kHour, "a", 2.0), pt(kT0, "b", 3.0)};
  const std::vector<Point> b{pt(kT0 + 5, "a", 4.0), pt(kT0 + 5, "a", 5.0)};  // later one wins
  const std::vector<Point> c{pt(kT0, "a", 6.0)};
  const std::vector<Point> none;
  const TimeSeriesStore::DeviceBatch batches[] = {
      {&this->tenant_, &this->device_, a}, {&this->tenant_, &d2, b}, {&other, &this->device_, c}, {&other, &d2, none}};
  auto st = this->store().writeMany(batches);
  ASSERT_TRUE(st) << st.error().message;

  auto da = readAll(this->store(), this->tenant_, this->device_, "a");
  ASSERT_EQ(da.size(), 2u);
  EXPECT_EQ(da[1].value, Value(2.0));
  EXPECT_EQ(readAll(this->store(), this->tenant_, this->device_, "b").size(), 1u);
  auto d2a = readAll(this->store(), this->tenant_, d2, "a");
  ASSERT_EQ(d2a.size(), 1u);
  EXPECT_EQ(d2a[0].value, Value(5.0));
  auto oa = readAll(this->store(), other, this->device_, "a");
  ASSERT_EQ(oa.size(), 1u);
  EXPECT_EQ(oa[0].value, Value(6.0));
  EXPECT_TRUE(readAll(this->store(), other, d2, "a").empty());
  // Rollups and latest values are kept as for write().
  auto sum = agg(this->store(), this->tenant_, this->device_, "a", kT0 - kDay, kT0 + kDay, kDay, AggFn::kSum);
  ASSERT_EQ(sum.size(), 1u);
  EXPECT_EQ(sum[0].value, 3.0);
  auto l = this->store().latest(this->tenant_, d2, {});
  ASSERT_TRUE(l);
  ASSERT_EQ(l->size(), 1u);
  EXPECT_EQ((*l)[0].second.value, Value(5.0));
  // Nothing to write is fine.
  EXPECT_TRUE(this->store().writeMany({}));
}

TYPED_TEST(TimeSeriesStoreTest, WriteManySkipsDeletedDevicesAndRefusesBadIds) {
  DeviceId gone(newUuid());
  this->write({pt(kT0, "a", 1.0)}, &gone);
  ASSERT_TRUE(this->store().deleteDevice(this->tenant_, gone));
  const std::vector<Point> p{pt(kT0 + 1, "a", 2.0)};
  const TimeSeriesStore::DeviceBatch batches[] = {{&this->tenant_, &gone, p}, {&this->tenant_, &this->device_, p}};
  ASSERT_TRUE(this->store().writeMany(batches));
  EXPECT_TRUE(readAll(this->store(), this->tenant_, gone, "a").empty());  // not brought back
  EXPECT_EQ(readAll(this->store(), this->tenant_, this->device_, "a").size(), 1u);

  // One invalid id fails the call and writes nothing.
  DeviceId bad("not-a-uuid");
  DeviceId fresh(newUuid());
  const TimeSeriesStore::DeviceBatch mixed[] = {{&this->tenant_, &fresh, p}, {&this->tenant_, &bad, p}};
  auto st = this->store().writeMany(mixed);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, Code::kInvalidArgument);
  EXPECT_TRUE(readAll(this->store(), this->tenant_, fresh, "a").empty());
}

TYPED_TEST(TimeSeriesStoreTest, DeleteTenantRemovesAllItsDevices) {
  DeviceId d2(newUuid());
  TenantId other(newUuid());
  this->write({pt(kT0, "a", 1.0)});
  this->write({pt(kT0, "b", 2.0)}, &d2);
  this->write({pt(kT0, "a", 3.0)}, &this->device_, &other);
  ASSERT_TRUE(this->store().flush());

  ASSERT_TRUE(this->store().deleteTenant(this->tenant_));
  EXPECT_TRUE(readAll(this->store(), this->tenant_, this->device_, "a").empty());
  EXPECT_TRUE(readAll(this->store(), this->tenant_, d2, "b").empty());
  EXPECT_TRUE(this->store().keys(this->tenant_, d2)->empty());
  EXPECT_TRUE(this->store().latest(this->tenant_, this->device_, {})->empty());
  EXPECT_TRUE(agg(this->store(), this->tenant_, d2, "b", kT0 - kDay, kT0 + kDay, kHour, AggFn::kCount).empty());
  EXPECT_EQ(readAll(this->store(), other, this->device_, "a").size(), 1u);

  this->reopen();
  EXPECT_TRUE(readAll(this->store(), this->tenant_, this->device_, "a").empty());
  EXPECT_EQ(readAll(this->store(), other, this->device_, "a").size(), 1u);
}

TYPED_TEST(TimeSeriesStoreTest, ApplyRetentionDeletesOldPointsAndReclaimsDisk) {
  std::mt19937_64 rng(4242);
  std::uniform_real_distribution<double> noise(-1e6, 1e6);  // incompressible values
  const std::int64_t old_start = kT0 - 100 * kDay;
  const std::int64_t cutoff = kT0 - kDay + 12'345;  // not aligned to a minute
  constexpr int kOldPoints = 200'000;
  constexpr int kBatch = 10'000;

  std::vector<Point> batch;
  for (int i = 0; i < kOldPoints; i += kBatch) {
    batch.clear();
    for (int j = i; j < i + kBatch; ++j) batch.push_back(pt(old_start + j * kSecond, "k", noise(rng)));
    this->write(batch);
  }
  // A series with only old data, and points on both sides of the cutoff.
  this->write({pt(old_start, "old_only", 1.0), pt(old_start + kHour, "old_only", 2.0)});
  this->write({pt(cutoff - 1, "k", 100.0), pt(cutoff, "k", 200.0), pt(cutoff + 1, "k", 300.0)});
  std::vector<Point> recent;
  for (int i = 0; i < 1000; ++i) recent.push_back(pt(kT0 + i * kSecond, "k", static_cast<double>(i)));
  this->write(recent);
  // Another tenant's old data must survive this tenant's retention.
  TenantId other(newUuid());
  this->write({pt(old_start, "k", 1.0), pt(old_start + 1, "k", 2.0)}, &this->device_, &other);

  ASSERT_TRUE(this->store().flush());
  const auto before = this->store().stats().disk_bytes;
  ASSERT_GT(before, 1'000'000u) << "200k points should take well over 1 MB";

  auto r = this->store().applyRetention(this->tenant_, cutoff);
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_TRUE(this->store().flush());
  const auto after = this->store().stats().disk_bytes;
  this->RecordProperty("disk_bytes_before", std::to_string(before));
  this->RecordProperty("disk_bytes_after", std::to_string(after));
  EXPECT_LT(after * 4, before) << "before=" << before << " after=" << after;

  // Old range is empty, the point at the cutoff and later ones remain.
  EXPECT_TRUE(readAll(this->store(), this->tenant_, this->device_, "k", old_start, cutoff).empty());
  auto kept = readAll(this->store(), this->tenant_, this->device_, "k");
  ASSERT_EQ(kept.size(), 1002u);
  EXPECT_EQ(kept[0].ts, cutoff);
  EXPECT_EQ(kept[0].value, Value(200.0));
  EXPECT_EQ(kept[1].ts, cutoff + 1);
  EXPECT_EQ(kept.back().ts, kT0 + 999 * kSecond);

  // Aggregates agree: nothing before the cutoff, the cutoff's minute and hour are recomputed.
  EXPECT_TRUE(
      agg(this->store(), this->tenant_, this->device_, "k", old_start - kDay, cutoff, kHour, AggFn::kCount).empty());
  for (std::int64_t interval : {kMinute, kHour, kDay}) {
    auto cnt =
        agg(this->store(), this->tenant_, this->device_, "k", old_start - kDay, kT0 + kDay, interval, AggFn::kCount);
    double total = 0;
    for (const auto& a : cnt) total += a.value;
    EXPECT_EQ(total, 1002.0) << interval;
  }
  auto cut_bucket =
      agg(this->store(), this->tenant_, this->device_, "k", cutoff - kHour, cutoff + kHour, kHour, AggFn::kSum);
  ASSERT_EQ(cut_bucket.size(), 1u);
  EXPECT_EQ(cut_bucket[0].value, 500.0);

  // The series with only old data is gone entirely; the other tenant is untouched.
  auto keys = this->store().keys(this->tenant_, this->device_);
  ASSERT_TRUE(keys);
  EXPECT_EQ(*keys, (std::vector<std::string>{"k"}));
  auto latest = this->store().latest(this->tenant_, this->device_, {"old_only", "k"});
  ASSERT_TRUE(latest);
  ASSERT_EQ(latest->size(), 1u);
  EXPECT_EQ((*latest)[0].first, "k");
  EXPECT_EQ(readAll(this->store(), other, this->device_, "k").size(), 2u);

  // Idempotent.
  ASSERT_TRUE(this->store().applyRetention(this->tenant_, cutoff));
  EXPECT_EQ(readAll(this->store(), this->tenant_, this->device_, "k").size(), 1002u);
}

TYPED_TEST(TimeSeriesStoreTest, DataSurvivesReopen) {
  this->write({pt(kT0, "a", 1.0), pt(kT0 + 1, "b", std::string("x"))});
  this->reopen();
  EXPECT_EQ(readAll(this->store(), this->tenant_, this->device_, "a").size(), 1u);
  auto keys = this->store().keys(this->tenant_, this->device_);
  ASSERT_TRUE(keys);
  EXPECT_EQ(keys->size(), 2u);
}

// ---------------------------------------------------------------------------------------------
// RocksDB-specific
// ---------------------------------------------------------------------------------------------

std::unique_ptr<RocksDbTimeSeriesStore> openRocks(const std::string& path, int rollup_interval_ms = 500) {
  RocksDbOptions o;
  o.path = path;
  o.block_cache_bytes = 8 << 20;
  o.rollup_interval_ms = rollup_interval_ms;
  auto s = RocksDbTimeSeriesStore::open(o);
  if (!s) {
    ADD_FAILURE() << "open failed: " << s.error().message;
    return nullptr;
  }
  return std::move(*s);
}

TEST(RocksDbTimeSeriesStore, HourlyAggregatesUseRollupsNotRawPoints) {
  TempDir dir;
  auto store = openRocks(dir.file("db"));
  ASSERT_NE(store, nullptr);
  TenantId t(newUuid());
  DeviceId d(newUuid());
  constexpr int kHours = 24;
  constexpr int kPoints = kHours * 3600;  // 1 Hz
  std::vector<Point> batch;
  for (int i = 0; i < kPoints; ++i) {
    batch.push_back(pt(kT0 + i * kSecond, "k", static_cast<double>(i % 100)));
    if (batch.size() == 5000) {
      ASSERT_TRUE(store->write(t, d, batch));
      batch.clear();
    }
  }
  ASSERT_TRUE(store->write(t, d, batch));
  ASSERT_TRUE(store->flush());

  const auto before = store->rawPointsReadForAggregates();
  auto aligned = agg(*store, t, d, "k", kT0, kT0 + kHours * kHour, kHour, AggFn::kAvg);
  ASSERT_EQ(aligned.size(), static_cast<std::size_t>(kHours));
  for (const auto& a : aligned) EXPECT_EQ(a.value, 49.5);  // each hour holds 36 full cycles of 0..99
  // An unaligned range reads raw points only at its two ragged edges.
  auto ragged = agg(*store, t, d, "k", kT0 + 30 * kSecond, kT0 + kHours * kHour - 30 * kSecond, kHour, AggFn::kCount);
  ASSERT_EQ(ragged.size(), static_cast<std::size_t>(kHours));
  EXPECT_EQ(ragged.front().value, 3600.0 - 30);
  EXPECT_EQ(ragged.back().value, 3600.0 - 30);
  const auto read = store->rawPointsReadForAggregates() - before;
  EXPECT_LT(read, kPoints / 100u) << "hourly aggregates read " << read << " raw points";

  // The counter does count raw reads: a 30 s interval has no rollup and reads every point.
  const auto before_raw = store->rawPointsReadForAggregates();
  auto raw = agg(*store, t, d, "k", kT0, kT0 + kHour, 30 * kSecond, AggFn::kCount);
  ASSERT_EQ(raw.size(), 120u);
  EXPECT_EQ(store->rawPointsReadForAggregates() - before_raw, 3600u);
}

TEST(RocksDbTimeSeriesStore, DirtyMarkersSurviveACrash) {
  TempDir dir;
  // No background rollup pass: every dirty marker is still pending when we "crash".
  auto store = openRocks(dir.file("db"), 3'600'000);
  ASSERT_NE(store, nullptr);
  TenantId t(newUuid());
  DeviceId d(newUuid());
  std::mt19937_64 rng(99);
  Series model;
  const std::int64_t t0 = kT0 - 3 * kMinute + 17;
  const std::int64_t span = 3 * kHour;
  writeRandom(*store, t, d, "k", model, rng, 6000, t0, span);
  ASSERT_GT(store->stats().pending_rollups, 0u);

  // Copy the directory of the running store: the same bytes a kill -9 would leave behind.
  fs::copy(dir.path() / "db", dir.path() / "crashed", fs::copy_options::recursive);
  store.reset();

  auto recovered = openRocks(dir.file("crashed"), 3'600'000);
  ASSERT_NE(recovered, nullptr);
  EXPECT_GT(recovered->stats().pending_rollups, 0u) << "dirty markers were not recovered";
  checkAgainstModel(*recovered, t, d, "k", model, t0, span, rng);
  EXPECT_EQ(recovered->stats().pending_rollups, 0u) << "the queried series was settled";
}

TEST(RocksDbTimeSeriesStore, FlushSettlesEveryPendingRollup) {
  TempDir dir;
  auto store = openRocks(dir.file("db"), 3'600'000);
  ASSERT_NE(store, nullptr);
  TenantId t(newUuid());
  for (int dev = 0; dev < 3; ++dev) {
    DeviceId d(newUuid());
    std::vector<Point> points;
    for (int i = 0; i < 600; ++i) points.push_back(pt(kT0 + i * kSecond, "k" + std::to_string(i % 2), 1.0));
    ASSERT_TRUE(store->write(t, d, points));
  }
  EXPECT_EQ(store->stats().pending_rollups, 3u * 2u * 1u);  // devices x keys x hours (10 min in one hour)
  ASSERT_TRUE(store->flush());
  EXPECT_EQ(store->stats().pending_rollups, 0u);
  EXPECT_GT(store->stats().disk_bytes, 0u);
}

TEST(RocksDbTimeSeriesStore, AggregatesSkipNonNumericValues) {
  TempDir dir;
  auto store = openRocks(dir.file("db"));
  ASSERT_NE(store, nullptr);
  TenantId t(newUuid());
  DeviceId d(newUuid());
  ASSERT_TRUE(store->write(
      t, d,
      std::vector<Point>{pt(kT0, "k", std::string("a")), pt(kT0 + 1, "k", 2.0), pt(kT0 + 2, "k", JsonText{"{}"}),
                         pt(kT0 + 3, "k", true), pt(kT0 + 4, "k", std::string("z"))}));
  for (std::int64_t interval : {10 * kSecond, kMinute, kHour}) {
    auto cnt = agg(*store, t, d, "k", kT0, kT0 + kHour, interval, AggFn::kCount);
    ASSERT_EQ(cnt.size(), 1u);
    EXPECT_EQ(cnt[0].value, 2.0);
    auto first = agg(*store, t, d, "k", kT0, kT0 + kHour, interval, AggFn::kFirst);
    EXPECT_EQ(first[0].value, 2.0);
    auto last = agg(*store, t, d, "k", kT0, kT0 + kHour, interval, AggFn::kLast);
    EXPECT_EQ(last[0].value, 1.0);
  }
  // A series of strings only has no aggregate buckets.
  ASSERT_TRUE(store->write(t, d, std::vector<Point>{pt(kT0, "s", std::string("a"))}));
  EXPECT_TRUE(agg(*store, t, d, "s", kT0, kT0 + kHour, kMinute, AggFn::kCount).empty());
}

TEST(RocksDbTimeSeriesStore, OpenFailureIsAnError) {
  TempDir dir;
  // A regular file where the database directory should be.
  {
    std::FILE* f = std::fopen(dir.file("file").c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fclose(f);
  }
  RocksDbOptions o;
  o.path = dir.file("file");
  auto s = RocksDbTimeSeriesStore::open(o);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, Code::kUnavailable);
  EXPECT_FALSE(s.error().message.empty());

  // The same directory cannot be opened twice in one process (RocksDB's lock).
  auto first = openRocks(dir.file("db"));
  ASSERT_NE(first, nullptr);
  o.path = dir.file("db");
  auto second = RocksDbTimeSeriesStore::open(o);
  EXPECT_FALSE(second);
}

TEST(RocksDbTimeSeriesStore, MetricsAreRegistered) {
  TempDir dir;
  Metrics metrics;
  RocksDbOptions o;
  o.path = dir.file("db");
  o.metrics = &metrics;
  auto s = RocksDbTimeSeriesStore::open(o);
  ASSERT_TRUE(s);
  ASSERT_TRUE((*s)->write(TenantId(newUuid()), DeviceId(newUuid()), std::vector<Point>{pt(kT0, "k", 1.0)}));
  const std::string text = metrics.render();
  EXPECT_NE(text.find("sw_store_write_seconds_count 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("# TYPE sw_store_pending_rollups gauge"), std::string::npos) << text;
}

// ---------------------------------------------------------------------------------------------
// Value encoding (src/storage/value.h)
// ---------------------------------------------------------------------------------------------

Value roundTrip(const Value& v, std::size_t* encoded_size = nullptr) {
  std::string bytes;
  encodeValue(v, bytes);
  if (encoded_size) *encoded_size = bytes.size();
  Value out = std::string("sentinel");
  EXPECT_TRUE(decodeValue(bytes.data(), bytes.size(), out));
  return out;
}

TEST(ValueEncoding, NumbersRoundTripExactly) {
  const double values[] = {0.0,
                           1.0,
                           -1.0,
                           63.0,
                           64.0,
                           -64.0,
                           -65.0,
                           127.0,
                           128.0,
                           300.0,
                           -300.0,
                           42.0,
                           -123456789.0,
                           2147483648.0,
                           -2147483649.0,
                           9007199254740992.0,
                           -9007199254740992.0,
                           8999999999999999.0,
                           -8999999999999999.0,
                           9e15,
                           -9e15,
                           1e16,
                           1e300,
                           -1e300,
                           21.5,
                           -21.5,
                           0.1,
                           1.0 / 3.0,
                           5e-324,
                           std::numeric_limits<double>::min(),
                           std::numeric_limits<double>::max(),
                           std::numeric_limits<double>::lowest(),
                           std::numeric_limits<double>::infinity(),
                           -std::numeric_limits<double>::infinity()};
  for (double v : values) {
    Value out = roundTrip(Value(v));
    ASSERT_TRUE(std::holds_alternative<double>(out)) << v;
    EXPECT_EQ(std::get<double>(out), v);
    EXPECT_EQ(std::signbit(std::get<double>(out)), std::signbit(v)) << v;
  }
}

TEST(ValueEncoding, NegativeZeroKeepsItsSign) {
  Value out = roundTrip(Value(-0.0));
  ASSERT_TRUE(std::holds_alternative<double>(out));
  EXPECT_EQ(std::get<double>(out), 0.0);
  EXPECT_TRUE(std::signbit(std::get<double>(out)));
  Value pos = roundTrip(Value(0.0));
  EXPECT_FALSE(std::signbit(std::get<double>(pos)));
}

TEST(ValueEncoding, NaNStaysNaN) {
  for (double nan : {std::numeric_limits<double>::quiet_NaN(), -std::numeric_limits<double>::quiet_NaN()}) {
    Value out = roundTrip(Value(nan));
    ASSERT_TRUE(std::holds_alternative<double>(out));
    EXPECT_TRUE(std::isnan(std::get<double>(out)));
  }
}

TEST(ValueEncoding, SmallIntegersAreCompact) {
  std::size_t size = 0;
  roundTrip(Value(1.0), &size);
  EXPECT_LE(size, 2u);
  roundTrip(Value(-1000.0), &size);
  EXPECT_LE(size, 3u);
  roundTrip(Value(1'000'000.0), &size);
  EXPECT_LE(size, 4u);
  roundTrip(Value(21.5), &size);
  EXPECT_EQ(size, 9u);  // tag + IEEE double
}

TEST(ValueEncoding, OtherKindsRoundTrip) {
  const std::vector<Value> values = {Value(true),
                                     Value(false),
                                     Value(std::string()),
                                     Value(std::string("abc")),
                                     Value(std::string("\0\x01\xff", 3)),
                                     Value(std::string(100000, 'x')),
                                     Value(JsonText{}),
                                     Value(JsonText{R"({"a":[1,2]})"})};
  for (const auto& v : values) {
    Value out = roundTrip(v);
    EXPECT_EQ(out, v);
    EXPECT_EQ(out.index(), v.index());
  }
}

TEST(ValueEncoding, GarbageIsRejected) {
  auto decodes = [](const std::string& bytes) {
    Value out;
    return decodeValue(bytes.data(), bytes.size(), out);
  };
  EXPECT_FALSE(decodes(""));
  EXPECT_FALSE(decodes(std::string(1, '\x06')));  // unknown tag
  EXPECT_FALSE(decodes(std::string(1, '\xff')));
  EXPECT_FALSE(decodes(std::string("\x00\x01\x02", 3)));                          // double with 2 bytes
  EXPECT_FALSE(decodes(std::string(10, '\0')));                                   // double with 9 bytes
  EXPECT_FALSE(decodes(std::string(1, '\x01')));                                  // integer without varint
  EXPECT_FALSE(decodes(std::string("\x01\x80", 2)));                              // unterminated varint
  EXPECT_FALSE(decodes(std::string("\x01\x02\x03", 3)));                          // trailing bytes after the varint
  EXPECT_FALSE(decodes(std::string("\x01") + std::string(11, '\x80') + "\x01"));  // varint too long
  EXPECT_FALSE(decodes(std::string("\x02\x00", 2)));                              // false with payload
  EXPECT_FALSE(decodes(std::string("\x03x", 2)));                                 // true with payload
  // Valid minimal forms for contrast.
  EXPECT_TRUE(decodes(std::string("\x02", 1)));
  EXPECT_TRUE(decodes(std::string("\x01\x00", 2)));
  EXPECT_TRUE(decodes(std::string("\x04", 1)));
  // Random bytes never crash.
  std::mt19937_64 rng(1);
  for (int i = 0; i < 20000; ++i) {
    std::string bytes(rng() % 16, '\0');
    for (auto& c : bytes) c = static_cast<char>(rng());
    Value out;
    (void)decodeValue(bytes.data(), bytes.size(), out);
  }
}

TEST(ValueEncoding, NumericValue) {
  double d = -1;
  EXPECT_TRUE(numericValue(Value(2.5), d));
  EXPECT_EQ(d, 2.5);
  EXPECT_TRUE(numericValue(Value(true), d));
  EXPECT_EQ(d, 1.0);
  EXPECT_TRUE(numericValue(Value(false), d));
  EXPECT_EQ(d, 0.0);
  EXPECT_FALSE(numericValue(Value(std::string("3")), d));
  EXPECT_FALSE(numericValue(Value(JsonText{"3"}), d));
}

}  // namespace
}  // namespace sw::storage
