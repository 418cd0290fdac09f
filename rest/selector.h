// Selector: the `{sel}` path segment of the REST API (doc/rest-api.md, "Selectors"), parsed once
// into an immutable value that tokens, sessions and retained messages evaluate alike, through one
// evaluator over a FieldAccessor (rest/json_fields.h gives one over a JSON object view).
//
// Forms (each comma-separated part is percent-decoded; the expression form is decoded whole):
//   all                       every object
//   7   or  3,9,12            ids (tokens: positive integers; sessions: client ids)
//   info=user*,enabled=true   field=value terms that must all hold (comma = AND); the value is
//                             matched, with `*` (any run) and `?` (one byte) wildcards, against
//                             the field's text: a string as it is, a number in decimal, true,
//                             false or null. A missing field or an object matches nothing.
//   {expression}              e.g. {info=="user 42" || metadata.user_id==42}
//
// Expression grammar, lowest precedence first (spaces allowed between tokens):
//   or      := and ( "||" and )*
//   and     := unary ( "&&" unary )*
//   unary   := "!" unary | primary
//   primary := "(" or ")" | operand [ cmp operand ]
//   cmp     := "==" | "!=" | "<" | "<=" | ">" | ">="
//   operand := path | string | number | "true" | "false" | "null"
//   path    := name ( "." segment )*   name: [A-Za-z_][A-Za-z0-9_]*, segment: [A-Za-z0-9_]+
//              (a segment of digits indexes an array: access.acl.0.topic)
//   string  := '"' chars '"'  with \" \\ escapes; in == and != an unescaped `*` or `?` is a
//              wildcard (`\*`, `\?` are the characters themselves)
//   number  := -?digits(.digits)?([eE][+-]?digits)?
// Semantics: == and != compare type and value (a missing field equals null; numbers as doubles;
// a string literal with wildcards matches string fields by pattern); < <= > >= hold only between
// two numbers or two strings (bytewise); an operand alone holds when it is true, a non-zero
// number, a non-empty string, an object or an array.
//
// Bounds (hostile input): at most kMaxSelectorBytes of decoded text, kMaxDepth levels of nesting
// (parentheses and `!`), max_ids ids. The parser recurses only through nesting, which kMaxDepth
// caps; `&&` and `||` chains are n-ary nodes, so evaluation recurses no deeper than parsing did.
// An error names the offset (from 0, in the decoded selector) where parsing stopped:
// "selector: expected ')' at 14".
//
// Thread-safety: a parsed Selector is immutable (copies cross to the shards in BrokerHooks calls);
// copies share its expression tree (shared_ptr<const>) and may be read on any thread at once.
#ifndef RINGMQ_REST_SELECTOR_H_
#define RINGMQ_REST_SELECTOR_H_

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace ringmq::rest {

inline constexpr size_t kMaxSelectorBytes = 4096;
inline constexpr int kMaxDepth = 32;

// One field of the object a selector is evaluated on. `text` points into the accessor's storage
// and is valid until the accessor is reused or destroyed.
struct FieldValue {
  enum class Type { kMissing, kNull, kBool, kNumber, kString, kComposite };
  Type type = Type::kMissing;
  bool boolean = false;
  double number = 0;
  std::string_view text;
};

// How a selector reads the fields of one object. `path` is a dotted path split at the dots.
class FieldAccessor {
 public:
  virtual ~FieldAccessor() = default;
  virtual FieldValue Get(const std::vector<std::string>& path) const = 0;
};

namespace selector_internal {
struct Node;  // rest/selector.cc
}

class Selector {
 public:
  enum class Form { kAll, kIds, kFields, kExpression };
  enum class IdKind {
    kTokenId,   // positive 64-bit integers
    kClientId,  // non-empty MQTT UTF-8 strings
  };

  // Parses the raw (percent-encoded) path segment. Returns false with *error ("selector: ...")
  // and leaves *out unchanged on bad input.
  [[nodiscard]] static bool Parse(std::string_view segment, IdKind kind, size_t max_ids,
                                  Selector* out, std::string* error);

  Form form() const { return form_; }
  // kIds: the distinct ids in the order given (tokens: decimal text).
  const std::vector<std::string>& ids() const { return ids_; }
  // Whether Matches reads fields (kFields, kExpression): callers build an accessor only then.
  bool needs_fields() const { return root_ != nullptr; }
  // kAll: true; kIds: `id` is listed; otherwise the terms / expression over `fields`.
  bool Matches(std::string_view id, const FieldAccessor& fields) const;

  // The resolved form the broker core is handed (admin_api/broker_hooks.h): the REST shard
  // evaluates field and expression selectors on the session views and passes the client ids that
  // matched.
  static Selector Ids(std::vector<std::string> ids);
  // REQUIRES: !needs_fields(). Whether `id` is selected (kAll, or listed).
  bool Contains(std::string_view id) const;

 private:
  Form form_ = Form::kAll;
  std::vector<std::string> ids_;
  std::shared_ptr<const selector_internal::Node> root_;
};

}  // namespace ringmq::rest

#endif  // RINGMQ_REST_SELECTOR_H_
