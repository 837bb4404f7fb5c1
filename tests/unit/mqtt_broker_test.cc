// Topic rules, the subscription trie, sessions and the broker's routing (no sockets).
#include <gtest/gtest.h>

#include "core/config.h"
#include "core/metrics.h"
#include "ingest/transports/mqtt/broker.h"
#include "ingest/transports/mqtt/topic.h"
#include "ingest/transports/mqtt/topic_tree.h"

namespace sw::mqtt {
namespace {

TEST(MqttTopic, NamesAndFilters) {
  EXPECT_TRUE(validTopicName("a/b"));
  EXPECT_TRUE(validTopicName("/"));
  EXPECT_FALSE(validTopicName(""));
  EXPECT_FALSE(validTopicName("a/+"));
  EXPECT_FALSE(validTopicName("a/#"));
  EXPECT_TRUE(validTopicFilter("#"));
  EXPECT_TRUE(validTopicFilter("+/+/#"));
  EXPECT_TRUE(validTopicFilter("a//b"));
  EXPECT_FALSE(validTopicFilter("a/#/b"));
  EXPECT_FALSE(validTopicFilter("a#"));
  EXPECT_FALSE(validTopicFilter("a/b+"));
  EXPECT_FALSE(validTopicFilter(""));
}

TEST(MqttTopic, SharedFilters) {
  auto s = parseSharedFilter("$share/g1/a/+");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->group, "g1");
  EXPECT_EQ(s->filter, "a/+");
  auto plain = parseSharedFilter("a/b");
  ASSERT_TRUE(plain);
  EXPECT_TRUE(plain->group.empty());
  EXPECT_FALSE(parseSharedFilter("$share//a"));
  EXPECT_FALSE(parseSharedFilter("$share/g"));
  EXPECT_FALSE(parseSharedFilter("$share/g+/a"));
  EXPECT_FALSE(parseSharedFilter("$share/g/a/#/b"));
}

TEST(MqttTopic, Matching) {
  EXPECT_TRUE(topicMatches("a/b", "a/b"));
  EXPECT_FALSE(topicMatches("a/b", "a/b/c"));
  EXPECT_TRUE(topicMatches("a/+", "a/b"));
  EXPECT_FALSE(topicMatches("a/+", "a/b/c"));
  EXPECT_TRUE(topicMatches("a/+", "a/"));
  EXPECT_TRUE(topicMatches("a/#", "a"));
  EXPECT_TRUE(topicMatches("a/#", "a/b/c"));
  EXPECT_TRUE(topicMatches("#", "a/b"));
  EXPECT_TRUE(topicMatches("+/+", "/x"));
  EXPECT_FALSE(topicMatches("#", "$SYS/x"));
  EXPECT_FALSE(topicMatches("+/x", "$SYS/x"));
  EXPECT_TRUE(topicMatches("$SYS/#", "$SYS/x"));
}

std::shared_ptr<Session> newSession(const std::string& id, std::size_t max_queued = 100) {
  return std::make_shared<Session>(TenantId("t"), id, ClientKind::kApp, DeviceId(), max_queued);
}

std::vector<std::string> matched(const TopicTree& tree, std::string_view topic) {
  std::vector<std::string> out;
  tree.match(topic, [&](const TopicTree::Entry& e) { out.push_back(e.session->clientId()); });
  std::sort(out.begin(), out.end());
  return out;
}

// The trie agrees with topicMatches for every filter/topic pair of a small grid.
TEST(MqttTopicTree, AgreesWithTopicMatches) {
  const std::vector<std::string> filters = {"#",     "a/#", "a/+", "+/b",    "a/b", "+/+",
                                            "a/+/c", "+",   "/+",  "$SYS/#", "a//#"};
  const std::vector<std::string> topics = {"a", "a/b", "a/b/c", "x/b", "/b", "a//c", "$SYS/x", "a/", "b"};
  TopicTree tree;
  for (std::size_t i = 0; i < filters.size(); ++i) tree.add(filters[i], "", newSession(filters[i]), {});
  EXPECT_EQ(tree.size(), filters.size());
  for (const auto& t : topics) {
    std::vector<std::string> expected;
    for (const auto& f : filters)
      if (topicMatches(f, t)) expected.push_back(f);
    std::sort(expected.begin(), expected.end());
    EXPECT_EQ(matched(tree, t), expected) << "topic " << t;
  }
}

TEST(MqttTopicTree, RemovePrunesAndReplaces) {
  TopicTree tree;
  auto s = newSession("s");
  tree.add("a/b", "", s, {1, false, false, 0});
  tree.add("a/b", "", s, {2, false, false, 0});  // replaces, not duplicates
  EXPECT_EQ(tree.size(), 1u);
  int qos = -1;
  tree.match("a/b", [&](const TopicTree::Entry& e) { qos = e.options.qos; });
  EXPECT_EQ(qos, 2);
  EXPECT_TRUE(tree.remove("a/b", "", s.get()));
  EXPECT_FALSE(tree.remove("a/b", "", s.get()));
  EXPECT_EQ(tree.size(), 0u);
  EXPECT_FALSE(tree.anyMatch("a/b"));
}

class RecordingSink : public Session::Sink {
 public:
  void wake() override { ++wakes; }
  void kick(std::uint8_t reason) override { kicks.push_back(reason); }
  int wakes = 0;
  std::vector<std::uint8_t> kicks;
};

std::shared_ptr<Message> message(std::string topic, std::uint8_t qos = 1, bool retain = false) {
  auto m = std::make_shared<Message>();
  m->topic = std::move(topic);
  m->payload = "p";
  m->qos = qos;
  m->retain = retain;
  return m;
}

std::vector<std::string> drain(Session& s, std::size_t window = 100) {
  std::vector<Session::Outgoing> out;
  std::uint64_t expired = 0;
  s.takeSendable(window, SIZE_MAX, out, expired);
  std::vector<std::string> topics;
  for (auto& o : out) topics.push_back(o.delivery.msg ? o.delivery.msg->topic : "");
  return topics;
}

TEST(MqttSession, QueueBoundWindowAndAcks) {
  Session s(TenantId("t"), "c", ClientKind::kApp, DeviceId(), 3);
  for (int i = 0; i < 4; ++i) {
    bool ok = s.deliver(Delivery{message("m" + std::to_string(i)), 1, false, {}});
    EXPECT_EQ(ok, i < 3);  // the fourth is refused: the bound holds
  }
  std::vector<Session::Outgoing> out;
  std::uint64_t expired = 0;
  s.takeSendable(2, SIZE_MAX, out, expired);  // inflight window of 2
  ASSERT_EQ(out.size(), 2u);
  EXPECT_NE(out[0].packet_id, out[1].packet_id);
  EXPECT_EQ(s.inflight(), 2u);
  EXPECT_EQ(s.queued(), 1u);
  EXPECT_TRUE(s.puback(out[0].packet_id));
  EXPECT_FALSE(s.puback(out[0].packet_id));
  out.clear();
  s.takeSendable(2, SIZE_MAX, out, expired);
  EXPECT_EQ(out.size(), 1u);
  // After a reconnect the unacknowledged ones are sent again with DUP.
  s.prepareResend();
  out.clear();
  s.takeSendable(2, SIZE_MAX, out, expired);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_TRUE(out[0].dup);
}

TEST(MqttSession, ExpiredMessagesAreDropped) {
  Session s(TenantId("t"), "c", ClientKind::kApp, DeviceId(), 10);
  auto m = message("x");
  m->expires = std::chrono::steady_clock::now() - std::chrono::seconds(1);
  s.deliver(Delivery{m, 1, false, {}});
  std::vector<Session::Outgoing> out;
  std::uint64_t expired = 0;
  s.takeSendable(10, SIZE_MAX, out, expired);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(expired, 1u);
}

TEST(MqttSession, Qos2OutboundFlow) {
  Session s(TenantId("t"), "c", ClientKind::kApp, DeviceId(), 10);
  s.deliver(Delivery{message("x", 2), 2, false, {}});
  std::vector<Session::Outgoing> out;
  std::uint64_t expired = 0;
  s.takeSendable(10, SIZE_MAX, out, expired);
  ASSERT_EQ(out.size(), 1u);
  const auto id = out[0].packet_id;
  EXPECT_FALSE(s.pubcomp(id));  // PUBCOMP before PUBREC is not valid
  EXPECT_TRUE(s.pubrec(id));
  s.prepareResend();
  out.clear();
  s.takeSendable(10, SIZE_MAX, out, expired);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(out[0].pubrel);  // after a reconnect, the PUBREL is what is resent
  EXPECT_TRUE(s.pubcomp(id));
  EXPECT_EQ(s.inflight(), 0u);
}

struct BrokerFixture : ::testing::Test {
  Config config;
  Metrics metrics;
  std::unique_ptr<Broker> broker;
  void SetUp() override {
    config.mqtt_max_queued = 5;
    broker = std::make_unique<Broker>(config, metrics);
  }
  Broker::Opened open(const std::string& tenant, const std::string& id, std::shared_ptr<RecordingSink> sink,
                      bool clean = true, std::uint32_t expiry = 0) {
    return broker->openSession(TenantId(tenant), id, ClientKind::kApp, DeviceId(), clean, expiry, std::move(sink));
  }
};

TEST_F(BrokerFixture, TenantsAreIsolatedEvenForHash) {
  auto sa = std::make_shared<RecordingSink>();
  auto sb = std::make_shared<RecordingSink>();
  auto a = open("A", "same-id", sa).session;
  auto b = open("B", "same-id", sb).session;  // same client id, other tenant: no takeover
  EXPECT_TRUE(sa->kicks.empty());
  broker->subscribe(a, "#", "", {1, false, false, 0}, 0);
  broker->subscribe(b, "#", "", {1, false, false, 0}, 0);
  EXPECT_EQ(broker->publish(TenantId("B"), message("secret")), 1u);
  EXPECT_TRUE(drain(*a).empty());
  EXPECT_EQ(drain(*b), std::vector<std::string>{"secret"});
}

TEST_F(BrokerFixture, TakeoverKicksThePreviousConnection) {
  auto first = std::make_shared<RecordingSink>();
  auto s1 = open("A", "c", first, false, 60).session;
  auto second = std::make_shared<RecordingSink>();
  auto opened = open("A", "c", second, false, 60);
  EXPECT_TRUE(opened.present);
  EXPECT_EQ(opened.session, s1);
  EXPECT_EQ(first->kicks, std::vector<std::uint8_t>{reason::kSessionTakenOver});
}

TEST_F(BrokerFixture, PersistentSessionKeepsMessagesUntilExpiry) {
  auto sink = std::make_shared<RecordingSink>();
  auto s = open("A", "p", sink, false, 3600).session;
  broker->subscribe(s, "t", "", {1, false, false, 0}, 0);
  broker->closeSession(s, sink.get(), nullptr, 0);
  EXPECT_EQ(broker->publish(TenantId("A"), message("t")), 1u);
  auto again = open("A", "p", std::make_shared<RecordingSink>(), false, 3600);
  EXPECT_TRUE(again.present);
  EXPECT_EQ(drain(*again.session), std::vector<std::string>{"t"});
  // A clean start discards it all.
  auto clean = open("A", "p", std::make_shared<RecordingSink>(), true, 0);
  EXPECT_FALSE(clean.present);
  EXPECT_EQ(broker->publish(TenantId("A"), message("t")), 0u);
}

TEST_F(BrokerFixture, SharedSubscriptionsSplitMessages) {
  auto s1 = open("A", "m1", std::make_shared<RecordingSink>()).session;
  auto s2 = open("A", "m2", std::make_shared<RecordingSink>()).session;
  broker->subscribe(s1, "jobs/+", "g", {1, false, false, 0}, 0);
  broker->subscribe(s2, "jobs/+", "g", {1, false, false, 0}, 0);
  for (int i = 0; i < 4; ++i) broker->publish(TenantId("A"), message("jobs/" + std::to_string(i)));
  EXPECT_EQ(drain(*s1).size() + drain(*s2).size(), 4u);
}

TEST_F(BrokerFixture, SharedSubscriptionsBalance) {
  auto s1 = open("A", "m1", std::make_shared<RecordingSink>()).session;
  auto s2 = open("A", "m2", std::make_shared<RecordingSink>()).session;
  broker->subscribe(s1, "jobs", "g", {1, false, false, 0}, 0);
  broker->subscribe(s2, "jobs", "g", {1, false, false, 0}, 0);
  for (int i = 0; i < 4; ++i) {
    EXPECT_TRUE(broker->hasSubscribers(TenantId("A"), "jobs"));  // does not disturb the rotation
    broker->publish(TenantId("A"), message("jobs"));
  }
  EXPECT_EQ(drain(*s1).size(), 2u);
  EXPECT_EQ(drain(*s2).size(), 2u);
}

TEST_F(BrokerFixture, RetainedNoLocalAndOverlaps) {
  broker->publish(TenantId("A"), message("r/1", 1, true));
  auto s = open("A", "c", std::make_shared<RecordingSink>()).session;
  broker->subscribe(s, "r/#", "", {1, false, false, 7}, 0);
  std::vector<Session::Outgoing> out;
  std::uint64_t expired = 0;
  s->takeSendable(10, SIZE_MAX, out, expired);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(out[0].delivery.retain);
  EXPECT_EQ(out[0].delivery.subscription_ids, std::vector<std::uint32_t>{7});
  // Two overlapping subscriptions: one delivery with the higher QoS and both identifiers.
  broker->subscribe(s, "r/+", "", {2, false, false, 8}, 2);
  auto m = message("r/2", 2);
  broker->publish(TenantId("A"), m);
  out.clear();
  s->takeSendable(10, SIZE_MAX, out, expired);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].delivery.qos, 2);
  EXPECT_EQ(out[0].delivery.subscription_ids.size(), 2u);
  // No-local: a client does not get its own message back.
  auto nl = open("A", "self", std::make_shared<RecordingSink>()).session;
  broker->subscribe(nl, "x", "", {1, true, false, 0}, 0);
  auto own = message("x");
  own->origin_client = "self";
  EXPECT_EQ(broker->publish(TenantId("A"), own), 0u);
  // An empty retained payload clears the retained message.
  EXPECT_EQ(broker->retainedCount(), 1u);
  auto clear = message("r/1", 1, true);
  clear->payload.clear();
  broker->publish(TenantId("A"), clear);
  EXPECT_EQ(broker->retainedCount(), 0u);
}

TEST_F(BrokerFixture, SlowSubscriberIsBounded) {
  auto s = open("A", "slow", std::make_shared<RecordingSink>()).session;
  broker->subscribe(s, "x", "", {0, false, false, 0}, 0);
  for (int i = 0; i < 20; ++i) broker->publish(TenantId("A"), message("x", 0));
  EXPECT_EQ(s->queued(), config.mqtt_max_queued);
  EXPECT_NE(metrics.render().find("sw_mqtt_messages_dropped_total{reason=\"queue_full\"} 15"), std::string::npos);
}

TEST_F(BrokerFixture, DelayedWillIsCancelledByReconnect) {
  auto sink = std::make_shared<RecordingSink>();
  auto s = open("A", "w", sink, false, 60).session;
  auto watcher = open("A", "watch", std::make_shared<RecordingSink>()).session;
  broker->subscribe(watcher, "will", "", {1, false, false, 0}, 0);
  broker->closeSession(s, sink.get(), message("will"), 30);
  broker->tick();
  open("A", "w", std::make_shared<RecordingSink>(), false, 60);  // back within the delay
  broker->tick();
  EXPECT_EQ(watcher->queued(), 0u);
  // Without a delay the will goes out at once.
  auto sink2 = std::make_shared<RecordingSink>();
  auto s2 = open("A", "w2", sink2).session;
  broker->closeSession(s2, sink2.get(), message("will"), 0);
  EXPECT_EQ(watcher->queued(), 1u);
}

TEST_F(BrokerFixture, RpcOfflineQueuedAndReply) {
  const TenantId t("A");
  const DeviceId d("dev-1");
  std::optional<ingest::RpcOutcome> outcome;
  ingest::RpcRequest req{t, d, "reboot", "{}", std::chrono::milliseconds(10000), false, false};
  broker->rpc(req, [&](ingest::RpcOutcome o) { outcome = o; });
  ASSERT_TRUE(outcome);
  EXPECT_EQ(outcome->kind, ingest::RpcOutcome::Kind::kOffline);
  // Queued until the device is ready, then answered.
  outcome.reset();
  req.queue = true;
  broker->rpc(req, [&](ingest::RpcOutcome o) { outcome = o; });
  EXPECT_FALSE(outcome);
  auto sink = std::make_shared<RecordingSink>();
  auto s = broker->openSession(t, "dev", ClientKind::kDevice, d, true, 0, sink).session;
  broker->deviceConnected(t, d, sink);
  broker->subscribe(s, Broker::deviceTopicPrefix(d) + "rpc/request/+", "", {1, false, false, 0}, 0);
  broker->deviceReady(t, d);
  std::vector<Session::Outgoing> out;
  std::uint64_t expired = 0;
  s->takeSendable(10, SIZE_MAX, out, expired);
  ASSERT_EQ(out.size(), 1u);
  const std::string topic = out[0].delivery.msg->topic;
  const auto id = static_cast<std::uint32_t>(std::stoul(topic.substr(topic.rfind('/') + 1)));
  EXPECT_TRUE(broker->completeRpc(d, id, R"({"ok":true})"));
  ASSERT_TRUE(outcome);
  EXPECT_EQ(outcome->kind, ingest::RpcOutcome::Kind::kReply);
  EXPECT_EQ(outcome->reply, R"({"ok":true})");
  EXPECT_TRUE(broker->state(t, d).online);
  EXPECT_FALSE(broker->state(TenantId("B"), d).online);  // another tenant sees nothing
}

}  // namespace
}  // namespace sw::mqtt

namespace sw::mqtt {
namespace {

TEST_F(BrokerFixture, LiveTelemetryHasNoDuplicateKeysPerEntry) {
  auto app = open("A", "app", std::make_shared<RecordingSink>()).session;
  const DeviceId d("dev-7");
  broker->subscribe(app, Broker::deviceTopicPrefix(d) + "telemetry", "", {1, false, false, 0}, 0);
  // Two messages of one batch with the same timestamp, then another timestamp.
  const std::vector<storage::Point> points = {{1000, "t", 1.5}, {1000, "h", 40.0}, {1000, "t", 2.5}, {2000, "t", true}};
  broker->telemetryStored(ingest::DeviceRef{TenantId("A"), d, "dev", 0, false}, points);
  std::vector<Session::Outgoing> out;
  std::uint64_t expired = 0;
  app->takeSendable(10, SIZE_MAX, out, expired);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(
      out[0].delivery.msg->payload,
      R"([{"ts":1000,"values":{"t":1.5,"h":40}},{"ts":1000,"values":{"t":2.5}},{"ts":2000,"values":{"t":true}}])");
  EXPECT_TRUE(broker->state(TenantId("A"), d).last_activity.has_value());
}

}  // namespace
}  // namespace sw::mqtt

namespace sw::mqtt {
namespace {

TEST(MqttBrokerLimits, SessionsAndRetainedBytesPerTenant) {
  Config config;
  config.mqtt_max_sessions_per_tenant = 2;
  config.mqtt_max_retained_bytes = 100;
  Metrics metrics;
  Broker broker(config, metrics);
  auto open = [&](const char* tenant, const char* id) {
    return broker.openSession(TenantId(tenant), id, ClientKind::kApp, DeviceId(), true, 0,
                              std::make_shared<RecordingSink>());
  };
  EXPECT_TRUE(open("A", "a1").session);
  EXPECT_TRUE(open("A", "a2").session);
  auto third = open("A", "a3");
  EXPECT_FALSE(third.session);
  EXPECT_TRUE(third.quota_exceeded);
  EXPECT_TRUE(open("A", "a1").session);  // the same client again is not a new session
  EXPECT_TRUE(open("B", "b1").session);  // the bound is per tenant

  auto retained = [](std::string topic, std::size_t bytes) {
    auto m = message(std::move(topic), 1, true);
    m->payload.assign(bytes, 'x');
    return m;
  };
  broker.publish(TenantId("A"), retained("r1", 60));  // 62 bytes
  broker.publish(TenantId("A"), retained("r2", 60));  // would make 124: not retained
  EXPECT_EQ(broker.retainedCount(), 1u);
  broker.publish(TenantId("A"), retained("r1", 90));  // replacing counts only the difference
  EXPECT_EQ(broker.retainedCount(), 1u);
  broker.publish(TenantId("A"), retained("r1", 0));  // cleared: the bytes are free again
  broker.publish(TenantId("A"), retained("r2", 60));
  EXPECT_EQ(broker.retainedCount(), 1u);
}

}  // namespace
}  // namespace sw::mqtt
