#include "runtime/io_workers.h"

#include <string>

#include "runtime/thread_name.h"

namespace sw::runtime {

IoWorkers::IoWorkers(int threads) {
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  for (int i = 0; i < threads; ++i) {
    contexts_.push_back(std::make_unique<boost::asio::io_context>(1));
    guards_.emplace_back(boost::asio::make_work_guard(*contexts_.back()));
  }
}

IoWorkers::~IoWorkers() {
  stop();
}

void IoWorkers::start() {
  for (std::size_t i = 0; i < contexts_.size(); ++i) {
    threads_.emplace_back([c = contexts_[i].get(), i] {
      nameThisThread("sw-io-" + std::to_string(i));
      c->run();
    });
  }
}

boost::asio::io_context& IoWorkers::next() {
  return *contexts_[next_++ % contexts_.size()];
}

void IoWorkers::stop() {
  for (auto& g : guards_) g.reset();
  for (auto& ctx : contexts_) ctx->stop();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

}  // namespace sw::runtime
