#pragma once
// What REST handlers use; owned by the composition root (app), outliving the HTTP server.
#include <atomic>
#include <functional>
#include <semaphore>

#include "core/config.h"
#include "core/metrics.h"
#include "ingest/device_channel.h"
#include "ingest/pipeline.h"
#include "security/jwt_issuer.h"
#include "storage/metadata_store.h"
#include "storage/time_series_store.h"

namespace sw::analytics {
class AnalyticsStore;
class Engine;
class WebhookService;
struct Alarm;
}  // namespace sw::analytics

namespace sw::api {

class LiveHub;

struct Services {
  const Config& config;
  storage::MetadataStore& metadata;
  storage::TimeSeriesStore& store;
  ingest::IngestPipeline& pipeline;
  security::JwtIssuer& jwt;
  Metrics& metrics;
  std::atomic<bool>& ready;
  // Password hashing takes 64 MiB and a core for tens of ms: at most this many at once.
  std::counting_semaphore<64>& hashing_slots;
  // Live device transports (the MQTT broker): connection state, RPC. Null: all offline.
  ingest::DeviceChannel* devices = nullptr;
  // Live data WebSocket hub: told of committed device, tenant and user changes (device filters,
  // tenant isolation, role checks of open sockets). Null: no WebSocket endpoint.
  LiveHub* live = nullptr;
  // Analytics (issue 5): detector/rule definitions and alarms, and the engine told of their
  // changes. Null: the analytics routes answer 503.
  analytics::AnalyticsStore* analytics_store = nullptr;
  analytics::Engine* analytics = nullptr;
  // Alarm notifications by webhook (CRUD, outbox, sender). Null: the webhook routes answer 503.
  analytics::WebhookService* webhooks = nullptr;
};

class Router;
// Registers every REST route (one function per handler file).
void registerSystemRoutes(Router& router, Services& s);
void registerAuthRoutes(Router& router, Services& s);
void registerAdminRoutes(Router& router, Services& s);
void registerDeviceRoutes(Router& router, Services& s);
void registerTelemetryRoutes(Router& router, Services& s);
void registerLiveRoutes(Router& router, Services& s);  // live_hub.cc
void registerDashboardRoutes(Router& router, Services& s);
void registerAnalyticsRoutes(Router& router, Services& s);
// An alarm as the API shows it (REST, WebSocket, webhooks): a JSON object.
std::string alarmJson(const analytics::Alarm& alarm);
void registerWebhookRoutes(Router& router, Services& s);  // handlers_webhooks.cc
void registerAllRoutes(Router& router, Services& s);
// Verifies a bearer JWT and that its user still exists with the same role.
Result<struct Principal> verifyBearer(Services& s, std::string_view token);

}  // namespace sw::api
