#include "ingest/pipeline.h"

#include <fmt/format.h>

#include "core/clock.h"
#include "ingest/codecs/codec_util.h"
#include "ingest/codecs/simdjson_util.h"

namespace sw::ingest {

IngestPipeline::IngestPipeline(const Config& config, storage::MetadataStore& metadata, storage::TimeSeriesStore& store,
                               Metrics& metrics)
    : config_(config),
      metadata_(metadata),
      store_(store),
      auth_(metadata),
      points_(metrics.counter("sw_ingest_points_total", "Telemetry points stored")),
      messages_(metrics.counter("sw_ingest_messages_total", "Telemetry messages stored")),
      rejected_rate_(metrics.counter("sw_ingest_rejected_total", "Messages rejected", R"(reason="rate_limited")")),
      rejected_invalid_(metrics.counter("sw_ingest_rejected_total", "Messages rejected", R"(reason="invalid")")) {}

void IngestPipeline::addObserver(Observer observer) {
  std::unique_lock lock(observers_mutex_);
  observers_.push_back(std::move(observer));
}

void IngestPipeline::addAttributesObserver(AttributesObserver observer) {
  std::unique_lock lock(observers_mutex_);
  attribute_observers_.push_back(std::move(observer));
}

Status IngestPipeline::admit(const DeviceRef& device) {
  double rate = device.max_msgs_per_s > 0 ? device.max_msgs_per_s : config_.device_max_msgs_per_s;
  double burst = device.max_msgs_per_s > 0 ? std::max(device.max_msgs_per_s * 2, 1.0) : config_.device_burst;
  if (!limiter_.allow(device.device_id.str(), rate, burst)) {
    rejected_rate_.inc();
    return fail(Code::kResourceExhausted, fmt::format("device exceeds its message rate of {}/s", rate));
  }
  return ok();
}

Result<std::size_t> IngestPipeline::telemetry(const DeviceRef& device, std::string_view content_type,
                                              std::string_view payload) {
  Message m{content_type, payload};
  return std::move(telemetryBatch(device, std::span(&m, 1)).front());
}

std::vector<Result<std::size_t>> IngestPipeline::telemetryBatch(const DeviceRef& device,
                                                                std::span<const Message> messages) {
  std::vector<Result<std::size_t>> results;
  results.reserve(messages.size());
  DecodeLimits limits;
  limits.max_points = config_.ingest_max_points_per_request;
  std::vector<storage::Point> points;
  const std::int64_t now = nowMs();
  std::size_t admitted = 0;
  for (const auto& m : messages) {
    if (auto st = admit(device); !st) {
      results.emplace_back(std::unexpected(st.error()));
      continue;
    }
    const std::size_t before = points.size();
    const std::int64_t received = m.received_ms ? m.received_ms : now;
    if (auto st = codecs_.forContentType(m.content_type).decode(m.payload, received, limits, points); !st) {
      points.resize(before);
      rejected_invalid_.inc();
      results.emplace_back(std::unexpected(st.error()));
      continue;
    }
    results.emplace_back(points.size() - before);
    ++admitted;
  }
  if (admitted == 0) return results;
  if (auto st = store_.write(device.tenant_id, device.device_id, points); !st) {
    // The device was deleted while this message was in flight: its token is no longer valid.
    Error error = st.error().code == Code::kNotFound ? Error{Code::kUnauthenticated, "unknown device access token", {}}
                                                     : st.error();
    for (auto& r : results)
      if (r) r = std::unexpected(error);
    return results;
  }
  points_.inc(points.size());
  messages_.inc(admitted);
  std::shared_lock lock(observers_mutex_);
  for (const auto& o : observers_) o(device, points);
  return results;
}

Status IngestPipeline::attributes(const DeviceRef& device, std::string_view payload) {
  if (auto st = admit(device); !st) return st;
  simdjson::dom::element root;
  if (auto err = threadParser().parse(payload.data(), payload.size(), true).get(root)) {
    rejected_invalid_.inc();
    return fail(Code::kInvalidArgument, fmt::format("body is not valid JSON: {}", simdjson::error_message(err)),
                "body");
  }
  simdjson::dom::object obj;
  if (root.get_object().get(obj) != simdjson::SUCCESS) {
    rejected_invalid_.inc();
    return fail(Code::kInvalidArgument, "attributes must be a JSON object", "body");
  }
  DecodeLimits limits;
  std::vector<storage::Attribute> attrs;
  const std::int64_t now = nowMs();
  for (auto [k, v] : obj) {
    if (auto st = validateKey(k, limits, std::string(k)); !st) {
      rejected_invalid_.inc();
      return st;
    }
    if (v.is_null()) {
      rejected_invalid_.inc();
      return fail(Code::kInvalidArgument, "null is not a supported value", std::string(k));
    }
    attrs.push_back(storage::Attribute{std::string(k), simdjson::minify(v), now});
  }
  if (auto st = metadata_.upsertAttributes(device.tenant_id, device.device_id, "client", attrs); !st) return st;
  std::shared_lock lock(observers_mutex_);
  for (const auto& o : attribute_observers_) o(device, payload);
  return ok();
}

}  // namespace sw::ingest
