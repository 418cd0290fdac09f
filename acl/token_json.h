// Tokens to and from JSON, in the shapes of flespi's platform token API (doc/rest-api.md).
//
// Reading uses simdjson's DOM API with error codes (no exceptions). Every rule is checked and a
// failure names the field: "[1].access.acl[0].topic: invalid topic filter". Unknown fields,
// duplicate fields, wrong types, numbers out of range and malformed JSON are all errors; nothing is
// applied unless the whole body is valid.
//
// Writable fields (request bodies): info, enabled, expire, ttl, metadata, access, cid, origins,
// max_connections (ringmq's own: flespi's token object has no such field). Read-only fields
// (id, key, created, accessed) in a request body are errors. The store file (rest/token_store.h)
// holds every field.
//
// Thread-safety: pure functions (each call uses its own simdjson parser).
#ifndef RINGMQ_ACL_TOKEN_JSON_H_
#define RINGMQ_ACL_TOKEN_JSON_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "acl/token.h"

namespace ringmq::acl {

// The writable fields a request body sets; absent fields are nullopt.
struct TokenUpdate {
  std::optional<std::string> info;
  std::optional<bool> enabled;
  std::optional<int64_t> expire;
  std::optional<int64_t> ttl;
  std::optional<std::string> metadata;  // minified object text; "" when the body said null
  bool access = false;                  // the body has an `access` object (maybe empty)
  std::optional<AccessType> access_type;
  std::optional<std::vector<AclEntry>> acl;
  std::optional<uint32_t> max_connections;
  std::optional<int64_t> cid;
  std::optional<std::vector<Origin>> origins;  // empty when the body said [] or null
};

enum class UpdateMode {
  kCreate,  // POST: defaults, then the body's fields
  // PUT (flespi): only the fields in the body change, each replaced as a whole (`access` with
  // its defaults for what it leaves out: type 0, no acl); every other field keeps its value.
  kReplace,
  // PATCH: like PUT, but nested objects merge: `metadata` by JSON Merge Patch (acl/merge_patch.h;
  // a key set to null is removed, `"metadata": null` clears it all), `access.type` and
  // `access.acl` each separately (a type other than 2 without an acl drops the acl).
  kPatch,
};

// Parses a request body: one token object, or (when allow_array) a non-empty array of them, at
// most max_items. Returns false with *error naming the offending item and field.
bool ParseTokenUpdates(std::string_view body, bool allow_array, size_t max_items,
                       std::vector<TokenUpdate>* updates, std::string* error);

// Applies `update` to *token as `mode` says, then validates the result (ValidateToken). On failure
// *token is unchanged and *error says why.
bool ApplyTokenUpdate(const TokenUpdate& update, UpdateMode mode, Token* token, std::string* error);

// Field selection for `fields=`: a bit per token field.
using FieldMask = uint32_t;
inline constexpr FieldMask kFieldId = 1 << 0;
inline constexpr FieldMask kFieldKey = 1 << 1;
inline constexpr FieldMask kFieldInfo = 1 << 2;
inline constexpr FieldMask kFieldEnabled = 1 << 3;
inline constexpr FieldMask kFieldExpire = 1 << 4;
inline constexpr FieldMask kFieldTtl = 1 << 5;
inline constexpr FieldMask kFieldCreated = 1 << 6;
inline constexpr FieldMask kFieldAccessed = 1 << 7;
inline constexpr FieldMask kFieldMetadata = 1 << 8;
inline constexpr FieldMask kFieldAccess = 1 << 9;
inline constexpr FieldMask kFieldMaxConnections = 1 << 10;
inline constexpr FieldMask kFieldCid = 1 << 11;
inline constexpr FieldMask kFieldOrigins = 1 << 12;
inline constexpr FieldMask kAllFields = (1 << 13) - 1;

// Parses "id,info,access" (no spaces). An empty string selects every field. Unknown names are
// errors.
bool ParseFieldSelection(std::string_view csv, FieldMask* mask, std::string* error);

// Appends the token as one JSON object with the selected fields, in declaration order. metadata
// is written as its JSON object, or null when empty. max_connections is left out of kAllFields
// while it is 0 (so the objects and the store file stay as flespi's and older ringmq's read them),
// and written when selected on its own (fields= naming it).
void AppendTokenJson(std::string* out, const Token& token, FieldMask fields = kAllFields);
std::string TokenToJson(const Token& token, FieldMask fields = kAllFields);

// The token store file: {"format": 1, "next_id": N, "tokens": [token objects with every field]}.
std::string SerializeTokenFile(int64_t next_id, const std::vector<const Token*>& tokens);
// One token as TokenToJson(token) wrote it, every field (the cluster's token bucket holds one per
// key); validated as a store file's tokens are.
bool ParseStoredToken(std::string_view json, Token* token, std::string* error);
// Parses and validates a store file; ids must be unique, positive and below next_id, keys unique.
bool ParseTokenFile(std::string_view text, int64_t* next_id, std::vector<Token>* tokens,
                    std::string* error);

}  // namespace ringmq::acl

#endif  // RINGMQ_ACL_TOKEN_JSON_H_
