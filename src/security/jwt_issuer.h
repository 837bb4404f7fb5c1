#pragma once
// Short-lived access tokens: JWT signed with HS256 (libjwt). The key is generated once per
// installation and kept in the metadata store, so tokens survive restarts and are shared by
// replicas using the same metadata store.
#include <cstdint>
#include <string>

#include "core/ids.h"
#include "core/status.h"
#include "security/roles.h"

namespace sw::security {

struct Claims {
  UserId user_id;
  TenantId tenant_id;  // empty for the system administrator
  Role role = Role::kViewer;
  std::int64_t expires_at = 0;  // seconds since epoch
};

class JwtIssuer {
 public:
  JwtIssuer(std::string key, int ttl_seconds) : key_(std::move(key)), ttl_(ttl_seconds) {}
  Result<std::string> issue(const UserId& user, const TenantId& tenant, Role role) const;
  // Verifies signature, algorithm, issuer and expiry. Thread-safe.
  Result<Claims> verify(const std::string& token) const;
  int ttlSeconds() const { return ttl_; }

 private:
  std::string key_;
  int ttl_;
};

}  // namespace sw::security
