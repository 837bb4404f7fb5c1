// sw_mqtt_loadgen: MQTT load generator used by bench/mqtt_bench.py (`make bench`).
//
// Drives Sensoworks and Mosquitto with the same traffic so both can be compared in one run.
// Three modes:
//   fanin    N publishers flood for warm-up + duration seconds (QoS 0: as fast as the socket
//            takes it; QoS 1: at most --window unacknowledged PUBLISHes per connection), with an
//            optional subscriber that counts what the broker routes. Published msg/s = QoS 1
//            PUBACKs (QoS 0: PUBLISHes written) inside the measured window.
//   latency  N publishers paced to --rate msg/s in total; one subscriber computes the
//            publish-to-delivery latency from the send time carried in the payload.
//   idle     N connections that only keep their session alive (PINGREQ every keep-alive); prints a
//            "ready" line once all are connected, holds them until stdin closes (or --hold-seconds),
//            then disconnects.
// Payload: a JSON object padded to --payload-bytes, always the same five keys
//   {"temperature":21.5,"humidity":40.1,"seq":123,"t_us":4567.0,"pad":"xxxx"}
// t_us is the send time in microseconds since this process started (steady clock; in latency mode
// the scheduled time, so a late client counts against the latency, not for it), as
// a number a double holds exactly, so it survives a broker that re-encodes the JSON (Sensoworks
// delivers [{"ts":ms,"values":{...}}] to applications, one PUBLISH per storage batch of a device,
// so the subscriber counts messages by their "t_us" keys, not by PUBLISH packets).
//
// Packets are encoded and decoded with the server's own codec (ingest/transports/mqtt/packet.h).
// The codec decodes what a server receives; the few server-to-client packets it does not decode
// (CONNACK, SUBACK, PINGRESP) are read here from their fixed layout.
//
// Threads: --threads io_contexts, each on its own thread; a connection lives on one of them.
// Counters shared across threads are relaxed atomics; per-connection state is owned by its thread.
// Prints one JSON object on stdout (idle mode: a ready line first).
#include <fmt/format.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <cctype>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "ingest/codecs/codec_util.h"
#include "ingest/transports/mqtt/packet.h"

namespace {

namespace asio = boost::asio;
namespace mqtt = sw::mqtt;
using asio::awaitable;
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr std::size_t kHighWater = 64 * 1024;        // a connection's unsent bytes before its writer waits
constexpr int kBatch = 64;                           // PUBLISHes encoded per writer turn
constexpr std::uint16_t kPidSlots = 1024;            // send-time slots per connection (window must be below)
constexpr std::uint16_t kPidCycle = 63 * kPidSlots;  // packet ids 1..kPidCycle, so pid % kPidSlots is unique

enum class Mode { kFanin, kLatency, kIdle };
enum class Target { kSensoworks, kMosquitto };

struct Options {
  Mode mode = Mode::kFanin;
  Target target = Target::kMosquitto;
  std::string host = "127.0.0.1";
  std::string port;
  int clients = 100;
  int qos = 0;
  int window = 32;
  double duration_s = 10;
  double warmup_s = 2;
  double rate = 10000;  // latency mode, msg/s over all publishers
  int payload_bytes = 100;
  bool subscriber = false;
  std::string tokens_file;
  std::vector<std::string> tokens;
  std::string app_password;  // Sensoworks subscriber: a tenant user's JWT
  int keepalive_s = 60;
  int threads = 1;
  int connect_concurrency = 256;
  int sndbuf = 0;       // SO_SNDBUF of publisher sockets (0: kernel default)
  double hold_s = 600;  // idle mode: upper bound on the hold
  double drain_s = 15;
  mqtt::Version version = mqtt::Version::k311;
  std::string client_prefix;
};

void usage() {
  std::cerr << "usage: sw_mqtt_loadgen --mode fanin|latency|idle --target sensoworks|mosquitto --port PORT\n"
               "         [--host 127.0.0.1] [--clients 100] [--qos 0|1] [--window 32] [--duration 10] [--warmup 2]\n"
               "         [--rate 10000] [--payload-bytes 100] [--subscriber] [--tokens FILE] [--app-password JWT]\n"
               "         [--keepalive 60] [--threads 1] [--connect-concurrency 256] [--hold-seconds 600]\n"
               "         [--drain-seconds 15] [--mqtt-version 4|5] [--client-prefix P]\n"
               "  sensoworks: publishers are devices (username = token from --tokens, client i uses line i % lines),\n"
               "              topic v1/devices/me/telemetry; the subscriber is an application (username app,\n"
               "              password --app-password) on sw/v1/devices/+/telemetry\n"
               "  mosquitto:  publisher i on bench/{i}/telemetry, the subscriber on bench/#, no credentials\n"
               "  latency mode always has a subscriber; idle mode connects --clients and holds them\n";
}

std::optional<Options> parseArgs(int argc, char** argv) {
  Options o;
  std::string password_file;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--help" || a == "-h") return std::nullopt;
    if (a == "--subscriber") {
      o.subscriber = true;
      continue;
    }
    if (i + 1 >= argc) {
      std::cerr << "missing value for " << a << "\n";
      return std::nullopt;
    }
    std::string v = argv[++i];
    if (a == "--mode") {
      if (v == "fanin")
        o.mode = Mode::kFanin;
      else if (v == "latency")
        o.mode = Mode::kLatency;
      else if (v == "idle")
        o.mode = Mode::kIdle;
      else
        return std::nullopt;
    } else if (a == "--target") {
      if (v == "sensoworks")
        o.target = Target::kSensoworks;
      else if (v == "mosquitto")
        o.target = Target::kMosquitto;
      else
        return std::nullopt;
    } else if (a == "--host") {
      o.host = v;
    } else if (a == "--port") {
      o.port = v;
    } else if (a == "--clients") {
      o.clients = std::atoi(v.c_str());
    } else if (a == "--qos") {
      o.qos = std::atoi(v.c_str());
    } else if (a == "--window") {
      o.window = std::atoi(v.c_str());
    } else if (a == "--duration") {
      o.duration_s = std::atof(v.c_str());
    } else if (a == "--warmup") {
      o.warmup_s = std::atof(v.c_str());
    } else if (a == "--rate") {
      o.rate = std::atof(v.c_str());
    } else if (a == "--payload-bytes") {
      o.payload_bytes = std::atoi(v.c_str());
    } else if (a == "--tokens") {
      o.tokens_file = v;
    } else if (a == "--app-password") {
      o.app_password = v;
    } else if (a == "--app-password-file") {
      password_file = v;
    } else if (a == "--keepalive") {
      o.keepalive_s = std::atoi(v.c_str());
    } else if (a == "--threads") {
      o.threads = std::atoi(v.c_str());
    } else if (a == "--connect-concurrency") {
      o.connect_concurrency = std::atoi(v.c_str());
    } else if (a == "--sndbuf") {
      o.sndbuf = std::atoi(v.c_str());
    } else if (a == "--hold-seconds") {
      o.hold_s = std::atof(v.c_str());
    } else if (a == "--drain-seconds") {
      o.drain_s = std::atof(v.c_str());
    } else if (a == "--mqtt-version") {
      if (v == "4" || v == "3.1.1")
        o.version = mqtt::Version::k311;
      else if (v == "5")
        o.version = mqtt::Version::k5;
      else
        return std::nullopt;
    } else if (a == "--client-prefix") {
      o.client_prefix = v;
    } else {
      std::cerr << "unknown option " << a << "\n";
      return std::nullopt;
    }
  }
  if (o.port.empty() || o.clients <= 0 || o.qos < 0 || o.qos > 1 || o.window <= 0 || o.window >= kPidSlots ||
      o.duration_s <= 0 || o.warmup_s < 0 || o.rate <= 0 || o.threads <= 0 || o.connect_concurrency <= 0 ||
      o.keepalive_s < 0 || o.keepalive_s > 65535) {
    std::cerr << "invalid option value\n";
    return std::nullopt;
  }
  if (o.mode == Mode::kLatency) o.subscriber = true;
  if (o.mode == Mode::kIdle) o.subscriber = false;
  if (!password_file.empty()) {
    std::ifstream in(password_file);
    std::getline(in, o.app_password);
    while (!o.app_password.empty() && std::isspace(static_cast<unsigned char>(o.app_password.back())))
      o.app_password.pop_back();
  }
  if (o.target == Target::kSensoworks) {
    if (o.tokens_file.empty()) {
      std::cerr << "--tokens is required for --target sensoworks\n";
      return std::nullopt;
    }
    std::ifstream in(o.tokens_file);
    std::string line;
    while (std::getline(in, line)) {
      while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.pop_back();
      if (!line.empty()) o.tokens.push_back(line);
    }
    if (o.tokens.empty()) {
      std::cerr << "no tokens in " << o.tokens_file << "\n";
      return std::nullopt;
    }
    if (o.subscriber && o.app_password.empty()) {
      std::cerr << "--app-password (or --app-password-file) is required for a Sensoworks subscriber\n";
      return std::nullopt;
    }
  }
  if (o.client_prefix.empty()) o.client_prefix = fmt::format("swlg{}-", ::getpid());
  return o;
}

enum Phase : int { kConnecting = 0, kWarmup = 1, kMeasure = 2, kDrain = 3, kDone = 4 };

// State shared by all threads. Everything written after start-up is atomic.
struct Shared {
  Options opts;
  Clock::time_point t0 = Clock::now();  // t_us in payloads counts from here
  std::atomic<int> phase{kConnecting};
  std::atomic<std::int64_t> window_start_us{INT64_MAX};
  std::atomic<std::int64_t> window_end_us{INT64_MAX};
  std::atomic<std::int64_t> publish_start_us{0};  // when publishers were released

  std::atomic<int> connected{0}, connect_failed{0}, handshakes_done{0}, closed{0};
  std::atomic<std::int64_t> sent{0}, acked{0}, received{0};  // totals over the whole run (messages)
  std::atomic<std::int64_t> received_packets{0};             // PUBLISH packets the subscriber got
  std::atomic<std::int64_t> sent_window{0}, acked_window{0}, received_window{0};
  std::atomic<std::int64_t> inflight{0};
  std::atomic<std::int64_t> bad_acks{0}, protocol_errors{0}, lost_connections{0}, pings{0};
  std::atomic<std::int64_t> parse_failures{0};  // subscriber payloads without t_us

  std::mutex mu;
  std::string first_error;
  void error(std::string msg) {
    std::lock_guard lock(mu);
    if (first_error.empty()) first_error = std::move(msg);
  }
  std::int64_t nowUs() const {
    return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count();
  }
  int currentPhase() const { return phase.load(std::memory_order_acquire); }
};

enum class Role { kPublisher, kSubscriber, kIdle };

// splitmix64 for the payload's random walks.
std::uint64_t nextRandom(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Reads the number after the `:` that follows a key in a JSON text (raw, or as re-encoded by a
// broker: "t_us":12.0, "t_us": 12, "t_us":1.2E1).
std::optional<double> readNumber(std::string_view text) {
  std::size_t pos = 0;
  while (pos < text.size() && (text[pos] == ' ' || text[pos] == ':')) ++pos;
  if (pos >= text.size()) return std::nullopt;
  char buf[40];
  const std::size_t n = std::min(sizeof(buf) - 1, text.size() - pos);
  std::memcpy(buf, text.data() + pos, n);
  buf[n] = 0;
  char* end = nullptr;
  double v = std::strtod(buf, &end);
  if (end == buf) return std::nullopt;
  return v;
}

class Client {
 public:
  Client(asio::io_context& io, Shared& sh, Role role, int index)
      : sh_(sh), o_(sh.opts), role_(role), index_(index), socket_(io), wake_(io), ping_timer_(io), rng_(index + 1) {
    temperature_ = 200 + static_cast<int>(nextRandom(rng_) % 100);
    humidity_ = 300 + static_cast<int>(nextRandom(rng_) % 300);
  }

  // Connects and completes CONNECT (and SUBSCRIBE for the subscriber). Returns false on failure
  // (counted and reported). On success the connection's loops are started.
  awaitable<bool> handshake(const tcp::resolver::results_type& endpoints) {
    boost::system::error_code ec;
    asio::steady_timer deadline(socket_.get_executor());
    deadline.expires_after(30s);
    deadline.async_wait([this](boost::system::error_code e) {
      if (!e && !handshook_) {
        boost::system::error_code ignored;
        socket_.close(ignored);
      }
    });
    co_await asio::async_connect(socket_, endpoints, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return fail(fmt::format("connect: {}", ec.message()));
    socket_.set_option(tcp::no_delay(true), ec);
    if (o_.sndbuf > 0 && role_ == Role::kPublisher)
      socket_.set_option(asio::socket_base::send_buffer_size(o_.sndbuf), ec);

    mqtt::Connect c;
    c.version = o_.version;
    c.clean_start = true;
    c.keep_alive = static_cast<std::uint16_t>(o_.keepalive_s);
    if (o_.target == Target::kSensoworks) {
      if (role_ == Role::kSubscriber) {
        c.client_id = o_.client_prefix + "sub";
        c.username = "app";
        c.password = o_.app_password;
      } else {
        c.client_id = fmt::format("{}{}", o_.client_prefix, index_);
        c.username = o_.tokens[static_cast<std::size_t>(index_) % o_.tokens.size()];
      }
    } else {
      c.client_id =
          role_ == Role::kSubscriber ? o_.client_prefix + "sub" : fmt::format("{}{}", o_.client_prefix, index_);
    }
    std::string out;
    mqtt::encode(mqtt::Packet{std::move(c)}, o_.version, out);
    co_await asio::async_write(socket_, asio::buffer(out), asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return fail(fmt::format("write CONNECT: {}", ec.message()));

    mqtt::FixedHeader h;
    std::span<const std::uint8_t> body;
    if (!co_await nextPacket(h, body)) co_return fail(fmt::format("no CONNACK: {}", read_error_));
    if (h.type() != mqtt::PacketType::kConnack || body.size() < 2)
      co_return fail(fmt::format("expected CONNACK, got packet type {}", static_cast<int>(h.type())));
    if (body[1] != 0) co_return fail(fmt::format("CONNACK refused: code 0x{:02x}", body[1]));

    if (role_ == Role::kSubscriber) {
      mqtt::Subscribe s;
      s.packet_id = 1;
      mqtt::SubscriptionRequest r;
      r.filter = o_.target == Target::kSensoworks ? "sw/v1/devices/+/telemetry" : "bench/#";
      r.qos = static_cast<std::uint8_t>(o_.qos);
      s.subscriptions.push_back(std::move(r));
      out.clear();
      mqtt::encode(mqtt::Packet{std::move(s)}, o_.version, out);
      co_await asio::async_write(socket_, asio::buffer(out), asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return fail(fmt::format("write SUBSCRIBE: {}", ec.message()));
      if (!co_await nextPacket(h, body)) co_return fail(fmt::format("no SUBACK: {}", read_error_));
      if (h.type() != mqtt::PacketType::kSuback || body.size() < 3)
        co_return fail(fmt::format("expected SUBACK, got packet type {}", static_cast<int>(h.type())));
      std::size_t pos = 2;
      if (o_.version == mqtt::Version::k5) pos += propertiesLength(body.subspan(2));
      if (pos >= body.size() || body[pos] >= 0x80)
        co_return fail(fmt::format("SUBACK refused: 0x{:02x}", pos < body.size() ? body[pos] : 0));
    }
    handshook_ = true;
    deadline.cancel();
    sh_.connected.fetch_add(1, std::memory_order_relaxed);
    auto ex = socket_.get_executor();
    asio::co_spawn(ex, readLoop(), asio::detached);
    if (role_ == Role::kPublisher) asio::co_spawn(ex, publishLoop(), asio::detached);
    if (o_.keepalive_s > 0) asio::co_spawn(ex, pingLoop(), asio::detached);
    co_return true;
  }

  // Sends DISCONNECT and closes. Runs on the connection's thread. A QoS 0 publisher may have
  // megabytes the broker has not read yet in the socket buffers: it resets the connection instead,
  // so the broker does not go on working for a run that is over.
  void finish() {
    if (finishing_ || !socket_.is_open()) return;
    finishing_ = true;
    ping_timer_.cancel();
    wake_.cancel();
    if (role_ == Role::kPublisher && o_.qos == 0) {
      boost::system::error_code ignored;
      socket_.set_option(asio::socket_base::linger(true, 0), ignored);
      socket_.close(ignored);
      return;
    }
    std::string out;
    mqtt::Disconnect d;
    mqtt::encode(mqtt::Packet{d}, o_.version, out);
    send(out);
  }

  const std::vector<std::uint32_t>& latenciesUs() const { return latencies_us_; }
  const std::vector<std::uint32_t>& ackLatenciesUs() const { return ack_latencies_us_; }

 private:
  bool fail(std::string msg) {
    sh_.connect_failed.fetch_add(1, std::memory_order_relaxed);
    sh_.error(
        fmt::format("client {}: {}", role_ == Role::kSubscriber ? std::string("sub") : std::to_string(index_), msg));
    boost::system::error_code ignored;
    socket_.close(ignored);
    return false;
  }

  static std::size_t propertiesLength(std::span<const std::uint8_t> b) {
    std::uint32_t value = 0;
    for (std::size_t i = 0; i < 4 && i < b.size(); ++i) {
      value |= static_cast<std::uint32_t>(b[i] & 0x7f) << (7 * i);
      if (!(b[i] & 0x80)) return i + 1 + value;
    }
    return b.size();
  }

  // Reads until one whole packet is buffered; body stays valid until the next call. The buffer
  // holds [rpos_, rlen_) unhandled bytes; it is compacted only when more room is needed.
  awaitable<bool> nextPacket(mqtt::FixedHeader& h, std::span<const std::uint8_t>& body) {
    if (rpos_ == rlen_) rpos_ = rlen_ = 0;
    for (;;) {
      std::span<const std::uint8_t> avail(rbuf_.data() + rpos_, rlen_ - rpos_);
      std::size_t need = avail.size() + 1;
      auto st = mqtt::parseFixedHeader(avail, h);
      if (st == mqtt::FrameStatus::kMalformed) {
        read_error_ = "malformed fixed header";
        co_return false;
      }
      if (st == mqtt::FrameStatus::kComplete) {
        const std::size_t total = std::size_t{h.header_size} + h.remaining_length;
        if (avail.size() >= total) {
          body = avail.subspan(h.header_size, h.remaining_length);
          rpos_ += total;
          co_return true;
        }
        need = total;
      }
      if (rbuf_.size() - rpos_ < need || rlen_ == rbuf_.size()) {
        std::memmove(rbuf_.data(), rbuf_.data() + rpos_, rlen_ - rpos_);
        rlen_ -= rpos_;
        rpos_ = 0;
        if (rbuf_.size() < need) rbuf_.resize(std::max(need, rbuf_.size() * 2));
      }
      boost::system::error_code ec;
      std::size_t n = co_await socket_.async_read_some(asio::buffer(rbuf_.data() + rlen_, rbuf_.size() - rlen_),
                                                       asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        read_error_ = ec.message();
        co_return false;
      }
      rlen_ += n;
    }
  }

  // Queues bytes and starts the write loop if it is idle. Writes keep their order.
  void send(std::string_view bytes) {
    pending_.append(bytes);
    startWriting();
  }
  void startWriting() {
    if (writing_ || pending_.empty()) return;
    writing_ = true;
    asio::co_spawn(socket_.get_executor(), writeLoop(), asio::detached);
  }

  awaitable<void> writeLoop() {
    boost::system::error_code ec;
    while (!pending_.empty()) {
      writing_buf_.clear();
      std::swap(writing_buf_, pending_);
      co_await asio::async_write(socket_, asio::buffer(writing_buf_), asio::redirect_error(asio::use_awaitable, ec));
      if (ec) break;
      wake_.cancel();  // the publisher may fill the queue again
    }
    writing_ = false;
    if (finishing_ && !ec) {
      socket_.shutdown(tcp::socket::shutdown_send, ec);
    } else if (ec) {
      closeLost(ec.message());
    }
  }

  void closeLost(const std::string& why) {
    if (!socket_.is_open()) return;
    if (!finishing_ && sh_.currentPhase() < kDone) {
      sh_.lost_connections.fetch_add(1, std::memory_order_relaxed);
      sh_.error(fmt::format("client {} lost its connection: {}", index_, why));
    }
    boost::system::error_code ignored;
    socket_.close(ignored);
    ping_timer_.cancel();
    wake_.cancel();
  }

  awaitable<void> readLoop() {
    mqtt::FixedHeader h;
    std::span<const std::uint8_t> body;
    while (co_await nextPacket(h, body)) {
      switch (h.type()) {
        case mqtt::PacketType::kPuback: onPuback(h, body); break;
        case mqtt::PacketType::kPublish: onPublish(h, body); break;
        case mqtt::PacketType::kPingresp: break;
        case mqtt::PacketType::kDisconnect:
          sh_.error(fmt::format("client {}: server sent DISCONNECT 0x{:02x}", index_, body.empty() ? 0 : body[0]));
          break;
        default:
          sh_.protocol_errors.fetch_add(1, std::memory_order_relaxed);
          sh_.error(fmt::format("client {}: unexpected packet type {}", index_, static_cast<int>(h.type())));
      }
    }
    if (socket_.is_open()) {
      if (finishing_) {
        boost::system::error_code ignored;
        socket_.close(ignored);
      } else {
        closeLost(read_error_);
      }
    }
    sh_.closed.fetch_add(1, std::memory_order_relaxed);
  }

  void onPuback(const mqtt::FixedHeader& h, std::span<const std::uint8_t> body) {
    auto decoded = mqtt::decode(h, body, o_.version);
    auto* packet = std::get_if<mqtt::Packet>(&decoded);
    auto* ack = packet ? std::get_if<mqtt::Ack>(packet) : nullptr;
    if (!ack) {
      sh_.protocol_errors.fetch_add(1, std::memory_order_relaxed);
      sh_.error(fmt::format("client {}: undecodable PUBACK: {}", index_,
                            packet ? "not an ack" : std::get<mqtt::DecodeError>(decoded).message));
      return;
    }
    if (inflight_ == 0) {
      sh_.protocol_errors.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    --inflight_;
    sh_.inflight.fetch_sub(1, std::memory_order_relaxed);
    if (ack->reason >= 0x80) {
      sh_.bad_acks.fetch_add(1, std::memory_order_relaxed);
      sh_.error(fmt::format("client {}: PUBACK reason 0x{:02x}", index_, ack->reason));
    } else {
      sh_.acked.fetch_add(1, std::memory_order_relaxed);
      if (sh_.currentPhase() == kMeasure) {
        sh_.acked_window.fetch_add(1, std::memory_order_relaxed);
        auto sent = send_us_[ack->packet_id % kPidSlots];
        ack_latencies_us_.push_back(static_cast<std::uint32_t>(std::max<std::int64_t>(0, sh_.nowUs() - sent)));
      }
    }
    wake_.cancel();
  }

  void onPublish(const mqtt::FixedHeader& h, std::span<const std::uint8_t> body) {
    auto decoded = mqtt::decode(h, body, o_.version);
    auto* packet = std::get_if<mqtt::Packet>(&decoded);
    auto* pub = packet ? std::get_if<mqtt::Publish>(packet) : nullptr;
    if (!pub) {
      sh_.protocol_errors.fetch_add(1, std::memory_order_relaxed);
      sh_.error(fmt::format("subscriber: undecodable PUBLISH: {}",
                            packet ? "not a publish" : std::get<mqtt::DecodeError>(decoded).message));
      return;
    }
    // One PUBLISH may carry several of our messages: Sensoworks hands applications what one
    // storage batch of a device held, as one JSON array. Every "t_us" is one message.
    const std::int64_t now = sh_.nowUs();
    std::int64_t messages = 0;
    std::string_view rest = pub->payload;
    const std::int64_t win_start = sh_.window_start_us.load(std::memory_order_relaxed);
    const std::int64_t win_end = sh_.window_end_us.load(std::memory_order_relaxed);
    for (;;) {
      constexpr std::string_view kKey = "\"t_us\"";
      auto pos = rest.find(kKey);
      if (pos == std::string_view::npos) break;
      rest.remove_prefix(pos + kKey.size());
      ++messages;
      if (o_.mode != Mode::kLatency) continue;
      if (auto t = readNumber(rest)) {
        auto sent = static_cast<std::int64_t>(*t);
        if (sent >= win_start && sent < win_end)
          latencies_us_.push_back(static_cast<std::uint32_t>(std::max<std::int64_t>(0, now - sent)));
      } else {
        sh_.parse_failures.fetch_add(1, std::memory_order_relaxed);
      }
    }
    if (messages == 0) {
      sh_.parse_failures.fetch_add(1, std::memory_order_relaxed);
      messages = 1;
    }
    sh_.received.fetch_add(messages, std::memory_order_relaxed);
    sh_.received_packets.fetch_add(1, std::memory_order_relaxed);
    if (sh_.currentPhase() == kMeasure) sh_.received_window.fetch_add(messages, std::memory_order_relaxed);
    if (pub->qos == 1) {
      mqtt::Ack a;
      a.type = mqtt::PacketType::kPuback;
      a.packet_id = pub->packet_id;
      ack_out_.clear();
      mqtt::encode(mqtt::Packet{std::move(a)}, o_.version, ack_out_);
      send(ack_out_);
    }
  }

  awaitable<void> pingLoop() {
    std::string ping;
    mqtt::encode(mqtt::Packet{mqtt::Pingreq{}}, o_.version, ping);
    boost::system::error_code ec;
    while (socket_.is_open() && !finishing_) {
      // Publishers and the subscriber have traffic anyway; a PINGREQ every keep-alive is harmless.
      ping_timer_.expires_after(std::chrono::seconds(o_.keepalive_s));
      co_await ping_timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      if (ec || !socket_.is_open() || finishing_) break;
      sh_.pings.fetch_add(1, std::memory_order_relaxed);
      send(ping);
    }
  }

  void appendPublish(std::int64_t t_us) {
    ++seq_;
    temperature_ += static_cast<int>(nextRandom(rng_) % 5) - 2;
    humidity_ += static_cast<int>(nextRandom(rng_) % 5) - 2;
    auto& pub = std::get<mqtt::Publish>(packet_);
    std::string& p = pub.payload;
    p.clear();
    fmt::format_to(std::back_inserter(p),
                   "{{\"temperature\":{}.{},\"humidity\":{}.{},\"seq\":{},\"t_us\":{}.0,\"pad\":\"", temperature_ / 10,
                   std::abs(temperature_ % 10), humidity_ / 10, std::abs(humidity_ % 10), seq_, t_us);
    const std::size_t tail = 2;  // "}
    if (p.size() + tail < static_cast<std::size_t>(o_.payload_bytes))
      p.append(static_cast<std::size_t>(o_.payload_bytes) - p.size() - tail, 'x');
    p.append("\"}");
    if (o_.qos == 1) {
      pid_ = static_cast<std::uint16_t>(pid_ % kPidCycle + 1);
      pub.packet_id = pid_;
      send_us_[pid_ % kPidSlots] = t_us;
      ++inflight_;
      sh_.inflight.fetch_add(1, std::memory_order_relaxed);
    }
    mqtt::encode(packet_, o_.version, pending_);
    sh_.sent.fetch_add(1, std::memory_order_relaxed);
    if (sh_.currentPhase() == kMeasure) sh_.sent_window.fetch_add(1, std::memory_order_relaxed);
  }

  awaitable<void> waitWake(Clock::time_point until) {
    boost::system::error_code ec;
    wake_.expires_at(until);
    co_await wake_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }

  awaitable<void> publishLoop() {
    auto& pub = std::get<mqtt::Publish>(packet_);
    pub.qos = static_cast<std::uint8_t>(o_.qos);
    pub.topic = o_.target == Target::kSensoworks ? std::string("v1/devices/me/telemetry")
                                                 : fmt::format("bench/{}/telemetry", index_);
    pub.payload.reserve(static_cast<std::size_t>(o_.payload_bytes) + 64);
    const bool paced = o_.mode == Mode::kLatency;
    std::chrono::nanoseconds interval{0};
    Clock::time_point next_due;
    bool started = false;
    while (socket_.is_open() && !finishing_) {
      const int phase = sh_.currentPhase();
      if (phase >= kDrain) break;
      if (phase == kConnecting) {
        co_await waitWake(Clock::now() + 2ms);
        continue;
      }
      if (!started) {
        started = true;
        const auto start = sh_.t0 + std::chrono::microseconds(sh_.publish_start_us.load());
        if (paced) {
          interval = std::chrono::nanoseconds(static_cast<std::int64_t>(1e9 * o_.clients / o_.rate));
          next_due = start + interval * index_ / o_.clients;  // spread the publishers over one interval
        }
      }
      const bool window_full = o_.qos == 1 && inflight_ >= o_.window;
      if (window_full || pending_.size() >= kHighWater) {
        co_await waitWake(Clock::now() + 50ms);  // woken early by a PUBACK or a finished write
        continue;
      }
      if (paced) {
        auto now = Clock::now();
        int n = 0;
        while (next_due <= now && n < kBatch && !(o_.qos == 1 && inflight_ >= o_.window)) {
          appendPublish(std::chrono::duration_cast<std::chrono::microseconds>(next_due - sh_.t0).count());
          next_due += interval;
          ++n;
        }
        startWriting();
        if (next_due > now) co_await waitWake(next_due);
      } else {
        int n = o_.qos == 1 ? std::min(kBatch, o_.window - inflight_) : kBatch;
        for (int i = 0; i < n; ++i) appendPublish(sh_.nowUs());
        startWriting();
        if (writing_ && pending_.size() >= kHighWater)
          co_await waitWake(Clock::now() + 50ms);
        else if (o_.qos == 0) {
          // Let the reader and the other connections of this thread run between batches.
          co_await asio::post(socket_.get_executor(), asio::use_awaitable);
        }
      }
    }
  }

  Shared& sh_;
  const Options& o_;
  Role role_;
  int index_;
  tcp::socket socket_;
  asio::steady_timer wake_;
  asio::steady_timer ping_timer_;
  std::vector<std::uint8_t> rbuf_ = std::vector<std::uint8_t>(role_ == Role::kIdle ? 256 : 16384);
  std::size_t rlen_ = 0, rpos_ = 0;
  std::string read_error_;
  std::string pending_, writing_buf_, ack_out_;
  bool writing_ = false, finishing_ = false, handshook_ = false;
  mqtt::Packet packet_{mqtt::Publish{}};
  std::uint64_t rng_;
  int temperature_ = 0, humidity_ = 0;
  std::int64_t seq_ = 0;
  std::uint16_t pid_ = 0;
  int inflight_ = 0;
  std::vector<std::int64_t> send_us_ = std::vector<std::int64_t>(role_ == Role::kPublisher ? kPidSlots : 0);
  std::vector<std::uint32_t> latencies_us_, ack_latencies_us_;
};

struct Worker {
  asio::io_context io{1};
  std::vector<std::unique_ptr<Client>> clients;  // subscriber (if on this worker) first
  std::thread thread;
};

// Keeps at most `concurrency` handshakes of this worker outstanding.
awaitable<void> connector(Worker& w, std::shared_ptr<std::size_t> next, tcp::resolver::results_type eps) {
  while (*next < w.clients.size()) {
    Client& c = *w.clients[(*next)++];
    co_await c.handshake(eps);  // counts success or failure itself
  }
}

double percentile(std::vector<std::uint32_t>& v, double p) {
  if (v.empty()) return 0;
  std::size_t idx = std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(idx), v.end());
  return v[idx] / 1000.0;
}

std::string latencyJson(std::vector<std::uint32_t>& v) {
  if (v.empty()) return "null";
  double mx = *std::max_element(v.begin(), v.end()) / 1000.0;
  double sum = 0;
  for (auto x : v) sum += x;
  return fmt::format(
      "{{\"samples\":{},\"p50\":{:.3f},\"p90\":{:.3f},\"p99\":{:.3f},\"p999\":{:.3f},\"max\":{:.3f},"
      "\"mean\":{:.3f}}}",
      v.size(), percentile(v, 0.5), percentile(v, 0.9), percentile(v, 0.99), percentile(v, 0.999), mx,
      sum / static_cast<double>(v.size()) / 1000.0);
}

// JSON for the error text, or null.
std::string jsonStringOrNull(const std::string& s) {
  if (s.empty()) return "null";
  std::string out;
  sw::ingest::appendJsonString(out, s);
  return out;
}

void raiseFdLimit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

template <class Pred>
bool waitFor(Pred pred, double seconds, std::chrono::milliseconds step = 10ms) {
  auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  while (!pred()) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(step);
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  auto parsed = parseArgs(argc, argv);
  if (!parsed) {
    usage();
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);
  raiseFdLimit();
  Shared sh;
  sh.opts = std::move(*parsed);
  const Options& o = sh.opts;

  std::vector<std::unique_ptr<Worker>> workers;
  for (int t = 0; t < o.threads; ++t) workers.push_back(std::make_unique<Worker>());
  const Role role = o.mode == Mode::kIdle ? Role::kIdle : Role::kPublisher;
  Client* subscriber = nullptr;
  if (o.subscriber) {
    workers[0]->clients.push_back(std::make_unique<Client>(workers[0]->io, sh, Role::kSubscriber, -1));
    subscriber = workers[0]->clients.back().get();
  }
  // With more than one thread the subscriber has the first one to itself, so a flood of
  // publishers cannot starve it.
  const int first_pub_worker = o.subscriber && o.threads > 1 ? 1 : 0;
  const int pub_workers = o.threads - first_pub_worker;
  for (int i = 0; i < o.clients; ++i) {
    auto& w = *workers[static_cast<std::size_t>(first_pub_worker + i % pub_workers)];
    w.clients.push_back(std::make_unique<Client>(w.io, sh, role, i));
  }
  const int total_clients = o.clients + (o.subscriber ? 1 : 0);

  tcp::resolver::results_type eps;
  {
    asio::io_context io;
    tcp::resolver resolver(io);
    boost::system::error_code ec;
    eps = resolver.resolve(o.host, o.port, ec);
    if (ec) {
      std::cerr << "resolve " << o.host << ":" << o.port << ": " << ec.message() << "\n";
      return 2;
    }
  }

  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards;
  for (auto& w : workers) {
    guards.push_back(asio::make_work_guard(w->io));
    w->thread = std::thread([&io = w->io] { io.run(); });
  }

  // The subscriber first, so it sees every message; then the rest with bounded concurrency.
  const auto connect_start = Clock::now();
  if (subscriber) {
    asio::co_spawn(workers[0]->io, subscriber->handshake(eps), asio::detached);
    waitFor([&] { return sh.connected.load() + sh.connect_failed.load() >= 1; }, 35);
  }
  const int per_worker = std::max(1, o.connect_concurrency / o.threads);
  for (auto& w : workers) {
    auto next = std::make_shared<std::size_t>(w.get() == workers[0].get() && subscriber ? 1 : 0);
    for (int k = 0; k < per_worker; ++k) asio::co_spawn(w->io, connector(*w, next, eps), asio::detached);
  }
  waitFor([&] { return sh.connected.load() + sh.connect_failed.load() >= total_clients; }, 600, 5ms);
  const double connect_s = std::chrono::duration<double>(Clock::now() - connect_start).count();
  const int connected = sh.connected.load();
  const int failed = sh.connect_failed.load();
  std::cerr << fmt::format("mqtt_loadgen: {} of {} connected in {:.2f}s ({} failed)\n", connected, total_clients,
                           connect_s, failed);

  // Window bounds on CLOCK_MONOTONIC (libstdc++'s steady_clock), so a harness can line up
  // server-side counters it samples with Python's time.monotonic().
  auto mono = [](Clock::time_point t) { return std::chrono::duration<double>(t.time_since_epoch()).count(); };
  double window_start_mono = 0, window_end_mono = 0;
  double measured_s = 0, publish_s = 0, drain_wait_s = 0;
  bool drained = true;
  if (o.mode == Mode::kIdle) {
    std::cout << fmt::format("{{\"event\":\"ready\",\"connected\":{},\"failed\":{},\"connect_seconds\":{:.3f}}}",
                             connected, failed, connect_s)
              << std::endl;
    // Hold until stdin closes (or a line arrives) or hold_s passes.
    std::atomic<bool> released{false};
    std::thread reader([&] {
      std::string line;
      std::getline(std::cin, line);
      released = true;
    });
    reader.detach();
    waitFor([&] { return released.load(); }, o.hold_s, 50ms);
  } else if (failed == 0) {
    const auto p0 = Clock::now();
    sh.publish_start_us = std::chrono::duration_cast<std::chrono::microseconds>(p0 - sh.t0).count();
    sh.phase = kWarmup;
    std::this_thread::sleep_for(std::chrono::duration<double>(o.warmup_s));
    sh.window_start_us = sh.nowUs();
    const auto m0 = Clock::now();
    sh.phase = kMeasure;
    std::this_thread::sleep_for(std::chrono::duration<double>(o.duration_s));
    sh.window_end_us = sh.nowUs();
    sh.phase = kDrain;
    const auto m1 = Clock::now();
    measured_s = std::chrono::duration<double>(m1 - m0).count();
    window_start_mono = mono(m0);
    window_end_mono = mono(m1);
    const auto d0 = Clock::now();
    // QoS 1: every PUBLISH acknowledged. Subscriber: everything routed has arrived (QoS 1: as many
    // as were sent; otherwise until nothing arrived for a second).
    if (o.qos == 1)
      drained = waitFor([&] { return sh.inflight.load() == 0 || sh.lost_connections.load() > 0; }, o.drain_s);
    // From the publishers' release to the last PUBACK (QoS 0: to the end of the window).
    publish_s = std::chrono::duration<double>(Clock::now() - p0).count();
    if (subscriber) {
      std::int64_t last = -1;
      auto stable_since = Clock::now();
      waitFor(
          [&] {
            auto r = sh.received.load();
            if (o.qos == 1 && r >= sh.acked.load()) return true;
            if (r != last) {
              last = r;
              stable_since = Clock::now();
            }
            return Clock::now() - stable_since > 1s;
          },
          o.drain_s, 20ms);
    }
    drain_wait_s = std::chrono::duration<double>(Clock::now() - d0).count();
  }

  sh.phase = kDone;
  for (auto& w : workers) {
    asio::post(w->io, [&w] {
      for (auto& c : w->clients) c->finish();
    });
  }
  waitFor([&] { return sh.closed.load() >= connected; }, 10, 10ms);
  for (auto& g : guards) g.reset();
  for (auto& w : workers) w->io.stop();
  for (auto& w : workers) w->thread.join();

  std::vector<std::uint32_t> lat, ack_lat;
  for (auto& w : workers) {
    for (auto& c : w->clients) {
      lat.insert(lat.end(), c->latenciesUs().begin(), c->latenciesUs().end());
      ack_lat.insert(ack_lat.end(), c->ackLatenciesUs().begin(), c->ackLatenciesUs().end());
    }
  }
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  const double cpu_user_s = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6;
  const double cpu_sys_s = ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
  const char* mode = o.mode == Mode::kFanin ? "fanin" : o.mode == Mode::kLatency ? "latency" : "idle";
  const std::int64_t published_window = o.qos == 1 ? sh.acked_window.load() : sh.sent_window.load();
  const std::int64_t published_total = o.qos == 1 ? sh.acked.load() : sh.sent.load();
  const bool ok = failed == 0 && sh.lost_connections.load() == 0 && sh.protocol_errors.load() == 0 &&
                  sh.bad_acks.load() == 0 && drained;
  fmt::print(
      "{{\"mode\":\"{}\",\"target\":\"{}\",\"clients\":{},\"threads\":{},\"qos\":{},\"window\":{},\"payload_bytes\":{},"
      "\"mqtt_version\":{},\"subscriber\":{},\"rate_target\":{},\"keepalive_s\":{},"
      "\"connected\":{},\"connect_failed\":{},\"connect_seconds\":{:.3f},"
      "\"warmup_s\":{},\"duration_s\":{:.3f},\"window_start_mono\":{:.6f},\"window_end_mono\":{:.6f},\"publish_"
      "seconds\":{:.3f},\"drain_wait_s\":{:.3f},\"drained\":{},"
      "\"sent_total\":{},\"acked_total\":{},\"published_total\":{},\"received_total\":{},\"received_packets\":{},"
      "\"sent_window\":{},\"published_window\":{},\"received_window\":{},"
      "\"published_per_s\":{:.1f},\"received_per_s\":{:.1f},"
      "\"latency_ms\":{},\"puback_ms\":{},\"parse_failures\":{},"
      "\"bad_acks\":{},\"protocol_errors\":{},\"lost_connections\":{},\"pings\":{},\"cpu_user_s\":{:.3f},"
      "\"cpu_sys_s\":{:.3f},\"ok\":{},\"first_error\":{}}}\n",
      mode, o.target == Target::kSensoworks ? "sensoworks" : "mosquitto", o.clients, o.threads, o.qos, o.window,
      o.payload_bytes, static_cast<int>(o.version), o.subscriber ? "true" : "false",
      o.mode == Mode::kLatency ? fmt::format("{}", o.rate) : std::string("null"), o.keepalive_s, connected, failed,
      connect_s, o.warmup_s, measured_s, window_start_mono, window_end_mono, publish_s, drain_wait_s,
      drained ? "true" : "false", sh.sent.load(), sh.acked.load(), published_total, sh.received.load(),
      sh.received_packets.load(), sh.sent_window.load(), published_window, sh.received_window.load(),
      measured_s > 0 ? published_window / measured_s : 0.0,
      measured_s > 0 ? sh.received_window.load() / measured_s : 0.0, latencyJson(lat), latencyJson(ack_lat),
      sh.parse_failures.load(), sh.bad_acks.load(), sh.protocol_errors.load(), sh.lost_connections.load(),
      sh.pings.load(), cpu_user_s, cpu_sys_s, ok ? "true" : "false", jsonStringOrNull(sh.first_error));
  std::fflush(stdout);
  return ok ? 0 : 1;
}
