// Metrics: Prometheus text exposition format (version 0.0.4) for counters, histograms, gauges.
#include "core/metrics.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace sw {
namespace {

struct Exposition {
  std::map<std::string, std::string> help, type;
  std::map<std::string, double> samples;  // "name{labels}" -> value
  std::vector<std::string> sample_order;
};

// A strict little parser for the text format: fails the test on any malformed line.
Exposition parse(const std::string& text) {
  Exposition e;
  EXPECT_TRUE(text.empty() || text.back() == '\n') << "output must end with a newline";
  static const std::regex kHelp(R"(^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$)");
  static const std::regex kType(R"(^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$)");
  static const std::regex kSample(
      R"(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\.)*"(,[a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\.)*")*)?\})? (\S+)$)");
  std::istringstream in(text);
  std::string line;
  std::string current_family;
  while (std::getline(in, line)) {
    std::smatch m;
    if (std::regex_match(line, m, kHelp)) {
      current_family = m[1];
      EXPECT_EQ(e.help.count(current_family), 0u) << "HELP twice for " << current_family;
      e.help[current_family] = m[2];
    } else if (std::regex_match(line, m, kType)) {
      EXPECT_EQ(m[1], current_family) << "TYPE must follow the family's HELP";
      e.type[m[1]] = m[2];
    } else if (std::regex_match(line, m, kSample)) {
      const std::string name = m[1];
      EXPECT_TRUE(name.starts_with(current_family)) << line;
      const std::string key = name + std::string(m[2]);
      EXPECT_EQ(e.samples.count(key), 0u) << "duplicate sample " << key;
      const std::string value = m[m.size() - 1];
      char* end = nullptr;
      double v = std::strtod(value.c_str(), &end);
      EXPECT_TRUE(*end == '\0' || value == "+Inf" || value == "-Inf" || value == "NaN") << line;
      e.samples[key] = v;
      e.sample_order.push_back(key);
    } else {
      ADD_FAILURE() << "malformed exposition line: '" << line << "'";
    }
  }
  return e;
}

TEST(Metrics, CountersWithAndWithoutLabels) {
  Metrics m;
  Counter& plain = m.counter("sw_things_total", "Things done");
  plain.inc();
  plain.inc(4);
  Counter& ok = m.counter("sw_http_requests_total", "HTTP requests", R"(status="200")");
  Counter& err = m.counter("sw_http_requests_total", "HTTP requests", R"(status="500")");
  ok.inc(7);
  err.inc();
  // Registering the same name and labels again returns the same counter.
  Counter& ok_again = m.counter("sw_http_requests_total", "HTTP requests", R"(status="200")");
  EXPECT_EQ(&ok_again, &ok);
  ok_again.inc();
  EXPECT_EQ(ok.value(), 8u);

  const std::string text = m.render();
  auto e = parse(text);
  EXPECT_EQ(e.type["sw_things_total"], "counter");
  EXPECT_EQ(e.help["sw_things_total"], "Things done");
  EXPECT_EQ(e.type["sw_http_requests_total"], "counter");
  EXPECT_EQ(e.samples["sw_things_total"], 5.0);
  EXPECT_EQ(e.samples[R"(sw_http_requests_total{status="200"})"], 8.0);
  EXPECT_EQ(e.samples[R"(sw_http_requests_total{status="500"})"], 1.0);
  EXPECT_NE(text.find("sw_http_requests_total{status=\"200\"} 8\n"), std::string::npos) << text;
  EXPECT_NE(text.find("# HELP sw_things_total Things done\n# TYPE sw_things_total counter\nsw_things_total 5\n"),
            std::string::npos)
      << text;
}

TEST(Metrics, MultipleLabelsAndZeroCounters) {
  Metrics m;
  m.counter("sw_x_total", "X", R"(reason="invalid",transport="http")");
  auto e = parse(m.render());
  EXPECT_EQ(e.samples.at(R"(sw_x_total{reason="invalid",transport="http"})"), 0.0);
}

TEST(Metrics, HistogramBucketsAreCumulative) {
  Metrics m;
  Histogram& h = m.histogram("sw_latency_seconds", "Request latency", {0.125, 0.5, 1});
  for (double v : {0.0625, 0.125, 0.25, 0.75, 2.0}) h.observe(v);

  EXPECT_EQ(h.count(), 5u);
  EXPECT_EQ(h.sum(), 3.1875);
  ASSERT_EQ(h.bounds().size(), 3u);
  EXPECT_EQ(h.bucketCount(0), 2u);  // upper bounds are inclusive
  EXPECT_EQ(h.bucketCount(1), 3u);
  EXPECT_EQ(h.bucketCount(2), 4u);

  const std::string text = m.render();
  auto e = parse(text);
  EXPECT_EQ(e.type["sw_latency_seconds"], "histogram");
  EXPECT_EQ(e.help["sw_latency_seconds"], "Request latency");
  // Buckets by their numeric le, then +Inf.
  std::vector<std::pair<double, double>> buckets;
  double inf_bucket = -1;
  for (const auto& key : e.sample_order) {
    static const std::regex kLe(R"re(^sw_latency_seconds_bucket\{le="([^"]+)"\}$)re");
    std::smatch mm;
    if (!std::regex_match(key, mm, kLe)) continue;
    if (mm[1] == "+Inf")
      inf_bucket = e.samples[key];
    else
      buckets.emplace_back(std::stod(mm[1]), e.samples[key]);
  }
  ASSERT_EQ(buckets.size(), 3u) << text;
  EXPECT_EQ(buckets[0], (std::pair<double, double>{0.125, 2}));
  EXPECT_EQ(buckets[1], (std::pair<double, double>{0.5, 3}));
  EXPECT_EQ(buckets[2], (std::pair<double, double>{1, 4}));
  for (std::size_t i = 1; i < buckets.size(); ++i) {
    EXPECT_LT(buckets[i - 1].first, buckets[i].first) << "bounds must increase";
    EXPECT_LE(buckets[i - 1].second, buckets[i].second) << "buckets must be cumulative";
  }
  EXPECT_EQ(inf_bucket, 5.0);
  EXPECT_EQ(e.samples["sw_latency_seconds_count"], 5.0);
  EXPECT_EQ(e.samples["sw_latency_seconds_sum"], 3.1875);
  EXPECT_EQ(e.samples["sw_latency_seconds_count"], inf_bucket);
  // The +Inf bucket comes after the finite ones, then _sum and _count.
  auto pos_inf = text.find("le=\"+Inf\"");
  EXPECT_GT(pos_inf, text.find("le=\"0.125\""));
  EXPECT_LT(pos_inf, text.find("sw_latency_seconds_sum"));
  EXPECT_LT(text.find("sw_latency_seconds_sum"), text.find("sw_latency_seconds_count"));
}

TEST(Metrics, EmptyHistogramRendersZeros) {
  Metrics m;
  m.histogram("sw_h_seconds", "H", {0.1, 1});
  auto e = parse(m.render());
  EXPECT_EQ(e.samples[R"(sw_h_seconds_bucket{le="+Inf"})"], 0.0);
  EXPECT_EQ(e.samples["sw_h_seconds_count"], 0.0);
  EXPECT_EQ(e.samples["sw_h_seconds_sum"], 0.0);
}

TEST(Metrics, HistogramRegisteredTwiceIsTheSame) {
  Metrics m;
  Histogram& a = m.histogram("sw_h_seconds", "H", {0.1, 1});
  Histogram& b = m.histogram("sw_h_seconds", "H", {0.1, 1});
  EXPECT_EQ(&a, &b);
}

TEST(Metrics, GaugesAreReadAtScrapeTime) {
  Metrics m;
  double depth = 3;
  m.gauge("sw_queue_depth", "Queue depth", [&depth] { return depth; });
  auto e = parse(m.render());
  EXPECT_EQ(e.type["sw_queue_depth"], "gauge");
  EXPECT_EQ(e.samples["sw_queue_depth"], 3.0);
  depth = 2.5;
  e = parse(m.render());
  EXPECT_EQ(e.samples["sw_queue_depth"], 2.5);
  depth = 0;
  e = parse(m.render());
  EXPECT_EQ(e.samples["sw_queue_depth"], 0.0);
}

TEST(Metrics, MixedFamiliesEachHaveHelpAndType) {
  Metrics m;
  m.counter("sw_a_total", "A").inc();
  m.histogram("sw_b_seconds", "B", {1}).observe(0.5);
  m.gauge("sw_c", "C", [] { return 1.0; });
  auto e = parse(m.render());
  EXPECT_EQ(e.help.size(), 3u);
  EXPECT_EQ(e.type.size(), 3u);
  EXPECT_EQ(e.type["sw_a_total"], "counter");
  EXPECT_EQ(e.type["sw_b_seconds"], "histogram");
  EXPECT_EQ(e.type["sw_c"], "gauge");
  EXPECT_TRUE(parse(Metrics().render()).samples.empty());
}

TEST(Metrics, ConcurrentUpdatesAreNotLost) {
  Metrics m;
  Counter& c = m.counter("sw_c_total", "C");
  Histogram& h = m.histogram("sw_h_seconds", "H", {0.5});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        c.inc();
        h.observe(0.25);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(c.value(), 40000u);
  EXPECT_EQ(h.count(), 40000u);
  EXPECT_EQ(h.bucketCount(0), 40000u);
  EXPECT_EQ(h.sum(), 10000.0);
}

}  // namespace
}  // namespace sw
