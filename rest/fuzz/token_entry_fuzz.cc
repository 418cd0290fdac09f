// libFuzzer target for one token as the cluster's token bucket holds it (acl/token_json.h:
// ParseStoredToken), read from NATS by every node. A value that parses is a valid token with an
// id, and writing it again (TokenToJson) reads back the same.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "acl/token_json.h"

namespace {

using namespace ringmq::acl;

void Check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  Token t;
  std::string error;
  if (!ParseStoredToken(text, &t, &error)) {
    Check(!error.empty());
    return 0;
  }
  std::string why;
  Check(ValidateToken(t, &why));
  Check(t.id > 0);
  Token again;
  Check(ParseStoredToken(TokenToJson(t), &again, &error));
  Check(again == t);
  return 0;
}
