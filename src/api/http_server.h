#pragma once
// HTTP/1.1 server on Boost.Beast. Connections are spread over the IoWorkers; each request's
// handler runs on the BlockingPool (handlers touch storage), and the response is written back on
// the connection's worker. When the pool's queue is full the server answers 503 at once.
// A deferred response (Response::deferred, e.g. RPC waiting for a device) is then awaited on the
// connection's worker without holding a pool thread; it counts as in flight until written.
// GET /api/v1/ws with a WebSocket upgrade is handed to the live-data endpoint (ws_session.cc,
// docs/websocket.md) when a LiveHub is set. The IoWorkers must outlive the server. Beast stays
// inside http_server.cc and ws_session.cc.
#include <atomic>
#include <memory>

#include "api/router.h"
#include "core/config.h"
#include "core/metrics.h"
#include "runtime/blocking_pool.h"
#include "runtime/io_workers.h"

namespace sw::api {

class LiveHub;

class HttpServer {
 public:
  HttpServer(const Config& config, runtime::IoWorkers& workers, runtime::BlockingPool& pool, const Router& router,
             Metrics& metrics);
  ~HttpServer();
  // Binds and starts accepting; returns the bound port (useful with port 0).
  Result<int> start();
  // Stops accepting new connections; responses written from now on close their connection.
  void stopAccepting();
  // Serves the live-data WebSocket with this hub (before start(); it must outlive the server).
  void setLiveHub(LiveHub* hub);
  std::size_t inflight() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace sw::api
