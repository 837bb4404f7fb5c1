// WebhookService: signature (HMAC-SHA256 against values computed independently with Python's
// hmac module), backoff schedule, URL validation, CRUD and tenant scoping, the outbox (severity
// filter, persistence across reopen, retries up to max_attempts, pruning, bounds) with a fake
// clock and transport, and the real HTTP client against a local socket.
#include "analytics/webhooks.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/json.hpp>
#include <mutex>
#include <thread>
#include <tuple>

#include "test_util.h"

namespace sw::analytics {
namespace {

using sw::testing::TempDir;

// ---- signature, backoff, URLs ----

TEST(WebhookSignature, MatchesIndependentHmac) {
  // python3 -c 'import hmac,hashlib; print(hmac.new(b"whsec-0123456789abcdef", b"1700000000000." + body,
  //             hashlib.sha256).hexdigest())'
  const std::string body = R"({"event":"alarm.raised","tenant_id":"t","sent_ms":1700000000000,"alarm":{"id":"a1"}})";
  EXPECT_EQ(WebhookService::signature("whsec-0123456789abcdef", "1700000000000", body),
            "sha256=7b7b0ed152b0549e702bea772b6c8544cf251703e9d2066ec281100b415ac0d2");
  // A key longer than SHA-256's block (64 bytes) is hashed first, as HMAC requires.
  EXPECT_EQ(WebhookService::signature(std::string(100, 'k'), "1", "x"),
            "sha256=8dc72019a8a249d8f2d36e36fac06f4497511f4f50cfee8600a5d97fb8a91da5");
  EXPECT_NE(WebhookService::signature("whsec-0123456789abcdef", "1700000000001", body),
            WebhookService::signature("whsec-0123456789abcdef", "1700000000000", body));
}

TEST(WebhookBackoff, DoublesFromOneSecondCappedAtFiveMinutes) {
  const std::int64_t expected[] = {1000, 2000, 4000, 8000, 16000, 32000, 64000, 128000, 256000, 300000, 300000};
  for (int i = 0; i < static_cast<int>(std::size(expected)); ++i) {
    EXPECT_EQ(WebhookService::retryDelayMs(i + 1), expected[i]) << "after attempt " << i + 1;
  }
  EXPECT_EQ(WebhookService::retryDelayMs(0), 1000);
  EXPECT_EQ(WebhookService::retryDelayMs(64), 300000);
  EXPECT_EQ(WebhookService::retryDelayMs(1000000), 300000);
}

TEST(WebhookUrl, AcceptsHttpAndHttps) {
  auto u = parseWebhookUrl("http://example.com/hook?x=1");
  ASSERT_TRUE(u) << u.error().message;
  EXPECT_FALSE(u->tls);
  EXPECT_EQ(u->host, "example.com");
  EXPECT_EQ(u->port, 80);
  EXPECT_EQ(u->target, "/hook?x=1");
  u = parseWebhookUrl("HTTPS://Receiver.Example:8443");
  ASSERT_TRUE(u) << u.error().message;
  EXPECT_TRUE(u->tls);
  EXPECT_EQ(u->host, "receiver.example");
  EXPECT_EQ(u->port, 8443);
  EXPECT_EQ(u->target, "/");
  u = parseWebhookUrl("http://127.0.0.1:9000?q");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->target, "/?q");
  u = parseWebhookUrl("http://[::1]:8080/x");
  ASSERT_TRUE(u) << u.error().message;
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->port, 8080);
}

TEST(WebhookUrl, RejectsEverythingElseWithFieldUrl) {
  for (const char* bad : {"", "example.com/hook", "ftp://example.com/", "http://", "http:///path", "http://host:0/",
                          "http://host:65536/", "http://host:/", "http://host:12ab/", "http://user:pw@host/",
                          "http://host/a b", "http://host/#frag", "http://ho$t/", "http://[::1/", "http://[zz::1]/",
                          "http://[::1]x/", "javascript:alert(1)", "http://host/\x01"}) {
    auto u = parseWebhookUrl(bad);
    ASSERT_FALSE(u) << bad;
    EXPECT_EQ(u.error().code, Code::kInvalidArgument) << bad;
    EXPECT_EQ(u.error().field, "url") << bad;
  }
  EXPECT_FALSE(parseWebhookUrl("http://h/" + std::string(3000, 'a')));
}

// ---- the service with a fake clock and transport ----

class FakeReceiver {
 public:
  WebhookResponse operator()(const WebhookRequest& r) {
    std::lock_guard lock(mutex);
    requests.push_back(r);
    if (!answers.empty()) {
      auto a = answers.front();
      answers.erase(answers.begin());
      return a;
    }
    return fallback;
  }
  std::mutex mutex;
  std::vector<WebhookRequest> requests;
  std::vector<WebhookResponse> answers;  // consumed in order, then fallback
  WebhookResponse fallback{200, ""};
};

std::string header(const WebhookRequest& r, std::string_view name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) return v;
  }
  return {};
}

class WebhookServiceTest : public ::testing::Test {
 protected:
  void SetUp() override { open(); }
  void open(std::size_t keep_finished = 1000, std::size_t max_pending = 10000) {
    svc_.reset();
    WebhookOptions o;
    o.path = dir_.file("webhooks.sqlite");
    o.max_attempts = 4;
    o.keep_finished = keep_finished;
    o.max_pending_per_webhook = max_pending;
    o.max_webhooks_per_tenant = 3;
    o.clock = [this] { return now_.load(); };
    o.transport = [this](const WebhookRequest& r) { return receiver_(r); };
    auto s = WebhookService::open(std::move(o), &metrics_);
    ASSERT_TRUE(s) << s.error().message;
    svc_ = std::move(*s);
  }
  Webhook create(const TenantId& t, Severity min = Severity::kInfo, bool enabled = true,
                 std::optional<std::string> secret = std::nullopt) {
    WebhookInput in;
    in.name = "hook";
    in.url = "http://receiver.example:8080/alarms";
    in.secret = std::move(secret);
    in.min_severity = min;
    in.enabled = enabled;
    auto w = svc_->createWebhook(t, std::move(in));
    EXPECT_TRUE(w) << w.error().message;
    return w.value_or(Webhook{});
  }
  std::vector<Delivery> deliveries(const TenantId& t, const WebhookId& id) {
    auto page = svc_->listDeliveries(t, id, storage::PageRequest{1000, {}});
    EXPECT_TRUE(page) << page.error().message;
    return page ? page->items : std::vector<Delivery>{};
  }
  static std::string alarm(const std::string& id, const std::string& severity = "major") {
    return R"({"id":")" + id + R"(","severity":")" + severity + R"(","message":"temperature = 91.2"})";
  }

  TempDir dir_;
  std::atomic<std::int64_t> now_{1'700'000'000'000};
  FakeReceiver receiver_;
  Metrics metrics_;
  std::unique_ptr<WebhookService> svc_;
  const TenantId t1_{newUuid()};
  const TenantId t2_{newUuid()};
};

TEST_F(WebhookServiceTest, CreateGeneratesSecretAndValidates) {
  Webhook w = create(t1_);
  EXPECT_EQ(w.secret.size(), 64u);  // 32 random bytes, hex
  EXPECT_EQ(w.secret.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_NE(create(t1_).secret, w.secret);
  EXPECT_EQ(create(t1_, Severity::kInfo, true, "given-secret-0123456789").secret, "given-secret-0123456789");
  // max_webhooks_per_tenant = 3
  WebhookInput in{"x", "http://h/", std::nullopt, Severity::kInfo, true};
  auto full = svc_->createWebhook(t1_, in);
  ASSERT_FALSE(full);
  EXPECT_EQ(full.error().code, Code::kResourceExhausted);

  for (auto [name, url, secret, field] :
       std::vector<std::tuple<std::string, std::string, std::optional<std::string>, std::string>>{
           {"", "http://h/", std::nullopt, "name"},
           {std::string(201, 'n'), "http://h/", std::nullopt, "name"},
           {"n", "gopher://h/", std::nullopt, "url"},
           {"n", "http://h/", "short", "secret"},
           {"n", "http://h/", std::string(257, 's'), "secret"},
           {"n", "http://h/", "0123456789abcdef\n", "secret"}}) {
    auto r = svc_->createWebhook(t2_, WebhookInput{name, url, secret, Severity::kInfo, true});
    ASSERT_FALSE(r) << field;
    EXPECT_EQ(r.error().code, Code::kInvalidArgument);
    EXPECT_EQ(r.error().field, field);
  }
}

TEST(WebhookAddresses, PrivateLoopbackLinkLocalAndTheirIpv6FormsAreRecognised) {
  for (const char* a : {"127.0.0.1",
                        "127.255.0.9",
                        "0.0.0.0",
                        "0.1.2.3",
                        "10.0.0.1",
                        "172.16.0.1",
                        "172.31.255.255",
                        "192.168.1.5",
                        "169.254.169.254",
                        "100.64.0.1",
                        "100.127.255.254",
                        "224.0.0.1",
                        "255.255.255.255",
                        "::1",
                        "::",
                        "fe80::1",
                        "fec0::1",
                        "fc00::1",
                        "fd12:3456::1",
                        "ff02::1",
                        "::ffff:127.0.0.1",
                        "::ffff:10.1.2.3",
                        "::ffff:169.254.169.254",
                        "::127.0.0.1",
                        "64:ff9b::a00:1",
                        "64:ff9b::7f00:1"}) {
    EXPECT_TRUE(isPrivateAddress(a)) << a;
  }
  for (const char* a : {"8.8.8.8", "1.1.1.1", "172.15.255.255", "172.32.0.1", "100.63.255.255", "100.128.0.1",
                        "169.253.0.1", "192.167.1.1", "11.0.0.1", "2001:db8::1", "2606:4700::1111", "::ffff:8.8.8.8",
                        "64:ff9b::808:808", "example.com", "localhost", "", "not an address"}) {
    EXPECT_FALSE(isPrivateAddress(a)) << a;
  }
}

TEST_F(WebhookServiceTest, PrivateReceiversAreRefusedUnlessAllowed) {
  // The fixture's service runs with the default allow_private = false.
  for (const char* url :
       {"http://127.0.0.1/", "http://10.0.0.7:8080/x", "https://169.254.169.254/latest", "http://[::1]:9/",
        "http://[::ffff:192.168.0.1]/", "http://localhost:8080/", "http://api.localhost/"}) {
    auto r = svc_->createWebhook(t1_, WebhookInput{"n", url, std::nullopt, Severity::kInfo, true});
    ASSERT_FALSE(r) << url;
    EXPECT_EQ(r.error().code, Code::kInvalidArgument) << url;
    EXPECT_EQ(r.error().field, "url") << url;
    EXPECT_NE(r.error().message.find("webhooks.allow_private"), std::string::npos) << r.error().message;
  }
  Webhook w = create(t1_);
  auto moved =
      svc_->updateWebhook(t1_, w.id, WebhookInput{"n", "http://192.168.1.1/", std::nullopt, Severity::kInfo, true});
  ASSERT_FALSE(moved);
  EXPECT_EQ(moved.error().field, "url");
  // Public addresses and names (resolved only when sending) are accepted.
  ASSERT_TRUE(svc_->createWebhook(t1_, WebhookInput{"n", "http://8.8.8.8/", std::nullopt, Severity::kInfo, true}));
  ASSERT_TRUE(
      svc_->createWebhook(t1_, WebhookInput{"n", "https://hooks.example.com/", std::nullopt, Severity::kInfo, true}));
}

TEST_F(WebhookServiceTest, CrudIsScopedByTenant) {
  Webhook w = create(t1_);
  EXPECT_TRUE(svc_->getWebhook(t1_, w.id));
  EXPECT_EQ(svc_->getWebhook(t2_, w.id).error().code, Code::kNotFound);
  EXPECT_EQ(
      svc_->updateWebhook(t2_, w.id, WebhookInput{"x", "http://h/", std::nullopt, Severity::kInfo, true}).error().code,
      Code::kNotFound);
  EXPECT_EQ(svc_->deleteWebhook(t2_, w.id).error().code, Code::kNotFound);
  EXPECT_EQ(svc_->ping(t2_, w.id).error().code, Code::kNotFound);
  EXPECT_EQ(svc_->listDeliveries(t2_, w.id, {}).error().code, Code::kNotFound);
  EXPECT_TRUE(svc_->listWebhooks(t2_, {})->items.empty());

  now_ += 5;
  auto u =
      svc_->updateWebhook(t1_, w.id, WebhookInput{"renamed", "https://h:1/x", std::nullopt, Severity::kMajor, false});
  ASSERT_TRUE(u) << u.error().message;
  EXPECT_EQ(u->name, "renamed");
  EXPECT_EQ(u->url, "https://h:1/x");
  EXPECT_EQ(u->secret, w.secret);  // kept when not given
  EXPECT_EQ(u->min_severity, Severity::kMajor);
  EXPECT_FALSE(u->enabled);
  EXPECT_EQ(u->created_ms, w.created_ms);
  EXPECT_EQ(u->updated_ms, w.created_ms + 5);
  u = svc_->updateWebhook(t1_, w.id,
                          WebhookInput{"renamed", "http://h/", "new-secret-0123456789", Severity::kInfo, true});
  ASSERT_TRUE(u);
  EXPECT_EQ(u->secret, "new-secret-0123456789");

  ASSERT_TRUE(svc_->deleteWebhook(t1_, w.id));
  EXPECT_EQ(svc_->getWebhook(t1_, w.id).error().code, Code::kNotFound);
}

TEST_F(WebhookServiceTest, ListPagesByName) {
  for (const char* name : {"c", "a", "b"}) {
    ASSERT_TRUE(svc_->createWebhook(t1_, WebhookInput{name, "http://h/", std::nullopt, Severity::kInfo, true}));
  }
  auto p1 = svc_->listWebhooks(t1_, storage::PageRequest{2, {}});
  ASSERT_TRUE(p1);
  ASSERT_EQ(p1->items.size(), 2u);
  EXPECT_EQ(p1->items[0].name, "a");
  EXPECT_EQ(p1->items[1].name, "b");
  ASSERT_FALSE(p1->next_cursor.empty());
  auto p2 = svc_->listWebhooks(t1_, storage::PageRequest{2, p1->next_cursor});
  ASSERT_TRUE(p2);
  ASSERT_EQ(p2->items.size(), 1u);
  EXPECT_EQ(p2->items[0].name, "c");
  EXPECT_TRUE(p2->next_cursor.empty());
  EXPECT_EQ(svc_->listWebhooks(t1_, storage::PageRequest{2, "zz"}).error().field, "cursor");
}

TEST_F(WebhookServiceTest, NotifyQueuesPerMatchingWebhookAndSendsSignedBody) {
  Webhook all = create(t1_, Severity::kInfo);
  Webhook major = create(t1_, Severity::kMajor);
  Webhook off = create(t1_, Severity::kInfo, false);
  Webhook other = create(t2_, Severity::kInfo);

  svc_->notifyAlarm(t1_, "alarm.raised", Severity::kMinor, alarm("a1", "minor"));
  svc_->notifyAlarm(t1_, "cleared", Severity::kCritical, alarm("a2", "critical"));
  svc_->notifyAlarm(t1_, "alarm.exploded", Severity::kCritical, alarm("a3"));  // unknown event: dropped
  svc_->notifyAlarm(t1_, "alarm.raised", Severity::kCritical, "not json");     // dropped
  EXPECT_EQ(deliveries(t1_, all.id).size(), 2u);
  ASSERT_EQ(deliveries(t1_, major.id).size(), 1u);
  EXPECT_EQ(deliveries(t1_, major.id)[0].event, "alarm.cleared");
  EXPECT_EQ(deliveries(t1_, major.id)[0].alarm_id, "a2");
  EXPECT_TRUE(deliveries(t1_, off.id).empty());
  EXPECT_TRUE(deliveries(t2_, other.id).empty());
  // 2 matching webhooks x (unknown event + bad JSON)
  EXPECT_NE(metrics_.render().find("sw_webhook_dropped_total 4"), std::string::npos) << metrics_.render();

  for (const auto& d : deliveries(t1_, all.id)) {
    EXPECT_EQ(d.status, DeliveryStatus::kPending);
    EXPECT_EQ(d.attempts, 0);
    EXPECT_EQ(d.next_attempt_ms, now_.load());
  }
  now_ += 10;
  EXPECT_EQ(svc_->deliverDue(), 3u);
  ASSERT_EQ(receiver_.requests.size(), 3u);
  for (const auto& r : receiver_.requests) {
    const std::string ts = header(r, "X-Sensoworks-Timestamp");
    EXPECT_EQ(ts, std::to_string(now_.load()));
    const bool to_major = header(r, "X-Sensoworks-Signature") == WebhookService::signature(major.secret, ts, r.body);
    const bool to_all = header(r, "X-Sensoworks-Signature") == WebhookService::signature(all.secret, ts, r.body);
    EXPECT_TRUE(to_major != to_all) << "signed with exactly one of the webhooks' secrets";
    EXPECT_EQ(r.url.host, "receiver.example");
    EXPECT_EQ(r.url.port, 8080);
    EXPECT_FALSE(header(r, "X-Sensoworks-Delivery").empty());
    auto body = boost::json::parse(r.body).as_object();
    EXPECT_EQ(body.at("event").as_string(), header(r, "X-Sensoworks-Event"));
    EXPECT_EQ(body.at("tenant_id").as_string(), t1_.str());
    EXPECT_EQ(body.at("sent_ms").as_int64(), now_.load());
    EXPECT_TRUE(body.at("alarm").as_object().contains("message"));
    EXPECT_EQ(body.size(), 4u);
  }
  for (const auto& d : deliveries(t1_, all.id)) {
    EXPECT_EQ(d.status, DeliveryStatus::kDelivered);
    EXPECT_EQ(d.attempts, 1);
    EXPECT_EQ(d.last_status_code, 200);
    EXPECT_EQ(d.delivered_ms, now_.load());
    EXPECT_FALSE(d.next_attempt_ms);
  }
  auto h = svc_->getWebhook(t1_, all.id);
  EXPECT_EQ(h->last_delivery_ms, now_.load());
  EXPECT_FALSE(h->failing);
  EXPECT_EQ(svc_->deliverDue(), 0u);
}

TEST_F(WebhookServiceTest, CacheFollowsCrud) {
  svc_->notifyAlarm(t1_, "raised", Severity::kCritical, alarm("a0"));  // no webhooks yet: cached as none
  Webhook w = create(t1_);
  svc_->notifyAlarm(t1_, "raised", Severity::kCritical, alarm("a1"));
  EXPECT_EQ(deliveries(t1_, w.id).size(), 1u);
  ASSERT_TRUE(svc_->updateWebhook(t1_, w.id, WebhookInput{"n", "http://h/", std::nullopt, Severity::kInfo, false}));
  svc_->notifyAlarm(t1_, "raised", Severity::kCritical, alarm("a2"));
  EXPECT_EQ(deliveries(t1_, w.id).size(), 1u);
  ASSERT_TRUE(svc_->updateWebhook(t1_, w.id, WebhookInput{"n", "http://h/", std::nullopt, Severity::kCritical, true}));
  svc_->notifyAlarm(t1_, "raised", Severity::kMajor, alarm("a3"));  // below min_severity
  now_ += 1;
  svc_->notifyAlarm(t1_, "raised", Severity::kCritical, alarm("a4"));
  auto ds = deliveries(t1_, w.id);
  ASSERT_EQ(ds.size(), 2u);
  EXPECT_EQ(ds[0].alarm_id, "a4");  // newest first
  EXPECT_EQ(ds[1].alarm_id, "a1");
}

TEST_F(WebhookServiceTest, RetriesWithBackoffThenFails) {
  Webhook w = create(t1_);
  receiver_.fallback = WebhookResponse{500, "HTTP 500: boom"};
  svc_->notifyAlarm(t1_, "raised", Severity::kMajor, alarm("a1"));
  const std::int64_t t0 = now_.load();
  // max_attempts = 4: attempts at t0, t0+1s, t0+3s, t0+7s.
  std::int64_t at = t0;
  for (int attempt = 1; attempt <= 4; ++attempt) {
    now_ = at - 1;
    EXPECT_EQ(svc_->deliverDue(), 0u) << "attempt " << attempt << " is not due yet";
    now_ = at;
    EXPECT_EQ(svc_->deliverDue(), 1u) << "attempt " << attempt;
    auto d = deliveries(t1_, w.id).at(0);
    EXPECT_EQ(d.attempts, attempt);
    EXPECT_EQ(d.last_status_code, 500);
    EXPECT_EQ(d.last_error, "HTTP 500: boom");
    auto h = svc_->getWebhook(t1_, w.id);
    EXPECT_TRUE(h->failing);
    EXPECT_EQ(h->last_error, "HTTP 500: boom");
    EXPECT_FALSE(h->last_delivery_ms);
    if (attempt < 4) {
      EXPECT_EQ(d.status, DeliveryStatus::kPending);
      EXPECT_EQ(d.next_attempt_ms, at + WebhookService::retryDelayMs(attempt));
      at += WebhookService::retryDelayMs(attempt);
    } else {
      EXPECT_EQ(d.status, DeliveryStatus::kFailed);
      EXPECT_FALSE(d.next_attempt_ms);
    }
  }
  EXPECT_EQ(at, t0 + 1000 + 2000 + 4000);
  now_ += 1'000'000;
  EXPECT_EQ(svc_->deliverDue(), 0u);
  ASSERT_EQ(receiver_.requests.size(), 4u);
  // Every attempt carries the same delivery id and a fresh timestamp.
  for (const auto& r : receiver_.requests) {
    EXPECT_EQ(header(r, "X-Sensoworks-Delivery"), header(receiver_.requests[0], "X-Sensoworks-Delivery"));
  }
  EXPECT_NE(header(receiver_.requests[0], "X-Sensoworks-Timestamp"),
            header(receiver_.requests[1], "X-Sensoworks-Timestamp"));
  const std::string text = metrics_.render();
  EXPECT_NE(text.find(R"(sw_webhook_deliveries_total{result="failed"} 1)"), std::string::npos) << text;
  EXPECT_NE(text.find("sw_webhook_attempts_failed_total 4"), std::string::npos) << text;

  // Recovery: a later delivery succeeds; failing clears, last_error stays as history.
  receiver_.fallback = WebhookResponse{204, ""};
  ASSERT_TRUE(svc_->ping(t1_, w.id));
  now_ += 1;
  EXPECT_EQ(svc_->deliverDue(), 1u);
  auto h = svc_->getWebhook(t1_, w.id);
  EXPECT_FALSE(h->failing);
  EXPECT_EQ(h->last_error, "HTTP 500: boom");
  EXPECT_EQ(h->last_delivery_ms, now_.load());
}

TEST_F(WebhookServiceTest, FailingReceiverGetsOneAttemptPerBackoffStep) {
  Webhook w = create(t1_);
  receiver_.fallback = WebhookResponse{0, "connect: Connection refused"};
  for (int i = 0; i < 5; ++i) svc_->notifyAlarm(t1_, "raised", Severity::kMajor, alarm("a" + std::to_string(i)));
  EXPECT_EQ(svc_->deliverDue(), 1u);  // the first fails; the others wait for the backoff
  EXPECT_EQ(svc_->deliverDue(), 0u);
  now_ += 1000;
  EXPECT_EQ(svc_->deliverDue(), 1u);
  receiver_.fallback = WebhookResponse{200, ""};
  now_ += 2000;
  EXPECT_EQ(svc_->deliverDue(), 5u);  // back: everything goes
  auto h = svc_->getWebhook(t1_, w.id);
  EXPECT_FALSE(h->failing);
  EXPECT_EQ(h->last_error, "connect: Connection refused");
  for (const auto& d : deliveries(t1_, w.id)) EXPECT_EQ(d.status, DeliveryStatus::kDelivered);
}

TEST_F(WebhookServiceTest, PendingDeliveriesSurviveReopen) {
  Webhook w = create(t1_);
  receiver_.fallback = WebhookResponse{503, "HTTP 503"};
  svc_->notifyAlarm(t1_, "raised", Severity::kMajor, alarm("a1"));
  EXPECT_EQ(svc_->deliverDue(), 1u);
  auto ping = svc_->ping(t1_, w.id);
  ASSERT_TRUE(ping);
  EXPECT_EQ(ping->event, "ping");
  EXPECT_FALSE(ping->alarm_id);
  open();  // "restart"
  auto ds = deliveries(t1_, w.id);
  ASSERT_EQ(ds.size(), 2u);
  for (const auto& d : ds) EXPECT_EQ(d.status, DeliveryStatus::kPending);
  EXPECT_TRUE(svc_->getWebhook(t1_, w.id)->failing);
  receiver_.fallback = WebhookResponse{200, ""};
  now_ += 1000;
  EXPECT_EQ(svc_->deliverDue(), 2u);
  ds = deliveries(t1_, w.id);
  for (const auto& d : ds) EXPECT_EQ(d.status, DeliveryStatus::kDelivered) << d.event;
  bool saw_ping = false;
  for (const auto& r : receiver_.requests) {
    auto body = boost::json::parse(r.body).as_object();
    if (body.at("event").as_string() != "ping") continue;
    saw_ping = true;
    EXPECT_EQ(body.at("webhook").as_object().at("id").as_string(), w.id.str());
    EXPECT_FALSE(body.contains("alarm"));
  }
  EXPECT_TRUE(saw_ping);
}

TEST_F(WebhookServiceTest, SenderThreadsDeliverAndStop) {
  Webhook w = create(t1_);
  svc_->start();
  svc_->notifyAlarm(t1_, "raised", Severity::kMajor, alarm("a1"));
  // Wait (bounded) for the background sender; no timing is asserted.
  for (int i = 0; i < 500 && deliveries(t1_, w.id).at(0).status != DeliveryStatus::kDelivered; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(deliveries(t1_, w.id).at(0).status, DeliveryStatus::kDelivered);
  svc_->stop();
  svc_->stop();                                                     // idempotent
  svc_->notifyAlarm(t1_, "raised", Severity::kMajor, alarm("a2"));  // stored, sent after the next start
  EXPECT_EQ(deliveries(t1_, w.id).size(), 2u);
}

TEST_F(WebhookServiceTest, FinishedDeliveriesArePruned) {
  open(/*keep_finished=*/3);
  Webhook w = create(t1_);
  for (int i = 0; i < 6; ++i) {
    svc_->notifyAlarm(t1_, "raised", Severity::kMajor, alarm("a" + std::to_string(i)));
    now_ += 1;
  }
  EXPECT_EQ(svc_->deliverDue(), 6u);
  auto ds = deliveries(t1_, w.id);
  ASSERT_EQ(ds.size(), 3u);
  EXPECT_EQ(ds[0].alarm_id, "a5");
  EXPECT_EQ(ds[2].alarm_id, "a3");
}

TEST_F(WebhookServiceTest, PendingOutboxIsBounded) {
  open(1000, /*max_pending=*/2);
  Webhook w = create(t1_);
  for (int i = 0; i < 4; ++i) svc_->notifyAlarm(t1_, "raised", Severity::kMajor, alarm("a" + std::to_string(i)));
  EXPECT_EQ(deliveries(t1_, w.id).size(), 2u);
  auto ping = svc_->ping(t1_, w.id);
  ASSERT_FALSE(ping);
  EXPECT_EQ(ping.error().code, Code::kResourceExhausted);
}

TEST_F(WebhookServiceTest, DeliveriesPageNewestFirst) {
  Webhook w = create(t1_);
  for (int i = 0; i < 5; ++i) {
    svc_->notifyAlarm(t1_, "raised", Severity::kMajor, alarm("a" + std::to_string(i)));
    now_ += 1;
  }
  std::vector<std::string> seen;
  storage::PageRequest page{2, {}};
  for (int i = 0; i < 10; ++i) {
    auto p = svc_->listDeliveries(t1_, w.id, page);
    ASSERT_TRUE(p) << p.error().message;
    for (const auto& d : p->items) seen.push_back(*d.alarm_id);
    if (p->next_cursor.empty()) break;
    page.after = p->next_cursor;
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"a4", "a3", "a2", "a1", "a0"}));
}

TEST_F(WebhookServiceTest, DeleteTenantRemovesEverything) {
  Webhook w = create(t1_);
  Webhook keep = create(t2_);
  svc_->notifyAlarm(t1_, "raised", Severity::kMajor, alarm("a1"));
  svc_->notifyAlarm(t2_, "raised", Severity::kMajor, alarm("b1"));
  ASSERT_TRUE(svc_->deleteTenant(t1_));
  EXPECT_EQ(svc_->getWebhook(t1_, w.id).error().code, Code::kNotFound);
  EXPECT_TRUE(svc_->listWebhooks(t1_, {})->items.empty());
  svc_->notifyAlarm(t1_, "raised", Severity::kMajor, alarm("a2"));  // nothing to notify
  EXPECT_EQ(svc_->deliverDue(), 1u);                                // only t2's
  EXPECT_EQ(deliveries(t2_, keep.id).at(0).status, DeliveryStatus::kDelivered);
}

// ---- the real HTTP client against a local socket ----

class LocalServer {
 public:
  // answer: raw bytes written after the request was read; empty: read and never answer.
  explicit LocalServer(std::string answer) : acceptor_(ioc_, {boost::asio::ip::make_address("127.0.0.1"), 0}) {
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::thread([this, answer = std::move(answer)] {
      boost::system::error_code ec;
      boost::asio::ip::tcp::socket socket(ioc_);
      acceptor_.accept(socket, ec);
      if (ec) return;
      std::string data;
      char buf[4096];
      // Read until the end of the headers and the announced body.
      for (;;) {
        const auto n = socket.read_some(boost::asio::buffer(buf), ec);
        if (ec) return;
        data.append(buf, n);
        const auto end = data.find("\r\n\r\n");
        if (end == std::string::npos) continue;
        const auto cl = data.find("Content-Length: ");
        const std::size_t len = cl == std::string::npos ? 0 : std::stoul(data.substr(cl + 16));
        if (data.size() >= end + 4 + len) break;
      }
      {
        std::lock_guard lock(mutex_);
        request_ = data;
      }
      if (answer.empty()) {
        // Hold the connection until the client gives up.
        socket.read_some(boost::asio::buffer(buf), ec);
        return;
      }
      boost::asio::write(socket, boost::asio::buffer(answer), ec);
      socket.shutdown(boost::asio::ip::tcp::socket::shutdown_both, ec);
    });
  }
  ~LocalServer() {
    boost::system::error_code ec;
    acceptor_.close(ec);
    thread_.join();
  }
  int port() const { return port_; }
  std::string request() {
    std::lock_guard lock(mutex_);
    return request_;
  }

 private:
  boost::asio::io_context ioc_;
  boost::asio::ip::tcp::acceptor acceptor_;
  int port_ = 0;
  std::mutex mutex_;
  std::string request_;
  std::thread thread_;
};

WebhookRequest localRequest(int port, int timeout_ms = 5000) {
  WebhookRequest r;
  r.url = *parseWebhookUrl("http://127.0.0.1:" + std::to_string(port) + "/in?x=1");
  r.headers = {{"X-Sensoworks-Event", "ping"}, {"X-Sensoworks-Signature", "sha256=00"}};
  r.body = R"({"event":"ping"})";
  r.timeout_ms = timeout_ms;
  return r;
}

TEST(WebhookHttpClient, PostsAndReadsTheStatus) {
  LocalServer server("HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
  auto response = WebhookService::httpPost(localRequest(server.port()));
  EXPECT_EQ(response.status, 204);
  EXPECT_EQ(response.error, "");
  const std::string req = server.request();
  EXPECT_EQ(req.rfind("POST /in?x=1 HTTP/1.1\r\n", 0), 0u) << req;
  EXPECT_NE(req.find("X-Sensoworks-Event: ping\r\n"), std::string::npos) << req;
  EXPECT_NE(req.find("Content-Type: application/json\r\n"), std::string::npos) << req;
  EXPECT_NE(req.find("Host: 127.0.0.1:" + std::to_string(server.port()) + "\r\n"), std::string::npos) << req;
  EXPECT_TRUE(req.ends_with("\r\n\r\n{\"event\":\"ping\"}")) << req;
}

TEST(WebhookHttpClient, NonSuccessKeepsAnExcerptAndRedirectsAreNotFollowed) {
  {
    LocalServer server("HTTP/1.1 500 Internal Server Error\r\nContent-Length: 9\r\n\r\nboom\x01\nxyz");
    auto response = WebhookService::httpPost(localRequest(server.port()));
    EXPECT_EQ(response.status, 500);
    EXPECT_EQ(response.error, "HTTP 500: boom  xyz");
  }
  {
    LocalServer server("HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:1/\r\nContent-Length: 0\r\n\r\n");
    auto response = WebhookService::httpPost(localRequest(server.port()));
    EXPECT_EQ(response.status, 302);
    EXPECT_EQ(response.error, "HTTP 302");
  }
  {
    // A huge error body is read only up to the bound.
    std::string big = "HTTP/1.1 400 Bad Request\r\nContent-Length: 10000000\r\n\r\n" + std::string(200000, 'x');
    LocalServer server(big);
    auto response = WebhookService::httpPost(localRequest(server.port()));
    EXPECT_EQ(response.status, 400);
    EXPECT_LE(response.error.size(), 220u);
  }
}

TEST(WebhookHttpClient, TimeoutsAndRefusedConnectionsAreErrors) {
  {
    LocalServer server("");  // never answers
    auto response = WebhookService::httpPost(localRequest(server.port(), 200));
    EXPECT_EQ(response.status, 0);
    EXPECT_NE(response.error.find("timed out"), std::string::npos) << response.error;
  }
  int port = 0;
  {
    boost::asio::io_context ioc;
    boost::asio::ip::tcp::acceptor a(ioc, {boost::asio::ip::make_address("127.0.0.1"), 0});
    port = a.local_endpoint().port();
  }  // closed: nothing listens there now
  auto response = WebhookService::httpPost(localRequest(port));
  EXPECT_EQ(response.status, 0);
  EXPECT_NE(response.error.find("connect"), std::string::npos) << response.error;
}

TEST(WebhookHttpClient, ResolvedPrivateAddressIsNotConnectedToUnlessAllowed) {
  // A receiver reached by a name that resolves to loopback (as a rebinding name would after
  // validation): refused without connecting, unless private receivers are allowed.
  LocalServer server("HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
  WebhookRequest r = localRequest(server.port(), 2000);
  r.url.host = "localhost";
  auto refused = WebhookService::httpPost(r, {}, false);
  EXPECT_EQ(refused.status, 0);
  EXPECT_TRUE(refused.error.starts_with("refused: ")) << refused.error;
  EXPECT_NE(refused.error.find("webhooks.allow_private"), std::string::npos) << refused.error;
  auto allowed = WebhookService::httpPost(r, {}, true);
  EXPECT_EQ(allowed.status, 204) << allowed.error;
}

TEST(WebhookHttpClient, HttpsFailsVerificationAgainstAPlainServer) {
  LocalServer server("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
  WebhookRequest r = localRequest(server.port(), 2000);
  r.url.tls = true;
  auto response = WebhookService::httpPost(r);
  EXPECT_EQ(response.status, 0);
  EXPECT_NE(response.error.find("tls"), std::string::npos) << response.error;
}

}  // namespace
}  // namespace sw::analytics
