#include "core/metrics.h"

#include <fmt/format.h>

namespace sw {

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(new std::atomic<std::uint64_t>[bounds_.size()]) {
  for (size_t i = 0; i < bounds_.size(); ++i) counts_[i].store(0);
}

void Histogram::observe(double value) {
  for (size_t i = 0; i < bounds_.size(); ++i) {
    if (value <= bounds_[i]) counts_[i].fetch_add(1, std::memory_order_relaxed);
  }
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_micros_.fetch_add(static_cast<std::uint64_t>(value * 1e6), std::memory_order_relaxed);
}

double Histogram::sum() const {
  return static_cast<double>(sum_micros_.load(std::memory_order_relaxed)) / 1e6;
}

Counter& Metrics::counter(const std::string& name, const std::string& help, const std::string& labels) {
  std::lock_guard lock(mutex_);
  Family& f = families_[name];
  f.help = help;
  f.type = "counter";
  auto& slot = f.counters[labels];
  if (!slot) slot = std::make_unique<Counter>();
  return *slot;
}

Histogram& Metrics::histogram(const std::string& name, const std::string& help, std::vector<double> bounds) {
  std::lock_guard lock(mutex_);
  Family& f = families_[name];
  f.help = help;
  f.type = "histogram";
  if (!f.histogram) f.histogram = std::make_unique<Histogram>(std::move(bounds));
  return *f.histogram;
}

void Metrics::gauge(const std::string& name, const std::string& help, std::function<double()> read) {
  std::lock_guard lock(mutex_);
  Family& f = families_[name];
  f.help = help;
  f.type = "gauge";
  f.gauge = std::move(read);
}

std::string Metrics::render() const {
  std::lock_guard lock(mutex_);
  std::string out;
  for (const auto& [name, f] : families_) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, f.help, name, f.type);
    if (f.type == "counter") {
      for (const auto& [labels, c] : f.counters) {
        if (labels.empty())
          out += fmt::format("{} {}\n", name, c->value());
        else
          out += fmt::format("{}{{{}}} {}\n", name, labels, c->value());
      }
    } else if (f.type == "gauge" && f.gauge) {
      out += fmt::format("{} {}\n", name, f.gauge());
    } else if (f.type == "histogram" && f.histogram) {
      const Histogram& h = *f.histogram;
      for (size_t i = 0; i < h.bounds().size(); ++i) {
        out += fmt::format("{}_bucket{{le=\"{}\"}} {}\n", name, h.bounds()[i], h.bucketCount(i));
      }
      out += fmt::format("{}_bucket{{le=\"+Inf\"}} {}\n{}_sum {}\n{}_count {}\n", name, h.count(), name, h.sum(), name,
                         h.count());
    }
  }
  return out;
}

}  // namespace sw
