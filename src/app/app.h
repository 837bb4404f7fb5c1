#pragma once
// Composition root: builds every component from the config, wires them, runs until SIGTERM or
// SIGINT, then drains (stop accepting, finish in-flight requests, flush storage) and returns.
#include "core/config.h"

namespace sw::app {

// Returns the process exit code.
int serve(const Config& config);

}  // namespace sw::app
