#include "storage/value.h"

#include <cmath>
#include <cstring>

#include "storage/varint.h"

namespace sw::storage {
namespace {

enum Tag : char { kDouble = 0, kInt = 1, kFalse = 2, kTrue = 3, kString = 4, kJson = 5 };

}  // namespace

bool numericValue(const Value& v, double& out) {
  if (const double* d = std::get_if<double>(&v)) {
    out = *d;
    return true;
  }
  if (const bool* b = std::get_if<bool>(&v)) {
    out = *b ? 1.0 : 0.0;
    return true;
  }
  return false;
}

void encodeValue(const Value& v, std::string& out) {
  if (const double* d = std::get_if<double>(&v)) {
    // Integral values (counters, most sensor readings scaled to integers) take 1-4 bytes.
    double x = *d;
    if (std::trunc(x) == x && std::fabs(x) < 9.0e15 && !(x == 0.0 && std::signbit(x))) {
      auto i = static_cast<std::int64_t>(x);
      out.push_back(kInt);
      putVarint(zigzag(i), out);
    } else {
      out.push_back(kDouble);
      char buf[8];
      std::memcpy(buf, &x, 8);
      out.append(buf, 8);
    }
  } else if (const bool* b = std::get_if<bool>(&v)) {
    out.push_back(*b ? kTrue : kFalse);
  } else if (const std::string* s = std::get_if<std::string>(&v)) {
    out.push_back(kString);
    out.append(*s);
  } else {
    out.push_back(kJson);
    out.append(std::get<JsonText>(v).text);
  }
}

bool decodeValue(const char* data, std::size_t size, Value& out) {
  if (size == 0) return false;
  const char* p = data + 1;
  const char* end = data + size;
  switch (data[0]) {
    case kDouble: {
      if (size != 9) return false;
      double x;
      std::memcpy(&x, p, 8);
      out = x;
      return true;
    }
    case kInt: {
      std::uint64_t z;
      if (!getVarint(p, end, z) || p != end) return false;
      auto i = unzigzag(z);
      out = static_cast<double>(i);
      return true;
    }
    case kFalse: out = false; return size == 1;
    case kTrue: out = true; return size == 1;
    case kString: out = std::string(p, end); return true;
    case kJson: out = JsonText{std::string(p, end)}; return true;
    default: return false;
  }
}

}  // namespace sw::storage
