#pragma once
// Internal, header-only: the byte format of detector checkpoints (Detector::save / load).
//
// Layout, all integers and doubles little-endian (doubles as their IEEE-754 bit pattern):
//   "SWDS" | u8 kind | u16 version | u64 fingerprint | body ... | u64 checksum
// - kind: the DetectorKind (static_cast<uint8_t>), so bytes of another kind are rejected.
// - version: the kind's own state-format version; bump it when the body layout changes.
// - fingerprint: paramsFingerprint(params, dims) of the instance that saved, so state learned
//   with other parameters (another window size...) is rejected instead of misread.
// - checksum: FNV-1a 64 of every byte before it (catches a damaged checkpoint file).
//
// Usage (save):
//   StateWriter w(out, DetectorKind::kZScore, /*version=*/1, fingerprint_);
//   w.f64(mean_); w.u64(count_); w.doubles(ring_);
//   w.finish();
// Usage (load): read into a FRESH copy and commit only on success, so a failed load leaves a
// fresh state:
//   StateReader r(in, DetectorKind::kZScore, 1, fingerprint_);
//   Impl fresh(params_);
//   if (!r.f64(fresh.mean_) || !r.u64(fresh.count_) || !r.doubles(fresh.ring_, cap, cap) ||
//       !r.finish()) { *this = Impl(params_); return false; }
//   *this = std::move(fresh); return true;
// Every reader call returns false (and latches the failure) on truncation or bad data; it
// never reads out of bounds and never allocates more than the caller-given maximum.
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "analytics/detectors/detector.h"

namespace sw::analytics::state_io {

inline constexpr std::string_view kMagic = "SWDS";

inline std::uint64_t fnv1a(std::string_view bytes, std::uint64_t h = 1469598103934665603ULL) {
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

// Stable hash of resolved params (names and exact values) and dims.
inline std::uint64_t paramsFingerprint(const Params& params, std::size_t dims = 1) {
  std::uint64_t h = fnv1a("params");
  for (const auto& [name, value] : params) {
    h = fnv1a(name, h);
    h = fnv1a("=", h);
    const std::uint64_t bits = std::bit_cast<std::uint64_t>(value == 0 ? 0.0 : value);
    for (int i = 0; i < 8; ++i) {
      const char b = static_cast<char>((bits >> (8 * i)) & 0xff);
      h = fnv1a(std::string_view(&b, 1), h);
    }
  }
  const std::uint64_t d = dims;
  for (int i = 0; i < 8; ++i) {
    const char b = static_cast<char>((d >> (8 * i)) & 0xff);
    h = fnv1a(std::string_view(&b, 1), h);
  }
  return h;
}

class StateWriter {
 public:
  StateWriter(std::string& out, DetectorKind kind, std::uint16_t version, std::uint64_t fingerprint)
      : out_(out), start_(out.size()) {
    out_.append(kMagic);
    u8(static_cast<std::uint8_t>(kind));
    u16(version);
    u64(fingerprint);
  }

  void u8(std::uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void u16(std::uint16_t v) { le(v, 2); }
  void u32(std::uint32_t v) { le(v, 4); }
  void u64(std::uint64_t v) { le(v, 8); }
  void i64(std::int64_t v) { le(static_cast<std::uint64_t>(v), 8); }
  void f64(double v) { le(std::bit_cast<std::uint64_t>(v), 8); }
  void boolean(bool v) { u8(v ? 1 : 0); }
  // Length-prefixed (u32) array of doubles.
  void doubles(const std::vector<double>& v) {
    u32(static_cast<std::uint32_t>(v.size()));
    for (double d : v) f64(d);
  }
  void int64s(const std::vector<std::int64_t>& v) {
    u32(static_cast<std::uint32_t>(v.size()));
    for (std::int64_t x : v) i64(x);
  }
  // Appends the checksum; call once, last.
  void finish() { u64(fnv1a(std::string_view(out_).substr(start_))); }

 private:
  void le(std::uint64_t v, int n) {
    for (int i = 0; i < n; ++i) out_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
  std::string& out_;
  std::size_t start_;
};

class StateReader {
 public:
  // Checks magic, kind, version, fingerprint and the trailing checksum up front; ok() is false
  // (and every read fails) when any of them does not match.
  StateReader(std::string_view in, DetectorKind kind, std::uint16_t version, std::uint64_t fingerprint) {
    constexpr std::size_t kHeader = 4 + 1 + 2 + 8;
    if (in.size() < kHeader + 8 || in.substr(0, 4) != kMagic) return;
    const std::string_view payload = in.substr(0, in.size() - 8);
    std::uint64_t sum = 0;
    for (int i = 0; i < 8; ++i)
      sum |= static_cast<std::uint64_t>(static_cast<unsigned char>(in[payload.size() + i])) << (8 * i);
    if (sum != fnv1a(payload)) return;
    in_ = payload;
    pos_ = 4;
    ok_ = true;
    std::uint8_t k = 0;
    std::uint16_t ver = 0;
    std::uint64_t fp = 0;
    if (!u8(k) || !u16(ver) || !u64(fp) || k != static_cast<std::uint8_t>(kind) || ver != version || fp != fingerprint)
      ok_ = false;
  }

  bool ok() const { return ok_; }

  bool u8(std::uint8_t& v) {
    std::uint64_t x = 0;
    if (!le(x, 1)) return false;
    v = static_cast<std::uint8_t>(x);
    return true;
  }
  bool u16(std::uint16_t& v) {
    std::uint64_t x = 0;
    if (!le(x, 2)) return false;
    v = static_cast<std::uint16_t>(x);
    return true;
  }
  bool u32(std::uint32_t& v) {
    std::uint64_t x = 0;
    if (!le(x, 4)) return false;
    v = static_cast<std::uint32_t>(x);
    return true;
  }
  bool u64(std::uint64_t& v) { return le(v, 8); }
  bool i64(std::int64_t& v) {
    std::uint64_t x = 0;
    if (!le(x, 8)) return false;
    v = static_cast<std::int64_t>(x);
    return true;
  }
  // Any double, including NaN/inf (some states use NaN as "unset").
  bool f64(double& v) {
    std::uint64_t x = 0;
    if (!le(x, 8)) return false;
    v = std::bit_cast<double>(x);
    return true;
  }
  // A double that must be finite.
  bool finite(double& v) {
    if (!f64(v)) return false;
    if (!std::isfinite(v)) return ok_ = false;
    return true;
  }
  bool boolean(bool& v) {
    std::uint8_t b = 0;
    if (!u8(b)) return false;
    if (b > 1) return ok_ = false;
    v = b != 0;
    return true;
  }
  // A count in [min_n, max_n] (e.g. a ring index or fill level).
  bool count(std::uint64_t& v, std::uint64_t min_n, std::uint64_t max_n) {
    if (!u64(v)) return false;
    if (v < min_n || v > max_n) return ok_ = false;
    return true;
  }
  // Length-prefixed array with min_n <= length <= max_n; `v` is resized (never beyond max_n).
  bool doubles(std::vector<double>& v, std::size_t min_n, std::size_t max_n) {
    std::uint32_t n = 0;
    if (!u32(n)) return false;
    if (n < min_n || n > max_n || remaining() < std::size_t{n} * 8) return ok_ = false;
    v.resize(n);
    for (auto& d : v)
      if (!f64(d)) return false;
    return true;
  }
  bool int64s(std::vector<std::int64_t>& v, std::size_t min_n, std::size_t max_n) {
    std::uint32_t n = 0;
    if (!u32(n)) return false;
    if (n < min_n || n > max_n || remaining() < std::size_t{n} * 8) return ok_ = false;
    v.resize(n);
    for (auto& x : v)
      if (!i64(x)) return false;
    return true;
  }
  // True iff every read succeeded and the body was consumed exactly.
  bool finish() const { return ok_ && pos_ == in_.size(); }

 private:
  std::size_t remaining() const { return in_.size() - pos_; }
  bool le(std::uint64_t& v, int n) {
    if (!ok_ || remaining() < static_cast<std::size_t>(n)) return ok_ = false;
    v = 0;
    for (int i = 0; i < n; ++i) v |= static_cast<std::uint64_t>(static_cast<unsigned char>(in_[pos_ + i])) << (8 * i);
    pos_ += static_cast<std::size_t>(n);
    return true;
  }
  std::string_view in_;
  std::size_t pos_ = 0;
  bool ok_ = false;
};

}  // namespace sw::analytics::state_io
