// JsonFields: a FieldAccessor (rest/selector.h) over one JSON object, the REST view of a token,
// session or retained message, so that a selector reads exactly the fields a GET answers.
//
// A dotted path walks nested objects; a segment of digits indexes an array. Strings returned
// point into the parser's storage: valid until the next Parse.
//
// Thread-safety: one object per thread (it owns a simdjson parser). No exceptions: simdjson's
// error-code interface only.
#ifndef RINGMQ_REST_JSON_FIELDS_H_
#define RINGMQ_REST_JSON_FIELDS_H_

#include <simdjson.h>

#include <string>
#include <string_view>
#include <vector>

#include "rest/selector.h"

namespace ringmq::rest {

class JsonFields : public FieldAccessor {
 public:
  // False when `json` is not one JSON object (then every field reads as missing).
  bool Parse(std::string_view json);
  FieldValue Get(const std::vector<std::string>& path) const override;

 private:
  simdjson::dom::parser parser_;
  simdjson::dom::element root_;
  bool ok_ = false;
};

}  // namespace ringmq::rest

#endif  // RINGMQ_REST_JSON_FIELDS_H_
