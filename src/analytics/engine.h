#pragma once
// The analytics engine: runs detectors and rules on the live ingest stream (every transport
// reaches it through IngestPipeline observers) and raises and clears alarms.
//
// Threads: observe() runs on the ingest threads and only filters and enqueues (a lock-free
// queue per worker, no mutex); `analytics.workers` threads each own the state of the devices
// hashed to them (detector instances, rule states), so no lock guards per-series state. A full
// queue makes observe() wait (backpressure) rather than drop points.
// Memory: bounded per series by the detector parameters and in total by analytics.max_series
// (instances beyond it are not created; counted in sw_analytics_series_refused_total).
// Restart: each worker's state is checkpointed to <data_dir>/analytics/worker-N.ckpt every
// analytics.checkpoint_s and at stop(), and reloaded at start(), so a restart neither re-learns
// nor raises a burst of false alarms.
// Derived series: the max score of the detectors of a key is written as "{key}.anomaly_score"
// when it moves by analytics.score_deadband, crosses the threshold, or after
// analytics.score_heartbeat_s.
#include <atomic>
#include <functional>
#include <memory>
#include <span>
#include <string_view>
#include <thread>
#include <vector>

#include "analytics/store.h"
#include "core/config.h"
#include "core/metrics.h"
#include "ingest/device_authenticator.h"
#include "storage/metadata_store.h"
#include "storage/time_series_store.h"

namespace sw::analytics {

// Told of every alarm change: event is "alarm.raised", "alarm.updated", "alarm.acknowledged"
// or "alarm.cleared". Called on engine worker threads or API threads; must be thread-safe.
using AlarmSink = std::function<void(const TenantId& tenant, std::string_view event, const Alarm& alarm)>;

class Engine {
 public:
  Engine(const Config& config, storage::MetadataStore& metadata, storage::TimeSeriesStore& store,
         AnalyticsStore& analytics, Metrics& metrics);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  void addAlarmSink(AlarmSink sink);  // before start()
  // Loads definitions and checkpoints, starts the workers.
  Status start();
  // Processes what is queued, writes checkpoints, joins the workers. Idempotent.
  void stop();

  // Ingest observer (hot path): points of one device, just made durable.
  void observe(const ingest::DeviceRef& device, std::span<const storage::Point> points);

  // Definitions of the tenant changed (detector or rule created, updated, deleted).
  void reloadTenant(const TenantId& tenant);
  // A device's type or labels changed, or it was deleted: its matches are recomputed.
  void deviceChanged(const TenantId& tenant, const DeviceId& device);
  void tenantDeleted(const TenantId& tenant);
  // An alarm changed outside the engine (API ack / clear): tells the sinks.
  void publish(const TenantId& tenant, std::string_view event, const Alarm& alarm);

  // Waits until everything enqueued so far has been processed (tests, backtests of fresh data).
  void drain();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sw::analytics
