#include "app/app.h"

#include <csignal>
#include <cstdio>
#include <iostream>
#include <semaphore>
#include <thread>

#include "analytics/engine.h"
#include "analytics/store.h"
#include "analytics/webhooks.h"
#include "api/http_server.h"
#include "api/live_hub.h"
#include "api/router.h"
#include "api/services.h"
#include "api/static_files.h"
#include "core/clock.h"
#include "core/logging.h"
#include "ingest/pipeline.h"
#include "ingest/transports/mqtt/broker.h"
#include "ingest/transports/mqtt/mqtt_server.h"
#include "runtime/blocking_pool.h"
#include "runtime/io_workers.h"
#include "runtime/thread_name.h"
#include "security/crypto.h"
#include "security/jwt_issuer.h"
#include "storage/storage_factory.h"

namespace sw::app {
namespace {

Status bootstrapAdmin(storage::MetadataStore& metadata, const Config& config) {
  if (metadata.getUserByName("admin")) return ok();
  std::string password = config.admin_password;
  const bool generated = password.empty();
  if (generated) password = security::randomToken(15);
  auto hash = security::hashPassword(password);
  if (!hash) return std::unexpected(hash.error());
  storage::User admin;
  admin.username = "admin";
  admin.role = "sysadmin";
  admin.password_hash = *hash;
  if (auto u = metadata.createUser(admin); !u) return std::unexpected(u.error());
  if (generated) {
    // Printed once, on the first start only; it is not stored anywhere in clear.
    std::cout << "admin password: " << password << std::endl;
  }
  logger("app")->info("msg=\"created system administrator\" username=admin generated_password={}", generated);
  return ok();
}

// The web UI to serve at "/": the configured or found build, else the built-in page saying it
// was not built (a broken UI directory never stops the API).
api::StaticFiles loadUi(const Config& config) {
  auto log = logger("app");
  std::error_code ec;
  const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  const std::filesystem::path dir = api::findUiDir(config, ec ? std::filesystem::path() : exe);
  if (!dir.empty()) {
    auto ui = api::StaticFiles::load(dir);
    if (ui) {
      log->info("msg=\"serving the web UI\" dir={} files={} bytes={}", ui->source(), ui->fileCount(), ui->totalBytes());
      return std::move(*ui);
    }
    log->warn("msg=\"cannot serve the web UI, serving a placeholder page\" dir={} error=\"{}\"", dir.string(),
              ui.error().message);
  } else {
    log->info("msg=\"web UI not built, serving a placeholder page\" hint=\"make build, or set SW_UI_DIR\"");
  }
  return api::StaticFiles::placeholder();
}

Result<std::string> jwtKey(storage::MetadataStore& metadata) {
  auto existing = metadata.getSetting("jwt_hs256_key");
  if (!existing) return std::unexpected(existing.error());
  if (*existing) return **existing;
  std::string key = security::randomToken(48);
  if (auto st = metadata.putSetting("jwt_hs256_key", key); !st) return std::unexpected(st.error());
  return key;
}

// Applies each tenant's retention every interval; wakes early to stop.
class RetentionJob {
 public:
  RetentionJob(storage::MetadataStore& m, storage::TimeSeriesStore& s, int interval_s)
      : metadata_(m), store_(s), interval_(interval_s) {
    thread_ = std::thread([this] {
      runtime::nameThisThread("sw-retention");
      run();
    });
  }
  ~RetentionJob() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  void run() {
    auto log = logger("retention");
    std::unique_lock lock(mutex_);
    while (!cv_.wait_for(lock, std::chrono::seconds(std::max(1, interval_)), [&] { return stop_; })) {
      lock.unlock();
      storage::PageRequest page;
      page.page_size = 500;
      for (;;) {
        auto tenants = metadata_.listTenants(page);
        if (!tenants) break;
        for (const auto& t : tenants->items) {
          if (t.retention_days <= 0) continue;
          auto r = store_.applyRetention(t.id, nowMs() - std::int64_t{t.retention_days} * 86'400'000);
          if (!r) log->warn("msg=\"retention failed\" tenant={} error=\"{}\"", t.id.str(), r.error().message);
        }
        if (tenants->next_cursor.empty()) break;
        page.after = tenants->next_cursor;
      }
      lock.lock();
    }
  }
  storage::MetadataStore& metadata_;
  storage::TimeSeriesStore& store_;
  int interval_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace

int serve(const Config& config) {
  auto log = logger("app");
  // Block the stop signals in every thread; the main thread waits for them with sigwait.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  if (auto st = security::initCrypto(); !st) {
    log->error("msg=\"{}\"", st.error().message);
    return 1;
  }
  Metrics metrics;
  auto metadata = storage::openMetadataStore("sqlite", config);
  if (!metadata) {
    log->error("msg=\"cannot open metadata store\" error=\"{}\"", metadata.error().message);
    return 1;
  }
  auto store = storage::openTimeSeriesStore("embedded", config, &metrics);
  if (!store) {
    log->error("msg=\"cannot open time-series store\" error=\"{}\"", store.error().message);
    return 1;
  }
  // Alarm notifications: opened early so that it outlives everything that may notify it.
  auto webhooks = analytics::WebhookService::open(analytics::WebhookOptions::fromConfig(config), &metrics);
  if (!webhooks) {
    log->error("msg=\"cannot open the webhooks database\" error=\"{}\"", webhooks.error().message);
    return 1;
  }
  if (auto st = bootstrapAdmin(**metadata, config); !st) {
    log->error("msg=\"cannot create the administrator\" error=\"{}\"", st.error().message);
    return 1;
  }
  auto key = jwtKey(**metadata);
  if (!key) {
    log->error("msg=\"cannot load the token key\" error=\"{}\"", key.error().message);
    return 1;
  }
  security::JwtIssuer jwt(*key, config.access_token_ttl_s);
  ingest::IngestPipeline pipeline(config, **metadata, **store, metrics);
  mqtt::Broker broker(config, metrics);
  pipeline.addObserver([&broker](const ingest::DeviceRef& device, std::span<const storage::Point> points) {
    broker.telemetryStored(device, points);
  });
  pipeline.addAttributesObserver(
      [&broker](const ingest::DeviceRef& device, std::string_view json) { broker.attributesStored(device, json); });
  // Live data for WebSocket clients; outlives the I/O workers (their sockets release it).
  api::LiveHub live(api::LiveLimits::fromConfig(config), **metadata, **store, jwt, metrics);
  pipeline.addObserver([&live](const ingest::DeviceRef& device, std::span<const storage::Point> points) {
    live.telemetryStored(device, points);
  });
  // Analytics: detectors and rules on the ingest stream; alarms go to WebSocket subscribers and
  // webhooks. Its definitions and alarms live in <data_dir>/analytics.sqlite.
  auto analytics_store = analytics::AnalyticsStore::open(
      (std::filesystem::path(config.data_dir) / "analytics.sqlite").string(), config.storage_sync_wal);
  if (!analytics_store) {
    log->error("msg=\"cannot open the analytics database\" error=\"{}\"", analytics_store.error().message);
    return 1;
  }
  analytics::Engine engine(config, **metadata, **store, **analytics_store, metrics);
  engine.addAlarmSink([&live, &webhooks](const TenantId& tenant, std::string_view event, const analytics::Alarm& a) {
    const std::string json = api::alarmJson(a);
    live.publishAlarm(tenant, json);
    (*webhooks)->notifyAlarm(tenant, event, a.severity, json);
  });
  if (config.analytics_enabled) {
    if (auto st = engine.start(); !st) {
      log->error("msg=\"cannot start analytics\" error=\"{}\"", st.error().message);
      return 1;
    }
    pipeline.addObserver([&engine](const ingest::DeviceRef& device, std::span<const storage::Point> points) {
      engine.observe(device, points);
    });
  }
  std::atomic<bool> ready{false};
  std::counting_semaphore<64> hashing_slots(
      static_cast<std::ptrdiff_t>(std::clamp(std::thread::hardware_concurrency(), 1u, 64u)));
  api::Services services{config, **metadata, **store, pipeline, jwt, metrics, ready, hashing_slots};
  api::Router router([&services](std::string_view token) { return api::verifyBearer(services, token); });
  services.devices = &broker;
  services.live = &live;
  services.analytics_store = analytics_store->get();
  services.analytics = &engine;
  services.webhooks = webhooks->get();
  api::registerAllRoutes(router, services);
  const api::StaticFiles ui = loadUi(config);
  router.setFallback([&ui](api::Context& ctx) { return ui.serve(ctx.request); });

  runtime::BlockingPool pool(config.api_threads, config.api_queue, "sw-api");
  metrics.gauge("sw_api_queue_depth", "Requests waiting for a handler thread",
                [&pool] { return static_cast<double>(pool.depth()); });
  runtime::IoWorkers workers(config.io_threads);
  api::HttpServer server(config, workers, pool, router, metrics);
  server.setLiveHub(&live);
  auto port = server.start();
  if (!port) {
    log->error("msg=\"{}\"", port.error().message);
    return 1;
  }
  mqtt::MqttServer mqtt_server(
      config, workers, pipeline, **metadata, broker, [&services](std::string_view token) -> Result<mqtt::AppPrincipal> {
        auto p = api::verifyBearer(services, token);
        if (!p) return std::unexpected(p.error());
        return mqtt::AppPrincipal{p->tenant_id, p->user_id, p->role == security::Role::kTenantAdmin};
      });
  auto mqtt_port = mqtt_server.start();
  if (!mqtt_port) {
    log->error("msg=\"{}\"", mqtt_port.error().message);
    return 1;
  }
  workers.start();
  (*webhooks)->start();  // resumes the deliveries left pending by the last run
  RetentionJob retention(**metadata, **store, config.retention_interval_s);
  ready = true;
  log->info("msg=\"listening\" http_port={} mqtt_port={} data_dir={} io_threads={} api_threads={}", *port, *mqtt_port,
            config.data_dir, workers.size(), config.api_threads);

  int sig = 0;
  sigwait(&signals, &sig);
  log->info("msg=\"draining\" signal={}", sig);
  ready = false;
  server.stopAccepting();
  live.closeAll(api::kWsCloseGoingAway, "server shutting down");
  mqtt_server.stopAccepting();
  mqtt_server.disconnectAll();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(config.shutdown_grace_s);
  // MQTT clients were told to go (0x8B); their connections close once that is written.
  while ((server.inflight() > 0 || pool.depth() > 0 || broker.stats().connections.load() > 0 || live.sockets() > 0) &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  pool.stop();         // runs what was queued; their responses are then written by the workers
  mqtt_server.stop();  // also saves the devices' connection state
  const auto write_deadline = std::max(deadline, std::chrono::steady_clock::now() + std::chrono::seconds(2));
  while (server.inflight() > 0 && std::chrono::steady_clock::now() < write_deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  workers.stop();
  // Nothing ingests any more: the engine processes what is queued and checkpoints its state.
  engine.stop();
  // After the HTTP server drained: finishes the attempts in flight (bounded by their timeout);
  // what is still pending stays in the outbox for the next start.
  (*webhooks)->stop();
  int code = 0;
  if (auto st = (*store)->flush(); !st) {
    log->error("msg=\"flush failed\" error=\"{}\"", st.error().message);
    code = 1;
  }
  log->info("msg=\"stopped\"");
  return code;
}

}  // namespace sw::app
