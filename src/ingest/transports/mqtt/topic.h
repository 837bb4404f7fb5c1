#pragma once
// Topic names and filters (MQTT section 4.7): validation, shared-subscription parsing and
// matching of one name against one filter. Pure functions, reentrant.
#include <cstddef>
#include <optional>
#include <string_view>

namespace sw::mqtt {

// Topic names and filters are limited to this many levels: matching walks the levels, and a
// client must not be able to make that walk arbitrarily deep.
inline constexpr std::size_t kMaxTopicLevels = 128;

// A PUBLISH topic: non-empty, no '+' or '#', at most kMaxTopicLevels levels. (UTF-8 validity is
// checked by the decoder.)
bool validTopicName(std::string_view topic);

// A SUBSCRIBE filter: non-empty; '#' only as the whole last level; '+' only as a whole level;
// at most kMaxTopicLevels levels.
bool validTopicFilter(std::string_view filter);

struct SharedFilter {
  std::string_view group;   // empty for a normal subscription
  std::string_view filter;  // the filter proper
};
// Splits "$share/{group}/{filter}". nullopt when it starts with "$share/" but is malformed
// (empty group, group with wildcards, missing filter).
std::optional<SharedFilter> parseSharedFilter(std::string_view filter);

// True when topic matches filter. Wildcards at the first level do not match topics starting
// with '$' (MQTT-4.7.2-1).
bool topicMatches(std::string_view filter, std::string_view topic);

}  // namespace sw::mqtt
