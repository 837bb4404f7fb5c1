// Rule conditions and the rule state machine (src/analytics/rules/rule_eval.h): every construct,
// precedence, errors with positions, the '-' in keys, NaN, hysteresis, duration, text() round
// trips and checkpoints.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "analytics/rules/rule_eval.h"

namespace sw::analytics {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr std::int64_t kMinute = 60'000;

Condition parseOk(std::string_view text) {
  auto c = Condition::parse(text);
  EXPECT_TRUE(c.has_value()) << text << ": " << (c ? "" : c.error().message);
  if (!c) return *Condition::parse("x > 0");
  return *c;
}

// Evaluates `text` with named values (keys missing from the map are NaN).
bool eval(std::string_view text, const std::map<std::string, double>& named, double hysteresis = 0) {
  Condition c = parseOk(text);
  std::vector<double> values;
  for (const auto& k : c.keys()) {
    auto it = named.find(k);
    values.push_back(it == named.end() ? kNaN : it->second);
  }
  return c.evaluate(values, hysteresis);
}

std::string errorOf(std::string_view text) {
  auto c = Condition::parse(text);
  EXPECT_FALSE(c.has_value()) << text << " parsed as " << (c ? c->text() : "");
  if (c) return {};
  EXPECT_EQ(c.error().code, Code::kInvalidArgument) << text;
  EXPECT_EQ(c.error().field, "condition") << text;
  return c.error().message;
}

std::string normalised(std::string_view text) {
  return parseOk(text).text();
}

TEST(RuleCondition, Threshold) {
  auto c = parseOk("temperature > 80");
  EXPECT_EQ(c.keys(), std::vector<std::string>{"temperature"});
  std::vector<double> v{81};
  EXPECT_TRUE(c.evaluate(v));
  v[0] = 80;
  EXPECT_FALSE(c.evaluate(v));
  EXPECT_TRUE(eval("temperature >= 80", {{"temperature", 80}}));
  EXPECT_TRUE(eval("t < 10", {{"t", 9.5}}));
  EXPECT_FALSE(eval("t < 10", {{"t", 10}}));
  EXPECT_TRUE(eval("t <= 10", {{"t", 10}}));
  EXPECT_TRUE(eval("t == 3", {{"t", 3}}));
  EXPECT_TRUE(eval("t = 3", {{"t", 3}}));
  EXPECT_FALSE(eval("t != 3", {{"t", 3}}));
  EXPECT_TRUE(eval("t != 3", {{"t", 4}}));
  EXPECT_TRUE(eval("80 < t", {{"t", 81}}));
}

TEST(RuleCondition, Numbers) {
  EXPECT_TRUE(eval("x == 1e3", {{"x", 1000}}));
  EXPECT_TRUE(eval("x == 1E-3", {{"x", 0.001}}));
  EXPECT_TRUE(eval("x == 1.5e+2", {{"x", 150}}));
  EXPECT_TRUE(eval("x == .5", {{"x", 0.5}}));
  EXPECT_TRUE(eval("x == 2.", {{"x", 2}}));
  EXPECT_TRUE(eval("x == -2.5", {{"x", -2.5}}));
  EXPECT_TRUE(eval("x > -1e-3", {{"x", 0}}));
  EXPECT_NE(errorOf("x > 1e999").find("out of range at position 5"), std::string::npos);
  // "1e" is not an exponent: 1 followed by the key e, which is a syntax error.
  EXPECT_NE(errorOf("x > 1e").find("unexpected 'e' at position 6"), std::string::npos);
}

TEST(RuleCondition, Arithmetic) {
  EXPECT_TRUE(eval("a - b > 3", {{"a", 10}, {"b", 6}}));
  EXPECT_FALSE(eval("a - b > 3", {{"a", 10}, {"b", 7}}));
  EXPECT_TRUE(eval("a + b == 5", {{"a", 2}, {"b", 3}}));
  EXPECT_TRUE(eval("a * b == 6", {{"a", 2}, {"b", 3}}));
  EXPECT_TRUE(eval("a / b == 2", {{"a", 6}, {"b", 3}}));
  EXPECT_TRUE(eval("-a == 2", {{"a", -2}}));
  EXPECT_TRUE(eval("- -a == 2", {{"a", 2}}));
  EXPECT_TRUE(eval("abs(vibration_x) >= 2.5 and rpm > 100", {{"vibration_x", -3}, {"rpm", 120}}));
  EXPECT_FALSE(eval("abs(vibration_x) >= 2.5 and rpm > 100", {{"vibration_x", -2}, {"rpm", 120}}));
  EXPECT_TRUE(eval("min(a, b) == 1", {{"a", 1}, {"b", 2}}));
  EXPECT_TRUE(eval("max(a, b, c) == 7", {{"a", 1}, {"b", 7}, {"c", 2}}));
  EXPECT_TRUE(eval("MIN(a, b, c, 0) == 0", {{"a", 1}, {"b", 7}, {"c", 2}}));
  EXPECT_TRUE(eval("Abs(a - b) < 0.5", {{"a", 1}, {"b", 1.25}}));
  EXPECT_TRUE(eval("(a + b) * 2 > 9", {{"a", 2}, {"b", 3}}));
  // Same key twice is one value.
  auto c = parseOk("x > 1 and x < 5 or y > x");
  EXPECT_EQ(c.keys(), (std::vector<std::string>{"x", "y"}));
}

TEST(RuleCondition, Precedence) {
  // a + b * c > d  is  a + (b * c) > d
  EXPECT_TRUE(eval("a + b * c > d", {{"a", 1}, {"b", 2}, {"c", 3}, {"d", 6.5}}));   // 7 > 6.5
  EXPECT_FALSE(eval("a + b * c > d", {{"a", 1}, {"b", 2}, {"c", 3}, {"d", 8.5}}));  // (1+2)*3 = 9 would hold
  EXPECT_TRUE(eval("a - b - c == 5", {{"a", 10}, {"b", 3}, {"c", 2}}));             // left-associative
  EXPECT_TRUE(eval("a / b / c == 1", {{"a", 8}, {"b", 4}, {"c", 2}}));
  EXPECT_TRUE(eval("-a * b == -6", {{"a", 2}, {"b", 3}}));
  // not binds tighter than and: (not a > 1) and b < 2
  EXPECT_TRUE(eval("not a > 1 and b < 2", {{"a", 0}, {"b", 1}}));
  EXPECT_FALSE(eval("not a > 1 and b < 2", {{"a", 0}, {"b", 3}}));  // not (a > 1 and b < 2) would hold
  // and binds tighter than or
  EXPECT_TRUE(eval("a > 1 or b > 1 and c > 1", {{"a", 2}, {"b", 0}, {"c", 0}}));
  EXPECT_FALSE(eval("(a > 1 or b > 1) and c > 1", {{"a", 2}, {"b", 0}, {"c", 0}}));
  EXPECT_EQ(normalised("a + b * c > d"), "a + b * c > d");
  EXPECT_EQ(normalised("(a + b) * c > d"), "(a + b) * c > d");
  EXPECT_EQ(normalised("((a)) - (b - c) > ((d))"), "a - (b - c) > d");
  EXPECT_EQ(normalised("not a > 1 and b < 2"), "not a > 1 and b < 2");
  EXPECT_EQ(normalised("not (a > 1 and b < 2)"), "not (a > 1 and b < 2)");
  EXPECT_EQ(normalised("a > 1 or (b > 1 and c > 1)"), "a > 1 or b > 1 and c > 1");
  EXPECT_EQ(normalised("(a > 1 or b > 1) and c > 1"), "(a > 1 or b > 1) and c > 1");
}

TEST(RuleCondition, LogicKeywordsAndSymbols) {
  EXPECT_TRUE(eval("a > 1 AND b > 1", {{"a", 2}, {"b", 2}}));
  EXPECT_TRUE(eval("a > 1 && b > 1", {{"a", 2}, {"b", 2}}));
  EXPECT_TRUE(eval("a > 1 Or b > 1", {{"a", 0}, {"b", 2}}));
  EXPECT_TRUE(eval("a > 1 || b > 1", {{"a", 0}, {"b", 2}}));
  EXPECT_TRUE(eval("NOT a > 1", {{"a", 0}}));
  EXPECT_TRUE(eval("!(a > 1)", {{"a", 0}}));
  EXPECT_TRUE(eval("not not a > 1", {{"a", 2}}));
  EXPECT_EQ(normalised("a>1&&b>1||!(c>1)"), "a > 1 and b > 1 or not c > 1");
  EXPECT_EQ(normalised("x BETWEEN 1 AND 2"), "x between 1 and 2");
}

TEST(RuleCondition, Between) {
  EXPECT_TRUE(eval("x between 10 and 80", {{"x", 10}}));
  EXPECT_TRUE(eval("x between 10 and 80", {{"x", 80}}));
  EXPECT_TRUE(eval("x between 10 and 80", {{"x", 45}}));
  EXPECT_FALSE(eval("x between 10 and 80", {{"x", 80.5}}));
  EXPECT_FALSE(eval("x between 10 and 80", {{"x", 9}}));
  EXPECT_TRUE(eval("x not between 10 and 80", {{"x", 9}}));
  EXPECT_TRUE(eval("x not between 10 and 80", {{"x", 81}}));
  EXPECT_FALSE(eval("x not between 10 and 80", {{"x", 10}}));
  // Bounds are expressions; the and of between is not the logical and.
  EXPECT_TRUE(eval("x between lo - 1 and hi + 1 and y > 0", {{"x", 0}, {"lo", 1}, {"hi", 5}, {"y", 1}}));
  EXPECT_FALSE(eval("x between lo - 1 and hi + 1 and y > 0", {{"x", 0}, {"lo", 1}, {"hi", 5}, {"y", -1}}));
  EXPECT_EQ(normalised("x  not  between 10 and 80"), "x not between 10 and 80");
  EXPECT_NE(errorOf("x between 80 and 10").find("lower bound 80 is above the upper bound 10"), std::string::npos);
  EXPECT_NE(errorOf("x between 10 or 80").find("unexpected 'or' at position 14"), std::string::npos);
}

TEST(RuleCondition, MinusInKeys) {
  // A '-' directly between key characters is part of the key.
  EXPECT_EQ(parseOk("temp-1 > 3").keys(), std::vector<std::string>{"temp-1"});
  EXPECT_EQ(parseOk("a-b > 3").keys(), std::vector<std::string>{"a-b"});
  EXPECT_EQ(parseOk("a-b-c > 3").keys(), std::vector<std::string>{"a-b-c"});
  // A space on either side makes it a minus.
  for (auto text : {"a - b > 3", "a -b > 3", "a- b > 3"}) {
    auto c = parseOk(text);
    EXPECT_EQ(c.keys(), (std::vector<std::string>{"a", "b"})) << text;
    EXPECT_EQ(c.text(), "a - b > 3") << text;
    std::vector<double> v{10, 6};
    EXPECT_TRUE(c.evaluate(v)) << text;
  }
  // Not followed by a key character, '-' ends the key.
  EXPECT_EQ(parseOk("a--b > 3").keys(), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(parseOk("a--b > 3").text(), "a - -b > 3");
  EXPECT_EQ(parseOk("a-.5 > 3").keys(), std::vector<std::string>{"a"});
  EXPECT_EQ(parseOk("a-(b) > 3").keys(), (std::vector<std::string>{"a", "b"}));
  // Dots and digits inside keys.
  EXPECT_EQ(parseOk("motor.temp_2 > 3").keys(), std::vector<std::string>{"motor.temp_2"});
  EXPECT_EQ(parseOk("x-1 > 0").keys(), std::vector<std::string>{"x-1"});
  EXPECT_EQ(parseOk("x - 1 > 0").keys(), std::vector<std::string>{"x"});
}

TEST(RuleCondition, QuotedKeys) {
  auto c = parseOk("\"temp \\\"C\\\\\" > 3 and \"and\" < 2 and \"9lives\" == 1");
  EXPECT_EQ(c.keys(), (std::vector<std::string>{"temp \"C\\", "and", "9lives"}));
  EXPECT_EQ(c.text(), "\"temp \\\"C\\\\\" > 3 and \"and\" < 2 and \"9lives\" == 1");
  EXPECT_EQ(normalised("\"plain\" > 1"), "plain > 1");
  EXPECT_EQ(normalised("\"a-\" > 1"), "\"a-\" > 1");
  EXPECT_EQ(normalised("\"temp-1\" > 1"), "temp-1 > 1");
  EXPECT_EQ(normalised("\"a b\" - \"between\" > 1"), "\"a b\" - \"between\" > 1");
  // A key named like a function is a key unless called.
  EXPECT_TRUE(eval("abs > 3", {{"abs", 4}}));
  EXPECT_EQ(normalised("abs > 3"), "abs > 3");
  EXPECT_NE(errorOf("\"\" > 1").find("empty quoted key at position 1"), std::string::npos);
  EXPECT_NE(errorOf("\"abc > 1").find("unterminated quoted key at position 1"), std::string::npos);
  EXPECT_NE(errorOf("\"a\\n\" > 1").find("unknown escape in quoted key at position 3"), std::string::npos);
  EXPECT_NE(errorOf("\"a\nb\" > 1").find("control character in quoted key at position 3"), std::string::npos);
  EXPECT_NE(errorOf("t\xc3\xa9 > 1").find("quote other keys"), std::string::npos);
}

TEST(RuleCondition, ErrorsWithPositions) {
  EXPECT_EQ(errorOf("temperature > )"), "unexpected ')' at position 15 (expected a number, a key or '(')");
  EXPECT_EQ(errorOf("(temperature > 80))"), "unexpected ')' at position 19");
  EXPECT_EQ(errorOf("(temperature > 80"), "unexpected end of the condition at position 18 (expected ')')");
  EXPECT_EQ(errorOf("temperature >"),
            "unexpected end of the condition at position 14 (expected a number, a key or '(')");
  EXPECT_EQ(errorOf("temperature + 1"), "the condition must compare, e.g. temperature > 80");
  EXPECT_EQ(errorOf("temperature"), "the condition must compare, e.g. temperature > 80");
  EXPECT_EQ(errorOf(""), "the condition is empty; e.g. temperature > 80");
  EXPECT_EQ(errorOf("   "), "the condition is empty; e.g. temperature > 80");
  EXPECT_EQ(errorOf("1 > 0"), "the condition reads no key, e.g. temperature > 80");
  EXPECT_EQ(errorOf("(a > 1) + 2 > 3"), "a comparison cannot be used as a number at position 1");
  EXPECT_EQ(errorOf("abs(a > 1) > 0"), "a comparison cannot be used as a number at position 5");
  EXPECT_EQ(errorOf("a and b > 1"), "expected a comparison at position 1, e.g. temperature > 80");
  EXPECT_EQ(errorOf("a > 1 or b"), "expected a comparison at position 10, e.g. temperature > 80");
  EXPECT_EQ(errorOf("not a"), "expected a comparison at position 5, e.g. temperature > 80");
  EXPECT_EQ(errorOf("a < b < c"), "comparisons cannot be chained at position 7; combine them with and");
  EXPECT_EQ(errorOf("a # 1"), "unexpected character '#' at position 3");
  EXPECT_EQ(errorOf("a & 1"), "unexpected character '&' at position 3");
  EXPECT_EQ(errorOf("sqrt(a) > 1"), "unknown function 'sqrt' at position 1 (known: abs, min, max)");
  EXPECT_EQ(errorOf("abs(a, b) > 1"), "abs takes one argument at position 6");
  EXPECT_EQ(errorOf("min(a) > 1"), "min takes at least two arguments at position 6");
  EXPECT_EQ(errorOf("max() > 1"), "unexpected ')' at position 5 (expected a number, a key or '(')");
  EXPECT_EQ(errorOf("min(a b) > 1"), "unexpected 'b' at position 7 (expected ',' or ')')");
  EXPECT_EQ(errorOf("a > 1 and"), "unexpected end of the condition at position 10 (expected a number, a key or '(')");
  EXPECT_EQ(errorOf("a > 80 for 5 min"), "unexpected 'for' at position 8");
  EXPECT_EQ(errorOf("and > 1"), "unexpected 'and' at position 1 (expected a number, a key or '(')");
}

TEST(RuleCondition, Bounds) {
  // Length: 4 KiB.
  std::string ok = "x > 1";
  while (ok.size() + 10 <= 4096) ok += " or x > 1";
  EXPECT_TRUE(Condition::parse(ok).has_value());
  std::string filler = "x > 1" + std::string(4096, ' ');
  EXPECT_EQ(errorOf(filler), "the condition is longer than 4096 bytes");
  // Depth: 64 levels of parentheses (or unary operators, or calls).
  auto nested = [](int n) { return std::string(n, '(') + "x" + std::string(n, ')') + " > 1"; };
  EXPECT_TRUE(Condition::parse(nested(64)).has_value());
  EXPECT_EQ(errorOf(nested(65)), "the condition nests deeper than 64 levels at position 65");
  EXPECT_NE(errorOf(std::string(200, '-') + "x > 1").find("nests deeper than 64 levels"), std::string::npos);
  std::string nots;
  for (int i = 0; i < 100; ++i) nots += "not ";
  EXPECT_NE(errorOf(nots + "x > 1").find("nests deeper than 64 levels"), std::string::npos);
  std::string calls;
  for (int i = 0; i < 70; ++i) calls += "abs(";
  EXPECT_NE(errorOf(calls + "x" + std::string(70, ')') + " > 1").find("nests deeper"), std::string::npos);
  // Long flat chains are fine (no depth), and evaluate without recursion.
  std::string sum = "x";
  while (sum.size() + 20 < 4096) sum += " + x";
  sum += " > 1";
  auto c = parseOk(sum);
  std::vector<double> v{1};
  EXPECT_TRUE(c.evaluate(v));
  EXPECT_EQ(c.text(), sum);
  // The deepest value stacks the depth bound allows (64 levels) parse and evaluate.
  std::string bools, numbers;
  for (int i = 0; i < 40; ++i) bools += "p > 0 or q > 0 and (";
  for (int i = 0; i < 23; ++i) numbers += "1 + 2 * (";
  auto deep_bools =
      parseOk(bools + "x between lo and 1 + 2 * (" + numbers + "x" + std::string(24, ')') + std::string(40, ')'));
  EXPECT_EQ(deep_bools.keys(), (std::vector<std::string>{"p", "q", "x", "lo"}));
  EXPECT_TRUE(deep_bools.evaluate(std::vector<double>{1, 0, 0, 0}));
  EXPECT_FALSE(deep_bools.evaluate(std::vector<double>{0, 1, -1, 0}));
  EXPECT_TRUE(deep_bools.evaluate(std::vector<double>{0, 1, 5, 0}));
  EXPECT_TRUE(Condition::parse(deep_bools.text()).has_value());
  // The bound also holds once normalised (spaces added), so text() always parses again.
  std::string compact = "x>1";
  while (compact.size() + 5 <= 4096) compact += "||x>1";
  EXPECT_EQ(errorOf(compact), "the condition is longer than 4096 bytes once normalised");
  // Unary chains print without added parentheses, so text() stays within the depth bound.
  auto deep = parseOk(std::string(60, '-') + "x > 1");
  EXPECT_TRUE(Condition::parse(deep.text()).has_value()) << deep.text();
}

TEST(RuleCondition, NaNAndInfinity) {
  // A key not seen yet (NaN) makes the result false, whatever the condition.
  EXPECT_FALSE(eval("x > 1", {}));
  EXPECT_FALSE(eval("not x > 1", {}));
  EXPECT_FALSE(eval("x != 1", {}));
  EXPECT_FALSE(eval("a > 1 or b > 1", {{"a", 5}}));
  // Division by zero is NaN: the comparison is unknown, and so is its negation.
  EXPECT_FALSE(eval("a / b > 1", {{"a", 1}, {"b", 0}}));
  EXPECT_FALSE(eval("a / b <= 1", {{"a", 1}, {"b", 0}}));
  EXPECT_FALSE(eval("not a / b > 1", {{"a", 1}, {"b", 0}}));
  EXPECT_FALSE(eval("a / b != 1", {{"a", 1}, {"b", 0}}));
  // Unknown or true is true; unknown and false is false.
  EXPECT_TRUE(eval("a / b > 1 or a > 0", {{"a", 1}, {"b", 0}}));
  EXPECT_FALSE(eval("a / b > 1 and a > 0", {{"a", 1}, {"b", 0}}));
  EXPECT_TRUE(eval("not (a / b > 1 and a < 0)", {{"a", 1}, {"b", 0}}));
  EXPECT_FALSE(eval("min(a / b, 1) < 5", {{"a", 1}, {"b", 0}}));
  // Infinities compare normally; inf - inf is NaN.
  EXPECT_TRUE(eval("x > 1e308", {{"x", kInf}}));
  EXPECT_TRUE(eval("x < 0", {{"x", -kInf}}));
  EXPECT_FALSE(eval("x - x == 0", {{"x", kInf}}));
  EXPECT_FALSE(eval("x - x != 0", {{"x", kInf}}));
  EXPECT_TRUE(eval("x == 0", {{"x", -0.0}}));
  // Too few values: false, no read past the end.
  auto c = parseOk("a > 1 or b > 1");
  std::vector<double> one{5};
  EXPECT_FALSE(c.evaluate(one));
  EXPECT_TRUE(std::isnan(c.observed(one)));
}

TEST(RuleCondition, Observed) {
  auto c = parseOk("a - b > 3 and c < 1");
  std::vector<double> v{10, 4, 0};
  EXPECT_EQ(c.observed(v), 6);
  EXPECT_EQ(parseOk("80 < temperature").observed(std::vector<double>{91.5}), 91.5);
  EXPECT_EQ(parseOk("x not between 1 and 2").observed(std::vector<double>{7}), 7);
  EXPECT_EQ(parseOk("not (abs(x) > 2) or y > 1").observed(std::vector<double>{-5, 0}), 5);
  EXPECT_TRUE(std::isnan(parseOk("x > 1").observed(std::vector<double>{kNaN})));
}

TEST(RuleCondition, Hysteresis) {
  // x > t holds while x > t - h
  EXPECT_FALSE(eval("x > 80", {{"x", 79}}));
  EXPECT_TRUE(eval("x > 80", {{"x", 79}}, 2));
  EXPECT_FALSE(eval("x > 80", {{"x", 78}}, 2));
  EXPECT_TRUE(eval("x >= 80", {{"x", 78}}, 2));
  // x < t holds while x < t + h
  EXPECT_TRUE(eval("x < 10", {{"x", 11}}, 2));
  EXPECT_FALSE(eval("x < 10", {{"x", 12}}, 2));
  EXPECT_TRUE(eval("x <= 10", {{"x", 12}}, 2));
  // between widens both ends
  EXPECT_TRUE(eval("x between 10 and 80", {{"x", 8}}, 2));
  EXPECT_TRUE(eval("x between 10 and 80", {{"x", 82}}, 2));
  EXPECT_FALSE(eval("x between 10 and 80", {{"x", 82.5}}, 2));
  // not between narrows the inside
  EXPECT_TRUE(eval("x not between 10 and 80", {{"x", 11}}, 2));
  EXPECT_TRUE(eval("x not between 10 and 80", {{"x", 78.5}}, 2));
  EXPECT_FALSE(eval("x not between 10 and 80", {{"x", 50}}, 2));
  // == and != unaffected
  EXPECT_FALSE(eval("x == 3", {{"x", 3.5}}, 2));
  EXPECT_FALSE(eval("x != 3", {{"x", 3}}, 2));
  // expressions: the comparison of both sides is relaxed
  EXPECT_TRUE(eval("a - b > 3", {{"a", 5}, {"b", 3}}, 1.5));
  EXPECT_TRUE(eval("80 < x", {{"x", 79}}, 2));
  // under not, the comparison tightens, so the whole still relaxes: not x > 80 == x <= 80
  EXPECT_TRUE(eval("not x > 80", {{"x", 81}}, 2));
  EXPECT_TRUE(eval("x <= 80", {{"x", 81}}, 2));
  EXPECT_FALSE(eval("not x > 80", {{"x", 83}}, 2));
  EXPECT_TRUE(eval("not (x between 10 and 80)", {{"x", 11}}, 2));
  // negative and NaN hysteresis count as 0
  EXPECT_FALSE(eval("x > 80", {{"x", 80}}, -5));
  EXPECT_FALSE(eval("x > 80", {{"x", 79}}, kNaN));
}

TEST(RuleCondition, TextRoundTrip) {
  const char* cases[] = {
      "temperature > 80",
      "temperature < 10 or temperature > 80",
      "temperature not between 10 and 80",
      "a - b > 3",
      "abs(vibration_x) >= 2.5 and rpm > 100",
      "min(a, b, c) <= max(d, 1e-07) * -2",
      "min(min(a, b), c) > 0",
      "-(a * b) + -c / (d - e) != 0.1",
      "not (x > 1 or y > 2) and z == 3",
      "a / (b / c) == 1",
      "\"temp \\\"C\\\"\" - \"NOT\" >= 1e+20",
      "x between -5 and a + 1 or not x not between 1 and 2",
      "-(-x) > 0",
      "a == -0",
  };
  for (const char* text : cases) {
    auto c = parseOk(text);
    std::string once = c.text();
    auto again = parseOk(once);
    EXPECT_EQ(again.text(), once) << text;
    EXPECT_EQ(again.keys(), c.keys()) << text;
  }
  EXPECT_EQ(normalised("  temperature>80  "), "temperature > 80");
  EXPECT_EQ(normalised("x>=1E3"), "x >= 1000");
  EXPECT_EQ(normalised("x == .5"), "x == 0.5");
  EXPECT_EQ(normalised("x == 0.1"), "x == 0.1");
  EXPECT_EQ(normalised("x == -(5)"), "x == -5");
  EXPECT_EQ(normalised("x - -5 > 0"), "x - -5 > 0");
  EXPECT_EQ(normalised("-(-x) > 0"), "- -x > 0");  // no parentheses the source did not need
  EXPECT_EQ(normalised("-(a + b) > 0"), "-(a + b) > 0");
  EXPECT_EQ(normalised("min(a,b,c)>max(a,b)"), "min(a, b, c) > max(a, b)");
  EXPECT_EQ(normalised("a = 1"), "a == 1");
  EXPECT_EQ(normalised("(a > 1)"), "a > 1");
}

TEST(RuleState, RaisesOnceAndClearsOnceWithHysteresis) {
  auto c = parseOk("temperature > 80");
  RuleSpec spec;
  spec.hysteresis = 2;
  RuleState s;
  // Hovering around 80: 81 raises, the dips to 79 do not clear (79 > 78), 77.9 clears.
  const double series[] = {70, 81, 79, 80.5, 79.1, 81, 78.5, 80.2, 77.9, 79, 79.5, 78};
  int raises = 0, clears = 0;
  std::int64_t ts = 0;
  for (double x : series) {
    std::vector<double> v{x};
    auto t = s.update(c, spec, ts += 1000, v);
    raises += t == RuleTransition::kRaise;
    clears += t == RuleTransition::kClear;
  }
  EXPECT_EQ(raises, 1);
  EXPECT_EQ(clears, 1);
  EXPECT_FALSE(s.active());
  // Without hysteresis the same series flaps.
  RuleState flappy;
  raises = 0;
  ts = 0;
  for (double x : series) {
    std::vector<double> v{x};
    raises += flappy.update(c, RuleSpec{}, ts += 1000, v) == RuleTransition::kRaise;
  }
  EXPECT_EQ(raises, 4);
}

TEST(RuleState, DurationRaisesOnlyAfterFiveMinutes) {
  auto c = parseOk("temperature > 80");
  RuleSpec spec;
  spec.duration_ms = 5 * kMinute;
  RuleState s;
  std::vector<double> hot{85}, cold{75};
  const std::int64_t t0 = 1'700'000'000'000;
  EXPECT_EQ(s.update(c, spec, t0, hot), RuleTransition::kNone);
  EXPECT_EQ(s.pendingSince(), t0);
  EXPECT_EQ(s.update(c, spec, t0 + 4 * kMinute, hot), RuleTransition::kNone);
  // A false point resets pending.
  EXPECT_EQ(s.update(c, spec, t0 + 4 * kMinute + 30'000, cold), RuleTransition::kNone);
  EXPECT_EQ(s.pendingSince(), -1);
  const std::int64_t t1 = t0 + 5 * kMinute;
  EXPECT_EQ(s.update(c, spec, t1, hot), RuleTransition::kNone);
  EXPECT_EQ(s.pendingSince(), t1);
  for (std::int64_t m = 1; m < 5; ++m) EXPECT_EQ(s.update(c, spec, t1 + m * kMinute, hot), RuleTransition::kNone);
  EXPECT_EQ(s.update(c, spec, t1 + 5 * kMinute - 1, hot), RuleTransition::kNone);
  EXPECT_FALSE(s.active());
  EXPECT_EQ(s.update(c, spec, t1 + 5 * kMinute, hot), RuleTransition::kRaise);
  EXPECT_TRUE(s.active());
  EXPECT_EQ(s.pendingSince(), -1);
  EXPECT_EQ(s.update(c, spec, t1 + 6 * kMinute, hot), RuleTransition::kNone);
  EXPECT_EQ(s.update(c, spec, t1 + 7 * kMinute, cold), RuleTransition::kClear);
  EXPECT_EQ(s.update(c, spec, t1 + 8 * kMinute, cold), RuleTransition::kNone);
}

TEST(RuleState, ZeroDurationRaisesOnFirstTruePoint) {
  auto c = parseOk("x > 1");
  RuleState s;
  std::vector<double> yes{2}, no{0};
  EXPECT_EQ(s.update(c, RuleSpec{}, -50, no), RuleTransition::kNone);
  EXPECT_EQ(s.update(c, RuleSpec{}, -40, yes), RuleTransition::kRaise);
  EXPECT_EQ(s.update(c, RuleSpec{}, -40, yes), RuleTransition::kNone);  // same ts is in order
  EXPECT_EQ(s.update(c, RuleSpec{}, -30, no), RuleTransition::kClear);
}

TEST(RuleState, OutOfOrderPointsIgnored) {
  auto c = parseOk("x > 1");
  RuleSpec spec;
  spec.duration_ms = 1000;
  RuleState s;
  std::vector<double> yes{2}, no{0};
  EXPECT_EQ(s.update(c, spec, 1000, yes), RuleTransition::kNone);
  EXPECT_EQ(s.update(c, spec, 500, no), RuleTransition::kNone);  // late: would have reset pending
  EXPECT_EQ(s.pendingSince(), 1000);
  EXPECT_EQ(s.update(c, spec, 2000, yes), RuleTransition::kRaise);
  EXPECT_EQ(s.update(c, spec, 1500, no), RuleTransition::kNone);  // late: would have cleared
  EXPECT_TRUE(s.active());
}

TEST(RuleState, NaNValuesNeverRaiseAndClearAnActiveAlarm) {
  auto c = parseOk("x > 1");
  RuleState s;
  std::vector<double> nan{kNaN}, yes{2};
  EXPECT_EQ(s.update(c, RuleSpec{}, 1, nan), RuleTransition::kNone);
  EXPECT_EQ(s.update(c, RuleSpec{}, 2, yes), RuleTransition::kRaise);
  EXPECT_EQ(s.update(c, RuleSpec{}, 3, nan), RuleTransition::kClear);
}

TEST(RuleState, SaveLoadRoundTrip) {
  auto c = parseOk("x > 1");
  RuleSpec spec;
  spec.duration_ms = 1000;
  std::vector<double> yes{2}, no{0};
  RuleState pending;
  pending.update(c, spec, 5000, yes);
  RuleState active;
  active.update(c, RuleSpec{}, 7000, yes);
  for (const RuleState& original : {pending, active, RuleState{}}) {
    std::string bytes;
    original.save(bytes);
    RuleState loaded;
    ASSERT_TRUE(loaded.load(bytes));
    EXPECT_EQ(loaded.active(), original.active());
    EXPECT_EQ(loaded.pendingSince(), original.pendingSince());
    // Both continue identically (including the out-of-order check).
    for (std::int64_t ts : {4000, 6000, 6500, 8000}) {
      RuleState a = original;
      RuleState b = loaded;
      for (const auto* v : {&yes, &no, &yes}) EXPECT_EQ(a.update(c, spec, ts, *v), b.update(c, spec, ts, *v));
    }
  }
  EXPECT_EQ(pending.pendingSince(), 5000);
  EXPECT_TRUE(active.active());
}

TEST(RuleState, GarbageLoadFails) {
  RuleState s;
  auto c = parseOk("x > 1");
  std::vector<double> yes{2};
  s.update(c, RuleSpec{}, 10, yes);
  ASSERT_TRUE(s.active());
  std::string good;
  s.save(good);
  EXPECT_FALSE(s.load(""));
  EXPECT_FALSE(s.load("garbage"));
  EXPECT_FALSE(s.load(good.substr(0, good.size() - 1)));
  EXPECT_FALSE(s.load(good + "x"));
  std::string bad_magic = good;
  bad_magic[0] = 'X';
  EXPECT_FALSE(s.load(bad_magic));
  std::string bad_flags = good;
  bad_flags[4] = 3;  // active and pending
  EXPECT_FALSE(s.load(bad_flags));
  std::string pending_after_last = good;
  pending_after_last[4] = 2;  // pending since ts 0x7f..ff, after the last point seen (10)
  pending_after_last.replace(5, 8, std::string("\xff\xff\xff\xff\xff\xff\xff\x7f", 8));
  EXPECT_FALSE(s.load(pending_after_last));
  std::string not_pending_with_since = good;
  not_pending_with_since[4] = 0;
  not_pending_with_since[5] = 7;  // pending_since != -1 while not pending
  EXPECT_FALSE(s.load(not_pending_with_since));
  EXPECT_TRUE(s.active());  // a failed load leaves the state alone
}

}  // namespace
}  // namespace sw::analytics
