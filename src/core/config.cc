#include "core/config.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <charconv>
#include <cstdlib>

namespace sw {
namespace {

template <typename T>
void readNode(const YAML::Node& root, const char* section, const char* key, T& out) {
  const YAML::Node s = root[section];
  if (s && s.IsMap() && s[key]) out = s[key].as<T>();
}

template <typename T>
Status envNumber(const char* name, T& out) {
  const char* v = std::getenv(name);
  if (!v || !*v) return ok();
  std::string_view s(v);
  T parsed{};
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), parsed);
  if (ec != std::errc() || p != s.data() + s.size())
    return fail(Code::kInvalidArgument, fmt::format("environment variable {}='{}' is not a number", name, s), name);
  out = parsed;
  return ok();
}

void envString(const char* name, std::string& out) {
  if (const char* v = std::getenv(name); v && *v) out = v;
}

Status envBool(const char* name, bool& out) {
  const char* v = std::getenv(name);
  if (!v || !*v) return ok();
  std::string s(v);
  if (s == "1" || s == "true" || s == "yes")
    out = true;
  else if (s == "0" || s == "false" || s == "no")
    out = false;
  else
    return fail(Code::kInvalidArgument, fmt::format("environment variable {}='{}' is not a boolean", name, s), name);
  return ok();
}

}  // namespace

Status applyEnvOverrides(Config& c) {
  if (auto s = envNumber("SW_HTTP_PORT", c.http_port); !s) return s;
  if (auto s = envNumber("SW_MQTT_PORT", c.mqtt_port); !s) return s;
  if (auto s = envNumber("SW_MQTT_MAX_CONNECTIONS", c.mqtt_max_connections); !s) return s;
  if (auto s = envNumber("SW_MQTT_MAX_PACKET_BYTES", c.mqtt_max_packet_bytes); !s) return s;
  if (auto s = envNumber("SW_MQTT_RECEIVE_MAXIMUM", c.mqtt_receive_maximum); !s) return s;
  if (auto s = envNumber("SW_MQTT_MAX_INFLIGHT", c.mqtt_max_inflight); !s) return s;
  if (auto s = envNumber("SW_MQTT_MAX_QUEUED", c.mqtt_max_queued); !s) return s;
  if (auto s = envNumber("SW_MQTT_MAX_SESSION_EXPIRY_S", c.mqtt_max_session_expiry_s); !s) return s;
  if (auto s = envNumber("SW_MQTT_TOPIC_ALIAS_MAXIMUM", c.mqtt_topic_alias_maximum); !s) return s;
  if (auto s = envNumber("SW_MQTT_MAX_RETAINED", c.mqtt_max_retained); !s) return s;
  if (auto s = envNumber("SW_MQTT_MAX_RETAINED_BYTES", c.mqtt_max_retained_bytes); !s) return s;
  if (auto s = envNumber("SW_MQTT_MAX_SESSIONS_PER_TENANT", c.mqtt_max_sessions_per_tenant); !s) return s;
  envString("SW_MQTT_BIND", c.mqtt_bind);
  if (auto s = envBool("SW_ANALYTICS_ENABLED", c.analytics_enabled); !s) return s;
  if (auto s = envNumber("SW_ANALYTICS_WORKERS", c.analytics_workers); !s) return s;
  if (auto s = envNumber("SW_ANALYTICS_QUEUE_BATCHES", c.analytics_queue_batches); !s) return s;
  if (auto s = envNumber("SW_ANALYTICS_MAX_SERIES", c.analytics_max_series); !s) return s;
  if (auto s = envNumber("SW_ANALYTICS_CHECKPOINT_S", c.analytics_checkpoint_s); !s) return s;
  if (auto s = envNumber("SW_ANALYTICS_SCORE_DEADBAND", c.analytics_score_deadband); !s) return s;
  if (auto s = envNumber("SW_ANALYTICS_SCORE_HEARTBEAT_S", c.analytics_score_heartbeat_s); !s) return s;
  if (auto s = envNumber("SW_WEBHOOKS_TIMEOUT_MS", c.webhooks_timeout_ms); !s) return s;
  if (auto s = envNumber("SW_WEBHOOKS_MAX_ATTEMPTS", c.webhooks_max_attempts); !s) return s;
  if (auto s = envNumber("SW_WEBHOOKS_CONCURRENCY", c.webhooks_concurrency); !s) return s;
  envString("SW_WEBHOOKS_CA_FILE", c.webhooks_ca_file);
  if (auto s = envBool("SW_WEBHOOKS_ALLOW_PRIVATE", c.webhooks_allow_private); !s) return s;
  if (auto s = envNumber("SW_WS_MAX_CONNECTIONS", c.ws_max_connections); !s) return s;
  if (auto s = envNumber("SW_WS_MAX_MESSAGE_BYTES", c.ws_max_message_bytes); !s) return s;
  if (auto s = envNumber("SW_WS_MAX_QUEUE_BYTES", c.ws_max_queue_bytes); !s) return s;
  if (auto s = envNumber("SW_WS_MAX_COALESCED_BYTES", c.ws_max_coalesced_bytes); !s) return s;
  if (auto s = envNumber("SW_WS_MAX_SUBSCRIPTIONS", c.ws_max_subscriptions); !s) return s;
  if (auto s = envNumber("SW_WS_SLOW_CLOSE_S", c.ws_slow_close_s); !s) return s;
  if (auto s = envNumber("SW_WS_IDLE_TIMEOUT_S", c.ws_idle_timeout_s); !s) return s;
  if (auto s = envNumber("SW_WS_AUTH_TIMEOUT_S", c.ws_auth_timeout_s); !s) return s;
  if (auto s = envNumber("SW_WS_AUTH_RECHECK_S", c.ws_auth_recheck_s); !s) return s;
  if (auto s = envNumber("SW_HTTP_MAX_BODY_BYTES", c.http_max_body_bytes); !s) return s;
  if (auto s = envNumber("SW_HTTP_MAX_CONNECTIONS", c.http_max_connections); !s) return s;
  if (auto s = envNumber("SW_IO_THREADS", c.io_threads); !s) return s;
  if (auto s = envNumber("SW_API_THREADS", c.api_threads); !s) return s;
  if (auto s = envNumber("SW_DEVICE_MAX_MSGS_PER_S", c.device_max_msgs_per_s); !s) return s;
  if (auto s = envNumber("SW_DEVICE_BURST", c.device_burst); !s) return s;
  if (auto s = envNumber("SW_ACCESS_TOKEN_TTL_S", c.access_token_ttl_s); !s) return s;
  if (auto s = envNumber("SW_RETENTION_INTERVAL_S", c.retention_interval_s); !s) return s;
  if (auto s = envBool("SW_STORAGE_SYNC_WAL", c.storage_sync_wal); !s) return s;
  envString("SW_HTTP_BIND", c.http_bind);
  envString("SW_UI_DIR", c.ui_dir);
  envString("SW_DATA_DIR", c.data_dir);
  envString("SW_ADMIN_PASSWORD", c.admin_password);
  envString("SW_LOG_LEVEL", c.log_level);
  return ok();
}

Result<Config> loadConfig(const std::string& path) {
  Config c;
  if (!path.empty()) {
    try {
      YAML::Node root = YAML::LoadFile(path);
      readNode(root, "http", "bind", c.http_bind);
      readNode(root, "http", "port", c.http_port);
      readNode(root, "http", "max_body_bytes", c.http_max_body_bytes);
      readNode(root, "http", "max_connections", c.http_max_connections);
      readNode(root, "http", "max_inflight_body_bytes", c.http_max_inflight_body_bytes);
      readNode(root, "http", "ui_dir", c.ui_dir);
      readNode(root, "mqtt", "bind", c.mqtt_bind);
      readNode(root, "mqtt", "port", c.mqtt_port);
      readNode(root, "mqtt", "max_connections", c.mqtt_max_connections);
      readNode(root, "mqtt", "max_packet_bytes", c.mqtt_max_packet_bytes);
      readNode(root, "mqtt", "receive_maximum", c.mqtt_receive_maximum);
      readNode(root, "mqtt", "max_inflight", c.mqtt_max_inflight);
      readNode(root, "mqtt", "max_queued", c.mqtt_max_queued);
      readNode(root, "mqtt", "max_session_expiry_s", c.mqtt_max_session_expiry_s);
      readNode(root, "mqtt", "topic_alias_maximum", c.mqtt_topic_alias_maximum);
      readNode(root, "mqtt", "max_retained", c.mqtt_max_retained);
      readNode(root, "mqtt", "max_retained_bytes", c.mqtt_max_retained_bytes);
      readNode(root, "mqtt", "max_sessions_per_tenant", c.mqtt_max_sessions_per_tenant);
      readNode(root, "analytics", "enabled", c.analytics_enabled);
      readNode(root, "analytics", "workers", c.analytics_workers);
      readNode(root, "analytics", "queue_batches", c.analytics_queue_batches);
      readNode(root, "analytics", "max_series", c.analytics_max_series);
      readNode(root, "analytics", "checkpoint_s", c.analytics_checkpoint_s);
      readNode(root, "analytics", "score_deadband", c.analytics_score_deadband);
      readNode(root, "analytics", "score_heartbeat_s", c.analytics_score_heartbeat_s);
      readNode(root, "webhooks", "timeout_ms", c.webhooks_timeout_ms);
      readNode(root, "webhooks", "max_attempts", c.webhooks_max_attempts);
      readNode(root, "webhooks", "concurrency", c.webhooks_concurrency);
      readNode(root, "webhooks", "ca_file", c.webhooks_ca_file);
      readNode(root, "webhooks", "allow_private", c.webhooks_allow_private);
      readNode(root, "ws", "max_connections", c.ws_max_connections);
      readNode(root, "ws", "max_message_bytes", c.ws_max_message_bytes);
      readNode(root, "ws", "max_queue_bytes", c.ws_max_queue_bytes);
      readNode(root, "ws", "max_coalesced_bytes", c.ws_max_coalesced_bytes);
      readNode(root, "ws", "max_subscriptions", c.ws_max_subscriptions);
      readNode(root, "ws", "slow_close_s", c.ws_slow_close_s);
      readNode(root, "ws", "idle_timeout_s", c.ws_idle_timeout_s);
      readNode(root, "ws", "auth_timeout_s", c.ws_auth_timeout_s);
      readNode(root, "ws", "auth_recheck_s", c.ws_auth_recheck_s);
      readNode(root, "storage", "data_dir", c.data_dir);
      readNode(root, "storage", "sync_wal", c.storage_sync_wal);
      readNode(root, "security", "admin_password", c.admin_password);
      readNode(root, "security", "access_token_ttl_s", c.access_token_ttl_s);
      readNode(root, "security", "refresh_token_ttl_s", c.refresh_token_ttl_s);
      readNode(root, "ingest", "device_max_msgs_per_s", c.device_max_msgs_per_s);
      readNode(root, "ingest", "device_burst", c.device_burst);
      readNode(root, "ingest", "max_points_per_request", c.ingest_max_points_per_request);
      readNode(root, "runtime", "io_threads", c.io_threads);
      readNode(root, "runtime", "api_threads", c.api_threads);
      readNode(root, "runtime", "api_queue", c.api_queue);
      readNode(root, "runtime", "retention_interval_s", c.retention_interval_s);
      readNode(root, "runtime", "shutdown_grace_s", c.shutdown_grace_s);
      readNode(root, "log", "level", c.log_level);
    } catch (const YAML::Exception& e) {
      return fail(Code::kInvalidArgument, fmt::format("config file {}: {}", path, e.what()));
    }
  }
  if (auto s = applyEnvOverrides(c); !s) return std::unexpected(s.error());
  if (c.http_port < 0 || c.http_port > 65535)
    return fail(Code::kInvalidArgument, "http.port out of range", "http.port");
  if (c.mqtt_port < 0 || c.mqtt_port > 65535)
    return fail(Code::kInvalidArgument, "mqtt.port out of range", "mqtt.port");
  if (c.mqtt_receive_maximum < 1 || c.mqtt_receive_maximum > 65535)
    return fail(Code::kInvalidArgument, "mqtt.receive_maximum must be 1..65535", "mqtt.receive_maximum");
  if (c.mqtt_max_inflight < 1 || c.mqtt_max_inflight > 65535)
    return fail(Code::kInvalidArgument, "mqtt.max_inflight must be 1..65535", "mqtt.max_inflight");
  if (c.mqtt_topic_alias_maximum < 0 || c.mqtt_topic_alias_maximum > 65535)
    return fail(Code::kInvalidArgument, "mqtt.topic_alias_maximum must be 0..65535", "mqtt.topic_alias_maximum");
  if (c.mqtt_max_packet_bytes < 64 || c.mqtt_max_packet_bytes > 268435460)
    return fail(Code::kInvalidArgument, "mqtt.max_packet_bytes must be 64..268435460", "mqtt.max_packet_bytes");
  if (c.mqtt_max_queued < 1)
    return fail(Code::kInvalidArgument, "mqtt.max_queued must be at least 1", "mqtt.max_queued");
  if (c.ws_max_message_bytes < 1024 || c.ws_max_message_bytes > (16u << 20))
    return fail(Code::kInvalidArgument, "ws.max_message_bytes must be 1024..16777216", "ws.max_message_bytes");
  if (c.ws_max_queue_bytes < 1024)
    return fail(Code::kInvalidArgument, "ws.max_queue_bytes must be at least 1024", "ws.max_queue_bytes");
  if (c.ws_max_coalesced_bytes < 1024)
    return fail(Code::kInvalidArgument, "ws.max_coalesced_bytes must be at least 1024", "ws.max_coalesced_bytes");
  if (c.ws_max_subscriptions < 1)
    return fail(Code::kInvalidArgument, "ws.max_subscriptions must be at least 1", "ws.max_subscriptions");
  if (c.ws_slow_close_s < 1 || c.ws_idle_timeout_s < 2 || c.ws_auth_timeout_s < 1 || c.ws_auth_recheck_s < 1)
    return fail(Code::kInvalidArgument,
                "ws.slow_close_s, ws.auth_timeout_s and ws.auth_recheck_s must be at least 1, ws.idle_timeout_s at "
                "least 2");
  if (c.webhooks_timeout_ms < 100 || c.webhooks_timeout_ms > 60000)
    return fail(Code::kInvalidArgument, "webhooks.timeout_ms must be 100..60000", "webhooks.timeout_ms");
  if (c.webhooks_max_attempts < 1 || c.webhooks_max_attempts > 20)
    return fail(Code::kInvalidArgument, "webhooks.max_attempts must be 1..20", "webhooks.max_attempts");
  if (c.webhooks_concurrency < 1 || c.webhooks_concurrency > 64)
    return fail(Code::kInvalidArgument, "webhooks.concurrency must be 1..64", "webhooks.concurrency");
  if (c.api_threads < 1) return fail(Code::kInvalidArgument, "runtime.api_threads must be at least 1");
  if (c.analytics_workers < 1 || c.analytics_workers > 64)
    return fail(Code::kInvalidArgument, "analytics.workers must be 1..64", "analytics.workers");
  if (c.analytics_queue_batches < 16)
    return fail(Code::kInvalidArgument, "analytics.queue_batches must be at least 16", "analytics.queue_batches");
  if (c.analytics_checkpoint_s < 1 || c.analytics_score_heartbeat_s < 1)
    return fail(Code::kInvalidArgument, "analytics.checkpoint_s and analytics.score_heartbeat_s must be at least 1");
  if (!(c.analytics_score_deadband >= 0 && c.analytics_score_deadband <= 1))
    return fail(Code::kInvalidArgument, "analytics.score_deadband must be 0..1", "analytics.score_deadband");
  return c;
}

}  // namespace sw
