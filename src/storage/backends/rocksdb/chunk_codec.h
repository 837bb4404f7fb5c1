#pragma once
// Compressed chunk of one series' points (the embedded store keeps one chunk per series and
// hour). Timestamps: first absolute, then delta-of-delta, zig-zag varints (regular sampling
// costs 1 byte). Numbers: scaled to the fewest decimals that represent them exactly (up to 6)
// and stored as the difference to the previous scaled value, so a sensor reading with one
// decimal that moves a little costs 1 byte. Other values: a kind tag and their bytes.
// Points in a chunk are sorted by timestamp and unique (last write wins when merging).
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "storage/value.h"

namespace sw::storage::rocks {

// One decoded point, borrowing its text from the chunk (valid until the chunk goes away).
struct PointView {
  enum class Kind { kNumber, kBool, kString, kJson };
  std::int64_t ts = 0;
  Kind kind = Kind::kNumber;
  double number = 0;      // kNumber; kBool as 0/1
  std::string_view text;  // kString, kJson
  Value toValue() const;
  // Counted by aggregates: numbers, and booleans as 0/1.
  bool numeric() const { return kind == Kind::kNumber || kind == Kind::kBool; }
};

// Decodes a chunk point by point without allocating (the hot path of every query).
class ChunkReader {
 public:
  explicit ChunkReader(std::string_view chunk);
  // The next point; false at the end or on bytes that are not a chunk (then corrupt()).
  bool next(PointView& p);
  bool corrupt() const { return corrupt_; }
  std::uint64_t size() const { return n_; }

 private:
  const char* p_;
  const char* end_;
  std::uint64_t n_ = 0, i_ = 0;
  std::int64_t ts_ = 0, delta_ = 0, scaled_ = 0;
  int scale_ = 0;
  bool corrupt_ = false;
};

// points must be sorted by ts with unique timestamps.
void encodeChunk(const std::vector<TimedValue>& points, std::string& out);
// Appends the chunk's points to out; false (out unspecified) for bytes that are not a chunk.
bool decodeChunk(std::string_view chunk, std::vector<TimedValue>& out);

// Last-write-wins union: later inputs win on equal timestamps. Returns false if an input is
// not a valid chunk.
bool mergeChunks(const std::vector<std::string_view>& oldest_first, std::string& out);

}  // namespace sw::storage::rocks
