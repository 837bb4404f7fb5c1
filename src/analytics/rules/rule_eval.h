#pragma once
// Threshold rules (issue 5): a condition over one or several keys of one device, e.g.
//   temperature > 80                      a threshold
//   temperature < 10 or temperature > 80  a range (also: temperature not between 10 and 80)
//   a - b > 3                             an expression over several keys
//   abs(vibration_x) >= 2.5 and rpm > 100
// Grammar: numbers, key names ([A-Za-z_][A-Za-z0-9_.-]*, see "Keys and -" below, or "quoted"),
// + - * / unary -, parentheses, abs() min() max(), comparisons > >= < <= == !=,
// between/not between, and/or/not.
// The text is untrusted (API input): parse() bounds its length (4 KiB) and nesting depth (64)
// and reports the offending position; it never crashes (fuzzed by fuzz_rule_expression). The
// 4 KiB bound also holds for the normalised text(), which adds spaces ("a>1" -> "a > 1").
//
// Details (rule_eval.cc; tested in tests/analytics/rules_test.cc):
// - Keys and '-': a '-' directly followed by a letter, digit or '_' inside a bare key is part of
//   the key, so `temp-1 > 3` and `a-b > 3` each read ONE key ("temp-1", "a-b"). To subtract, put
//   a space on either side: `a - b`, `a -b`, `a- b`. Any other key is quoted: "temp (C)" > 3
//   (escapes \" and \\). Keys are case-sensitive; keywords (and or not between, && || !) and
//   the functions abs min max are not. A key named like a keyword must be quoted.
// - Numbers: 80, -2.5, .5, 1e3, 1.5E-2 (finite doubles). `=` is accepted for `==`.
// - Precedence, loosest first: or, and, not, comparison / between, + -, * /, unary -. So
//   `not a > 1 and b < 2` is `(not (a > 1)) and (b < 2)`. Comparisons do not chain (a < b < c is
//   an error), `between` is inclusive (x between 10 and 80: 10 <= x <= 80).
// - Types: the top must be boolean, otherwise "the condition must compare, e.g. temperature > 80";
//   a comparison used as a number is an error; the condition must read at least one key.
// - Errors are invalid_argument, field "condition", message with a 1-based byte position, e.g.
//   "unexpected ')' at position 12 (expected a number, a key or '(')".
// - Arithmetic: x / 0 is NaN; a comparison of a NaN is "unknown", and and/or/not use three-valued
//   logic (unknown and false = false, unknown or true = true, not unknown = unknown); only a
//   definite true makes the condition hold.
//
// Not thread-safe; cheap to copy. The engine keeps one RuleState per (rule, device).
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace sw::analytics {

class Condition {
 public:
  // invalid_argument with field "condition" and a message naming the position on bad text; a
  // condition must be boolean (a comparison at the top, possibly combined with and/or/not).
  static Result<Condition> parse(std::string_view text);

  // The distinct keys the condition reads, in first-use order; evaluate() takes values aligned
  // with this list.
  const std::vector<std::string>& keys() const { return keys_; }
  // hysteresis >= 0 relaxes every comparison toward staying true: x > t holds while
  // x > t - hysteresis, x < t while x < t + hysteresis (between widens both ends, not between
  // narrows the excluded inside; == and != are unaffected; under `not` a comparison is tightened
  // instead, so the whole condition is still relaxed). Used while the alarm is active so that a
  // value hovering at the threshold does not flap. Negative or NaN hysteresis counts as 0.
  // NaN among the values (a key not seen yet) makes the result false; so do fewer values than
  // keys(). No allocation: it runs the compiled postfix code on a fixed-size stack.
  bool evaluate(std::span<const double> values, double hysteresis = 0) const;
  // The value of the left-hand side of the first comparison (for "observed" in explanations);
  // its right-hand side when only that one reads a key (80 < temperature). NaN if a value is.
  double observed(std::span<const double> values) const;
  // Normalised text (for display): canonical spacing, lower-case keywords, only the needed
  // parentheses; parse(text()) gives the same condition.
  std::string text() const;

  struct Node;  // implementation detail (rule_eval.cc)

 private:
  std::shared_ptr<const Node> root_;
  std::vector<std::string> keys_;
};

// Duration and hysteresis around a Condition for one device.
struct RuleSpec {
  std::int64_t duration_ms = 0;  // the condition must hold this long (0: at once)
  double hysteresis = 0;         // see Condition::evaluate
};

enum class RuleTransition { kNone, kRaise, kClear };

class RuleState {
 public:
  // Feeds the latest values (aligned with Condition::keys()) at ts_ms, in time order.
  // kRaise: the condition has held (strictly) for duration_ms; kClear: an active alarm's relaxed
  // condition no longer holds. Out-of-order points (ts < last) are ignored (kNone).
  // Pending starts at the first point where the (non-relaxed) condition holds and is reset by a
  // point where it does not; kRaise once ts - pending start >= duration_ms (duration 0: on the
  // first true point).
  RuleTransition update(const Condition& c, const RuleSpec& spec, std::int64_t ts_ms, std::span<const double> values);
  bool active() const { return active_; }
  std::int64_t pendingSince() const { return pending_since_; }  // -1 when not pending
  // Checkpoint: save() appends 21 bytes; load() returns false (state unchanged) on anything
  // save() did not write.
  void save(std::string& out) const;
  bool load(std::string_view in);

 private:
  bool active_ = false;
  bool pending_ = false;  // pending_since_ is valid (timestamps may be negative)
  std::int64_t pending_since_ = -1;
  std::int64_t last_ts_ = INT64_MIN;
};

}  // namespace sw::analytics
