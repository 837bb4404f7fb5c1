#include "ingest/transports/mqtt/topic.h"

#include <algorithm>

namespace sw::mqtt {

namespace {
bool withinLevelLimit(std::string_view s) {
  return static_cast<std::size_t>(std::count(s.begin(), s.end(), '/')) < kMaxTopicLevels;
}
}  // namespace

bool validTopicName(std::string_view topic) {
  return !topic.empty() && topic.find_first_of("+#") == std::string_view::npos && withinLevelLimit(topic);
}

bool validTopicFilter(std::string_view filter) {
  if (filter.empty() || !withinLevelLimit(filter)) return false;
  std::size_t start = 0;
  while (true) {
    const std::size_t end = filter.find('/', start);
    const std::string_view level = filter.substr(start, end == std::string_view::npos ? end : end - start);
    if (level.find_first_of("+#") != std::string_view::npos) {
      if (level.size() != 1) return false;
      if (level == "#" && end != std::string_view::npos) return false;
    }
    if (end == std::string_view::npos) return true;
    start = end + 1;
  }
}

std::optional<SharedFilter> parseSharedFilter(std::string_view filter) {
  constexpr std::string_view kPrefix = "$share/";
  if (!filter.starts_with(kPrefix)) return SharedFilter{{}, filter};
  const std::string_view rest = filter.substr(kPrefix.size());
  const std::size_t slash = rest.find('/');
  if (slash == std::string_view::npos || slash == 0) return std::nullopt;
  const std::string_view group = rest.substr(0, slash);
  if (group.find_first_of("+#") != std::string_view::npos) return std::nullopt;
  const std::string_view inner = rest.substr(slash + 1);
  if (!validTopicFilter(inner)) return std::nullopt;
  return SharedFilter{group, inner};
}

bool topicMatches(std::string_view filter, std::string_view topic) {
  if (!topic.empty() && topic.front() == '$' && !filter.empty() && (filter.front() == '+' || filter.front() == '#'))
    return false;
  std::size_t f = 0, t = 0;
  while (true) {
    const std::size_t fe = filter.find('/', f);
    const std::string_view flevel = filter.substr(f, fe == std::string_view::npos ? fe : fe - f);
    if (flevel == "#") return true;  // matches the parent level too ("a/#" matches "a")
    const std::size_t te = topic.find('/', t);
    const std::string_view tlevel = topic.substr(t, te == std::string_view::npos ? te : te - t);
    if (flevel != "+" && flevel != tlevel) return false;
    const bool flast = fe == std::string_view::npos, tlast = te == std::string_view::npos;
    if (flast || tlast) {
      if (flast && tlast) return true;
      // The topic has ended: only a trailing "/#" still matches.
      return tlast && !flast && filter.substr(fe + 1) == "#";
    }
    f = fe + 1;
    t = te + 1;
  }
}

}  // namespace sw::mqtt
