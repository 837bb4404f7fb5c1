#pragma once
// The ingest pipeline every transport feeds (HTTP today, MQTT and gateways next):
//   authenticate (device token) -> rate limit -> decode (codec by content type) -> validate
//   -> durable write to the TimeSeriesStore -> observers (live fan-out, analytics).
// A call returns success only after the points are durable, so the transport may acknowledge.
// Thread-safety: all methods may be called concurrently; they block on storage, so transports
// call them from a blocking pool. Concurrent calls are group-committed by the store.
#include <functional>
#include <mutex>
#include <shared_mutex>
#include <span>
#include <string_view>
#include <vector>

#include "core/config.h"
#include "core/metrics.h"
#include "ingest/codecs/codec_registry.h"
#include "ingest/device_authenticator.h"
#include "security/rate_limiter.h"
#include "storage/metadata_store.h"
#include "storage/time_series_store.h"

namespace sw::ingest {

using Observer = std::function<void(const DeviceRef&, std::span<const storage::Point>)>;
// Client attributes a device stored, as the JSON object it sent.
using AttributesObserver = std::function<void(const DeviceRef&, std::string_view json_object)>;

class IngestPipeline {
 public:
  IngestPipeline(const Config& config, storage::MetadataStore& metadata, storage::TimeSeriesStore& store,
                 Metrics& metrics);

  Result<DeviceRef> authenticate(std::string_view token) { return auth_.authenticate(token); }
  // Decodes and stores one message; returns the number of points stored.
  Result<std::size_t> telemetry(const DeviceRef& device, std::string_view content_type, std::string_view payload);
  // Several messages of one device in one durable write (MQTT batches what a connection sent
  // while its previous write was in flight). results[i] is the outcome of messages[i]: a message
  // that fails admission or decoding fails alone; a failed store write fails every admitted one.
  struct Message {
    std::string_view content_type;
    std::string_view payload;
    std::int64_t received_ms = 0;  // when the transport read it (the timestamp of points without
                                   // one); 0: now
  };
  std::vector<Result<std::size_t>> telemetryBatch(const DeviceRef& device, std::span<const Message> messages);
  // Stores client attributes from a JSON object {"key": value, ...}.
  Status attributes(const DeviceRef& device, std::string_view payload);

  // Observers run synchronously after a durable write, on the calling thread; keep them short.
  void addObserver(Observer observer);
  void addAttributesObserver(AttributesObserver observer);
  DeviceAuthenticator& authenticator() { return auth_; }

 private:
  Status admit(const DeviceRef& device);

  const Config& config_;
  storage::MetadataStore& metadata_;
  storage::TimeSeriesStore& store_;
  DeviceAuthenticator auth_;
  security::RateLimiter limiter_;
  CodecRegistry codecs_;
  // Observers are added at start-up and called on every ingest thread at once (each one is
  // thread-safe): a shared lock, so that one message's observers never wait for another's.
  std::shared_mutex observers_mutex_;
  std::vector<Observer> observers_;
  std::vector<AttributesObserver> attribute_observers_;
  Counter& points_;
  Counter& messages_;
  Counter& rejected_rate_;
  Counter& rejected_invalid_;
};

}  // namespace sw::ingest
