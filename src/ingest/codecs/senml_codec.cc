#include "ingest/codecs/senml_codec.h"

#include <fmt/format.h>

#include <cmath>

#include "ingest/codecs/codec_util.h"
#include "ingest/codecs/simdjson_util.h"

namespace sw::ingest {
namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;
using simdjson::dom::object;

struct Base {
  std::string name;
  double time = 0, value = 0, sum = 0;
};

}  // namespace

Status SenmlCodec::decode(std::string_view payload, std::int64_t now_ms, const DecodeLimits& limits,
                          std::vector<storage::Point>& out) const {
  element root;
  auto err = threadParser().parse(payload.data(), payload.size(), true).get(root);
  if (err) {
    return fail(Code::kInvalidArgument, fmt::format("body is not valid JSON: {}", simdjson::error_message(err)),
                "body");
  }
  simdjson::dom::array records;
  if (root.get_array().get(records) != simdjson::SUCCESS) {
    return fail(Code::kInvalidArgument, "a SenML pack must be a JSON array of records", "body");
  }
  Base base;
  std::size_t i = 0;
  for (element rec_el : records) {
    const std::string path = fmt::format("[{}]", i++);
    object rec;
    if (rec_el.get_object().get(rec) != simdjson::SUCCESS) {
      return fail(Code::kInvalidArgument, "a SenML record must be a JSON object", path);
    }
    std::string_view n;
    double t = 0;
    std::optional<storage::Value> value;
    std::optional<double> sum;
    int value_fields = 0;
    for (auto [k, v] : rec) {
      const std::string field = fmt::format("{}.{}", path, k);
      auto needNumber = [&](double& target) -> Status {
        auto num = numberOf(v);
        if (!num || !std::isfinite(*num)) return fail(Code::kInvalidArgument, "must be a number", field);
        target = *num;
        return ok();
      };
      auto needString = [&](std::string_view& target) -> Status {
        if (v.get_string().get(target) != simdjson::SUCCESS)
          return fail(Code::kInvalidArgument, "must be a string", field);
        return ok();
      };
      Status st = ok();
      if (k == "bn") {
        std::string_view s;
        st = needString(s);
        if (st) base.name.assign(s);
      } else if (k == "bt") {
        st = needNumber(base.time);
      } else if (k == "bv") {
        st = needNumber(base.value);
      } else if (k == "bs") {
        st = needNumber(base.sum);
      } else if (k == "bver") {
        double ver;
        st = needNumber(ver);
      } else if (k == "bu" || k == "u") {
        std::string_view unit;
        st = needString(unit);
      } else if (k == "n") {
        st = needString(n);
      } else if (k == "t") {
        st = needNumber(t);
      } else if (k == "ut") {
        double ut;
        st = needNumber(ut);
      } else if (k == "v") {
        double d;
        st = needNumber(d);
        value = d;  // base value added below, once bv of this record is known
        ++value_fields;
      } else if (k == "vs" || k == "vd") {
        std::string_view s;
        st = needString(s);
        if (st && s.size() > limits.max_string_bytes)
          st = fail(Code::kInvalidArgument, "string value is too long", field);
        if (st) value = std::string(s);
        ++value_fields;
      } else if (k == "vb") {
        bool b;
        if (v.get_bool().get(b) != simdjson::SUCCESS)
          st = fail(Code::kInvalidArgument, "must be a boolean", field);
        else
          value = b;
        ++value_fields;
      } else if (k == "s") {
        double d;
        st = needNumber(d);
        sum = d;
      } else if (!k.empty() && k.back() == '_') {
        st = fail(Code::kInvalidArgument, "unsupported must-understand SenML field", field);
      }
      if (!st) return st;
    }
    if (value_fields > 1) return fail(Code::kInvalidArgument, "a SenML record has more than one value field", path);
    // Records with only base fields carry no measurement.
    if (!value && !sum && n.empty()) continue;
    if (!value && !sum) return fail(Code::kInvalidArgument, "a SenML record has no value", path);
    std::string name = base.name + std::string(n);
    if (auto st = validateKey(name, limits, path + ".n"); !st) return st;
    double time_s = base.time + t;
    std::int64_t ts;
    // RFC 8428 4.5.3: below 2^28 (every negative value too) a time is relative to now.
    if (time_s < -1e13)
      ts = -1;
    else if (time_s < 268435456.0)
      ts = now_ms + static_cast<std::int64_t>(std::llround(time_s * 1000));
    else
      ts = static_cast<std::int64_t>(std::llround(std::min(time_s, 1e13) * 1000));
    if (!validTimestamp(ts)) return fail(Code::kInvalidArgument, "time is out of range", path + ".t");
    if (out.size() >= limits.max_points) {
      return fail(Code::kInvalidArgument, fmt::format("more than {} points in one message", limits.max_points), path);
    }
    if (value) {
      if (double* d = std::get_if<double>(&*value)) {
        *d += base.value;
        if (!std::isfinite(*d))
          return fail(Code::kInvalidArgument, "value plus base value is out of range", path + ".v");
      }
      out.push_back(storage::Point{ts, name, std::move(*value)});
    } else {
      const double total = *sum + base.sum;
      if (!std::isfinite(total)) return fail(Code::kInvalidArgument, "sum plus base sum is out of range", path + ".s");
      out.push_back(storage::Point{ts, name, total});
    }
  }
  return ok();
}

}  // namespace sw::ingest
