#include "api/ws_session.h"

#include <boost/asio.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include "api/problem.h"
#include "core/clock.h"
#include "core/logging.h"
#include "runtime/offload.h"

namespace sw::api {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using asio::awaitable;
using Clock = std::chrono::steady_clock;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

namespace {

// Bytes of one message read per step; what exceeds ws.max_message_bytes is read and discarded.
constexpr std::size_t kReadChunk = 16 * 1024;
// A message this much larger than ws.max_message_bytes fails the connection (close 1009).
constexpr std::size_t kHardMessageFactor = 16;
// After a close was asked for, the socket is shut this long later if the close did not finish
// (a client that reads nothing never lets the close frame through).
constexpr std::chrono::seconds kCloseGrace{10};
// At shutdown (1001) the process waits for its sockets: shorter.
constexpr std::chrono::seconds kShutdownCloseGrace{1};
constexpr std::chrono::seconds kTick{1};

// GCC 12 mishandles temporaries with non-trivial destructors inside co_await expressions
// (destroyed twice): the coroutines below pass such values only by reference to named locals,
// and offloaded lambdas capture pointers and references only.

// One socket: three coroutines on its executor share it (reader, writer, housekeeping), so its
// state needs no lock. The LiveConnection is the part other threads reach.
struct WsSession {
  WsSession(asio::ip::tcp::socket&& socket, WsEnv e)
      : ws(std::move(socket)), env(e), wake(ws.get_executor()), tick(ws.get_executor()) {}
  ~WsSession() { env.hub.releaseSocket(); }

  websocket::stream<beast::tcp_stream> ws;
  WsEnv env;
  asio::steady_timer wake;  // the writer sleeps on it; cancelled to wake it
  asio::steady_timer tick;  // housekeeping
  std::shared_ptr<LiveConnection> conn;
  bool done = false;  // the reader ended: the others stop
  std::optional<LiveIdentity> identity;
  Clock::time_point auth_deadline{};
  Clock::time_point next_recheck{};
  std::optional<Clock::time_point> hard_close_at;

  void shut() {
    beast::error_code ignored;
    beast::get_lowest_layer(ws).socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    beast::get_lowest_layer(ws).socket().close(ignored);
  }
  void closeWithError(int code, Code error, std::string_view detail) {
    conn->send(errorMessage({}, error, detail));
    conn->close(code, std::string(detail), true);
  }
};

awaitable<void> writer(std::shared_ptr<WsSession> s) {
  std::string message;
  while (!s->done) {
    if (s->conn->next(message)) {
      auto [ec, n] = co_await s->ws.async_write(asio::buffer(message), kTuple);
      s->conn->sent(message.size());
      if (ec) {
        s->shut();
        break;
      }
      continue;
    }
    if (auto c = s->conn->closeRequested()) {
      // The reader sees the client's answer (error::closed) and ends the session.
      const websocket::close_reason reason(static_cast<websocket::close_code>(c->code), c->reason);
      co_await s->ws.async_close(reason, kTuple);
      break;
    }
    s->wake.expires_at(Clock::time_point::max());
    co_await s->wake.async_wait(kTuple);
  }
}

awaitable<void> housekeeping(std::shared_ptr<WsSession> s) {
  const auto recheck = std::chrono::seconds(s->env.config.ws_auth_recheck_s);
  while (!s->done) {
    s->tick.expires_after(kTick);
    co_await s->tick.async_wait(kTuple);
    if (s->done) break;
    const auto now = Clock::now();
    if (!s->identity) {
      if (now >= s->auth_deadline && !s->conn->closing()) {
        s->closeWithError(kWsCloseUnauthenticated, Code::kUnauthenticated,
                          "no auth message in time: send {\"type\":\"auth\",\"token\":...} first");
      }
    } else if (nowMs() >= s->identity->expires_at_ms) {
      if (!s->conn->closing()) {
        s->closeWithError(kWsCloseUnauthenticated, Code::kUnauthenticated, "the token expired");
      }
    } else if (now >= s->next_recheck && !s->conn->closing()) {
      s->next_recheck = now + recheck;
      const LiveIdentity id = *s->identity;
      LiveHub* hub = &s->env.hub;
      auto r = co_await runtime::offload(s->env.pool, [hub, &id] { return hub->recheck(id); });
      if (s->done) break;
      if (r && !*r) s->closeWithError(kWsCloseUnauthenticated, Code::kUnauthenticated, r->error().message);
    }
    s->conn->checkSlow(now);
    if (auto c = s->conn->closeRequested()) {
      if (!s->hard_close_at) {
        s->hard_close_at = now + (c->code == kWsCloseGoingAway ? kShutdownCloseGrace : kCloseGrace);
      } else if (now >= *s->hard_close_at) {
        s->shut();
        break;
      }
    }
  }
}

awaitable<void> authenticate(WsSession& session, const std::string& token) {
  WsSession* s = &session;
  LiveHub* hub = &s->env.hub;
  auto r = co_await runtime::offload(s->env.pool, [hub, &token] { return hub->authenticate(token); });
  if (s->done) co_return;
  if (!r) {  // the pool is saturated
    s->conn->send(errorMessage({}, Code::kResourceExhausted, "server busy, retry later"));
    if (!s->identity) s->conn->close(kWsCloseTryAgainLater, "server busy", true);
    co_return;
  }
  if (!*r) {
    s->conn->send(errorMessage({}, Code::kUnauthenticated, r->error().message));
    // A failed refresh leaves the current token in force until it expires.
    if (!s->identity) s->conn->close(kWsCloseUnauthenticated, "unauthenticated", true);
    co_return;
  }
  LiveIdentity id = std::move(**r);
  if (s->identity) {
    const Principal& was = s->identity->principal;
    if (id.principal.user_id != was.user_id) {
      s->conn->send(errorMessage({}, Code::kPermissionDenied, "a refresh must carry a token of the same user"));
      co_return;
    }
    if (id.principal.role != was.role || id.principal.tenant_id != was.tenant_id) {
      s->closeWithError(kWsCloseUnauthenticated, Code::kUnauthenticated, "the user's role changed");
      co_return;
    }
    s->identity->expires_at_ms = id.expires_at_ms;
    s->conn->setExpiry(id.expires_at_ms);
  } else {
    s->identity = id;
    s->env.hub.attach(s->conn, id);
    s->next_recheck = Clock::now() + std::chrono::seconds(s->env.config.ws_auth_recheck_s);
  }
  s->conn->send(authOkMessage(*s->identity));
}

awaitable<void> handle(WsSession& session, const ClientMessage& m) {
  WsSession* s = &session;
  if (m.type == ClientMessage::Type::kPing) {
    s->conn->send(R"({"type":"pong"})");
    co_return;
  }
  if (m.type == ClientMessage::Type::kAuth) {
    co_await authenticate(*s, m.token);
    co_return;
  }
  if (!s->identity) {
    s->conn->send(errorMessage(m.sub, Code::kUnauthenticated, "authenticate first"));
    co_return;
  }
  if (m.type == ClientMessage::Type::kUnsubscribe) {
    if (!s->env.hub.unsubscribe(*s->conn, m.sub)) {
      s->conn->send(errorMessage(m.sub, Code::kNotFound, "no such subscription"));
    }
    co_return;
  }
  LiveHub* hub = &s->env.hub;
  const std::shared_ptr<LiveConnection>& conn = s->conn;
  const SubscribeRequest& req = m.subscribe;
  auto done = co_await runtime::offload(s->env.pool, [hub, &conn, &req] {
    // An exception on a pool thread would end the process (the HTTP path catches them too).
    try {
      hub->subscribe(conn, req);
    } catch (const std::exception& e) {
      logger("ws")->error("msg=\"subscribe failed\" error=\"{}\"", e.what());
      conn->send(errorMessage(req.sub, Code::kInternal, "internal error"));
    }
    return true;
  });
  if (!done) s->conn->send(errorMessage(m.sub, Code::kResourceExhausted, "server busy, retry later"));
}

awaitable<void> readLoop(WsSession& session) {
  WsSession* s = &session;
  const std::size_t max = s->env.config.ws_max_message_bytes;
  beast::flat_buffer buffer;
  for (;;) {
    buffer.clear();
    bool too_big = false;
    do {
      auto [ec, n] = co_await s->ws.async_read_some(buffer, kReadChunk, kTuple);
      if (ec) co_return;  // closed (error::closed after a close handshake), timed out, reset
      if (buffer.size() > max) {
        too_big = true;
        buffer.clear();
      }
    } while (!s->ws.is_message_done());
    if (too_big) {
      s->conn->send(
          errorMessage({}, Code::kResourceExhausted, fmt::format("a message may have at most {} bytes", max)));
      continue;
    }
    if (s->ws.got_binary()) {
      s->conn->send(errorMessage({}, Code::kInvalidArgument, "send JSON in text messages"));
      continue;
    }
    std::string_view text(static_cast<const char*>(buffer.data().data()), buffer.size());
    auto m = parseClientMessage(text);
    if (!m) {
      s->conn->send(errorMessage(m.error().sub, m.error().code, m.error().detail));
      continue;
    }
    co_await handle(*s, *m);
  }
}

}  // namespace

bool isWebSocketUpgrade(const http::request<http::string_body>& request) {
  return websocket::is_upgrade(request);
}

awaitable<void> serveWebSocket(WsEnv env, asio::ip::tcp::socket& socket, http::request<http::string_body>& request,
                               const std::optional<std::string>& token) {
  if (!env.hub.reserveSocket(env.config.ws_max_connections)) {
    http::response<http::string_body> res{http::status::service_unavailable, request.version()};
    Response p = problem(503, "unavailable", "too many WebSocket connections, retry later");
    res.set(http::field::server, "sensoworks");
    res.set(http::field::content_type, p.content_type);
    res.body() = std::move(p.body);
    res.keep_alive(false);
    res.prepare_payload();
    beast::tcp_stream stream(std::move(socket));
    stream.expires_after(std::chrono::seconds(10));
    co_await http::async_write(stream, res, kTuple);
    beast::error_code ignored;
    stream.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
    co_return;
  }
  auto s = std::make_shared<WsSession>(std::move(socket), env);  // releases the slot when freed
  websocket::stream_base::timeout timeouts;
  timeouts.handshake_timeout = kCloseGrace;
  timeouts.idle_timeout = std::chrono::seconds(env.config.ws_idle_timeout_s);
  timeouts.keep_alive_pings = true;
  s->ws.set_option(timeouts);
  s->ws.set_option(websocket::stream_base::decorator(
      [](websocket::response_type& res) { res.set(http::field::server, "sensoworks"); }));
  s->ws.read_message_max(std::max<std::size_t>(env.config.ws_max_message_bytes * kHardMessageFactor, 1 << 20));
  s->ws.text(true);
  auto [aec] = co_await s->ws.async_accept(request, kTuple);
  if (aec) co_return;

  auto ex = s->ws.get_executor();
  std::weak_ptr<WsSession> weak = s;
  s->conn = env.hub.newConnection([weak, ex] {
    asio::post(ex, [weak] {
      if (auto session = weak.lock()) session->wake.cancel();
    });
  });
  s->auth_deadline = Clock::now() + std::chrono::seconds(env.config.ws_auth_timeout_s);
  asio::co_spawn(ex, writer(s), asio::detached);
  asio::co_spawn(ex, housekeeping(s), asio::detached);
  if (token) co_await authenticate(*s, *token);
  co_await readLoop(*s);

  s->done = true;
  env.hub.detach(*s->conn);
  s->wake.cancel();
  s->tick.cancel();
  s->shut();
}

}  // namespace sw::api
