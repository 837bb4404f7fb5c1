#pragma once
// Small helpers shared by the handler files.
#include <chrono>
#include <semaphore>
#include <string>

#include "api/json_util.h"
#include "api/problem.h"
#include "api/router.h"
#include "ingest/device_channel.h"
#include "storage/metadata_store.h"

namespace sw::api {

// One of the password-hashing slots (argon2id takes 64 MiB and a core for tens of ms). Waits
// at most kWait for one, so a flood of logins holds handler threads only that long; without a
// slot the caller answers 503. (A dedicated hashing pool with asynchronous waits would free the
// handler thread entirely.)
class HashingSlot {
 public:
  static constexpr std::chrono::milliseconds kWait{2000};
  explicit HashingSlot(std::counting_semaphore<64>& slots) : slots_(slots), held_(slots.try_acquire_for(kWait)) {}
  ~HashingSlot() {
    if (held_) slots_.release();
  }
  HashingSlot(const HashingSlot&) = delete;
  HashingSlot& operator=(const HashingSlot&) = delete;
  bool held() const { return held_; }

 private:
  std::counting_semaphore<64>& slots_;
  bool held_;
};

Response jsonResponse(int status, std::string body);
Response noContent();

// Tenant of a tenant user; sysadmin gets permission_denied (it sees no tenant data).
Result<TenantId> tenantOf(const Context& ctx);
// As tenantOf, and the caller may write (tenant_admin).
Result<TenantId> writableTenantOf(const Context& ctx);

Result<storage::PageRequest> pageRequest(const Context& ctx);
// An integer query parameter; `fallback` when absent (required when fallback is nullopt).
Result<std::int64_t> intParam(const Context& ctx, std::string_view name, std::optional<std::int64_t> fallback);
// A positive duration like 500, 500ms, 30s, 1m, 1h or 1d, in ms; nullopt for anything else.
std::optional<std::int64_t> parseInterval(std::string_view s);
void writeNextCursor(JsonWriter& w, const std::string& cursor);

void writeTenant(JsonWriter& w, const storage::Tenant& t);
void writeUser(JsonWriter& w, const storage::User& u);
// state: the live connection state (ingest::DeviceChannel::state); token: shown on creation only.
void writeDevice(JsonWriter& w, const storage::Device& d, const ingest::DeviceState& state,
                 const std::string& token = {});

}  // namespace sw::api
