// One object or an array of objects (rest/internal/json_body.h).
#include "rest/internal/json_body.h"

namespace ringmq::rest {

bool ForEachJsonItem(simdjson::dom::element root, size_t max_items, std::string_view what,
                     const std::string& prefix, std::string* error, const JsonItem& item) {
  if (root.type() != simdjson::dom::element_type::ARRAY) return item(root, prefix);
  simdjson::dom::array arr = root.get_array().value_unsafe();
  const std::string name = prefix.empty() ? "body" : prefix;
  if (arr.size() == 0) {
    *error = name + ": empty array";
    return false;
  }
  if (arr.size() > max_items) {
    *error = name + ": more than " + std::to_string(max_items) + " " + std::string(what);
    return false;
  }
  size_t i = 0;
  for (simdjson::dom::element e : arr) {
    if (!item(e, prefix + "[" + std::to_string(i++) + "]")) return false;
  }
  return true;
}

bool ForEachBodyItem(std::string_view body, size_t max_items, std::string_view what,
                     std::string* error, const JsonItem& item) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(body.data(), body.size()).get(root) != simdjson::SUCCESS) {
    *error = "malformed JSON";
    return false;
  }
  return ForEachJsonItem(root, max_items, what, "", error, item);
}

}  // namespace ringmq::rest
