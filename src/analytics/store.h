#pragma once
// Definitions of detectors and rules, and alarms, on SQLite (<data_dir>/analytics.sqlite, WAL,
// one connection guarded by a mutex, numbered migrations). Every call takes the tenant, so no
// call reaches another tenant's rows.
//
// Alarms: one open (not cleared) alarm per (source, device, key), enforced by a partial unique
// index; raise() bumps the open one or opens a new one in one transaction.
// Thread-safety: every method may be called from any thread.
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "analytics/detectors/detector.h"
#include "analytics/severity.h"
#include "core/ids.h"
#include "core/status.h"

struct sqlite3;
namespace sw::sqlite {
class StmtCache;
}  // namespace sw::sqlite

namespace sw::analytics {

// Which devices a detector or rule applies to; all given parts must match; empty: every device.
struct DeviceSelector {
  std::vector<std::string> device_ids;
  std::string type;
  std::string label_key;                   // label present ...
  std::optional<std::string> label_value;  // ... with this value
};

struct DetectorDef {
  std::string id;
  std::string name, description;
  DeviceSelector filter;
  std::vector<std::string> keys;
  DetectorKind kind = DetectorKind::kZScore;
  Params params;  // resolved
  double threshold = 0.8;
  Severity severity = Severity::kMajor;
  bool enabled = true;
  std::int64_t version = 1, created_ms = 0, updated_ms = 0;
};

struct RuleDef {
  std::string id;
  std::string name, description;
  DeviceSelector filter;
  std::string condition;
  std::int64_t duration_ms = 0;
  double hysteresis = 0;
  Severity severity = Severity::kMajor;
  bool enabled = true;
  std::string message;  // optional text for the alarm; empty: generated
  std::int64_t version = 1, created_ms = 0, updated_ms = 0;
};

enum class AlarmStatus { kActive, kAcknowledged, kCleared };
std::string_view alarmStatusName(AlarmStatus s);

struct Alarm {
  std::string id;
  std::string tenant_id;
  std::string source_type;  // "detector" | "rule"
  std::string source_id, source_name;
  std::string device_id, device_name;
  std::string key;
  Severity severity = Severity::kMajor;
  AlarmStatus status = AlarmStatus::kActive;
  bool acknowledged = false;
  std::int64_t count = 1;
  std::int64_t start_ms = 0, last_ms = 0;
  std::optional<std::int64_t> end_ms;
  std::string message;
  double observed = 0, expected_lo = 0, expected_hi = 0, score = 0;  // NaN: not applicable
  std::string acked_by;
  std::optional<std::int64_t> acked_ms;
  std::string cleared_by;  // "auto", "deleted" or a user id
  std::optional<std::int64_t> cleared_ms;
};

// What a detector or rule reports when its condition starts (or repeats while the alarm is open).
struct AlarmEvent {
  std::string source_type, source_id, source_name;
  std::string device_id, device_name;
  std::string key;
  Severity severity = Severity::kMajor;
  std::int64_t ts = 0;
  std::string message;
  double observed = 0, expected_lo = 0, expected_hi = 0, score = 0;
};

struct AlarmFilter {
  std::optional<AlarmStatus> status;
  bool open_only = false;  // active or acknowledged
  std::optional<Severity> severity;
  std::string device_id, source_id;
  std::optional<std::int64_t> from, to;  // alarms overlapping [from, to)
  std::size_t page_size = 50;
  std::string cursor;
};

template <typename T>
struct Listing {
  std::vector<T> items;
  std::string next_cursor;  // empty: last page
};

class AnalyticsStore {
 public:
  static Result<std::unique_ptr<AnalyticsStore>> open(const std::string& path, bool sync_full = false);
  ~AnalyticsStore();

  // Detectors and rules. create() assigns id, version 1 and times; update() replaces everything
  // but id/created_ms, bumps version; not_found for another tenant's id.
  Result<DetectorDef> createDetector(const TenantId& tenant, DetectorDef def);
  Result<DetectorDef> getDetector(const TenantId& tenant, const std::string& id);
  Result<DetectorDef> updateDetector(const TenantId& tenant, DetectorDef def);
  Status deleteDetector(const TenantId& tenant, const std::string& id);
  Result<std::vector<DetectorDef>> listDetectors(const TenantId& tenant);

  Result<RuleDef> createRule(const TenantId& tenant, RuleDef def);
  Result<RuleDef> getRule(const TenantId& tenant, const std::string& id);
  Result<RuleDef> updateRule(const TenantId& tenant, RuleDef def);
  Status deleteRule(const TenantId& tenant, const std::string& id);
  Result<std::vector<RuleDef>> listRules(const TenantId& tenant);

  // Every tenant that has at least one detector or rule (engine start).
  Result<std::vector<TenantId>> tenantsWithDefinitions();

  // Alarms, as the engine changes them: a batch of raise / clear operations applied in order in
  // one transaction (one commit per batch rather than per alarm; an alarm storm is a few commits).
  struct AlarmOp {
    enum class Kind : std::uint8_t { kRaise, kClear } kind = Kind::kRaise;
    TenantId tenant;
    // kRaise: the event. A raise of an open (source, device, key) alarm is a repeat: count + 1,
    // latest observation, severity only rises. kClear: source_id, device_id, key and ts; clears
    // the open alarm, if any, as "auto".
    AlarmEvent event;
  };
  enum class Change : std::uint8_t { kRaised, kUpdated, kCleared };
  struct AlarmChange {
    TenantId tenant;
    Change change = Change::kRaised;
    Alarm alarm;  // its state right after the change
  };
  // What the batch changed, in order, for notifications: a new alarm and a cleared one each
  // once; repeats of an alarm collapse into one kUpdated with its state at the end of the batch
  // (or into its kCleared, when the batch also clears it). Nothing is applied on an error.
  Result<std::vector<AlarmChange>> applyAlarmOps(std::span<const AlarmOp> ops);
  // Clears every open alarm of a source (the detector or rule was deleted or disabled).
  Result<std::vector<Alarm>> clearSource(const TenantId& tenant, const std::string& source_id, std::int64_t ts,
                                         const std::string& by);
  // already_exists (-> 409) when already acknowledged / cleared.
  Result<Alarm> acknowledge(const TenantId& tenant, const std::string& id, const std::string& user, std::int64_t ts);
  Result<Alarm> clear(const TenantId& tenant, const std::string& id, const std::string& user, std::int64_t ts);
  Result<Alarm> getAlarm(const TenantId& tenant, const std::string& id);
  Result<Listing<Alarm>> listAlarms(const TenantId& tenant, const AlarmFilter& filter);
  Result<std::size_t> countOpen(const TenantId& tenant);

  Status deleteDevice(const TenantId& tenant, const std::string& device_id);
  Status deleteTenant(const TenantId& tenant);

 private:
  AnalyticsStore() = default;
  Status migrate();
  Result<Alarm> getAlarmLocked(const TenantId& tenant, const std::string& id);
  // One operation of applyAlarmOps, inside its transaction: the id of the alarm changed (empty:
  // a clear found no open alarm) and, for a raise, whether it was created.
  Status raiseLocked(const TenantId& tenant, const AlarmEvent& e, std::string& id, bool& created);
  Status clearOpenLocked(const TenantId& tenant, const AlarmEvent& e, std::string& id);
  Status deleteDefinition(const char* table, const char* noun, const TenantId& tenant, const std::string& id);

  std::mutex mutex_;
  sqlite3* db_ = nullptr;
  std::unique_ptr<sqlite::StmtCache> stmts_;  // the alarm hot path's statements (under mutex_)
};

}  // namespace sw::analytics
