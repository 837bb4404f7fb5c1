#pragma once
// Structured logging (logfmt lines: time, level, component, then key=value pairs).
#include <spdlog/spdlog.h>

#include <memory>
#include <string>

namespace sw {

// Sets up the process-wide sinks; level is one of trace, debug, info, warn, error, off.
void initLogging(const std::string& level);
// A named logger for one component ("api", "ingest", "storage", ...). Thread-safe.
std::shared_ptr<spdlog::logger> logger(const std::string& component);

}  // namespace sw
