#include "rest/json_fields.h"

#include <charconv>
#include <cstdint>

namespace ringmq::rest {

bool JsonFields::Parse(std::string_view json) {
  ok_ = parser_.parse(json.data(), json.size()).get(root_) == simdjson::SUCCESS &&
        root_.type() == simdjson::dom::element_type::OBJECT;
  return ok_;
}

FieldValue JsonFields::Get(const std::vector<std::string>& path) const {
  using simdjson::dom::element_type;
  FieldValue v;
  if (!ok_) return v;
  simdjson::dom::element e = root_;
  for (const std::string& seg : path) {
    simdjson::dom::element next;
    if (e.type() == element_type::OBJECT) {
      if (e.get_object().value_unsafe().at_key(seg).get(next) != simdjson::SUCCESS) return v;
    } else if (e.type() == element_type::ARRAY) {
      size_t index = 0;
      const auto [end, ec] = std::from_chars(seg.data(), seg.data() + seg.size(), index);
      if (ec != std::errc() || end != seg.data() + seg.size() ||
          e.get_array().value_unsafe().at(index).get(next) != simdjson::SUCCESS) {
        return v;
      }
    } else {
      return v;
    }
    e = next;
  }
  switch (e.type()) {
    case element_type::NULL_VALUE:
      v.type = FieldValue::Type::kNull;
      break;
    case element_type::BOOL:
      v.type = FieldValue::Type::kBool;
      v.boolean = e.get_bool().value_unsafe();
      break;
    case element_type::INT64:  // get_double converts the integers too
    case element_type::UINT64:
    case element_type::DOUBLE:
      v.type = FieldValue::Type::kNumber;
      v.number = e.get_double().value_unsafe();
      break;
    case element_type::STRING:
      v.type = FieldValue::Type::kString;
      v.text = e.get_string().value_unsafe();
      break;
    default:
      v.type = FieldValue::Type::kComposite;
      break;
  }
  return v;
}

}  // namespace ringmq::rest
