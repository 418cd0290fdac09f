#include "rest/selector.h"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <set>
#include <utility>

#include "base/utf8.h"
#include "rest/http.h"

namespace ringmq::rest {

namespace selector_internal {

struct PatternChar {
  enum Kind : uint8_t { kLiteral, kOne, kAny };
  char c = 0;
  Kind kind = kLiteral;
};

struct Operand {
  enum class Kind { kPath, kString, kNumber, kBool, kNull };
  Kind kind = Kind::kNull;
  std::vector<std::string> path;     // kPath
  std::string text;                  // kString, unescaped
  std::vector<PatternChar> pattern;  // kString
  bool wildcard = false;             // kString: the pattern has `*` or `?`
  double number = 0;                 // kNumber
  bool boolean = false;              // kBool
};

enum class Op { kEq, kNe, kLt, kLe, kGt, kGe };

struct Node {
  enum class Kind {
    kOr,         // children, at least 2
    kAnd,        // children, at least 2
    kNot,        // children[0]
    kCompare,    // lhs op rhs
    kTruthy,     // lhs alone
    kTextMatch,  // field=value: lhs a path, rhs a string pattern
  };
  Kind kind = Kind::kTruthy;
  std::vector<Node> children;
  Op op = Op::kEq;
  Operand lhs;
  Operand rhs;
};

}  // namespace selector_internal

namespace {

using selector_internal::Node;
using selector_internal::Op;
using selector_internal::Operand;
using selector_internal::PatternChar;

bool IsNameStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsNameChar(char c) { return IsNameStart(c) || IsDigit(c); }

// `*` and `?` wildcards over bytes; iterative (backtracks to the last `*` only), no recursion.
bool WildcardMatch(const std::vector<PatternChar>& pat, std::string_view text) {
  size_t p = 0;
  size_t t = 0;
  size_t star = std::string_view::npos;
  size_t mark = 0;
  while (t < text.size()) {
    if (p < pat.size() && (pat[p].kind == PatternChar::kOne ||
                           (pat[p].kind == PatternChar::kLiteral && pat[p].c == text[t]))) {
      ++p;
      ++t;
    } else if (p < pat.size() && pat[p].kind == PatternChar::kAny) {
      star = p++;
      mark = t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pat.size() && pat[p].kind == PatternChar::kAny) ++p;
  return p == pat.size();
}

// Recursive descent over the decoded text of an expression or a field=value term. Every error
// sets error_ with the offset (base_ + position in text_).
class Parser {
 public:
  Parser(std::string_view text, size_t base) : text_(text), base_(base) {}

  // "{expression}": the whole text, which starts with '{'; spaces may follow the '}'.
  bool Expression(Node* out) {
    pos_ = 1;  // the caller saw the '{'
    if (!Or(out, 0)) return false;
    SkipSpace();
    if (!Eat('}')) return Fail("expected '}'");
    SkipSpace();
    if (pos_ != text_.size()) return Fail("unexpected text after '}'");
    return true;
  }

  // "path=value" (the whole text).
  bool Term(Node* out) {
    out->kind = Node::Kind::kTextMatch;
    out->lhs.kind = Operand::Kind::kPath;
    if (!Path(&out->lhs.path)) return false;
    if (!Eat('=')) return Fail("expected '=' after the field name");
    out->rhs.kind = Operand::Kind::kString;
    for (; pos_ < text_.size(); ++pos_) {
      const char c = text_[pos_];
      const PatternChar::Kind k = c == '*'   ? PatternChar::kAny
                                  : c == '?' ? PatternChar::kOne
                                             : PatternChar::kLiteral;
      out->rhs.pattern.push_back({c, k});
      out->rhs.wildcard |= k != PatternChar::kLiteral;
      out->rhs.text.push_back(c);
    }
    return true;
  }

  const std::string& error() const { return error_; }

 private:
  bool Fail(std::string_view what) {
    error_ = "selector: " + std::string(what) + " at " + std::to_string(base_ + pos_);
    return false;
  }
  bool Deeper(int depth) {
    if (depth < kMaxDepth) return true;
    return Fail("nesting deeper than " + std::to_string(kMaxDepth));
  }
  void SkipSpace() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t')) ++pos_;
  }
  bool Peek(std::string_view s) const { return text_.substr(pos_, s.size()) == s; }
  bool Eat(char c) {
    if (pos_ >= text_.size() || text_[pos_] != c) return false;
    ++pos_;
    return true;
  }

  // Shared by || and &&: first (op next)*, folded into one n-ary node.
  template <typename Next>
  bool Chain(Node* out, int depth, std::string_view op, Node::Kind kind, Next next) {
    Node first;
    if (!(this->*next)(&first, depth)) return false;
    SkipSpace();
    if (!Peek(op)) {
      *out = std::move(first);
      return true;
    }
    out->kind = kind;
    out->children.push_back(std::move(first));
    while (Peek(op)) {
      pos_ += op.size();
      Node n;
      if (!(this->*next)(&n, depth)) return false;
      out->children.push_back(std::move(n));
      SkipSpace();
    }
    return true;
  }
  bool Or(Node* out, int depth) { return Chain(out, depth, "||", Node::Kind::kOr, &Parser::And); }
  bool And(Node* out, int depth) {
    return Chain(out, depth, "&&", Node::Kind::kAnd, &Parser::Unary);
  }

  bool Unary(Node* out, int depth) {
    SkipSpace();
    if (Peek("!") && !Peek("!=")) {
      if (!Deeper(depth)) return false;
      ++pos_;
      out->kind = Node::Kind::kNot;
      out->children.emplace_back();
      return Unary(&out->children.back(), depth + 1);
    }
    return Primary(out, depth);
  }

  bool Primary(Node* out, int depth) {
    SkipSpace();
    if (Peek("(")) {
      if (!Deeper(depth)) return false;
      ++pos_;
      if (!Or(out, depth + 1)) return false;
      SkipSpace();
      if (!Eat(')')) return Fail("expected ')'");
      return true;
    }
    if (!Value(&out->lhs)) return false;
    SkipSpace();
    static constexpr std::pair<std::string_view, Op> kOps[] = {
        {"==", Op::kEq}, {"!=", Op::kNe}, {"<=", Op::kLe},
        {">=", Op::kGe}, {"<", Op::kLt},  {">", Op::kGt},
    };
    for (const auto& [text, op] : kOps) {
      if (!Peek(text)) continue;
      pos_ += text.size();
      out->kind = Node::Kind::kCompare;
      out->op = op;
      SkipSpace();
      return Value(&out->rhs);
    }
    if (Peek("=")) return Fail("expected '==' (or '!=', '<', '<=', '>', '>=')");
    out->kind = Node::Kind::kTruthy;
    return true;
  }

  bool Value(Operand* o) {
    if (pos_ >= text_.size()) return Fail("expected a field, string, number, true, false or null");
    const char c = text_[pos_];
    if (c == '"') return String(o);
    if (c == '-' || IsDigit(c)) return Number(o);
    if (!IsNameStart(c)) return Fail("expected a field, string, number, true, false or null");
    const size_t start = pos_;
    if (!Path(&o->path)) return false;
    const std::string_view word = text_.substr(start, pos_ - start);
    if (word == "true" || word == "false") {
      o->kind = Operand::Kind::kBool;
      o->boolean = word == "true";
    } else if (word == "null") {
      o->kind = Operand::Kind::kNull;
    } else {
      o->kind = Operand::Kind::kPath;
      return true;
    }
    o->path.clear();
    return true;
  }

  bool Path(std::vector<std::string>* path) {
    if (pos_ >= text_.size() || !IsNameStart(text_[pos_])) return Fail("expected a field name");
    while (true) {
      const size_t start = pos_;
      while (pos_ < text_.size() && IsNameChar(text_[pos_])) ++pos_;
      if (pos_ == start) return Fail("expected a field name");
      path->emplace_back(text_.substr(start, pos_ - start));
      if (!Peek(".")) return true;
      ++pos_;
    }
  }

  bool String(Operand* o) {
    o->kind = Operand::Kind::kString;
    ++pos_;  // the opening quote
    while (pos_ < text_.size() && text_[pos_] != '"') {
      char c = text_[pos_];
      PatternChar::Kind kind = c == '*'   ? PatternChar::kAny
                               : c == '?' ? PatternChar::kOne
                                          : PatternChar::kLiteral;
      if (c == '\\') {
        if (pos_ + 1 >= text_.size()) break;
        c = text_[pos_ + 1];
        if (c != '"' && c != '\\' && c != '*' && c != '?') {
          return Fail("unknown escape (only \\\" \\\\ \\* \\?)");
        }
        kind = PatternChar::kLiteral;
        ++pos_;
      }
      o->text.push_back(c);
      o->pattern.push_back({c, kind});
      o->wildcard |= kind != PatternChar::kLiteral;
      ++pos_;
    }
    if (!Eat('"')) return Fail("unterminated string");
    return true;
  }

  bool Number(Operand* o) {
    const size_t start = pos_;
    const auto digits = [this] {
      const size_t from = pos_;
      while (pos_ < text_.size() && IsDigit(text_[pos_])) ++pos_;
      return pos_ > from;
    };
    Eat('-');
    if (!digits()) return Fail("expected a digit");
    if (Eat('.') && !digits()) return Fail("expected a digit");
    if (Eat('e') || Eat('E')) {
      if (!Eat('+')) Eat('-');
      if (!digits()) return Fail("expected a digit");
    }
    if (pos_ < text_.size() && IsNameChar(text_[pos_])) return Fail("unexpected character");
    const char* first = text_.data() + start;
    const auto [end, ec] = std::from_chars(first, text_.data() + pos_, o->number);
    if (ec != std::errc() || end != text_.data() + pos_) {
      pos_ = start;
      return Fail("number out of range");
    }
    o->kind = Operand::Kind::kNumber;
    return true;
  }

  std::string_view text_;
  size_t base_;
  size_t pos_ = 0;
  std::string error_;
};

FieldValue Resolve(const Operand& o, const FieldAccessor& fields) {
  FieldValue v;
  switch (o.kind) {
    case Operand::Kind::kPath:
      return fields.Get(o.path);
    case Operand::Kind::kString:
      v.type = FieldValue::Type::kString;
      v.text = o.text;
      break;
    case Operand::Kind::kNumber:
      v.type = FieldValue::Type::kNumber;
      v.number = o.number;
      break;
    case Operand::Kind::kBool:
      v.type = FieldValue::Type::kBool;
      v.boolean = o.boolean;
      break;
    case Operand::Kind::kNull:
      v.type = FieldValue::Type::kNull;
      break;
  }
  return v;
}

bool Truthy(const FieldValue& v) {
  switch (v.type) {
    case FieldValue::Type::kMissing:
    case FieldValue::Type::kNull:
      return false;
    case FieldValue::Type::kBool:
      return v.boolean;
    case FieldValue::Type::kNumber:
      return v.number != 0;
    case FieldValue::Type::kString:
      return !v.text.empty();
    case FieldValue::Type::kComposite:
      return true;
  }
  return false;
}

bool Equal(const Operand& lo, FieldValue l, const Operand& ro, FieldValue r) {
  if (ro.kind == Operand::Kind::kString && ro.wildcard) {
    return l.type == FieldValue::Type::kString && WildcardMatch(ro.pattern, l.text);
  }
  if (lo.kind == Operand::Kind::kString && lo.wildcard) {
    return r.type == FieldValue::Type::kString && WildcardMatch(lo.pattern, r.text);
  }
  if (l.type == FieldValue::Type::kMissing) l.type = FieldValue::Type::kNull;
  if (r.type == FieldValue::Type::kMissing) r.type = FieldValue::Type::kNull;
  if (l.type != r.type) return false;
  switch (l.type) {
    case FieldValue::Type::kNull:
      return true;
    case FieldValue::Type::kBool:
      return l.boolean == r.boolean;
    case FieldValue::Type::kNumber:
      return l.number == r.number;
    case FieldValue::Type::kString:
      return l.text == r.text;
    default:
      return false;  // objects and arrays are never equal to anything
  }
}

bool Compare(const Node& n, const FieldAccessor& fields) {
  const FieldValue l = Resolve(n.lhs, fields);
  const FieldValue r = Resolve(n.rhs, fields);
  if (n.op == Op::kEq) return Equal(n.lhs, l, n.rhs, r);
  if (n.op == Op::kNe) return !Equal(n.lhs, l, n.rhs, r);
  int order = 0;  // <0, 0, >0
  if (l.type == FieldValue::Type::kNumber && r.type == FieldValue::Type::kNumber) {
    if (l.number != l.number || r.number != r.number) return false;  // NaN
    order = l.number < r.number ? -1 : l.number > r.number ? 1 : 0;
  } else if (l.type == FieldValue::Type::kString && r.type == FieldValue::Type::kString) {
    order = l.text.compare(r.text);
  } else {
    return false;
  }
  switch (n.op) {
    case Op::kLt:
      return order < 0;
    case Op::kLe:
      return order <= 0;
    case Op::kGt:
      return order > 0;
    case Op::kGe:
      return order >= 0;
    default:
      return false;
  }
}

// field=value: the field's text against the pattern.
bool TextMatch(const Node& n, const FieldAccessor& fields) {
  const FieldValue v = fields.Get(n.lhs.path);
  char buf[32];
  std::string_view text;
  switch (v.type) {
    case FieldValue::Type::kString:
      text = v.text;
      break;
    case FieldValue::Type::kNumber: {
      const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v.number);
      if (ec != std::errc()) return false;
      text = std::string_view(buf, static_cast<size_t>(end - buf));
      break;
    }
    case FieldValue::Type::kBool:
      text = v.boolean ? "true" : "false";
      break;
    case FieldValue::Type::kNull:
      text = "null";
      break;
    default:
      return false;
  }
  return WildcardMatch(n.rhs.pattern, text);
}

// Depth is bounded by the parser (kMaxDepth plus the fixed levels of one term).
bool Eval(const Node& n, const FieldAccessor& fields) {
  switch (n.kind) {
    case Node::Kind::kOr:
      for (const Node& c : n.children) {
        if (Eval(c, fields)) return true;
      }
      return false;
    case Node::Kind::kAnd:
      for (const Node& c : n.children) {
        if (!Eval(c, fields)) return false;
      }
      return true;
    case Node::Kind::kNot:
      return !Eval(n.children[0], fields);
    case Node::Kind::kCompare:
      return Compare(n, fields);
    case Node::Kind::kTruthy:
      return Truthy(Resolve(n.lhs, fields));
    case Node::Kind::kTextMatch:
      return TextMatch(n, fields);
  }
  return false;
}

// The comma-separated parts of a raw segment, each percent-decoded, with the offset of each in
// the decoded selector (parts joined by commas).
bool DecodeParts(std::string_view raw, std::vector<std::string>* parts,
                 std::vector<size_t>* offsets, std::string* error) {
  size_t offset = 0;
  while (true) {
    const size_t comma = raw.find(',');
    std::string part;
    if (!PercentDecode(raw.substr(0, comma), &part)) {
      *error = "selector: malformed percent-encoding at " + std::to_string(offset);
      return false;
    }
    offsets->push_back(offset);
    offset += part.size() + 1;
    parts->push_back(std::move(part));
    if (comma == std::string_view::npos) return true;
    raw.remove_prefix(comma + 1);
  }
}

}  // namespace

bool Selector::Parse(std::string_view segment, IdKind kind, size_t max_ids, Selector* out,
                     std::string* error) {
  const std::string too_long =
      "selector: longer than " + std::to_string(kMaxSelectorBytes) + " bytes (decoded)";
  if (segment.size() > 3 * kMaxSelectorBytes) {
    *error = too_long;
    return false;
  }
  Selector sel;
  if (segment == "all") {
    *out = std::move(sel);
    return true;
  }
  std::string whole;
  if (!PercentDecode(segment, &whole)) {
    *error = "selector: malformed percent-encoding";
    return false;
  }
  if (whole.size() > kMaxSelectorBytes) {
    *error = too_long;
    return false;
  }
  if (!whole.empty() && whole.front() == '{') {
    Node root;
    Parser p(whole, 0);
    if (!p.Expression(&root)) {
      *error = p.error();
      return false;
    }
    sel.form_ = Form::kExpression;
    sel.root_ = std::make_shared<const Node>(std::move(root));
    *out = std::move(sel);
    return true;
  }
  std::vector<std::string> parts;
  std::vector<size_t> offsets;
  if (!DecodeParts(segment, &parts, &offsets, error)) return false;
  bool terms = false;
  for (const std::string& part : parts) terms |= part.find('=') != std::string::npos;
  if (terms) {
    Node root;
    root.kind = Node::Kind::kAnd;
    for (size_t i = 0; i < parts.size(); ++i) {
      Parser p(parts[i], offsets[i]);
      root.children.emplace_back();
      if (!p.Term(&root.children.back())) {
        *error = p.error();
        return false;
      }
    }
    sel.form_ = Form::kFields;
    sel.root_ = std::make_shared<const Node>(std::move(root));
    *out = std::move(sel);
    return true;
  }
  std::set<std::string_view> seen;
  for (size_t i = 0; i < parts.size(); ++i) {
    const std::string& id = parts[i];
    bool ok = !id.empty();
    if (ok && kind == IdKind::kTokenId) {
      int64_t n = 0;
      const auto [end, ec] = std::from_chars(id.data(), id.data() + id.size(), n);
      ok = ec == std::errc() && end == id.data() + id.size() && n > 0;
    } else if (ok) {
      ok = base::IsValidMqttUtf8(id);
    }
    if (!ok) {
      *error = std::string("selector: expected all, ") +
               (kind == IdKind::kTokenId ? "a token id (a positive integer)"
                                         : "a (percent-encoded) client id") +
               ", a comma list of them, field=value or {expression} at " +
               std::to_string(offsets[i]);
      return false;
    }
    if (!seen.insert(id).second) continue;
    if (seen.size() > max_ids) {
      *error = "selector: lists more than " + std::to_string(max_ids) + " ids";
      return false;
    }
    sel.ids_.push_back(id);
  }
  sel.form_ = Form::kIds;
  *out = std::move(sel);
  return true;
}

bool Selector::Matches(std::string_view id, const FieldAccessor& fields) const {
  return root_ != nullptr ? Eval(*root_, fields) : Contains(id);
}

Selector Selector::Ids(std::vector<std::string> ids) {
  Selector s;
  s.form_ = Form::kIds;
  s.ids_ = std::move(ids);
  return s;
}

bool Selector::Contains(std::string_view id) const {
  if (form_ == Form::kAll) return true;
  return std::find(ids_.begin(), ids_.end(), id) != ids_.end();
}

}  // namespace ringmq::rest
