#include "ingest/transports/mqtt/topic_tree.h"

#include <algorithm>

namespace sw::mqtt {
namespace {

std::vector<std::string_view> levels(std::string_view filter) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  while (true) {
    const std::size_t end = filter.find('/', start);
    out.push_back(filter.substr(start, end == std::string_view::npos ? end : end - start));
    if (end == std::string_view::npos) return out;
    start = end + 1;
  }
}

}  // namespace

void TopicTree::add(std::string_view filter, std::string_view group, std::shared_ptr<Session> session,
                    const SubscriptionOptions& options) {
  Node* node = &root_;
  for (std::string_view level : levels(filter)) {
    auto it = node->children.find(level);
    if (it == node->children.end()) it = node->children.emplace(std::string(level), std::make_unique<Node>()).first;
    node = it->second.get();
  }
  std::vector<Entry>& list =
      group.empty() ? node->subscribers : node->groups.try_emplace(std::string(group)).first->second.members;
  for (auto& e : list) {
    if (e.session == session) {
      e.options = options;
      return;
    }
  }
  list.push_back(Entry{std::move(session), options});
  ++count_;
}

bool TopicTree::remove(std::string_view filter, std::string_view group, const Session* session) {
  std::vector<Node*> path{&root_};
  std::vector<std::string_view> lv = levels(filter);
  for (std::string_view level : lv) {
    auto it = path.back()->children.find(level);
    if (it == path.back()->children.end()) return false;
    path.push_back(it->second.get());
  }
  Node* node = path.back();
  bool removed = false;
  auto drop = [&](std::vector<Entry>& list) {
    auto it = std::find_if(list.begin(), list.end(), [&](const Entry& e) { return e.session.get() == session; });
    if (it == list.end()) return;
    list.erase(it);
    removed = true;
    --count_;
  };
  if (group.empty()) {
    drop(node->subscribers);
  } else if (auto g = node->groups.find(group); g != node->groups.end()) {
    drop(g->second.members);
    if (g->second.members.empty()) node->groups.erase(g);
  }
  // Prune empty nodes bottom-up so the trie does not keep dead branches.
  for (std::size_t i = lv.size(); i > 0; --i) {
    Node* parent = path[i - 1];
    if (!path[i]->empty()) break;
    parent->children.erase(parent->children.find(lv[i - 1]));
  }
  return removed;
}

void TopicTree::visitNode(const Node& node, bool pick, const Visit& visit) {
  for (const auto& e : node.subscribers) visit(e);
  for (const auto& [name, g] : node.groups) {
    if (g.members.empty()) continue;
    if (!pick) {
      visit(g.members.front());
      continue;
    }
    // Prefer a connected member, starting at the round-robin position.
    const std::size_t n = g.members.size();
    const std::size_t start = g.next.fetch_add(1, std::memory_order_relaxed);
    std::size_t chosen = start % n;
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t k = (start + i) % n;
      if (g.members[k].session->connected()) {
        chosen = k;
        break;
      }
    }
    visit(g.members[chosen]);
  }
}

void TopicTree::matchLevel(const Node& node, std::string_view topic, std::size_t pos, bool first, bool pick,
                           const Visit& visit) const {
  const bool dollar = first && !topic.empty() && topic.front() == '$';
  // '#' matches this level and everything below, including the parent ("a/#" matches "a").
  if (!dollar) {
    if (auto it = node.children.find("#"); it != node.children.end()) visitNode(*it->second, pick, visit);
  }
  const std::size_t end = topic.find('/', pos);
  const std::string_view level = topic.substr(pos, end == std::string_view::npos ? end : end - pos);
  auto step = [&](const Node& child) {
    if (end == std::string_view::npos) {
      visitNode(child, pick, visit);
      if (auto h = child.children.find("#"); h != child.children.end()) visitNode(*h->second, pick, visit);
    } else {
      matchLevel(child, topic, end + 1, false, pick, visit);
    }
  };
  if (auto it = node.children.find(level); it != node.children.end()) step(*it->second);
  if (!dollar) {
    if (auto it = node.children.find("+"); it != node.children.end()) step(*it->second);
  }
}

void TopicTree::match(std::string_view topic, const std::function<void(const Entry&)>& visit) const {
  matchLevel(root_, topic, 0, true, true, visit);
}

bool TopicTree::anyMatch(std::string_view topic) const {
  bool any = false;
  matchLevel(root_, topic, 0, true, false, [&](const Entry&) { any = true; });
  return any;
}

}  // namespace sw::mqtt
