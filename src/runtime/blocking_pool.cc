#include "runtime/blocking_pool.h"

#include <string>

#include "runtime/thread_name.h"

namespace sw::runtime {

BlockingPool::BlockingPool(int threads, std::size_t max_queue, std::string_view name) : max_queue_(max_queue) {
  for (int i = 0; i < threads; ++i) {
    threads_.emplace_back([this, n = std::string(name) + '-' + std::to_string(i)] {
      nameThisThread(n);
      run();
    });
  }
}

BlockingPool::~BlockingPool() {
  stop();
}

bool BlockingPool::trySubmit(Task task) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ || queue_.size() >= max_queue_) return false;
    queue_.push_back(std::move(task));
  }
  cv_.notify_one();
  return true;
}

std::size_t BlockingPool::depth() const {
  std::lock_guard lock(mutex_);
  return queue_.size();
}

void BlockingPool::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

void BlockingPool::run() {
  for (;;) {
    Task task;
    {
      std::unique_lock lock(mutex_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping and drained
      task = std::move(queue_.front());
      queue_.pop_front();
    }
    task();
  }
}

}  // namespace sw::runtime
