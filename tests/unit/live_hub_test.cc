// LiveHub: client message parsing, subscriptions by ids and by device filter (incl. devices
// created or changed afterwards), tenant isolation, keys, snapshots, unsubscribe, the bounded
// per-socket queue (coalescing, then close 1008), alarms, token checks, tenant/user events.
// Real stores (SQLite, RocksDB) in a temporary directory; no sockets.
#include "api/live_hub.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <string>
#include <vector>

#include "core/clock.h"
#include "storage/storage_factory.h"
#include "test_util.h"

namespace sw::api {
namespace {

namespace json = boost::json;
using sw::testing::TempDir;

constexpr std::int64_t kT0 = 1'700'000'000'000;

json::object parse(const std::string& text) {
  json::value v = json::parse(text);
  EXPECT_TRUE(v.is_object()) << text;
  return v.is_object() ? v.as_object() : json::object();
}

std::string str(const json::value& v) {
  return v.is_string() ? std::string(v.as_string()) : json::serialize(v);
}

std::string type(const json::object& o) {
  auto* t = o.if_contains("type");
  return t && t->is_string() ? std::string(t->as_string()) : std::string();
}

// A socket without a socket: counts wake-ups and drains what its writer would write.
struct FakeSocket {
  std::shared_ptr<LiveConnection> conn;

  std::vector<json::object> drain() {
    std::vector<json::object> out;
    std::string m;
    while (conn->next(m)) {
      out.push_back(parse(m));
      conn->sent(m.size());
    }
    return out;
  }
  std::vector<json::object> drainType(const std::string& t) {
    std::vector<json::object> out;
    for (auto& o : drain())
      if (type(o) == t) out.push_back(std::move(o));
    return out;
  }
};

class LiveHubTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_.data_dir = dir_.path().string();
    auto m = storage::openMetadataStore("sqlite", config_);
    ASSERT_TRUE(m) << m.error().message;
    metadata_ = std::move(*m);
    auto s = storage::openTimeSeriesStore("embedded", config_, nullptr);
    ASSERT_TRUE(s) << s.error().message;
    store_ = std::move(*s);
    makeHub(LiveLimits{});

    tenant_a_ = tenant("a");
    tenant_b_ = tenant("b");
    d1_ = device(tenant_a_, "d1", "sensor", {{"room", "kitchen"}});
    d2_ = device(tenant_a_, "d2", "meter", {{"room", "hall"}});
    d3_ = device(tenant_b_, "d3", "sensor", {{"room", "kitchen"}});
    admin_a_ = user(tenant_a_, "admin-a", "tenant_admin");
    viewer_a_ = user(tenant_a_, "viewer-a", "viewer");
    admin_b_ = user(tenant_b_, "admin-b", "tenant_admin");
    sysadmin_ = user(TenantId(), "root", "sysadmin");
  }

  void makeHub(const LiveLimits& limits) {
    hub_.reset();
    hub_ = std::make_unique<LiveHub>(limits, *metadata_, *store_, jwt_, metrics_);
  }

  TenantId tenant(const std::string& name) {
    storage::Tenant t;
    t.name = name;
    auto r = metadata_->createTenant(t);
    EXPECT_TRUE(r);
    return r ? r->id : TenantId();
  }
  DeviceId device(const TenantId& t, const std::string& name, const std::string& type,
                  std::map<std::string, std::string> labels) {
    storage::Device d;
    d.tenant_id = t;
    d.name = name;
    d.type = type;
    d.labels = std::move(labels);
    auto r = metadata_->createDevice(d, "hash-" + name + "-" + t.str());
    EXPECT_TRUE(r) << (r ? "" : r.error().message);
    return r ? r->id : DeviceId();
  }
  UserId user(const TenantId& t, const std::string& name, const std::string& role) {
    storage::User u;
    u.tenant_id = t;
    u.username = name;
    u.role = role;
    u.password_hash = "x";
    auto r = metadata_->createUser(u);
    EXPECT_TRUE(r);
    return r ? r->id : UserId();
  }
  std::string token(const UserId& u, const TenantId& t, security::Role role) {
    auto tok = jwt_.issue(u, t, role);
    EXPECT_TRUE(tok);
    return tok.value_or("");
  }

  // A connected, authenticated socket of the user.
  FakeSocket socket(const UserId& u, const TenantId& t, security::Role role) {
    FakeSocket s;
    s.conn = hub_->newConnection([] {});
    auto id = hub_->authenticate(token(u, t, role));
    EXPECT_TRUE(id) << (id ? "" : id.error().message);
    if (id) hub_->attach(s.conn, *id);
    return s;
  }
  FakeSocket adminA() { return socket(admin_a_, tenant_a_, security::Role::kTenantAdmin); }

  SubscribeRequest byIds(const std::string& sub, std::vector<DeviceId> ids, std::vector<std::string> keys = {}) {
    SubscribeRequest r;
    r.sub = sub;
    r.device_ids = std::move(ids);
    std::sort(keys.begin(), keys.end());
    r.keys = std::move(keys);
    return r;
  }
  SubscribeRequest byFilter(const std::string& sub, DeviceFilterSpec f) {
    SubscribeRequest r;
    r.sub = sub;
    r.filter = std::move(f);
    return r;
  }

  void write(const TenantId& t, const DeviceId& d, std::vector<storage::Point> points) {
    ASSERT_TRUE(store_->write(t, d, points));
    hub_->telemetryStored(ingest::DeviceRef{t, d, "", 0, false}, points);
  }

  TempDir dir_;
  Config config_;
  Metrics metrics_;
  security::JwtIssuer jwt_{"unit-test-key-0123456789", 900};
  std::unique_ptr<storage::MetadataStore> metadata_;
  std::unique_ptr<storage::TimeSeriesStore> store_;
  std::unique_ptr<LiveHub> hub_;
  TenantId tenant_a_, tenant_b_;
  DeviceId d1_, d2_, d3_;
  UserId admin_a_, viewer_a_, admin_b_, sysadmin_;
};

// ---------------------------------------------------------------------------------------------
// parsing
// ---------------------------------------------------------------------------------------------

TEST(LiveProtocolTest, ParsesEveryMessageType) {
  auto auth = parseClientMessage(R"({"type":"auth","token":"abc"})");
  ASSERT_TRUE(auth);
  EXPECT_EQ(auth->type, ClientMessage::Type::kAuth);
  EXPECT_EQ(auth->token, "abc");
  auto ping = parseClientMessage(R"({"type":"ping"})");
  ASSERT_TRUE(ping);
  EXPECT_EQ(ping->type, ClientMessage::Type::kPing);
  auto unsub = parseClientMessage(R"({"type":"unsubscribe","sub":"s1"})");
  ASSERT_TRUE(unsub);
  EXPECT_EQ(unsub->sub, "s1");
  auto sub = parseClientMessage(
      R"({"type":"subscribe","sub":"s1","stream":"telemetry","device_ids":["b","a","b"],"keys":["t","h","t"]})");
  ASSERT_TRUE(sub);
  EXPECT_EQ(sub->subscribe.device_ids, (std::vector<DeviceId>{DeviceId("a"), DeviceId("b")}));
  EXPECT_EQ(sub->subscribe.keys, (std::vector<std::string>{"h", "t"}));
  auto filter = parseClientMessage(
      R"({"type":"subscribe","sub":"s2","stream":"telemetry","filter":{"type":"sensor","label":"room:kitchen"}})");
  ASSERT_TRUE(filter);
  ASSERT_TRUE(filter->subscribe.filter);
  EXPECT_EQ(filter->subscribe.filter->type, "sensor");
  EXPECT_EQ(filter->subscribe.filter->label_key, "room");
  EXPECT_EQ(filter->subscribe.filter->label_value, "kitchen");
  auto label_only =
      parseClientMessage(R"({"type":"subscribe","sub":"s3","stream":"telemetry","filter":{"label":"k"}})");
  ASSERT_TRUE(label_only);
  EXPECT_FALSE(label_only->subscribe.filter->label_value);
  auto all = parseClientMessage(R"({"type":"subscribe","sub":"s4","stream":"telemetry","filter":{}})");
  ASSERT_TRUE(all);
  auto alarms = parseClientMessage(R"({"type":"subscribe","sub":"al","stream":"alarms"})");
  ASSERT_TRUE(alarms);
  EXPECT_EQ(alarms->subscribe.stream, SubscribeRequest::Stream::kAlarms);
}

TEST(LiveProtocolTest, RejectsMalformedMessages) {
  const char* bad[] = {
      "not json",
      "[1,2]",
      "{}",
      R"({"type":42})",
      R"({"type":"nope"})",
      R"({"type":"auth"})",
      R"({"type":"auth","token":""})",
      R"({"type":"unsubscribe"})",
      R"({"type":"subscribe","stream":"telemetry","device_ids":["a"]})",
      R"({"type":"subscribe","sub":"","stream":"telemetry","device_ids":["a"]})",
      R"({"type":"subscribe","sub":"s","device_ids":["a"]})",
      R"({"type":"subscribe","sub":"s","stream":"video","device_ids":["a"]})",
      R"({"type":"subscribe","sub":"s","stream":"telemetry"})",
      R"({"type":"subscribe","sub":"s","stream":"telemetry","device_ids":["a"],"filter":{}})",
      R"({"type":"subscribe","sub":"s","stream":"telemetry","device_ids":[]})",
      R"({"type":"subscribe","sub":"s","stream":"telemetry","device_ids":[1]})",
      R"({"type":"subscribe","sub":"s","stream":"telemetry","device_ids":"a"})",
      R"({"type":"subscribe","sub":"s","stream":"telemetry","filter":{"lable":"x"}})",
      R"({"type":"subscribe","sub":"s","stream":"telemetry","filter":{"label":":v"}})",
      R"({"type":"subscribe","sub":"s","stream":"telemetry","filter":"sensor"})",
      R"({"type":"subscribe","sub":"s","stream":"telemetry","device_ids":["a"],"keys":"t"})",
      R"({"type":"subscribe","sub":"s","stream":"telemetry","device_ids":["a"],"keys":[""]})",
      R"({"type":"subscribe","sub":"s","stream":"alarms","device_ids":["a"]})",
  };
  for (const char* text : bad) {
    auto m = parseClientMessage(text);
    EXPECT_FALSE(m) << text;
  }
  std::string long_sub =
      R"({"type":"subscribe","sub":")" + std::string(65, 'x') + R"(","stream":"telemetry","device_ids":["a"]})";
  EXPECT_FALSE(parseClientMessage(long_sub));
  std::string ids;
  for (int i = 0; i < 1001; ++i) ids += (i ? ",\"" : "\"") + std::to_string(i) + "\"";
  auto too_many =
      parseClientMessage(R"({"type":"subscribe","sub":"s","stream":"telemetry","device_ids":[)" + ids + "]}");
  ASSERT_FALSE(too_many);
  EXPECT_EQ(too_many.error().sub, "s");
  EXPECT_EQ(too_many.error().code, Code::kInvalidArgument);
  std::string deep(1000, '[');
  EXPECT_FALSE(parseClientMessage(deep));
}

// ---------------------------------------------------------------------------------------------
// subscriptions
// ---------------------------------------------------------------------------------------------

TEST_F(LiveHubTest, SubscribedSnapshotAndTelemetryInOrder) {
  ASSERT_TRUE(store_->write(tenant_a_, d1_, std::vector<storage::Point>{{kT0, "temp", 20.5}, {kT0, "on", true}}));
  auto s = adminA();
  hub_->subscribe(s.conn, byIds("s1", {d1_, d2_}));
  auto msgs = s.drain();
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_EQ(type(msgs[0]), "subscribed");
  EXPECT_EQ(msgs[0]["sub"], "s1");
  EXPECT_EQ(type(msgs[1]), "snapshot");
  auto& devices = msgs[1]["devices"].as_object();
  EXPECT_EQ(devices.at(d1_.str()).at("temp").at("value"), 20.5);
  EXPECT_EQ(devices.at(d1_.str()).at("temp").at("ts"), kT0);
  EXPECT_EQ(devices.at(d1_.str()).at("on").at("value"), true);
  EXPECT_TRUE(devices.at(d2_.str()).as_object().empty());

  write(tenant_a_, d1_, {{kT0 + 1, "temp", 21.0}, {kT0 + 2, "temp", 22.0}, {kT0 + 1, "msg", std::string("hi")}});
  auto live = s.drain();
  ASSERT_EQ(live.size(), 1u);
  EXPECT_EQ(type(live[0]), "telemetry");
  EXPECT_EQ(live[0]["sub"], "s1");
  EXPECT_EQ(str(live[0]["device_id"]), d1_.str());
  auto& points = live[0]["points"].as_object();
  EXPECT_EQ(points.at("temp"), json::parse("[[1700000000001,21],[1700000000002,22]]"));
  EXPECT_EQ(points.at("msg"), json::parse(R"([[1700000000001,"hi"]])"));
  EXPECT_FALSE(live[0].contains("coalesced"));
}

TEST_F(LiveHubTest, KeysRestrictSnapshotAndLivePoints) {
  ASSERT_TRUE(store_->write(tenant_a_, d1_, std::vector<storage::Point>{{kT0, "temp", 20.5}, {kT0, "hum", 40.0}}));
  auto s = adminA();
  hub_->subscribe(s.conn, byIds("s1", {d1_}, {"temp"}));
  auto msgs = s.drain();
  ASSERT_EQ(msgs.size(), 2u);
  auto& snap = msgs[1]["devices"].as_object().at(d1_.str()).as_object();
  EXPECT_TRUE(snap.contains("temp"));
  EXPECT_FALSE(snap.contains("hum"));
  write(tenant_a_, d1_, {{kT0 + 1, "hum", 41.0}});
  EXPECT_TRUE(s.drain().empty()) << "no subscribed key in the write: no message";
  write(tenant_a_, d1_, {{kT0 + 2, "hum", 42.0}, {kT0 + 2, "temp", 23.0}});
  auto live = s.drain();
  ASSERT_EQ(live.size(), 1u);
  EXPECT_EQ(live[0]["points"].as_object().size(), 1u);
  EXPECT_TRUE(live[0]["points"].as_object().contains("temp"));
}

TEST_F(LiveHubTest, OtherTenantsDeviceIsNotFoundAndNeverDelivered) {
  auto s = adminA();
  hub_->subscribe(s.conn, byIds("s1", {d1_, d3_}));
  auto msgs = s.drain();
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(type(msgs[0]), "error");
  EXPECT_EQ(msgs[0]["code"], "not_found");
  EXPECT_EQ(msgs[0]["sub"], "s1");
  EXPECT_EQ(s.conn->subscriptionCount(), 0u);
  hub_->subscribe(s.conn, byIds("s2", {DeviceId("no-such-device")}));
  EXPECT_EQ(s.drain().at(0)["code"], "not_found");
  // Tenant B's data never reaches tenant A's socket, whatever is subscribed there.
  hub_->subscribe(s.conn, byFilter("all", DeviceFilterSpec{}));
  s.drain();
  write(tenant_b_, d3_, {{kT0, "temp", 1.0}});
  EXPECT_TRUE(s.drain().empty());
  write(tenant_a_, d1_, {{kT0, "temp", 1.0}});
  EXPECT_EQ(s.drainType("telemetry").size(), 1u);
}

TEST_F(LiveHubTest, ViewerMaySubscribeSysadminMayNot) {
  auto v = socket(viewer_a_, tenant_a_, security::Role::kViewer);
  hub_->subscribe(v.conn, byIds("s1", {d1_}));
  EXPECT_EQ(type(v.drain().at(0)), "subscribed");
  auto root = socket(sysadmin_, TenantId(), security::Role::kSysadmin);
  hub_->subscribe(root.conn, byIds("s1", {d1_}));
  auto msgs = root.drain();
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(msgs[0]["code"], "permission_denied");
  SubscribeRequest alarms;
  alarms.sub = "al";
  alarms.stream = SubscribeRequest::Stream::kAlarms;
  hub_->subscribe(root.conn, alarms);
  EXPECT_EQ(root.drain().at(0)["code"], "permission_denied");
}

TEST_F(LiveHubTest, UnauthenticatedConnectionCannotSubscribe) {
  FakeSocket s;
  s.conn = hub_->newConnection([] {});
  hub_->subscribe(s.conn, byIds("s1", {d1_}));
  EXPECT_EQ(s.drain().at(0)["code"], "unauthenticated");
}

TEST_F(LiveHubTest, DuplicateSubIdAndSubscriptionBound) {
  LiveLimits limits;
  limits.max_subscriptions = 2;
  makeHub(limits);
  auto s = adminA();
  hub_->subscribe(s.conn, byIds("s1", {d1_}));
  hub_->subscribe(s.conn, byIds("s1", {d2_}));
  auto msgs = s.drain();
  ASSERT_EQ(msgs.size(), 3u);
  EXPECT_EQ(msgs[2]["code"], "invalid_argument");
  hub_->subscribe(s.conn, byIds("s2", {d2_}));
  hub_->subscribe(s.conn, byIds("s3", {d2_}));
  msgs = s.drain();
  ASSERT_EQ(msgs.size(), 3u);
  EXPECT_EQ(msgs[2]["code"], "resource_exhausted");
  EXPECT_EQ(s.conn->subscriptionCount(), 2u);
}

TEST_F(LiveHubTest, UnsubscribeAndDetachStopData) {
  auto s = adminA();
  hub_->subscribe(s.conn, byIds("s1", {d1_}));
  hub_->subscribe(s.conn, byFilter("f", DeviceFilterSpec{"sensor", {}, {}}));
  s.drain();
  write(tenant_a_, d1_, {{kT0, "temp", 1.0}});
  EXPECT_EQ(s.drainType("telemetry").size(), 2u);
  EXPECT_TRUE(hub_->unsubscribe(*s.conn, "s1"));
  EXPECT_FALSE(hub_->unsubscribe(*s.conn, "s1"));
  write(tenant_a_, d1_, {{kT0 + 1, "temp", 2.0}});
  auto left = s.drainType("telemetry");
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0]["sub"], "f");
  hub_->detach(*s.conn);
  write(tenant_a_, d1_, {{kT0 + 2, "temp", 3.0}});
  EXPECT_TRUE(s.drain().empty());
  EXPECT_EQ(hub_->attachedConnections(), 0u);
}

TEST_F(LiveHubTest, FilterByTypeAndLabel) {
  ASSERT_TRUE(store_->write(tenant_a_, d1_, std::vector<storage::Point>{{kT0, "temp", 20.5}}));
  auto s = adminA();
  hub_->subscribe(s.conn, byFilter("sensors", DeviceFilterSpec{"sensor", {}, {}}));
  hub_->subscribe(s.conn, byFilter("hall", DeviceFilterSpec{{}, "room", std::string("hall")}));
  hub_->subscribe(s.conn, byFilter("room", DeviceFilterSpec{{}, "room", {}}));
  auto msgs = s.drainType("snapshot");
  ASSERT_EQ(msgs.size(), 3u);
  EXPECT_EQ(msgs[0]["devices"].as_object().size(), 1u);
  EXPECT_TRUE(msgs[0]["devices"].as_object().contains(d1_.str()));
  EXPECT_TRUE(msgs[1]["devices"].as_object().contains(d2_.str()));
  EXPECT_EQ(msgs[2]["devices"].as_object().size(), 2u);

  write(tenant_a_, d1_, {{kT0 + 1, "temp", 1.0}});
  write(tenant_a_, d2_, {{kT0 + 1, "kwh", 7.0}});
  std::multiset<std::string> got;
  for (auto& m : s.drainType("telemetry"))
    got.insert(std::string(m["sub"].as_string()) + "/" + std::string(m["device_id"].as_string()));
  EXPECT_EQ(got, (std::multiset<std::string>{"sensors/" + d1_.str(), "room/" + d1_.str(), "hall/" + d2_.str(),
                                             "room/" + d2_.str()}));
}

TEST_F(LiveHubTest, FilterCoversDevicesCreatedAfterSubscribing) {
  auto s = adminA();
  hub_->subscribe(s.conn, byFilter("sensors", DeviceFilterSpec{"sensor", {}, {}}));
  s.drain();
  // Created behind the hub's back (as an MQTT gateway does): found by a lookup on first data.
  DeviceId later = device(tenant_a_, "later", "sensor", {});
  write(tenant_a_, later, {{kT0, "temp", 5.0}});
  auto msgs = s.drainType("telemetry");
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(str(msgs[0]["device_id"]), later.str());
  // Created through the API (the handler tells the hub).
  DeviceId api_made = device(tenant_a_, "api-made", "sensor", {});
  hub_->deviceChanged(tenant_a_, api_made);
  DeviceId other_type = device(tenant_a_, "other", "meter", {});
  hub_->deviceChanged(tenant_a_, other_type);
  write(tenant_a_, api_made, {{kT0, "temp", 6.0}});
  write(tenant_a_, other_type, {{kT0, "temp", 7.0}});
  msgs = s.drainType("telemetry");
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(str(msgs[0]["device_id"]), api_made.str());
}

TEST_F(LiveHubTest, DeviceChangesUpdateFilterMatches) {
  auto s = adminA();
  hub_->subscribe(s.conn, byFilter("meters", DeviceFilterSpec{"meter", {}, {}}));
  s.drain();
  write(tenant_a_, d1_, {{kT0, "temp", 1.0}});
  EXPECT_TRUE(s.drain().empty());
  storage::DevicePatch patch;
  patch.type = "meter";
  ASSERT_TRUE(metadata_->updateDevice(tenant_a_, d1_, patch));
  hub_->deviceChanged(tenant_a_, d1_);
  write(tenant_a_, d1_, {{kT0 + 1, "temp", 2.0}});
  EXPECT_EQ(s.drainType("telemetry").size(), 1u);
  patch.type = "sensor";
  ASSERT_TRUE(metadata_->updateDevice(tenant_a_, d1_, patch));
  hub_->deviceChanged(tenant_a_, d1_);
  write(tenant_a_, d1_, {{kT0 + 2, "temp", 3.0}});
  EXPECT_TRUE(s.drain().empty());
}

TEST_F(LiveHubTest, DeletedDeviceStopsFlowing) {
  auto s = adminA();
  hub_->subscribe(s.conn, byIds("ids", {d1_}));
  hub_->subscribe(s.conn, byFilter("all", DeviceFilterSpec{}));
  s.drain();
  ASSERT_TRUE(metadata_->deleteDevice(tenant_a_, d1_));
  hub_->deviceDeleted(tenant_a_, d1_);
  // A write that was in flight when the device was deleted.
  hub_->telemetryStored(ingest::DeviceRef{tenant_a_, d1_, "", 0, false},
                        std::vector<storage::Point>{{kT0, "temp", 1.0}});
  EXPECT_TRUE(s.drain().empty());
  EXPECT_TRUE(hub_->unsubscribe(*s.conn, "ids"));
}

TEST_F(LiveHubTest, NoSubscriberFastPathAndForeignTenant) {
  // Nothing subscribed anywhere: the observer returns at once.
  hub_->telemetryStored(ingest::DeviceRef{tenant_a_, d1_, "", 0, false},
                        std::vector<storage::Point>{{kT0, "temp", 1.0}});
  auto s = adminA();
  hub_->subscribe(s.conn, byIds("s1", {d1_}));
  s.drain();
  // Subscriptions exist, but not for tenant B.
  hub_->telemetryStored(ingest::DeviceRef{tenant_b_, d3_, "", 0, false},
                        std::vector<storage::Point>{{kT0, "temp", 1.0}});
  EXPECT_TRUE(s.drain().empty());
}

// ---------------------------------------------------------------------------------------------
// bounded queue
// ---------------------------------------------------------------------------------------------

TEST_F(LiveHubTest, SlowReaderIsCoalescedToLatestValuesThenResumes) {
  LiveLimits limits;
  limits.max_queue_bytes = 2048;
  limits.max_coalesced_bytes = 64 * 1024;
  makeHub(limits);
  auto s = adminA();
  hub_->subscribe(s.conn, byIds("s1", {d1_, d2_}));
  s.drain();
  for (int i = 0; i < 500; ++i) {
    write(tenant_a_, d1_, {{kT0 + i, "temp", static_cast<double>(i)}, {kT0 + i, "hum", static_cast<double>(-i)}});
    write(tenant_a_, d2_, {{kT0 + i, "kwh", static_cast<double>(i * 2)}});
    EXPECT_LE(s.conn->queuedBytes(), limits.max_queue_bytes);
  }
  EXPECT_TRUE(s.conn->coalescing());
  EXPECT_FALSE(s.conn->closeRequested());
  auto msgs = s.drain();
  ASSERT_FALSE(msgs.empty());
  std::vector<json::object> coalesced;
  for (auto& m : msgs) {
    EXPECT_EQ(type(m), "telemetry");
    if (m.contains("coalesced")) coalesced.push_back(m);
  }
  ASSERT_EQ(coalesced.size(), 2u) << "one per (sub, device)";
  for (auto& m : coalesced) {
    EXPECT_EQ(m["coalesced"], true);
    auto& pts = m["points"].as_object();
    if (str(m["device_id"]) == d1_.str()) {
      EXPECT_EQ(pts.at("temp"), json::parse("[[1700000000499,499]]"));
      EXPECT_EQ(pts.at("hum"), json::parse("[[1700000000499,-499]]"));
    } else {
      EXPECT_EQ(pts.at("kwh"), json::parse("[[1700000000499,998]]"));
    }
  }
  // The coalesced messages come last: they hold the latest values.
  EXPECT_TRUE(msgs.back().contains("coalesced"));
  EXPECT_FALSE(s.conn->coalescing());
  auto* dropped = &metrics_.counter("sw_ws_dropped_total", "", R"(reason="coalesced")");
  EXPECT_GT(dropped->value(), 0u);
  // Writable again: individual messages again.
  write(tenant_a_, d1_, {{kT0 + 1000, "temp", 1.0}});
  auto after = s.drain();
  ASSERT_EQ(after.size(), 1u);
  EXPECT_FALSE(after[0].contains("coalesced"));
}

TEST_F(LiveHubTest, CoalescedStateOverItsBoundCloses1008) {
  LiveLimits limits;
  limits.max_queue_bytes = 1024;
  limits.max_coalesced_bytes = 4096;
  makeHub(limits);
  auto s = adminA();
  hub_->subscribe(s.conn, byIds("s1", {d1_}));
  s.drain();
  for (int i = 0; i < 200 && !s.conn->closeRequested(); ++i) {
    write(tenant_a_, d1_, {{kT0 + i, "key" + std::to_string(i), static_cast<double>(i)}});
    EXPECT_LE(s.conn->coalescedBytes(), limits.max_coalesced_bytes);
  }
  auto close = s.conn->closeRequested();
  ASSERT_TRUE(close);
  EXPECT_EQ(close->code, kWsClosePolicy);
  EXPECT_EQ(s.conn->queuedBytes(), 0u) << "memory released at once";
  EXPECT_TRUE(s.drain().empty());
  EXPECT_EQ(metrics_.counter("sw_ws_dropped_total", "", R"(reason="closed_slow")").value(), 1u);
  // Nothing more is queued for it.
  write(tenant_a_, d1_, {{kT0 + 999, "temp", 1.0}});
  EXPECT_EQ(s.conn->queuedBytes(), 0u);
}

TEST_F(LiveHubTest, CoalescingTooLongCloses) {
  LiveLimits limits;
  limits.max_queue_bytes = 1024;
  limits.slow_close = std::chrono::seconds(30);
  makeHub(limits);
  auto s = adminA();
  hub_->subscribe(s.conn, byIds("s1", {d1_}));
  s.drain();
  for (int i = 0; i < 100; ++i) write(tenant_a_, d1_, {{kT0 + i, "temp", static_cast<double>(i)}});
  ASSERT_TRUE(s.conn->coalescing());
  s.conn->checkSlow(std::chrono::steady_clock::now());
  EXPECT_FALSE(s.conn->closeRequested());
  s.conn->checkSlow(std::chrono::steady_clock::now() + std::chrono::seconds(31));
  ASSERT_TRUE(s.conn->closeRequested());
  EXPECT_EQ(s.conn->closeRequested()->code, kWsClosePolicy);
}

TEST_F(LiveHubTest, UnreadRepliesBeyondTwiceTheBoundClose) {
  LiveLimits limits;
  limits.max_queue_bytes = 1024;
  makeHub(limits);
  auto s = adminA();
  for (int i = 0; i < 200 && !s.conn->closeRequested(); ++i) s.conn->send(R"({"type":"pong"})");
  ASSERT_TRUE(s.conn->closeRequested());
  EXPECT_LE(s.conn->queuedBytes(), 2 * limits.max_queue_bytes);
}

TEST_F(LiveHubTest, WakesTheWriterOnlyWhenIdle) {
  int wakes = 0;
  FakeSocket s;
  s.conn = hub_->newConnection([&wakes] { ++wakes; });
  hub_->attach(s.conn, *hub_->authenticate(token(admin_a_, tenant_a_, security::Role::kTenantAdmin)));
  s.conn->send("{\"type\":\"pong\"}");
  s.conn->send("{\"type\":\"pong\"}");
  EXPECT_EQ(wakes, 1);
  EXPECT_EQ(s.drain().size(), 2u);  // the writer goes idle again
  s.conn->send("{\"type\":\"pong\"}");
  EXPECT_EQ(wakes, 2);
  s.conn->close(kWsCloseGoingAway, "bye");
  EXPECT_EQ(wakes, 2) << "the writer was busy: it sees the close when it asks for the next message";
  EXPECT_TRUE(s.drain().empty());
  EXPECT_EQ(s.conn->closeRequested()->code, kWsCloseGoingAway);
}

TEST_F(LiveHubTest, CloseAfterQueueWritesTheReasonFirst) {
  auto s = adminA();
  s.conn->send(errorMessage({}, Code::kUnauthenticated, "the token expired"));
  s.conn->close(kWsCloseUnauthenticated, "the token expired", true);
  s.conn->send(R"({"type":"pong"})");  // after the close: dropped
  auto msgs = s.drain();
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(msgs[0]["code"], "unauthenticated");
  EXPECT_EQ(s.conn->closeRequested()->code, kWsCloseUnauthenticated);
}

// ---------------------------------------------------------------------------------------------
// alarms, auth, tenant and user events
// ---------------------------------------------------------------------------------------------

TEST_F(LiveHubTest, PublishAlarmReachesTheTenantsAlarmSubscribersOnly) {
  SubscribeRequest alarms;
  alarms.sub = "al";
  alarms.stream = SubscribeRequest::Stream::kAlarms;
  auto a = adminA();
  auto v = socket(viewer_a_, tenant_a_, security::Role::kViewer);
  auto b = socket(admin_b_, tenant_b_, security::Role::kTenantAdmin);
  auto a_telemetry_only = adminA();
  hub_->subscribe(a.conn, alarms);
  hub_->subscribe(v.conn, alarms);
  hub_->subscribe(b.conn, alarms);
  hub_->subscribe(a_telemetry_only.conn, byIds("s1", {d1_}));
  EXPECT_EQ(type(a.drain().at(0)), "subscribed");
  v.drain();
  b.drain();
  a_telemetry_only.drain();
  hub_->publishAlarm(tenant_a_, R"({"id":"x1","severity":"critical","device_id":"d"})");
  for (auto* sock : {&a, &v}) {
    auto msgs = sock->drain();
    ASSERT_EQ(msgs.size(), 1u);
    EXPECT_EQ(type(msgs[0]), "alarm");
    EXPECT_EQ(msgs[0]["sub"], "al");
    EXPECT_EQ(msgs[0]["alarm"].at("severity"), "critical");
  }
  EXPECT_TRUE(b.drain().empty());
  EXPECT_TRUE(a_telemetry_only.drain().empty());
  EXPECT_TRUE(hub_->unsubscribe(*a.conn, "al"));
  hub_->publishAlarm(tenant_a_, R"({"id":"x2"})");
  EXPECT_TRUE(a.drain().empty());
  EXPECT_EQ(v.drain().size(), 1u);
}

TEST_F(LiveHubTest, AuthenticateAndRecheck) {
  auto id = hub_->authenticate(token(viewer_a_, tenant_a_, security::Role::kViewer));
  ASSERT_TRUE(id);
  EXPECT_EQ(id->username, "viewer-a");
  EXPECT_EQ(id->principal.role, security::Role::kViewer);
  EXPECT_EQ(id->principal.tenant_id, tenant_a_);
  EXPECT_GT(id->expires_at_ms, nowMs());
  EXPECT_LE(id->expires_at_ms, nowMs() + 901'000);
  auto ok = parse(authOkMessage(*id));
  EXPECT_EQ(ok["user"].at("username"), "viewer-a");
  EXPECT_EQ(ok["user"].at("role"), "viewer");
  EXPECT_EQ(ok["expires_at"], id->expires_at_ms);
  auto root = hub_->authenticate(token(sysadmin_, TenantId(), security::Role::kSysadmin));
  ASSERT_TRUE(root);
  EXPECT_TRUE(parse(authOkMessage(*root))["user"].at("tenant_id").is_null());

  EXPECT_FALSE(hub_->authenticate("not-a-jwt"));
  security::JwtIssuer other("another-key-0123456789", 900);
  auto forged = other.issue(viewer_a_, tenant_a_, security::Role::kViewer);
  ASSERT_TRUE(forged);
  EXPECT_EQ(hub_->authenticate(*forged).error().code, Code::kUnauthenticated);

  EXPECT_TRUE(hub_->recheck(*id));
  storage::UserPatch patch;
  patch.role = "tenant_admin";
  ASSERT_TRUE(metadata_->updateUser(viewer_a_, patch));
  EXPECT_FALSE(hub_->recheck(*id));
  ASSERT_TRUE(metadata_->deleteUser(viewer_a_));
  EXPECT_FALSE(hub_->recheck(*id));
  EXPECT_FALSE(hub_->authenticate(token(viewer_a_, tenant_a_, security::Role::kViewer)));
}

TEST_F(LiveHubTest, UserChangedClosesItsSockets4001) {
  auto v = socket(viewer_a_, tenant_a_, security::Role::kViewer);
  auto a = adminA();
  hub_->userChanged(viewer_a_);  // nothing changed
  EXPECT_FALSE(v.conn->closeRequested());
  storage::UserPatch patch;
  patch.role = "tenant_admin";
  ASSERT_TRUE(metadata_->updateUser(viewer_a_, patch));
  hub_->userChanged(viewer_a_);
  ASSERT_TRUE(v.conn->closeRequested());
  EXPECT_EQ(v.conn->closeRequested()->code, kWsCloseUnauthenticated);
  EXPECT_FALSE(a.conn->closeRequested());
}

TEST_F(LiveHubTest, TenantDeletedClosesItsSocketsAndCloseAllClosesEveryone) {
  auto a = adminA();
  auto b = socket(admin_b_, tenant_b_, security::Role::kTenantAdmin);
  FakeSocket anonymous;
  anonymous.conn = hub_->newConnection([] {});
  hub_->subscribe(a.conn, byIds("s1", {d1_}));
  hub_->tenantDeleted(tenant_a_);
  ASSERT_TRUE(a.conn->closeRequested());
  EXPECT_EQ(a.conn->closeRequested()->code, kWsCloseUnauthenticated);
  EXPECT_FALSE(b.conn->closeRequested());
  write(tenant_a_, d1_, {{kT0, "temp", 1.0}});
  // What was queued before goes out, then the reason; no telemetry after the close.
  auto msgs = a.drain();
  ASSERT_FALSE(msgs.empty());
  EXPECT_EQ(msgs.back()["code"], "unauthenticated");
  for (auto& m : msgs) EXPECT_NE(type(m), "telemetry");
  hub_->closeAll(kWsCloseGoingAway, "server shutting down");
  EXPECT_EQ(b.conn->closeRequested()->code, kWsCloseGoingAway);
  EXPECT_EQ(anonymous.conn->closeRequested()->code, kWsCloseGoingAway);
}

TEST_F(LiveHubTest, SocketSlotsAreBounded) {
  EXPECT_TRUE(hub_->reserveSocket(2));
  EXPECT_TRUE(hub_->reserveSocket(2));
  EXPECT_FALSE(hub_->reserveSocket(2));
  EXPECT_EQ(hub_->sockets(), 2u);
  hub_->releaseSocket();
  EXPECT_TRUE(hub_->reserveSocket(2));
}

TEST_F(LiveHubTest, SnapshotOverTheQueueBoundIsRefused) {
  LiveLimits limits;
  limits.max_queue_bytes = 1024;
  makeHub(limits);
  std::vector<storage::Point> many;
  for (int i = 0; i < 100; ++i) many.push_back({kT0, "key-" + std::to_string(i), static_cast<double>(i)});
  ASSERT_TRUE(store_->write(tenant_a_, d1_, many));
  auto s = adminA();
  hub_->subscribe(s.conn, byIds("s1", {d1_}));
  auto msgs = s.drain();
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(msgs[0]["code"], "resource_exhausted");
  EXPECT_EQ(s.conn->subscriptionCount(), 0u);
  hub_->subscribe(s.conn, byIds("s1", {d1_}, {"key-1"}));
  EXPECT_EQ(type(s.drain().at(1)), "snapshot");
}

TEST_F(LiveHubTest, SnapshotsOfAClientThatDoesNotReadAreBounded) {
  // Subscribing and unsubscribing again and again without reading must not queue snapshots
  // (or "subscribed" replies) without limit: past twice the bound the socket closes 1008.
  LiveLimits limits;
  limits.max_queue_bytes = 1024;
  makeHub(limits);
  std::vector<storage::Point> some;
  for (int i = 0; i < 10; ++i) some.push_back({kT0, "key-" + std::to_string(i), static_cast<double>(i)});
  ASSERT_TRUE(store_->write(tenant_a_, d1_, some));
  auto s = adminA();
  for (int i = 0; i < 500 && !s.conn->closeRequested(); ++i) {
    hub_->subscribe(s.conn, byIds("s1", {d1_}));
    hub_->unsubscribe(*s.conn, "s1");
    EXPECT_LE(s.conn->queuedBytes(), 2 * limits.max_queue_bytes);
  }
  ASSERT_TRUE(s.conn->closeRequested());
  EXPECT_EQ(s.conn->closeRequested()->code, kWsClosePolicy);

  auto t = adminA();
  SubscribeRequest alarms;
  alarms.sub = "al";
  alarms.stream = SubscribeRequest::Stream::kAlarms;
  for (int i = 0; i < 500 && !t.conn->closeRequested(); ++i) {
    hub_->subscribe(t.conn, alarms);
    hub_->unsubscribe(*t.conn, "al");
    EXPECT_LE(t.conn->queuedBytes(), 2 * limits.max_queue_bytes);
  }
  ASSERT_TRUE(t.conn->closeRequested());
}

TEST_F(LiveHubTest, ConnectionsCreatedAfterCloseAllAreClosedToo) {
  auto before = adminA();
  hub_->closeAll(kWsCloseGoingAway, "server shutting down");
  ASSERT_TRUE(before.conn->closeRequested());
  auto late = hub_->newConnection([] {});
  auto close = late->closeRequested();
  ASSERT_TRUE(close);
  EXPECT_EQ(close->code, kWsCloseGoingAway);
}

}  // namespace
}  // namespace sw::api
