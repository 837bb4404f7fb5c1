// SqliteMetadataStore: schema migrations, CRUD, constraints, tenant scoping, keyset pagination
// and filters, attributes, refresh tokens, device tokens, gateways, MQTT basic credentials and
// dashboards.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/ids.h"
#include "storage/backends/sqlite/sqlite_metadata_store.h"
#include "test_util.h"

namespace sw::storage {
namespace {

using sw::testing::TempDir;

class MetadataStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { open(); }
  void open() {
    store_.reset();
    auto s = SqliteMetadataStore::open(dir_.file("meta.db"));
    ASSERT_TRUE(s) << s.error().message;
    store_ = std::move(*s);
  }
  SqliteMetadataStore& db() { return *store_; }

  Tenant tenant(const std::string& name) {
    Tenant t;
    t.name = name;
    auto r = store_->createTenant(t);
    EXPECT_TRUE(r) << r.error().message;
    return r.value_or(Tenant{});
  }
  Device device(const TenantId& t, const std::string& name, const std::string& type = "sensor",
                std::map<std::string, std::string> labels = {}) {
    Device d;
    d.tenant_id = t;
    d.name = name;
    d.type = type;
    d.labels = std::move(labels);
    auto r = store_->createDevice(d, "hash-" + newUuid());
    EXPECT_TRUE(r) << name << ": " << r.error().message;
    return r.value_or(Device{});
  }
  User user(const std::string& username, const TenantId& t = {}, const std::string& role = "viewer") {
    User u;
    u.username = username;
    u.tenant_id = t;
    u.role = role;
    u.password_hash = "$argon2id$fake";
    auto r = store_->createUser(u);
    EXPECT_TRUE(r) << username << ": " << r.error().message;
    return r.value_or(User{});
  }
  std::vector<std::string> deviceNames(const TenantId& t, const DeviceFilter& f) {
    std::vector<std::string> out;
    PageRequest page;
    page.page_size = 1000;
    auto r = store_->listDevices(t, f, page);
    EXPECT_TRUE(r) << r.error().message;
    if (!r) return out;
    for (const auto& d : r->items) out.push_back(d.name);
    return out;
  }

  TempDir dir_;
  std::unique_ptr<SqliteMetadataStore> store_;
};

void expectCode(const Error& e, Code code) {
  EXPECT_EQ(codeName(e.code), codeName(code)) << e.message;
}

// ---- schema ----

TEST_F(MetadataStoreTest, MigrationsAppliedAndReopenIsIdempotent) {
  auto v = db().schemaVersion();
  ASSERT_TRUE(v);
  EXPECT_EQ(*v, 4);
  Tenant t = tenant("acme");
  ASSERT_TRUE(db().putSetting("jwt_hs256_key", "secret"));
  open();
  open();
  v = db().schemaVersion();
  ASSERT_TRUE(v);
  EXPECT_EQ(*v, 4);
  auto again = db().getTenant(t.id);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->name, "acme");
  auto key = db().getSetting("jwt_hs256_key");
  ASSERT_TRUE(key);
  ASSERT_TRUE(key->has_value());
  EXPECT_EQ(**key, "secret");
  // Exactly one row per applied migration.
  store_.reset();
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(dir_.file("meta.db").c_str(), &raw), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(raw, "SELECT COUNT(*) FROM schema_version", -1, &stmt, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(stmt, 0), 4);
  sqlite3_finalize(stmt);
  sqlite3_close(raw);
}

TEST_F(MetadataStoreTest, NewerSchemaIsRefused) {
  store_.reset();
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(dir_.file("meta.db").c_str(), &raw), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(raw, "INSERT INTO schema_version(version) VALUES (99)", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(raw);
  auto s = SqliteMetadataStore::open(dir_.file("meta.db"));
  ASSERT_FALSE(s);
  expectCode(s.error(), Code::kUnavailable);
}

TEST_F(MetadataStoreTest, UnopenablePathIsAnError) {
  auto s = SqliteMetadataStore::open(dir_.file("no/such/dir/meta.db"));
  ASSERT_FALSE(s);
  expectCode(s.error(), Code::kUnavailable);
}

TEST_F(MetadataStoreTest, SettingsUpsert) {
  auto none = db().getSetting("missing");
  ASSERT_TRUE(none);
  EXPECT_FALSE(none->has_value());
  ASSERT_TRUE(db().putSetting("k", "v1"));
  ASSERT_TRUE(db().putSetting("k", "v2"));
  auto v = db().getSetting("k");
  ASSERT_TRUE(v);
  EXPECT_EQ(v->value_or(""), "v2");
}

// ---- tenants ----

TEST_F(MetadataStoreTest, TenantCrud) {
  Tenant in;
  in.name = "acme";
  in.retention_days = 30;
  in.max_msgs_per_s = 12.5;
  auto created = db().createTenant(in);
  ASSERT_TRUE(created) << created.error().message;
  EXPECT_TRUE(parseUuid(created->id.str())) << created->id.str();
  EXPECT_GT(created->created_at, 0);

  auto got = db().getTenant(created->id);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->name, "acme");
  EXPECT_EQ(got->retention_days, 30);
  EXPECT_EQ(got->max_msgs_per_s, 12.5);
  EXPECT_EQ(got->created_at, created->created_at);

  TenantPatch patch;
  patch.retention_days = 7;
  auto updated = db().updateTenant(created->id, patch);
  ASSERT_TRUE(updated);
  EXPECT_EQ(updated->retention_days, 7);
  EXPECT_EQ(updated->name, "acme");  // untouched fields stay
  EXPECT_EQ(updated->max_msgs_per_s, 12.5);
  patch = {};
  patch.name = "acme2";
  patch.max_msgs_per_s = 0;
  updated = db().updateTenant(created->id, patch);
  ASSERT_TRUE(updated);
  EXPECT_EQ(updated->name, "acme2");
  EXPECT_EQ(updated->max_msgs_per_s, 0.0);
  EXPECT_EQ(updated->retention_days, 7);

  ASSERT_TRUE(db().deleteTenant(created->id));
  auto gone = db().getTenant(created->id);
  ASSERT_FALSE(gone);
  expectCode(gone.error(), Code::kNotFound);
  auto again = db().deleteTenant(created->id);
  ASSERT_FALSE(again);
  expectCode(again.error(), Code::kNotFound);
  auto upd = db().updateTenant(created->id, patch);
  ASSERT_FALSE(upd);
  expectCode(upd.error(), Code::kNotFound);
}

TEST_F(MetadataStoreTest, TenantNameIsUnique) {
  Tenant a = tenant("acme");
  Tenant dup;
  dup.name = "acme";
  auto r = db().createTenant(dup);
  ASSERT_FALSE(r);
  expectCode(r.error(), Code::kAlreadyExists);
  Tenant b = tenant("other");
  TenantPatch rename;
  rename.name = "acme";
  auto u = db().updateTenant(b.id, rename);
  ASSERT_FALSE(u);
  expectCode(u.error(), Code::kAlreadyExists);
  // Same id twice.
  Tenant same_id;
  same_id.id = a.id;
  same_id.name = "third";
  auto s = db().createTenant(same_id);
  ASSERT_FALSE(s);
  expectCode(s.error(), Code::kAlreadyExists);
}

TEST_F(MetadataStoreTest, ListTenantsPages) {
  std::set<std::string> want;
  for (int i = 0; i < 7; ++i) want.insert(tenant("t" + std::to_string(i)).id.str());
  std::set<std::string> seen;
  PageRequest page;
  page.page_size = 3;
  int pages = 0;
  for (;;) {
    auto r = db().listTenants(page);
    ASSERT_TRUE(r);
    ++pages;
    for (const auto& t : r->items) EXPECT_TRUE(seen.insert(t.id.str()).second) << "duplicate " << t.name;
    if (r->next_cursor.empty()) break;
    page.after = r->next_cursor;
    ASSERT_LT(pages, 10);
  }
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(seen, want);
}

// ---- users ----

TEST_F(MetadataStoreTest, UserCrud) {
  Tenant t = tenant("acme");
  User admin = user("admin", {}, "sysadmin");
  User alice = user("alice", t.id, "tenant_admin");
  EXPECT_TRUE(parseUuid(alice.id.str()));

  auto got = db().getUser(alice.id);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->username, "alice");
  EXPECT_EQ(got->tenant_id, t.id);
  EXPECT_EQ(got->role, "tenant_admin");
  EXPECT_EQ(got->password_hash, "$argon2id$fake");
  auto by_name = db().getUserByName("admin");
  ASSERT_TRUE(by_name);
  EXPECT_EQ(by_name->id, admin.id);
  EXPECT_TRUE(by_name->tenant_id.empty());  // the system administrator has no tenant
  auto missing = db().getUserByName("nobody");
  ASSERT_FALSE(missing);
  expectCode(missing.error(), Code::kNotFound);

  UserPatch patch;
  patch.role = "viewer";
  auto up = db().updateUser(alice.id, patch);
  ASSERT_TRUE(up);
  EXPECT_EQ(up->role, "viewer");
  EXPECT_EQ(up->password_hash, "$argon2id$fake");

  ASSERT_TRUE(db().deleteUser(alice.id));
  auto gone = db().getUser(alice.id);
  ASSERT_FALSE(gone);
  expectCode(gone.error(), Code::kNotFound);
  auto del = db().deleteUser(alice.id);
  ASSERT_FALSE(del);
  expectCode(del.error(), Code::kNotFound);
  auto upd = db().updateUser(alice.id, patch);
  ASSERT_FALSE(upd);
  expectCode(upd.error(), Code::kNotFound);
}

TEST_F(MetadataStoreTest, UsernameIsGloballyUnique) {
  Tenant a = tenant("a");
  Tenant b = tenant("b");
  user("bob", a.id);
  User dup;
  dup.username = "bob";
  dup.tenant_id = b.id;
  dup.role = "viewer";
  dup.password_hash = "x";
  auto r = db().createUser(dup);
  ASSERT_FALSE(r);
  expectCode(r.error(), Code::kAlreadyExists);
}

TEST_F(MetadataStoreTest, UserOfUnknownTenantIsRefused) {
  User u;
  u.username = "ghost";
  u.tenant_id = TenantId(newUuid());
  u.role = "viewer";
  u.password_hash = "x";
  auto r = db().createUser(u);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().code, Code::kInternal) << r.error().message;
}

TEST_F(MetadataStoreTest, ListUsersByTenantAndAll) {
  Tenant a = tenant("a");
  Tenant b = tenant("b");
  user("root", {}, "sysadmin");
  for (int i = 0; i < 5; ++i) user("a" + std::to_string(i), a.id);
  user("b0", b.id);
  PageRequest page;
  page.page_size = 2;
  std::vector<std::string> names;
  for (int guard = 0; guard < 10; ++guard) {
    auto r = db().listUsers(a.id, page);
    ASSERT_TRUE(r);
    for (const auto& u : r->items) {
      EXPECT_EQ(u.tenant_id, a.id);
      names.push_back(u.username);
    }
    if (r->next_cursor.empty()) break;
    page.after = r->next_cursor;
  }
  EXPECT_EQ(names, (std::vector<std::string>{"a0", "a1", "a2", "a3", "a4"}));
  PageRequest all;
  all.page_size = 100;
  auto everyone = db().listUsers(TenantId(), all);
  ASSERT_TRUE(everyone);
  EXPECT_EQ(everyone->items.size(), 7u);
  EXPECT_TRUE(everyone->next_cursor.empty());
}

// ---- devices ----

TEST_F(MetadataStoreTest, DeviceCrud) {
  Tenant t = tenant("acme");
  Device d = device(t.id, "boiler-1", "boiler", {{"site", "rome"}, {"floor", "2"}});
  EXPECT_TRUE(parseUuid(d.id.str()));
  EXPECT_GT(d.created_at, 0);

  auto got = db().getDevice(t.id, d.id);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->name, "boiler-1");
  EXPECT_EQ(got->type, "boiler");
  EXPECT_EQ(got->tenant_id, t.id);
  EXPECT_EQ(got->labels, (std::map<std::string, std::string>{{"floor", "2"}, {"site", "rome"}}));

  DevicePatch patch;
  patch.name = "boiler-one";
  auto up = db().updateDevice(t.id, d.id, patch);
  ASSERT_TRUE(up) << up.error().message;
  EXPECT_EQ(up->name, "boiler-one");
  EXPECT_EQ(up->type, "boiler");
  EXPECT_EQ(up->labels.size(), 2u);  // labels untouched when absent from the patch
  patch = {};
  patch.type = "heater";
  patch.labels = std::map<std::string, std::string>{{"site", "milan"}};
  up = db().updateDevice(t.id, d.id, patch);
  ASSERT_TRUE(up);
  EXPECT_EQ(up->type, "heater");
  EXPECT_EQ(up->labels, (std::map<std::string, std::string>{{"site", "milan"}}));
  patch = {};
  patch.labels = std::map<std::string, std::string>{};
  up = db().updateDevice(t.id, d.id, patch);
  ASSERT_TRUE(up);
  EXPECT_TRUE(up->labels.empty());

  ASSERT_TRUE(db().deleteDevice(t.id, d.id));
  auto gone = db().getDevice(t.id, d.id);
  ASSERT_FALSE(gone);
  expectCode(gone.error(), Code::kNotFound);
  auto del = db().deleteDevice(t.id, d.id);
  ASSERT_FALSE(del);
  expectCode(del.error(), Code::kNotFound);
}

TEST_F(MetadataStoreTest, DeviceNameUniquePerTenantOnly) {
  Tenant a = tenant("a");
  Tenant b = tenant("b");
  Device first = device(a.id, "pump");
  Device dup;
  dup.tenant_id = a.id;
  dup.name = "pump";
  dup.type = "x";
  auto r = db().createDevice(dup, "another-hash");
  ASSERT_FALSE(r);
  expectCode(r.error(), Code::kAlreadyExists);
  // Same name in another tenant is fine.
  Device other = device(b.id, "pump");
  EXPECT_NE(other.id, first.id);
  // Renaming onto an existing name conflicts too.
  Device second = device(a.id, "valve");
  DevicePatch rename;
  rename.name = "pump";
  auto u = db().updateDevice(a.id, second.id, rename);
  ASSERT_FALSE(u);
  expectCode(u.error(), Code::kAlreadyExists);
  // The failed update left the device as it was.
  auto still = db().getDevice(a.id, second.id);
  ASSERT_TRUE(still);
  EXPECT_EQ(still->name, "valve");
}

TEST_F(MetadataStoreTest, DeviceTokenHashIsUnique) {
  Tenant t = tenant("a");
  Device d;
  d.tenant_id = t.id;
  d.name = "one";
  d.type = "x";
  ASSERT_TRUE(db().createDevice(d, "same-hash"));
  d.name = "two";
  auto r = db().createDevice(d, "same-hash");
  ASSERT_FALSE(r);
  expectCode(r.error(), Code::kAlreadyExists);
  // Nothing of the failed device (e.g. its labels) was kept.
  EXPECT_EQ(deviceNames(t.id, {}), (std::vector<std::string>{"one"}));
}

TEST_F(MetadataStoreTest, DeviceOfUnknownTenantIsRefused) {
  Device d;
  d.tenant_id = TenantId(newUuid());
  d.name = "x";
  d.type = "x";
  auto r = db().createDevice(d, "h");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().code, Code::kInternal) << r.error().message;
}

TEST_F(MetadataStoreTest, WrongTenantSeesNotFound) {
  Tenant a = tenant("a");
  Tenant b = tenant("b");
  Device d = device(a.id, "secret-device");
  auto g = db().getDevice(b.id, d.id);
  ASSERT_FALSE(g);
  expectCode(g.error(), Code::kNotFound);
  DevicePatch patch;
  patch.name = "stolen";
  auto u = db().updateDevice(b.id, d.id, patch);
  ASSERT_FALSE(u);
  expectCode(u.error(), Code::kNotFound);
  auto del = db().deleteDevice(b.id, d.id);
  ASSERT_FALSE(del);
  expectCode(del.error(), Code::kNotFound);
  auto tok = db().replaceDeviceToken(b.id, d.id, "new-hash");
  ASSERT_FALSE(tok);
  expectCode(tok.error(), Code::kNotFound);
  auto attrs = db().getAttributes(b.id, d.id, "client");
  ASSERT_FALSE(attrs);
  expectCode(attrs.error(), Code::kNotFound);
  auto up = db().upsertAttributes(b.id, d.id, "client", {Attribute{"k", "1", 0}});
  ASSERT_FALSE(up);
  expectCode(up.error(), Code::kNotFound);
  EXPECT_TRUE(deviceNames(b.id, {}).empty());
  // Still intact for its own tenant.
  auto own = db().getDevice(a.id, d.id);
  ASSERT_TRUE(own);
  EXPECT_EQ(own->name, "secret-device");
}

TEST_F(MetadataStoreTest, ListDevicesPagesWithoutDuplicatesOrGaps) {
  Tenant t = tenant("acme");
  Tenant other = tenant("other");
  std::set<std::string> want;
  for (int i = 0; i < 25; ++i) {
    // Created in scrambled name order; names share prefixes (dev-1, dev-10, ...).
    want.insert(device(t.id, "dev-" + std::to_string((i * 7) % 25)).id.str());
  }
  device(other.id, "dev-0");
  std::set<std::string> seen;
  std::vector<std::string> names;
  std::vector<std::size_t> sizes;
  PageRequest page;
  page.page_size = 10;
  for (int guard = 0; guard < 10; ++guard) {
    auto r = db().listDevices(t.id, {}, page);
    ASSERT_TRUE(r) << r.error().message;
    sizes.push_back(r->items.size());
    for (const auto& d : r->items) {
      EXPECT_TRUE(seen.insert(d.id.str()).second) << "duplicate " << d.name;
      EXPECT_EQ(d.tenant_id, t.id);
      names.push_back(d.name);
    }
    if (r->next_cursor.empty()) break;
    page.after = r->next_cursor;
  }
  EXPECT_EQ(sizes, (std::vector<std::size_t>{10, 10, 5}));
  EXPECT_EQ(seen, want);
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
}

TEST_F(MetadataStoreTest, ListDevicesExactMultipleOfPageSizeEndsCleanly) {
  Tenant t = tenant("acme");
  for (int i = 0; i < 20; ++i) device(t.id, "d" + std::to_string(100 + i));
  PageRequest page;
  page.page_size = 10;
  auto p1 = db().listDevices(t.id, {}, page);
  ASSERT_TRUE(p1);
  ASSERT_EQ(p1->items.size(), 10u);
  ASSERT_FALSE(p1->next_cursor.empty());
  page.after = p1->next_cursor;
  auto p2 = db().listDevices(t.id, {}, page);
  ASSERT_TRUE(p2);
  EXPECT_EQ(p2->items.size(), 10u);
  EXPECT_TRUE(p2->next_cursor.empty());
}

TEST_F(MetadataStoreTest, ListDevicesFilters) {
  Tenant t = tenant("acme");
  device(t.id, "Boiler-North", "boiler", {{"site", "rome"}, {"critical", "yes"}});
  device(t.id, "boiler-south", "boiler", {{"site", "milan"}});
  device(t.id, "Pump", "pump", {{"site", "rome"}});
  device(t.id, "100%_sure", "misc");
  device(t.id, "100a_sure", "misc");
  device(t.id, "x_y", "misc");
  device(t.id, "xay", "misc");
  device(t.id, "back\\slash", "misc");

  DeviceFilter f;
  f.q = "BOILER";
  EXPECT_EQ(deviceNames(t.id, f), (std::vector<std::string>{"Boiler-North", "boiler-south"}));
  f.q = "oiler-s";
  EXPECT_EQ(deviceNames(t.id, f), (std::vector<std::string>{"boiler-south"}));
  f.q = "%";
  EXPECT_EQ(deviceNames(t.id, f), (std::vector<std::string>{"100%_sure"}));
  f.q = "_";
  EXPECT_EQ(deviceNames(t.id, f), (std::vector<std::string>{"100%_sure", "100a_sure", "x_y"}));
  f.q = "x_y";
  EXPECT_EQ(deviceNames(t.id, f), (std::vector<std::string>{"x_y"}));
  f.q = "0%";
  EXPECT_EQ(deviceNames(t.id, f), (std::vector<std::string>{"100%_sure"}));
  f.q = "\\";
  EXPECT_EQ(deviceNames(t.id, f), (std::vector<std::string>{"back\\slash"}));
  f.q = "nothing-matches";
  EXPECT_TRUE(deviceNames(t.id, f).empty());

  DeviceFilter by_type;
  by_type.type = "boiler";
  EXPECT_EQ(deviceNames(t.id, by_type), (std::vector<std::string>{"Boiler-North", "boiler-south"}));
  by_type.type = "Boiler";  // exact match
  EXPECT_TRUE(deviceNames(t.id, by_type).empty());

  DeviceFilter by_label;
  by_label.label_key = "site";
  EXPECT_EQ(deviceNames(t.id, by_label), (std::vector<std::string>{"Boiler-North", "Pump", "boiler-south"}));
  by_label.label_value = "rome";
  EXPECT_EQ(deviceNames(t.id, by_label), (std::vector<std::string>{"Boiler-North", "Pump"}));
  by_label.label_value = "";
  EXPECT_TRUE(deviceNames(t.id, by_label).empty());
  by_label.label_key = "critical";
  by_label.label_value.reset();
  EXPECT_EQ(deviceNames(t.id, by_label), (std::vector<std::string>{"Boiler-North"}));

  DeviceFilter combined;
  combined.q = "o";
  combined.type = "boiler";
  combined.label_key = "site";
  combined.label_value = "milan";
  EXPECT_EQ(deviceNames(t.id, combined), (std::vector<std::string>{"boiler-south"}));

  // Filters combine with pagination.
  DeviceFilter misc;
  misc.type = "misc";
  PageRequest page;
  page.page_size = 2;
  std::vector<std::string> names;
  for (int guard = 0; guard < 10; ++guard) {
    auto r = db().listDevices(t.id, misc, page);
    ASSERT_TRUE(r);
    for (const auto& d : r->items) names.push_back(d.name);
    if (r->next_cursor.empty()) break;
    page.after = r->next_cursor;
  }
  EXPECT_EQ(names, (std::vector<std::string>{"100%_sure", "100a_sure", "back\\slash", "x_y", "xay"}));
}

TEST_F(MetadataStoreTest, MalformedCursorIsInvalidArgument) {
  Tenant t = tenant("acme");
  device(t.id, "d");
  for (const std::string& bad :
       std::vector<std::string>{"zz", "abc", "6162", "XYZW", "0g", std::string(5000, 'a'), "not a cursor"}) {
    PageRequest page;
    page.after = bad;
    auto d = db().listDevices(t.id, {}, page);
    ASSERT_FALSE(d) << bad;
    expectCode(d.error(), Code::kInvalidArgument);
    EXPECT_EQ(d.error().field, "cursor");
    auto tl = db().listTenants(page);
    ASSERT_FALSE(tl) << bad;
    expectCode(tl.error(), Code::kInvalidArgument);
    auto ul = db().listUsers(t.id, page);
    ASSERT_FALSE(ul) << bad;
    expectCode(ul.error(), Code::kInvalidArgument);
  }
}

// ---- attributes ----

TEST_F(MetadataStoreTest, AttributesUpsertAndGetPerScope) {
  Tenant t = tenant("acme");
  Device d = device(t.id, "d");
  ASSERT_TRUE(db().upsertAttributes(t.id, d.id, "client", {{"fw", R"("1.0")", 0}, {"b", "true", 0}}));
  ASSERT_TRUE(db().upsertAttributes(t.id, d.id, "shared", {{"fw", R"("2.0")", 1234}}));

  auto client = db().getAttributes(t.id, d.id, "client");
  ASSERT_TRUE(client);
  ASSERT_EQ(client->size(), 2u);
  EXPECT_EQ((*client)[0].key, "b");  // ordered by key
  EXPECT_EQ((*client)[0].json_value, "true");
  EXPECT_EQ((*client)[1].key, "fw");
  EXPECT_EQ((*client)[1].json_value, R"("1.0")");
  EXPECT_GT((*client)[1].updated_at, 0);  // stamped when not given

  auto shared = db().getAttributes(t.id, d.id, "shared");
  ASSERT_TRUE(shared);
  ASSERT_EQ(shared->size(), 1u);
  EXPECT_EQ((*shared)[0].json_value, R"("2.0")");
  EXPECT_EQ((*shared)[0].updated_at, 1234);

  auto server = db().getAttributes(t.id, d.id, "server");
  ASSERT_TRUE(server);
  EXPECT_TRUE(server->empty());

  // Upsert replaces one key and keeps the others.
  ASSERT_TRUE(db().upsertAttributes(t.id, d.id, "client", {{"fw", R"({"v":[1,1]})", 5}}));
  client = db().getAttributes(t.id, d.id, "client");
  ASSERT_TRUE(client);
  ASSERT_EQ(client->size(), 2u);
  EXPECT_EQ((*client)[1].json_value, R"({"v":[1,1]})");
  EXPECT_EQ((*client)[1].updated_at, 5);
  shared = db().getAttributes(t.id, d.id, "shared");
  EXPECT_EQ((*shared)[0].json_value, R"("2.0")");

  // Unknown device.
  auto missing = db().getAttributes(t.id, DeviceId(newUuid()), "client");
  ASSERT_FALSE(missing);
  expectCode(missing.error(), Code::kNotFound);
  auto up = db().upsertAttributes(t.id, DeviceId(newUuid()), "client", {{"k", "1", 0}});
  ASSERT_FALSE(up);
  expectCode(up.error(), Code::kNotFound);

  // Deleting the device deletes its attributes; a new device does not inherit them.
  ASSERT_TRUE(db().deleteDevice(t.id, d.id));
  Device d2 = device(t.id, "d");
  auto fresh = db().getAttributes(t.id, d2.id, "client");
  ASSERT_TRUE(fresh);
  EXPECT_TRUE(fresh->empty());
}

// ---- credentials ----

TEST_F(MetadataStoreTest, RefreshTokensAreSingleUse) {
  Tenant t = tenant("acme");
  User u = user("alice", t.id);
  const std::int64_t exp = nowMs() + 3'600'000;
  ASSERT_TRUE(db().storeRefreshToken("rt-hash", RefreshTokenRecord{u.id, exp}));
  auto first = db().takeRefreshToken("rt-hash");
  ASSERT_TRUE(first) << first.error().message;
  EXPECT_EQ(first->user_id, u.id);
  EXPECT_EQ(first->expires_at, exp);
  auto second = db().takeRefreshToken("rt-hash");
  ASSERT_FALSE(second);
  expectCode(second.error(), Code::kUnauthenticated);
  auto unknown = db().takeRefreshToken("never-stored");
  ASSERT_FALSE(unknown);
  expectCode(unknown.error(), Code::kUnauthenticated);
}

TEST_F(MetadataStoreTest, RefreshTokensEndWithPasswordChangeAndUser) {
  Tenant t = tenant("acme");
  User u = user("alice", t.id);
  const std::int64_t exp = nowMs() + 3'600'000;
  ASSERT_TRUE(db().storeRefreshToken("a", RefreshTokenRecord{u.id, exp}));
  ASSERT_TRUE(db().storeRefreshToken("b", RefreshTokenRecord{u.id, exp}));
  UserPatch role_only;
  role_only.role = "tenant_admin";
  ASSERT_TRUE(db().updateUser(u.id, role_only));
  ASSERT_TRUE(db().takeRefreshToken("a"));  // a role change keeps sessions
  UserPatch pw;
  pw.password_hash = "$argon2id$new";
  ASSERT_TRUE(db().updateUser(u.id, pw));
  EXPECT_FALSE(db().takeRefreshToken("b"));  // a password change ends them

  ASSERT_TRUE(db().storeRefreshToken("c", RefreshTokenRecord{u.id, exp}));
  ASSERT_TRUE(db().deleteUser(u.id));
  EXPECT_FALSE(db().takeRefreshToken("c"));
}

TEST_F(MetadataStoreTest, ExpiredRefreshTokensAreCollected) {
  Tenant t = tenant("acme");
  User u = user("alice", t.id);
  ASSERT_TRUE(db().storeRefreshToken("old", RefreshTokenRecord{u.id, nowMs() - 1000}));
  // Storing another token collects expired ones.
  ASSERT_TRUE(db().storeRefreshToken("new", RefreshTokenRecord{u.id, nowMs() + 60'000}));
  EXPECT_FALSE(db().takeRefreshToken("old"));
  EXPECT_TRUE(db().takeRefreshToken("new"));
}

TEST_F(MetadataStoreTest, ReplaceDeviceTokenReturnsOldHash) {
  Tenant t = tenant("acme");
  Device d;
  d.tenant_id = t.id;
  d.name = "d";
  d.type = "x";
  auto created = db().createDevice(d, "hash-1");
  ASSERT_TRUE(created);
  auto found = db().findDeviceByTokenHash("hash-1");
  ASSERT_TRUE(found);
  EXPECT_EQ(found->id, created->id);

  auto old = db().replaceDeviceToken(t.id, created->id, "hash-2");
  ASSERT_TRUE(old) << old.error().message;
  EXPECT_EQ(*old, "hash-1");
  auto stale = db().findDeviceByTokenHash("hash-1");
  ASSERT_FALSE(stale);
  expectCode(stale.error(), Code::kNotFound);
  auto now = db().findDeviceByTokenHash("hash-2");
  ASSERT_TRUE(now);
  EXPECT_EQ(now->id, created->id);
  EXPECT_EQ(now->tenant_id, t.id);

  old = db().replaceDeviceToken(t.id, created->id, "hash-3");
  ASSERT_TRUE(old);
  EXPECT_EQ(*old, "hash-2");

  // A token already used by another device is refused.
  Device other;
  other.tenant_id = t.id;
  other.name = "other";
  other.type = "x";
  ASSERT_TRUE(db().createDevice(other, "hash-other"));
  auto clash = db().replaceDeviceToken(t.id, created->id, "hash-other");
  ASSERT_FALSE(clash);
  expectCode(clash.error(), Code::kAlreadyExists);
  EXPECT_TRUE(db().findDeviceByTokenHash("hash-3"));

  auto missing = db().replaceDeviceToken(t.id, DeviceId(newUuid()), "hash-4");
  ASSERT_FALSE(missing);
  expectCode(missing.error(), Code::kNotFound);
}

// ---- gateways ----

TEST_F(MetadataStoreTest, GatewayFieldsAreStoredAndReadEverywhere) {
  Tenant t = tenant("acme");
  Device gw;
  gw.tenant_id = t.id;
  gw.name = "gw";
  gw.type = "gateway";
  gw.gateway = true;
  auto created_gw = db().createDevice(gw, "gw-hash");
  ASSERT_TRUE(created_gw) << created_gw.error().message;
  EXPECT_TRUE(created_gw->gateway);
  EXPECT_TRUE(created_gw->gateway_id.empty());

  Device sub;
  sub.tenant_id = t.id;
  sub.name = "sub";
  sub.type = "default";
  sub.gateway_id = created_gw->id;
  auto created_sub = db().createDevice(sub, "sub-hash");
  ASSERT_TRUE(created_sub) << created_sub.error().message;
  Device plain = device(t.id, "plain");
  EXPECT_FALSE(plain.gateway);
  EXPECT_TRUE(plain.gateway_id.empty());

  auto check = [&](const Result<Device>& d, bool gateway, const DeviceId& gateway_id) {
    ASSERT_TRUE(d) << d.error().message;
    EXPECT_EQ(d->gateway, gateway) << d->name;
    EXPECT_EQ(d->gateway_id, gateway_id) << d->name;
  };
  check(db().getDevice(t.id, created_gw->id), true, DeviceId());
  check(db().getDevice(t.id, created_sub->id), false, created_gw->id);
  check(db().findDeviceByTokenHash("gw-hash"), true, DeviceId());
  check(db().findDeviceByTokenHash("sub-hash"), false, created_gw->id);
  check(db().findDeviceByName(t.id, "gw"), true, DeviceId());
  check(db().findDeviceByName(t.id, "sub"), false, created_gw->id);
  DevicePatch patch;
  patch.type = "renamed-type";
  check(db().updateDevice(t.id, created_gw->id, patch), true, DeviceId());
  check(db().updateDevice(t.id, created_sub->id, patch), false, created_gw->id);

  PageRequest page;
  auto list = db().listDevices(t.id, {}, page);
  ASSERT_TRUE(list);
  ASSERT_EQ(list->items.size(), 3u);
  for (const auto& d : list->items) {
    EXPECT_EQ(d.gateway, d.name == "gw") << d.name;
    EXPECT_EQ(d.gateway_id, d.name == "sub" ? created_gw->id : DeviceId()) << d.name;
  }

  // Deleting the gateway keeps its sub-devices, unlinked.
  ASSERT_TRUE(db().deleteDevice(t.id, created_gw->id));
  check(db().getDevice(t.id, created_sub->id), false, DeviceId());
}

TEST_F(MetadataStoreTest, SubDeviceNeedsAGatewayOfItsOwnTenant) {
  Tenant a = tenant("a");
  Tenant b = tenant("b");
  Device foreign_gw = device(b.id, "gw");
  Device sub;
  sub.tenant_id = a.id;
  sub.name = "sub";
  sub.type = "x";
  sub.gateway_id = foreign_gw.id;
  auto r = db().createDevice(sub, "sub-hash");
  ASSERT_FALSE(r);
  expectCode(r.error(), Code::kNotFound);
  sub.gateway_id = DeviceId(newUuid());
  r = db().createDevice(sub, "sub-hash");
  ASSERT_FALSE(r);
  expectCode(r.error(), Code::kNotFound);
  EXPECT_TRUE(deviceNames(a.id, {}).empty());
}

TEST_F(MetadataStoreTest, FindDeviceByNameIsExactAndPerTenant) {
  Tenant a = tenant("a");
  Tenant b = tenant("b");
  Device d = device(a.id, "Pump-1", "pump", {{"k", "v"}});
  auto found = db().findDeviceByName(a.id, "Pump-1");
  ASSERT_TRUE(found) << found.error().message;
  EXPECT_EQ(found->id, d.id);
  EXPECT_EQ(found->type, "pump");
  EXPECT_EQ(found->labels, (std::map<std::string, std::string>{{"k", "v"}}));
  for (const char* name : {"pump-1", "Pump", "Pump-1 ", "%", ""}) {
    auto miss = db().findDeviceByName(a.id, name);
    ASSERT_FALSE(miss) << name;
    expectCode(miss.error(), Code::kNotFound);
  }
  auto other = db().findDeviceByName(b.id, "Pump-1");
  ASSERT_FALSE(other);
  expectCode(other.error(), Code::kNotFound);
}

// ---- MQTT basic credentials ----

MqttCredential mqttCredential(const Device& d, const std::string& username, const std::string& client_id = {},
                              const std::string& hash = "$argon2id$h1") {
  return MqttCredential{d.tenant_id, d.id, username, client_id, hash};
}

TEST_F(MetadataStoreTest, MqttCredentialCrud) {
  Tenant t = tenant("acme");
  Device d = device(t.id, "d");
  auto none = db().getMqttCredential(t.id, d.id);
  ASSERT_FALSE(none);
  expectCode(none.error(), Code::kNotFound);

  ASSERT_TRUE(db().putMqttCredential(mqttCredential(d, "user-1", "client-1")));
  auto got = db().getMqttCredential(t.id, d.id);
  ASSERT_TRUE(got) << got.error().message;
  EXPECT_EQ(got->tenant_id, t.id);
  EXPECT_EQ(got->device_id, d.id);
  EXPECT_EQ(got->username, "user-1");
  EXPECT_EQ(got->client_id, "client-1");
  EXPECT_EQ(got->password_hash, "$argon2id$h1");
  auto by_name = db().findMqttCredentialByUsername("user-1");
  ASSERT_TRUE(by_name);
  EXPECT_EQ(by_name->device_id, d.id);
  EXPECT_EQ(by_name->tenant_id, t.id);
  EXPECT_FALSE(db().findMqttCredentialByUsername("USER-1"));

  // Put again replaces: same username with a new password, then a new username (the old one is freed).
  ASSERT_TRUE(db().putMqttCredential(mqttCredential(d, "user-1", "", "$argon2id$h2")));
  got = db().getMqttCredential(t.id, d.id);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->client_id, "");
  EXPECT_EQ(got->password_hash, "$argon2id$h2");
  ASSERT_TRUE(db().putMqttCredential(mqttCredential(d, "user-2")));
  auto old = db().findMqttCredentialByUsername("user-1");
  ASSERT_FALSE(old);
  expectCode(old.error(), Code::kNotFound);
  EXPECT_EQ(db().findMqttCredentialByUsername("user-2")->device_id, d.id);

  ASSERT_TRUE(db().deleteMqttCredential(t.id, d.id));
  EXPECT_FALSE(db().getMqttCredential(t.id, d.id));
  EXPECT_FALSE(db().findMqttCredentialByUsername("user-2"));
  auto again = db().deleteMqttCredential(t.id, d.id);
  ASSERT_FALSE(again);
  expectCode(again.error(), Code::kNotFound);
  // The access token is a separate credential and still works.
  EXPECT_TRUE(db().getDevice(t.id, d.id));
}

TEST_F(MetadataStoreTest, MqttUsernameIsUniqueAcrossDevicesAndTenants) {
  Tenant a = tenant("a");
  Tenant b = tenant("b");
  Device d1 = device(a.id, "d1");
  Device d2 = device(a.id, "d2");
  Device d3 = device(b.id, "d3");
  ASSERT_TRUE(db().putMqttCredential(mqttCredential(d1, "shared-name")));
  for (const Device* other : {&d2, &d3}) {
    auto clash = db().putMqttCredential(mqttCredential(*other, "shared-name"));
    ASSERT_FALSE(clash) << other->name;
    expectCode(clash.error(), Code::kAlreadyExists);
  }
  // A failed put leaves an existing credential of that device as it was.
  ASSERT_TRUE(db().putMqttCredential(mqttCredential(d2, "d2-name", "c2")));
  auto clash = db().putMqttCredential(mqttCredential(d2, "shared-name", "other", "$argon2id$other"));
  ASSERT_FALSE(clash);
  expectCode(clash.error(), Code::kAlreadyExists);
  auto kept = db().getMqttCredential(a.id, d2.id);
  ASSERT_TRUE(kept);
  EXPECT_EQ(kept->username, "d2-name");
  EXPECT_EQ(kept->client_id, "c2");
  EXPECT_EQ(kept->password_hash, "$argon2id$h1");
  EXPECT_EQ(db().findMqttCredentialByUsername("shared-name")->device_id, d1.id);
}

TEST_F(MetadataStoreTest, MqttCredentialsOfAnotherTenantAreNotFound) {
  Tenant a = tenant("a");
  Tenant b = tenant("b");
  Device d = device(a.id, "d");
  ASSERT_TRUE(db().putMqttCredential(mqttCredential(d, "owner")));

  auto get = db().getMqttCredential(b.id, d.id);
  ASSERT_FALSE(get);
  expectCode(get.error(), Code::kNotFound);
  auto del = db().deleteMqttCredential(b.id, d.id);
  ASSERT_FALSE(del);
  expectCode(del.error(), Code::kNotFound);
  MqttCredential stolen = mqttCredential(d, "thief");
  stolen.tenant_id = b.id;
  auto put = db().putMqttCredential(stolen);
  ASSERT_FALSE(put);
  expectCode(put.error(), Code::kNotFound);
  MqttCredential unknown = mqttCredential(d, "ghost");
  unknown.device_id = DeviceId(newUuid());
  put = db().putMqttCredential(unknown);
  ASSERT_FALSE(put);
  expectCode(put.error(), Code::kNotFound);

  auto kept = db().getMqttCredential(a.id, d.id);
  ASSERT_TRUE(kept);
  EXPECT_EQ(kept->username, "owner");
  EXPECT_FALSE(db().findMqttCredentialByUsername("thief"));
  EXPECT_FALSE(db().findMqttCredentialByUsername("ghost"));
}

TEST_F(MetadataStoreTest, MqttCredentialGoesWithItsDeviceAndTenant) {
  Tenant a = tenant("a");
  Tenant b = tenant("b");
  Device d = device(a.id, "d");
  Device e = device(b.id, "e");
  ASSERT_TRUE(db().putMqttCredential(mqttCredential(d, "d-user")));
  ASSERT_TRUE(db().putMqttCredential(mqttCredential(e, "e-user")));
  ASSERT_TRUE(db().deleteDevice(a.id, d.id));
  EXPECT_FALSE(db().findMqttCredentialByUsername("d-user"));
  // The username is free again.
  Device d_again = device(a.id, "d");
  EXPECT_TRUE(db().putMqttCredential(mqttCredential(d_again, "d-user")));
  ASSERT_TRUE(db().deleteTenant(b.id));
  EXPECT_FALSE(db().findMqttCredentialByUsername("e-user"));
  EXPECT_TRUE(db().findMqttCredentialByUsername("d-user"));
  // Credentials survive a reopen.
  open();
  auto got = db().findMqttCredentialByUsername("d-user");
  ASSERT_TRUE(got);
  EXPECT_EQ(got->device_id, d_again.id);
}

TEST_F(MetadataStoreTest, DeletingATenantCascades) {
  Tenant a = tenant("a");
  Tenant b = tenant("b");
  User ua = user("ua", a.id);
  User ub = user("ub", b.id);
  Device da = device(a.id, "da", "x", {{"k", "v"}});
  Device db_dev = device(b.id, "db");
  ASSERT_TRUE(db().upsertAttributes(a.id, da.id, "client", {{"k", "1", 0}}));
  ASSERT_TRUE(db().storeRefreshToken("rt-a", RefreshTokenRecord{ua.id, nowMs() + 60'000}));
  auto token_hash_of_da = db().replaceDeviceToken(a.id, da.id, "da-token");
  ASSERT_TRUE(token_hash_of_da);

  ASSERT_TRUE(db().deleteTenant(a.id));
  EXPECT_FALSE(db().getUser(ua.id));
  EXPECT_FALSE(db().getUserByName("ua"));
  EXPECT_FALSE(db().getDevice(a.id, da.id));
  EXPECT_FALSE(db().findDeviceByTokenHash("da-token"));
  EXPECT_FALSE(db().takeRefreshToken("rt-a"));
  EXPECT_TRUE(deviceNames(a.id, {}).empty());
  PageRequest all;
  auto users = db().listUsers(a.id, all);
  ASSERT_TRUE(users);
  EXPECT_TRUE(users->items.empty());

  // The other tenant is untouched, and names freed by the cascade can be reused.
  EXPECT_TRUE(db().getUser(ub.id));
  EXPECT_TRUE(db().getDevice(b.id, db_dev.id));
  user("ua", b.id);
}

}  // namespace
}  // namespace sw::storage

namespace sw::storage {
namespace {

TEST_F(MetadataStoreTest, DeviceActivityIsSavedAndScopedByTenant) {
  Tenant a = tenant("act-a");
  Tenant b = tenant("act-b");
  Device d = device(a.id, "meter");
  auto fresh = db().getDevice(a.id, d.id);
  ASSERT_TRUE(fresh);
  EXPECT_FALSE(fresh->last_connect);
  EXPECT_FALSE(fresh->last_activity);
  ASSERT_TRUE(db().recordDeviceActivity({DeviceActivity{a.id, d.id, 100, std::nullopt, 150}}));
  // Unset fields leave the saved value; another tenant's id changes nothing.
  ASSERT_TRUE(db().recordDeviceActivity(
      {DeviceActivity{a.id, d.id, std::nullopt, 200, std::nullopt}, DeviceActivity{b.id, d.id, 999, 999, 999}}));
  auto saved = db().getDevice(a.id, d.id);
  ASSERT_TRUE(saved);
  EXPECT_EQ(saved->last_connect, 100);
  EXPECT_EQ(saved->last_disconnect, 200);
  EXPECT_EQ(saved->last_activity, 150);
  open();  // survives a reopen
  auto reopened = db().findDeviceByName(a.id, "meter");
  ASSERT_TRUE(reopened);
  EXPECT_EQ(reopened->last_activity, 150);
}

TEST_F(MetadataStoreTest, ListDevicesByIncludedAndExcludedIds) {
  Tenant t = tenant("ids");
  std::vector<Device> devs;
  for (const char* n : {"a", "b", "c", "d", "e"}) devs.push_back(device(t.id, n));
  DeviceFilter only;
  only.only_ids = std::vector<DeviceId>{devs[1].id, devs[3].id, DeviceId("not-a-device"), DeviceId("q\"\\x")};
  EXPECT_EQ(deviceNames(t.id, only), (std::vector<std::string>{"b", "d"}));
  only.only_ids->clear();
  EXPECT_TRUE(deviceNames(t.id, only).empty());  // nobody online: an empty list, not everything
  DeviceFilter except;
  except.except_ids = {devs[1].id, devs[3].id};
  EXPECT_EQ(deviceNames(t.id, except), (std::vector<std::string>{"a", "c", "e"}));
  // Combined with other filters and paged by the same keyset cursor.
  except.q = "E";
  EXPECT_EQ(deviceNames(t.id, except), (std::vector<std::string>{"e"}));
  DeviceFilter paged;
  paged.except_ids = {devs[0].id};
  PageRequest page;
  page.page_size = 2;
  std::vector<std::string> names;
  for (int i = 0; i < 10; ++i) {
    auto r = db().listDevices(t.id, paged, page);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->items.size(), r->next_cursor.empty() ? r->items.size() : 2u);  // full pages
    for (const auto& d : r->items) names.push_back(d.name);
    if (r->next_cursor.empty()) break;
    page.after = r->next_cursor;
  }
  EXPECT_EQ(names, (std::vector<std::string>{"b", "c", "d", "e"}));
}

Dashboard dashboard(const TenantId& t, const std::string& name, const std::string& layout = R"({"schema":1})") {
  Dashboard d;
  d.tenant_id = t;
  d.name = name;
  d.description = "about " + name;
  d.layout_json = layout;
  return d;
}

TEST_F(MetadataStoreTest, DashboardCrudAndVersions) {
  Tenant t = tenant("dash");
  Dashboard in = dashboard(t.id, "Plant", R"({"schema":1,"widgets":[{"id":"w1"},{"id":"w2"}]})");
  in.widgets = 2;
  auto created = db().createDashboard(in);
  ASSERT_TRUE(created) << created.error().message;
  EXPECT_FALSE(created->id.empty());
  EXPECT_EQ(created->version, 1);
  EXPECT_GT(created->created_at, 0);
  EXPECT_EQ(created->updated_at, created->created_at);
  auto got = db().getDashboard(t.id, created->id);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->name, "Plant");
  EXPECT_EQ(got->description, "about Plant");
  EXPECT_EQ(got->layout_json, in.layout_json);
  EXPECT_EQ(got->widgets, 2);

  Dashboard edit = *got;
  edit.name = "Plant 2";
  edit.layout_json = R"({"schema":1,"widgets":[]})";
  edit.widgets = 0;
  auto updated = db().updateDashboard(edit, 1);
  ASSERT_TRUE(updated) << updated.error().message;
  ASSERT_TRUE(updated->has_value());
  EXPECT_EQ((*updated)->version, 2);
  EXPECT_EQ((*updated)->name, "Plant 2");
  EXPECT_EQ((*updated)->widgets, 0);
  EXPECT_GE((*updated)->updated_at, created->updated_at);
  EXPECT_EQ((*updated)->created_at, created->created_at);

  // A second editor who started from version 1 does not overwrite version 2.
  Dashboard stale = *got;
  stale.name = "stale";
  auto conflict = db().updateDashboard(stale, 1);
  ASSERT_TRUE(conflict);
  EXPECT_FALSE(conflict->has_value());
  EXPECT_EQ(db().getDashboard(t.id, created->id)->name, "Plant 2");

  Dashboard missing = stale;
  missing.id = DashboardId(newUuid());
  auto nf = db().updateDashboard(missing, 1);
  ASSERT_FALSE(nf);
  expectCode(nf.error(), Code::kNotFound);

  open();  // survives a reopen
  EXPECT_EQ(db().getDashboard(t.id, created->id)->version, 2);
  ASSERT_TRUE(db().deleteDashboard(t.id, created->id));
  expectCode(db().getDashboard(t.id, created->id).error(), Code::kNotFound);
  expectCode(db().deleteDashboard(t.id, created->id).error(), Code::kNotFound);
}

TEST_F(MetadataStoreTest, DashboardsAreScopedByTenantAndGoWithIt) {
  Tenant a = tenant("dash-a");
  Tenant b = tenant("dash-b");
  auto d = db().createDashboard(dashboard(a.id, "mine"));
  ASSERT_TRUE(d);
  expectCode(db().getDashboard(b.id, d->id).error(), Code::kNotFound);
  Dashboard hijack = *d;
  hijack.tenant_id = b.id;
  auto upd = db().updateDashboard(hijack, 1);
  ASSERT_FALSE(upd);
  expectCode(upd.error(), Code::kNotFound);
  expectCode(db().deleteDashboard(b.id, d->id).error(), Code::kNotFound);
  PageRequest page;
  EXPECT_TRUE(db().listDashboards(b.id, "", page)->items.empty());
  // A dashboard of an unknown tenant is refused.
  auto orphan = db().createDashboard(dashboard(TenantId(newUuid()), "orphan"));
  ASSERT_FALSE(orphan);
  expectCode(orphan.error(), Code::kNotFound);
  ASSERT_TRUE(db().deleteTenant(a.id));
  sqlite3* raw = nullptr;
  store_.reset();
  ASSERT_EQ(sqlite3_open(dir_.file("meta.db").c_str(), &raw), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(raw, "SELECT COUNT(*) FROM dashboards", -1, &stmt, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(stmt, 0), 0);
  sqlite3_finalize(stmt);
  sqlite3_close(raw);
}

TEST_F(MetadataStoreTest, ListDashboardsByNameWithSearchAndPages) {
  Tenant t = tenant("dash-list");
  for (const char* n : {"Zeta", "alpha", "Beta", "beta", "Gamma 50%", "gamma_x"}) {
    ASSERT_TRUE(db().createDashboard(dashboard(t.id, n)));
  }
  ASSERT_TRUE(db().createDashboard(dashboard(t.id, "Beta")));  // names need not be unique
  PageRequest page;
  page.page_size = 2;
  std::vector<std::string> names;
  std::set<std::string> ids;
  for (int i = 0; i < 10; ++i) {
    auto r = db().listDashboards(t.id, "", page);
    ASSERT_TRUE(r) << r.error().message;
    for (const auto& d : r->items) {
      names.push_back(d.name);
      ids.insert(d.id.str());
      EXPECT_TRUE(d.layout_json.empty()) << "listings carry no layout";
    }
    if (r->next_cursor.empty()) break;
    page.after = r->next_cursor;
  }
  EXPECT_EQ(names, (std::vector<std::string>{"Beta", "Beta", "Gamma 50%", "Zeta", "alpha", "beta", "gamma_x"}));
  EXPECT_EQ(ids.size(), 7u);
  PageRequest all;
  auto q = [&](const std::string& text) {
    std::vector<std::string> out;
    auto r = db().listDashboards(t.id, text, all);
    EXPECT_TRUE(r) << r.error().message;
    if (r) {
      for (const auto& d : r->items) out.push_back(d.name);
    }
    return out;
  };
  EXPECT_EQ(q("BETA"), (std::vector<std::string>{"Beta", "Beta", "beta"}));
  EXPECT_EQ(q("%"), (std::vector<std::string>{"Gamma 50%"}));  // LIKE wildcards are literal
  EXPECT_EQ(q("_"), (std::vector<std::string>{"gamma_x"}));
  EXPECT_TRUE(q("nothing").empty());
  PageRequest bad;
  bad.after = "zz";
  expectCode(db().listDashboards(t.id, "", bad).error(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace sw::storage
