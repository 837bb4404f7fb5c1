#pragma once
// Server configuration: defaults, then the YAML file (if any), then SW_* environment variables.
#include <cstdint>
#include <string>

#include "core/status.h"

namespace sw {

struct Config {
  // http
  std::string http_bind = "0.0.0.0";
  int http_port = 8080;
  std::size_t http_max_body_bytes = 16 * 1024 * 1024;
  std::size_t http_max_connections = 10000;              // further connections are closed at once
  std::size_t http_max_inflight_body_bytes = 256 << 20;  // bodies being read at once; 503 beyond
  std::string ui_dir;  // built web UI served at /; empty: ./ui/dist, else <exe dir>/../ui/dist
  // mqtt (docs/mqtt.md)
  std::string mqtt_bind = "0.0.0.0";
  int mqtt_port = 1883;
  std::size_t mqtt_max_connections = 100000;
  std::size_t mqtt_max_packet_bytes = 1 << 20;
  int mqtt_receive_maximum = 64;       // inbound QoS 1/2 window per connection
  int mqtt_max_inflight = 64;          // outbound QoS 1/2 window per connection
  std::size_t mqtt_max_queued = 1000;  // per session
  std::uint32_t mqtt_max_session_expiry_s = 86400;
  int mqtt_topic_alias_maximum = 64;
  std::size_t mqtt_max_retained = 10000;              // per tenant
  std::size_t mqtt_max_retained_bytes = 64 << 20;     // per tenant (topics + payloads)
  std::size_t mqtt_max_sessions_per_tenant = 100000;  // connected and persistent
  // analytics: detectors, rules, alarms (docs/analytics.md)
  bool analytics_enabled = true;
  std::size_t analytics_workers = 1;           // threads; series are sharded over them by device
  std::size_t analytics_queue_batches = 8192;  // per worker; a full queue makes ingest wait
  std::size_t analytics_max_series = 1000000;  // detector instances in total; beyond, new ones are refused
  int analytics_checkpoint_s = 60;             // state saved this often and at shutdown
  double analytics_score_deadband = 0.1;       // anomaly_score is stored when it moves this much
                                               // (scores below it count as 0) ...
  int analytics_score_heartbeat_s = 300;       // ... or this long (data time) after the last stored one
  // webhooks: outbound alarm notifications (docs/operations.md, "Webhooks")
  int webhooks_timeout_ms = 5000;       // per attempt: resolve + connect + TLS + send + answer
  int webhooks_max_attempts = 8;        // then the delivery is "failed"
  int webhooks_concurrency = 2;         // sender threads; one attempt per webhook at a time
  std::string webhooks_ca_file;         // extra trusted CAs (PEM) for https receivers
  bool webhooks_allow_private = false;  // receivers on loopback/private/link-local addresses
  // live data WebSocket GET /api/v1/ws (docs/websocket.md)
  std::size_t ws_max_connections = 10000;
  std::size_t ws_max_message_bytes = 64 * 1024;  // client message; larger: error resource_exhausted
  std::size_t ws_max_queue_bytes = 4 << 20;      // per socket; beyond, telemetry is coalesced
  std::size_t ws_max_coalesced_bytes = 4 << 20;  // per socket; beyond, close 1008
  std::size_t ws_max_subscriptions = 100;        // per socket
  int ws_slow_close_s = 30;                      // close (1008) a socket that stays coalesced this long
  int ws_idle_timeout_s = 60;                    // ping after half of it without client data, close after it
  int ws_auth_timeout_s = 10;                    // first message auth deadline (without ?token)
  int ws_auth_recheck_s = 60;                    // how often a socket's user is re-checked (deleted, role changed)
  // storage
  std::string data_dir = "./data";
  bool storage_sync_wal = false;  // fsync the WAL on every commit group (power-loss safety)
  // security
  std::string admin_password;  // empty: generate one on first start and print it once
  int access_token_ttl_s = 900;
  int refresh_token_ttl_s = 30 * 24 * 3600;
  // ingest
  double device_max_msgs_per_s = 100;  // per device, sustained; 0 disables the limit
  double device_burst = 200;
  std::size_t ingest_max_points_per_request = 200000;
  // runtime
  int io_threads = 0;   // 0: one per core
  int api_threads = 8;  // blocking pool for storage, hashing and handlers
  std::size_t api_queue = 1024;
  int retention_interval_s = 3600;
  int shutdown_grace_s = 20;
  std::string log_level = "info";
};

// Loads the file at path (empty: no file) and applies SW_* environment overrides.
Result<Config> loadConfig(const std::string& path);
// Applies environment overrides only (exposed for tests).
Status applyEnvOverrides(Config& config);

}  // namespace sw
