#pragma once
// Names the calling thread, as shown by top -H, perf and /proc/<pid>/task/*/comm, and used by
// the benchmark's per-thread CPU figures. Linux keeps 15 bytes; longer names are cut.
#include <pthread.h>

#include <string>

namespace sw::runtime {

inline void nameThisThread(std::string name) {
  if (name.size() > 15) name.resize(15);
  pthread_setname_np(pthread_self(), name.c_str());
}

}  // namespace sw::runtime
