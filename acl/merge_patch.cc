#include "acl/merge_patch.h"

#include <simdjson.h>

#include "base/json.h"

namespace ringmq::acl {

namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;
using simdjson::dom::object;

void AppendKey(std::string* out, bool* first, std::string_view key) {
  if (!*first) out->push_back(',');
  *first = false;
  base::AppendJsonString(out, key);
  out->push_back(':');
}

void Merge(const object* target, object patch, std::string* out);

// The value a patch member gives a key whose old value is `old` (nullptr: none). REQUIRES: the
// patch value is not null (a null removes the key and is handled by the caller).
void AppendMerged(const element* old, element patch_value, std::string* out) {
  if (patch_value.type() != element_type::OBJECT) {
    out->append(simdjson::minify(patch_value));
    return;
  }
  object old_object;
  const bool merge = old != nullptr && old->get_object().get(old_object) == simdjson::SUCCESS;
  Merge(merge ? &old_object : nullptr, patch_value.get_object().value_unsafe(), out);
}

void Merge(const object* target, object patch, std::string* out) {
  out->push_back('{');
  bool first = true;
  if (target != nullptr) {
    for (auto member : *target) {
      element p;
      if (patch.at_key(member.key).get(p) != simdjson::SUCCESS) {
        AppendKey(out, &first, member.key);
        out->append(simdjson::minify(member.value));
        continue;
      }
      if (p.is_null()) continue;  // removed
      AppendKey(out, &first, member.key);
      AppendMerged(&member.value, p, out);
    }
  }
  for (auto member : patch) {
    element existing;
    if (target != nullptr && target->at_key(member.key).get(existing) == simdjson::SUCCESS) {
      continue;  // merged above
    }
    if (member.value.is_null()) continue;
    AppendKey(out, &first, member.key);
    AppendMerged(nullptr, member.value, out);
  }
  out->push_back('}');
}

}  // namespace

bool MergePatchObject(std::string_view target, std::string_view patch, std::string* out,
                      std::string* error) {
  simdjson::dom::parser target_parser;
  simdjson::dom::parser patch_parser;
  object patch_object;
  if (patch_parser.parse(patch.data(), patch.size()).get_object().get(patch_object) !=
      simdjson::SUCCESS) {
    *error = "merge patch: the patch is not a JSON object";
    return false;
  }
  object target_object;
  if (!target.empty() &&
      target_parser.parse(target.data(), target.size()).get_object().get(target_object) !=
          simdjson::SUCCESS) {
    *error = "merge patch: the target is not a JSON object";
    return false;
  }
  out->clear();
  Merge(target.empty() ? nullptr : &target_object, patch_object, out);
  return true;
}

}  // namespace ringmq::acl
