#include "ingest/transports/mqtt/session.h"

namespace sw::mqtt {

bool Session::deliver(Delivery delivery) {
  std::shared_ptr<Sink> sink;
  {
    std::lock_guard lock(mutex_);
    if (queue_.size() >= max_queued_) return false;
    queue_.push_back(std::move(delivery));
    sink = sink_;
  }
  if (sink) sink->wake();
  return true;
}

std::shared_ptr<Session::Sink> Session::attach(std::shared_ptr<Sink> sink) {
  std::lock_guard lock(mutex_);
  disconnected_at_.reset();
  std::swap(sink_, sink);
  return sink;
}

std::shared_ptr<Session::Sink> Session::sink() const {
  std::lock_guard lock(mutex_);
  return sink_;
}

bool Session::detach(const Sink* sink) {
  std::lock_guard lock(mutex_);
  if (sink_.get() != sink) return false;
  sink_.reset();
  disconnected_at_ = std::chrono::steady_clock::now();
  return true;
}

bool Session::connected() const {
  std::lock_guard lock(mutex_);
  return sink_ != nullptr;
}

void Session::setExpiry(std::uint32_t seconds) {
  std::lock_guard lock(mutex_);
  expiry_s_ = seconds;
}

std::uint32_t Session::expiry() const {
  std::lock_guard lock(mutex_);
  return expiry_s_;
}

std::optional<SteadyTime> Session::disconnectedAt() const {
  std::lock_guard lock(mutex_);
  return disconnected_at_;
}

bool Session::addSubscription(const std::string& filter, const SubscriptionOptions& options) {
  std::lock_guard lock(mutex_);
  auto [it, inserted] = subscriptions_.insert_or_assign(filter, options);
  return inserted;
}

bool Session::removeSubscription(const std::string& filter) {
  std::lock_guard lock(mutex_);
  return subscriptions_.erase(filter) > 0;
}

std::map<std::string, SubscriptionOptions> Session::subscriptions() const {
  std::lock_guard lock(mutex_);
  return subscriptions_;
}

std::size_t Session::subscriptionCount() const {
  std::lock_guard lock(mutex_);
  return subscriptions_.size();
}

std::uint16_t Session::nextPacketId() {
  // Caller holds the lock and guarantees fewer than 65535 ids are in flight.
  do {
    last_id_ = static_cast<std::uint16_t>(last_id_ + 1);
  } while (last_id_ == 0 || inflight_.contains(last_id_));
  return last_id_;
}

void Session::takeSendable(std::size_t inflight_window, std::size_t byte_budget, std::vector<Outgoing>& out,
                           std::uint64_t& expired_drops) {
  std::lock_guard lock(mutex_);
  // Retransmissions count against the (possibly smaller) window of the new connection.
  std::size_t resent = 0;
  bool pending_resend = false;
  for (auto& [id, f] : inflight_) {
    if (!f.resend) continue;
    if (resent >= inflight_window) {
      pending_resend = true;
      break;
    }
    f.resend = false;
    ++resent;
    out.push_back(Outgoing{id, f.delivery, !f.released, f.released});
  }
  if (pending_resend) return;
  const auto now = std::chrono::steady_clock::now();
  std::size_t bytes = 0;
  while (!queue_.empty() && (bytes < byte_budget || out.empty())) {
    Delivery& d = queue_.front();
    if (d.msg->expires && *d.msg->expires <= now) {
      ++expired_drops;
      queue_.pop_front();
      continue;
    }
    bytes += d.msg->payload.size() + d.msg->topic.size();
    if (d.qos == 0) {
      out.push_back(Outgoing{0, std::move(d), false, false});
      queue_.pop_front();
      continue;
    }
    if (inflight_.size() >= inflight_window || inflight_.size() >= 65535) break;
    const std::uint16_t id = nextPacketId();
    inflight_.emplace(id, Inflight{d, false, false});
    out.push_back(Outgoing{id, std::move(d), false, false});
    queue_.pop_front();
  }
}

void Session::prepareResend() {
  std::lock_guard lock(mutex_);
  for (auto& [id, f] : inflight_) f.resend = true;
}

bool Session::puback(std::uint16_t id) {
  std::lock_guard lock(mutex_);
  auto it = inflight_.find(id);
  if (it == inflight_.end() || it->second.delivery.qos != 1) return false;
  inflight_.erase(it);
  return true;
}

bool Session::pubrec(std::uint16_t id) {
  std::lock_guard lock(mutex_);
  auto it = inflight_.find(id);
  if (it == inflight_.end() || it->second.delivery.qos != 2) return false;
  it->second.released = true;
  it->second.delivery.msg.reset();  // the payload is no longer needed
  return true;
}

bool Session::pubcomp(std::uint16_t id) {
  std::lock_guard lock(mutex_);
  auto it = inflight_.find(id);
  if (it == inflight_.end() || !it->second.released) return false;
  inflight_.erase(it);
  return true;
}

std::size_t Session::inflight() const {
  std::lock_guard lock(mutex_);
  return inflight_.size();
}

std::size_t Session::queued() const {
  std::lock_guard lock(mutex_);
  return queue_.size();
}

bool Session::inboundQos2Seen(std::uint16_t id) const {
  std::lock_guard lock(mutex_);
  return inbound_qos2_.contains(id);
}

void Session::inboundQos2Add(std::uint16_t id) {
  std::lock_guard lock(mutex_);
  inbound_qos2_.insert(id);
}

void Session::inboundQos2Release(std::uint16_t id) {
  std::lock_guard lock(mutex_);
  inbound_qos2_.erase(id);
}

void Session::clear() {
  std::lock_guard lock(mutex_);
  subscriptions_.clear();
  queue_.clear();
  inflight_.clear();
  inbound_qos2_.clear();
}

}  // namespace sw::mqtt
