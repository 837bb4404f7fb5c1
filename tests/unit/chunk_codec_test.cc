// Chunk encoding of the embedded store: exact round trips, compactness of regular data,
// last-write-wins merging, and garbage bytes rejected without crashing.
#include "storage/backends/rocksdb/chunk_codec.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

namespace sw::storage::rocks {
namespace {

std::vector<TimedValue> roundTrip(const std::vector<TimedValue>& in) {
  std::string bytes;
  encodeChunk(in, bytes);
  std::vector<TimedValue> out;
  EXPECT_TRUE(decodeChunk(bytes, out));
  return out;
}

TEST(ChunkCodec, RoundTripsEveryValueKind) {
  std::vector<TimedValue> in = {
      {-5000, 1.5},
      {0, -0.0},
      {1, std::numeric_limits<double>::quiet_NaN()},
      {2, 1e300},
      {3, 0.1 + 0.2},
      {4, 123456.789012},
      {5, -42.0},
      {6, true},
      {7, false},
      {8, std::string("hello \0 world", 13)},
      {9, JsonText{R"({"a":[1,2]})"}},
      {10, std::numeric_limits<double>::infinity()},
      {1'700'000'000'000, 4503599627370496.0},
  };
  auto out = roundTrip(in);
  ASSERT_EQ(out.size(), in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    EXPECT_EQ(out[i].ts, in[i].ts) << i;
    if (const double* d = std::get_if<double>(&in[i].value)) {
      const double* o = std::get_if<double>(&out[i].value);
      ASSERT_NE(o, nullptr) << i;
      if (std::isnan(*d))
        EXPECT_TRUE(std::isnan(*o));
      else {
        EXPECT_EQ(*o, *d) << i;
        EXPECT_EQ(std::signbit(*o), std::signbit(*d)) << i;
      }
    } else {
      EXPECT_EQ(out[i].value, in[i].value) << i;
    }
  }
}

TEST(ChunkCodec, RegularSensorDataTakesAboutTwoBytesPerPoint) {
  std::mt19937 rng(1);
  std::vector<TimedValue> in;
  std::int64_t v = 200;  // tenths
  for (int i = 0; i < 3600; ++i) {
    v += static_cast<int>(rng() % 11) - 5;
    in.push_back({1'700'000'000'000 + i * 1000, static_cast<double>(v) / 10});
  }
  std::string bytes;
  encodeChunk(in, bytes);
  EXPECT_LE(bytes.size(), 2 * in.size() + 16);
  auto out = roundTrip(in);
  ASSERT_EQ(out.size(), in.size());
  for (std::size_t i = 0; i < in.size(); ++i) EXPECT_EQ(std::get<double>(out[i].value), std::get<double>(in[i].value));
}

TEST(ChunkCodec, MergeIsUnionWithLastWriteWins) {
  std::string a, b, c, merged;
  encodeChunk({{1, 1.0}, {2, 2.0}, {5, 5.0}}, a);
  encodeChunk({{2, 20.0}, {3, std::string("x")}}, b);
  encodeChunk({{0, true}, {5, 50.0}}, c);
  ASSERT_TRUE(mergeChunks({a, b, c}, merged));
  std::vector<TimedValue> out;
  ASSERT_TRUE(decodeChunk(merged, out));
  ASSERT_EQ(out.size(), 5u);
  EXPECT_EQ(out[0].ts, 0);
  EXPECT_EQ(out[0].value, Value(true));
  EXPECT_EQ(out[2].value, Value(20.0));
  EXPECT_EQ(out[3].value, Value(std::string("x")));
  EXPECT_EQ(out[4].value, Value(50.0));
}

TEST(ChunkCodec, GarbageIsRejected) {
  std::string good;
  encodeChunk({{1, 1.5}, {2, std::string("abc")}}, good);
  std::vector<TimedValue> out;
  for (std::size_t cut = 0; cut < good.size(); ++cut) {
    out.clear();
    EXPECT_FALSE(decodeChunk(std::string_view(good).substr(0, cut), out)) << cut;
  }
  out.clear();
  EXPECT_FALSE(decodeChunk(good + "x", out));
  std::mt19937 rng(7);
  for (int i = 0; i < 2000; ++i) {
    std::string junk(rng() % 64, '\0');
    for (auto& ch : junk) ch = static_cast<char>(rng());
    out.clear();
    (void)decodeChunk(junk, out);  // must not crash or overread (ASan build checks)
  }
  std::string merged;
  EXPECT_FALSE(mergeChunks({good, "\xff\xff\xff"}, merged));
}

}  // namespace
}  // namespace sw::storage::rocks
