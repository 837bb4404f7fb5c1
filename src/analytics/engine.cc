#include "analytics/engine.h"

#include <fmt/format.h>

#include <boost/lockfree/queue.hpp>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include "analytics/rules/rule_eval.h"
#include "analytics/stream_logic.h"
#include "core/clock.h"
#include "core/logging.h"
#include "runtime/thread_name.h"

namespace sw::analytics {
namespace {

using Clock = std::chrono::steady_clock;
// Pending alarm raises and clears are applied every kFlushEvery in one transaction; anomaly
// scores are written every kScoreFlushEvery (or at kMaxPendingScores), all devices of the worker
// in one storage commit. Each commit inserts one chunk per device and key into RocksDB's large
// memtable, so fewer, larger commits cost less: 1 s instead of 100 ms took the worker's CPU
// from 80-85 to 69-73 ticks per bench round (bench/bench.py, typical set-up, 4 paired rounds).
// Scores become queryable up to 1 s after their point; barriers (definition changes, deletes,
// shutdown) flush both at once.
constexpr auto kFlushEvery = std::chrono::milliseconds(100);
constexpr auto kScoreFlushEvery = std::chrono::seconds(1);
constexpr auto kTickEvery = std::chrono::seconds(2);
constexpr auto kIdleWait = std::chrono::milliseconds(20);
// A worker that had work within kBusySpell polls its queue every kBusyPoll; only an idle one is
// woken by the producers.
constexpr auto kBusySpell = std::chrono::milliseconds(50);
constexpr auto kBusyPoll = std::chrono::milliseconds(2);
constexpr std::size_t kMaxPendingScores = 32768;
constexpr std::size_t kMaxPendingAlarmOps = 1024;
constexpr std::string_view kScoreSuffix = ".anomaly_score";
constexpr std::string_view kCheckpointMagic = "SWAC1";

struct RuleC {
  RuleDef def;
  Condition cond;
  RuleSpec spec;
};

// The enabled definitions of one tenant, immutable once published.
struct TenantDefs {
  std::uint64_t generation = 0;
  std::vector<std::shared_ptr<const DetectorDef>> detectors;
  std::vector<std::shared_ptr<const RuleC>> rules;
  // Every key a definition reads, numbered: points travel to the workers with the number.
  std::unordered_map<std::string, std::uint32_t> key_ids;
  std::vector<std::string> key_names;
  std::vector<std::string> score_keys;  // "{key}.anomaly_score" by key id

  std::uint32_t addKey(const std::string& k) {
    auto [it, inserted] = key_ids.emplace(k, static_cast<std::uint32_t>(key_names.size()));
    if (inserted) {
      key_names.push_back(k);
      score_keys.push_back(k + std::string(kScoreSuffix));
    }
    return it->second;
  }
  // On the ingest path for every point: a few keys are scanned (a length check rejects most
  // without touching the bytes), which costs less than hashing the key.
  std::optional<std::uint32_t> id(const std::string& k) const {
    if (key_names.size() <= kScanKeys) {
      for (std::uint32_t i = 0; i < key_names.size(); ++i) {
        if (key_names[i] == k) return i;
      }
      return std::nullopt;
    }
    auto it = key_ids.find(k);
    if (it == key_ids.end()) return std::nullopt;
    return it->second;
  }
  static constexpr std::size_t kScanKeys = 8;
};
using Snapshot = std::unordered_map<TenantId, std::shared_ptr<const TenantDefs>>;

struct Pt {
  std::uint32_t key;  // TenantDefs::key_ids of the task's defs
  std::int64_t ts;
  double v;
};

struct Task {
  enum class Kind { kPoints, kRematch, kTenantDeleted, kBarrier } kind = Kind::kPoints;
  TenantId tenant;
  DeviceId device;
  std::string device_name;
  std::shared_ptr<const TenantDefs> defs;  // the definitions the key ids refer to
  std::vector<Pt> points;
  std::promise<void>* barrier = nullptr;
};

// Little-endian length-prefixed fields for checkpoints (a damaged file is untrusted input).
void putU32(std::string& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void putI64(std::string& out, std::int64_t v) {
  auto u = static_cast<std::uint64_t>(v);
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((u >> (8 * i)) & 0xff));
}
void putStr(std::string& out, std::string_view s) {
  putU32(out, static_cast<std::uint32_t>(s.size()));
  out.append(s);
}
struct Reader {
  std::string_view in;
  bool ok = true;
  std::uint32_t u32() {
    if (in.size() < 4) return ok = false, 0;
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= static_cast<std::uint32_t>(static_cast<unsigned char>(in[i])) << (8 * i);
    in.remove_prefix(4);
    return v;
  }
  std::int64_t i64() {
    if (in.size() < 8) return ok = false, 0;
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= static_cast<std::uint64_t>(static_cast<unsigned char>(in[i])) << (8 * i);
    in.remove_prefix(8);
    return static_cast<std::int64_t>(v);
  }
  std::string_view str() {
    auto n = u32();
    if (!ok || in.size() < n) return ok = false, std::string_view{};
    auto s = in.substr(0, n);
    in.remove_prefix(n);
    return s;
  }
};

// One saved instance: which device and definition it belongs to, and its bytes.
enum class InstKind : std::uint32_t { kUni = 1, kMulti = 2, kRule = 3 };
struct Saved {
  std::string device_name;
  InstKind kind = InstKind::kUni;
  std::string def_id;
  std::int64_t version = 0;
  std::string key;
  std::uint32_t edge = 0;
  std::string state;
};
std::string savedKey(InstKind kind, const std::string& def_id, std::int64_t version, const std::string& key) {
  return fmt::format("{}|{}|{}|{}", static_cast<unsigned>(kind), def_id, version, key);
}

}  // namespace

struct Engine::Impl {
  struct UniInst {
    std::shared_ptr<const DetectorDef> def;
    std::string key;
    std::unique_ptr<Detector> det;
    EdgeTracker edge;
  };
  struct MultiInst {
    std::shared_ptr<const DetectorDef> def;
    std::unique_ptr<Detector> det;
    RowAligner aligner;
    EdgeTracker edge;
  };
  struct RuleInst {
    std::shared_ptr<const RuleC> rule;
    RuleState state;
    std::vector<double> values;
    std::int64_t last_ts = INT64_MIN;
    double observed = NAN;
    bool dirty = false;  // a value changed at the current timestamp; evaluated once per timestamp
  };
  struct ScoreOut {
    double last = -1;
    std::int64_t last_ts = INT64_MIN;
  };
  // Where a point of one key goes on its device: univariate instance, position in a
  // multivariate instance, or position in a rule's values.
  struct Route {
    enum class Type : std::uint8_t { kUni, kMulti, kRule } type;
    std::uint32_t index;
    std::uint32_t pos;
  };
  struct DevState {
    TenantId tenant;
    DeviceId device;
    std::string dkey;  // devKey(tenant, device)
    DeviceInfo info;
    std::shared_ptr<const TenantDefs> defs;  // matched against; key ids refer to it
    bool matched = false;
    std::vector<UniInst> uni;
    std::vector<MultiInst> multi;
    std::vector<RuleInst> rules;
    std::vector<std::vector<Route>> routes;               // by key id
    std::unordered_map<std::string, ScoreOut> score_out;  // by key name (survives re-matching)
    std::vector<ScoreOut*> score_by_id;                   // by key id
    std::vector<std::uint32_t> dirty_rules;               // rules to evaluate at the current timestamp
  };
  struct ScoreHit {
    std::uint32_t key;
    std::int64_t ts;
    double score;
    double threshold;
  };

  struct Worker {
    Impl* impl = nullptr;
    std::size_t index = 0;
    boost::lockfree::queue<Task*> queue;
    std::atomic<bool> sleeping{false};
    std::mutex wake_mutex;
    std::condition_variable wake;
    std::thread thread;
    std::unordered_map<std::string, std::unique_ptr<DevState>> devices;
    // Checkpointed instances not claimed yet, by device key then savedKey.
    std::unordered_map<std::string, std::unordered_map<std::string, Saved>> restored;
    std::unordered_map<std::string, std::vector<storage::Point>> pending_scores;  // by device key
    std::size_t pending_count = 0;
    std::vector<ScoreHit> hits;  // scratch
    // Alarm raises and clears since the last flush, applied in one transaction at the next one.
    std::vector<AnalyticsStore::AlarmOp> alarm_ops;

    explicit Worker(std::size_t capacity) : queue(capacity) {}
  };

  const Config& config;
  storage::MetadataStore& metadata;
  storage::TimeSeriesStore& store;
  AnalyticsStore& analytics;
  std::shared_ptr<spdlog::logger> log = logger("analytics");
  std::vector<AlarmSink> sinks;

  std::mutex defs_mutex;  // serialises reloads (writers of snapshot)
  std::atomic<std::shared_ptr<const Snapshot>> snapshot{std::make_shared<const Snapshot>()};
  std::atomic<std::uint64_t> generation{1};

  std::vector<std::unique_ptr<Worker>> workers;
  std::atomic<bool> running{false};
  std::atomic<std::size_t> instances{0};

  Counter& points_in;
  Counter& points_done;
  Counter& queue_waits;
  Counter& alarms_raised;
  Counter& alarms_cleared;
  Counter& series_refused;
  Counter& write_errors;
  Counter& scores_written;
  Counter& checkpoint_errors;

  Impl(const Config& c, storage::MetadataStore& m, storage::TimeSeriesStore& s, AnalyticsStore& a, Metrics& metrics)
      : config(c),
        metadata(m),
        store(s),
        analytics(a),
        points_in(metrics.counter("sw_analytics_points_total", "Points handed to the analytics engine")),
        points_done(metrics.counter("sw_analytics_points_done_total",
                                    "Points the analytics engine has evaluated (the rest are queued)")),
        queue_waits(metrics.counter("sw_analytics_queue_waits_total",
                                    "Times ingest waited for a full analytics queue (backpressure)")),
        alarms_raised(metrics.counter("sw_analytics_alarms_raised_total", "Alarms opened by detectors and rules")),
        alarms_cleared(metrics.counter("sw_analytics_alarms_cleared_total", "Alarms cleared automatically")),
        series_refused(metrics.counter("sw_analytics_series_refused_total",
                                       "Detector instances not created because analytics.max_series was reached")),
        write_errors(metrics.counter("sw_analytics_score_write_errors_total", "Failed writes of anomaly scores")),
        scores_written(metrics.counter("sw_analytics_scores_written_total",
                                       "Points of {key}.anomaly_score series written (after the deadband)")),
        checkpoint_errors(metrics.counter("sw_analytics_checkpoint_errors_total", "Failed checkpoint writes")) {
    metrics.gauge("sw_analytics_series", "Detector and rule instances held by the analytics engine",
                  [this] { return static_cast<double>(instances.load()); });
  }

  static std::string devKey(const TenantId& t, const DeviceId& d) { return t.str() + '/' + d.str(); }
  Worker& workerFor(const DeviceId& d) { return *workers[std::hash<std::string>{}(d.str()) % workers.size()]; }

  // ---- definitions ----

  // nullopt: the definitions could not be read; null: the tenant has no enabled definition.
  std::optional<std::shared_ptr<const TenantDefs>> compile(const TenantId& tenant) {
    auto dets = analytics.listDetectors(tenant);
    auto rules = analytics.listRules(tenant);
    if (!dets || !rules) {
      log->error("msg=\"cannot load analytics definitions; keeping the previous ones\" tenant={} error=\"{}\"",
                 tenant.str(), (!dets ? dets.error() : rules.error()).message);
      return std::nullopt;
    }
    auto defs = std::make_shared<TenantDefs>();
    defs->generation = generation.fetch_add(1) + 1;
    for (auto& d : *dets) {
      if (!d.enabled) continue;
      for (const auto& k : d.keys) defs->addKey(k);
      defs->detectors.push_back(std::make_shared<const DetectorDef>(std::move(d)));
    }
    for (auto& r : *rules) {
      if (!r.enabled) continue;
      auto cond = Condition::parse(r.condition);
      if (!cond) {
        log->warn("msg=\"rule condition does not parse; rule skipped\" rule={} error=\"{}\"", r.id,
                  cond.error().message);
        continue;
      }
      for (const auto& k : cond->keys()) defs->addKey(k);
      auto c = std::make_shared<RuleC>();
      c->spec = RuleSpec{r.duration_ms, r.hysteresis};
      c->def = std::move(r);
      c->cond = std::move(*cond);
      defs->rules.push_back(std::move(c));
    }
    if (defs->detectors.empty() && defs->rules.empty()) return std::shared_ptr<const TenantDefs>();
    return std::shared_ptr<const TenantDefs>(std::move(defs));
  }

  void reload(const TenantId& tenant) {
    std::lock_guard lock(defs_mutex);
    auto defs = compile(tenant);
    if (!defs) return;  // a read error must not wipe the tenant's learned state
    auto next = std::make_shared<Snapshot>(*snapshot.load());
    if (*defs) {
      (*next)[tenant] = std::move(*defs);
    } else {
      next->erase(tenant);
    }
    snapshot.store(std::move(next));
  }

  // ---- enqueue ----

  void push(Worker& w, Task* t) {
    if (!w.queue.bounded_push(t)) {
      queue_waits.inc();
      while (!w.queue.bounded_push(t)) {
        if (!running.load(std::memory_order_acquire)) {  // stopping: the workers are gone
          if (t->barrier) t->barrier->set_value();
          delete t;
          return;
        }
        w.wake.notify_one();
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
    }
    if (w.sleeping.load(std::memory_order_acquire)) w.wake.notify_one();
  }

  void observe(const ingest::DeviceRef& device, std::span<const storage::Point> points) {
    if (!running.load(std::memory_order_acquire)) return;
    auto snap = snapshot.load(std::memory_order_acquire);
    if (snap->empty()) return;
    auto it = snap->find(device.tenant_id);
    if (it == snap->end()) return;
    const auto& defs = *it->second;
    // Collected here first, so that the task (allocated on this thread, freed on the worker's)
    // holds exactly the analysed points, often a small share of the message.
    thread_local std::vector<Pt> matched;
    matched.clear();
    for (const auto& p : points) {
      double v;
      auto key = defs.id(p.key);
      if (!key || !storage::numericValue(p.value, v) || !std::isfinite(v)) continue;
      matched.push_back(Pt{*key, p.ts, v});
    }
    if (matched.empty()) return;
    auto* task = new Task;
    task->tenant = device.tenant_id;
    task->device = device.device_id;
    task->device_name = device.name;
    task->defs = it->second;
    task->points.assign(matched.begin(), matched.end());
    points_in.inc(task->points.size());
    push(workerFor(device.device_id), task);
  }

  void control(Task::Kind kind, const TenantId& tenant, const DeviceId& device) {
    if (!running.load()) return;
    auto* t = new Task;
    t->kind = kind;
    t->tenant = tenant;
    t->device = device;
    push(workerFor(device), t);
  }

  void broadcast(Task::Kind kind, const TenantId& tenant) {
    if (!running.load()) return;
    std::vector<std::promise<void>> done(workers.size());
    for (std::size_t i = 0; i < workers.size(); ++i) {
      auto* t = new Task;
      t->kind = kind;
      t->tenant = tenant;
      t->barrier = &done[i];
      push(*workers[i], t);
    }
    for (auto& p : done) p.get_future().wait();
  }

  // ---- alarms ----

  void emit(const TenantId& tenant, std::string_view event, const Alarm& a) {
    for (const auto& s : sinks) s(tenant, event, a);
  }

  void raise(Worker& w, const DevState& d, AlarmEvent e) {
    w.alarm_ops.push_back(AnalyticsStore::AlarmOp{AnalyticsStore::AlarmOp::Kind::kRaise, d.tenant, std::move(e)});
  }

  void clear(Worker& w, const DevState& d, const std::string& source_id, const std::string& key, std::int64_t ts) {
    AnalyticsStore::AlarmOp op{AnalyticsStore::AlarmOp::Kind::kClear, d.tenant, {}};
    op.event.source_id = source_id;
    op.event.device_id = d.device.str();
    op.event.key = key;
    op.event.ts = ts;
    w.alarm_ops.push_back(std::move(op));
  }

  // Stores the pending raises and clears (one transaction) and notifies their changes.
  void flushAlarms(Worker& w) {
    if (w.alarm_ops.empty()) return;
    auto changes = analytics.applyAlarmOps(w.alarm_ops);
    const auto n = w.alarm_ops.size();
    w.alarm_ops.clear();
    if (!changes) {
      log->error("msg=\"cannot store alarms\" operations={} error=\"{}\"", n, changes.error().message);
      return;
    }
    using C = AnalyticsStore::Change;
    for (const auto& c : *changes) {
      if (c.change == C::kRaised) alarms_raised.inc();
      if (c.change == C::kCleared) alarms_cleared.inc();
      emit(c.tenant,
           c.change == C::kRaised    ? "alarm.raised"
           : c.change == C::kUpdated ? "alarm.updated"
                                     : "alarm.cleared",
           c.alarm);
    }
  }

  void detectorEdge(Worker& w, DevState& d, const DetectorDef& def, EdgeTracker& edge, const std::string& key,
                    std::int64_t ts, double observed, const Verdict& v) {
    switch (edge.update(v.score, def.threshold)) {
      case EdgeTracker::Edge::kRaise:
      case EdgeTracker::Edge::kRepeat: {
        AlarmEvent e;
        e.source_type = "detector";
        e.source_id = def.id;
        e.source_name = def.name;
        e.device_id = d.device.str();
        e.device_name = d.info.name;
        e.key = key;
        e.severity = def.severity;
        e.ts = ts;
        e.message = explainDetector(def, key, observed, v);
        e.observed = observed;
        e.expected_lo = v.expected_lo;
        e.expected_hi = v.expected_hi;
        e.score = v.score;
        raise(w, d, std::move(e));
        break;
      }
      case EdgeTracker::Edge::kClear: clear(w, d, def.id, key, ts); break;
      case EdgeTracker::Edge::kNone: break;
    }
  }

  // ---- matching ----

  bool claim(std::size_t n) {
    if (instances.fetch_add(n) + n > config.analytics_max_series) {
      instances.fetch_sub(n);
      series_refused.inc();
      return false;
    }
    return true;
  }

  void release(const DevState& d) { instances.fetch_sub(d.uni.size() + d.multi.size() + d.rules.size()); }

  // Rebuilds the device's instances for the tenant's current definitions, keeping the state of
  // those whose definition (id and version) still applies and restoring checkpointed ones.
  // Returns false when the device no longer exists.
  enum class Matched { kOk, kGone, kRetry };
  Matched match(Worker& w, DevState& d, const std::shared_ptr<const TenantDefs>& defs, const std::string& dkey) {
    auto dev = metadata.getDevice(d.tenant, d.device);
    if (!dev) {
      if (dev.error().code == Code::kNotFound) return Matched::kGone;
      log->warn("msg=\"cannot read device; its points are not analysed now\" device={} error=\"{}\"", d.device.str(),
                dev.error().message);
      d.matched = false;
      return Matched::kRetry;
    }
    d.info = DeviceInfo{dev->id.str(), dev->name, dev->type, dev->labels};
    d.defs = defs;
    d.matched = true;
    std::vector<UniInst> uni;
    std::vector<MultiInst> multi;
    std::vector<RuleInst> rules;
    auto restoredIt = w.restored.find(dkey);
    auto takeSaved = [&](InstKind kind, const std::string& id, std::int64_t version,
                         const std::string& key) -> std::optional<Saved> {
      if (restoredIt == w.restored.end()) return std::nullopt;
      auto it = restoredIt->second.find(savedKey(kind, id, version, key));
      if (it == restoredIt->second.end()) return std::nullopt;
      Saved s = std::move(it->second);
      restoredIt->second.erase(it);
      return s;
    };
    if (defs) {
      for (const auto& def : defs->detectors) {
        if (!selectorMatches(def->filter, d.info)) continue;
        const bool is_multi = def->kind == DetectorKind::kMultivariate;
        if (is_multi) {
          auto old = std::find_if(d.multi.begin(), d.multi.end(), [&](const MultiInst& m) {
            return m.def->id == def->id && m.def->version == def->version;
          });
          if (old != d.multi.end()) {
            multi.push_back(std::move(*old));
            continue;
          }
          if (!claim(1)) continue;
          auto det = makeDetector(def->kind, def->params, def->keys.size());
          if (!det) {
            instances.fetch_sub(1);
            continue;
          }
          MultiInst m{def, std::move(*det), RowAligner(def->keys.size()), EdgeTracker::forDefinition(*def)};
          if (auto s = takeSaved(InstKind::kMulti, def->id, def->version, "")) {
            if (m.det->load(s->state)) m.edge.unpack(s->edge);
          }
          multi.push_back(std::move(m));
          continue;
        }
        for (const auto& key : def->keys) {
          auto old = std::find_if(d.uni.begin(), d.uni.end(), [&](const UniInst& u) {
            return u.def->id == def->id && u.def->version == def->version && u.key == key;
          });
          if (old != d.uni.end()) {
            uni.push_back(std::move(*old));
            continue;
          }
          if (!claim(1)) continue;
          auto det = makeDetector(def->kind, def->params, 1);
          if (!det) {
            instances.fetch_sub(1);
            continue;
          }
          UniInst u{def, key, std::move(*det), EdgeTracker::forDefinition(*def)};
          if (auto s = takeSaved(InstKind::kUni, def->id, def->version, key)) {
            if (u.det->load(s->state)) u.edge.unpack(s->edge);
          }
          uni.push_back(std::move(u));
        }
      }
      for (const auto& rule : defs->rules) {
        if (!selectorMatches(rule->def.filter, d.info)) continue;
        auto old = std::find_if(d.rules.begin(), d.rules.end(), [&](const RuleInst& r) {
          return r.rule->def.id == rule->def.id && r.rule->def.version == rule->def.version;
        });
        if (old != d.rules.end()) {
          rules.push_back(std::move(*old));
          continue;
        }
        if (!claim(1)) continue;
        RuleInst r{rule, {}, std::vector<double>(rule->cond.keys().size(), NAN)};
        if (auto s = takeSaved(InstKind::kRule, rule->def.id, rule->def.version, "")) {
          Reader rd{s->state};
          auto state = rd.str();
          std::size_t n = rd.u32();
          if (rd.ok && n == r.values.size()) {
            std::vector<double> vals(n);
            for (auto& v : vals) v = std::bit_cast<double>(rd.i64());
            r.last_ts = rd.i64();
            if (rd.ok && r.state.load(state)) r.values = std::move(vals);
          }
        }
        rules.push_back(std::move(r));
      }
    }
    // Instances kept were moved out (null det / rule); count the ones dropped.
    std::size_t dropped = 0;
    for (auto& u : d.uni) dropped += u.det ? 1 : 0;
    for (auto& m : d.multi) dropped += m.det ? 1 : 0;
    for (auto& r : d.rules) dropped += r.rule ? 1 : 0;
    instances.fetch_sub(dropped);
    d.uni = std::move(uni);
    d.multi = std::move(multi);
    d.rules = std::move(rules);
    buildRoutes(d);
    // What was not claimed now belongs to definitions that no longer apply to the device.
    if (restoredIt != w.restored.end()) w.restored.erase(restoredIt);
    return Matched::kOk;
  }

  static void buildRoutes(DevState& d) {
    const std::size_t n = d.defs ? d.defs->key_names.size() : 0;
    d.routes.assign(n, {});
    d.score_by_id.assign(n, nullptr);
    if (!d.defs) return;
    using T = Route::Type;
    for (std::uint32_t i = 0; i < d.uni.size(); ++i) {
      if (auto id = d.defs->id(d.uni[i].key)) d.routes[*id].push_back(Route{T::kUni, i, 0});
    }
    for (std::uint32_t i = 0; i < d.multi.size(); ++i) {
      const auto& keys = d.multi[i].def->keys;
      for (std::uint32_t pos = 0; pos < keys.size(); ++pos) {
        if (auto id = d.defs->id(keys[pos])) d.routes[*id].push_back(Route{T::kMulti, i, pos});
      }
    }
    for (std::uint32_t i = 0; i < d.rules.size(); ++i) {
      const auto& keys = d.rules[i].rule->cond.keys();
      for (std::uint32_t pos = 0; pos < keys.size(); ++pos) {
        if (auto id = d.defs->id(keys[pos])) d.routes[*id].push_back(Route{T::kRule, i, pos});
      }
    }
    for (std::size_t k = 0; k < n; ++k) d.score_by_id[k] = &d.score_out[d.defs->key_names[k]];
  }

  DevState* deviceState(Worker& w, const TenantId& tenant, const DeviceId& device,
                        const std::shared_ptr<const TenantDefs>& defs) {
    const auto dkey = devKey(tenant, device);
    auto it = w.devices.find(dkey);
    if (it == w.devices.end()) {
      auto d = std::make_unique<DevState>();
      d->tenant = tenant;
      d->device = device;
      d->dkey = dkey;
      it = w.devices.emplace(dkey, std::move(d)).first;
    }
    DevState& d = *it->second;
    if (!d.matched || d.defs != defs) {
      switch (match(w, d, defs, dkey)) {
        case Matched::kOk: break;
        case Matched::kRetry: return nullptr;  // matched stays false: tried again at the next point
        case Matched::kGone:
          release(d);
          w.restored.erase(dkey);
          w.pending_scores.erase(dkey);
          std::erase_if(w.alarm_ops, [&](const AnalyticsStore::AlarmOp& op) {
            return op.tenant == d.tenant && op.event.device_id == d.device.str();
          });
          w.devices.erase(it);
          return nullptr;
      }
    }
    return &d;
  }

  // ---- processing ----

  void scoreHit(Worker& w, std::uint32_t key, std::int64_t ts, double score, double threshold) {
    w.hits.push_back(ScoreHit{key, ts, score, threshold});
  }

  // Queues the batch's scores (max per key and time) that pass the deadband for writing.
  void collectScores(Worker& w, DevState& d) {
    if (w.hits.empty()) return;
    // Usually in order already (one scored key, points in time order).
    const auto by_key_ts = [](const ScoreHit& a, const ScoreHit& b) {
      return a.key != b.key ? a.key < b.key : a.ts < b.ts;
    };
    if (!std::is_sorted(w.hits.begin(), w.hits.end(), by_key_ts)) std::sort(w.hits.begin(), w.hits.end(), by_key_ts);
    const auto heartbeat = static_cast<std::int64_t>(config.analytics_score_heartbeat_s) * 1000;
    std::vector<storage::Point>* out = nullptr;
    for (std::size_t i = 0; i < w.hits.size();) {
      std::size_t j = i;
      double score = 0, threshold = 1;
      while (j < w.hits.size() && w.hits[j].key == w.hits[i].key && w.hits[j].ts == w.hits[i].ts) {
        score = std::max(score, w.hits[j].score);
        threshold = std::min(threshold, w.hits[j].threshold);
        ++j;
      }
      ScoreOut& so = *d.score_by_id[w.hits[i].key];
      // Scores below the deadband are "calm" and stored as 0, so noise around 0 writes nothing.
      const double band = config.analytics_score_deadband;
      if (score < band) score = 0;
      const bool crossed = (score >= threshold) != (so.last >= threshold);
      if (so.last < 0 || crossed || std::abs(score - so.last) >= band || w.hits[i].ts - so.last_ts >= heartbeat) {
        so.last = score;
        so.last_ts = w.hits[i].ts;
        if (!out) out = &w.pending_scores[d.dkey];
        out->push_back(storage::Point{w.hits[i].ts, d.defs->score_keys[w.hits[i].key], storage::Value{score}});
        ++w.pending_count;
        scores_written.inc();
      }
      i = j;
    }
    w.hits.clear();
  }

  void onPoint(Worker& w, DevState& d, std::uint32_t key, std::int64_t ts, double value) {
    using T = Route::Type;
    for (const Route& r : d.routes[key]) {
      switch (r.type) {
        case T::kUni: {
          UniInst& u = d.uni[r.index];
          Verdict verdict = u.det->update(ts, std::span<const double>(&value, 1));
          if (!verdict.ready) break;
          scoreHit(w, key, ts, verdict.score, u.def->threshold);
          detectorEdge(w, d, *u.def, u.edge, u.key, ts, value, verdict);
          break;
        }
        case T::kMulti: {
          MultiInst& m = d.multi[r.index];
          if (!m.aligner.add(r.pos, ts, value)) break;
          Verdict verdict = m.det->update(m.aligner.rowTs(), m.aligner.row());
          if (!verdict.ready) break;
          for (const auto& k : m.def->keys) {
            if (auto id = d.defs->id(k)) scoreHit(w, *id, m.aligner.rowTs(), verdict.score, m.def->threshold);
          }
          detectorEdge(w, d, *m.def, m.edge, joinKeys(m.def->keys), m.aligner.rowTs(), value, verdict);
          break;
        }
        case T::kRule: {
          // Values of one timestamp (one message usually carries all keys of a rule) are applied
          // together, then the rule is evaluated once: "a - b > 3" never sees a new a with an old b.
          RuleInst& ri = d.rules[r.index];
          if (ts < ri.last_ts) break;  // late point: the rule state ignores it, so must the values
          ri.values[r.pos] = value;
          if (!ri.dirty) {
            ri.dirty = true;
            d.dirty_rules.push_back(r.index);
          }
          break;
        }
      }
    }
  }

  void evaluateRules(Worker& w, DevState& d, std::int64_t ts) {
    for (const auto index : d.dirty_rules) {
      RuleInst& ri = d.rules[index];
      ri.dirty = false;
      const auto tr = ri.state.update(ri.rule->cond, ri.rule->spec, ts, ri.values);
      ri.last_ts = std::max(ri.last_ts, ts);
      const auto& def = ri.rule->def;
      if (tr == RuleTransition::kRaise) {
        AlarmEvent e;
        e.source_type = "rule";
        e.source_id = def.id;
        e.source_name = def.name;
        e.device_id = d.device.str();
        e.device_name = d.info.name;
        e.key = joinKeys(ri.rule->cond.keys());
        e.severity = def.severity;
        e.ts = ts;
        e.observed = ri.rule->cond.observed(ri.values);
        e.message = explainRule(def, e.observed);
        e.expected_lo = e.expected_hi = e.score = NAN;
        raise(w, d, std::move(e));
      } else if (tr == RuleTransition::kClear) {
        clear(w, d, def.id, joinKeys(ri.rule->cond.keys()), ts);
      }
    }
    d.dirty_rules.clear();
  }

  void processPoints(Worker& w, Task& t, const std::shared_ptr<const Snapshot>& snap) {
    auto it = snap->find(t.tenant);
    std::shared_ptr<const TenantDefs> defs = it == snap->end() ? nullptr : it->second;
    if (!defs) {
      // No definitions any more: forget the device's state.
      auto d = w.devices.find(devKey(t.tenant, t.device));
      if (d != w.devices.end()) {
        release(*d->second);
        w.devices.erase(d);
      }
      return;
    }
    DevState* d = deviceState(w, t.tenant, t.device, defs);
    if (!d) return;
    std::int64_t group_ts = INT64_MIN;
    for (const auto& p : t.points) {
      if (p.ts != group_ts) {
        if (!d->dirty_rules.empty()) evaluateRules(w, *d, group_ts);
        group_ts = p.ts;
      }
      if (t.defs == defs) {
        onPoint(w, *d, p.key, p.ts, p.v);
      } else if (auto id = defs->id(t.defs->key_names[p.key])) {
        onPoint(w, *d, *id, p.ts, p.v);  // enqueued under other definitions: translated by name
      }
    }
    if (!d->dirty_rules.empty()) evaluateRules(w, *d, group_ts);
    collectScores(w, *d);
  }

  void tick(Worker& w) {
    const auto now = nowMs();
    // Silent devices are re-matched here (others are at their next point), so that a deleted or
    // changed inactivity detector stops ticking.
    auto snap = snapshot.load(std::memory_order_acquire);
    std::vector<std::pair<TenantId, DeviceId>> stale;
    for (auto& [dkey, d] : w.devices) {
      auto it = snap->find(d->tenant);
      if (it == snap->end() || it->second != d->defs) stale.emplace_back(d->tenant, d->device);
    }
    for (const auto& [tenant, device] : stale) {
      auto it = snap->find(tenant);
      if (it != snap->end()) {
        (void)deviceState(w, tenant, device, it->second);
      } else if (auto d = w.devices.find(devKey(tenant, device)); d != w.devices.end()) {
        release(*d->second);
        w.devices.erase(d);
      }
    }
    for (auto& [dkey, d] : w.devices) {
      if (!d->defs || !d->matched) continue;
      for (auto& u : d->uni) {
        if (u.def->kind != DetectorKind::kMissing) continue;
        Verdict v = u.det->tick(now);
        if (!v.ready) continue;
        auto id = d->defs->id(u.key);
        if (id && (v.score > 0 || u.edge.open())) scoreHit(w, *id, now, v.score, u.def->threshold);
        detectorEdge(w, *d, *u.def, u.edge, u.key, now, NAN, v);
      }
      collectScores(w, *d);
    }
  }

  // All pending scores in one commit (one storage write per device would cost the engine more
  // than computing the scores).
  void flushScores(Worker& w) {
    if (w.pending_scores.empty()) return;
    std::vector<std::pair<TenantId, DeviceId>> ids;
    ids.reserve(w.pending_scores.size());  // DeviceBatch points into it: no reallocation
    std::vector<storage::TimeSeriesStore::DeviceBatch> batches;
    batches.reserve(w.pending_scores.size());
    for (const auto& [dkey, points] : w.pending_scores) {
      if (points.empty()) continue;
      const auto slash = dkey.find('/');
      const auto& [tenant, device] =
          ids.emplace_back(TenantId(dkey.substr(0, slash)), DeviceId(dkey.substr(slash + 1)));
      batches.push_back({&tenant, &device, points});
    }
    if (auto st = store.writeMany(batches); !st) {
      write_errors.inc();
      log->warn("msg=\"cannot write anomaly scores\" points={} error=\"{}\"", w.pending_count, st.error().message);
    }
    w.pending_scores.clear();
    w.pending_count = 0;
  }

  // ---- checkpoints ----

  std::filesystem::path checkpointDir() const { return std::filesystem::path(config.data_dir) / "analytics"; }

  void saveRecord(std::string& out, const DevState& d, InstKind kind, const std::string& def_id, std::int64_t version,
                  const std::string& key, std::uint32_t edge, const std::string& state) {
    std::string rec;
    putStr(rec, d.tenant.str());
    putStr(rec, d.device.str());
    putStr(rec, d.info.name);
    putU32(rec, static_cast<std::uint32_t>(kind));
    putStr(rec, def_id);
    putI64(rec, version);
    putStr(rec, key);
    putU32(rec, edge);
    putStr(rec, state);
    putStr(out, rec);
  }

  void checkpoint(Worker& w) {
    std::string out(kCheckpointMagic);
    std::string state;
    for (const auto& [dkey, d] : w.devices) {
      for (const auto& u : d->uni) {
        state.clear();
        u.det->save(state);
        saveRecord(out, *d, InstKind::kUni, u.def->id, u.def->version, u.key, u.edge.packed(), state);
      }
      for (const auto& m : d->multi) {
        state.clear();
        m.det->save(state);
        saveRecord(out, *d, InstKind::kMulti, m.def->id, m.def->version, "", m.edge.packed(), state);
      }
      for (const auto& r : d->rules) {
        std::string rs;
        r.state.save(rs);
        state.clear();
        putStr(state, rs);
        putU32(state, static_cast<std::uint32_t>(r.values.size()));
        for (double v : r.values) putI64(state, std::bit_cast<std::int64_t>(v));
        putI64(state, r.last_ts);
        saveRecord(out, *d, InstKind::kRule, r.rule->def.id, r.rule->def.version, "", 0, state);
      }
    }
    // Restored instances of devices not matched yet (their tenant has no definitions now, or the
    // device could not be read) are kept for the next start.
    for (const auto& [dkey, saved] : w.restored) {
      auto slash = dkey.find('/');
      DevState tmp;
      tmp.tenant = TenantId(dkey.substr(0, slash));
      tmp.device = DeviceId(dkey.substr(slash + 1));
      for (const auto& [skey, sv] : saved) {
        tmp.info.name = sv.device_name;
        saveRecord(out, tmp, sv.kind, sv.def_id, sv.version, sv.key, sv.edge, sv.state);
      }
    }
    std::error_code ec;
    std::filesystem::create_directories(checkpointDir(), ec);
    const auto path = checkpointDir() / fmt::format("worker-{}.ckpt", w.index);
    const auto tmp = checkpointDir() / fmt::format("worker-{}.ckpt.tmp", w.index);
    {
      std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
      f.write(out.data(), static_cast<std::streamsize>(out.size()));
      f.flush();
      if (!f) {
        checkpoint_errors.inc();
        log->error("msg=\"cannot write analytics checkpoint\" path={}", tmp.string());
        return;
      }
    }
    std::filesystem::rename(tmp, path, ec);
    if (ec) {
      checkpoint_errors.inc();
      log->error("msg=\"cannot write analytics checkpoint\" path={} error=\"{}\"", path.string(), ec.message());
    }
  }

  // Reads every worker-*.ckpt (the worker count may have changed) and hands each record to the
  // worker that owns its device now.
  void loadCheckpoints() {
    std::error_code ec;
    if (!std::filesystem::exists(checkpointDir(), ec)) return;
    std::size_t records = 0, bad_files = 0;
    for (const auto& entry : std::filesystem::directory_iterator(checkpointDir(), ec)) {
      const auto name = entry.path().filename().string();
      if (!name.starts_with("worker-") || !name.ends_with(".ckpt")) continue;
      std::ifstream f(entry.path(), std::ios::binary);
      std::string data((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
      if (!std::string_view(data).starts_with(kCheckpointMagic)) {
        ++bad_files;
        continue;
      }
      Reader file{std::string_view(data).substr(kCheckpointMagic.size())};
      while (!file.in.empty()) {
        Reader r{file.str()};
        if (!file.ok) {
          ++bad_files;
          break;
        }
        TenantId tenant{std::string(r.str())};
        DeviceId device{std::string(r.str())};
        Saved s;
        s.device_name = r.str();
        const auto kind = r.u32();
        s.def_id = r.str();
        s.version = r.i64();
        s.key = r.str();
        s.edge = r.u32();
        s.state = r.str();
        if (!r.ok || kind < 1 || kind > 3) continue;
        s.kind = static_cast<InstKind>(kind);
        auto& w = workerFor(device);
        const auto skey = savedKey(s.kind, s.def_id, s.version, s.key);
        w.restored[devKey(tenant, device)][skey] = std::move(s);
        ++records;
      }
    }
    if (records || bad_files) {
      log->info("msg=\"analytics state restored\" instances={} damaged_files={}", records, bad_files);
    }
  }

  // ---- worker loop ----

  void run(Worker& w) {
    auto next_flush = Clock::now() + kFlushEvery;
    auto next_score_flush = Clock::now() + kScoreFlushEvery;
    auto last_work = Clock::now() - kBusySpell;
    auto next_tick = Clock::now() + kTickEvery;
    auto next_checkpoint = Clock::now() + std::chrono::seconds(config.analytics_checkpoint_s);
    // Devices with restored state are matched at once, so that inactivity detectors run for
    // devices that stay silent after the restart.
    {
      std::vector<std::string> keys;
      for (const auto& [k, v] : w.restored) keys.push_back(k);
      auto snap = snapshot.load();
      for (const auto& k : keys) {
        auto slash = k.find('/');
        TenantId tenant(k.substr(0, slash));
        auto it = snap->find(tenant);
        if (it == snap->end()) continue;
        (void)deviceState(w, tenant, DeviceId(k.substr(slash + 1)), it->second);
      }
    }
    while (true) {
      std::size_t done = 0;
      Task* t = nullptr;
      auto snap = snapshot.load(std::memory_order_acquire);
      while (done < 1024 && w.queue.pop(t)) {
        std::unique_ptr<Task> task(t);
        ++done;
        switch (task->kind) {
          case Task::Kind::kPoints:
            processPoints(w, *task, snap);
            points_done.inc(task->points.size());
            break;
          case Task::Kind::kRematch: {
            auto it = w.devices.find(devKey(task->tenant, task->device));
            if (it != w.devices.end()) it->second->matched = false;  // re-read at its next point
            auto defs = snap->find(task->tenant);
            if (it != w.devices.end() && defs != snap->end()) {
              (void)deviceState(w, task->tenant, task->device, defs->second);
            }
            break;
          }
          case Task::Kind::kTenantDeleted: {
            for (auto it = w.devices.begin(); it != w.devices.end();) {
              if (it->second->tenant == task->tenant) {
                release(*it->second);
                it = w.devices.erase(it);
              } else {
                ++it;
              }
            }
            const auto prefix = task->tenant.str() + '/';
            std::erase_if(w.restored, [&](const auto& kv) { return kv.first.starts_with(prefix); });
            std::erase_if(w.pending_scores, [&](const auto& kv) { return kv.first.starts_with(prefix); });
            std::erase_if(w.alarm_ops, [&](const AnalyticsStore::AlarmOp& op) { return op.tenant == task->tenant; });
            break;
          }
          case Task::Kind::kBarrier: break;
        }
        if (task->kind == Task::Kind::kBarrier || task->kind == Task::Kind::kTenantDeleted) {
          flushScores(w);
          flushAlarms(w);
          task->barrier->set_value();
          break;  // tasks after a barrier see the definitions current after it
        }
      }
      const auto now = Clock::now();
      if (now >= next_flush || w.alarm_ops.size() >= kMaxPendingAlarmOps) {
        flushAlarms(w);
        next_flush = now + kFlushEvery;
      }
      if (now >= next_score_flush || w.pending_count >= kMaxPendingScores) {
        flushScores(w);
        next_score_flush = now + kScoreFlushEvery;
      }
      if (now >= next_tick) {
        tick(w);
        next_tick = now + kTickEvery;
      }
      if (now >= next_checkpoint) {
        checkpoint(w);
        next_checkpoint = now + std::chrono::seconds(config.analytics_checkpoint_s);
      }
      if (done > 0) {
        last_work = now;
        continue;
      }
      if (!running.load(std::memory_order_acquire) && w.queue.empty()) break;
      std::unique_lock lock(w.wake_mutex);
      if (now - last_work < kBusySpell) {
        // Busy: poll again shortly instead of being woken for every batch (no futex wake on the
        // ingest threads, a few hundred wake-ups a second at most).
        w.wake.wait_for(lock, kBusyPoll);
        continue;
      }
      w.sleeping.store(true, std::memory_order_release);
      if (w.queue.empty()) w.wake.wait_for(lock, kIdleWait);
      w.sleeping.store(false, std::memory_order_release);
    }
    flushScores(w);
    flushAlarms(w);
    checkpoint(w);
  }
};

Engine::Engine(const Config& config, storage::MetadataStore& metadata, storage::TimeSeriesStore& store,
               AnalyticsStore& analytics, Metrics& metrics)
    : impl_(std::make_unique<Impl>(config, metadata, store, analytics, metrics)) {}

Engine::~Engine() {
  stop();
}

void Engine::addAlarmSink(AlarmSink sink) {
  impl_->sinks.push_back(std::move(sink));
}

Status Engine::start() {
  auto& m = *impl_;
  if (m.running.load()) return ok();
  auto tenants = m.analytics.tenantsWithDefinitions();
  if (!tenants) return std::unexpected(tenants.error());
  for (const auto& t : *tenants) m.reload(t);
  const auto capacity = std::min<std::size_t>(m.config.analytics_queue_batches, 65534);
  for (std::size_t i = 0; i < m.config.analytics_workers; ++i) {
    auto w = std::make_unique<Impl::Worker>(capacity);
    w->impl = &m;
    w->index = i;
    m.workers.push_back(std::move(w));
  }
  // Files of workers that no longer exist (fewer workers now) are read, then removed.
  m.loadCheckpoints();
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(m.checkpointDir(), ec)) {
    const auto name = entry.path().filename().string();
    unsigned idx = 0;
    if (std::sscanf(name.c_str(), "worker-%u.ckpt", &idx) == 1 && idx >= m.workers.size()) {
      std::filesystem::remove(entry.path(), ec);
    }
  }
  m.running.store(true);
  for (auto& w : m.workers) {
    Impl::Worker* wp = w.get();
    w->thread = std::thread([&m, wp] {
      // Named for top -H, perf and the benchmark's per-thread CPU figures (15 characters at most).
      runtime::nameThisThread("sw-analytics-" + std::to_string(wp->index % 100));
      m.run(*wp);
    });
  }
  return ok();
}

void Engine::stop() {
  auto& m = *impl_;
  if (!m.running.exchange(false)) return;
  for (auto& w : m.workers) {
    w->wake.notify_one();
    if (w->thread.joinable()) w->thread.join();
  }
  // Anything pushed after the workers saw running == false (a racing observe) is dropped here.
  for (auto& w : m.workers) {
    Task* t = nullptr;
    while (w->queue.pop(t)) {
      if (t->barrier) t->barrier->set_value();
      delete t;
    }
  }
}

void Engine::observe(const ingest::DeviceRef& device, std::span<const storage::Point> points) {
  impl_->observe(device, points);
}

void Engine::reloadTenant(const TenantId& tenant) {
  impl_->reload(tenant);
}

void Engine::deviceChanged(const TenantId& tenant, const DeviceId& device) {
  impl_->control(Task::Kind::kRematch, tenant, device);
}

void Engine::tenantDeleted(const TenantId& tenant) {
  impl_->reload(tenant);
  impl_->broadcast(Task::Kind::kTenantDeleted, tenant);
}

void Engine::publish(const TenantId& tenant, std::string_view event, const Alarm& alarm) {
  impl_->emit(tenant, event, alarm);
}

void Engine::drain() {
  impl_->broadcast(Task::Kind::kBarrier, TenantId());
}

}  // namespace sw::analytics
