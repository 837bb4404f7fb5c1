#include "api/router.h"

#include <algorithm>

#include "api/problem.h"

namespace sw::api {
namespace {

std::vector<std::string_view> split(std::string_view path) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < path.size()) {
    if (path[i] == '/') {
      ++i;
      continue;
    }
    std::size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    out.push_back(path.substr(i, j - i));
    i = j;
  }
  return out;
}

// API and system paths: an unknown one is a 404 problem, never the fallback.
bool reservedPath(const std::vector<std::string_view>& segs) {
  if (segs.empty()) return false;
  return segs[0] == "api" || segs[0] == "healthz" || segs[0] == "readyz" || segs[0] == "metrics";
}

}  // namespace

const std::string& Context::param(std::string_view name) const {
  static const std::string kEmpty;
  for (const auto& [k, v] : params) {
    if (k == name) return v;
  }
  return kEmpty;
}

void Router::add(std::string method, std::string pattern, Auth auth, Handler handler) {
  Route r{std::move(method), std::move(pattern), {}, 0, auth, std::move(handler)};
  for (auto s : split(r.pattern)) {
    r.segments.emplace_back(s);
    if (!s.starts_with('{')) ++r.literals;
  }
  routes_.push_back(std::move(r));
  std::stable_sort(routes_.begin(), routes_.end(),
                   [](const Route& a, const Route& b) { return a.literals > b.literals; });
}

bool Router::match(const Route& r, const std::vector<std::string_view>& segs,
                   std::vector<std::pair<std::string, std::string>>& params) {
  if (r.segments.size() != segs.size()) return false;
  params.clear();
  for (std::size_t i = 0; i < segs.size(); ++i) {
    const std::string& p = r.segments[i];
    if (p.starts_with('{')) {
      std::string decoded;
      if (!percentDecode(segs[i], decoded, false) || decoded.empty()) return false;
      params.emplace_back(p.substr(1, p.size() - 2), std::move(decoded));
    } else if (p != segs[i]) {
      return false;
    }
  }
  return true;
}

Response Router::handle(const Request& request) const {
  auto segs = split(request.path);
  std::vector<std::pair<std::string, std::string>> params;
  const Route* found = nullptr;
  bool path_matched = false;
  int matched_literals = -1;
  for (const auto& r : routes_) {
    if (path_matched && r.literals < matched_literals) break;  // only equally specific routes compete
    if (!match(r, segs, params)) continue;
    path_matched = true;
    matched_literals = r.literals;
    if (r.method == request.method) {
      found = &r;
      break;
    }
  }
  if (!found) {
    if (path_matched) return problem(405, "method_not_allowed", "method not allowed on this resource");
    if (fallback_ && !reservedPath(segs)) {
      Context ctx{request, {}, std::nullopt};
      return fallback_(ctx);
    }
    return problem(404, "not_found", "no such route");
  }
  Context ctx{request, std::move(params), std::nullopt};
  if (found->auth == Auth::kUser) {
    std::string_view auth = request.authorization;
    constexpr std::string_view kBearer = "Bearer ";
    if (auth.size() <= kBearer.size() || !std::equal(kBearer.begin(), kBearer.end(), auth.begin(), [](char a, char b) {
          return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
        })) {
      return problem(401, "unauthenticated", "missing bearer token");
    }
    auto principal = verifier_(auth.substr(kBearer.size()));
    if (!principal) return errorResponse(principal.error());
    ctx.principal = std::move(*principal);
  }
  return found->handler(ctx);
}

std::vector<RouteInfo> Router::routes() const {
  std::vector<RouteInfo> out;
  for (const auto& r : routes_) out.push_back({r.method, r.pattern});
  return out;
}

}  // namespace sw::api
