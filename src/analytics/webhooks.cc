#include "analytics/webhooks.h"

#include <fmt/format.h>
#include <sodium.h>

#include <algorithm>
#include <boost/asio.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/json.hpp>
#include <cctype>
#include <charconv>
#include <filesystem>

#include "core/clock.h"
#include "core/hex.h"
#include "core/logging.h"
#include "runtime/thread_name.h"
#include "storage/backends/sqlite/sqlite_util.h"
#include "sw_version.h"

namespace sw::analytics {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

constexpr std::size_t kMaxNameBytes = 200;
constexpr std::size_t kMaxUrlBytes = 2048;
constexpr std::size_t kMinSecretBytes = 16;
constexpr std::size_t kMaxSecretBytes = 256;
constexpr std::size_t kSecretRandomBytes = 32;
constexpr std::size_t kMaxResponseHeaderBytes = 16 * 1024;
constexpr std::size_t kMaxResponseBodyBytes = 64 * 1024;
constexpr std::size_t kErrorExcerptBytes = 200;
constexpr std::int64_t kMaxRetryDelayMs = 300'000;
constexpr std::size_t kMaxCachedTenants = 100'000;

// Numbered migrations; never edit one that has shipped, append a new one.
const char* const kMigrations[] = {
    // 1: webhooks and their outbox of deliveries.
    R"sql(
CREATE TABLE webhooks (
  id TEXT PRIMARY KEY,
  tenant_id TEXT NOT NULL,
  name TEXT NOT NULL,
  url TEXT NOT NULL,
  secret TEXT NOT NULL,
  min_severity TEXT NOT NULL,
  enabled INTEGER NOT NULL,
  created_ms INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL,
  last_delivery_ms INTEGER,
  last_error TEXT,
  failing INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX webhooks_by_tenant ON webhooks(tenant_id, name, id);
CREATE TABLE deliveries (
  id TEXT PRIMARY KEY,
  webhook_id TEXT NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
  tenant_id TEXT NOT NULL,
  event TEXT NOT NULL,
  alarm_id TEXT,
  body TEXT NOT NULL,
  status TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  last_status_code INTEGER,
  last_error TEXT,
  next_attempt_ms INTEGER,
  created_ms INTEGER NOT NULL,
  delivered_ms INTEGER
);
CREATE INDEX deliveries_by_webhook ON deliveries(webhook_id, created_ms, id);
CREATE INDEX deliveries_pending ON deliveries(webhook_id, next_attempt_ms, created_ms) WHERE status = 'pending';
CREATE INDEX deliveries_by_tenant ON deliveries(tenant_id);
)sql",
};

using sqlite::dbError;
using sqlite::exec;
using sqlite::makeCursor;
using sqlite::parseCursor;
using sqlite::Stmt;
using sqlite::Transaction;

void bindOpt(Stmt& s, int i, const std::optional<std::string>& v) {
  if (v)
    s.bind(i, *v);
  else
    s.bindNull(i);
}

void bindOpt(Stmt& s, int i, const std::optional<std::int64_t>& v) {
  if (v)
    s.bind(i, *v);
  else
    s.bindNull(i);
}

std::optional<std::string> optText(const Stmt& s, int col) {
  if (s.isNull(col)) return std::nullopt;
  return s.text(col);
}

constexpr const char* kWebhookCols =
    "id, tenant_id, name, url, secret, min_severity, enabled, created_ms, updated_ms, last_delivery_ms, last_error, "
    "failing";

Webhook readWebhook(const Stmt& s) {
  Webhook w;
  w.id = WebhookId(s.text(0));
  w.tenant_id = TenantId(s.text(1));
  w.name = s.text(2);
  w.url = s.text(3);
  w.secret = s.text(4);
  w.min_severity = parseSeverity(s.text(5)).value_or(Severity::kInfo);
  w.enabled = s.i64(6) != 0;
  w.created_ms = s.i64(7);
  w.updated_ms = s.i64(8);
  w.last_delivery_ms = s.optI64(9);
  w.last_error = optText(s, 10);
  w.failing = s.i64(11) != 0;
  return w;
}

constexpr const char* kDeliveryCols =
    "id, webhook_id, tenant_id, event, alarm_id, body, status, attempts, last_status_code, last_error, "
    "next_attempt_ms, created_ms, delivered_ms";

DeliveryStatus parseStatus(std::string_view s) {
  if (s == "delivered") return DeliveryStatus::kDelivered;
  if (s == "failed") return DeliveryStatus::kFailed;
  return DeliveryStatus::kPending;
}

Delivery readDelivery(const Stmt& s) {
  Delivery d;
  d.id = s.text(0);
  d.webhook_id = WebhookId(s.text(1));
  d.tenant_id = TenantId(s.text(2));
  d.event = s.text(3);
  d.alarm_id = optText(s, 4);
  d.payload = s.text(5);
  d.status = parseStatus(s.text(6));
  d.attempts = static_cast<int>(s.i64(7));
  if (auto c = s.optI64(8)) d.last_status_code = static_cast<int>(*c);
  d.last_error = optText(s, 9);
  d.next_attempt_ms = s.optI64(10);
  d.created_ms = s.i64(11);
  d.delivered_ms = s.optI64(12);
  return d;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool hasControl(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

bool isLocalhostName(std::string_view host) {
  return host == "localhost" || host.ends_with(".localhost");  // RFC 6761: always loopback
}

Status validateInput(const WebhookInput& in, bool allow_private) {
  if (in.name.empty() || in.name.size() > kMaxNameBytes) {
    return fail(Code::kInvalidArgument, fmt::format("name must be 1-{} bytes", kMaxNameBytes), "name");
  }
  auto u = parseWebhookUrl(in.url);
  if (!u) return std::unexpected(u.error());
  if (!allow_private && (isPrivateAddress(u->host) || isLocalhostName(u->host))) {
    return fail(Code::kInvalidArgument,
                "url points to a loopback or private address, which this server refuses (webhooks.allow_private)",
                "url");
  }
  if (in.secret) {
    if (in.secret->size() < kMinSecretBytes || in.secret->size() > kMaxSecretBytes || hasControl(*in.secret)) {
      return fail(
          Code::kInvalidArgument,
          fmt::format("secret must be {}-{} bytes without control characters", kMinSecretBytes, kMaxSecretBytes),
          "secret");
    }
  }
  return ok();
}

std::string generateSecret() {
  unsigned char bytes[kSecretRandomBytes];
  randombytes_buf(bytes, sizeof bytes);
  return hexEncode(std::string_view(reinterpret_cast<const char*>(bytes), sizeof bytes));
}

// The event name as stored and sent; empty for an unknown one.
std::string normalizeEvent(std::string_view event) {
  std::string e(event);
  if (!e.starts_with("alarm.")) e.insert(0, "alarm.");
  for (const char* known : {"alarm.raised", "alarm.updated", "alarm.acknowledged", "alarm.cleared"}) {
    if (e == known) return e;
  }
  return {};
}

std::string jsonString(std::string_view s) {
  return boost::json::serialize(boost::json::string(s));
}

// The request body of one attempt; sent_ms is the attempt's X-Sensoworks-Timestamp.
std::string buildBody(const Delivery& d, std::int64_t sent_ms) {
  const bool ping = d.event == "ping";
  return fmt::format(R"({{"event":{},"tenant_id":{},"sent_ms":{},"{}":{}}})", jsonString(d.event),
                     jsonString(d.tenant_id.str()), sent_ms, ping ? "webhook" : "alarm",
                     d.payload.empty() ? "{}" : d.payload);
}

// A short, printable (ASCII) excerpt of a receiver's answer for last_error.
std::string excerpt(std::string_view body) {
  std::string out;
  for (unsigned char c : body.substr(0, kErrorExcerptBytes)) {
    out.push_back(c >= 0x20 && c < 0x7f ? static_cast<char>(c) : ' ');
  }
  const auto last = out.find_last_not_of(' ');
  out.erase(last == std::string::npos ? 0 : last + 1);
  const auto first = out.find_first_not_of(' ');
  out.erase(0, first == std::string::npos ? out.size() : first);
  return out;
}

// ---- HTTP client ----

struct Exchange {
  int status = 0;
  std::string error;
  std::string body;  // of a non-2xx answer, at most kMaxResponseBodyBytes
};

std::string describe(std::string_view stage, const beast::error_code& ec) {
  if (ec == beast::error::timeout || ec == asio::error::operation_aborted) return fmt::format("{}: timed out", stage);
  return fmt::format("{}: {}", stage, ec.message());
}

bool isPrivateV4(const asio::ip::address_v4& a) {
  const std::uint32_t v = a.to_uint();
  auto in = [v](std::uint32_t net, int bits) { return (v >> (32 - bits)) == (net >> (32 - bits)); };
  return in(0x00000000, 8) ||                   // 0/8 "this network", with 0.0.0.0
         in(0x0A000000, 8) ||                   // 10/8
         in(0x64400000, 10) ||                  // 100.64/10 shared (carrier-grade NAT)
         in(0x7F000000, 8) ||                   // 127/8 loopback
         in(0xA9FE0000, 16) ||                  // 169.254/16 link-local, cloud metadata
         in(0xAC100000, 12) ||                  // 172.16/12
         in(0xC0A80000, 16) ||                  // 192.168/16
         in(0xE0000000, 4) || v == 0xFFFFFFFF;  // multicast, broadcast
}

bool isPrivate(const asio::ip::address& address) {
  if (address.is_v4()) return isPrivateV4(address.to_v4());
  const auto a = address.to_v6();
  if (a.is_loopback() || a.is_unspecified() || a.is_multicast() || a.is_link_local() || a.is_site_local()) {
    return true;
  }
  const auto b = a.to_bytes();
  if ((b[0] & 0xFE) == 0xFC) return true;  // fc00::/7 unique local
  auto embeddedV4 = [&b] { return asio::ip::address_v4(asio::ip::address_v4::bytes_type{b[12], b[13], b[14], b[15]}); };
  if (a.is_v4_mapped()) return isPrivateV4(embeddedV4());
  const bool zero96 = std::all_of(b.begin(), b.begin() + 12, [](unsigned char c) { return c == 0; });
  if (zero96) return isPrivateV4(embeddedV4());  // the deprecated IPv4-compatible form
  static constexpr unsigned char kNat64[12] = {0x00, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
  if (std::equal(b.begin(), b.begin() + 12, kNat64)) return isPrivateV4(embeddedV4());
  return false;
}

std::string hostHeader(const WebhookUrl& u) {
  const bool v6 = u.host.find(':') != std::string::npos;
  std::string h = v6 ? "[" + u.host + "]" : u.host;
  if (u.port != (u.tls ? 443 : 80)) h += ":" + std::to_string(u.port);
  return h;
}

template <typename Stream>
asio::awaitable<void> transact(Stream& stream, const http::request<http::string_body>& req,
                               std::chrono::steady_clock::time_point deadline, Exchange& out) {
  auto tuple = asio::as_tuple(asio::use_awaitable);
  beast::get_lowest_layer(stream).expires_at(deadline);
  auto [wec, written] = co_await http::async_write(stream, req, tuple);
  if (wec) {
    out.error = describe("send", wec);
    co_return;
  }
  beast::flat_buffer buffer(kMaxResponseHeaderBytes + kMaxResponseBodyBytes);
  http::response_parser<http::string_body> parser;
  parser.header_limit(kMaxResponseHeaderBytes);
  // No limit while reading the header: Beast would refuse a large Content-Length before the
  // status is known. The body itself is read up to the limit below.
  parser.body_limit(boost::none);
  beast::get_lowest_layer(stream).expires_at(deadline);
  auto [hec, header_bytes] = co_await http::async_read_header(stream, buffer, parser, tuple);
  if (hec) {
    out.error = describe("response", hec);
    co_return;
  }
  out.status = static_cast<int>(parser.get().result_int());
  if (out.status >= 200 && out.status < 300) co_return;  // the body does not matter
  // For a failure, a bounded part of the body explains it; errors reading it change nothing.
  parser.body_limit(kMaxResponseBodyBytes);
  beast::get_lowest_layer(stream).expires_at(deadline);
  (void)co_await http::async_read(stream, buffer, parser, tuple);
  out.body = parser.get().body().substr(0, kErrorExcerptBytes);
}

asio::awaitable<void> exchange(const WebhookUrl& url, const http::request<http::string_body>& req, ssl::context* tls,
                               bool allow_private, std::chrono::steady_clock::time_point deadline, Exchange& out) {
  auto ex = co_await asio::this_coro::executor;
  auto tuple = asio::as_tuple(asio::use_awaitable);
  tcp::resolver resolver(ex);
  // Name resolution runs on Asio's resolver thread; cancelling makes it report at once (the
  // lookup itself ends when the system resolver gives up).
  asio::steady_timer guard(ex);
  guard.expires_at(deadline);
  guard.async_wait([&resolver](const beast::error_code& ec) {
    if (!ec) resolver.cancel();
  });
  auto [rec, endpoints] = co_await resolver.async_resolve(url.host, std::to_string(url.port), tuple);
  guard.cancel();
  if (rec) {
    out.error = rec == asio::error::operation_aborted ? std::string("resolve: timed out")
                                                      : fmt::format("resolve {}: {}", url.host, rec.message());
    co_return;
  }
  if (!allow_private) {
    for (const auto& entry : endpoints) {
      if (isPrivate(entry.endpoint().address())) {
        out.error = fmt::format("refused: {} is a loopback or private address (webhooks.allow_private is off)",
                                entry.endpoint().address().to_string());
        co_return;
      }
    }
  }
  beast::tcp_stream stream(ex);
  stream.expires_at(deadline);
  auto [cec, endpoint] = co_await stream.async_connect(endpoints, tuple);
  if (cec) {
    out.error = describe("connect", cec);
    co_return;
  }
  if (!url.tls) {
    co_await transact(stream, req, deadline, out);
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    co_return;
  }
  beast::ssl_stream<beast::tcp_stream> tls_stream(std::move(stream), *tls);
  beast::error_code ip_ec;
  asio::ip::make_address(url.host, ip_ec);
  if (ip_ec && !SSL_set_tlsext_host_name(tls_stream.native_handle(), url.host.c_str())) {
    out.error = "tls: cannot set the server name";
    co_return;
  }
  tls_stream.set_verify_mode(ssl::verify_peer);
  tls_stream.set_verify_callback(ssl::host_name_verification(url.host));
  beast::get_lowest_layer(tls_stream).expires_at(deadline);
  auto [hec] = co_await tls_stream.async_handshake(ssl::stream_base::client, tuple);
  if (hec) {
    out.error = describe("tls handshake", hec);
    co_return;
  }
  co_await transact(tls_stream, req, deadline, out);
  // No TLS close_notify exchange: the answer is complete, and waiting for the peer's would
  // only add a round trip.
}

}  // namespace

std::string_view deliveryStatusName(DeliveryStatus s) {
  switch (s) {
    case DeliveryStatus::kPending: return "pending";
    case DeliveryStatus::kDelivered: return "delivered";
    case DeliveryStatus::kFailed: return "failed";
  }
  return "pending";
}

Result<WebhookUrl> parseWebhookUrl(std::string_view url) {
  auto bad = [](std::string_view msg) { return fail(Code::kInvalidArgument, std::string(msg), "url"); };
  if (url.empty() || url.size() > kMaxUrlBytes) return bad(fmt::format("url must be 1-{} bytes", kMaxUrlBytes));
  for (unsigned char c : url) {
    if (c <= 0x20 || c >= 0x7f) return bad("url must not contain spaces, control or non-ASCII characters");
  }
  const auto sep = url.find("://");
  if (sep == std::string_view::npos) return bad("url must be an absolute http:// or https:// URL");
  WebhookUrl out;
  const std::string scheme = lower(url.substr(0, sep));
  if (scheme == "http") {
    out.tls = false;
    out.port = 80;
  } else if (scheme == "https") {
    out.tls = true;
    out.port = 443;
  } else {
    return bad("url scheme must be http or https");
  }
  const std::string_view rest = url.substr(sep + 3);
  if (rest.find('#') != std::string_view::npos) return bad("url must not have a fragment");
  const auto path_pos = rest.find_first_of("/?");
  const std::string_view authority = rest.substr(0, path_pos);
  out.target = path_pos == std::string_view::npos ? "/" : std::string(rest.substr(path_pos));
  if (out.target.front() == '?') out.target.insert(0, "/");
  if (authority.find('@') != std::string_view::npos) {
    return bad("user information in the url is not supported (receivers check the signature instead)");
  }
  std::string_view host, port;
  bool has_port = false;
  if (!authority.empty() && authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return bad("url has an unterminated IPv6 address");
    host = authority.substr(1, close - 1);
    const auto after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return bad("url has characters after the IPv6 address");
      port = after.substr(1);
      has_port = true;
    }
    beast::error_code ec;
    asio::ip::make_address_v6(std::string(host), ec);
    if (ec) return bad("url has an invalid IPv6 address");
  } else {
    const auto colon = authority.rfind(':');
    host = authority.substr(0, colon);
    if (colon != std::string_view::npos) {
      port = authority.substr(colon + 1);
      has_port = true;
    }
    for (char c : host) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.' && c != '_') {
        return bad("url host may contain only letters, digits, '-', '.' and '_'");
      }
    }
  }
  if (host.empty()) return bad("url must have a host");
  if (host.size() > 253) return bad("url host is longer than 253 characters");
  if (has_port) {
    int p = 0;
    auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (port.empty() || ec != std::errc() || ptr != port.data() + port.size() || p < 1 || p > 65535) {
      return bad("url port must be 1-65535");
    }
    out.port = p;
  }
  out.host = lower(host);
  return out;
}

WebhookOptions WebhookOptions::fromConfig(const Config& config) {
  WebhookOptions o;
  o.path = (std::filesystem::path(config.data_dir) / "webhooks.sqlite").string();
  o.sync_full = config.storage_sync_wal;
  o.timeout_ms = config.webhooks_timeout_ms;
  o.max_attempts = config.webhooks_max_attempts;
  o.concurrency = config.webhooks_concurrency;
  o.ca_file = config.webhooks_ca_file;
  o.allow_private = config.webhooks_allow_private;
  return o;
}

std::string WebhookService::signature(std::string_view secret, std::string_view timestamp, std::string_view body) {
  crypto_auth_hmacsha256_state state;
  crypto_auth_hmacsha256_init(&state, reinterpret_cast<const unsigned char*>(secret.data()), secret.size());
  crypto_auth_hmacsha256_update(&state, reinterpret_cast<const unsigned char*>(timestamp.data()), timestamp.size());
  crypto_auth_hmacsha256_update(&state, reinterpret_cast<const unsigned char*>("."), 1);
  crypto_auth_hmacsha256_update(&state, reinterpret_cast<const unsigned char*>(body.data()), body.size());
  unsigned char mac[crypto_auth_hmacsha256_BYTES];
  crypto_auth_hmacsha256_final(&state, mac);
  sodium_memzero(&state, sizeof state);
  return "sha256=" + hexEncode(std::string_view(reinterpret_cast<const char*>(mac), sizeof mac));
}

std::int64_t WebhookService::retryDelayMs(int attempts) {
  if (attempts <= 1) return 1000;
  if (attempts > 20) return kMaxRetryDelayMs;
  return std::min<std::int64_t>(std::int64_t{1000} << (attempts - 1), kMaxRetryDelayMs);
}

bool isPrivateAddress(std::string_view address) {
  beast::error_code ec;
  const auto a = asio::ip::make_address(std::string(address), ec);
  return !ec && isPrivate(a);
}

WebhookResponse WebhookService::httpPost(const WebhookRequest& request, const std::string& ca_file,
                                         bool allow_private) {
  WebhookResponse response;
  http::request<http::string_body> req{http::verb::post, request.url.target, 11};
  req.set(http::field::host, hostHeader(request.url));
  req.set(http::field::user_agent, fmt::format("Sensoworks-Webhook/{}", kVersion));
  req.set(http::field::content_type, "application/json");
  req.set(http::field::connection, "close");
  for (const auto& [name, value] : request.headers) req.set(name, value);
  req.body() = request.body;
  req.prepare_payload();

  std::unique_ptr<ssl::context> tls;
  if (request.url.tls) {
    tls = std::make_unique<ssl::context>(ssl::context::tls_client);
    beast::error_code ec;
    tls->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                     ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
    tls->set_default_verify_paths(ec);
    if (!ec && !ca_file.empty()) tls->load_verify_file(ca_file, ec);
    if (ec) {
      response.error = fmt::format("tls: cannot load trusted certificates: {}", ec.message());
      return response;
    }
  }
  Exchange out;
  asio::io_context ioc(1);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(std::max(1, request.timeout_ms));
  asio::co_spawn(ioc, exchange(request.url, req, tls.get(), allow_private, deadline, out),
                 [&out](std::exception_ptr e) {
                   if (!e) return;
                   try {
                     std::rethrow_exception(e);
                   } catch (const std::exception& ex) {
                     out.status = 0;
                     out.error = fmt::format("internal error: {}", ex.what());
                   }
                 });
  ioc.run();
  response.status = out.status;
  if (!out.error.empty()) {
    response.error = std::move(out.error);
  } else if (out.status < 200 || out.status >= 300) {
    const std::string text = excerpt(out.body);
    response.error = text.empty() ? fmt::format("HTTP {}", out.status) : fmt::format("HTTP {}: {}", out.status, text);
  }
  return response;
}

// ---- service ----

WebhookService::WebhookService(WebhookOptions options, Metrics* metrics)
    : options_(std::move(options)), metrics_(metrics) {}

Result<std::unique_ptr<WebhookService>> WebhookService::open(WebhookOptions options, Metrics* metrics) {
  if (sodium_init() < 0) return fail(Code::kInternal, "libsodium initialisation failed");
  if (!options.clock) options.clock = [] { return nowMs(); };
  if (!options.transport) {
    options.transport = [ca = options.ca_file, allow = options.allow_private](const WebhookRequest& r) {
      return httpPost(r, ca, allow);
    };
  }
  options.max_attempts = std::max(1, options.max_attempts);
  options.concurrency = std::clamp(options.concurrency, 1, 64);
  options.keep_finished = std::max<std::size_t>(1, options.keep_finished);
  std::unique_ptr<WebhookService> svc(new WebhookService(std::move(options), metrics));
  const std::filesystem::path path(svc->options_.path);
  std::error_code fs_ec;
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path(), fs_ec);
  auto db = sqlite::openDatabase(path.string(), svc->options_.sync_full, kMigrations, "webhooks");
  if (!db) return std::unexpected(db.error());
  svc->db_ = *db;
  if (metrics) {
    const std::string help = "Webhook deliveries finished, by result";
    svc->delivered_ = &metrics->counter("sw_webhook_deliveries_total", help, R"(result="delivered")");
    svc->failed_ = &metrics->counter("sw_webhook_deliveries_total", help, R"(result="failed")");
    svc->attempts_failed_ =
        &metrics->counter("sw_webhook_attempts_failed_total", "Webhook delivery attempts that did not get a 2xx");
    svc->dropped_ = &metrics->counter("sw_webhook_dropped_total",
                                      "Alarm notifications not queued (outbox full, bad alarm JSON, storage error)");
  }
  return svc;
}

WebhookService::~WebhookService() {
  stop();
  if (db_) sqlite3_close_v2(db_);
}

void WebhookService::start() {
  std::lock_guard lock(state_mutex_);
  if (!threads_.empty()) return;
  stopping_ = false;
  for (int i = 0; i < options_.concurrency; ++i) {
    threads_.emplace_back([this, i] {
      runtime::nameThisThread("sw-webhook-" + std::to_string(i));
      senderLoop();
    });
  }
}

void WebhookService::stop() {
  std::vector<std::thread> threads;
  {
    std::lock_guard lock(state_mutex_);
    stopping_ = true;
    threads.swap(threads_);
  }
  cv_.notify_all();
  for (auto& t : threads) t.join();
}

void WebhookService::wake() {
  {
    std::lock_guard lock(state_mutex_);
    ++wake_generation_;
  }
  cv_.notify_all();
}

// ---- CRUD ----

Result<Webhook> WebhookService::getLocked(const TenantId& tenant, const WebhookId& id) {
  Stmt s(db_, fmt::format("SELECT {} FROM webhooks WHERE id = ? AND tenant_id = ?", kWebhookCols).c_str());
  s.bind(1, id.str()).bind(2, tenant.str());
  const int rc = s.step();
  if (rc == SQLITE_ROW) return readWebhook(s);
  if (rc != SQLITE_DONE) return std::unexpected(dbError(db_, "read"));
  return fail(Code::kNotFound, "webhook not found");
}

Result<Webhook> WebhookService::createWebhook(const TenantId& tenant, WebhookInput in) {
  if (auto st = validateInput(in, options_.allow_private); !st) return std::unexpected(st.error());
  Webhook w;
  w.id = WebhookId(newUuid());
  w.tenant_id = tenant;
  w.name = std::move(in.name);
  w.url = std::move(in.url);
  w.secret = in.secret ? std::move(*in.secret) : generateSecret();
  w.min_severity = in.min_severity;
  w.enabled = in.enabled;
  w.created_ms = w.updated_ms = options_.clock();
  {
    std::lock_guard lock(db_mutex_);
    Transaction tx(db_);
    if (!tx.began()) return std::unexpected(dbError(db_, "create"));
    Stmt count(db_, "SELECT COUNT(*) FROM webhooks WHERE tenant_id = ?");
    count.bind(1, tenant.str());
    if (count.step() != SQLITE_ROW) return std::unexpected(dbError(db_, "create"));
    if (static_cast<std::size_t>(count.i64(0)) >= options_.max_webhooks_per_tenant) {
      return fail(Code::kResourceExhausted,
                  fmt::format("a tenant may have at most {} webhooks", options_.max_webhooks_per_tenant));
    }
    Stmt s(db_,
           "INSERT INTO webhooks(id, tenant_id, name, url, secret, min_severity, enabled, created_ms, updated_ms, "
           "failing) VALUES (?,?,?,?,?,?,?,?,?,0)");
    s.bind(1, w.id.str()).bind(2, tenant.str()).bind(3, w.name).bind(4, w.url).bind(5, w.secret);
    s.bind(6, std::string(severityName(w.min_severity))).bind(7, std::int64_t{w.enabled}).bind(8, w.created_ms);
    s.bind(9, w.updated_ms);
    if (s.step() != SQLITE_DONE) return std::unexpected(dbError(db_, "create"));
    if (auto st = tx.commit(); !st) return std::unexpected(st.error());
  }
  invalidate(tenant);
  return w;
}

Result<Webhook> WebhookService::getWebhook(const TenantId& tenant, const WebhookId& id) {
  std::lock_guard lock(db_mutex_);
  return getLocked(tenant, id);
}

Result<storage::Page<Webhook>> WebhookService::listWebhooks(const TenantId& tenant, const storage::PageRequest& page) {
  auto cur = parseCursor(page.after);
  if (!cur) return std::unexpected(cur.error());
  std::lock_guard lock(db_mutex_);
  Stmt s(db_, fmt::format("SELECT {} FROM webhooks WHERE tenant_id = ?1 AND (?2 = 0 OR (name, id) > (?3, ?4)) "
                          "ORDER BY name, id LIMIT ?5",
                          kWebhookCols)
                  .c_str());
  s.bind(1, tenant.str()).bind(2, std::int64_t{!page.after.empty()}).bind(3, cur->first).bind(4, cur->second);
  s.bind(5, static_cast<std::int64_t>(page.page_size + 1));
  storage::Page<Webhook> out;
  while (s.step() == SQLITE_ROW) out.items.push_back(readWebhook(s));
  if (s.rc() != SQLITE_DONE) return std::unexpected(dbError(db_, "list"));
  if (out.items.size() > page.page_size) {
    out.items.pop_back();
    out.next_cursor = makeCursor(out.items.back().name, out.items.back().id.str());
  }
  return out;
}

Result<Webhook> WebhookService::updateWebhook(const TenantId& tenant, const WebhookId& id, WebhookInput in) {
  if (auto st = validateInput(in, options_.allow_private); !st) return std::unexpected(st.error());
  Result<Webhook> out;
  {
    std::lock_guard lock(db_mutex_);
    Stmt s(db_,
           "UPDATE webhooks SET name = ?, url = ?, secret = COALESCE(?, secret), min_severity = ?, enabled = ?, "
           "updated_ms = MAX(?, updated_ms) WHERE id = ? AND tenant_id = ?");
    s.bind(1, in.name).bind(2, in.url);
    bindOpt(s, 3, in.secret);
    s.bind(4, std::string(severityName(in.min_severity)));
    s.bind(5, std::int64_t{in.enabled}).bind(6, options_.clock()).bind(7, id.str()).bind(8, tenant.str());
    if (s.step() != SQLITE_DONE) return std::unexpected(dbError(db_, "update"));
    if (sqlite3_changes(db_) == 0) return fail(Code::kNotFound, "webhook not found");
    out = getLocked(tenant, id);
  }
  invalidate(tenant);
  return out;
}

Status WebhookService::deleteWebhook(const TenantId& tenant, const WebhookId& id) {
  {
    std::lock_guard lock(db_mutex_);
    Stmt s(db_, "DELETE FROM webhooks WHERE id = ? AND tenant_id = ?");
    s.bind(1, id.str()).bind(2, tenant.str());
    if (s.step() != SQLITE_DONE) return std::unexpected(dbError(db_, "delete"));
    if (sqlite3_changes(db_) == 0) return fail(Code::kNotFound, "webhook not found");
  }
  invalidate(tenant);
  {
    std::lock_guard lock(state_mutex_);
    not_before_.erase(id);
  }
  return ok();
}

Status WebhookService::deleteTenant(const TenantId& tenant) {
  std::vector<WebhookId> ids;
  {
    std::lock_guard lock(db_mutex_);
    Transaction tx(db_);
    if (!tx.began()) return std::unexpected(dbError(db_, "delete tenant"));
    {
      Stmt s(db_, "SELECT id FROM webhooks WHERE tenant_id = ?");
      s.bind(1, tenant.str());
      while (s.step() == SQLITE_ROW) ids.emplace_back(s.text(0));
      if (s.rc() != SQLITE_DONE) return std::unexpected(dbError(db_, "delete tenant"));
    }
    for (const char* sql : {"DELETE FROM deliveries WHERE tenant_id = ?", "DELETE FROM webhooks WHERE tenant_id = ?"}) {
      Stmt s(db_, sql);
      s.bind(1, tenant.str());
      if (s.step() != SQLITE_DONE) return std::unexpected(dbError(db_, "delete tenant"));
    }
    if (auto st = tx.commit(); !st) return st;
  }
  invalidate(tenant);
  std::lock_guard lock(state_mutex_);
  for (const auto& id : ids) not_before_.erase(id);
  return ok();
}

Result<storage::Page<Delivery>> WebhookService::listDeliveries(const TenantId& tenant, const WebhookId& id,
                                                               const storage::PageRequest& page) {
  auto cur = parseCursor(page.after);
  if (!cur) return std::unexpected(cur.error());
  std::int64_t after_ms = 0;
  if (!page.after.empty()) {
    const auto& k = cur->first;
    auto [ptr, ec] = std::from_chars(k.data(), k.data() + k.size(), after_ms);
    if (ec != std::errc() || ptr != k.data() + k.size())
      return fail(Code::kInvalidArgument, "malformed cursor", "cursor");
  }
  std::lock_guard lock(db_mutex_);
  if (auto w = getLocked(tenant, id); !w) return std::unexpected(w.error());
  Stmt s(db_, fmt::format("SELECT {} FROM deliveries WHERE webhook_id = ?1 AND (?2 = 0 OR (created_ms, id) < (?3, ?4)) "
                          "ORDER BY created_ms DESC, id DESC LIMIT ?5",
                          kDeliveryCols)
                  .c_str());
  s.bind(1, id.str()).bind(2, std::int64_t{!page.after.empty()}).bind(3, after_ms).bind(4, cur->second);
  s.bind(5, static_cast<std::int64_t>(page.page_size + 1));
  storage::Page<Delivery> out;
  while (s.step() == SQLITE_ROW) out.items.push_back(readDelivery(s));
  if (s.rc() != SQLITE_DONE) return std::unexpected(dbError(db_, "list deliveries"));
  if (out.items.size() > page.page_size) {
    out.items.pop_back();
    out.next_cursor = makeCursor(std::to_string(out.items.back().created_ms), out.items.back().id);
  }
  return out;
}

// ---- outbox ----

Result<Delivery> WebhookService::enqueueLocked(const Webhook& hook, std::string event,
                                               std::optional<std::string> alarm_id, std::string payload,
                                               std::int64_t now, bool& dropped) {
  dropped = false;
  Stmt count(db_, "SELECT COUNT(*) FROM deliveries WHERE webhook_id = ? AND status = 'pending'");
  count.bind(1, hook.id.str());
  if (count.step() != SQLITE_ROW) return std::unexpected(dbError(db_, "enqueue"));
  if (static_cast<std::size_t>(count.i64(0)) >= options_.max_pending_per_webhook) {
    dropped = true;
    return fail(Code::kResourceExhausted,
                fmt::format("the webhook has {} deliveries waiting (the limit): its receiver is not keeping up",
                            options_.max_pending_per_webhook));
  }
  Delivery d;
  d.id = newUuid();
  d.webhook_id = hook.id;
  d.tenant_id = hook.tenant_id;
  d.event = std::move(event);
  d.alarm_id = std::move(alarm_id);
  d.payload = std::move(payload);
  d.next_attempt_ms = now;
  d.created_ms = now;
  Stmt s(db_,
         "INSERT INTO deliveries(id, webhook_id, tenant_id, event, alarm_id, body, status, attempts, next_attempt_ms, "
         "created_ms) VALUES (?,?,?,?,?,?,'pending',0,?,?)");
  s.bind(1, d.id).bind(2, d.webhook_id.str()).bind(3, d.tenant_id.str()).bind(4, d.event);
  bindOpt(s, 5, d.alarm_id);
  s.bind(6, d.payload).bind(7, now).bind(8, now);
  if (s.step() != SQLITE_DONE) return std::unexpected(dbError(db_, "enqueue"));
  return d;
}

Result<Delivery> WebhookService::ping(const TenantId& tenant, const WebhookId& id) {
  Result<Delivery> d;
  {
    std::lock_guard lock(db_mutex_);
    auto hook = getLocked(tenant, id);
    if (!hook) return std::unexpected(hook.error());
    std::string payload = fmt::format(R"({{"id":{},"name":{}}})", jsonString(hook->id.str()), jsonString(hook->name));
    bool dropped = false;
    d = enqueueLocked(*hook, "ping", std::nullopt, std::move(payload), options_.clock(), dropped);
  }
  if (d) wake();
  return d;
}

WebhookService::Targets WebhookService::targetsOf(const TenantId& tenant) {
  std::uint64_t generation = 0;
  {
    std::lock_guard lock(cache_mutex_);
    if (auto it = cache_.find(tenant); it != cache_.end()) return it->second;
    generation = cache_generation_;
  }
  auto targets = std::make_shared<std::vector<Target>>();
  {
    std::lock_guard lock(db_mutex_);
    Stmt s(db_, "SELECT id, min_severity FROM webhooks WHERE tenant_id = ? AND enabled = 1");
    s.bind(1, tenant.str());
    while (s.step() == SQLITE_ROW) {
      targets->push_back(Target{WebhookId(s.text(0)), parseSeverity(s.text(1)).value_or(Severity::kInfo)});
    }
    if (s.rc() != SQLITE_DONE) {
      logger("webhooks")
          ->error("msg=\"cannot read webhooks\" tenant={} error=\"{}\"", tenant.str(), sqlite3_errmsg(db_));
      return targets;  // not cached: the next call tries again
    }
  }
  std::lock_guard lock(cache_mutex_);
  // A CRUD change since the read above: the result may be stale, so it is not cached.
  if (generation == cache_generation_) {
    if (cache_.size() >= kMaxCachedTenants) cache_.clear();
    cache_.emplace(tenant, targets);
  }
  return targets;
}

void WebhookService::invalidate(const TenantId& tenant) {
  std::lock_guard lock(cache_mutex_);
  cache_.erase(tenant);
  ++cache_generation_;
}

void WebhookService::notifyAlarm(const TenantId& tenant, std::string_view event, Severity severity,
                                 std::string_view alarm_json) {
  const Targets targets = targetsOf(tenant);
  if (targets->empty()) return;
  std::vector<const Target*> matching;
  for (const auto& t : *targets) {
    if (atLeast(severity, t.min_severity)) matching.push_back(&t);
  }
  if (matching.empty()) return;
  auto log = logger("webhooks");
  auto drop = [&](std::size_t n) {
    if (dropped_) dropped_->inc(n);
  };
  const std::string ev = normalizeEvent(event);
  if (ev.empty()) {
    log->error("msg=\"unknown alarm event, not notified\" tenant={} event=\"{}\"", tenant.str(), event.substr(0, 64));
    drop(matching.size());
    return;
  }
  if (alarm_json.size() > options_.max_payload_bytes) {
    log->error("msg=\"alarm JSON too large, not notified\" tenant={} bytes={}", tenant.str(), alarm_json.size());
    drop(matching.size());
    return;
  }
  boost::json::error_code ec;
  const boost::json::value alarm = boost::json::parse(alarm_json, ec);
  if (ec || !alarm.is_object()) {
    log->error("msg=\"alarm is not a JSON object, not notified\" tenant={}", tenant.str());
    drop(matching.size());
    return;
  }
  std::optional<std::string> alarm_id;
  if (const auto* id = alarm.as_object().if_contains("id"); id && id->is_string()) {
    alarm_id = std::string(id->as_string());
  }
  const std::int64_t now = options_.clock();
  std::size_t queued = 0;
  {
    std::lock_guard lock(db_mutex_);
    Transaction tx(db_);
    if (!tx.began()) {
      log->error("msg=\"cannot queue alarm notifications\" tenant={} error=\"{}\"", tenant.str(), sqlite3_errmsg(db_));
      drop(matching.size());
      return;
    }
    for (const Target* t : matching) {
      auto hook = getLocked(tenant, t->id);
      if (!hook || !hook->enabled) continue;  // deleted or disabled since the cache was filled
      bool dropped = false;
      auto d = enqueueLocked(*hook, ev, alarm_id, std::string(alarm_json), now, dropped);
      if (d) {
        ++queued;
        continue;
      }
      drop(1);
      log->warn("msg=\"alarm notification dropped\" tenant={} webhook={} error=\"{}\"", tenant.str(), t->id.str(),
                d.error().message);
    }
    if (auto st = tx.commit(); !st) {
      log->error("msg=\"cannot queue alarm notifications\" tenant={} error=\"{}\"", tenant.str(), st.error().message);
      drop(queued);
      return;
    }
  }
  if (queued) wake();
}

// ---- sender ----

std::optional<WebhookService::Job> WebhookService::claim(std::int64_t now, std::optional<std::int64_t>& next_due) {
  // Caller holds state_mutex_. The earliest pending delivery of each webhook (index lookups).
  std::vector<std::pair<WebhookId, std::int64_t>> heads;
  {
    std::lock_guard lock(db_mutex_);
    Stmt s(db_,
           "SELECT id, due FROM (SELECT w.id AS id, (SELECT MIN(d.next_attempt_ms) FROM deliveries d WHERE "
           "d.webhook_id = w.id AND d.status = 'pending') AS due FROM webhooks w) WHERE due IS NOT NULL");
    while (s.step() == SQLITE_ROW) heads.emplace_back(WebhookId(s.text(0)), s.i64(1));
    if (s.rc() != SQLITE_DONE) {
      logger("webhooks")->error("msg=\"cannot read the outbox\" error=\"{}\"", sqlite3_errmsg(db_));
      next_due = now + 1000;
      return std::nullopt;
    }
  }
  const std::pair<WebhookId, std::int64_t>* best = nullptr;
  std::int64_t best_due = 0;
  for (const auto& head : heads) {
    if (in_flight_.contains(head.first)) continue;
    std::int64_t due = head.second;
    if (auto it = not_before_.find(head.first); it != not_before_.end()) due = std::max(due, it->second);
    if (!best || due < best_due) {
      best = &head;
      best_due = due;
    }
  }
  if (!best) return std::nullopt;
  if (best_due > now) {
    next_due = best_due;
    return std::nullopt;
  }
  std::lock_guard lock(db_mutex_);
  Stmt s(db_,
         "SELECT id FROM deliveries WHERE webhook_id = ? AND status = 'pending' ORDER BY next_attempt_ms, created_ms, "
         "rowid LIMIT 1");
  s.bind(1, best->first.str());
  if (s.step() != SQLITE_ROW) {
    next_due = now;  // gone meanwhile: look again
    return std::nullopt;
  }
  Job job{s.text(0), best->first};
  in_flight_.insert(job.webhook_id);
  return job;
}

void WebhookService::attempt(const Job& job) {
  auto log = logger("webhooks");
  Delivery d;
  Webhook hook;
  {
    std::lock_guard lock(db_mutex_);
    Stmt s(db_, fmt::format("SELECT {} FROM deliveries WHERE id = ?", kDeliveryCols).c_str());
    s.bind(1, job.delivery_id);
    if (s.step() != SQLITE_ROW) return;
    d = readDelivery(s);
    if (d.status != DeliveryStatus::kPending) return;
    auto h = getLocked(d.tenant_id, d.webhook_id);
    if (!h) return;
    hook = std::move(*h);
  }
  const std::int64_t sent_ms = options_.clock();
  WebhookResponse response;
  if (auto url = parseWebhookUrl(hook.url); !url) {
    response.error = url.error().message;
  } else {
    const std::string timestamp = std::to_string(sent_ms);
    WebhookRequest request;
    request.url = std::move(*url);
    request.body = buildBody(d, sent_ms);
    request.timeout_ms = options_.timeout_ms;
    request.headers = {{"X-Sensoworks-Event", d.event},
                       {"X-Sensoworks-Delivery", d.id},
                       {"X-Sensoworks-Timestamp", timestamp},
                       {"X-Sensoworks-Signature", signature(hook.secret, timestamp, request.body)}};
    response = options_.transport(request);
  }
  const std::int64_t done_ms = options_.clock();
  const bool delivered = response.status >= 200 && response.status < 300;
  const int attempts = d.attempts + 1;
  const bool gave_up = !delivered && attempts >= options_.max_attempts;
  std::optional<std::int64_t> status_code;
  if (response.status > 0) status_code = response.status;
  std::string error = response.error.empty() ? fmt::format("HTTP {}", response.status) : response.error;
  {
    std::lock_guard lock(db_mutex_);
    Transaction tx(db_);
    Stmt s(db_,
           "UPDATE deliveries SET status = ?, attempts = ?, last_status_code = ?, last_error = ?, next_attempt_ms = ?, "
           "delivered_ms = ? WHERE id = ? AND status = 'pending'");
    s.bind(1, std::string(delivered ? "delivered" : gave_up ? "failed" : "pending")).bind(2, std::int64_t{attempts});
    bindOpt(s, 3, status_code);
    if (delivered)
      s.bindNull(4);
    else
      s.bind(4, error);
    if (delivered || gave_up)
      s.bindNull(5);
    else
      s.bind(5, done_ms + retryDelayMs(attempts));
    if (delivered)
      s.bind(6, done_ms);
    else
      s.bindNull(6);
    s.bind(7, d.id);
    bool ok_write = tx.began() && s.step() == SQLITE_DONE;
    if (ok_write) {
      Stmt w(db_, delivered ? "UPDATE webhooks SET last_delivery_ms = ?, failing = 0 WHERE id = ?"
                            : "UPDATE webhooks SET last_error = ?, failing = 1 WHERE id = ?");
      if (delivered)
        w.bind(1, done_ms);
      else
        w.bind(1, error);
      w.bind(2, hook.id.str());
      ok_write = w.step() == SQLITE_DONE;
    }
    if (ok_write && (delivered || gave_up)) {
      // Keep the newest keep_finished finished deliveries of the webhook.
      Stmt p(db_,
             "DELETE FROM deliveries WHERE webhook_id = ?1 AND status != 'pending' AND rowid NOT IN (SELECT rowid FROM "
             "deliveries WHERE webhook_id = ?1 AND status != 'pending' ORDER BY created_ms DESC, id DESC LIMIT ?2)");
      p.bind(1, hook.id.str()).bind(2, static_cast<std::int64_t>(options_.keep_finished));
      ok_write = p.step() == SQLITE_DONE;
    }
    if (!ok_write || !tx.commit()) {
      log->error("msg=\"cannot record a webhook attempt\" delivery={} error=\"{}\"", d.id, sqlite3_errmsg(db_));
    }
  }
  if (delivered) {
    if (delivered_) delivered_->inc();
    log->debug("msg=\"webhook delivered\" webhook={} delivery={} attempts={} status={}", hook.id.str(), d.id, attempts,
               response.status);
  } else {
    if (attempts_failed_) attempts_failed_->inc();
    if (gave_up && failed_) failed_->inc();
    log->info("msg=\"webhook attempt failed\" webhook={} delivery={} attempts={} final={} error=\"{}\"", hook.id.str(),
              d.id, attempts, gave_up, error);
  }
  std::lock_guard lock(state_mutex_);
  if (delivered)
    not_before_.erase(hook.id);
  else
    not_before_[hook.id] = done_ms + retryDelayMs(attempts);
}

void WebhookService::finish(const Job& job) {
  {
    std::lock_guard lock(state_mutex_);
    in_flight_.erase(job.webhook_id);
    ++wake_generation_;
  }
  cv_.notify_all();
}

void WebhookService::senderLoop() {
  std::unique_lock lock(state_mutex_);
  while (!stopping_) {
    const std::uint64_t seen = wake_generation_;
    std::optional<std::int64_t> next_due;
    auto job = claim(options_.clock(), next_due);
    if (job) {
      lock.unlock();
      attempt(*job);
      finish(*job);
      lock.lock();
      continue;
    }
    std::int64_t wait_ms = 60'000;
    if (next_due) wait_ms = std::clamp<std::int64_t>(*next_due - options_.clock(), 1, wait_ms);
    cv_.wait_for(lock, std::chrono::milliseconds(wait_ms), [&] { return stopping_ || wake_generation_ != seen; });
  }
}

std::size_t WebhookService::deliverDue() {
  std::size_t made = 0;
  for (;;) {
    std::optional<Job> job;
    {
      std::lock_guard lock(state_mutex_);
      std::optional<std::int64_t> next_due;
      job = claim(options_.clock(), next_due);
    }
    if (!job) return made;
    attempt(*job);
    finish(*job);
    ++made;
  }
}

}  // namespace sw::analytics
