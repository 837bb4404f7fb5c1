// The alarm side of the analytics store: batches of raises and clears from the engine
// (AnalyticsStore::applyAlarmOps), applied in one transaction, and the changes they report.
#include <gtest/gtest.h>

#include "analytics/store.h"
#include "test_util.h"

namespace sw::analytics {
namespace {

using Op = AnalyticsStore::AlarmOp;
using Change = AnalyticsStore::Change;

class AlarmOps : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = AnalyticsStore::open(dir_.file("analytics.sqlite"));
    ASSERT_TRUE(s) << s.error().message;
    store_ = std::move(*s);
  }

  static Op raise(const TenantId& tenant, const std::string& device, const std::string& key, std::int64_t ts,
                  double observed, Severity severity = Severity::kMinor) {
    Op op{Op::Kind::kRaise, tenant, {}};
    op.event.source_type = "detector";
    op.event.source_id = "det-1";
    op.event.source_name = "z";
    op.event.device_id = device;
    op.event.device_name = "dev " + device;
    op.event.key = key;
    op.event.severity = severity;
    op.event.ts = ts;
    op.event.message = "unusual";
    op.event.observed = observed;
    op.event.expected_lo = 0;
    op.event.expected_hi = 10;
    op.event.score = 0.9;
    return op;
  }
  static Op clear(const TenantId& tenant, const std::string& device, const std::string& key, std::int64_t ts) {
    Op op{Op::Kind::kClear, tenant, {}};
    op.event.source_id = "det-1";
    op.event.device_id = device;
    op.event.key = key;
    op.event.ts = ts;
    return op;
  }
  std::vector<AnalyticsStore::AlarmChange> apply(const std::vector<Op>& ops) {
    auto r = store_->applyAlarmOps(ops);
    EXPECT_TRUE(r) << r.error().message;
    return r ? std::move(*r) : std::vector<AnalyticsStore::AlarmChange>{};
  }

  testing::TempDir dir_;
  std::unique_ptr<AnalyticsStore> store_;
  TenantId t1{"tenant-1"}, t2{"tenant-2"};
};

TEST_F(AlarmOps, RepeatsInOneBatchAreOneUpdateWithTheirCountAndLatestObservation) {
  auto c = apply({raise(t1, "d1", "temp", 1000, 50), raise(t1, "d1", "temp", 2000, 60),
                  raise(t1, "d1", "temp", 3000, 70, Severity::kCritical), raise(t1, "d1", "temp", 4000, 65)});
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0].change, Change::kRaised);
  EXPECT_EQ(c[0].alarm.count, 1);  // its state when it was raised
  EXPECT_EQ(c[0].alarm.observed, 50);
  EXPECT_EQ(c[1].change, Change::kUpdated);
  EXPECT_EQ(c[1].alarm.id, c[0].alarm.id);
  EXPECT_EQ(c[1].alarm.count, 4);
  EXPECT_EQ(c[1].alarm.start_ms, 1000);
  EXPECT_EQ(c[1].alarm.last_ms, 4000);
  EXPECT_EQ(c[1].alarm.observed, 65);
  EXPECT_EQ(c[1].alarm.severity, Severity::kCritical);  // rose with the third, did not fall back
  EXPECT_EQ(c[1].tenant, t1);

  // A later batch repeats the open alarm: one update, same id.
  c = apply({raise(t1, "d1", "temp", 5000, 80)});
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].change, Change::kUpdated);
  EXPECT_EQ(c[0].alarm.count, 5);
  auto got = store_->getAlarm(t1, c[0].alarm.id);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->count, 5);
}

TEST_F(AlarmOps, AClearInTheSameBatchCarriesTheFinalStateAndANewRaiseOpensANewAlarm) {
  auto c = apply({raise(t1, "d1", "temp", 1000, 50), raise(t1, "d1", "temp", 2000, 60), clear(t1, "d1", "temp", 3000),
                  raise(t1, "d1", "temp", 4000, 90)});
  ASSERT_EQ(c.size(), 3u);
  EXPECT_EQ(c[0].change, Change::kRaised);
  EXPECT_EQ(c[1].change, Change::kCleared);  // no separate update for the repeat before it
  EXPECT_EQ(c[1].alarm.id, c[0].alarm.id);
  EXPECT_EQ(c[1].alarm.count, 2);
  EXPECT_EQ(c[1].alarm.status, AlarmStatus::kCleared);
  EXPECT_EQ(c[1].alarm.cleared_by, "auto");
  ASSERT_TRUE(c[1].alarm.end_ms);
  EXPECT_EQ(*c[1].alarm.end_ms, 3000);
  EXPECT_EQ(c[2].change, Change::kRaised);
  EXPECT_NE(c[2].alarm.id, c[0].alarm.id);
  EXPECT_EQ(c[2].alarm.count, 1);
  EXPECT_EQ(c[2].alarm.status, AlarmStatus::kActive);
}

TEST_F(AlarmOps, AClearWithoutAnOpenAlarmChangesNothing) {
  EXPECT_TRUE(apply({clear(t1, "d1", "temp", 1000)}).empty());
  EXPECT_TRUE(apply({}).empty());
}

TEST_F(AlarmOps, AlarmsAreKeptApartByTenantDeviceAndKey) {
  auto c = apply({raise(t1, "d1", "temp", 1000, 50), raise(t2, "d1", "temp", 1000, 50),
                  raise(t1, "d2", "temp", 1000, 50), raise(t1, "d1", "hum", 1000, 50), clear(t2, "d1", "temp", 2000)});
  ASSERT_EQ(c.size(), 5u);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(c[i].change, Change::kRaised) << i;
  EXPECT_EQ(c[4].change, Change::kCleared);
  EXPECT_EQ(c[4].tenant, t2);
  EXPECT_EQ(c[4].alarm.id, c[1].alarm.id);
  // Tenant 2's clear did not touch tenant 1's alarm of the same device id and key.
  auto a = store_->getAlarm(t1, c[0].alarm.id);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->status, AlarmStatus::kActive);
  EXPECT_FALSE(store_->getAlarm(t2, c[0].alarm.id));  // and is not visible to tenant 2
  auto open1 = store_->countOpen(t1);
  ASSERT_TRUE(open1);
  EXPECT_EQ(*open1, 3u);
}

TEST_F(AlarmOps, AnAcknowledgedAlarmIsStillRepeatedAndClearedByTheEngine) {
  auto c = apply({raise(t1, "d1", "temp", 1000, 50)});
  ASSERT_EQ(c.size(), 1u);
  ASSERT_TRUE(store_->acknowledge(t1, c[0].alarm.id, "user-1", 1500));
  c = apply({raise(t1, "d1", "temp", 2000, 55), clear(t1, "d1", "temp", 3000)});
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].change, Change::kCleared);
  EXPECT_EQ(c[0].alarm.count, 2);
  EXPECT_TRUE(c[0].alarm.acknowledged);
}

}  // namespace
}  // namespace sw::analytics
