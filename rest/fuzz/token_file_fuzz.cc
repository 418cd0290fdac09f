// libFuzzer target for the token store file (acl/token_json.h: ParseTokenFile), read at every
// start from the data directory. A file that parses holds valid tokens with unique ids below
// next_id and unique keys, and writing it again (SerializeTokenFile) reads back the same.
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "acl/token_json.h"

namespace {

using namespace ringmq::acl;

void Check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  int64_t next_id = 0;
  std::vector<Token> tokens;
  std::string error;
  if (!ParseTokenFile(text, &next_id, &tokens, &error)) {
    Check(!error.empty());
    return 0;
  }
  std::set<int64_t> ids;
  std::set<std::string> keys;
  std::vector<const Token*> all;
  for (const Token& t : tokens) {
    std::string why;
    Check(ValidateToken(t, &why));
    Check(t.id > 0 && t.id < next_id);
    Check(ids.insert(t.id).second && keys.insert(t.key).second);
    all.push_back(&t);
  }
  int64_t next_again = 0;
  std::vector<Token> again;
  Check(ParseTokenFile(SerializeTokenFile(next_id, all), &next_again, &again, &error));
  Check(next_again == next_id && again == tokens);
  return 0;
}
