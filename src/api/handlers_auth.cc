// Login, token refresh, logout, current user.
#include <boost/json.hpp>

#include "api/handler_util.h"
#include "api/services.h"
#include "core/clock.h"
#include "security/crypto.h"

namespace sw::api {
namespace {

Response issueTokens(Services& s, const storage::User& user) {
  auto role = security::parseRole(user.role);
  if (!role) return problem(500, "internal", "user has an unknown role");
  auto access = s.jwt.issue(user.id, user.tenant_id, *role);
  if (!access) return errorResponse(access.error());
  std::string refresh = security::randomToken(32);
  storage::RefreshTokenRecord rec{user.id, nowMs() + std::int64_t{s.config.refresh_token_ttl_s} * 1000};
  if (auto st = s.metadata.storeRefreshToken(security::sha256Hex(refresh), rec); !st) return errorResponse(st.error());
  JsonWriter w;
  w.beginObject();
  w.key("access_token").string(*access);
  w.key("refresh_token").string(refresh);
  w.key("token_type").string("Bearer");
  w.key("expires_in").integer(s.jwt.ttlSeconds());
  w.endObject();
  return jsonResponse(200, w.take());
}

}  // namespace

// A hash of a random password, verified against when the user does not exist, so that a
// login for an unknown name takes as long as one with a wrong password.
static const std::string& decoyHash() {
  static const std::string h = security::hashPassword(security::randomToken(16)).value_or("");
  return h;
}

void registerAuthRoutes(Router& router, Services& s) {
  router.add("POST", "/api/v1/auth/login", Auth::kPublic, [&s](Context& ctx) {
    auto body = parseObject(ctx.request.body);
    if (!body) return errorResponse(body.error());
    auto username = reqString(*body, "username");
    if (!username) return errorResponse(username.error());
    auto password = reqString(*body, "password");
    if (!password) return errorResponse(password.error());
    auto user = s.metadata.getUserByName(*username);
    bool good;
    {
      HashingSlot slot(s.hashing_slots);
      if (!slot.held()) return problem(503, "unavailable", "server busy, retry later");
      good = user ? security::verifyPassword(*password, user->password_hash)
                  : (security::verifyPassword(*password, decoyHash()), false);
    }
    if (!good) return problem(401, "unauthenticated", "wrong username or password");
    return issueTokens(s, *user);
  });

  router.add("POST", "/api/v1/auth/refresh", Auth::kPublic, [&s](Context& ctx) {
    auto body = parseObject(ctx.request.body);
    if (!body) return errorResponse(body.error());
    auto token = reqString(*body, "refresh_token");
    if (!token) return errorResponse(token.error());
    auto rec = s.metadata.takeRefreshToken(security::sha256Hex(*token));
    if (!rec) return errorResponse(rec.error());
    if (rec->expires_at < nowMs()) return problem(401, "unauthenticated", "refresh token expired");
    auto user = s.metadata.getUser(rec->user_id);
    if (!user) return problem(401, "unauthenticated", "the token's user no longer exists");
    return issueTokens(s, *user);
  });

  router.add("POST", "/api/v1/auth/logout", Auth::kUser, [&s](Context& ctx) {
    auto body = parseObject(ctx.request.body);
    if (!body) return errorResponse(body.error());
    auto token = reqString(*body, "refresh_token");
    if (!token) return errorResponse(token.error());
    auto rec = s.metadata.takeRefreshToken(security::sha256Hex(*token));
    // Revoking someone else's (or an unknown) token is refused without saying which it was.
    if (rec && rec->user_id != ctx.user().user_id) {
      (void)s.metadata.storeRefreshToken(security::sha256Hex(*token), *rec);
      return problem(401, "unauthenticated", "refresh token is invalid");
    }
    if (!rec) return problem(401, "unauthenticated", "refresh token is invalid");
    return noContent();
  });

  router.add("GET", "/api/v1/auth/me", Auth::kUser, [&s](Context& ctx) {
    auto user = s.metadata.getUser(ctx.user().user_id);
    if (!user) return errorResponse(user.error());
    JsonWriter w;
    writeUser(w, *user);
    return jsonResponse(200, w.take());
  });
}

}  // namespace sw::api
