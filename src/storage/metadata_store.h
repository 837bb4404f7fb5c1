#pragma once
// MetadataStore: tenants, users, devices, credentials, attributes, dashboards. Embedded backend: SQLite;
// PostgreSQL later for scale-out. Every device/attribute call takes the tenant, and a row of
// another tenant is reported as not_found (existence is not leaked).
//
// Thread-safety: all methods may be called from any thread. They block (disk I/O): call them
// from a blocking pool, never from an I/O worker.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/ids.h"
#include "core/status.h"

namespace sw {
using DashboardId = Id<struct DashboardTag>;
}  // namespace sw

namespace sw::storage {

struct Tenant {
  TenantId id;
  std::string name;
  int retention_days = 0;     // 0: keep forever
  double max_msgs_per_s = 0;  // per device; 0: server default
  std::int64_t created_at = 0;
};

struct User {
  UserId id;
  TenantId tenant_id;  // empty for the system administrator
  std::string username;
  std::string role;  // sysadmin | tenant_admin | viewer
  std::string password_hash;
  std::int64_t created_at = 0;
};

struct Device {
  DeviceId id;
  TenantId tenant_id;
  std::string name;
  std::string type;
  std::map<std::string, std::string> labels;
  std::int64_t created_at = 0;
  bool gateway = false;  // may use the gateway API for sub-devices
  DeviceId gateway_id;   // for a sub-device: the gateway that created it; empty otherwise
  // Connection state as last saved (epoch ms); live state comes from the transports.
  std::optional<std::int64_t> last_connect, last_disconnect, last_activity;
};

struct DeviceActivity {
  TenantId tenant_id;
  DeviceId device_id;
  std::optional<std::int64_t> last_connect, last_disconnect, last_activity;  // unset: unchanged
};

struct DeviceFilter {
  std::string q;                           // substring of the name (case-insensitive)
  std::string type;                        // exact
  std::string label_key;                   // label present
  std::optional<std::string> label_value;  // ... with this value
  // Only devices among these ids (e.g. those online now); unset: no restriction.
  std::optional<std::vector<DeviceId>> only_ids;
  // No device among these ids (e.g. those online now, to list the offline ones).
  std::vector<DeviceId> except_ids;
};

struct PageRequest {
  std::size_t page_size = 50;
  std::string after;  // opaque cursor from a previous page; empty for the first page
};

template <typename T>
struct Page {
  std::vector<T> items;
  std::string next_cursor;  // empty on the last page
};

struct Attribute {
  std::string key;
  std::string json_value;  // compact JSON text
  std::int64_t updated_at = 0;
};

struct DevicePatch {
  std::optional<std::string> name, type;
  std::optional<std::map<std::string, std::string>> labels;
};

struct TenantPatch {
  std::optional<std::string> name;
  std::optional<int> retention_days;
  std::optional<double> max_msgs_per_s;
};

struct UserPatch {
  std::optional<std::string> role;
  std::optional<std::string> password_hash;
};

// MQTT basic credentials (client id, username, password) as a second device credential type.
struct MqttCredential {
  TenantId tenant_id;
  DeviceId device_id;
  std::string username;       // unique across the server
  std::string client_id;      // empty: any client id
  std::string password_hash;  // argon2id (security/crypto.h)
};

// A dashboard: its layout (widgets and grid positions) is a JSON object the server stores as is.
struct Dashboard {
  DashboardId id;
  TenantId tenant_id;
  std::string name;
  std::string description;
  std::string layout_json;   // compact JSON object text; empty in list results
  int widgets = 0;           // entries of layout.widgets (when an array), kept for listings
  std::int64_t version = 1;  // +1 on every update (optimistic concurrency)
  std::int64_t created_at = 0;
  std::int64_t updated_at = 0;
};

struct RefreshTokenRecord {
  UserId user_id;
  std::int64_t expires_at = 0;
};

class MetadataStore {
 public:
  virtual ~MetadataStore() = default;

  virtual Result<Tenant> createTenant(const Tenant& tenant) = 0;
  virtual Result<Tenant> getTenant(const TenantId& id) = 0;
  virtual Result<Page<Tenant>> listTenants(const PageRequest& page) = 0;
  virtual Result<Tenant> updateTenant(const TenantId& id, const TenantPatch& patch) = 0;
  // Deletes the tenant with its users, devices, attributes and dashboards.
  virtual Status deleteTenant(const TenantId& id) = 0;

  virtual Result<User> createUser(const User& user) = 0;
  virtual Result<User> getUser(const UserId& id) = 0;
  virtual Result<User> getUserByName(const std::string& username) = 0;
  // tenant empty: all users (system administrator's view).
  virtual Result<Page<User>> listUsers(const TenantId& tenant, const PageRequest& page) = 0;
  virtual Result<User> updateUser(const UserId& id, const UserPatch& patch) = 0;
  virtual Status deleteUser(const UserId& id) = 0;

  virtual Result<Device> createDevice(const Device& device, const std::string& token_hash) = 0;
  virtual Result<Device> getDevice(const TenantId& tenant, const DeviceId& id) = 0;
  virtual Result<Device> findDeviceByTokenHash(const std::string& token_hash) = 0;
  virtual Result<Page<Device>> listDevices(const TenantId& tenant, const DeviceFilter& filter,
                                           const PageRequest& page) = 0;
  virtual Result<Device> updateDevice(const TenantId& tenant, const DeviceId& id, const DevicePatch& patch) = 0;
  virtual Status deleteDevice(const TenantId& tenant, const DeviceId& id) = 0;
  // Replaces the device's access token hash; returns the previous hash (to evict caches).
  virtual Result<std::string> replaceDeviceToken(const TenantId& tenant, const DeviceId& id,
                                                 const std::string& token_hash) = 0;

  // Saves connection state in one transaction; unknown devices are skipped.
  virtual Status recordDeviceActivity(const std::vector<DeviceActivity>& states) = 0;
  // Exact name match within the tenant (names are unique per tenant).
  virtual Result<Device> findDeviceByName(const TenantId& tenant, const std::string& name) = 0;
  // already_exists when another device uses the username.
  virtual Status putMqttCredential(const MqttCredential& credential) = 0;
  virtual Result<MqttCredential> getMqttCredential(const TenantId& tenant, const DeviceId& device) = 0;
  virtual Status deleteMqttCredential(const TenantId& tenant, const DeviceId& device) = 0;
  virtual Result<MqttCredential> findMqttCredentialByUsername(const std::string& username) = 0;
  // scope: client | shared | server
  virtual Status upsertAttributes(const TenantId& tenant, const DeviceId& device, const std::string& scope,
                                  const std::vector<Attribute>& attributes) = 0;
  virtual Result<std::vector<Attribute>> getAttributes(const TenantId& tenant, const DeviceId& device,
                                                       const std::string& scope) = 0;
  // Removes these keys of one scope; returns the keys that existed.
  virtual Result<std::vector<std::string>> deleteAttributes(const TenantId& tenant, const DeviceId& device,
                                                            const std::string& scope,
                                                            const std::vector<std::string>& keys) = 0;

  virtual Status storeRefreshToken(const std::string& token_hash, const RefreshTokenRecord& record) = 0;
  // Atomically removes and returns the record (refresh tokens are single-use).
  virtual Result<RefreshTokenRecord> takeRefreshToken(const std::string& token_hash) = 0;

  // Dashboards of a tenant (names need not be unique). create assigns id, version 1 and times.
  virtual Result<Dashboard> createDashboard(const Dashboard& dashboard) = 0;
  virtual Result<Dashboard> getDashboard(const TenantId& tenant, const DashboardId& id) = 0;
  // Ordered by name; q: case-insensitive substring of the name. Items come without layout_json.
  virtual Result<Page<Dashboard>> listDashboards(const TenantId& tenant, const std::string& q,
                                                 const PageRequest& page) = 0;
  // Replaces name, description, layout and widgets of dashboard.id when its stored version is
  // expected_version, and increments the version. nullopt (nothing changed) when the stored
  // version differs; not_found when the tenant has no such dashboard.
  virtual Result<std::optional<Dashboard>> updateDashboard(const Dashboard& dashboard,
                                                           std::int64_t expected_version) = 0;
  virtual Status deleteDashboard(const TenantId& tenant, const DashboardId& id) = 0;

  virtual Result<std::optional<std::string>> getSetting(const std::string& name) = 0;
  virtual Status putSetting(const std::string& name, const std::string& value) = 0;
  virtual Result<int> schemaVersion() = 0;
};

}  // namespace sw::storage
