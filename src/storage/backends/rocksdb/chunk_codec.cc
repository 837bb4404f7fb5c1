#include "storage/backends/rocksdb/chunk_codec.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "storage/varint.h"

namespace sw::storage::rocks {
namespace {

// Wrapping addition: corrupt input may overflow, which must not be undefined behaviour.
std::int64_t wrapAdd(std::int64_t a, std::int64_t b) {
  return static_cast<std::int64_t>(static_cast<std::uint64_t>(a) + static_cast<std::uint64_t>(b));
}

constexpr double kPow10[] = {1, 10, 100, 1e3, 1e4, 1e5, 1e6};
constexpr std::int64_t kMaxScaled = std::int64_t{1} << 52;

// True when v * 10^k is an integer that gives back exactly v.
bool atScale(double v, int k, std::int64_t& scaled) {
  double s = v * kPow10[k];
  if (!(std::fabs(s) < static_cast<double>(kMaxScaled))) return false;  // also NaN, inf
  double r = std::nearbyint(s);
  if (r / kPow10[k] != v) return false;
  scaled = static_cast<std::int64_t>(r);
  return true;
}

// The decimal scale for v: the current one if it represents v exactly (a reading of 20.0 in a
// series of tenths stays in tenths), else the smallest that does; -1 if none does.
int decimalScale(double v, int current, std::int64_t& scaled) {
  if (v == 0.0 && std::signbit(v)) return -1;
  if (atScale(v, current, scaled)) return current;
  for (int k = 0; k <= 6; ++k) {
    if (atScale(v, k, scaled)) return k;
  }
  return -1;
}

// Value header varint: low bit 0 = "number at the current scale", the rest the zig-zag delta to
// the previous scaled number; low bit 1 = the rest is a Kind, payload follows.
enum Kind : std::uint64_t { kScale = 0, kDouble = 1, kFalse = 2, kTrue = 3, kString = 4, kJson = 5 };

}  // namespace

namespace {

// Appends points one by one; the count prefix is written by finish().
class ChunkWriter {
 public:
  void add(const PointView& p) {
    if (count_ == 0) {
      putVarint(zigzag(p.ts), body_);
    } else {
      std::int64_t delta = p.ts - prev_ts_;
      putVarint(zigzag(delta - prev_delta_), body_);
      prev_delta_ = delta;
    }
    prev_ts_ = p.ts;
    ++count_;
    switch (p.kind) {
      case PointView::Kind::kNumber: addNumber(p.number); break;
      case PointView::Kind::kBool: putVarint((p.number != 0 ? kTrue : kFalse) << 1 | 1, body_); break;
      case PointView::Kind::kString:
      case PointView::Kind::kJson:
        putVarint((p.kind == PointView::Kind::kJson ? kJson : kString) << 1 | 1, body_);
        putVarint(p.text.size(), body_);
        body_.append(p.text);
        break;
    }
  }
  void finish(std::string& out) {
    putVarint(count_, out);
    out.append(body_);
  }

 private:
  void addNumber(double d) {
    std::int64_t scaled;
    int k = decimalScale(d, scale_, scaled);
    if (k < 0) {
      putVarint(kDouble << 1 | 1, body_);
      char buf[8];
      std::memcpy(buf, &d, 8);
      body_.append(buf, 8);
      return;
    }
    if (k != scale_) {
      putVarint(kScale << 1 | 1, body_);
      body_.push_back(static_cast<char>(k));
      scale_ = k;
      putVarint(zigzag(scaled), body_);  // absolute after a scale change
    } else {
      putVarint(zigzag(scaled - prev_scaled_) << 1, body_);
    }
    prev_scaled_ = scaled;
  }

  std::string body_;
  std::uint64_t count_ = 0;
  std::int64_t prev_ts_ = 0, prev_delta_ = 0, prev_scaled_ = 0;
  int scale_ = 0;
};

PointView viewOf(const TimedValue& tv) {
  PointView p;
  p.ts = tv.ts;
  if (const double* d = std::get_if<double>(&tv.value)) {
    p.kind = PointView::Kind::kNumber;
    p.number = *d;
  } else if (const bool* b = std::get_if<bool>(&tv.value)) {
    p.kind = PointView::Kind::kBool;
    p.number = *b ? 1 : 0;
  } else if (const std::string* s = std::get_if<std::string>(&tv.value)) {
    p.kind = PointView::Kind::kString;
    p.text = *s;
  } else {
    p.kind = PointView::Kind::kJson;
    p.text = std::get<JsonText>(tv.value).text;
  }
  return p;
}

}  // namespace

void encodeChunk(const std::vector<TimedValue>& points, std::string& out) {
  ChunkWriter w;
  for (const auto& p : points) w.add(viewOf(p));
  w.finish(out);
}

Value PointView::toValue() const {
  switch (kind) {
    case Kind::kNumber: return number;
    case Kind::kBool: return number != 0;
    case Kind::kString: return std::string(text);
    case Kind::kJson: return JsonText{std::string(text)};
  }
  return number;
}

ChunkReader::ChunkReader(std::string_view chunk) : p_(chunk.data()), end_(chunk.data() + chunk.size()) {
  // Every point takes at least 2 bytes, which bounds a corrupt count.
  if (!getVarint(p_, end_, n_) || n_ > chunk.size()) {
    corrupt_ = true;
    n_ = 0;
  }
}

bool ChunkReader::next(PointView& out) {
  if (corrupt_) return false;
  if (i_ == n_) {
    corrupt_ = p_ != end_;  // trailing bytes
    return false;
  }
  auto bad = [&] {
    corrupt_ = true;
    return false;
  };
  std::uint64_t z;
  if (!getVarint(p_, end_, z)) return bad();
  if (i_++ == 0) {
    ts_ = unzigzag(z);
  } else {
    delta_ = wrapAdd(delta_, unzigzag(z));
    ts_ = wrapAdd(ts_, delta_);
  }
  std::uint64_t h;
  if (!getVarint(p_, end_, h)) return bad();
  out.ts = ts_;
  out.text = {};
  if (!(h & 1)) {
    scaled_ = wrapAdd(scaled_, unzigzag(h >> 1));
    out.kind = PointView::Kind::kNumber;
    out.number = static_cast<double>(scaled_) / kPow10[scale_];
    return true;
  }
  switch (h >> 1) {
    case kScale: {
      if (p_ >= end_ || static_cast<std::uint8_t>(*p_) > 6) return bad();
      scale_ = *p_++;
      if (!getVarint(p_, end_, z)) return bad();
      scaled_ = unzigzag(z);
      out.kind = PointView::Kind::kNumber;
      out.number = static_cast<double>(scaled_) / kPow10[scale_];
      return true;
    }
    case kDouble: {
      if (end_ - p_ < 8) return bad();
      std::memcpy(&out.number, p_, 8);
      p_ += 8;
      out.kind = PointView::Kind::kNumber;
      return true;
    }
    case kFalse:
    case kTrue:
      out.kind = PointView::Kind::kBool;
      out.number = (h >> 1) == kTrue ? 1 : 0;
      return true;
    case kString:
    case kJson: {
      std::uint64_t len;
      if (!getVarint(p_, end_, len) || len > static_cast<std::uint64_t>(end_ - p_)) return bad();
      out.text = std::string_view(p_, len);
      p_ += len;
      out.kind = (h >> 1) == kJson ? PointView::Kind::kJson : PointView::Kind::kString;
      return true;
    }
    default: return bad();
  }
}

bool decodeChunk(std::string_view chunk, std::vector<TimedValue>& out) {
  ChunkReader reader(chunk);
  out.reserve(out.size() + reader.size());
  PointView p;
  while (reader.next(p)) out.push_back(TimedValue{p.ts, p.toValue()});
  return !reader.corrupt();
}

bool mergeChunks(const std::vector<std::string_view>& oldest_first, std::string& out) {
  // k-way merge of sorted chunks without materialising values. On equal timestamps the newest
  // chunk (highest index) wins and the others' points are skipped.
  struct Head {
    ChunkReader reader;
    PointView point;
    bool live;
  };
  std::vector<Head> heads;
  heads.reserve(oldest_first.size());
  for (auto c : oldest_first) {
    heads.push_back(Head{ChunkReader(c), {}, false});
    Head& h = heads.back();
    h.live = h.reader.next(h.point);
    if (h.reader.corrupt()) return false;
  }
  // Min-heap on (ts, newest first).
  auto later = [&](std::size_t a, std::size_t b) {
    if (heads[a].point.ts != heads[b].point.ts) return heads[a].point.ts > heads[b].point.ts;
    return a < b;
  };
  std::vector<std::size_t> heap;
  for (std::size_t i = 0; i < heads.size(); ++i) {
    if (heads[i].live) heap.push_back(i);
  }
  std::make_heap(heap.begin(), heap.end(), later);
  ChunkWriter w;
  auto advance = [&](std::size_t i) -> bool {
    Head& h = heads[i];
    h.live = h.reader.next(h.point);
    if (h.reader.corrupt()) return false;
    if (h.live) {
      heap.push_back(i);
      std::push_heap(heap.begin(), heap.end(), later);
    }
    return true;
  };
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), later);
    const std::size_t top = heap.back();
    heap.pop_back();
    const std::int64_t ts = heads[top].point.ts;
    w.add(heads[top].point);
    // Older points with the same timestamp are overwritten: drop them.
    std::vector<std::size_t> same;
    while (!heap.empty() && heads[heap.front()].point.ts == ts) {
      std::pop_heap(heap.begin(), heap.end(), later);
      same.push_back(heap.back());
      heap.pop_back();
    }
    // The writer copied the text; the reader of `top` may move on now.
    if (!advance(top)) return false;
    for (std::size_t i : same) {
      if (!advance(i)) return false;
    }
  }
  out.clear();
  w.finish(out);
  return true;
}

}  // namespace sw::storage::rocks
