#pragma once
// The subscription index of one tenant: a trie over topic levels, with '+' and '#' children.
// Shared subscriptions ($share/{group}/{filter}) hang off the filter's node by group; a message
// goes to one member of each group (round robin, connected members first).
//
// Thread-safety: none; the owning TenantSpace guards it (shared lock for match, exclusive for
// add/remove). Entries hold the session by shared_ptr; removing the session's subscriptions is
// the owner's job when the session ends.
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ingest/transports/mqtt/session.h"

namespace sw::mqtt {

class TopicTree {
 public:
  struct Entry {
    std::shared_ptr<Session> session;
    SubscriptionOptions options;
  };

  // Adds or replaces the session's subscription to filter (group empty: not shared).
  void add(std::string_view filter, std::string_view group, std::shared_ptr<Session> session,
           const SubscriptionOptions& options);
  bool remove(std::string_view filter, std::string_view group, const Session* session);
  // Calls visit for every subscription matching topic; for shared groups, once per group with
  // the chosen member. A session with several matching filters is visited once per filter.
  void match(std::string_view topic, const std::function<void(const Entry&)>& visit) const;
  bool anyMatch(std::string_view topic) const;
  std::size_t size() const { return count_; }

 private:
  struct Group {
    std::vector<Entry> members;
    mutable std::atomic<std::size_t> next{0};  // round robin; match runs under a shared lock
  };
  struct Node {
    std::map<std::string, std::unique_ptr<Node>, std::less<>> children;
    std::vector<Entry> subscribers;
    std::map<std::string, Group, std::less<>> groups;
    bool empty() const { return children.empty() && subscribers.empty() && groups.empty(); }
  };
  using Visit = std::function<void(const Entry&)>;
  void matchLevel(const Node& node, std::string_view topic, std::size_t pos, bool first, bool pick,
                  const Visit& visit) const;
  // pick: choose (and advance) a shared group's member; otherwise visit its first member.
  static void visitNode(const Node& node, bool pick, const Visit& visit);

  Node root_;
  std::size_t count_ = 0;
};

}  // namespace sw::mqtt
