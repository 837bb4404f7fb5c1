#include "analytics/store.h"

#include <fmt/format.h>

#include <cmath>
#include <limits>
#include <unordered_map>

#include "core/clock.h"
#include "storage/backends/sqlite/sqlite_util.h"

namespace sw::analytics {
namespace {

using sqlite::dbError;
using sqlite::exec;
using sqlite::Stmt;
using sqlite::Transaction;

// Numbered migrations; never edit one that has shipped, append a new one.
const char* const kMigrations[] = {
    // 1: detectors, rules, alarms. Filters, keys and params are JSON text (read only here).
    R"sql(
CREATE TABLE detectors (
  id TEXT PRIMARY KEY,
  tenant_id TEXT NOT NULL,
  name TEXT NOT NULL,
  description TEXT NOT NULL DEFAULT '',
  filter_ids TEXT NOT NULL DEFAULT '',
  filter_type TEXT NOT NULL DEFAULT '',
  filter_label_key TEXT NOT NULL DEFAULT '',
  filter_label_value TEXT,
  keys TEXT NOT NULL,
  kind TEXT NOT NULL,
  params TEXT NOT NULL,
  threshold REAL NOT NULL,
  severity TEXT NOT NULL,
  enabled INTEGER NOT NULL,
  version INTEGER NOT NULL,
  created_ms INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL
);
CREATE INDEX detectors_by_tenant ON detectors(tenant_id, name, id);
CREATE TABLE rules (
  id TEXT PRIMARY KEY,
  tenant_id TEXT NOT NULL,
  name TEXT NOT NULL,
  description TEXT NOT NULL DEFAULT '',
  filter_ids TEXT NOT NULL DEFAULT '',
  filter_type TEXT NOT NULL DEFAULT '',
  filter_label_key TEXT NOT NULL DEFAULT '',
  filter_label_value TEXT,
  condition TEXT NOT NULL,
  duration_ms INTEGER NOT NULL,
  hysteresis REAL NOT NULL,
  severity TEXT NOT NULL,
  enabled INTEGER NOT NULL,
  message TEXT NOT NULL DEFAULT '',
  version INTEGER NOT NULL,
  created_ms INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL
);
CREATE INDEX rules_by_tenant ON rules(tenant_id, name, id);
CREATE TABLE alarms (
  id TEXT PRIMARY KEY,
  tenant_id TEXT NOT NULL,
  source_type TEXT NOT NULL,
  source_id TEXT NOT NULL,
  source_name TEXT NOT NULL,
  device_id TEXT NOT NULL,
  device_name TEXT NOT NULL,
  key TEXT NOT NULL,
  severity TEXT NOT NULL,
  status TEXT NOT NULL,
  acknowledged INTEGER NOT NULL DEFAULT 0,
  count INTEGER NOT NULL DEFAULT 1,
  start_ms INTEGER NOT NULL,
  last_ms INTEGER NOT NULL,
  end_ms INTEGER,
  message TEXT NOT NULL,
  observed REAL,
  expected_lo REAL,
  expected_hi REAL,
  score REAL,
  acked_by TEXT NOT NULL DEFAULT '',
  acked_ms INTEGER,
  cleared_by TEXT NOT NULL DEFAULT '',
  cleared_ms INTEGER
);
CREATE UNIQUE INDEX alarms_one_open ON alarms(tenant_id, source_id, device_id, key) WHERE status != 'cleared';
CREATE INDEX alarms_by_start ON alarms(tenant_id, start_ms DESC, id DESC);
CREATE INDEX alarms_by_device ON alarms(tenant_id, device_id, start_ms DESC);
)sql",
};

// Lists and ids are stored as text joined by '\n' (keys and ids never contain control
// characters: ingest refuses them, ids are UUIDs).
std::string joinLines(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) {
    if (!out.empty()) out.push_back('\n');
    out += s;
  }
  return out;
}

std::vector<std::string> splitLines(const std::string& s) {
  std::vector<std::string> out;
  if (s.empty()) return out;
  std::size_t start = 0;
  while (true) {
    auto p = s.find('\n', start);
    out.push_back(s.substr(start, p == std::string::npos ? std::string::npos : p - start));
    if (p == std::string::npos) break;
    start = p + 1;
  }
  return out;
}

// Params as "name=value" lines with full precision.
std::string encodeParams(const Params& p) {
  std::string out;
  for (const auto& [k, v] : p) {
    if (!out.empty()) out.push_back('\n');
    out += fmt::format("{}={}", k, v);
  }
  return out;
}

Params decodeParams(const std::string& s) {
  Params p;
  for (const auto& line : splitLines(s)) {
    auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    p[line.substr(0, eq)] = std::strtod(line.c_str() + eq + 1, nullptr);
  }
  return p;
}

void bindFilter(Stmt& s, int first, const DeviceSelector& f) {
  s.bind(first, joinLines(f.device_ids));
  s.bind(first + 1, f.type);
  s.bind(first + 2, f.label_key);
  if (f.label_value) {
    s.bind(first + 3, *f.label_value);
  } else {
    s.bindNull(first + 3);
  }
}

DeviceSelector readFilter(const Stmt& s, int first) {
  DeviceSelector f;
  f.device_ids = splitLines(s.text(first));
  f.type = s.text(first + 1);
  f.label_key = s.text(first + 2);
  if (!s.isNull(first + 3)) f.label_value = s.text(first + 3);
  return f;
}

Severity readSeverity(const std::string& s) {
  return parseSeverity(s).value_or(Severity::kMajor);
}

constexpr const char* kDetectorCols =
    "id, name, description, filter_ids, filter_type, filter_label_key, filter_label_value, keys, kind, params, "
    "threshold, severity, enabled, version, created_ms, updated_ms";

DetectorDef readDetector(const Stmt& s) {
  DetectorDef d;
  d.id = s.text(0);
  d.name = s.text(1);
  d.description = s.text(2);
  d.filter = readFilter(s, 3);
  d.keys = splitLines(s.text(7));
  d.kind = parseKind(s.text(8)).value_or(DetectorKind::kZScore);
  d.params = decodeParams(s.text(9));
  d.threshold = s.dbl(10);
  d.severity = readSeverity(s.text(11));
  d.enabled = s.i64(12) != 0;
  d.version = s.i64(13);
  d.created_ms = s.i64(14);
  d.updated_ms = s.i64(15);
  return d;
}

constexpr const char* kRuleCols =
    "id, name, description, filter_ids, filter_type, filter_label_key, filter_label_value, condition, duration_ms, "
    "hysteresis, severity, enabled, message, version, created_ms, updated_ms";

RuleDef readRule(const Stmt& s) {
  RuleDef r;
  r.id = s.text(0);
  r.name = s.text(1);
  r.description = s.text(2);
  r.filter = readFilter(s, 3);
  r.condition = s.text(7);
  r.duration_ms = s.i64(8);
  r.hysteresis = s.dbl(9);
  r.severity = readSeverity(s.text(10));
  r.enabled = s.i64(11) != 0;
  r.message = s.text(12);
  r.version = s.i64(13);
  r.created_ms = s.i64(14);
  r.updated_ms = s.i64(15);
  return r;
}

constexpr const char* kAlarmCols =
    "id, tenant_id, source_type, source_id, source_name, device_id, device_name, key, severity, status, "
    "acknowledged, count, start_ms, last_ms, end_ms, message, observed, expected_lo, expected_hi, score, acked_by, "
    "acked_ms, cleared_by, cleared_ms";

// A definition (detector or rule) by id, and all of a tenant's by name: the same queries over
// either table. Callers hold the store's mutex.
template <class Def>
Result<Def> selectDefinition(sqlite3* db, const char* table, const char* cols, const char* noun,
                             Def (*read)(const Stmt&), const TenantId& tenant, const std::string& id) {
  Stmt s(db, fmt::format("SELECT {} FROM {} WHERE tenant_id = ? AND id = ?", cols, table).c_str());
  s.bind(1, tenant.str()).bind(2, id);
  if (s.step() != SQLITE_ROW) return fail(Code::kNotFound, fmt::format("{} not found", noun));
  return read(s);
}

template <class Def>
Result<std::vector<Def>> selectDefinitions(sqlite3* db, const char* table, const char* cols, Def (*read)(const Stmt&),
                                           const TenantId& tenant) {
  Stmt s(db, fmt::format("SELECT {} FROM {} WHERE tenant_id = ? ORDER BY name, id", cols, table).c_str());
  s.bind(1, tenant.str());
  std::vector<Def> out;
  while (s.step() == SQLITE_ROW) out.push_back(read(s));
  if (s.rc() != SQLITE_DONE) return std::unexpected(dbError(db, fmt::format("list {}", table).c_str()));
  return out;
}

double optDouble(const Stmt& s, int col) {
  return s.isNull(col) ? std::numeric_limits<double>::quiet_NaN() : s.dbl(col);
}

void bindOptDouble(Stmt& s, int i, double v) {
  if (std::isfinite(v)) {
    s.bindDouble(i, v);
  } else {
    s.bindNull(i);
  }
}

Alarm readAlarm(const Stmt& s) {
  Alarm a;
  a.id = s.text(0);
  a.tenant_id = s.text(1);
  a.source_type = s.text(2);
  a.source_id = s.text(3);
  a.source_name = s.text(4);
  a.device_id = s.text(5);
  a.device_name = s.text(6);
  a.key = s.text(7);
  a.severity = readSeverity(s.text(8));
  const auto st = s.text(9);
  a.status = st == "cleared"        ? AlarmStatus::kCleared
             : st == "acknowledged" ? AlarmStatus::kAcknowledged
                                    : AlarmStatus::kActive;
  a.acknowledged = s.i64(10) != 0;
  a.count = s.i64(11);
  a.start_ms = s.i64(12);
  a.last_ms = s.i64(13);
  a.end_ms = s.optI64(14);
  a.message = s.text(15);
  a.observed = optDouble(s, 16);
  a.expected_lo = optDouble(s, 17);
  a.expected_hi = optDouble(s, 18);
  a.score = optDouble(s, 19);
  a.acked_by = s.text(20);
  a.acked_ms = s.optI64(21);
  a.cleared_by = s.text(22);
  a.cleared_ms = s.optI64(23);
  return a;
}

}  // namespace

std::string_view alarmStatusName(AlarmStatus s) {
  switch (s) {
    case AlarmStatus::kActive: return "active";
    case AlarmStatus::kAcknowledged: return "acknowledged";
    case AlarmStatus::kCleared: return "cleared";
  }
  return "active";
}

Result<std::unique_ptr<AnalyticsStore>> AnalyticsStore::open(const std::string& path, bool sync_full) {
  std::unique_ptr<AnalyticsStore> store(new AnalyticsStore());
  auto db = sqlite::openDatabase(path, sync_full, kMigrations, "analytics");
  if (!db) return std::unexpected(db.error());
  store->db_ = *db;
  store->stmts_ = std::make_unique<sqlite::StmtCache>();
  return store;
}

AnalyticsStore::~AnalyticsStore() {
  if (stmts_) stmts_->clear();  // finalized before the connection closes
  if (db_) sqlite3_close_v2(db_);
}

// ---- detectors ----

Result<DetectorDef> AnalyticsStore::createDetector(const TenantId& tenant, DetectorDef d) {
  std::lock_guard lock(mutex_);
  d.id = newUuid();
  d.version = 1;
  d.created_ms = d.updated_ms = nowMs();
  Stmt s(db_,
         fmt::format("INSERT INTO detectors(tenant_id, {}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", kDetectorCols)
             .c_str());
  s.bind(1, tenant.str()).bind(2, d.id).bind(3, d.name).bind(4, d.description);
  bindFilter(s, 5, d.filter);
  s.bind(9, joinLines(d.keys)).bind(10, std::string(kindName(d.kind))).bind(11, encodeParams(d.params));
  s.bindDouble(12, d.threshold).bind(13, std::string(severityName(d.severity)));
  s.bind(14, std::int64_t{d.enabled}).bind(15, d.version).bind(16, d.created_ms).bind(17, d.updated_ms);
  if (s.step() != SQLITE_DONE) return std::unexpected(dbError(db_, "create detector"));
  return d;
}

Result<DetectorDef> AnalyticsStore::getDetector(const TenantId& tenant, const std::string& id) {
  std::lock_guard lock(mutex_);
  return selectDefinition(db_, "detectors", kDetectorCols, "detector", readDetector, tenant, id);
}

Result<DetectorDef> AnalyticsStore::updateDetector(const TenantId& tenant, DetectorDef d) {
  std::lock_guard lock(mutex_);
  d.updated_ms = nowMs();
  Stmt s(db_,
         "UPDATE detectors SET name=?, description=?, filter_ids=?, filter_type=?, filter_label_key=?, "
         "filter_label_value=?, keys=?, kind=?, params=?, threshold=?, severity=?, enabled=?, version=version+1, "
         "updated_ms=? WHERE tenant_id=? AND id=? RETURNING version, created_ms");
  s.bind(1, d.name).bind(2, d.description);
  bindFilter(s, 3, d.filter);
  s.bind(7, joinLines(d.keys)).bind(8, std::string(kindName(d.kind))).bind(9, encodeParams(d.params));
  s.bindDouble(10, d.threshold).bind(11, std::string(severityName(d.severity))).bind(12, std::int64_t{d.enabled});
  s.bind(13, d.updated_ms).bind(14, tenant.str()).bind(15, d.id);
  if (s.step() != SQLITE_ROW) return fail(Code::kNotFound, "detector not found");
  d.version = s.i64(0);
  d.created_ms = s.i64(1);
  return d;
}

Status AnalyticsStore::deleteDefinition(const char* table, const char* noun, const TenantId& tenant,
                                        const std::string& id) {
  std::lock_guard lock(mutex_);
  Stmt s(db_, fmt::format("DELETE FROM {} WHERE tenant_id = ? AND id = ?", table).c_str());
  s.bind(1, tenant.str()).bind(2, id);
  if (s.step() != SQLITE_DONE) return std::unexpected(dbError(db_, "delete"));
  if (sqlite3_changes(db_) == 0) return fail(Code::kNotFound, fmt::format("{} not found", noun));
  return ok();
}

Status AnalyticsStore::deleteDetector(const TenantId& tenant, const std::string& id) {
  return deleteDefinition("detectors", "detector", tenant, id);
}

Result<std::vector<DetectorDef>> AnalyticsStore::listDetectors(const TenantId& tenant) {
  std::lock_guard lock(mutex_);
  return selectDefinitions(db_, "detectors", kDetectorCols, readDetector, tenant);
}

// ---- rules ----

Result<RuleDef> AnalyticsStore::createRule(const TenantId& tenant, RuleDef r) {
  std::lock_guard lock(mutex_);
  r.id = newUuid();
  r.version = 1;
  r.created_ms = r.updated_ms = nowMs();
  Stmt s(db_,
         fmt::format("INSERT INTO rules(tenant_id, {}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", kRuleCols).c_str());
  s.bind(1, tenant.str()).bind(2, r.id).bind(3, r.name).bind(4, r.description);
  bindFilter(s, 5, r.filter);
  s.bind(9, r.condition).bind(10, r.duration_ms).bindDouble(11, r.hysteresis);
  s.bind(12, std::string(severityName(r.severity))).bind(13, std::int64_t{r.enabled}).bind(14, r.message);
  s.bind(15, r.version).bind(16, r.created_ms).bind(17, r.updated_ms);
  if (s.step() != SQLITE_DONE) return std::unexpected(dbError(db_, "create rule"));
  return r;
}

Result<RuleDef> AnalyticsStore::getRule(const TenantId& tenant, const std::string& id) {
  std::lock_guard lock(mutex_);
  return selectDefinition(db_, "rules", kRuleCols, "rule", readRule, tenant, id);
}

Result<RuleDef> AnalyticsStore::updateRule(const TenantId& tenant, RuleDef r) {
  std::lock_guard lock(mutex_);
  r.updated_ms = nowMs();
  Stmt s(db_,
         "UPDATE rules SET name=?, description=?, filter_ids=?, filter_type=?, filter_label_key=?, "
         "filter_label_value=?, condition=?, duration_ms=?, hysteresis=?, severity=?, enabled=?, message=?, "
         "version=version+1, updated_ms=? WHERE tenant_id=? AND id=? RETURNING version, created_ms");
  s.bind(1, r.name).bind(2, r.description);
  bindFilter(s, 3, r.filter);
  s.bind(7, r.condition).bind(8, r.duration_ms).bindDouble(9, r.hysteresis);
  s.bind(10, std::string(severityName(r.severity))).bind(11, std::int64_t{r.enabled}).bind(12, r.message);
  s.bind(13, r.updated_ms).bind(14, tenant.str()).bind(15, r.id);
  if (s.step() != SQLITE_ROW) return fail(Code::kNotFound, "rule not found");
  r.version = s.i64(0);
  r.created_ms = s.i64(1);
  return r;
}

Status AnalyticsStore::deleteRule(const TenantId& tenant, const std::string& id) {
  return deleteDefinition("rules", "rule", tenant, id);
}

Result<std::vector<RuleDef>> AnalyticsStore::listRules(const TenantId& tenant) {
  std::lock_guard lock(mutex_);
  return selectDefinitions(db_, "rules", kRuleCols, readRule, tenant);
}

Result<std::vector<TenantId>> AnalyticsStore::tenantsWithDefinitions() {
  std::lock_guard lock(mutex_);
  Stmt s(db_, "SELECT tenant_id FROM detectors UNION SELECT tenant_id FROM rules");
  std::vector<TenantId> out;
  while (s.step() == SQLITE_ROW) out.emplace_back(s.text(0));
  if (s.rc() != SQLITE_DONE) return std::unexpected(dbError(db_, "list tenants"));
  return out;
}

// ---- alarms ----

Result<Alarm> AnalyticsStore::getAlarmLocked(const TenantId& tenant, const std::string& id) {
  static const std::string sql = fmt::format("SELECT {} FROM alarms WHERE tenant_id = ? AND id = ?", kAlarmCols);
  Stmt s(*stmts_, db_, sql);
  s.bind(1, tenant.str()).bind(2, id);
  if (s.step() != SQLITE_ROW) return fail(Code::kNotFound, "alarm not found");
  return readAlarm(s);
}

Result<Alarm> AnalyticsStore::getAlarm(const TenantId& tenant, const std::string& id) {
  std::lock_guard lock(mutex_);
  return getAlarmLocked(tenant, id);
}

Status AnalyticsStore::raiseLocked(const TenantId& tenant, const AlarmEvent& e, std::string& id, bool& created) {
  id.clear();
  created = false;
  {
    // A repeat of an open alarm: one more occurrence; the severity only rises.
    Stmt s(*stmts_, db_,
           "UPDATE alarms SET count = count + 1, last_ms = MAX(last_ms, ?), message = ?, observed = ?, "
           "expected_lo = ?, expected_hi = ?, score = ?, device_name = ?, source_name = ?, "
           "severity = CASE WHEN ? < (CASE severity WHEN 'critical' THEN 0 WHEN 'major' THEN 1 WHEN 'minor' THEN 2 "
           "WHEN 'warning' THEN 3 ELSE 4 END) THEN ? ELSE severity END "
           "WHERE tenant_id = ? AND source_id = ? AND device_id = ? AND key = ? AND status != 'cleared' RETURNING id");
    s.bind(1, e.ts).bind(2, e.message);
    bindOptDouble(s, 3, e.observed);
    bindOptDouble(s, 4, e.expected_lo);
    bindOptDouble(s, 5, e.expected_hi);
    bindOptDouble(s, 6, e.score);
    s.bind(7, e.device_name).bind(8, e.source_name);
    s.bind(9, std::int64_t{static_cast<int>(e.severity)}).bind(10, std::string(severityName(e.severity)));
    s.bind(11, tenant.str()).bind(12, e.source_id).bind(13, e.device_id).bind(14, e.key);
    if (s.step() == SQLITE_ROW) id = s.text(0);
    if (s.rc() != SQLITE_ROW && s.rc() != SQLITE_DONE) return std::unexpected(dbError(db_, "raise alarm"));
  }
  if (!id.empty()) return ok();
  id = newUuid();
  created = true;
  Stmt s(*stmts_, db_,
         "INSERT INTO alarms(id, tenant_id, source_type, source_id, source_name, device_id, device_name, key, "
         "severity, status, acknowledged, count, start_ms, last_ms, message, observed, expected_lo, expected_hi, "
         "score) VALUES (?,?,?,?,?,?,?,?,?,'active',0,1,?,?,?,?,?,?,?)");
  s.bind(1, id).bind(2, tenant.str()).bind(3, e.source_type).bind(4, e.source_id).bind(5, e.source_name);
  s.bind(6, e.device_id).bind(7, e.device_name).bind(8, e.key).bind(9, std::string(severityName(e.severity)));
  s.bind(10, e.ts).bind(11, e.ts).bind(12, e.message);
  bindOptDouble(s, 13, e.observed);
  bindOptDouble(s, 14, e.expected_lo);
  bindOptDouble(s, 15, e.expected_hi);
  bindOptDouble(s, 16, e.score);
  if (s.step() != SQLITE_DONE) return std::unexpected(dbError(db_, "raise alarm"));
  return ok();
}

Status AnalyticsStore::clearOpenLocked(const TenantId& tenant, const AlarmEvent& e, std::string& id) {
  id.clear();
  Stmt s(*stmts_, db_,
         "UPDATE alarms SET status = 'cleared', end_ms = MAX(?, start_ms), cleared_by = 'auto', cleared_ms = ? "
         "WHERE tenant_id = ? AND source_id = ? AND device_id = ? AND key = ? AND status != 'cleared' RETURNING id");
  s.bind(1, e.ts).bind(2, nowMs()).bind(3, tenant.str()).bind(4, e.source_id).bind(5, e.device_id).bind(6, e.key);
  if (s.step() == SQLITE_ROW) id = s.text(0);
  if (s.rc() != SQLITE_ROW && s.rc() != SQLITE_DONE) return std::unexpected(dbError(db_, "clear alarm"));
  return ok();
}

Result<std::vector<AnalyticsStore::AlarmChange>> AnalyticsStore::applyAlarmOps(std::span<const AlarmOp> ops) {
  std::vector<AlarmChange> out;
  if (ops.empty()) return out;
  std::lock_guard lock(mutex_);
  Transaction tx(db_, stmts_.get());
  if (!tx.began()) return std::unexpected(dbError(db_, "store alarms"));
  // Alarms repeated in this batch and not cleared since: one kUpdated each at the end, in the
  // order of their first repeat.
  // Cleared ones keep their place with an empty id.
  std::vector<std::pair<TenantId, std::string>> updated;
  std::unordered_map<std::string, std::size_t> updated_at;  // id -> index in `updated`
  auto snapshot = [&](const TenantId& tenant, const std::string& id, Change change) -> Status {
    auto a = getAlarmLocked(tenant, id);
    if (!a) return std::unexpected(a.error());
    out.push_back(AlarmChange{tenant, change, std::move(*a)});
    return ok();
  };
  std::string id;
  for (const auto& op : ops) {
    if (op.kind == AlarmOp::Kind::kRaise) {
      bool created = false;
      if (auto st = raiseLocked(op.tenant, op.event, id, created); !st) return std::unexpected(st.error());
      if (created) {
        if (auto st = snapshot(op.tenant, id, Change::kRaised); !st) return std::unexpected(st.error());
      } else if (updated_at.emplace(id, updated.size()).second) {
        updated.emplace_back(op.tenant, id);
      }
    } else {
      if (auto st = clearOpenLocked(op.tenant, op.event, id); !st) return std::unexpected(st.error());
      if (id.empty()) continue;
      if (auto it = updated_at.find(id); it != updated_at.end()) {  // the clear carries its state
        updated[it->second].second.clear();
        updated_at.erase(it);
      }
      if (auto st = snapshot(op.tenant, id, Change::kCleared); !st) return std::unexpected(st.error());
    }
  }
  for (const auto& [tenant, uid] : updated) {
    if (uid.empty()) continue;
    if (auto st = snapshot(tenant, uid, Change::kUpdated); !st) return std::unexpected(st.error());
  }
  if (auto st = tx.commit(); !st) return std::unexpected(st.error());
  return out;
}

Result<std::vector<Alarm>> AnalyticsStore::clearSource(const TenantId& tenant, const std::string& source_id,
                                                       std::int64_t ts, const std::string& by) {
  std::lock_guard lock(mutex_);
  std::vector<std::string> ids;
  {
    Stmt s(db_,
           "UPDATE alarms SET status = 'cleared', end_ms = MAX(?, start_ms), cleared_by = ?, cleared_ms = ? "
           "WHERE tenant_id = ? AND source_id = ? AND status != 'cleared' RETURNING id");
    s.bind(1, ts).bind(2, by).bind(3, ts).bind(4, tenant.str()).bind(5, source_id);
    while (s.step() == SQLITE_ROW) ids.push_back(s.text(0));
    if (s.rc() != SQLITE_DONE) return std::unexpected(dbError(db_, "clear alarms"));
  }
  std::vector<Alarm> out;
  for (const auto& id : ids) {
    if (auto a = getAlarmLocked(tenant, id)) out.push_back(std::move(*a));
  }
  return out;
}

Result<Alarm> AnalyticsStore::acknowledge(const TenantId& tenant, const std::string& id, const std::string& user,
                                          std::int64_t ts) {
  std::lock_guard lock(mutex_);
  auto a = getAlarmLocked(tenant, id);
  if (!a) return a;
  if (a->acknowledged) return fail(Code::kAlreadyExists, "the alarm is already acknowledged");
  // A cleared alarm can still be acknowledged (someone saw it); its status stays cleared.
  Stmt s(db_,
         "UPDATE alarms SET acknowledged = 1, acked_by = ?, acked_ms = ?, "
         "status = CASE status WHEN 'active' THEN 'acknowledged' ELSE status END WHERE tenant_id = ? AND id = ?");
  s.bind(1, user).bind(2, ts).bind(3, tenant.str()).bind(4, id);
  if (s.step() != SQLITE_DONE) return std::unexpected(dbError(db_, "acknowledge alarm"));
  return getAlarmLocked(tenant, id);
}

Result<Alarm> AnalyticsStore::clear(const TenantId& tenant, const std::string& id, const std::string& user,
                                    std::int64_t ts) {
  std::lock_guard lock(mutex_);
  auto a = getAlarmLocked(tenant, id);
  if (!a) return a;
  if (a->status == AlarmStatus::kCleared) return fail(Code::kAlreadyExists, "the alarm is already cleared");
  Stmt s(db_,
         "UPDATE alarms SET status = 'cleared', end_ms = MAX(?, start_ms), cleared_by = ?, cleared_ms = ? "
         "WHERE tenant_id = ? AND id = ?");
  s.bind(1, ts).bind(2, user).bind(3, ts).bind(4, tenant.str()).bind(5, id);
  if (s.step() != SQLITE_DONE) return std::unexpected(dbError(db_, "clear alarm"));
  return getAlarmLocked(tenant, id);
}

Result<Listing<Alarm>> AnalyticsStore::listAlarms(const TenantId& tenant, const AlarmFilter& f) {
  auto cursor = sqlite::parseCursor(f.cursor);
  if (!cursor) return std::unexpected(cursor.error());
  std::int64_t after_start = 0;
  if (!f.cursor.empty()) {
    char* end = nullptr;
    after_start = std::strtoll(cursor->first.c_str(), &end, 10);
    if (cursor->first.empty() || *end != '\0') return fail(Code::kInvalidArgument, "malformed cursor", "cursor");
  }
  std::string sql = fmt::format("SELECT {} FROM alarms WHERE tenant_id = ?1", kAlarmCols);
  if (f.status) sql += " AND status = ?2";
  if (f.open_only) sql += " AND status != 'cleared'";
  if (f.severity) sql += " AND severity = ?3";
  if (!f.device_id.empty()) sql += " AND device_id = ?4";
  if (!f.source_id.empty()) sql += " AND source_id = ?5";
  if (f.to) sql += " AND start_ms < ?6";
  if (f.from) sql += " AND (end_ms IS NULL OR end_ms >= ?7)";
  if (!f.cursor.empty()) sql += " AND (start_ms < ?8 OR (start_ms = ?8 AND id < ?9))";
  sql += " ORDER BY start_ms DESC, id DESC LIMIT ?10";
  std::lock_guard lock(mutex_);
  Stmt s(db_, sql.c_str());
  s.bind(1, tenant.str());
  if (f.status) s.bind(2, std::string(alarmStatusName(*f.status)));
  if (f.severity) s.bind(3, std::string(severityName(*f.severity)));
  if (!f.device_id.empty()) s.bind(4, f.device_id);
  if (!f.source_id.empty()) s.bind(5, f.source_id);
  if (f.to) s.bind(6, *f.to);
  if (f.from) s.bind(7, *f.from);
  if (!f.cursor.empty()) s.bind(8, after_start).bind(9, cursor->second);
  s.bind(10, static_cast<std::int64_t>(f.page_size + 1));
  Listing<Alarm> out;
  while (s.step() == SQLITE_ROW) out.items.push_back(readAlarm(s));
  if (s.rc() != SQLITE_DONE) return std::unexpected(dbError(db_, "list alarms"));
  if (out.items.size() > f.page_size) {
    out.items.resize(f.page_size);
    const auto& last = out.items.back();
    out.next_cursor = sqlite::makeCursor(std::to_string(last.start_ms), last.id);
  }
  return out;
}

Result<std::size_t> AnalyticsStore::countOpen(const TenantId& tenant) {
  std::lock_guard lock(mutex_);
  Stmt s(db_, "SELECT COUNT(*) FROM alarms WHERE tenant_id = ? AND status != 'cleared'");
  s.bind(1, tenant.str());
  if (s.step() != SQLITE_ROW) return std::unexpected(dbError(db_, "count alarms"));
  return static_cast<std::size_t>(s.i64(0));
}

Status AnalyticsStore::deleteDevice(const TenantId& tenant, const std::string& device_id) {
  std::lock_guard lock(mutex_);
  Stmt s(db_, "DELETE FROM alarms WHERE tenant_id = ? AND device_id = ?");
  s.bind(1, tenant.str()).bind(2, device_id);
  if (s.step() != SQLITE_DONE) return std::unexpected(dbError(db_, "delete device alarms"));
  return ok();
}

Status AnalyticsStore::deleteTenant(const TenantId& tenant) {
  std::lock_guard lock(mutex_);
  Transaction tx(db_);
  if (!tx.began()) return std::unexpected(dbError(db_, "delete tenant"));
  for (const char* sql : {"DELETE FROM alarms WHERE tenant_id = ?", "DELETE FROM detectors WHERE tenant_id = ?",
                          "DELETE FROM rules WHERE tenant_id = ?"}) {
    Stmt s(db_, sql);
    s.bind(1, tenant.str());
    if (s.step() != SQLITE_DONE) return std::unexpected(dbError(db_, "delete tenant"));
  }
  return tx.commit();
}

}  // namespace sw::analytics
