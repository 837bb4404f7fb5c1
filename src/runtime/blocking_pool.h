#pragma once
// A fixed set of threads for blocking work (storage commits, SQLite, password hashing) with a
// bounded queue: when the queue is full, trySubmit() refuses and the caller answers "busy"
// (HTTP 503) instead of letting memory grow.
// Thread-safety: trySubmit/depth may be called from any thread; stop() once, from the owner.
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <string_view>
#include <thread>
#include <vector>

namespace sw::runtime {

class BlockingPool {
 public:
  using Task = std::move_only_function<void()>;
  // Threads are named "{name}-{i}".
  BlockingPool(int threads, std::size_t max_queue, std::string_view name = "sw-pool");
  ~BlockingPool();
  BlockingPool(const BlockingPool&) = delete;
  BlockingPool& operator=(const BlockingPool&) = delete;

  bool trySubmit(Task task);
  std::size_t depth() const;
  // Runs what is queued, then joins the threads. Further submissions are refused.
  void stop();

 private:
  void run();
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<Task> queue_;
  std::size_t max_queue_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace sw::runtime
