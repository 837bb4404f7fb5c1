#pragma once
// Transport-neutral HTTP request/response used by the router and handlers, so that handler
// code never includes Beast (keeps heavy templates in one translation unit).
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sw::api {

struct Response;
// Delivers the final response of a deferred request (see Response::deferred).
using ResponseCallback = std::function<void(Response)>;

struct Request {
  std::string method;  // "GET", "POST", ...
  std::string path;    // without query, still percent-encoded (the router decodes params)
  std::vector<std::pair<std::string, std::string>> query;  // decoded
  std::string content_type;
  std::string authorization;
  std::string host;
  std::string accept_encoding;  // Accept-Encoding (the web UI serves precompressed files)
  std::string body;

  // First value of a query parameter.
  std::optional<std::string_view> param(std::string_view name) const {
    for (const auto& [k, v] : query) {
      if (k == name) return std::string_view(v);
    }
    return std::nullopt;
  }
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;

  // A response that is only known later (e.g. a device's reply to an RPC), so that no handler
  // thread waits for it. When set, the fields above are ignored: after the handler returned,
  // the HTTP server calls deferred(done) on the connection's I/O worker (it must not block), and
  // done(final) may then be called once, from any thread, at any time; later calls, and calls
  // after the connection ended, are ignored. Without done() within deferred_timeout the server
  // answers 504 (code "timeout") itself.
  std::function<void(ResponseCallback done)> deferred;
  std::chrono::milliseconds deferred_timeout{30000};
};

// Splits "a=1&b=x%20y" into decoded pairs; false on malformed percent escapes.
bool parseQuery(std::string_view raw, std::vector<std::pair<std::string, std::string>>& out);
bool percentDecode(std::string_view in, std::string& out, bool plus_is_space);

}  // namespace sw::api
