#include "runtime/listener.h"

#include <fmt/format.h>

namespace sw::runtime {

namespace asio = boost::asio;
using asio::ip::tcp;

Result<std::unique_ptr<tcp::acceptor>> listenTcp(asio::io_context& ctx, const std::string& bind, int port,
                                                 std::string_view what) {
  boost::system::error_code ec;
  auto address = asio::ip::make_address(bind, ec);
  if (ec) return fail(Code::kInvalidArgument, fmt::format("{}.bind '{}' is not an IP address", what, bind));
  tcp::endpoint ep(address, static_cast<unsigned short>(port));
  auto acceptor = std::make_unique<tcp::acceptor>(ctx);
  acceptor->open(ep.protocol(), ec);
  if (!ec) acceptor->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor->bind(ep, ec);
  if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return fail(Code::kUnavailable, fmt::format("cannot listen on {}:{}: {}", bind, port, ec.message()));
  return acceptor;
}

}  // namespace sw::runtime
