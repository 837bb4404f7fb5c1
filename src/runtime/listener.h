#pragma once
// Opens a listening TCP socket (address reuse on, the system's maximum backlog) for a server.
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <memory>
#include <string>
#include <string_view>

#include "core/status.h"

namespace sw::runtime {

// what names the setting in errors ("http", "mqtt"): "mqtt.bind '...' is not an IP address".
Result<std::unique_ptr<boost::asio::ip::tcp::acceptor>> listenTcp(boost::asio::io_context& ctx, const std::string& bind,
                                                                  int port, std::string_view what);

}  // namespace sw::runtime
