#pragma once
// Small helpers shared by the handler files.
#include <string>

#include "api/json_util.h"
#include "api/problem.h"
#include "api/router.h"
#include "storage/metadata_store.h"

namespace sw::api {

Response jsonResponse(int status, std::string body);
Response noContent();

// Tenant of a tenant user; sysadmin gets permission_denied (it sees no tenant data).
Result<TenantId> tenantOf(const Context& ctx);
// As tenantOf, and the caller may write (tenant_admin).
Result<TenantId> writableTenantOf(const Context& ctx);

Result<storage::PageRequest> pageRequest(const Context& ctx);
void writeNextCursor(JsonWriter& w, const std::string& cursor);

void writeTenant(JsonWriter& w, const storage::Tenant& t);
void writeUser(JsonWriter& w, const storage::User& u);
void writeDevice(JsonWriter& w, const storage::Device& d, const std::string& token = {});

}  // namespace sw::api
