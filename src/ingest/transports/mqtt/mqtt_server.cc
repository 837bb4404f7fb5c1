#include "ingest/transports/mqtt/mqtt_server.h"

#include <fmt/format.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <deque>
#include <list>

#include "core/clock.h"
#include "core/logging.h"
#include "ingest/transports/mqtt/device_api.h"
#include "ingest/transports/mqtt/packet.h"
#include "ingest/transports/mqtt/topic.h"
#include "runtime/listener.h"
#include "runtime/offload.h"
#include "security/crypto.h"

namespace sw::mqtt {

namespace asio = boost::asio;
using asio::awaitable;
using asio::ip::tcp;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

namespace {
constexpr std::uint8_t kBadAuthenticationMethod = 0x8C;
constexpr std::size_t kMaxClientIdBytes = 256;
constexpr std::size_t kOutputHighWater = 256 * 1024;  // stop taking queued messages beyond this
constexpr std::size_t kMaxPendingOps = 1024;          // inbound messages awaiting storage
constexpr auto kConnectTimeout = std::chrono::seconds(10);
constexpr std::size_t kMaxSubscriptionsPerSession = 1000;

// Per-worker scratch buffer for socket reads: an idle connection owns no read buffer.
std::vector<std::uint8_t>& scratch() {
  thread_local std::vector<std::uint8_t> buf(64 * 1024);
  return buf;
}
}  // namespace

class Connection;

struct MqttServer::Impl {
  const Config& config;
  runtime::IoWorkers& workers;
  ingest::IngestPipeline& pipeline;
  storage::MetadataStore& metadata;
  Broker& broker;
  AppAuthenticator app_auth;
  runtime::BlockingPool pool;
  // CONNECT authentication (argon2 for MQTT basic credentials) apart from storage, so a flood
  // of failing logins cannot delay acknowledgements.
  runtime::BlockingPool auth_pool;
  std::unique_ptr<tcp::acceptor> acceptor;
  std::atomic<bool> accepting{true};
  std::mutex conns_mutex;
  std::list<std::weak_ptr<Connection>> conns;
  std::unique_ptr<asio::steady_timer> ticker;
  CredentialCache credentials;

  Impl(const Config& c, runtime::IoWorkers& w, ingest::IngestPipeline& p, storage::MetadataStore& m, Broker& b,
       AppAuthenticator a)
      : config(c),
        workers(w),
        pipeline(p),
        metadata(m),
        broker(b),
        app_auth(std::move(a)),
        // One storage job per connection at most, plus CONNECT authentications.
        pool(std::max(2, c.api_threads), c.mqtt_max_connections + 1024),
        auth_pool(2, 1024) {}

  awaitable<void> acceptLoop();
  void scheduleTick();
  void saveStates();
  std::uint64_t ticks = 0;
};

// One client connection. Lives on one worker's io_context; every member is touched only there
// except wake()/kick(), which post to it.
class Connection final : public ClientSink, public std::enable_shared_from_this<Connection> {
 public:
  Connection(MqttServer::Impl& server, tcp::socket socket)
      : server_(server), socket_(std::move(socket)), timer_(socket_.get_executor()), resume_(socket_.get_executor()) {}

  std::list<std::weak_ptr<Connection>>::iterator registry_pos;

  awaitable<void> run();

  void wake() override {
    if (wake_posted_.exchange(true)) return;
    asio::post(socket_.get_executor(), [self = shared_from_this()] {
      self->wake_posted_ = false;
      self->pump();
    });
  }

  void kick(std::uint8_t reason) override {
    asio::post(socket_.get_executor(), [self = shared_from_this(), reason] { self->disconnect(reason); });
  }

 private:
  // ---- output ----
  void sendPacket(const Packet& p) {
    if (closing_) return;
    encode(p, version_, out_);
    startWrite();
  }
  void startWrite() {
    if (writing_ || out_.empty() || !socket_.is_open()) return;
    writing_ = true;
    std::swap(out_, wbuf_);
    asio::async_write(socket_, asio::buffer(wbuf_),
                      [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                        self->writing_ = false;
                        self->wbuf_.clear();
                        if (self->wbuf_.capacity() > kOutputHighWater) std::string().swap(self->wbuf_);
                        if (ec) {
                          self->closeSocket();
                          return;
                        }
                        if (self->closing_ && self->out_.empty()) {
                          self->closeSocket();
                          return;
                        }
                        self->startWrite();
                        self->pump();
                        self->resume_.cancel();  // the read loop may wait for the output to drain
                      });
  }
  void closeSocket() {
    boost::system::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
    timer_.cancel();
    resume_.cancel();
  }
  // Sends DISCONNECT (v5 only, after CONNECT) and closes once it is written.
  void disconnect(std::uint8_t reason) {
    if (!closing_ && version_ == Version::k5 && connected_) sendPacket(Disconnect{reason, {}});
    beginClose();
  }
  // Closes once what is queued is written, or after a deadline: a peer that does not read
  // must not hold the socket (and its session) open forever.
  void beginClose() {
    closing_ = true;
    if (!writing_ && out_.empty()) {
      closeSocket();
      return;
    }
    timer_.expires_after(std::chrono::seconds(5));
    timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (!ec) self->closeSocket();
    });
  }
  void pump();

  // ---- input ----
  awaitable<bool> readConnect();
  // Lets a refusing CONNACK be written before the connection ends; always false.
  awaitable<bool> drainThenFail() {
    while (writing_) co_await asio::post(socket_.get_executor(), asio::use_awaitable);
    co_return false;
  }
  awaitable<void> readLoop();
  bool handle(const FixedHeader& h, std::span<const std::uint8_t> body);  // false: stop
  bool onPublish(Publish p);
  void onSubscribe(Subscribe s);
  void onUnsubscribe(Unsubscribe u);
  void protocolError(std::uint8_t reason) { disconnect(reason); }
  void startJob();
  void completeAcks();
  void keepAliveCheck();

  // Ops awaiting storage, in arrival order; acks go out strictly in that order (MQTT 4.6).
  struct Pending {
    std::uint8_t qos = 0;  // 0: nothing to send; 1: PUBACK; 2: PUBREC
    std::uint16_t id = 0;
    bool done = false;
    std::uint8_t reason = 0;
  };

  MqttServer::Impl& server_;
  tcp::socket socket_;
  asio::steady_timer timer_;   // keep-alive, close deadline
  asio::steady_timer resume_;  // wakes the read loop when storage catches up
  std::atomic<bool> wake_posted_{false};
  Version version_ = Version::k311;
  bool connected_ = false;
  bool closing_ = false;
  bool unclean_ = true;  // publish the will unless a normal DISCONNECT arrives
  bool writing_ = false;
  std::string out_, wbuf_, in_;
  std::uint16_t keep_alive_ = 0;
  std::chrono::steady_clock::time_point last_rx_, last_activity_;
  Identity id_;
  std::shared_ptr<Session> session_;
  std::shared_ptr<Message> will_;
  std::uint32_t will_delay_ = 0;
  std::uint16_t client_receive_max_ = 65535;
  std::uint32_t client_max_packet_ = 0;  // 0: no limit
  std::vector<std::string> aliases_;
  std::size_t inbound_inflight_ = 0;  // QoS 1/2 received and not yet completed
  std::deque<Pending> pending_;
  std::uint64_t pending_base_ = 0;  // sequence number of pending_.front()
  std::vector<DeviceOp> ops_;       // waiting for the next storage job
  bool job_running_ = false;
  std::unique_ptr<GatewayCache> gateway_cache_;
};

}  // namespace sw::mqtt

namespace sw::mqtt {

awaitable<void> MqttServer::Impl::acceptLoop() {
  while (accepting) {
    auto& ctx = workers.next();
    tcp::socket socket(ctx);
    auto [ec] = co_await acceptor->async_accept(socket, kTuple);
    if (ec) {
      if (!accepting || ec == asio::error::operation_aborted) break;
      // e.g. EMFILE: wait for descriptors to free up instead of spinning.
      asio::steady_timer pause(acceptor->get_executor(), std::chrono::milliseconds(100));
      co_await pause.async_wait(kTuple);
      continue;
    }
    if (static_cast<std::size_t>(broker.stats().connections.load()) >= config.mqtt_max_connections) {
      boost::system::error_code ignored;
      socket.close(ignored);
      broker.stats().connects_refused.inc();
      continue;
    }
    socket.set_option(tcp::no_delay(true), ec);
    auto conn = std::make_shared<Connection>(*this, std::move(socket));
    {
      std::lock_guard lock(conns_mutex);
      conns.push_front(conn);
      conn->registry_pos = conns.begin();
    }
    asio::co_spawn(
        ctx,
        [conn, this]() -> awaitable<void> {
          co_await conn->run();
          std::lock_guard lock(conns_mutex);
          conns.erase(conn->registry_pos);
        },
        asio::detached);
  }
}

void MqttServer::Impl::scheduleTick() {
  ticker->expires_after(std::chrono::milliseconds(250));
  ticker->async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    broker.tick();
    // Every 5 s, connection state goes to the metadata store (off the I/O thread).
    if (++ticks % 20 == 0) {
      (void)pool.trySubmit([this] { saveStates(); });
    }
    scheduleTick();
  });
}

void MqttServer::Impl::saveStates() {
  auto states = broker.takeChangedStates();
  if (auto st = metadata.recordDeviceActivity(states); !st)
    logger("mqtt")->warn("msg=\"cannot save device state\" error=\"{}\"", st.error().message);
}

awaitable<void> Connection::run() {
  server_.broker.stats().connections++;
  last_rx_ = std::chrono::steady_clock::now();
  try {
    if (co_await readConnect()) co_await readLoop();
  } catch (const std::exception& e) {  // bad_alloc and the like: drop this connection only
    logger("mqtt")->warn("msg=\"connection failed\" error=\"{}\"", e.what());
  }
  closeSocket();
  if (session_) {
    std::shared_ptr<const Message> will;
    if (unclean_ && will_) will = std::move(will_);
    server_.broker.closeSession(session_, this, std::move(will), will_delay_);
    if (id_.kind == ClientKind::kDevice) server_.broker.deviceDisconnected(id_.device.device_id, this);
    session_.reset();
  }
  server_.broker.stats().connections--;
}

// Reads and answers the CONNECT packet. False when the connection must end.
awaitable<bool> Connection::readConnect() {
  timer_.expires_after(kConnectTimeout);
  timer_.async_wait([w = weak_from_this()](boost::system::error_code ec) {
    if (auto self = w.lock(); self && !ec && !self->connected_) self->closeSocket();
  });
  std::optional<Connect> connect;
  FixedHeader h;
  while (!connect) {
    auto status = parseFixedHeader(std::span(reinterpret_cast<const std::uint8_t*>(in_.data()), in_.size()), h);
    if (status == FrameStatus::kMalformed) co_return false;
    if (status == FrameStatus::kComplete) {
      if (h.type() != PacketType::kConnect) co_return false;  // MQTT-3.1.0-1
      if (h.remaining_length + h.header_size > server_.config.mqtt_max_packet_bytes) co_return false;
      if (in_.size() >= h.header_size + h.remaining_length) {
        auto body = std::span(reinterpret_cast<const std::uint8_t*>(in_.data()) + h.header_size, h.remaining_length);
        auto decoded = decode(h, body, Version::k5);
        if (auto* err = std::get_if<DecodeError>(&decoded)) {
          // The level decides how to refuse: 3.1.1 return code 1, MQTT 5 reason 0x84.
          if (err->reason == reason::kUnsupportedVersion) {
            const bool v5 = in_.size() > h.header_size + 6u && static_cast<std::uint8_t>(in_[h.header_size + 6]) == 5;
            version_ = v5 ? Version::k5 : Version::k311;
            sendPacket(Connack{false, v5 ? reason::kUnsupportedVersion : connack311::kBadProtocolVersion, {}});
            closing_ = true;
            co_return co_await drainThenFail();
          }
          co_return false;
        }
        connect = std::move(std::get<Connect>(std::get<Packet>(decoded)));
        in_.erase(0, h.header_size + h.remaining_length);
        break;
      }
    }
    auto [wec] = co_await socket_.async_wait(tcp::socket::wait_read, kTuple);
    if (wec) co_return false;
    auto& buf = scratch();
    boost::system::error_code ec;
    std::size_t n = socket_.read_some(asio::buffer(buf), ec);
    if (ec == asio::error::would_block) continue;
    if (ec || n == 0) co_return false;
    in_.append(reinterpret_cast<const char*>(buf.data()), n);
  }
  version_ = connect->version;
  const bool v5 = version_ == Version::k5;
  auto refuse = [&](std::uint8_t v5_reason, std::uint8_t v3_code) {
    server_.broker.stats().connects_refused.inc();
    sendPacket(Connack{false, v5 ? v5_reason : v3_code, {}});
    closing_ = true;
  };

  if (connect->props.authentication_method) {
    refuse(kBadAuthenticationMethod, connack311::kNotAuthorized);
    co_return co_await drainThenFail();
  }
  std::string client_id = connect->client_id;
  bool assigned = false;
  if (client_id.size() > kMaxClientIdBytes || (client_id.empty() && !v5 && !connect->clean_start)) {
    refuse(reason::kClientIdInvalid, connack311::kIdentifierRejected);
    co_return co_await drainThenFail();
  }
  if (client_id.empty()) {
    client_id = "sw-" + security::randomToken(12);
    assigned = true;
  }
  // Authentication may hit the metadata store and argon2: off the I/O thread.
  auto& srv = server_;
  auto auth = co_await runtime::offload(srv.auth_pool, [&srv, &connect, &client_id] {
    return authenticateClient(DeviceApi{srv.pipeline, srv.metadata, srv.broker}, srv.app_auth, srv.credentials,
                              *connect, client_id);
  });
  if (closing_ || !socket_.is_open()) co_return false;  // timed out or shut down meanwhile
  if (!auth || !*auth) {
    const bool busy = !auth;
    refuse(busy ? reason::kServerBusy : reason::kNotAuthorized,
           busy ? connack311::kServerUnavailable : connack311::kNotAuthorized);
    co_return co_await drainThenFail();
  }
  id_ = std::move(**auth);
  if (connect->will) {
    auto will = makeWill(id_, *connect->will);
    if (!will) {
      refuse(reason::kNotAuthorized, connack311::kNotAuthorized);
      co_return co_await drainThenFail();
    }
    will_ = std::move(will);
    if (v5) will_delay_ = connect->will->props.will_delay_interval.value_or(0);
  }
  std::uint32_t expiry = 0;
  bool capped = false;
  if (v5) {
    expiry = connect->props.session_expiry_interval.value_or(0);
    client_receive_max_ = connect->props.receive_maximum.value_or(65535);
    client_max_packet_ = connect->props.maximum_packet_size.value_or(0);
  } else if (!connect->clean_start) {
    expiry = server_.config.mqtt_max_session_expiry_s;
  }
  if (expiry > server_.config.mqtt_max_session_expiry_s) {
    expiry = server_.config.mqtt_max_session_expiry_s;
    capped = true;
  }
  keep_alive_ = connect->keep_alive;
  auto opened = server_.broker.openSession(id_.tenant, client_id, id_.kind, id_.device.device_id, connect->clean_start,
                                           expiry, shared_from_this());
  if (opened.quota_exceeded) {
    refuse(reason::kQuotaExceeded, connack311::kServerUnavailable);
    co_return co_await drainThenFail();
  }
  if (!opened.session) {
    // The client id belongs to another device or application of the tenant.
    refuse(reason::kClientIdInvalid, connack311::kIdentifierRejected);
    co_return co_await drainThenFail();
  }
  session_ = opened.session;
  connected_ = true;
  timer_.cancel();
  server_.broker.stats().connects_accepted.inc();
  if (id_.kind == ClientKind::kDevice)
    server_.broker.deviceConnected(id_.tenant, id_.device.device_id, shared_from_this());

  Connack ack{opened.present, 0, {}};
  if (v5) {
    ack.props.receive_maximum = static_cast<std::uint16_t>(server_.config.mqtt_receive_maximum);
    ack.props.maximum_packet_size = static_cast<std::uint32_t>(server_.config.mqtt_max_packet_bytes);
    ack.props.topic_alias_maximum = static_cast<std::uint16_t>(server_.config.mqtt_topic_alias_maximum);
    ack.props.retain_available = 1;
    ack.props.wildcard_subscription_available = 1;
    ack.props.subscription_identifier_available = 1;
    ack.props.shared_subscription_available = 1;
    if (assigned) ack.props.assigned_client_identifier = client_id;
    if (capped) ack.props.session_expiry_interval = expiry;
  }
  sendPacket(ack);
  keepAliveCheck();
  pump();  // retransmissions and messages queued while the session was offline
  // A resumed session is already subscribed: RPC queued for the device can go now. (A new
  // session gets it after its first SUBSCRIBE.)
  if (opened.present && id_.kind == ClientKind::kDevice) server_.broker.deviceReady(id_.tenant, id_.device.device_id);
  co_return true;
}

void Connection::keepAliveCheck() {
  if (keep_alive_ == 0 || closing_) return;
  const auto limit = std::chrono::milliseconds(keep_alive_ * 1500);
  const auto now = std::chrono::steady_clock::now();
  if (now - last_rx_ >= limit) {
    disconnect(reason::kKeepAliveTimeout);
    return;
  }
  timer_.expires_at(last_rx_ + limit);
  timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (!ec) self->keepAliveCheck();
  });
}

awaitable<void> Connection::readLoop() {
  while (socket_.is_open()) {
    // Parse every complete packet already buffered; the consumed prefix is erased once.
    std::size_t pos = 0;
    while (!closing_) {
      FixedHeader h;
      const auto* data = reinterpret_cast<const std::uint8_t*>(in_.data()) + pos;
      const std::size_t avail = in_.size() - pos;
      auto status = parseFixedHeader(std::span(data, avail), h);
      if (status == FrameStatus::kMalformed) {
        protocolError(reason::kMalformed);
        break;
      }
      if (status == FrameStatus::kIncomplete) break;
      if (h.remaining_length + h.header_size > server_.config.mqtt_max_packet_bytes) {
        protocolError(reason::kPacketTooLarge);
        break;
      }
      if (avail < h.header_size + h.remaining_length) break;
      const bool go_on = handle(h, std::span(data + h.header_size, h.remaining_length));
      pos += h.header_size + h.remaining_length;
      if (!go_on) break;
    }
    in_.erase(0, pos);
    if (in_.empty() && in_.capacity() > 4096) std::string().swap(in_);
    if (closing_) {
      // Wait until the final DISCONNECT is written (or the deadline closes the socket).
      while (socket_.is_open()) {
        resume_.expires_after(std::chrono::milliseconds(50));
        co_await resume_.async_wait(kTuple);
      }
      break;
    }
    // Backpressure: while storage lags or the client does not read what we send, stop reading
    // from it (its acknowledgements and replies would otherwise pile up here).
    while ((pending_.size() >= kMaxPendingOps || out_.size() + wbuf_.size() > kOutputHighWater) && socket_.is_open() &&
           !closing_) {
      resume_.expires_at(std::chrono::steady_clock::time_point::max());
      co_await resume_.async_wait(kTuple);
    }
    auto [wec] = co_await socket_.async_wait(tcp::socket::wait_read, kTuple);
    if (wec) break;
    auto& buf = scratch();
    boost::system::error_code ec;
    std::size_t n = socket_.read_some(asio::buffer(buf), ec);
    if (ec == asio::error::would_block) continue;
    if (ec || n == 0) break;
    last_rx_ = std::chrono::steady_clock::now();
    in_.append(reinterpret_cast<const char*>(buf.data()), n);
  }
}

bool Connection::handle(const FixedHeader& h, std::span<const std::uint8_t> body) {
  auto decoded = decode(h, body, version_);
  if (auto* err = std::get_if<DecodeError>(&decoded)) {
    protocolError(err->reason);
    return false;
  }
  Packet& packet = std::get<Packet>(decoded);
  if (auto* p = std::get_if<Publish>(&packet)) return onPublish(std::move(*p));
  if (auto* a = std::get_if<Ack>(&packet)) {
    switch (a->type) {
      case PacketType::kPuback:
        session_->puback(a->packet_id);
        pump();
        break;
      case PacketType::kPubrec:
        if (a->reason >= 0x80) {  // the receiver refused it: the flow ends here
          session_->pubrec(a->packet_id);
          session_->pubcomp(a->packet_id);
          pump();
        } else {
          const bool known = session_->pubrec(a->packet_id);
          sendPacket(Ack{PacketType::kPubrel, a->packet_id, known ? reason::kSuccess : reason::kPacketIdNotFound, {}});
        }
        break;
      case PacketType::kPubcomp:
        session_->pubcomp(a->packet_id);
        pump();
        break;
      case PacketType::kPubrel: {
        const bool known = session_->inboundQos2Seen(a->packet_id);
        if (known) {
          session_->inboundQos2Release(a->packet_id);
          if (inbound_inflight_ > 0) --inbound_inflight_;
        }
        sendPacket(Ack{PacketType::kPubcomp, a->packet_id, known ? reason::kSuccess : reason::kPacketIdNotFound, {}});
        break;
      }
      default: break;
    }
    return true;
  }
  if (auto* s = std::get_if<Subscribe>(&packet)) {
    onSubscribe(std::move(*s));
    return true;
  }
  if (auto* u = std::get_if<Unsubscribe>(&packet)) {
    onUnsubscribe(std::move(*u));
    return true;
  }
  if (std::holds_alternative<Pingreq>(packet)) {
    sendPacket(Pingresp{});
    return true;
  }
  if (auto* d = std::get_if<Disconnect>(&packet)) {
    // Only a normal disconnection (0x00) discards the will (MQTT 5 section 3.14.2.1).
    if (d->reason == reason::kSuccess) unclean_ = false;
    if (d->props.session_expiry_interval && session_->expiry() != 0)
      session_->setExpiry(std::min(*d->props.session_expiry_interval, server_.config.mqtt_max_session_expiry_s));
    beginClose();
    return false;
  }
  // A second CONNECT, an AUTH (no enhanced authentication here) or a server-only packet.
  protocolError(reason::kProtocolError);
  return false;
}

bool Connection::onPublish(Publish p) {
  auto& broker = server_.broker;
  broker.stats().received.inc();
  if (id_.kind == ClientKind::kDevice && last_rx_ - last_activity_ >= std::chrono::seconds(1)) {
    last_activity_ = last_rx_;  // at most once a second: the device table is shared by all workers
    broker.activity(id_.tenant, id_.device.device_id);
  }
  if (p.qos > 0) {
    if (version_ == Version::k5 && inbound_inflight_ >= static_cast<std::size_t>(server_.config.mqtt_receive_maximum)) {
      protocolError(reason::kReceiveMaxExceeded);
      return false;
    }
  }
  if (p.props.topic_alias) {
    const std::uint16_t alias = *p.props.topic_alias;
    if (alias == 0 || alias > server_.config.mqtt_topic_alias_maximum) {
      protocolError(reason::kTopicAliasInvalid);
      return false;
    }
    if (aliases_.size() < alias) aliases_.resize(alias);
    if (!p.topic.empty()) {
      aliases_[alias - 1] = p.topic;
    } else if (aliases_[alias - 1].empty()) {
      protocolError(reason::kTopicAliasInvalid);
      return false;
    } else {
      p.topic = aliases_[alias - 1];
    }
    p.props.topic_alias.reset();
  }
  if (!validTopicName(p.topic)) {
    protocolError(reason::kTopicNameInvalid);
    return false;
  }
  if (p.qos == 2 && session_->inboundQos2Seen(p.packet_id)) {
    // A retransmission of a message already taken: acknowledge again, do not process twice.
    sendPacket(Ack{PacketType::kPubrec, p.packet_id, 0, {}});
    return true;
  }
  if (p.qos > 0) ++inbound_inflight_;
  // Recorded on arrival, not after storage: a resend (DUP) on a new connection while this one
  // is still being stored must not be stored twice. Removed again if it is refused.
  if (p.qos == 2) session_->inboundQos2Add(p.packet_id);
  const std::uint64_t seq = pending_base_ + pending_.size();
  pending_.push_back(Pending{p.qos, p.packet_id, false, 0});

  auto finish = [&](std::uint8_t reason) {
    pending_.back().done = true;
    pending_.back().reason = reason;
    completeAcks();
  };
  if (id_.kind == ClientKind::kApp) {
    if (!appMayPublish(id_, p.topic)) {
      broker.stats().dropped_not_authorized.inc();
      finish(reason::kNotAuthorized);
      return true;
    }
    auto msg = toMessage(std::move(p), session_->clientId(), DeviceId());
    const bool any = broker.publish(id_.tenant, std::move(msg)) > 0;
    finish(any ? reason::kSuccess : reason::kNoMatchingSubscribers);
    return true;
  }
  auto op = classifyDeviceTopic(id_, p.topic);
  if (!op) {
    broker.stats().dropped_not_authorized.inc();
    finish(reason::kNotAuthorized);
    return true;
  }
  op->seq = seq;
  op->received_ms = nowMs();
  op->payload = std::move(p.payload);
  op->props = std::move(p.props);
  if (!needsStorage(op->kind)) {
    finish(routeDeviceMessage(DeviceApi{server_.pipeline, server_.metadata, broker}, id_, session_->clientId(), *op));
    return true;
  }
  ops_.push_back(std::move(*op));
  startJob();
  return true;
}

void Connection::startJob() {
  if (job_running_ || ops_.empty()) return;
  job_running_ = true;
  if (!gateway_cache_) gateway_cache_ = std::make_unique<GatewayCache>();
  auto ops = std::make_shared<std::vector<DeviceOp>>(std::move(ops_));
  ops_.clear();
  auto self = shared_from_this();
  auto ex = socket_.get_executor();
  auto& srv = server_;
  const bool queued = srv.pool.trySubmit([self, ex, ops, &srv] {
    std::vector<std::uint8_t> reasons =
        runDeviceOps(DeviceApi{srv.pipeline, srv.metadata, srv.broker}, self->id_, *ops, *self->gateway_cache_);
    asio::post(ex, [self, ops, reasons = std::move(reasons)] {
      self->job_running_ = false;
      if (!self->session_) return;  // the connection ended: the client resends what is unacknowledged
      for (std::size_t i = 0; i < ops->size(); ++i) {
        const std::uint64_t seq = (*ops)[i].seq;
        if (seq < self->pending_base_) continue;
        Pending& p = self->pending_[seq - self->pending_base_];
        p.done = true;
        p.reason = reasons[i];
      }
      self->completeAcks();
      self->startJob();
    });
  });
  if (!queued) {
    // The pool is saturated: retry shortly; the read loop's backpressure limits what piles up.
    ops_ = std::move(*ops);
    job_running_ = false;
    auto retry = std::make_shared<asio::steady_timer>(ex, std::chrono::milliseconds(5));
    retry->async_wait([self, retry](boost::system::error_code) {
      if (self->session_ && self->socket_.is_open()) self->startJob();
    });
  }
}

void Connection::completeAcks() {
  const bool v5 = version_ == Version::k5;
  while (!pending_.empty() && pending_.front().done) {
    Pending p = pending_.front();
    pending_.pop_front();
    ++pending_base_;
    if (p.reason == kReasonStorageFailed) {
      // Not stored and no way to say so in 3.1.1 (or a failure the client should retry): close
      // without acknowledging, so the client resends.
      disconnect(reason::kUnspecified);
      break;
    }
    auto& stats = server_.broker.stats();
    if (p.reason == reason::kQuotaExceeded) stats.dropped_rate.inc();
    if (p.reason == reason::kPayloadFormatInvalid) stats.dropped_invalid.inc();
    if (p.qos == 0) continue;
    std::uint8_t reason = p.reason;
    if (!v5) reason = reason::kSuccess;  // 3.1.1 has no negative acks: accepted and dropped
    if (p.qos == 1) {
      sendPacket(Ack{PacketType::kPuback, p.id, reason, {}});
      if (inbound_inflight_ > 0) --inbound_inflight_;
    } else {
      if (p.reason >= 0x80) {
        session_->inboundQos2Release(p.id);  // a refused QoS 2 message ends with the PUBREC
        if (inbound_inflight_ > 0) --inbound_inflight_;
      }
      sendPacket(Ack{PacketType::kPubrec, p.id, reason, {}});
    }
  }
  if (pending_.size() < kMaxPendingOps) resume_.cancel();
}

void Connection::onSubscribe(Subscribe s) {
  const bool v5 = version_ == Version::k5;
  Suback ack{s.packet_id, {}, {}};
  std::uint32_t sub_id = s.props.subscription_identifiers.empty() ? 0 : s.props.subscription_identifiers.front();
  std::vector<std::tuple<std::string, std::string, SubscriptionOptions, std::uint8_t>> accepted;
  for (auto& r : s.subscriptions) {
    auto shared = parseSharedFilter(r.filter);
    if (!shared || !validTopicFilter(shared->filter)) {
      ack.reasons.push_back(v5 ? reason::kTopicFilterInvalid : 0x80);
      continue;
    }
    if (!shared->group.empty() && r.no_local) {  // MQTT-3.8.3-4
      protocolError(reason::kProtocolError);
      return;
    }
    auto internal = internalFilter(id_, shared->filter, !shared->group.empty());
    if (!internal) {
      ack.reasons.push_back(v5 ? reason::kNotAuthorized : 0x80);
      continue;
    }
    if (session_->subscriptionCount() + accepted.size() >= kMaxSubscriptionsPerSession) {
      ack.reasons.push_back(v5 ? reason::kQuotaExceeded : 0x80);
      continue;
    }
    SubscriptionOptions o{std::min<std::uint8_t>(r.qos, 2), r.no_local, r.retain_as_published, sub_id};
    ack.reasons.push_back(o.qos);
    accepted.emplace_back(std::move(*internal), std::string(shared->group), o, r.retain_handling);
  }
  sendPacket(ack);
  bool rpc_ready = false;
  for (auto& [internal, group, o, rh] : accepted) {
    if (!server_.broker.subscribe(session_, internal, group, o, rh)) {
      continue;  // the session was taken over meanwhile
    }
    rpc_ready = rpc_ready || (id_.kind == ClientKind::kDevice && receivesRpc(id_, internal));
  }
  // Queued RPC goes out once the device listens for it (not on an unrelated subscription).
  if (rpc_ready) server_.broker.deviceReady(id_.tenant, id_.device.device_id);
}

void Connection::onUnsubscribe(Unsubscribe u) {
  Unsuback ack{u.packet_id, {}, {}};
  for (auto& f : u.filters) {
    auto shared = parseSharedFilter(f);
    std::optional<std::string> internal;
    if (shared) internal = internalFilter(id_, shared->filter, !shared->group.empty());
    const bool had = internal && server_.broker.unsubscribe(session_, *internal, std::string(shared->group));
    ack.reasons.push_back(had ? reason::kSuccess : reason::kNoSubscriptionExisted);
  }
  sendPacket(ack);
}

void Connection::pump() {
  if (!connected_ || closing_ || !session_ || !socket_.is_open()) return;
  if (out_.size() >= kOutputHighWater) return;  // resumed when the write completes
  if (session_->sink().get() != this) return;   // taken over: the new connection sends
  const std::size_t window = std::min<std::size_t>(client_receive_max_, server_.config.mqtt_max_inflight);
  std::vector<Session::Outgoing> batch;
  std::uint64_t expired = 0;
  session_->takeSendable(window, kOutputHighWater - out_.size(), batch, expired);
  auto& stats = server_.broker.stats();
  if (expired) stats.dropped_expired.inc(expired);
  const auto now = std::chrono::steady_clock::now();
  bool freed = false;
  for (auto& o : batch) {
    if (o.pubrel) {
      sendPacket(Ack{PacketType::kPubrel, o.packet_id, 0, {}});
      continue;
    }
    const Message& m = *o.delivery.msg;
    Publish p;
    p.dup = o.dup;
    p.qos = o.delivery.qos;
    p.retain = o.delivery.retain;
    p.packet_id = o.packet_id;
    p.topic = clientTopic(id_, m.topic);
    p.payload = m.payload;
    if (version_ == Version::k5) {
      p.props = m.props;
      if (m.expires) {
        auto left = std::chrono::duration_cast<std::chrono::seconds>(*m.expires - now).count();
        p.props.message_expiry_interval = static_cast<std::uint32_t>(std::max<std::int64_t>(left, 1));
      }
      p.props.subscription_identifiers = o.delivery.subscription_ids;
    }
    if (client_max_packet_ && encodedSize(p, version_) > client_max_packet_) {
      // MQTT-3.1.2-25: discard as if sent.
      stats.dropped_too_large.inc();
      if (p.qos == 1) freed |= session_->puback(p.packet_id);
      if (p.qos == 2) freed |= session_->pubrec(p.packet_id) && session_->pubcomp(p.packet_id);
      continue;
    }
    stats.sent.inc();
    sendPacket(p);
  }
  if (freed) wake();
}

}  // namespace sw::mqtt

namespace sw::mqtt {

MqttServer::MqttServer(const Config& config, runtime::IoWorkers& workers, ingest::IngestPipeline& pipeline,
                       storage::MetadataStore& metadata, Broker& broker, AppAuthenticator app_auth)
    : impl_(std::make_unique<Impl>(config, workers, pipeline, metadata, broker, std::move(app_auth))) {}

MqttServer::~MqttServer() = default;

Result<int> MqttServer::start() {
  auto& ctx = impl_->workers.at(0);
  auto acceptor = runtime::listenTcp(ctx, impl_->config.mqtt_bind, impl_->config.mqtt_port, "mqtt");
  if (!acceptor) return std::unexpected(acceptor.error());
  const int port = (*acceptor)->local_endpoint().port();
  impl_->acceptor = std::move(*acceptor);
  asio::co_spawn(ctx, impl_->acceptLoop(), asio::detached);
  impl_->ticker = std::make_unique<asio::steady_timer>(ctx);
  asio::post(ctx, [impl = impl_.get()] { impl->scheduleTick(); });
  return port;
}

void MqttServer::stopAccepting() {
  impl_->accepting = false;
  if (impl_->acceptor) {
    asio::post(impl_->acceptor->get_executor(), [impl = impl_.get()] {
      boost::system::error_code ec;
      impl->acceptor->close(ec);
      if (impl->ticker) impl->ticker->cancel();
    });
  }
}

void MqttServer::disconnectAll() {
  std::vector<std::shared_ptr<Connection>> conns;
  {
    std::lock_guard lock(impl_->conns_mutex);
    for (auto& w : impl_->conns)
      if (auto c = w.lock()) conns.push_back(std::move(c));
  }
  for (auto& c : conns) c->kick(reason::kServerShuttingDown);
}

void MqttServer::stop() {
  impl_->auth_pool.stop();
  impl_->pool.stop();
  impl_->saveStates();  // the last connection state, so it survives the restart
}

}  // namespace sw::mqtt
