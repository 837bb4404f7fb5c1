#include "security/jwt_issuer.h"

#include <jwt.h>

#include <cstdlib>
#include <ctime>
#include <memory>

namespace sw::security {
namespace {

constexpr const char* kIssuer = "sensoworks";

struct JwtDeleter {
  void operator()(jwt_t* j) const { jwt_free(j); }
};
using JwtPtr = std::unique_ptr<jwt_t, JwtDeleter>;

}  // namespace

Result<std::string> JwtIssuer::issue(const UserId& user, const TenantId& tenant, Role role) const {
  jwt_t* raw = nullptr;
  if (jwt_new(&raw) != 0) return fail(Code::kInternal, "cannot allocate token");
  JwtPtr jwt(raw);
  const std::int64_t now = std::time(nullptr);
  int rc = jwt_add_grant(jwt.get(), "iss", kIssuer);
  rc |= jwt_add_grant(jwt.get(), "sub", user.str().c_str());
  rc |= jwt_add_grant(jwt.get(), "tid", tenant.str().c_str());
  rc |= jwt_add_grant(jwt.get(), "role", std::string(roleName(role)).c_str());
  rc |= jwt_add_grant_int(jwt.get(), "iat", now);
  rc |= jwt_add_grant_int(jwt.get(), "exp", now + ttl_);
  rc |= jwt_set_alg(jwt.get(), JWT_ALG_HS256, reinterpret_cast<const unsigned char*>(key_.data()),
                    static_cast<int>(key_.size()));
  if (rc != 0) return fail(Code::kInternal, "cannot build token");
  char* encoded = jwt_encode_str(jwt.get());
  if (!encoded) return fail(Code::kInternal, "cannot sign token");
  std::string out(encoded);
  free(encoded);
  return out;
}

Result<Claims> JwtIssuer::verify(const std::string& token) const {
  if (token.empty() || token.size() > 4096) return fail(Code::kUnauthenticated, "invalid access token");
  jwt_t* raw = nullptr;
  if (jwt_decode(&raw, token.c_str(), reinterpret_cast<const unsigned char*>(key_.data()),
                 static_cast<int>(key_.size())) != 0 ||
      !raw) {
    if (raw) jwt_free(raw);
    return fail(Code::kUnauthenticated, "invalid access token");
  }
  JwtPtr jwt(raw);
  // Only the algorithm we sign with is accepted ("none" and algorithm confusion are rejected).
  if (jwt_get_alg(jwt.get()) != JWT_ALG_HS256) return fail(Code::kUnauthenticated, "invalid access token");
  const char* iss = jwt_get_grant(jwt.get(), "iss");
  const char* sub = jwt_get_grant(jwt.get(), "sub");
  const char* tid = jwt_get_grant(jwt.get(), "tid");
  const char* role = jwt_get_grant(jwt.get(), "role");
  long exp = jwt_get_grant_int(jwt.get(), "exp");
  if (!iss || std::string_view(iss) != kIssuer || !sub || !tid || !role || exp <= 0) {
    return fail(Code::kUnauthenticated, "invalid access token");
  }
  if (exp <= std::time(nullptr)) return fail(Code::kUnauthenticated, "access token expired");
  auto r = parseRole(role);
  if (!r) return fail(Code::kUnauthenticated, "invalid access token");
  return Claims{UserId(sub), TenantId(tid), *r, exp};
}

}  // namespace sw::security
