// JSON Merge Patch (RFC 7386) of one JSON object by another, for PATCH of a token's `metadata`
// (doc/rest-api.md): keys of the patch replace those of the target, a key whose patch value is
// null is removed, and where both values are objects they are merged the same way, recursively.
//
//   MergePatchObject(R"({"a":1,"b":{"c":2,"d":3}})", R"({"a":null,"b":{"c":9},"e":true})", &out)
//   -> out == R"({"b":{"c":9,"d":3},"e":true})"
//
// Thread-safety: a pure function (each call uses its own simdjson parser).
#ifndef RINGMQ_ACL_MERGE_PATCH_H_
#define RINGMQ_ACL_MERGE_PATCH_H_

#include <string>
#include <string_view>

namespace ringmq::acl {

// Merges `patch` (the minified text of a JSON object) into `target` (the minified text of a JSON
// object, or empty for none) and writes the minified result to *out: members in the target's
// order, then the patch's new members in the patch's order; nulls inside new members are dropped
// too (RFC 7386: a patch applied to nothing). Returns false with *error only for text that is not
// a JSON object (callers pass what simdjson already accepted).
[[nodiscard]] bool MergePatchObject(std::string_view target, std::string_view patch,
                                    std::string* out, std::string* error);

}  // namespace ringmq::acl

#endif  // RINGMQ_ACL_MERGE_PATCH_H_
