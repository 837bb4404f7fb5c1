#pragma once
// The WebSocket endpoint GET /api/v1/ws (docs/websocket.md) on Beast. Internal to the HTTP
// server: included only by http_server.cc and ws_session.cc, which hold every Beast template.
// The protocol's logic (parsing, subscriptions, queues) is in LiveHub, which has no Beast.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <optional>
#include <string>

#include "api/live_hub.h"
#include "core/config.h"
#include "runtime/blocking_pool.h"

namespace sw::api {

struct WsEnv {
  const Config& config;
  runtime::BlockingPool& pool;  // token checks and snapshots (they read the stores)
  LiveHub& hub;
};

bool isWebSocketUpgrade(const boost::beast::http::request<boost::beast::http::string_body>& request);

// Runs one WebSocket connection on the caller's executor until it ends (the socket is closed
// then). socket: released from the HTTP stream, moved from; request: the upgrade request, moved
// from; token: the ?token= query parameter, if any. The arguments are references (to the
// caller's named locals) because GCC 12 may destroy non-trivial temporaries of a co_await
// expression twice. Answers 503 without upgrading when ws.max_connections sockets are open.
boost::asio::awaitable<void> serveWebSocket(WsEnv env, boost::asio::ip::tcp::socket& socket,
                                            boost::beast::http::request<boost::beast::http::string_body>& request,
                                            const std::optional<std::string>& token);

}  // namespace sw::api
