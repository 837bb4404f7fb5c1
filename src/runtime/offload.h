#pragma once
// Runs a blocking function on a BlockingPool and resumes the calling coroutine on its own
// executor with the result. nullopt when the pool refused the task (queue full or stopping).
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <memory>
#include <optional>
#include <type_traits>

#include "runtime/blocking_pool.h"

namespace sw::runtime {

template <typename F, typename R = std::invoke_result_t<F&>>
boost::asio::awaitable<std::optional<R>> offload(BlockingPool& pool, F fn) {
  namespace asio = boost::asio;
  auto ex = co_await asio::this_coro::executor;
  co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(std::optional<R>)>(
      [&pool, ex](auto handler, F fn) mutable {
        auto h = std::make_shared<decltype(handler)>(std::move(handler));
        bool queued = pool.trySubmit([h, ex, fn = std::move(fn)]() mutable {
          std::optional<R> r(fn());
          asio::post(ex, [h, r = std::move(r)]() mutable { (*h)(std::move(r)); });
        });
        if (!queued) asio::post(ex, [h]() mutable { (*h)(std::optional<R>()); });
      },
      asio::use_awaitable, std::move(fn));
}

}  // namespace sw::runtime
