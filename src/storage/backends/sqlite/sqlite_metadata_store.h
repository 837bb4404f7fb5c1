#pragma once
// MetadataStore on SQLite in WAL mode. One connection guarded by a mutex: metadata calls are
// short and rare next to telemetry, and the ingest path caches what it needs.
// Schema migrations are numbered and applied in order at open, each in its own transaction.
#include <memory>
#include <mutex>
#include <string>

#include "storage/metadata_store.h"

struct sqlite3;

namespace sw::storage {

class SqliteMetadataStore final : public MetadataStore {
 public:
  // sync_full: fsync on every commit (synchronous=FULL) instead of at WAL checkpoints (NORMAL,
  // which survives a process crash but may lose the last commits on power loss).
  static Result<std::unique_ptr<SqliteMetadataStore>> open(const std::string& path, bool sync_full = false);
  ~SqliteMetadataStore() override;

  Result<Tenant> createTenant(const Tenant& tenant) override;
  Result<Tenant> getTenant(const TenantId& id) override;
  Result<Page<Tenant>> listTenants(const PageRequest& page) override;
  Result<Tenant> updateTenant(const TenantId& id, const TenantPatch& patch) override;
  Status deleteTenant(const TenantId& id) override;

  Result<User> createUser(const User& user) override;
  Result<User> getUser(const UserId& id) override;
  Result<User> getUserByName(const std::string& username) override;
  Result<Page<User>> listUsers(const TenantId& tenant, const PageRequest& page) override;
  Result<User> updateUser(const UserId& id, const UserPatch& patch) override;
  Status deleteUser(const UserId& id) override;

  Result<Device> createDevice(const Device& device, const std::string& token_hash) override;
  Result<Device> getDevice(const TenantId& tenant, const DeviceId& id) override;
  Result<Device> findDeviceByTokenHash(const std::string& token_hash) override;
  Result<Page<Device>> listDevices(const TenantId& tenant, const DeviceFilter& filter,
                                   const PageRequest& page) override;
  Result<Device> updateDevice(const TenantId& tenant, const DeviceId& id, const DevicePatch& patch) override;
  Status deleteDevice(const TenantId& tenant, const DeviceId& id) override;
  Result<std::string> replaceDeviceToken(const TenantId& tenant, const DeviceId& id,
                                         const std::string& token_hash) override;

  Result<Device> findDeviceByName(const TenantId& tenant, const std::string& name) override;
  Status recordDeviceActivity(const std::vector<DeviceActivity>& states) override;
  Status putMqttCredential(const MqttCredential& credential) override;
  Result<MqttCredential> getMqttCredential(const TenantId& tenant, const DeviceId& device) override;
  Status deleteMqttCredential(const TenantId& tenant, const DeviceId& device) override;
  Result<MqttCredential> findMqttCredentialByUsername(const std::string& username) override;

  Status upsertAttributes(const TenantId& tenant, const DeviceId& device, const std::string& scope,
                          const std::vector<Attribute>& attributes) override;
  Result<std::vector<std::string>> deleteAttributes(const TenantId& tenant, const DeviceId& device,
                                                    const std::string& scope,
                                                    const std::vector<std::string>& keys) override;
  Result<std::vector<Attribute>> getAttributes(const TenantId& tenant, const DeviceId& device,
                                               const std::string& scope) override;

  Status storeRefreshToken(const std::string& token_hash, const RefreshTokenRecord& record) override;
  Result<RefreshTokenRecord> takeRefreshToken(const std::string& token_hash) override;

  Result<Dashboard> createDashboard(const Dashboard& dashboard) override;
  Result<Dashboard> getDashboard(const TenantId& tenant, const DashboardId& id) override;
  Result<Page<Dashboard>> listDashboards(const TenantId& tenant, const std::string& q,
                                         const PageRequest& page) override;
  Result<std::optional<Dashboard>> updateDashboard(const Dashboard& dashboard, std::int64_t expected_version) override;
  Status deleteDashboard(const TenantId& tenant, const DashboardId& id) override;

  Result<std::optional<std::string>> getSetting(const std::string& name) override;
  Status putSetting(const std::string& name, const std::string& value) override;
  Result<int> schemaVersion() override;

 private:
  SqliteMetadataStore() = default;
  Result<Device> getDeviceLocked(const TenantId& tenant, const DeviceId& id);
  Result<Dashboard> getDashboardLocked(const TenantId& tenant, const DashboardId& id);
  Status loadLabels(Device& d);

  std::mutex mutex_;
  sqlite3* db_ = nullptr;
};

}  // namespace sw::storage
