#pragma once
#include <optional>
#include <string_view>

namespace sw::security {

// sysadmin manages tenants and their admins and sees no telemetry; tenant_admin does everything
// inside its tenant; viewer reads inside its tenant.
enum class Role { kSysadmin, kTenantAdmin, kViewer };

inline std::optional<Role> parseRole(std::string_view s) {
  if (s == "sysadmin") return Role::kSysadmin;
  if (s == "tenant_admin") return Role::kTenantAdmin;
  if (s == "viewer") return Role::kViewer;
  return std::nullopt;
}

inline std::string_view roleName(Role r) {
  switch (r) {
    case Role::kSysadmin: return "sysadmin";
    case Role::kTenantAdmin: return "tenant_admin";
    case Role::kViewer: return "viewer";
  }
  return "viewer";
}

}  // namespace sw::security
