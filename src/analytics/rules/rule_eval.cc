// Rule conditions: a hand-written tokenizer and recursive-descent parser that compiles the text
// into a flat postfix program (one small Instr per operator/operand), evaluated with a fixed-size
// value stack: no allocation and no recursion per evaluate(). text() rebuilds the normalised text
// from the same program, so what is displayed is exactly what is evaluated.
//
// Truth values live on the same stack as numbers: 1 = true, 0 = false, NaN = unknown (a
// comparison of a NaN produced by the arithmetic, e.g. x / 0). and/or/not follow three-valued
// (Kleene) logic and only a definite true at the top makes the condition hold, so "x / y > 1" and
// "not x / y > 1" are both false when y is 0.
#include "analytics/rules/rule_eval.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>

namespace sw::analytics {
namespace {

constexpr std::size_t kMaxLength = 4096;
constexpr int kMaxDepth = 64;
// Values waiting on the stack: at most 2 per nesting level ("p > 0 or q > 0 and (", "1 + 2 * (")
// plus a few, so kMaxDepth keeps it far below this; parse() checks it anyway.
constexpr std::size_t kMaxStack = 512;

enum class Op : std::uint8_t {
  kConst,
  kKey,
  kNeg,
  kAdd,
  kSub,
  kMul,
  kDiv,
  kAbs,
  kMin,
  kMax,
  kGt,
  kGe,
  kLt,
  kLe,
  kEq,
  kNe,
  kBetween,     // x lo hi
  kNotBetween,  // x lo hi
  kAnd,
  kOr,
  kNot,
};

struct Instr {
  Op op = Op::kConst;
  // Comparisons: +1, or -1 under an odd number of `not` (there, hysteresis tightens the
  // comparison so that the whole condition is still relaxed toward staying true).
  std::int8_t sign = 1;
  bool chained = false;  // kMin/kMax: continues the previous call's argument list (text only)
  std::uint32_t key = 0;
  double value = 0;
};

// Precedence levels, used by the parser's structure and by text() for parentheses.
constexpr int kPrecOr = 1, kPrecAnd = 2, kPrecNot = 3, kPrecCmp = 4, kPrecAdd = 5, kPrecMul = 6, kPrecUnary = 7,
              kPrecAtom = 8;

bool isIdentStart(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}
bool isDigit(char c) {
  return c >= '0' && c <= '9';
}
bool isIdentWord(char c) {
  return isIdentStart(c) || isDigit(c);
}

// Length of the bare key starting at s[start] (which must be an identifier start): letters,
// digits, '_' and '.', and '-' when it is directly followed by a letter, digit or '_'.
std::size_t bareKeyLength(std::string_view s, std::size_t start) {
  std::size_t i = start + 1;
  while (i < s.size()) {
    char c = s[i];
    if (isIdentWord(c) || c == '.') {
      ++i;
    } else if (c == '-' && i + 1 < s.size() && isIdentWord(s[i + 1])) {
      i += 2;
    } else {
      break;
    }
  }
  return i - start;
}

bool equalsNoCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (x != b[i]) return false;
  }
  return true;
}

bool isKeyword(std::string_view w) {
  return equalsNoCase(w, "and") || equalsNoCase(w, "or") || equalsNoCase(w, "not") || equalsNoCase(w, "between");
}

std::string formatNumber(double v) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

std::string keyText(const std::string& key) {
  if (!key.empty() && isIdentStart(key[0]) && bareKeyLength(key, 0) == key.size() && !isKeyword(key)) return key;
  std::string out = "\"";
  for (char c : key) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += '"';
  return out;
}

// ---------------------------------------------------------------------------------------------
// Tokens

enum class Tok : std::uint8_t {
  kEnd,
  kNum,
  kKey,  // bare or quoted; `call` set when a bare word is followed by '('
  kLParen,
  kRParen,
  kComma,
  kPlus,
  kMinus,
  kStar,
  kSlash,
  kGt,
  kGe,
  kLt,
  kLe,
  kEq,
  kNe,
  kAnd,
  kOr,
  kNot,
  kBetween,
};

struct Token {
  Tok kind = Tok::kEnd;
  std::size_t pos = 0;  // byte offset in the text
  std::size_t len = 0;
  bool call = false;
  double num = 0;
  std::string key;
};

std::string at(std::size_t pos) {
  return " at position " + std::to_string(pos + 1);
}

std::string printable(std::string_view s) {
  std::string out;
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u >= 0x7f) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 15];
    } else {
      out += c;
    }
  }
  return out;
}

Error conditionError(std::string message) {
  return Error{Code::kInvalidArgument, std::move(message), "condition"};
}

Result<std::vector<Token>> tokenize(std::string_view s) {
  std::vector<Token> out;
  std::size_t i = 0;
  auto add = [&](Tok kind, std::size_t len) {
    Token t;
    t.kind = kind;
    t.pos = i;
    t.len = len;
    out.push_back(std::move(t));
    i += len;
  };
  while (i < s.size()) {
    char c = s[i];
    char n = i + 1 < s.size() ? s[i + 1] : '\0';
    switch (c) {
      case ' ':
      case '\t':
      case '\n':
      case '\r': ++i; continue;
      case '(': add(Tok::kLParen, 1); continue;
      case ')': add(Tok::kRParen, 1); continue;
      case ',': add(Tok::kComma, 1); continue;
      case '+': add(Tok::kPlus, 1); continue;
      case '-': add(Tok::kMinus, 1); continue;
      case '*': add(Tok::kStar, 1); continue;
      case '/': add(Tok::kSlash, 1); continue;
      case '>': n == '=' ? add(Tok::kGe, 2) : add(Tok::kGt, 1); continue;
      case '<': n == '=' ? add(Tok::kLe, 2) : add(Tok::kLt, 1); continue;
      case '=': n == '=' ? add(Tok::kEq, 2) : add(Tok::kEq, 1); continue;
      case '!': n == '=' ? add(Tok::kNe, 2) : add(Tok::kNot, 1); continue;
      case '&':
        if (n == '&') {
          add(Tok::kAnd, 2);
          continue;
        }
        break;
      case '|':
        if (n == '|') {
          add(Tok::kOr, 2);
          continue;
        }
        break;
      default: break;
    }
    if (isDigit(c) || (c == '.' && isDigit(n))) {
      std::size_t j = i;
      while (j < s.size() && isDigit(s[j])) ++j;
      if (j < s.size() && s[j] == '.') {
        ++j;
        while (j < s.size() && isDigit(s[j])) ++j;
      }
      if (j < s.size() && (s[j] == 'e' || s[j] == 'E')) {
        std::size_t k = j + 1;
        if (k < s.size() && (s[k] == '+' || s[k] == '-')) ++k;
        if (k < s.size() && isDigit(s[k])) {
          while (k < s.size() && isDigit(s[k])) ++k;
          j = k;
        }
      }
      double v = 0;
      // from_chars takes no leading '+' but does take "1." and ".5"; the extent is checked above.
      auto r = std::from_chars(s.data() + i, s.data() + j, v);
      if (r.ec != std::errc() || r.ptr != s.data() + j || !std::isfinite(v)) {
        return std::unexpected(conditionError("number '" + printable(s.substr(i, j - i)) + "' out of range" + at(i)));
      }
      Token t;
      t.kind = Tok::kNum;
      t.pos = i;
      t.len = j - i;
      t.num = v;
      out.push_back(std::move(t));
      i = j;
      continue;
    }
    if (isIdentStart(c)) {
      std::size_t len = bareKeyLength(s, i);
      std::string_view word = s.substr(i, len);
      Token t;
      t.pos = i;
      t.len = len;
      if (equalsNoCase(word, "and")) {
        t.kind = Tok::kAnd;
      } else if (equalsNoCase(word, "or")) {
        t.kind = Tok::kOr;
      } else if (equalsNoCase(word, "not")) {
        t.kind = Tok::kNot;
      } else if (equalsNoCase(word, "between")) {
        t.kind = Tok::kBetween;
      } else {
        t.kind = Tok::kKey;
        t.key = std::string(word);
        std::size_t j = i + len;
        while (j < s.size() && (s[j] == ' ' || s[j] == '\t' || s[j] == '\n' || s[j] == '\r')) ++j;
        t.call = j < s.size() && s[j] == '(';
      }
      out.push_back(std::move(t));
      i += len;
      continue;
    }
    if (c == '"') {
      std::string key;
      std::size_t j = i + 1;
      for (;;) {
        if (j >= s.size()) return std::unexpected(conditionError("unterminated quoted key" + at(i)));
        char q = s[j];
        if (q == '"') break;
        if (static_cast<unsigned char>(q) < 0x20) {
          return std::unexpected(conditionError("control character in quoted key" + at(j)));
        }
        if (q == '\\') {
          if (j + 1 < s.size() && (s[j + 1] == '"' || s[j + 1] == '\\')) {
            key += s[j + 1];
            j += 2;
            continue;
          }
          return std::unexpected(
              conditionError("unknown escape in quoted key" + at(j) + " (only \\\" and \\\\ are escapes)"));
        }
        key += q;
        ++j;
      }
      if (key.empty()) return std::unexpected(conditionError("empty quoted key" + at(i)));
      Token t;
      t.kind = Tok::kKey;
      t.pos = i;
      t.len = j + 1 - i;
      t.key = std::move(key);
      out.push_back(std::move(t));
      i = j + 1;
      continue;
    }
    std::string msg = "unexpected character '" + printable(s.substr(i, 1)) + "'" + at(i);
    if (static_cast<unsigned char>(c) >= 0x80 || c == '\'') msg += " (quote other keys with \"...\")";
    return std::unexpected(conditionError(std::move(msg)));
  }
  Token end;
  end.kind = Tok::kEnd;
  end.pos = s.size();
  out.push_back(std::move(end));
  return out;
}

// ---------------------------------------------------------------------------------------------
// Parser: or > and > not > comparison/between > + - > * / > unary - > primary.

class Parser {
 public:
  Parser(std::string_view text, std::vector<Token> toks) : text_(text), toks_(std::move(toks)) {}

  enum class Type : std::uint8_t { kNumber, kBool };
  struct Sub {
    Type type = Type::kNumber;
    std::size_t pos = 0;         // where it starts in the text
    std::size_t code_begin = 0;  // where its code starts in code_
  };

  bool parseTop() {
    Sub top;
    if (!parseOr(top)) return false;
    if (peek().kind != Tok::kEnd) return unexpected(peek(), "");
    if (top.type != Type::kBool) return fail("the condition must compare, e.g. temperature > 80");
    if (keys_.empty()) return fail("the condition reads no key, e.g. temperature > 80");
    return true;
  }

  std::vector<Instr> code_;
  std::vector<std::string> keys_;
  std::size_t obs_begin_ = 0, obs_end_ = 0;
  bool have_obs_ = false;
  std::optional<Error> error_;

 private:
  const Token& peek(std::size_t ahead = 0) const { return toks_[std::min(i_ + ahead, toks_.size() - 1)]; }
  const Token& next() { return toks_[i_ < toks_.size() - 1 ? i_++ : i_]; }

  bool fail(std::string message) {
    if (!error_) error_ = conditionError(std::move(message));
    return false;
  }
  bool unexpected(const Token& t, std::string_view expected) {
    std::string msg;
    if (t.kind == Tok::kEnd) {
      msg = "unexpected end of the condition" + at(t.pos);
    } else {
      std::string_view lexeme = text_.substr(t.pos, std::min<std::size_t>(t.len, 40));
      msg = "unexpected '" + printable(lexeme) + (t.len > 40 ? "...'" : "'") + at(t.pos);
    }
    if (!expected.empty()) msg += " (expected " + std::string(expected) + ")";
    return fail(std::move(msg));
  }
  bool needBool(const Sub& s) {
    if (s.type == Type::kBool) return true;
    return fail("expected a comparison" + at(s.pos) + ", e.g. temperature > 80");
  }
  bool needNumber(const Sub& s) {
    if (s.type == Type::kNumber) return true;
    return fail("a comparison cannot be used as a number" + at(s.pos));
  }
  bool enter(std::size_t pos) {
    if (++depth_ > kMaxDepth)
      return fail("the condition nests deeper than " + std::to_string(kMaxDepth) + " levels" + at(pos));
    return true;
  }
  void leave() { --depth_; }
  void emit(Op op) {
    Instr in;
    in.op = op;
    code_.push_back(in);
  }

  bool parseOr(Sub& out) {
    if (!parseAnd(out)) return false;
    while (peek().kind == Tok::kOr) {
      next();
      if (!needBool(out)) return false;
      Sub rhs;
      if (!parseAnd(rhs) || !needBool(rhs)) return false;
      emit(Op::kOr);
    }
    return true;
  }

  bool parseAnd(Sub& out) {
    if (!parseNot(out)) return false;
    while (peek().kind == Tok::kAnd) {
      next();
      if (!needBool(out)) return false;
      Sub rhs;
      if (!parseNot(rhs) || !needBool(rhs)) return false;
      emit(Op::kAnd);
    }
    return true;
  }

  bool parseNot(Sub& out) {
    if (peek().kind != Tok::kNot) return parseComparison(out);
    const Token& t = next();
    if (!enter(t.pos)) return false;
    std::size_t begin = code_.size();
    sign_ = static_cast<std::int8_t>(-sign_);
    Sub operand;
    bool ok = parseNot(operand);
    sign_ = static_cast<std::int8_t>(-sign_);
    leave();
    if (!ok || !needBool(operand)) return false;
    emit(Op::kNot);
    out = Sub{Type::kBool, t.pos, begin};
    return true;
  }

  static bool isComparison(Tok k) {
    return k == Tok::kGt || k == Tok::kGe || k == Tok::kLt || k == Tok::kLe || k == Tok::kEq || k == Tok::kNe;
  }

  void noteObserved(const Sub& lhs, std::size_t lhs_end, std::size_t rhs_begin, std::size_t rhs_end) {
    if (have_obs_) return;
    have_obs_ = true;
    obs_begin_ = lhs.code_begin;
    obs_end_ = lhs_end;
    // "80 < temperature": the side that reads a key is the observed one.
    bool lhs_reads = false, rhs_reads = false;
    for (std::size_t k = obs_begin_; k < obs_end_; ++k) lhs_reads |= code_[k].op == Op::kKey;
    for (std::size_t k = rhs_begin; k < rhs_end; ++k) rhs_reads |= code_[k].op == Op::kKey;
    if (!lhs_reads && rhs_reads) {
      obs_begin_ = rhs_begin;
      obs_end_ = rhs_end;
    }
  }

  bool parseComparison(Sub& out) {
    Sub lhs;
    if (!parseAdditive(lhs)) return false;
    const Token& t = peek();
    if (isComparison(t.kind)) {
      Tok kind = next().kind;
      if (!needNumber(lhs)) return false;
      std::size_t lhs_end = code_.size();
      Sub rhs;
      if (!parseAdditive(rhs) || !needNumber(rhs)) return false;
      noteObserved(lhs, lhs_end, lhs_end, code_.size());
      Op op = kind == Tok::kGt   ? Op::kGt
              : kind == Tok::kGe ? Op::kGe
              : kind == Tok::kLt ? Op::kLt
              : kind == Tok::kLe ? Op::kLe
              : kind == Tok::kEq ? Op::kEq
                                 : Op::kNe;
      Instr in;
      in.op = op;
      in.sign = sign_;
      code_.push_back(in);
    } else if (t.kind == Tok::kBetween || (t.kind == Tok::kNot && peek(1).kind == Tok::kBetween)) {
      bool negated = t.kind == Tok::kNot;
      next();
      if (negated) next();
      if (!needNumber(lhs)) return false;
      std::size_t lhs_end = code_.size();
      Sub lo, hi;
      if (!parseAdditive(lo) || !needNumber(lo)) return false;
      std::size_t lo_end = code_.size();
      if (peek().kind != Tok::kAnd) return unexpected(peek(), "'and', e.g. x between 10 and 80");
      next();
      if (!parseAdditive(hi) || !needNumber(hi)) return false;
      if (lo_end - lo.code_begin == 1 && code_[lo.code_begin].op == Op::kConst && code_.size() - hi.code_begin == 1 &&
          code_.back().op == Op::kConst && code_[lo.code_begin].value > code_.back().value) {
        return fail("the lower bound " + formatNumber(code_[lo.code_begin].value) + " is above the upper bound " +
                    formatNumber(code_.back().value) + at(lo.pos));
      }
      noteObserved(lhs, lhs_end, lhs_end, lhs_end);
      Instr in;
      in.op = negated ? Op::kNotBetween : Op::kBetween;
      in.sign = sign_;
      code_.push_back(in);
    } else {
      out = lhs;
      return true;
    }
    out = Sub{Type::kBool, lhs.pos, lhs.code_begin};
    const Token& after = peek();
    if (isComparison(after.kind) || after.kind == Tok::kBetween ||
        (after.kind == Tok::kNot && peek(1).kind == Tok::kBetween)) {
      return fail("comparisons cannot be chained" + at(after.pos) + "; combine them with and");
    }
    return true;
  }

  bool parseAdditive(Sub& out) {
    if (!parseMultiplicative(out)) return false;
    while (peek().kind == Tok::kPlus || peek().kind == Tok::kMinus) {
      Op op = next().kind == Tok::kPlus ? Op::kAdd : Op::kSub;
      if (!needNumber(out)) return false;
      Sub rhs;
      if (!parseMultiplicative(rhs) || !needNumber(rhs)) return false;
      emit(op);
    }
    return true;
  }

  bool parseMultiplicative(Sub& out) {
    if (!parseUnary(out)) return false;
    while (peek().kind == Tok::kStar || peek().kind == Tok::kSlash) {
      Op op = next().kind == Tok::kStar ? Op::kMul : Op::kDiv;
      if (!needNumber(out)) return false;
      Sub rhs;
      if (!parseUnary(rhs) || !needNumber(rhs)) return false;
      emit(op);
    }
    return true;
  }

  bool parseUnary(Sub& out) {
    if (peek().kind != Tok::kMinus) return parsePrimary(out);
    const Token& t = next();
    if (!enter(t.pos)) return false;
    Sub operand;
    bool ok = parseUnary(operand);
    leave();
    if (!ok || !needNumber(operand)) return false;
    if (code_.size() - operand.code_begin == 1 && code_.back().op == Op::kConst) {
      code_.back().value = -code_.back().value;  // a negative literal
    } else {
      emit(Op::kNeg);
    }
    out = Sub{Type::kNumber, t.pos, operand.code_begin};
    return true;
  }

  bool parsePrimary(Sub& out) {
    const Token& t = peek();
    out = Sub{Type::kNumber, t.pos, code_.size()};
    switch (t.kind) {
      case Tok::kNum: {
        Instr in;
        in.op = Op::kConst;
        in.value = t.num;
        code_.push_back(in);
        next();
        return true;
      }
      case Tok::kKey: {
        if (t.call) return parseCall(out);
        auto it = std::find(keys_.begin(), keys_.end(), t.key);
        Instr in;
        in.op = Op::kKey;
        in.key = static_cast<std::uint32_t>(it - keys_.begin());
        if (it == keys_.end()) keys_.push_back(t.key);
        code_.push_back(in);
        next();
        return true;
      }
      case Tok::kLParen: {
        next();
        if (!enter(t.pos)) return false;
        Sub inner;
        bool ok = parseOr(inner);
        leave();
        if (!ok) return false;
        if (peek().kind != Tok::kRParen) return unexpected(peek(), "')'");
        next();
        out.type = inner.type;
        return true;
      }
      default: return unexpected(t, "a number, a key or '('");
    }
  }

  bool parseCall(Sub& out) {
    const Token& name = next();
    Op op;
    if (equalsNoCase(name.key, "abs")) {
      op = Op::kAbs;
    } else if (equalsNoCase(name.key, "min")) {
      op = Op::kMin;
    } else if (equalsNoCase(name.key, "max")) {
      op = Op::kMax;
    } else {
      return fail("unknown function '" + printable(name.key.substr(0, 40)) + "'" + at(name.pos) +
                  " (known: abs, min, max)");
    }
    next();  // '('
    if (!enter(name.pos)) return false;
    std::size_t args = 0;
    for (;;) {
      Sub arg;
      if (!parseOr(arg) || !needNumber(arg)) return false;
      ++args;
      if (args >= 2) {
        Instr in;
        in.op = op;
        in.chained = args > 2;
        code_.push_back(in);
      }
      const Token& sep = peek();
      if (sep.kind == Tok::kComma) {
        if (op == Op::kAbs) return fail("abs takes one argument" + at(sep.pos));
        next();
        continue;
      }
      if (sep.kind != Tok::kRParen) return unexpected(sep, "',' or ')'");
      if (op != Op::kAbs && args < 2) {
        return fail(std::string(op == Op::kMin ? "min" : "max") + " takes at least two arguments" + at(sep.pos));
      }
      next();
      break;
    }
    leave();
    if (op == Op::kAbs) emit(Op::kAbs);
    out.type = Type::kNumber;
    return true;
  }

  std::string_view text_;
  std::vector<Token> toks_;
  std::size_t i_ = 0;
  int depth_ = 0;
  std::int8_t sign_ = 1;
};

// Stack effect of one instruction: values pushed minus popped.
int stackEffect(Op op) {
  switch (op) {
    case Op::kConst:
    case Op::kKey: return 1;
    case Op::kNeg:
    case Op::kAbs:
    case Op::kNot: return 0;
    case Op::kBetween:
    case Op::kNotBetween: return -2;
    default: return -1;
  }
}

// The normalised text of a compiled condition (defined below, next to Condition::text).
std::string buildText(const std::vector<Instr>& code, const std::vector<std::string>& keys);

inline double truth(bool b) {
  return b ? 1.0 : 0.0;
}
constexpr double kUnknown = std::numeric_limits<double>::quiet_NaN();

}  // namespace

struct Condition::Node {
  std::vector<Instr> code;
  std::string text;                        // normalised, built once by parse()
  std::size_t obs_begin = 0, obs_end = 0;  // the observed side of the first comparison

  // Runs code[begin, end) and returns the single value it leaves.
  double run(std::size_t begin, std::size_t end, std::span<const double> values, double h) const {
    std::array<double, kMaxStack> st;
    double* top = st.data() - 1;  // the topmost value
    const Instr* pc = code.data() + begin;
    const Instr* stop = code.data() + end;
    auto unknown2 = [](double a, double b) { return std::isnan(a) || std::isnan(b); };
    for (; pc != stop; ++pc) {
      const Instr& in = *pc;
      switch (in.op) {
        case Op::kConst: *++top = in.value; break;
        case Op::kKey: *++top = values[in.key]; break;
        case Op::kNeg: *top = -*top; break;
        case Op::kAbs: *top = std::fabs(*top); break;
        case Op::kNot:
          if (!std::isnan(*top)) *top = 1.0 - *top;
          break;
        case Op::kAdd: --top, top[0] += top[1]; break;
        case Op::kSub: --top, top[0] -= top[1]; break;
        case Op::kMul: --top, top[0] *= top[1]; break;
        case Op::kDiv: --top, top[0] = top[1] == 0 ? kUnknown : top[0] / top[1]; break;
        case Op::kMin: --top, top[0] = unknown2(top[0], top[1]) ? kUnknown : std::min(top[0], top[1]); break;
        case Op::kMax: --top, top[0] = unknown2(top[0], top[1]) ? kUnknown : std::max(top[0], top[1]); break;
        case Op::kAnd: {
          --top;
          double a = top[0], b = top[1];
          top[0] = (a == 0 || b == 0) ? 0.0 : unknown2(a, b) ? kUnknown : 1.0;
          break;
        }
        case Op::kOr: {
          --top;
          double a = top[0], b = top[1];
          top[0] = (a == 1 || b == 1) ? 1.0 : unknown2(a, b) ? kUnknown : 0.0;
          break;
        }
        // Comparisons: a NaN operand makes the result unknown; `he` relaxes (or, under not,
        // tightens) the comparison.
        case Op::kGt: --top, top[0] = unknown2(top[0], top[1]) ? kUnknown : truth(top[0] > top[1] - in.sign * h); break;
        case Op::kGe:
          --top, top[0] = unknown2(top[0], top[1]) ? kUnknown : truth(top[0] >= top[1] - in.sign * h);
          break;
        case Op::kLt: --top, top[0] = unknown2(top[0], top[1]) ? kUnknown : truth(top[0] < top[1] + in.sign * h); break;
        case Op::kLe:
          --top, top[0] = unknown2(top[0], top[1]) ? kUnknown : truth(top[0] <= top[1] + in.sign * h);
          break;
        case Op::kEq: --top, top[0] = unknown2(top[0], top[1]) ? kUnknown : truth(top[0] == top[1]); break;
        case Op::kNe: --top, top[0] = unknown2(top[0], top[1]) ? kUnknown : truth(top[0] != top[1]); break;
        case Op::kBetween:
        case Op::kNotBetween: {
          top -= 2;
          double x = top[0], lo = top[1], hi = top[2];
          double he = in.sign * h;
          if (std::isnan(x) || std::isnan(lo) || std::isnan(hi)) {
            top[0] = kUnknown;
          } else if (in.op == Op::kBetween) {
            top[0] = truth(x >= lo - he && x <= hi + he);
          } else {
            top[0] = truth(x < lo + he || x > hi - he);
          }
          break;
        }
      }
    }
    return top == st.data() ? st[0] : kUnknown;
  }
};

Result<Condition> Condition::parse(std::string_view text) {
  if (text.size() > kMaxLength) {
    return std::unexpected(conditionError("the condition is longer than " + std::to_string(kMaxLength) + " bytes"));
  }
  auto toks = tokenize(text);
  if (!toks) return std::unexpected(std::move(toks.error()));
  if (toks->size() == 1) return std::unexpected(conditionError("the condition is empty; e.g. temperature > 80"));
  Parser p(text, std::move(*toks));
  if (!p.parseTop()) return std::unexpected(std::move(*p.error_));
  // The depth bound keeps the value stack small; checked rather than assumed.
  long depth = 0, max_depth = 0;
  for (const Instr& in : p.code_) {
    depth += stackEffect(in.op);
    max_depth = std::max(max_depth, depth);
  }
  if (depth != 1 || max_depth > static_cast<long>(kMaxStack)) {
    return std::unexpected(conditionError("the condition is too complex"));
  }
  auto node = std::make_shared<Node>();
  node->text = buildText(p.code_, p.keys_);
  // Normalising adds spaces ("a>1" -> "a > 1"); the bound holds for that text too, so that
  // text() always parses again.
  if (node->text.size() > kMaxLength) {
    return std::unexpected(
        conditionError("the condition is longer than " + std::to_string(kMaxLength) + " bytes once normalised"));
  }
  node->code = std::move(p.code_);
  node->obs_begin = p.obs_begin_;
  node->obs_end = p.obs_end_;
  Condition c;
  c.root_ = std::move(node);
  c.keys_ = std::move(p.keys_);
  return c;
}

bool Condition::evaluate(std::span<const double> values, double hysteresis) const {
  if (!root_ || values.size() < keys_.size()) return false;
  for (std::size_t i = 0; i < keys_.size(); ++i) {
    if (std::isnan(values[i])) return false;
  }
  double h = hysteresis > 0 ? hysteresis : 0.0;  // also maps NaN to 0
  return root_->run(0, root_->code.size(), values, h) == 1.0;
}

double Condition::observed(std::span<const double> values) const {
  if (!root_ || values.size() < keys_.size()) return std::numeric_limits<double>::quiet_NaN();
  return root_->run(root_->obs_begin, root_->obs_end, values, 0);
}

std::string Condition::text() const {
  return root_ ? root_->text : std::string();
}

namespace {

// The normalised text of a program: canonical spacing, lower-case keywords and only the
// parentheses the structure needs (so never deeper than the text it was parsed from). Built
// bottom-up over the postfix code, appending in place where it can (linear for long chains).
std::string buildText(const std::vector<Instr>& code, const std::vector<std::string>& keys) {
  struct Piece {
    std::string s;
    int prec;
  };
  std::vector<Piece> st;
  auto parenthesise = [](Piece& p) {
    p.s.insert(p.s.begin(), '(');
    p.s += ')';
  };
  for (const Instr& in : code) {
    switch (in.op) {
      case Op::kConst: st.push_back({formatNumber(in.value), kPrecAtom}); continue;
      case Op::kKey: st.push_back({keyText(keys[in.key]), kPrecAtom}); continue;
      case Op::kNeg: {
        Piece& a = st.back();
        if (a.prec < kPrecUnary) parenthesise(a);
        a.s.insert(0, a.prec == kPrecUnary ? "- " : "-");  // "- -x": no extra nesting
        a.prec = kPrecUnary;
        continue;
      }
      case Op::kAbs: {
        Piece& a = st.back();
        a.s.insert(0, "abs(");
        a.s += ')';
        a.prec = kPrecAtom;
        continue;
      }
      case Op::kNot: {
        Piece& a = st.back();
        if (a.prec < kPrecNot) parenthesise(a);
        a.s.insert(0, "not ");
        a.prec = kPrecNot;
        continue;
      }
      case Op::kBetween:
      case Op::kNotBetween: {
        // x, lo and hi are numbers (precedence above comparison): never parenthesised.
        Piece hi = std::move(st.back());
        st.pop_back();
        Piece lo = std::move(st.back());
        st.pop_back();
        Piece& x = st.back();
        x.s += in.op == Op::kBetween ? " between " : " not between ";
        x.s += lo.s;
        x.s += " and ";
        x.s += hi.s;
        x.prec = kPrecCmp;
        continue;
      }
      default: break;
    }
    Piece b = std::move(st.back());
    st.pop_back();
    Piece& a = st.back();
    if (in.op == Op::kMin || in.op == Op::kMax) {
      if (in.chained) {
        a.s.pop_back();  // the ')' of the call this argument extends
      } else {
        a.s.insert(0, in.op == Op::kMin ? "min(" : "max(");
      }
      a.s += ", ";
      a.s += b.s;
      a.s += ')';
      a.prec = kPrecAtom;
      continue;
    }
    int prec;
    const char* sym;
    switch (in.op) {
      case Op::kAdd: prec = kPrecAdd, sym = " + "; break;
      case Op::kSub: prec = kPrecAdd, sym = " - "; break;
      case Op::kMul: prec = kPrecMul, sym = " * "; break;
      case Op::kDiv: prec = kPrecMul, sym = " / "; break;
      case Op::kGt: prec = kPrecCmp, sym = " > "; break;
      case Op::kGe: prec = kPrecCmp, sym = " >= "; break;
      case Op::kLt: prec = kPrecCmp, sym = " < "; break;
      case Op::kLe: prec = kPrecCmp, sym = " <= "; break;
      case Op::kEq: prec = kPrecCmp, sym = " == "; break;
      case Op::kNe: prec = kPrecCmp, sym = " != "; break;
      case Op::kAnd: prec = kPrecAnd, sym = " and "; break;
      default: prec = kPrecOr, sym = " or "; break;
    }
    // Left-associative: a right operand of the same level keeps its parentheses. (Operands of
    // a comparison are numbers, so they never need any.)
    if (a.prec < prec) parenthesise(a);
    if (b.prec <= prec) parenthesise(b);
    a.s += sym;
    a.s += b.s;
    a.prec = prec;
  }
  return st.empty() ? std::string() : std::move(st.back().s);
}

}  // namespace

// ---------------------------------------------------------------------------------------------

RuleTransition RuleState::update(const Condition& c, const RuleSpec& spec, std::int64_t ts_ms,
                                 std::span<const double> values) {
  if (ts_ms < last_ts_) return RuleTransition::kNone;
  last_ts_ = ts_ms;
  if (active_) {
    if (c.evaluate(values, spec.hysteresis)) return RuleTransition::kNone;
    active_ = false;
    return RuleTransition::kClear;
  }
  if (!c.evaluate(values, 0)) {
    pending_ = false;
    pending_since_ = -1;
    return RuleTransition::kNone;
  }
  if (!pending_) {
    pending_ = true;
    pending_since_ = ts_ms;
  }
  std::int64_t duration = spec.duration_ms > 0 ? spec.duration_ms : 0;
  // ts_ms >= pending_since_ here; the difference is taken without signed overflow.
  if (static_cast<std::uint64_t>(ts_ms) - static_cast<std::uint64_t>(pending_since_) >=
      static_cast<std::uint64_t>(duration)) {
    active_ = true;
    pending_ = false;
    pending_since_ = -1;
    return RuleTransition::kRaise;
  }
  return RuleTransition::kNone;
}

namespace {
// Checkpoint: "RS1\0", a flags byte (1 active, 2 pending), pending_since and last_ts as
// little-endian int64.
constexpr char kStateMagic[4] = {'R', 'S', '1', '\0'};
constexpr std::size_t kStateSize = 4 + 1 + 8 + 8;

void putI64(std::string& out, std::int64_t v) {
  auto u = static_cast<std::uint64_t>(v);
  for (int i = 0; i < 8; ++i) out += static_cast<char>((u >> (8 * i)) & 0xff);
}
std::int64_t getI64(std::string_view in) {
  std::uint64_t u = 0;
  for (int i = 0; i < 8; ++i) u |= static_cast<std::uint64_t>(static_cast<unsigned char>(in[i])) << (8 * i);
  return static_cast<std::int64_t>(u);
}
}  // namespace

void RuleState::save(std::string& out) const {
  out.append(kStateMagic, 4);
  out += static_cast<char>((active_ ? 1 : 0) | (pending_ ? 2 : 0));
  putI64(out, pending_since_);
  putI64(out, last_ts_);
}

bool RuleState::load(std::string_view in) {
  if (in.size() != kStateSize || std::memcmp(in.data(), kStateMagic, 4) != 0) return false;
  auto flags = static_cast<unsigned char>(in[4]);
  if (flags > 2) return false;  // active and pending are exclusive
  bool active = (flags & 1) != 0, pending = (flags & 2) != 0;
  std::int64_t since = getI64(in.substr(5));
  std::int64_t last = getI64(in.substr(13));
  if (!pending && since != -1) return false;
  if (pending && since > last) return false;  // pending since a point that was seen
  active_ = active;
  pending_ = pending;
  pending_since_ = since;
  last_ts_ = last;
  return true;
}

}  // namespace sw::analytics
