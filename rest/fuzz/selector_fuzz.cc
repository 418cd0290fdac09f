// libFuzzer target for the REST selector parser and evaluator (rest/selector.h). Input: one
// control byte (bit 0: client ids rather than token ids), then the raw path segment. A refused
// selector must say why ("selector: ..."); an accepted one is evaluated on a token, a session
// and a message view, which must neither crash nor recurse past the depth bound (ASan's stack).
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "rest/json_fields.h"
#include "rest/selector.h"

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

constexpr const char* kViews[] = {
    (R"({"id":7,"key":"k","info":"user 42","enabled":true,"expire":0,"ttl":3600,"created":1,)"
     R"("accessed":2,"metadata":{"user_id":42,"a":{"b":[1,"x",null]}},"access":{"type":2,)"
     R"("acl":[{"uri":"mqtt","topic":"data/#","actions":["subscribe"]}]}})"),
    R"({"client_id":"c1","connected":false,"protocol_version":5,"token_id":7,"peer":""})",
    (R"({"topic":"a/b","payload":"aGk=","encoding":"base64","qos":1,"retain":true,)"
     R"("properties":{"user_properties":[{"name":"n","value":"v"}]}})"),
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using ringmq::rest::Selector;
  if (size == 0) return 0;
  const Selector::IdKind kind =
      (data[0] & 1) != 0 ? Selector::IdKind::kClientId : Selector::IdKind::kTokenId;
  const std::string_view segment(reinterpret_cast<const char*>(data + 1), size - 1);
  Selector sel;
  std::string error;
  if (!Selector::Parse(segment, kind, 16, &sel, &error)) {
    Check(error.rfind("selector: ", 0) == 0);
    return 0;
  }
  Check(sel.needs_fields() ==
        (sel.form() == Selector::Form::kFields || sel.form() == Selector::Form::kExpression));
  Check(sel.form() != Selector::Form::kIds || (!sel.ids().empty() && sel.ids().size() <= 16));
  ringmq::rest::JsonFields fields;
  for (const char* view : kViews) {
    Check(fields.Parse(view));
    const bool a = sel.Matches("7", fields);
    const Selector copy = sel;              // NOLINT(performance-unnecessary-copy-initialization)
    Check(copy.Matches("7", fields) == a);  // immutable and deterministic
  }
  return 0;
}
