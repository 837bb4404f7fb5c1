#include "core/logging.h"

#include <spdlog/sinks/stdout_sinks.h>

#include <mutex>

namespace sw {
namespace {
std::mutex g_mutex;
spdlog::level::level_enum g_level = spdlog::level::info;
}  // namespace

void initLogging(const std::string& level) {
  std::lock_guard lock(g_mutex);
  g_level = spdlog::level::from_str(level);
  spdlog::set_pattern("ts=%Y-%m-%dT%H:%M:%S.%eZ level=%l component=%n %v", spdlog::pattern_time_type::utc);
  spdlog::set_level(g_level);
  spdlog::apply_all([](const std::shared_ptr<spdlog::logger>& l) { l->set_level(g_level); });
}

std::shared_ptr<spdlog::logger> logger(const std::string& component) {
  std::lock_guard lock(g_mutex);
  if (auto existing = spdlog::get(component)) return existing;
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  auto l = std::make_shared<spdlog::logger>(component, sink);
  l->set_pattern("ts=%Y-%m-%dT%H:%M:%S.%eZ level=%l component=%n %v", spdlog::pattern_time_type::utc);
  l->set_level(g_level);
  l->flush_on(spdlog::level::info);
  spdlog::register_logger(l);
  return l;
}

}  // namespace sw
