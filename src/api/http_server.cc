#include "api/http_server.h"

#include <array>
#include <boost/asio.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "api/problem.h"
#include "api/ws_session.h"
#include "core/logging.h"
#include "runtime/listener.h"
#include "runtime/offload.h"

namespace sw::api {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::awaitable;
using asio::ip::tcp;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

namespace {

// Where a deferred response (Response::deferred) meets the connection waiting for it. The
// completion may come from any thread at any time, also after the connection ended.
struct DeferredWait {
  std::mutex mutex;
  bool completed = false;               // the first completion (or the server's timeout) won
  std::optional<Response> result;       // set with completed, moved out by the connection
  asio::steady_timer* timer = nullptr;  // the waiting connection's timer; touched only on its executor
};

// Closed when the server is destroyed: completions that arrive later post nothing to the I/O
// workers (their io_contexts may be gone by then).
struct PostGate {
  std::mutex mutex;
  bool open = true;
};

http::response<http::string_body> toBeast(Response&& r, unsigned version, bool keep_alive) {
  http::response<http::string_body> out{static_cast<http::status>(r.status), version};
  out.set(http::field::server, "sensoworks");
  if (!r.content_type.empty()) out.set(http::field::content_type, r.content_type);
  for (auto& [k, v] : r.headers) out.set(k, v);
  out.body() = std::move(r.body);
  out.keep_alive(keep_alive);
  out.prepare_payload();
  return out;
}

}  // namespace

// Shared by the server and its coroutines (the accept loop and every session hold a reference),
// so a coroutine resumed after ~HttpServer, e.g. the accept loop woken by the acceptor's close
// while the workers still run, finds its state alive. What it points to (config, router, pool,
// workers) belongs to the caller and must outlive the workers' io_contexts.
struct HttpServer::Impl {
  const Config& config;
  runtime::IoWorkers& workers;
  runtime::BlockingPool& pool;
  const Router& router;
  Metrics& metrics;
  std::atomic<std::size_t> inflight{0};
  // The accept loop's acceptor: owned by the loop's frame, so it goes with the loop (also when
  // the frame is destroyed with its io_context), and touched only on that io_context's thread.
  tcp::acceptor* acceptor = nullptr;
  asio::io_context* accept_context = nullptr;  // set by start()
  std::atomic<bool> accepting{true};
  // Shared with the sessions: a session frame may be destroyed after the server (when the
  // workers' io_contexts go away with connections still open), and its guards release these.
  struct Counts {
    std::atomic<std::size_t> connections{0};
    std::atomic<std::size_t> body_bytes{0};  // declared body bytes of requests being read
  };
  std::shared_ptr<Counts> counts = std::make_shared<Counts>();
  std::mutex counters_mutex;
  std::map<int, Counter*> by_status;
  std::shared_ptr<PostGate> gate = std::make_shared<PostGate>();
  LiveHub* live = nullptr;  // serves GET /api/v1/ws when set

  Impl(const Config& c, runtime::IoWorkers& w, runtime::BlockingPool& p, const Router& r, Metrics& m)
      : config(c), workers(w), pool(p), router(r), metrics(m) {}

  void closeGate() {
    std::lock_guard lock(gate->mutex);
    gate->open = false;
  }

  void count(int status) {
    Counter* c;
    {
      std::lock_guard lock(counters_mutex);
      auto& slot = by_status[status];
      if (!slot) {
        slot = &metrics.counter("sw_http_requests_total", "HTTP requests by response status",
                                fmt::format("status=\"{}\"", status));
      }
      c = slot;
    }
    c->inc();
  }

  awaitable<void> acceptLoop(std::shared_ptr<Impl> self, std::unique_ptr<tcp::acceptor> owned) {
    auto log = logger("api");
    acceptor = owned.get();
    struct Forget {
      Impl& impl;
      ~Forget() { impl.acceptor = nullptr; }
    } forget{*this};
    while (accepting) {
      auto [ec, socket] = co_await owned->async_accept(workers.next(), kTuple);
      if (ec) {
        if (!accepting || ec == asio::error::operation_aborted) break;
        log->warn("msg=\"accept failed\" error=\"{}\"", ec.message());
        // Out of descriptors (EMFILE) fails at once: back off instead of spinning.
        asio::steady_timer pause(co_await asio::this_coro::executor, std::chrono::milliseconds(100));
        co_await pause.async_wait(kTuple);
        continue;
      }
      if (counts->connections.load() >= config.http_max_connections) {
        boost::system::error_code ignored;
        socket.close(ignored);
        continue;
      }
      auto& ctx = static_cast<asio::io_context&>(socket.get_executor().context());
      asio::co_spawn(ctx, session(self, std::move(socket)), asio::detached);
    }
  }

  // Starts the deferred part of a response on this connection's executor and waits, without
  // holding any thread, until it completes or deferred_timeout passes (then 504). The completion
  // only records the result and posts a wake-up, so a connection (or server) that ended
  // meanwhile is never touched.
  awaitable<Response> awaitDeferred(Response pending) {
    auto ex = co_await asio::this_coro::executor;
    auto wait = std::make_shared<DeferredWait>();
    asio::steady_timer timer(ex);
    timer.expires_after(std::max(pending.deferred_timeout, std::chrono::milliseconds(1)));
    wait->timer = &timer;
    struct Detach {  // also runs when the frame is destroyed without resuming (workers stopped)
      DeferredWait& w;
      ~Detach() { w.timer = nullptr; }
    } detach{*wait};
    auto complete = [wait](Response r) {
      std::lock_guard lock(wait->mutex);
      if (wait->completed) return false;
      wait->completed = true;
      wait->result = std::move(r);
      return true;
    };
    ResponseCallback done = [complete, wait, gate = gate, ex](Response r) {
      if (!complete(std::move(r))) return;
      std::lock_guard lock(gate->mutex);
      if (!gate->open) return;
      asio::post(ex, [wait] {
        if (wait->timer) wait->timer->cancel();
      });
    };
    try {
      pending.deferred(std::move(done));
    } catch (const std::exception& e) {
      logger("api")->error("msg=\"deferred response failed\" error=\"{}\"", e.what());
      complete(problem(500, "internal", "internal error"));
    }
    for (;;) {
      {
        std::lock_guard lock(wait->mutex);
        if (wait->completed) break;
      }
      auto [ec] = co_await timer.async_wait(kTuple);
      if (!ec) complete(problem(504, "timeout", "no response in time"));
    }
    std::lock_guard lock(wait->mutex);
    Response out = std::move(*wait->result);
    out.deferred = nullptr;
    co_return out;
  }

  awaitable<void> writeProblem(beast::tcp_stream& stream, int status, std::string_view code, std::string_view detail) {
    count(status);
    auto res = toBeast(problem(status, code, detail), 11, false);
    co_await http::async_write(stream, res, kTuple);
  }

  // `self` keeps this Impl alive while the session runs.
  awaitable<void> session([[maybe_unused]] std::shared_ptr<Impl> self, tcp::socket socket) {
    ++counts->connections;
    struct Release {
      std::shared_ptr<Counts> c;
      ~Release() { --c->connections; }
    } release{counts};
    beast::tcp_stream stream(std::move(socket));
    stream.socket().set_option(tcp::no_delay(true));
    beast::flat_buffer buffer;
    // A named local, not a temporary inside co_await: GCC 12 may destroy such temporaries twice.
    const std::string too_large = fmt::format("the body exceeds {} bytes", config.http_max_body_bytes);
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.body_limit(config.http_max_body_bytes);
      parser.header_limit(16 * 1024);
      stream.expires_after(std::chrono::seconds(60));
      auto [hec, hn] = co_await http::async_read_header(stream, buffer, parser, kTuple);
      if (hec == http::error::body_limit) {  // declared Content-Length over the limit
        co_await writeProblem(stream, 413, "payload_too_large", too_large);
        break;
      }
      if (hec) {
        if (hec != http::error::end_of_stream && hec != beast::error::timeout && hec != asio::error::connection_reset &&
            hec != asio::error::eof && hec != asio::error::operation_aborted) {
          co_await writeProblem(stream, 400, "invalid_argument", "malformed HTTP request");
        }
        break;
      }
      auto& head = parser.get();
      if (parser.content_length() && *parser.content_length() > config.http_max_body_bytes) {
        co_await writeProblem(stream, 413, "payload_too_large", too_large);
        break;
      }
      // Bound the bytes of bodies being read at once (a body is held until it is handled).
      const std::size_t declared = parser.content_length().value_or(0);
      if (counts->body_bytes.fetch_add(declared) + declared > config.http_max_inflight_body_bytes) {
        counts->body_bytes -= declared;
        co_await writeProblem(stream, 503, "unavailable", "server busy, retry later");
        break;
      }
      struct BodyBudget {
        std::shared_ptr<Counts> c;
        std::size_t n;
        ~BodyBudget() { c->body_bytes -= n; }
      } budget{counts, declared};
      if (beast::iequals(head[http::field::expect], "100-continue")) {
        http::response<http::empty_body> cont{http::status::continue_, head.version()};
        co_await http::async_write(stream, cont, kTuple);
      }
      stream.expires_after(std::chrono::seconds(120));
      auto [ec, n] = co_await http::async_read(stream, buffer, parser, kTuple);
      if (ec == http::error::body_limit) {
        co_await writeProblem(stream, 413, "payload_too_large", too_large);
        break;
      }
      if (ec) {
        if (ec != beast::error::timeout && ec != asio::error::connection_reset && ec != asio::error::eof &&
            ec != http::error::end_of_stream) {
          co_await writeProblem(stream, 400, "invalid_argument", "malformed HTTP request");
        }
        break;
      }
      auto req = parser.release();
      Request r;
      r.method = std::string(req.method_string());
      std::string_view target = req.target();
      auto qpos = target.find('?');
      // The path stays encoded: the router decodes each parameter once, after splitting, so
      // an encoded '/' or '%' in an id cannot change which route matches.
      r.path = std::string(target.substr(0, qpos));
      bool good = true;
      if (qpos != std::string_view::npos) good = parseQuery(target.substr(qpos + 1), r.query);
      r.content_type = std::string(req[http::field::content_type]);
      r.authorization = std::string(req[http::field::authorization]);
      r.host = std::string(req[http::field::host]);
      r.accept_encoding = std::string(req[http::field::accept_encoding]);
      r.body = std::move(req.body());
      const bool keep_alive = req.keep_alive();
      const unsigned version = req.version();

      // The live-data WebSocket (a GET without upgrade reaches the router: 400).
      if (live && r.path == "/api/v1/ws" && r.method == "GET" && isWebSocketUpgrade(req)) {
        if (!accepting) {  // draining: LiveHub::closeAll has run, a new socket would hold the shutdown
          co_await writeProblem(stream, 503, "unavailable", "server shutting down");
          break;
        }
        std::optional<std::string> token;
        if (auto t = r.param("token"); good && t) token = std::string(*t);
        auto socket = stream.release_socket();  // the HTTP stream's timers stay behind
        co_await serveWebSocket(WsEnv{config, pool, *live}, socket, req, token);
        co_return;
      }

      std::optional<Response> res;
      if (!good) {
        res = problem(400, "invalid_argument", "malformed percent-encoding in the request target");
      } else {
        ++inflight;
        res = co_await runtime::offload(pool, [this, &r] {
          try {
            return router.handle(r);
          } catch (const std::exception& e) {  // e.g. bad_alloc: answer 500, keep the process
            logger("api")->error("msg=\"handler failed\" path=\"{}\" error=\"{}\"", r.path, e.what());
            return problem(500, "internal", "internal error");
          }
        });
        if (!res) {
          res = problem(503, "unavailable", "server busy, retry later");
        } else if (res->deferred) {
          res = co_await awaitDeferred(std::move(*res));
        }
      }
      count(res->status);
      const bool keep = keep_alive && accepting;
      auto out = toBeast(std::move(*res), version, keep);
      if (r.method == "HEAD") out.body().clear();  // the GET's headers (Content-Length too), no body
      stream.expires_after(std::chrono::seconds(60));
      auto [wec, wn] = co_await http::async_write(stream, out, kTuple);
      if (good) --inflight;  // in flight until the response is written (drain waits for it)
      if (wec || !keep) break;
    }
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  }
};

HttpServer::HttpServer(const Config& config, runtime::IoWorkers& workers, runtime::BlockingPool& pool,
                       const Router& router, Metrics& metrics)
    : impl_(std::make_shared<Impl>(config, workers, pool, router, metrics)) {
  metrics.gauge("sw_http_inflight", "HTTP requests being handled", [impl = std::weak_ptr<Impl>(impl_)] {
    auto alive = impl.lock();
    return alive ? static_cast<double>(alive->inflight.load()) : 0.0;
  });
}

HttpServer::~HttpServer() {
  impl_->closeGate();
  stopAccepting();
}

std::size_t HttpServer::inflight() const {
  return impl_->inflight.load();
}

Result<int> HttpServer::start() {
  auto& ctx = impl_->workers.at(0);
  auto acceptor = runtime::listenTcp(ctx, impl_->config.http_bind, impl_->config.http_port, "http");
  if (!acceptor) return std::unexpected(acceptor.error());
  int port = (*acceptor)->local_endpoint().port();
  impl_->accept_context = &ctx;
  asio::co_spawn(ctx, impl_->acceptLoop(impl_, std::move(*acceptor)), asio::detached);
  return port;
}

void HttpServer::setLiveHub(LiveHub* hub) {
  impl_->live = hub;
}

void HttpServer::stopAccepting() {
  impl_->accepting = false;
  if (impl_->accept_context) {
    asio::post(*impl_->accept_context, [impl = impl_] {
      boost::system::error_code ec;
      if (impl->acceptor) impl->acceptor->close(ec);
    });
  }
}

}  // namespace sw::api
