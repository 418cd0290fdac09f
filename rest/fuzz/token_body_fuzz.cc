// libFuzzer target for the token bodies of POST and PUT/PATCH /platform/tokens (acl/token_json.h:
// ParseTokenUpdates, ApplyTokenUpdate). Input: one control byte (bit 0: POST, which takes an
// array; bits 1-2: the update mode), then the body. PATCH merges `metadata` into the base's. Every
// token an update produces must pass ValidateToken (what the token store requires), and its JSON
// (TokenToJson, the REST answer and the store file's object) must parse back, in a store file, to
// the same token.
#include <cstdint>
#include <cstdlib>
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
  if (size == 0) return 0;
  const bool create = data[0] & 1;
  const UpdateMode modes[] = {UpdateMode::kCreate, UpdateMode::kReplace, UpdateMode::kPatch,
                              UpdateMode::kPatch};
  const UpdateMode mode = create ? UpdateMode::kCreate : modes[(data[0] >> 1) & 3];
  const std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
  std::vector<TokenUpdate> updates;
  std::string error;
  if (!ParseTokenUpdates(body, create, 8, &updates, &error)) {
    Check(!error.empty());
    return 0;
  }
  Check(!updates.empty() && updates.size() <= 8 && (create || updates.size() == 1));
  // A token as the store holds it, to update (PUT/PATCH) or to fill (POST).
  Token base;
  base.id = 7;
  base.key = std::string(64, 'k');
  base.created = base.accessed = 1'000'000;
  base.ttl = 60;
  base.metadata = R"({"a":{"b":1,"c":[1,{"d":null}]},"e":"f"})";  // for PATCH's merge patch
  base.access.type = AccessType::kAcl;
  base.access.acl.push_back(AclEntry{});
  base.access.acl.back().topic = "data/#";
  base.access.acl.back().actions = kActionSubscribe;
  std::string why;
  Check(ValidateToken(base, &why));
  for (const TokenUpdate& u : updates) {
    Token t = base;
    if (!ApplyTokenUpdate(u, mode, &t, &error)) {
      Check(t == base);  // a failed update changes nothing
      continue;
    }
    Check(ValidateToken(t, &why));
    const std::vector<const Token*> one = {&t};
    int64_t next_id = 0;
    std::vector<Token> back;
    Check(ParseTokenFile(SerializeTokenFile(8, one), &next_id, &back, &why));
    Check(next_id == 8 && back.size() == 1 && back[0] == t);
  }
  return 0;
}
