// Detector micro-benchmark and evaluation (issue 5), run by `make bench` (bench/run.sh):
//   1. throughput: points per second on one core for each detector kind (default parameters),
//      time-bounded (~1 s or 10 M points per kind); the multivariate kind over 3 keys;
//   2. evaluation: every kind x every anomaly type of the generator (+ clean series) over N
//      seeds: precision, recall, F1, NAB-style score, false alarms per 10k points, delay.
// Prints markdown tables and writes the numbers as JSON.
//
//   bench_detectors [--out PATH] [--seeds N] [--seconds S] [--max-points N]
//                   [--only throughput|eval|params]
// (--only params prints the kinds' parameter tables from kindInfos(), for docs/analytics.md.)
// PATH defaults to $BENCH_DETECTORS_OUT, else bench/results/detectors-latest.json (relative to
// the working directory); "-" writes no file.
#include <time.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "analytics/detectors/detector.h"
#include "analytics/eval/generator.h"
#include "analytics/eval/scorer.h"

namespace {

using namespace sw::analytics;
using namespace sw::analytics::eval;
using Clock = std::chrono::steady_clock;

struct Args {
  std::string out;
  std::size_t seeds = 20;
  double seconds = 1.0;
  std::size_t max_points = 10'000'000;
  bool throughput = true;
  bool evaluation = true;
  bool params = false;
};

struct Throughput {
  std::string kind;
  std::size_t dims = 1;
  std::size_t points = 0;
  double seconds = 0;      // wall clock
  double cpu_seconds = 0;  // this thread's CPU time: what ns/point and Mpts/s are computed from
  std::size_t memory_bytes = 0;
  double nsPerPoint() const { return points == 0 ? NAN : cpu_seconds * 1e9 / static_cast<double>(points); }
  double mptsPerSecond() const { return cpu_seconds <= 0 ? NAN : static_cast<double>(points) / cpu_seconds / 1e6; }
};

struct EvalRow {
  std::string kind;
  std::string type;
  Counts counts;
};

std::string num(double v, int decimals) {
  if (!std::isfinite(v)) return "–";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::string jsonNum(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

std::string cpuModel() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      auto p = line.find(':');
      if (p != std::string::npos) return line.substr(p + 2);
    }
  }
  return "unknown";
}

// The 1-minute load average: the throughput is one core's only when the machine is otherwise idle.
double loadAverage() {
  std::ifstream in("/proc/loadavg");
  double l = NAN;
  in >> l;
  return l;
}

std::string jsonEscape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\';
    if (static_cast<unsigned char>(c) < 0x20) continue;
    o += c;
  }
  return o;
}

double threadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// Feeds a long series (a generated clean day with spikes, cycled with increasing timestamps)
// until `seconds` of CPU time have passed or max_points were fed; times in batches so the clock
// is read rarely. CPU time rather than wall time: on a shared machine the thread is preempted,
// which is not the detector's cost.
Throughput measure(const KindInfo& info, const Args& args) {
  Throughput r;
  r.kind = std::string(kindName(info.kind));
  r.dims = info.multivariate ? 3 : 1;
  GenOptions o = standardOptions(AnomalyType::kSpike);
  o.points = 1 << 16;
  o.anomalies = 20;
  o.keys = r.dims;
  const LabelledSeries s = generate(AnomalyType::kSpike, o, 1);
  const std::size_t n = s.size();
  std::vector<double> flat(n * r.dims);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t k = 0; k < r.dims; ++k) flat[i * r.dims + k] = s.values[k][i];

  auto params = resolveParams(info.kind, {});
  auto det = makeDetector(info.kind, *params, r.dims);
  if (!det) {
    std::fprintf(stderr, "bench_detectors: %s: %s\n", r.kind.c_str(), det.error().message.c_str());
    return r;
  }
  Detector& d = **det;
  constexpr std::size_t kBatch = 1 << 14;
  double sink = 0;
  std::int64_t ts = o.start_ms;
  std::size_t i = 0;
  const auto t0 = Clock::now();
  const double c0 = threadCpuSeconds();
  double c1 = c0;
  while (r.points < args.max_points) {
    for (std::size_t b = 0; b < kBatch; ++b) {
      ts += o.interval_ms;
      sink += d.update(ts, std::span<const double>(&flat[i * r.dims], r.dims)).score;
      if (++i == n) i = 0;
    }
    r.points += kBatch;
    c1 = threadCpuSeconds();
    if (c1 - c0 >= args.seconds) break;
  }
  r.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  r.cpu_seconds = c1 - c0;
  r.memory_bytes = d.memoryBytes();
  if (sink == -1) std::printf("%f\n", sink);  // keeps the scores alive
  return r;
}

struct Column {
  AnomalyType type;
  bool seasonal;
  std::string name;
};

std::vector<Column> columns() {
  std::vector<Column> c;
  for (AnomalyType t : anomalyTypes()) c.push_back({t, false, std::string(anomalyName(t))});
  c.push_back({AnomalyType::kNone, false, "clean"});
  c.push_back({AnomalyType::kNone, true, "clean_seasonal"});
  return c;
}

void printTable(const std::vector<EvalRow>& rows, const std::vector<Column>& cols, const char* title, bool with_clean,
                auto&& cell) {
  std::printf("\n%s\n\n| detector |", title);
  for (const Column& c : cols)
    if (with_clean || c.type != AnomalyType::kNone) std::printf(" %s |", c.name.c_str());
  std::printf("\n|---|");
  for (const Column& c : cols)
    if (with_clean || c.type != AnomalyType::kNone) std::printf("---:|");
  std::printf("\n");
  std::string kind;
  std::size_t col = 0;
  for (const EvalRow& r : rows) {
    if (r.kind != kind) {
      if (!kind.empty()) std::printf("\n");
      kind = r.kind;
      col = 0;
      std::printf("| %s |", kind.c_str());
    }
    const Column& c = cols[col++];
    if (with_clean || c.type != AnomalyType::kNone) std::printf(" %s |", cell(r.counts).c_str());
  }
  std::printf("\n");
}

std::string fmtNumber(double v) {
  char buf[40];
  if (v == std::floor(v) && std::abs(v) < 1e10) {
    std::snprintf(buf, sizeof buf, "%.0f", v);
    return buf;
  }
  for (int prec = 1; prec <= 17; ++prec) {
    std::snprintf(buf, sizeof buf, "%.*g", prec, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

void printParams() {
  for (const KindInfo& k : kindInfos()) {
    std::printf("### %s: %.*s\n\n%.*s\n\nDefault threshold %s%s.\n\n", std::string(kindName(k.kind)).c_str(),
                static_cast<int>(k.title.size()), k.title.data(), static_cast<int>(k.description.size()),
                k.description.data(), fmtNumber(k.default_threshold).c_str(),
                k.multivariate ? "; takes 2 or more keys at once" : "");
    if (k.params.empty()) {
      std::printf("No parameters.\n\n");
      continue;
    }
    std::printf("| parameter | default | range | meaning |\n|---|---:|---|---|\n");
    for (const ParamSpec& p : k.params) {
      std::printf("| `%.*s` | %s | %s .. %s%s | %.*s |\n", static_cast<int>(p.name.size()), p.name.data(),
                  fmtNumber(p.default_value).c_str(), fmtNumber(p.min).c_str(), fmtNumber(p.max).c_str(),
                  p.integer ? ", whole" : "", static_cast<int>(p.description.size()), p.description.data());
    }
    std::printf("\n");
  }
}

int run(const Args& args) {
  if (args.params) {
    printParams();
    return 0;
  }
  std::vector<Throughput> tput;
  std::vector<EvalRow> rows;
  const auto& kinds = kindInfos();

  const double load_before = loadAverage();
  if (args.throughput) {
    std::printf(
        "## Detector throughput (one core, default parameters; per CPU-second of the thread; load average %.2f "
        "before)\n\n",
        load_before);
    std::printf("| detector | keys | points | ns/point | Mpts/s | state bytes |\n|---|---:|---:|---:|---:|---:|\n");
    for (const KindInfo& k : kinds) {
      Throughput t = measure(k, args);
      std::printf("| %s | %zu | %zu | %s | %s | %zu |\n", t.kind.c_str(), t.dims, t.points,
                  num(t.nsPerPoint(), 1).c_str(), num(t.mptsPerSecond(), 2).c_str(), t.memory_bytes);
      std::fflush(stdout);
      tput.push_back(t);
    }
  }

  const std::vector<Column> cols = columns();
  double eval_seconds = 0;
  if (args.evaluation) {
    const auto t0 = Clock::now();
    for (const KindInfo& k : kinds) {
      for (const Column& c : cols) {
        auto counts = evaluate(k.kind, c.type, standardOptions(c.type, c.seasonal), 1, args.seeds);
        if (!counts) {
          std::fprintf(stderr, "bench_detectors: %s on %s: %s\n", std::string(kindName(k.kind)).c_str(), c.name.c_str(),
                       counts.error().message.c_str());
          return 1;
        }
        rows.push_back({std::string(kindName(k.kind)), c.name, *counts});
      }
    }
    eval_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    std::printf("\n## Evaluation (%zu seeds per cell, default parameters and thresholds, tolerance 10 intervals)\n",
                args.seeds);
    printTable(rows, cols, "Recall (share of labelled windows detected):", false,
               [](const Counts& c) { return num(c.recall(), 2); });
    printTable(rows, cols, "Precision (detected windows / (detected + false alarms)):", false,
               [](const Counts& c) { return num(c.precision(), 2); });
    printTable(rows, cols, "F1:", false, [](const Counts& c) { return num(c.f1(), 2); });
    printTable(rows, cols, "NAB-style score (100 = perfect, 0 = never alarms, negative = worse than silence):", false,
               [](const Counts& c) { return num(c.nab(), 1); });
    printTable(rows, cols, "False alarms per 10k points (alarm events outside every labelled window):", true,
               [](const Counts& c) { return num(c.fpPer10k(), 2); });
    printTable(rows, cols, "Mean delay of the first alarm after the window start, in minutes (1 point = 1 min):", false,
               [](const Counts& c) { return num(c.meanDelayMs() / 60000.0, 1); });
    std::printf("\n(evaluation took %.1f s)\n", eval_seconds);
  }

  if (args.out == "-") return 0;
  std::ostringstream j;
  const std::time_t now = std::time(nullptr);
  char date[32];
  std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  j << "{\n  \"generated_by\": \"bench_detectors\",\n  \"date\": \"" << date << "\",\n  \"cpu\": \""
    << jsonEscape(cpuModel()) << "\",\n  \"load_average_before\": " << jsonNum(load_before)
    << ",\n  \"load_average_after\": " << jsonNum(loadAverage()) << ",\n  \"seeds\": " << args.seeds
    << ",\n  \"tolerance_intervals\": 10,\n";
  j << "  \"throughput\": [";
  for (std::size_t i = 0; i < tput.size(); ++i) {
    const Throughput& t = tput[i];
    j << (i ? "," : "") << "\n    {\"kind\": \"" << t.kind << "\", \"keys\": " << t.dims << ", \"points\": " << t.points
      << ", \"seconds\": " << jsonNum(t.seconds) << ", \"cpu_seconds\": " << jsonNum(t.cpu_seconds)
      << ", \"ns_per_point\": " << jsonNum(t.nsPerPoint()) << ", \"mpts_per_s\": " << jsonNum(t.mptsPerSecond())
      << ", \"memory_bytes\": " << t.memory_bytes << "}";
  }
  j << (tput.empty() ? "" : "\n  ") << "],\n  \"evaluation\": [";
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const EvalRow& r = rows[i];
    const Counts& c = r.counts;
    j << (i ? "," : "") << "\n    {\"kind\": \"" << r.kind << "\", \"type\": \"" << r.type
      << "\", \"series\": " << c.series << ", \"points\": " << c.points << ", \"windows\": " << c.windows
      << ", \"detected\": " << c.detected << ", \"alarm_events\": " << c.alarm_events
      << ", \"false_positives\": " << c.false_positives << ", \"precision\": " << jsonNum(c.precision())
      << ", \"recall\": " << jsonNum(c.recall()) << ", \"f1\": " << jsonNum(c.f1()) << ", \"nab\": " << jsonNum(c.nab())
      << ", \"fp_per_10k\": " << jsonNum(c.fpPer10k()) << ", \"mean_delay_ms\": " << jsonNum(c.meanDelayMs()) << "}";
  }
  j << (rows.empty() ? "" : "\n  ") << "],\n  \"evaluation_seconds\": " << jsonNum(eval_seconds) << "\n}\n";
  std::ofstream f(args.out);
  f << j.str();
  if (!f) {
    std::fprintf(stderr, "bench_detectors: cannot write %s\n", args.out.c_str());
    return 1;
  }
  std::printf("\nwrote %s\n", args.out.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  if (const char* e = std::getenv("BENCH_DETECTORS_OUT"); e && *e) args.out = e;
  if (args.out.empty()) args.out = "bench/results/detectors-latest.json";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "bench_detectors: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--out") {
      args.out = value();
    } else if (a == "--seeds") {
      args.seeds = std::strtoul(value().c_str(), nullptr, 10);
    } else if (a == "--seconds") {
      args.seconds = std::strtod(value().c_str(), nullptr);
    } else if (a == "--max-points") {
      args.max_points = std::strtoul(value().c_str(), nullptr, 10);
    } else if (a == "--only") {
      const std::string v = value();
      args.throughput = v == "throughput";
      args.evaluation = v == "eval";
      args.params = v == "params";
      if (!args.throughput && !args.evaluation && !args.params) {
        std::fprintf(stderr, "bench_detectors: --only takes throughput, eval or params\n");
        return 2;
      }
    } else {
      std::fprintf(stderr,
                   "usage: bench_detectors [--out PATH|-] [--seeds N] [--seconds S] [--max-points N] "
                   "[--only throughput|eval|params]\n");
      return 2;
    }
  }
  if (args.seeds == 0) args.seeds = 1;
  return run(args);
}
