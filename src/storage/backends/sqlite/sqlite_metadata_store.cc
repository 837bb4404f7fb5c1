#include "storage/backends/sqlite/sqlite_metadata_store.h"

#include <fmt/format.h>
#include <sqlite3.h>

#include <utility>

#include "core/clock.h"
#include "core/hex.h"
#include "storage/backends/sqlite/sqlite_util.h"

namespace sw::storage {
namespace {

using sqlite::dbError;
using sqlite::exec;
using sqlite::makeCursor;
using sqlite::parseCursor;
using sqlite::Stmt;

// Numbered migrations; never edit one that has shipped, append a new one.
const char* const kMigrations[] = {
    // 1: initial schema
    R"sql(
CREATE TABLE tenants (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  retention_days INTEGER NOT NULL DEFAULT 0,
  max_msgs_per_s REAL NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL
);
CREATE TABLE users (
  id TEXT PRIMARY KEY,
  tenant_id TEXT REFERENCES tenants(id) ON DELETE CASCADE,
  username TEXT NOT NULL UNIQUE,
  role TEXT NOT NULL,
  password_hash TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE INDEX users_by_tenant ON users(tenant_id, username);
CREATE TABLE devices (
  id TEXT PRIMARY KEY,
  tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  type TEXT NOT NULL DEFAULT 'default',
  token_hash TEXT NOT NULL UNIQUE,
  created_at INTEGER NOT NULL,
  UNIQUE (tenant_id, name)
);
CREATE INDEX devices_by_type ON devices(tenant_id, type, name);
CREATE TABLE device_labels (
  device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  PRIMARY KEY (device_id, key)
);
CREATE INDEX device_labels_by_kv ON device_labels(key, value);
CREATE TABLE attributes (
  device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
  scope TEXT NOT NULL,
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (device_id, scope, key)
);
CREATE TABLE refresh_tokens (
  token_hash TEXT PRIMARY KEY,
  user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  expires_at INTEGER NOT NULL
);
CREATE TABLE settings (
  name TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
)sql",
    // 2: gateways and their sub-devices; MQTT basic credentials. Deleting a gateway keeps its
    // sub-devices (gateway_id becomes null); deleting a device deletes its MQTT credential.
    R"sql(
ALTER TABLE devices ADD COLUMN gateway INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN gateway_id TEXT REFERENCES devices(id) ON DELETE SET NULL;
CREATE INDEX devices_by_gateway ON devices(gateway_id) WHERE gateway_id IS NOT NULL;
CREATE TABLE mqtt_credentials (
  device_id TEXT PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE,
  tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  username TEXT NOT NULL UNIQUE,
  client_id TEXT NOT NULL DEFAULT '',
  password_hash TEXT NOT NULL
);
)sql",
    // 3: connection state of devices, saved periodically by the transports.
    R"sql(
ALTER TABLE devices ADD COLUMN last_connect INTEGER;
ALTER TABLE devices ADD COLUMN last_disconnect INTEGER;
ALTER TABLE devices ADD COLUMN last_activity INTEGER;
)sql",
    // 4: dashboards of a tenant; the layout is an opaque JSON object (widgets, grid positions).
    R"sql(
CREATE TABLE dashboards (
  id TEXT PRIMARY KEY,
  tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  description TEXT NOT NULL DEFAULT '',
  layout TEXT NOT NULL,
  widgets INTEGER NOT NULL DEFAULT 0,
  version INTEGER NOT NULL DEFAULT 1,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE INDEX dashboards_by_name ON dashboards(tenant_id, name, id);
)sql",
};

std::string likeEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '%' || c == '_' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

Tenant readTenant(const Stmt& s) {
  return Tenant{TenantId(s.text(0)), s.text(1), static_cast<int>(s.i64(2)), s.dbl(3), s.i64(4)};
}
constexpr const char* kTenantCols = "id, name, retention_days, max_msgs_per_s, created_at";

User readUser(const Stmt& s) {
  return User{UserId(s.text(0)), TenantId(s.text(1)), s.text(2), s.text(3), s.text(4), s.i64(5)};
}
constexpr const char* kUserCols = "id, COALESCE(tenant_id, ''), username, role, password_hash, created_at";

Device readDevice(const Stmt& s) {
  Device d;
  d.id = DeviceId(s.text(0));
  d.tenant_id = TenantId(s.text(1));
  d.name = s.text(2);
  d.type = s.text(3);
  d.created_at = s.i64(4);
  d.gateway = s.i64(5) != 0;
  d.gateway_id = DeviceId(s.text(6));
  d.last_connect = s.optI64(7);
  d.last_disconnect = s.optI64(8);
  d.last_activity = s.optI64(9);
  return d;
}
constexpr const char* kDeviceCols =
    "id, tenant_id, name, type, created_at, gateway, COALESCE(gateway_id, ''), last_connect, last_disconnect, "
    "last_activity";

// Without the layout (listings); kDashboardFullCols adds it as column 8.
constexpr const char* kDashboardCols = "id, tenant_id, name, description, widgets, version, created_at, updated_at";
constexpr const char* kDashboardFullCols =
    "id, tenant_id, name, description, widgets, version, created_at, updated_at, layout";

Dashboard readDashboard(const Stmt& s, bool with_layout) {
  Dashboard d;
  d.id = DashboardId(s.text(0));
  d.tenant_id = TenantId(s.text(1));
  d.name = s.text(2);
  d.description = s.text(3);
  d.widgets = static_cast<int>(s.i64(4));
  d.version = s.i64(5);
  d.created_at = s.i64(6);
  d.updated_at = s.i64(7);
  if (with_layout) d.layout_json = s.text(8);
  return d;
}

// A JSON array of ids as text, for "id IN (SELECT value FROM json_each(?))".
std::string idArrayJson(const std::vector<DeviceId>& ids) {
  std::string out = "[";
  for (const auto& id : ids) {
    if (out.size() > 1) out.push_back(',');
    out.push_back('"');
    for (char c : id.str()) {
      // Ids are UUIDs; escape anyway so that no id can break the array.
      if (c == '"' || c == '\\') out.push_back('\\');
      if (static_cast<unsigned char>(c) < 0x20) {
        out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
        continue;
      }
      out.push_back(c);
    }
    out.push_back('"');
  }
  out.push_back(']');
  return out;
}

MqttCredential readMqttCredential(const Stmt& s) {
  return MqttCredential{TenantId(s.text(0)), DeviceId(s.text(1)), s.text(2), s.text(3), s.text(4)};
}
constexpr const char* kMqttCols = "tenant_id, device_id, username, client_id, password_hash";

}  // namespace

Result<std::unique_ptr<SqliteMetadataStore>> SqliteMetadataStore::open(const std::string& path, bool sync_full) {
  std::unique_ptr<SqliteMetadataStore> store(new SqliteMetadataStore());
  auto db = sqlite::openDatabase(path, sync_full, kMigrations, "metadata");
  if (!db) return std::unexpected(db.error());
  store->db_ = *db;
  return store;
}

SqliteMetadataStore::~SqliteMetadataStore() {
  if (db_) sqlite3_close_v2(db_);
}

Result<int> SqliteMetadataStore::schemaVersion() {
  std::lock_guard lock(mutex_);
  Stmt s(db_, "SELECT COALESCE(MAX(version), 0) FROM schema_version");
  if (s.step() != SQLITE_ROW) return std::unexpected(dbError(db_, "schema version"));
  return static_cast<int>(s.i64(0));
}

// ---- tenants ----

Result<Tenant> SqliteMetadataStore::createTenant(const Tenant& t) {
  std::lock_guard lock(mutex_);
  Tenant out = t;
  if (out.id.empty()) out.id = TenantId(newUuid());
  if (!out.created_at) out.created_at = nowMs();
  Stmt s(db_, "INSERT INTO tenants(id, name, retention_days, max_msgs_per_s, created_at) VALUES (?,?,?,?,?)");
  s.bind(1, out.id.str()).bind(2, out.name).bind(3, std::int64_t{out.retention_days}).bindDouble(4, out.max_msgs_per_s);
  s.bind(5, out.created_at);
  if (s.step() != SQLITE_DONE) return std::unexpected(dbError(db_, "create tenant"));
  return out;
}

Result<Tenant> SqliteMetadataStore::getTenant(const TenantId& id) {
  std::lock_guard lock(mutex_);
  Stmt s(db_, fmt::format("SELECT {} FROM tenants WHERE id = ?", kTenantCols).c_str());
  s.bind(1, id.str());
  if (s.step() != SQLITE_ROW) return fail(Code::kNotFound, "tenant not found");
  return readTenant(s);
}

Result<Page<Tenant>> SqliteMetadataStore::listTenants(const PageRequest& page) {
  auto cur = parseCursor(page.after);
  if (!cur) return std::unexpected(cur.error());
  std::lock_guard lock(mutex_);
  Stmt s(db_, fmt::format("SELECT {} FROM tenants WHERE (? = 0 OR (name, id) > (?, ?)) ORDER BY name, id LIMIT ?",
                          kTenantCols)
                  .c_str());
  s.bind(1, std::int64_t{!page.after.empty()}).bind(2, cur->first).bind(3, cur->second);
  s.bind(4, static_cast<std::int64_t>(page.page_size + 1));
  Page<Tenant> out;
  while (s.step() == SQLITE_ROW) out.items.push_back(readTenant(s));
  if (s.rc() != SQLITE_DONE) return std::unexpected(dbError(db_, "list tenants"));
  if (out.items.size() > page.page_size) {
    out.items.pop_back();
    out.next_cursor = makeCursor(out.items.back().name, out.items.back().id.str());
  }
  return out;
}

Result<Tenant> SqliteMetadataStore::updateTenant(const TenantId& id, const TenantPatch& p) {
  {
    std::lock_guard lock(mutex_);
    Stmt s(db_,
           "UPDATE tenants SET name = COALESCE(?, name), retention_days = COALESCE(?, retention_days), "
           "max_msgs_per_s = COALESCE(?, max_msgs_per_s) WHERE id = ?");
    if (p.name)
      s.bind(1, *p.name);
    else
      s.bindNull(1);
    if (p.retention_days)
      s.bind(2, std::int64_t{*p.retention_days});
    else
      s.bindNull(2);
    if (p.max_msgs_per_s)
      s.bindDouble(3, *p.max_msgs_per_s);
    else
      s.bindNull(3);
    s.bind(4, id.str());
    if (s.step() != SQLITE_DONE) return std::unexpected(dbError(db_, "update tenant"));
    if (sqlite3_changes(db_) == 0) return fail(Code::kNotFound, "tenant not found");
  }
  return getTenant(id);
}

Status SqliteMetadataStore::deleteTenant(const TenantId& id) {
  std::lock_guard lock(mutex_);
  Stmt s(db_, "DELETE FROM tenants WHERE id = ?");
  s.bind(1, id.str());
  if (s.step() != SQLITE_DONE) return std::unexpected(dbError(db_, "delete tenant"));
  if (sqlite3_changes(db_) == 0) return fail(Code::kNotFound, "tenant not found");
  return ok();
}

// ---- users ----

Result<User> SqliteMetadataStore::createUser(const User& u) {
  std::lock_guard lock(mutex_);
  User out = u;
  if (out.id.empty()) out.id = UserId(newUuid());
  if (!out.created_at) out.created_at = nowMs();
  Stmt s(db_, "INSERT INTO users(id, tenant_id, username, role, password_hash, created_at) VALUES (?,?,?,?,?,?)");
  s.bind(1, out.id.str());
  if (out.tenant_id.empty())
    s.bindNull(2);
  else
    s.bind(2, out.tenant_id.str());
  s.bind(3, out.username).bind(4, out.role).bind(5, out.password_hash).bind(6, out.created_at);
  if (s.step() != SQLITE_DONE) return std::unexpected(dbError(db_, "create user"));
  return out;
}

Result<User> SqliteMetadataStore::getUser(const UserId& id) {
  std::lock_guard lock(mutex_);
  Stmt s(db_, fmt::format("SELECT {} FROM users WHERE id = ?", kUserCols).c_str());
  s.bind(1, id.str());
  if (s.step() != SQLITE_ROW) return fail(Code::kNotFound, "user not found");
  return readUser(s);
}

Result<User> SqliteMetadataStore::getUserByName(const std::string& username) {
  std::lock_guard lock(mutex_);
  Stmt s(db_, fmt::format("SELECT {} FROM users WHERE username = ?", kUserCols).c_str());
  s.bind(1, username);
  if (s.step() != SQLITE_ROW) return fail(Code::kNotFound, "user not found");
  return readUser(s);
}

Result<Page<User>> SqliteMetadataStore::listUsers(const TenantId& tenant, const PageRequest& page) {
  auto cur = parseCursor(page.after);
  if (!cur) return std::unexpected(cur.error());
  std::lock_guard lock(mutex_);
  Stmt s(db_, fmt::format("SELECT {} FROM users WHERE (? = '' OR tenant_id = ?) AND (? = 0 OR (username, id) > (?, ?)) "
                          "ORDER BY username, id LIMIT ?",
                          kUserCols)
                  .c_str());
  s.bind(1, tenant.str()).bind(2, tenant.str()).bind(3, std::int64_t{!page.after.empty()});
  s.bind(4, cur->first).bind(5, cur->second).bind(6, static_cast<std::int64_t>(page.page_size + 1));
  Page<User> out;
  while (s.step() == SQLITE_ROW) out.items.push_back(readUser(s));
  if (s.rc() != SQLITE_DONE) return std::unexpected(dbError(db_, "list users"));
  if (out.items.size() > page.page_size) {
    out.items.pop_back();
    out.next_cursor = makeCursor(out.items.back().username, out.items.back().id.str());
  }
  return out;
}

Result<User> SqliteMetadataStore::updateUser(const UserId& id, const UserPatch& p) {
  {
    std::lock_guard lock(mutex_);
    Stmt s(db_, "UPDATE users SET role = COALESCE(?, role), password_hash = COALESCE(?, password_hash) WHERE id = ?");
    if (p.role)
      s.bind(1, *p.role);
    else
      s.bindNull(1);
    if (p.password_hash)
      s.bind(2, *p.password_hash);
    else
      s.bindNull(2);
    s.bind(3, id.str());
    if (s.step() != SQLITE_DONE) return std::unexpected(dbError(db_, "update user"));
    if (sqlite3_changes(db_) == 0) return fail(Code::kNotFound, "user not found");
    if (p.password_hash) {
      // A new password ends every session of the user.
      Stmt r(db_, "DELETE FROM refresh_tokens WHERE user_id = ?");
      r.bind(1, id.str());
      r.step();
    }
  }
  return getUser(id);
}

Status SqliteMetadataStore::deleteUser(const UserId& id) {
  std::lock_guard lock(mutex_);
  Stmt s(db_, "DELETE FROM users WHERE id = ?");
  s.bind(1, id.str());
  if (s.step() != SQLITE_DONE) return std::unexpected(dbError(db_, "delete user"));
  if (sqlite3_changes(db_) == 0) return fail(Code::kNotFound, "user not found");
  return ok();
}

// ---- devices ----

Status SqliteMetadataStore::loadLabels(Device& d) {
  Stmt s(db_, "SELECT key, value FROM device_labels WHERE device_id = ?");
  s.bind(1, d.id.str());
  while (s.step() == SQLITE_ROW) d.labels[s.text(0)] = s.text(1);
  if (s.rc() != SQLITE_DONE) return std::unexpected(dbError(db_, "read labels"));
  return ok();
}

Result<Device> SqliteMetadataStore::createDevice(const Device& d, const std::string& token_hash) {
  std::lock_guard lock(mutex_);
  Device out = d;
  if (out.id.empty()) out.id = DeviceId(newUuid());
  if (!out.created_at) out.created_at = nowMs();
  if (auto st = exec(db_, "BEGIN IMMEDIATE"); !st) return std::unexpected(st.error());
  auto body = [&]() -> Status {
    if (!out.gateway_id.empty()) {
      // A sub-device belongs to a gateway of its own tenant.
      Stmt g(db_, "SELECT 1 FROM devices WHERE id = ? AND tenant_id = ?");
      g.bind(1, out.gateway_id.str()).bind(2, out.tenant_id.str());
      if (g.step() != SQLITE_ROW) return fail(Code::kNotFound, "gateway device not found");
    }
    Stmt s(db_,
           "INSERT INTO devices(id, tenant_id, name, type, token_hash, created_at, gateway, gateway_id) "
           "VALUES (?,?,?,?,?,?,?,?)");
    s.bind(1, out.id.str()).bind(2, out.tenant_id.str()).bind(3, out.name).bind(4, out.type);
    s.bind(5, token_hash).bind(6, out.created_at).bind(7, std::int64_t{out.gateway});
    if (out.gateway_id.empty())
      s.bindNull(8);
    else
      s.bind(8, out.gateway_id.str());
    if (s.step() != SQLITE_DONE) return std::unexpected(dbError(db_, "create device"));
    for (const auto& [k, v] : out.labels) {
      Stmt l(db_, "INSERT INTO device_labels(device_id, key, value) VALUES (?,?,?)");
      l.bind(1, out.id.str()).bind(2, k).bind(3, v);
      if (l.step() != SQLITE_DONE) return std::unexpected(dbError(db_, "create device labels"));
    }
    return ok();
  };
  auto st = body();
  if (!st) {
    (void)exec(db_, "ROLLBACK");
    return std::unexpected(st.error());
  }
  if (auto c = exec(db_, "COMMIT"); !c) return std::unexpected(c.error());
  return out;
}

Result<Device> SqliteMetadataStore::getDeviceLocked(const TenantId& tenant, const DeviceId& id) {
  Stmt s(db_, fmt::format("SELECT {} FROM devices WHERE id = ? AND tenant_id = ?", kDeviceCols).c_str());
  s.bind(1, id.str()).bind(2, tenant.str());
  if (s.step() != SQLITE_ROW) return fail(Code::kNotFound, "device not found");
  Device d = readDevice(s);
  if (auto st = loadLabels(d); !st) return std::unexpected(st.error());
  return d;
}

Result<Device> SqliteMetadataStore::getDevice(const TenantId& tenant, const DeviceId& id) {
  std::lock_guard lock(mutex_);
  return getDeviceLocked(tenant, id);
}

Result<Device> SqliteMetadataStore::findDeviceByTokenHash(const std::string& token_hash) {
  std::lock_guard lock(mutex_);
  Stmt s(db_, fmt::format("SELECT {} FROM devices WHERE token_hash = ?", kDeviceCols).c_str());
  s.bind(1, token_hash);
  if (s.step() != SQLITE_ROW) return fail(Code::kNotFound, "device not found");
  Device d = readDevice(s);
  if (auto st = loadLabels(d); !st) return std::unexpected(st.error());
  return d;
}

Result<Page<Device>> SqliteMetadataStore::listDevices(const TenantId& tenant, const DeviceFilter& f,
                                                      const PageRequest& page) {
  auto cur = parseCursor(page.after);
  if (!cur) return std::unexpected(cur.error());
  std::lock_guard lock(mutex_);
  std::string sql = fmt::format(
      "SELECT {} FROM devices d WHERE tenant_id = ?1 "
      "AND (?2 = '' OR name LIKE '%' || ?2 || '%' ESCAPE '\\') "
      "AND (?3 = '' OR type = ?3) "
      "AND (?4 = '' OR EXISTS (SELECT 1 FROM device_labels l WHERE l.device_id = d.id AND l.key = ?4 "
      "     AND (?5 = 0 OR l.value = ?6))) "
      "AND (?7 = 0 OR (name, id) > (?8, ?9)) "
      "AND (?11 = 0 OR id IN (SELECT value FROM json_each(?12))) "
      "AND (?13 = 0 OR id NOT IN (SELECT value FROM json_each(?14))) "
      "ORDER BY name, id LIMIT ?10",
      kDeviceCols);
  Stmt s(db_, sql.c_str());
  s.bind(1, tenant.str()).bind(2, likeEscape(f.q)).bind(3, f.type).bind(4, f.label_key);
  s.bind(5, std::int64_t{f.label_value.has_value()}).bind(6, f.label_value.value_or(""));
  s.bind(7, std::int64_t{!page.after.empty()}).bind(8, cur->first).bind(9, cur->second);
  s.bind(10, static_cast<std::int64_t>(page.page_size + 1));
  s.bind(11, std::int64_t{f.only_ids.has_value()}).bind(12, f.only_ids ? idArrayJson(*f.only_ids) : "[]");
  s.bind(13, std::int64_t{!f.except_ids.empty()}).bind(14, idArrayJson(f.except_ids));
  Page<Device> out;
  while (s.step() == SQLITE_ROW) out.items.push_back(readDevice(s));
  if (s.rc() != SQLITE_DONE) return std::unexpected(dbError(db_, "list devices"));
  if (out.items.size() > page.page_size) {
    out.items.pop_back();
    out.next_cursor = makeCursor(out.items.back().name, out.items.back().id.str());
  }
  for (auto& d : out.items) {
    if (auto st = loadLabels(d); !st) return std::unexpected(st.error());
  }
  return out;
}

Result<Device> SqliteMetadataStore::updateDevice(const TenantId& tenant, const DeviceId& id, const DevicePatch& p) {
  std::lock_guard lock(mutex_);
  if (auto st = exec(db_, "BEGIN IMMEDIATE"); !st) return std::unexpected(st.error());
  auto body = [&]() -> Status {
    Stmt s(db_, "UPDATE devices SET name = COALESCE(?, name), type = COALESCE(?, type) WHERE id = ? AND tenant_id = ?");
    if (p.name)
      s.bind(1, *p.name);
    else
      s.bindNull(1);
    if (p.type)
      s.bind(2, *p.type);
    else
      s.bindNull(2);
    s.bind(3, id.str()).bind(4, tenant.str());
    if (s.step() != SQLITE_DONE) return std::unexpected(dbError(db_, "update device"));
    if (sqlite3_changes(db_) == 0) return fail(Code::kNotFound, "device not found");
    if (p.labels) {
      Stmt del(db_, "DELETE FROM device_labels WHERE device_id = ?");
      del.bind(1, id.str());
      if (del.step() != SQLITE_DONE) return std::unexpected(dbError(db_, "update labels"));
      for (const auto& [k, v] : *p.labels) {
        Stmt l(db_, "INSERT INTO device_labels(device_id, key, value) VALUES (?,?,?)");
        l.bind(1, id.str()).bind(2, k).bind(3, v);
        if (l.step() != SQLITE_DONE) return std::unexpected(dbError(db_, "update labels"));
      }
    }
    return ok();
  };
  auto st = body();
  if (!st) {
    (void)exec(db_, "ROLLBACK");
    return std::unexpected(st.error());
  }
  if (auto c = exec(db_, "COMMIT"); !c) return std::unexpected(c.error());
  return getDeviceLocked(tenant, id);
}

Status SqliteMetadataStore::deleteDevice(const TenantId& tenant, const DeviceId& id) {
  std::lock_guard lock(mutex_);
  Stmt s(db_, "DELETE FROM devices WHERE id = ? AND tenant_id = ?");
  s.bind(1, id.str()).bind(2, tenant.str());
  if (s.step() != SQLITE_DONE) return std::unexpected(dbError(db_, "delete device"));
  if (sqlite3_changes(db_) == 0) return fail(Code::kNotFound, "device not found");
  return ok();
}

Result<std::string> SqliteMetadataStore::replaceDeviceToken(const TenantId& tenant, const DeviceId& id,
                                                            const std::string& token_hash) {
  std::lock_guard lock(mutex_);
  std::string previous;
  {
    Stmt s(db_, "SELECT token_hash FROM devices WHERE id = ? AND tenant_id = ?");
    s.bind(1, id.str()).bind(2, tenant.str());
    if (s.step() != SQLITE_ROW) return fail(Code::kNotFound, "device not found");
    previous = s.text(0);
  }
  Stmt s(db_, "UPDATE devices SET token_hash = ? WHERE id = ? AND tenant_id = ?");
  s.bind(1, token_hash).bind(2, id.str()).bind(3, tenant.str());
  if (s.step() != SQLITE_DONE) return std::unexpected(dbError(db_, "replace token"));
  return previous;
}

Result<Device> SqliteMetadataStore::findDeviceByName(const TenantId& tenant, const std::string& name) {
  std::lock_guard lock(mutex_);
  Stmt s(db_, fmt::format("SELECT {} FROM devices WHERE tenant_id = ? AND name = ?", kDeviceCols).c_str());
  s.bind(1, tenant.str()).bind(2, name);
  if (s.step() != SQLITE_ROW) {
    if (s.rc() != SQLITE_DONE) return std::unexpected(dbError(db_, "find device"));
    return fail(Code::kNotFound, "device not found");
  }
  Device d = readDevice(s);
  if (auto st = loadLabels(d); !st) return std::unexpected(st.error());
  return d;
}

Status SqliteMetadataStore::recordDeviceActivity(const std::vector<DeviceActivity>& states) {
  if (states.empty()) return ok();
  std::lock_guard lock(mutex_);
  if (auto st = exec(db_, "BEGIN IMMEDIATE"); !st) return st;
  for (const auto& a : states) {
    Stmt s(db_,
           "UPDATE devices SET last_connect = COALESCE(?, last_connect), last_disconnect = COALESCE(?, "
           "last_disconnect), last_activity = COALESCE(?, last_activity) WHERE id = ? AND tenant_id = ?");
    int i = 1;
    for (const auto* v : {&a.last_connect, &a.last_disconnect, &a.last_activity}) {
      if (*v)
        s.bind(i, **v);
      else
        s.bindNull(i);
      ++i;
    }
    s.bind(4, a.device_id.str()).bind(5, a.tenant_id.str());
    if (s.step() != SQLITE_DONE) {
      Error e = dbError(db_, "save device state");
      (void)exec(db_, "ROLLBACK");
      return std::unexpected(e);
    }
  }
  return exec(db_, "COMMIT");
}

// ---- MQTT basic credentials ----

Status SqliteMetadataStore::putMqttCredential(const MqttCredential& c) {
  std::lock_guard lock(mutex_);
  if (auto d = getDeviceLocked(c.tenant_id, c.device_id); !d) return std::unexpected(d.error());
  // One statement: replacing the device's credential and claiming the username are atomic, and
  // a username held by another device fails on its UNIQUE constraint (the row is left as it was).
  Stmt s(db_,
         "INSERT INTO mqtt_credentials(device_id, tenant_id, username, client_id, password_hash) VALUES (?,?,?,?,?) "
         "ON CONFLICT(device_id) DO UPDATE SET username = excluded.username, client_id = excluded.client_id, "
         "password_hash = excluded.password_hash");
  s.bind(1, c.device_id.str()).bind(2, c.tenant_id.str()).bind(3, c.username).bind(4, c.client_id);
  s.bind(5, c.password_hash);
  if (s.step() != SQLITE_DONE) {
    Error e = dbError(db_, "store MQTT credential");
    if (e.code == Code::kAlreadyExists) e.message = "another device uses this MQTT username";
    return std::unexpected(e);
  }
  return ok();
}

Result<MqttCredential> SqliteMetadataStore::getMqttCredential(const TenantId& tenant, const DeviceId& device) {
  std::lock_guard lock(mutex_);
  Stmt s(db_, fmt::format("SELECT {} FROM mqtt_credentials WHERE device_id = ? AND tenant_id = ?", kMqttCols).c_str());
  s.bind(1, device.str()).bind(2, tenant.str());
  if (s.step() != SQLITE_ROW) {
    if (s.rc() != SQLITE_DONE) return std::unexpected(dbError(db_, "read MQTT credential"));
    return fail(Code::kNotFound, "the device has no MQTT credential");
  }
  return readMqttCredential(s);
}

Status SqliteMetadataStore::deleteMqttCredential(const TenantId& tenant, const DeviceId& device) {
  std::lock_guard lock(mutex_);
  Stmt s(db_, "DELETE FROM mqtt_credentials WHERE device_id = ? AND tenant_id = ?");
  s.bind(1, device.str()).bind(2, tenant.str());
  if (s.step() != SQLITE_DONE) return std::unexpected(dbError(db_, "delete MQTT credential"));
  if (sqlite3_changes(db_) == 0) return fail(Code::kNotFound, "the device has no MQTT credential");
  return ok();
}

Result<MqttCredential> SqliteMetadataStore::findMqttCredentialByUsername(const std::string& username) {
  std::lock_guard lock(mutex_);
  Stmt s(db_, fmt::format("SELECT {} FROM mqtt_credentials WHERE username = ?", kMqttCols).c_str());
  s.bind(1, username);
  if (s.step() != SQLITE_ROW) {
    if (s.rc() != SQLITE_DONE) return std::unexpected(dbError(db_, "find MQTT credential"));
    return fail(Code::kNotFound, "unknown MQTT username");
  }
  return readMqttCredential(s);
}

// ---- attributes ----

Status SqliteMetadataStore::upsertAttributes(const TenantId& tenant, const DeviceId& device, const std::string& scope,
                                             const std::vector<Attribute>& attributes) {
  std::lock_guard lock(mutex_);
  if (auto d = getDeviceLocked(tenant, device); !d) return std::unexpected(d.error());
  if (auto st = exec(db_, "BEGIN IMMEDIATE"); !st) return st;
  for (const auto& a : attributes) {
    Stmt s(db_,
           "INSERT INTO attributes(device_id, scope, key, value, updated_at) VALUES (?,?,?,?,?) "
           "ON CONFLICT(device_id, scope, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at");
    s.bind(1, device.str())
        .bind(2, scope)
        .bind(3, a.key)
        .bind(4, a.json_value)
        .bind(5, a.updated_at ? a.updated_at : nowMs());
    if (s.step() != SQLITE_DONE) {
      Error e = dbError(db_, "store attributes");
      (void)exec(db_, "ROLLBACK");
      return std::unexpected(e);
    }
  }
  return exec(db_, "COMMIT");
}

Result<std::vector<Attribute>> SqliteMetadataStore::getAttributes(const TenantId& tenant, const DeviceId& device,
                                                                  const std::string& scope) {
  std::lock_guard lock(mutex_);
  if (auto d = getDeviceLocked(tenant, device); !d) return std::unexpected(d.error());
  Stmt s(db_, "SELECT key, value, updated_at FROM attributes WHERE device_id = ? AND scope = ? ORDER BY key");
  s.bind(1, device.str()).bind(2, scope);
  std::vector<Attribute> out;
  while (s.step() == SQLITE_ROW) out.push_back(Attribute{s.text(0), s.text(1), s.i64(2)});
  if (s.rc() != SQLITE_DONE) return std::unexpected(dbError(db_, "read attributes"));
  return out;
}

Result<std::vector<std::string>> SqliteMetadataStore::deleteAttributes(const TenantId& tenant, const DeviceId& device,
                                                                       const std::string& scope,
                                                                       const std::vector<std::string>& keys) {
  std::lock_guard lock(mutex_);
  if (auto d = getDeviceLocked(tenant, device); !d) return std::unexpected(d.error());
  if (auto st = exec(db_, "BEGIN IMMEDIATE"); !st) return std::unexpected(st.error());
  std::vector<std::string> removed;
  for (const auto& key : keys) {
    Stmt s(db_, "DELETE FROM attributes WHERE device_id = ? AND scope = ? AND key = ?");
    s.bind(1, device.str()).bind(2, scope).bind(3, key);
    if (s.step() != SQLITE_DONE) {
      Error e = dbError(db_, "delete attributes");
      (void)exec(db_, "ROLLBACK");
      return std::unexpected(e);
    }
    if (sqlite3_changes(db_) > 0) removed.push_back(key);
  }
  if (auto st = exec(db_, "COMMIT"); !st) return std::unexpected(st.error());
  return removed;
}

// ---- dashboards ----

Result<Dashboard> SqliteMetadataStore::createDashboard(const Dashboard& d) {
  std::lock_guard lock(mutex_);
  Dashboard out = d;
  if (out.id.empty()) out.id = DashboardId(newUuid());
  out.version = 1;
  out.created_at = nowMs();
  out.updated_at = out.created_at;
  Stmt s(db_,
         "INSERT INTO dashboards(id, tenant_id, name, description, layout, widgets, version, created_at, updated_at) "
         "VALUES (?,?,?,?,?,?,?,?,?)");
  s.bind(1, out.id.str()).bind(2, out.tenant_id.str()).bind(3, out.name).bind(4, out.description);
  s.bind(5, out.layout_json).bind(6, std::int64_t{out.widgets}).bind(7, out.version).bind(8, out.created_at);
  s.bind(9, out.updated_at);
  if (s.step() != SQLITE_DONE) return std::unexpected(dbError(db_, "create dashboard"));
  return out;
}

Result<Dashboard> SqliteMetadataStore::getDashboardLocked(const TenantId& tenant, const DashboardId& id) {
  Stmt s(db_, fmt::format("SELECT {} FROM dashboards WHERE id = ? AND tenant_id = ?", kDashboardFullCols).c_str());
  s.bind(1, id.str()).bind(2, tenant.str());
  if (s.step() != SQLITE_ROW) {
    if (s.rc() != SQLITE_DONE) return std::unexpected(dbError(db_, "read dashboard"));
    return fail(Code::kNotFound, "dashboard not found");
  }
  return readDashboard(s, true);
}

Result<Dashboard> SqliteMetadataStore::getDashboard(const TenantId& tenant, const DashboardId& id) {
  std::lock_guard lock(mutex_);
  return getDashboardLocked(tenant, id);
}

Result<Page<Dashboard>> SqliteMetadataStore::listDashboards(const TenantId& tenant, const std::string& q,
                                                            const PageRequest& page) {
  auto cur = parseCursor(page.after);
  if (!cur) return std::unexpected(cur.error());
  std::lock_guard lock(mutex_);
  Stmt s(db_, fmt::format("SELECT {} FROM dashboards WHERE tenant_id = ?1 "
                          "AND (?2 = '' OR name LIKE '%' || ?2 || '%' ESCAPE '\\') "
                          "AND (?3 = 0 OR (name, id) > (?4, ?5)) ORDER BY name, id LIMIT ?6",
                          kDashboardCols)
                  .c_str());
  s.bind(1, tenant.str()).bind(2, likeEscape(q)).bind(3, std::int64_t{!page.after.empty()});
  s.bind(4, cur->first).bind(5, cur->second).bind(6, static_cast<std::int64_t>(page.page_size + 1));
  Page<Dashboard> out;
  while (s.step() == SQLITE_ROW) out.items.push_back(readDashboard(s, false));
  if (s.rc() != SQLITE_DONE) return std::unexpected(dbError(db_, "list dashboards"));
  if (out.items.size() > page.page_size) {
    out.items.pop_back();
    out.next_cursor = makeCursor(out.items.back().name, out.items.back().id.str());
  }
  return out;
}

Result<std::optional<Dashboard>> SqliteMetadataStore::updateDashboard(const Dashboard& d,
                                                                      std::int64_t expected_version) {
  std::lock_guard lock(mutex_);
  // One statement: the version check and the write are atomic.
  Stmt s(db_,
         "UPDATE dashboards SET name = ?, description = ?, layout = ?, widgets = ?, version = version + 1, "
         "updated_at = MAX(?, updated_at) WHERE id = ? AND tenant_id = ? AND version = ?");
  s.bind(1, d.name).bind(2, d.description).bind(3, d.layout_json).bind(4, std::int64_t{d.widgets});
  s.bind(5, nowMs()).bind(6, d.id.str()).bind(7, d.tenant_id.str()).bind(8, expected_version);
  if (s.step() != SQLITE_DONE) return std::unexpected(dbError(db_, "update dashboard"));
  const bool changed = sqlite3_changes(db_) > 0;
  auto current = getDashboardLocked(d.tenant_id, d.id);
  if (!current) return std::unexpected(current.error());
  if (!changed) return std::optional<Dashboard>();
  return std::optional<Dashboard>(std::move(*current));
}

Status SqliteMetadataStore::deleteDashboard(const TenantId& tenant, const DashboardId& id) {
  std::lock_guard lock(mutex_);
  Stmt s(db_, "DELETE FROM dashboards WHERE id = ? AND tenant_id = ?");
  s.bind(1, id.str()).bind(2, tenant.str());
  if (s.step() != SQLITE_DONE) return std::unexpected(dbError(db_, "delete dashboard"));
  if (sqlite3_changes(db_) == 0) return fail(Code::kNotFound, "dashboard not found");
  return ok();
}

// ---- refresh tokens, settings ----

Status SqliteMetadataStore::storeRefreshToken(const std::string& token_hash, const RefreshTokenRecord& r) {
  std::lock_guard lock(mutex_);
  {
    Stmt gc(db_, "DELETE FROM refresh_tokens WHERE expires_at < ?");
    gc.bind(1, nowMs());
    gc.step();
  }
  Stmt s(db_, "INSERT INTO refresh_tokens(token_hash, user_id, expires_at) VALUES (?,?,?)");
  s.bind(1, token_hash).bind(2, r.user_id.str()).bind(3, r.expires_at);
  if (s.step() != SQLITE_DONE) return std::unexpected(dbError(db_, "store refresh token"));
  return ok();
}

Result<RefreshTokenRecord> SqliteMetadataStore::takeRefreshToken(const std::string& token_hash) {
  std::lock_guard lock(mutex_);
  Stmt s(db_, "DELETE FROM refresh_tokens WHERE token_hash = ? RETURNING user_id, expires_at");
  s.bind(1, token_hash);
  if (s.step() != SQLITE_ROW) return fail(Code::kUnauthenticated, "refresh token is invalid or was revoked");
  RefreshTokenRecord r{UserId(s.text(0)), s.i64(1)};
  s.step();
  return r;
}

Result<std::optional<std::string>> SqliteMetadataStore::getSetting(const std::string& name) {
  std::lock_guard lock(mutex_);
  Stmt s(db_, "SELECT value FROM settings WHERE name = ?");
  s.bind(1, name);
  if (s.step() == SQLITE_ROW) return std::optional<std::string>(s.text(0));
  if (s.rc() != SQLITE_DONE) return std::unexpected(dbError(db_, "read setting"));
  return std::optional<std::string>();
}

Status SqliteMetadataStore::putSetting(const std::string& name, const std::string& value) {
  std::lock_guard lock(mutex_);
  Stmt s(db_, "INSERT INTO settings(name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value");
  s.bind(1, name).bind(2, value);
  if (s.step() != SQLITE_DONE) return std::unexpected(dbError(db_, "write setting"));
  return ok();
}

}  // namespace sw::storage
