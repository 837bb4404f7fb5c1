#pragma once
// Outbound alarm notifications by webhook: a tenant's webhooks (CRUD), a durable outbox of
// deliveries and the sender that POSTs them with an HMAC-SHA256 signature, retrying with
// exponential backoff (docs/api/CONTRACT.md, "Webhooks").
//
// Persistence: its own SQLite database (WAL, one connection guarded by a mutex, numbered
// migrations), <data_dir>/webhooks.sqlite. Every notification is written to the outbox before
// notifyAlarm returns, so pending deliveries survive a restart and are resumed by the next
// start(). Delivery is at least once: a crash during an attempt repeats it (receivers dedupe on
// the X-Sensoworks-Delivery id, which is the same for every attempt).
//
// Threads: every public method may be called from any thread. CRUD and notifyAlarm block on
// SQLite (short writes); call them from a blocking pool or a worker that may block briefly (the
// analytics engine's workers), never from an I/O worker. notifyAlarm is one hash lookup for a
// tenant without webhooks. The sender runs on `concurrency` threads of its own, at most one
// attempt per webhook at a time; each attempt is bounded by `timeout_ms` (name resolution is
// bounded by the system resolver).
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "analytics/severity.h"
#include "core/config.h"
#include "core/ids.h"
#include "core/metrics.h"
#include "core/status.h"
#include "storage/metadata_store.h"

struct sqlite3;

namespace sw {
using WebhookId = Id<struct WebhookTag>;
}  // namespace sw

namespace sw::analytics {

struct Webhook {
  WebhookId id;
  TenantId tenant_id;
  std::string name;
  std::string url;
  std::string secret;  // shown to the API only on create and when a PUT sets a new one
  Severity min_severity = Severity::kInfo;
  bool enabled = true;
  std::int64_t created_ms = 0;
  std::int64_t updated_ms = 0;
  std::optional<std::int64_t> last_delivery_ms;  // last successful delivery
  std::optional<std::string> last_error;         // of the last failed attempt (kept after recovery)
  bool failing = false;                          // the last attempt failed
};

// What a create or a full replace sets. secret: nullopt on create = generate one; on update =
// keep the current one.
struct WebhookInput {
  std::string name;
  std::string url;
  std::optional<std::string> secret;
  Severity min_severity = Severity::kInfo;
  bool enabled = true;
};

enum class DeliveryStatus { kPending, kDelivered, kFailed };
std::string_view deliveryStatusName(DeliveryStatus s);

struct Delivery {
  std::string id;
  WebhookId webhook_id;
  TenantId tenant_id;
  std::string event;  // "alarm.raised" | "alarm.updated" | "alarm.acknowledged" | "alarm.cleared" | "ping"
  std::optional<std::string> alarm_id;
  std::string payload;  // JSON text: the "alarm" object (ping: the "webhook" object)
  DeliveryStatus status = DeliveryStatus::kPending;
  int attempts = 0;
  std::optional<int> last_status_code;
  std::optional<std::string> last_error;
  std::optional<std::int64_t> next_attempt_ms;  // pending only
  std::int64_t created_ms = 0;
  std::optional<std::int64_t> delivered_ms;
};

// A parsed, validated webhook URL (http or https; no user info, no fragment).
struct WebhookUrl {
  bool tls = false;
  std::string host;  // lower case; an IPv6 literal without brackets
  int port = 80;
  std::string target;  // path and query, "/" at least
};
// invalid_argument (field "url") for anything else.
Result<WebhookUrl> parseWebhookUrl(std::string_view url);

// True for an address a webhook may only reach with webhooks.allow_private: loopback,
// unspecified, private (10/8, 172.16/12, 192.168/16, fc00::/7, fec0::/10), link-local (169.254/16
// with the clouds' metadata services, fe80::/10), shared (100.64/10), 0/8, multicast, broadcast,
// and these in IPv4-mapped, IPv4-compatible or NAT64 (64:ff9b::/96) form. False for a name or
// anything that is not an address literal.
bool isPrivateAddress(std::string_view address);

// One HTTP exchange, as the sender makes it (injectable for tests).
struct WebhookRequest {
  WebhookUrl url;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  int timeout_ms = 5000;  // resolve + connect + TLS + write + read, in total
};
struct WebhookResponse {
  int status = 0;     // HTTP status; 0 when there was no response (error says why)
  std::string error;  // transport error; for a non-2xx, a short excerpt of the response body
};
using WebhookTransport = std::function<WebhookResponse(const WebhookRequest&)>;

struct WebhookOptions {
  std::string path;        // SQLite file
  bool sync_full = false;  // fsync every commit (storage.sync_wal)
  int timeout_ms = 5000;
  int max_attempts = 8;
  int concurrency = 2;                          // sender threads
  std::string ca_file;                          // extra trusted CAs (PEM) for https receivers
  bool allow_private = false;                   // else private/loopback receivers are refused
  std::size_t keep_finished = 1000;             // delivered/failed deliveries kept per webhook
  std::size_t max_pending_per_webhook = 10000;  // beyond, new notifications are dropped (counted)
  std::size_t max_webhooks_per_tenant = 100;    // beyond, create is refused (429)
  std::size_t max_payload_bytes = 256 * 1024;   // larger alarm JSON is dropped (counted)
  std::function<std::int64_t()> clock;          // epoch ms; default: wall clock (tests inject one)
  WebhookTransport transport;                   // default: HTTP/1.1 over Boost.Beast

  static WebhookOptions fromConfig(const Config& config);  // <data_dir>/webhooks.sqlite
};

class WebhookService {
 public:
  static Result<std::unique_ptr<WebhookService>> open(WebhookOptions options, Metrics* metrics = nullptr);
  ~WebhookService();  // stop()s
  WebhookService(const WebhookService&) = delete;
  WebhookService& operator=(const WebhookService&) = delete;

  // Starts the sender threads (resuming pending deliveries). stop(): lets the attempts in flight
  // finish (bounded by timeout_ms) and joins; notifications after stop() are still stored and
  // sent by the next start.
  void start();
  void stop();

  // CRUD, scoped by tenant (another tenant's id is not_found). create/update validate name
  // (1..200 bytes), url and secret (16..256 bytes, no control characters).
  Result<Webhook> createWebhook(const TenantId& tenant, WebhookInput input);
  Result<Webhook> getWebhook(const TenantId& tenant, const WebhookId& id);
  Result<storage::Page<Webhook>> listWebhooks(const TenantId& tenant, const storage::PageRequest& page);
  Result<Webhook> updateWebhook(const TenantId& tenant, const WebhookId& id, WebhookInput input);
  Status deleteWebhook(const TenantId& tenant, const WebhookId& id);  // with its deliveries
  // Newest first.
  Result<storage::Page<Delivery>> listDeliveries(const TenantId& tenant, const WebhookId& id,
                                                 const storage::PageRequest& page);
  // Queues a {"event":"ping"} delivery through the outbox (also for a disabled webhook: disabling
  // stops new alarm notifications, while what is already queued, and pings, are still sent).
  Result<Delivery> ping(const TenantId& tenant, const WebhookId& id);
  // Deletes every webhook and delivery of the tenant.
  Status deleteTenant(const TenantId& tenant);

  // An alarm event: one outbox row per enabled webhook of the tenant whose min_severity the
  // alarm's severity reaches. event: "alarm.raised" | "alarm.updated" | "alarm.acknowledged" |
  // "alarm.cleared" (the "alarm." prefix may be left out); alarm_json: the alarm object of the
  // REST API (its "id" is recorded as alarm_id). Durable when it returns; never throws; errors
  // are logged and counted (sw_webhook_dropped_total).
  void notifyAlarm(const TenantId& tenant, std::string_view event, Severity severity, std::string_view alarm_json);

  // Makes every attempt that is due now (by the clock) on the calling thread, one at a time,
  // until none is due; returns how many were made. For tests (no sender threads needed).
  std::size_t deliverDue();

  // "sha256=" + hex(HMAC-SHA256(secret, timestamp + "." + body)), the X-Sensoworks-Signature.
  static std::string signature(std::string_view secret, std::string_view timestamp, std::string_view body);
  // Delay before the next attempt after `attempts` failed ones (1 -> 1 s, 2 -> 2 s, ... <= 300 s).
  static std::int64_t retryDelayMs(int attempts);
  // The default transport: HTTP/1.1 POST (no redirects followed, response body read up to 64 KiB).
  // https verifies the receiver's certificate and host name against the system's trusted CAs
  // plus ca_file (PEM) when given. Without allow_private, a receiver any of whose addresses is
  // private (isPrivateAddress) is not connected to: the check is made on the resolved addresses
  // that are then used, so a name re-pointed after validation (DNS rebinding) is caught too.
  static WebhookResponse httpPost(const WebhookRequest& request, const std::string& ca_file = {},
                                  bool allow_private = true);

 private:
  struct Target {
    WebhookId id;
    Severity min_severity;
  };
  using Targets = std::shared_ptr<const std::vector<Target>>;
  struct Job {
    std::string delivery_id;
    WebhookId webhook_id;
  };

  explicit WebhookService(WebhookOptions options, Metrics* metrics);
  Result<Webhook> getLocked(const TenantId& tenant, const WebhookId& id);
  Targets targetsOf(const TenantId& tenant);
  void invalidate(const TenantId& tenant);
  Result<Delivery> enqueueLocked(const Webhook& hook, std::string event, std::optional<std::string> alarm_id,
                                 std::string payload, std::int64_t now, bool& dropped);
  // Picks the next due delivery (one per webhook in flight); when none is due, next_due is the
  // earliest time one will be (nullopt: nothing pending).
  std::optional<Job> claim(std::int64_t now, std::optional<std::int64_t>& next_due);
  void attempt(const Job& job);
  void finish(const Job& job);
  void senderLoop();
  void wake();

  WebhookOptions options_;
  Metrics* metrics_;
  Counter* delivered_ = nullptr;
  Counter* failed_ = nullptr;
  Counter* attempts_failed_ = nullptr;
  Counter* dropped_ = nullptr;

  std::mutex db_mutex_;  // guards db_
  sqlite3* db_ = nullptr;

  std::mutex cache_mutex_;  // guards cache_, cache_generation_
  std::unordered_map<TenantId, Targets> cache_;
  std::uint64_t cache_generation_ = 0;

  std::mutex state_mutex_;  // guards what follows
  std::condition_variable cv_;
  bool stopping_ = false;
  std::uint64_t wake_generation_ = 0;
  std::set<WebhookId> in_flight_;
  // A webhook whose last attempt failed is not tried again (with any delivery) before this time,
  // so a receiver that is down sees one attempt per backoff step, not one per queued delivery.
  std::unordered_map<WebhookId, std::int64_t> not_before_;
  std::vector<std::thread> threads_;
};

}  // namespace sw::analytics
