#pragma once
// Maps (method, path pattern) to handlers and enforces authentication before a handler runs.
// Patterns use {name} for one path segment; on overlap, the pattern with more literal segments
// wins (so /api/v1/devices/{id} beats /api/v1/{access_token}/telemetry).
// Thread-safety: routes are added at start-up; handle() is then called concurrently.
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "api/http_types.h"
#include "core/ids.h"
#include "core/status.h"
#include "security/roles.h"

namespace sw::api {

struct Principal {
  UserId user_id;
  TenantId tenant_id;  // empty for the system administrator
  security::Role role = security::Role::kViewer;
};

enum class Auth { kPublic, kUser };

struct Context {
  const Request& request;
  std::vector<std::pair<std::string, std::string>> params;
  std::optional<Principal> principal;

  const std::string& param(std::string_view name) const;
  const Principal& user() const { return *principal; }
};

using Handler = std::function<Response(Context&)>;
using BearerVerifier = std::function<Result<Principal>(std::string_view token)>;

struct RouteInfo {
  std::string method;
  std::string pattern;
};

class Router {
 public:
  explicit Router(BearerVerifier verifier) : verifier_(std::move(verifier)) {}
  void add(std::string method, std::string pattern, Auth auth, Handler handler);
  // Answers (without authentication, any method) a request whose path matches no route and is
  // not under /api, /healthz, /readyz or /metrics (those keep the 404 problem): the web UI.
  void setFallback(Handler handler) { fallback_ = std::move(handler); }
  Response handle(const Request& request) const;
  std::vector<RouteInfo> routes() const;

 private:
  struct Route {
    std::string method;
    std::string pattern;
    std::vector<std::string> segments;
    int literals = 0;
    Auth auth;
    Handler handler;
  };
  static bool match(const Route& r, const std::vector<std::string_view>& segs,
                    std::vector<std::pair<std::string, std::string>>& params);
  std::vector<Route> routes_;  // sorted by literal count, descending
  Handler fallback_;
  BearerVerifier verifier_;
};

}  // namespace sw::api
