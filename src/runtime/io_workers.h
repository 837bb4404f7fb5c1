#pragma once
// One Asio io_context per worker thread (DESIGN.md section 5). A connection is placed on one
// worker for its life, so its state needs no locks. Nothing here blocks: blocking work goes to
// a BlockingPool and its result is posted back.
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

namespace sw::runtime {

class IoWorkers {
 public:
  explicit IoWorkers(int threads);  // threads <= 0: one per core
  ~IoWorkers();
  void start();
  // Round-robin choice of the worker for a new connection. Thread-safe.
  boost::asio::io_context& next();
  boost::asio::io_context& at(std::size_t i) { return *contexts_[i]; }
  std::size_t size() const { return contexts_.size(); }
  void stop();

 private:
  std::vector<std::unique_ptr<boost::asio::io_context>> contexts_;
  std::vector<std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>>> guards_;
  std::vector<std::thread> threads_;
  std::atomic<std::size_t> next_{0};
};

}  // namespace sw::runtime
