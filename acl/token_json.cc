#include "acl/token_json.h"

#include <simdjson.h>

#include <set>
#include <unordered_set>

#include "acl/merge_patch.h"
#include "acl/origin.h"
#include "base/json.h"

namespace ringmq::acl {

namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;

const char* TypeName(element_type t) {
  switch (t) {
    case element_type::ARRAY:
      return "an array";
    case element_type::OBJECT:
      return "an object";
    case element_type::INT64:
    case element_type::UINT64:
      return "an integer";
    case element_type::DOUBLE:
      return "a number";
    case element_type::STRING:
      return "a string";
    case element_type::BOOL:
      return "a boolean";
    case element_type::NULL_VALUE:
      return "null";
  }
  return "?";
}

// Builds "path: message" errors.
bool Fail(std::string* error, const std::string& path, std::string_view what) {
  *error = path.empty() ? std::string(what) : path + ": " + std::string(what);
  return false;
}

bool WrongType(std::string* error, const std::string& path, const char* expected, element e) {
  return Fail(error, path, std::string("must be ") + expected + ", not " + TypeName(e.type()));
}

std::string Join(const std::string& path, std::string_view field) {
  return path.empty() ? std::string(field) : path + "." + std::string(field);
}

bool GetString(element e, const std::string& path, std::string* out, std::string* error) {
  std::string_view s;
  if (e.get_string().get(s) != simdjson::SUCCESS) return WrongType(error, path, "a string", e);
  out->assign(s);
  return true;
}

bool GetBool(element e, const std::string& path, bool* out, std::string* error) {
  if (e.get_bool().get(*out) != simdjson::SUCCESS) return WrongType(error, path, "a boolean", e);
  return true;
}

// A time or duration: an integer in [0, kMaxTime].
bool GetTime(element e, const std::string& path, int64_t* out, std::string* error) {
  const element_type t = e.type();
  if (t == element_type::UINT64) return Fail(error, path, "out of range");
  if (t != element_type::INT64) return WrongType(error, path, "an integer", e);
  int64_t v = 0;
  if (e.get_int64().get(v) != simdjson::SUCCESS) return WrongType(error, path, "an integer", e);
  if (v < 0) return Fail(error, path, "must not be negative");
  if (v > kMaxTime) return Fail(error, path, "out of range (max " + std::to_string(kMaxTime) + ")");
  *out = v;
  return true;
}

// Iterates an object's fields, refusing duplicates. fn(key, value) returns false to stop.
template <typename Fn>
bool ForEachField(element e, const std::string& path, std::string* error, Fn&& fn) {
  simdjson::dom::object obj;
  if (e.get_object().get(obj) != simdjson::SUCCESS) return WrongType(error, path, "an object", e);
  std::set<std::string_view> seen;
  for (auto field : obj) {
    if (!seen.insert(field.key).second) {
      return Fail(error, Join(path, field.key), "duplicate field");
    }
    if (!fn(field.key, field.value)) return false;
  }
  return true;
}

// "methods": ["GET", "POST", ...] of an mqtt ACL entry: the REST methods of the /mqtt API.
bool ParseMethods(element v, const std::string& p, uint8_t* methods, std::string* error) {
  simdjson::dom::array arr;
  if (v.get_array().get(arr) != simdjson::SUCCESS) return WrongType(error, p, "an array", v);
  *methods = 0;
  size_t i = 0;
  for (element a : arr) {
    const std::string ap = p + "[" + std::to_string(i++) + "]";
    std::string method;
    if (!GetString(a, ap, &method, error)) return false;
    const uint8_t bit = MethodBit(method);
    if (bit == 0) {
      return Fail(error, ap,
                  "unknown method \"" + method.substr(0, 32) +
                      "\" (expected \"GET\", \"POST\", \"PUT\", \"PATCH\" or \"DELETE\")");
    }
    *methods |= bit;
  }
  return true;
}

// "origins": [ "10.0.0.0/8", {"ip": "2001:db8::/32"}, ... ] or null.
bool ParseOrigins(element v, const std::string& p, std::vector<Origin>* origins,
                  std::string* error) {
  origins->clear();
  if (v.is_null()) return true;
  simdjson::dom::array arr;
  if (v.get_array().get(arr) != simdjson::SUCCESS)
    return WrongType(error, p, "an array or null", v);
  if (arr.size() > kMaxOrigins) {
    return Fail(error, p, "more than " + std::to_string(kMaxOrigins) + " entries");
  }
  size_t i = 0;
  for (element a : arr) {
    const std::string ap = p + "[" + std::to_string(i++) + "]";
    Origin o;
    if (a.type() == element_type::OBJECT) {
      o.as_object = true;
      bool have_ip = false;
      const bool ok = ForEachField(a, ap, error, [&](std::string_view key, element f) {
        if (key != "ip") {
          return Fail(error, Join(ap, key),
                      "unknown field (an origin object holds \"ip\": an address or CIDR prefix)");
        }
        have_ip = true;
        return GetString(f, Join(ap, key), &o.ip, error);
      });
      if (!ok) return false;
      if (!have_ip) return Fail(error, Join(ap, "ip"), "missing");
    } else if (!GetString(a, ap, &o.ip, error)) {
      return false;
    }
    IpPrefix prefix;
    std::string why;
    if (!ParseIpPrefix(o.ip, &prefix, &why)) return Fail(error, ap, why);
    origins->push_back(std::move(o));
  }
  return true;
}

bool ParseAclEntry(element e, const std::string& path, AclEntry* entry, std::string* error) {
  bool have_topic = false;
  bool have_actions = false;
  const bool ok = ForEachField(e, path, error, [&](std::string_view key, element v) {
    const std::string p = Join(path, key);
    if (key == "uri") {
      std::string uri;
      if (!GetString(v, p, &uri, error)) return false;
      if (uri != "mqtt") return Fail(error, p, "only \"mqtt\" is supported");
      return true;
    }
    if (key == "topic") {
      if (!GetString(v, p, &entry->topic, error)) return false;
      std::string why;
      if (!ValidateAclTopic(entry->topic, &why)) return Fail(error, p, why);
      have_topic = true;
      return true;
    }
    if (key == "actions") {
      simdjson::dom::array arr;
      if (v.get_array().get(arr) != simdjson::SUCCESS) {
        return WrongType(error, p, "an array", v);
      }
      entry->actions = 0;
      size_t i = 0;
      for (element a : arr) {
        const std::string ap = p + "[" + std::to_string(i++) + "]";
        std::string action;
        if (!GetString(a, ap, &action, error)) return false;
        if (action == "publish") {
          entry->actions |= kActionPublish;
        } else if (action == "subscribe") {
          entry->actions |= kActionSubscribe;
        } else {
          return Fail(error, ap,
                      "unknown action \"" + action + "\" (expected \"publish\" or \"subscribe\")");
        }
      }
      have_actions = true;
      return true;
    }
    if (key == "methods") return ParseMethods(v, p, &entry->methods, error);
    return Fail(error, p, "unknown field");
  });
  if (!ok) return false;
  if (!have_topic) return Fail(error, Join(path, "topic"), "missing");
  // An entry grants MQTT actions, REST methods, or both; it must grant something.
  if (entry->actions == 0 && entry->methods == 0) {
    return Fail(error, Join(path, "actions"),
                have_actions ? "must name at least one action (or the entry a method)"
                             : "missing (or name REST methods in \"methods\")");
  }
  return true;
}

bool ParseAccess(element e, const std::string& path, TokenUpdate* u, std::string* error) {
  return ForEachField(e, path, error, [&](std::string_view key, element v) {
    const std::string p = Join(path, key);
    if (key == "type") {
      int64_t type = -1;
      if (v.type() != element_type::INT64 || v.get_int64().get(type) != simdjson::SUCCESS) {
        return WrongType(error, p, "an integer", v);
      }
      if (type < 0 || type > 2)
        return Fail(error, p, "must be 0 (standard), 1 (master) or 2 (acl)");
      u->access_type = static_cast<AccessType>(type);
      return true;
    }
    if (key == "acl") {
      simdjson::dom::array arr;
      if (v.get_array().get(arr) != simdjson::SUCCESS) return WrongType(error, p, "an array", v);
      if (arr.size() > kMaxAclEntries) {
        return Fail(error, p, "more than " + std::to_string(kMaxAclEntries) + " entries");
      }
      std::vector<AclEntry> acl;
      size_t i = 0;
      for (element a : arr) {
        AclEntry entry;
        if (!ParseAclEntry(a, p + "[" + std::to_string(i++) + "]", &entry, error)) return false;
        acl.push_back(std::move(entry));
      }
      u->acl = std::move(acl);
      return true;
    }
    return Fail(error, p, "unknown field");
  });
}

// The writable fields of one token object. `stored` (the store file) also reads the read-only
// fields into *stored_token.
bool ParseTokenObject(element e, const std::string& path, TokenUpdate* u, Token* stored_token,
                      std::string* error) {
  return ForEachField(e, path, error, [&](std::string_view key, element v) {
    const std::string p = Join(path, key);
    if (key == "info") {
      std::string info;
      if (!GetString(v, p, &info, error)) return false;
      if (info.size() > kMaxInfoBytes) {
        return Fail(error, p, "longer than " + std::to_string(kMaxInfoBytes) + " bytes");
      }
      u->info = std::move(info);
      return true;
    }
    if (key == "enabled") {
      bool b = false;
      if (!GetBool(v, p, &b, error)) return false;
      u->enabled = b;
      return true;
    }
    if (key == "expire" || key == "ttl") {
      int64_t t = 0;
      if (!GetTime(v, p, &t, error)) return false;
      (key == "expire" ? u->expire : u->ttl) = t;
      return true;
    }
    if (key == "metadata") {
      if (v.is_null()) {
        u->metadata = std::string();
        return true;
      }
      if (v.type() != element_type::OBJECT) return WrongType(error, p, "an object or null", v);
      std::string text = simdjson::minify(v);
      if (text.size() > kMaxMetadataBytes) {
        return Fail(error, p, "larger than " + std::to_string(kMaxMetadataBytes) + " bytes");
      }
      u->metadata = std::move(text);
      return true;
    }
    if (key == "access") {
      u->access = true;
      return ParseAccess(v, p, u, error);
    }
    if (key == "max_connections") {
      int64_t n = -1;
      if (v.type() != element_type::INT64 || v.get_int64().get(n) != simdjson::SUCCESS) {
        return v.type() == element_type::UINT64 ? Fail(error, p, "out of range")
                                                : WrongType(error, p, "an integer", v);
      }
      if (n < 0 || n > UINT32_MAX) return Fail(error, p, "must be 0 to 4294967295");
      u->max_connections = static_cast<uint32_t>(n);
      return true;
    }
    if (key == "cid") {
      int64_t n = -1;
      if (v.type() != element_type::INT64 || v.get_int64().get(n) != simdjson::SUCCESS) {
        return v.type() == element_type::UINT64 ? Fail(error, p, "out of range")
                                                : WrongType(error, p, "an integer", v);
      }
      if (n < 0) return Fail(error, p, "must not be negative");
      u->cid = n;
      return true;
    }
    if (key == "origins") {
      std::vector<Origin> origins;
      if (!ParseOrigins(v, p, &origins, error)) return false;
      u->origins = std::move(origins);
      return true;
    }
    if (stored_token != nullptr) {
      if (key == "id") {
        if (v.type() != element_type::INT64 ||
            v.get_int64().get(stored_token->id) != simdjson::SUCCESS || stored_token->id <= 0) {
          return Fail(error, p, "must be a positive integer");
        }
        return true;
      }
      if (key == "key") return GetString(v, p, &stored_token->key, error);
      if (key == "created") return GetTime(v, p, &stored_token->created, error);
      if (key == "accessed") return GetTime(v, p, &stored_token->accessed, error);
    } else if (key == "id" || key == "key" || key == "created" || key == "accessed") {
      return Fail(error, p, "read-only field");
    }
    return Fail(error, p, "unknown field");
  });
}

bool ParseJson(simdjson::dom::parser& parser, std::string_view text, element* root,
               std::string* error) {
  if (parser.parse(text.data(), text.size()).get(*root) != simdjson::SUCCESS) {
    // Re-parse only to name the error (cheap, and only on the failure path).
    const auto err = parser.parse(text.data(), text.size()).error();
    *error = std::string("malformed JSON: ") + simdjson::error_message(err);
    return false;
  }
  return true;
}

}  // namespace

bool ParseTokenUpdates(std::string_view body, bool allow_array, size_t max_items,
                       std::vector<TokenUpdate>* updates, std::string* error) {
  updates->clear();
  simdjson::dom::parser parser;
  element root;
  if (!ParseJson(parser, body, &root, error)) return false;
  if (root.type() == element_type::OBJECT) {
    TokenUpdate u;
    if (!ParseTokenObject(root, "", &u, nullptr, error)) return false;
    updates->push_back(std::move(u));
    return true;
  }
  if (!allow_array || root.type() != element_type::ARRAY) {
    return WrongType(error, "body", allow_array ? "an object or an array of objects" : "an object",
                     root);
  }
  simdjson::dom::array arr = root.get_array().value_unsafe();
  if (arr.size() == 0) return Fail(error, "body", "empty array");
  if (arr.size() > max_items) {
    return Fail(error, "body", "more than " + std::to_string(max_items) + " items");
  }
  size_t i = 0;
  for (element e : arr) {
    TokenUpdate u;
    if (!ParseTokenObject(e, "[" + std::to_string(i++) + "]", &u, nullptr, error)) return false;
    updates->push_back(std::move(u));
  }
  return true;
}

bool ApplyTokenUpdate(const TokenUpdate& u, UpdateMode mode, Token* token, std::string* error) {
  Token t = *token;
  if (u.info) t.info = *u.info;
  if (u.enabled) t.enabled = *u.enabled;
  if (u.expire) t.expire = *u.expire;
  if (u.ttl) t.ttl = *u.ttl;
  if (u.metadata) {
    if (mode == UpdateMode::kPatch && !u.metadata->empty()) {
      std::string merged;
      if (!MergePatchObject(t.metadata, *u.metadata, &merged, error)) return false;
      t.metadata = std::move(merged);
      if (t.metadata.size() > kMaxMetadataBytes) {
        return Fail(error, "metadata",
                    "larger than " + std::to_string(kMaxMetadataBytes) + " bytes once merged");
      }
    } else {
      t.metadata = *u.metadata;
    }
  }
  if (u.max_connections) t.max_connections = *u.max_connections;
  if (u.access && mode != UpdateMode::kPatch) t.access = Access{};
  if (u.cid) t.cid = *u.cid;
  if (u.origins) t.origins = *u.origins;
  if (u.access_type) {
    t.access.type = *u.access_type;
    if (t.access.type != AccessType::kAcl && !u.acl) t.access.acl.clear();
  }
  if (u.acl) t.access.acl = *u.acl;
  if (!t.access.acl.empty() && t.access.type != AccessType::kAcl) {
    return Fail(error, "access.acl", "allowed only with access.type 2");
  }
  std::string why;
  if (!ValidateToken(t, &why)) return Fail(error, "", why);
  *token = std::move(t);
  return true;
}

bool ParseFieldSelection(std::string_view csv, FieldMask* mask, std::string* error) {
  static constexpr std::pair<std::string_view, FieldMask> kNames[] = {
      {"id", kFieldId},
      {"key", kFieldKey},
      {"info", kFieldInfo},
      {"enabled", kFieldEnabled},
      {"expire", kFieldExpire},
      {"ttl", kFieldTtl},
      {"created", kFieldCreated},
      {"accessed", kFieldAccessed},
      {"metadata", kFieldMetadata},
      {"access", kFieldAccess},
      {"max_connections", kFieldMaxConnections},
      {"cid", kFieldCid},
      {"origins", kFieldOrigins},
  };
  if (csv.empty()) {
    *mask = kAllFields;
    return true;
  }
  *mask = 0;
  for (;;) {
    const size_t comma = csv.find(',');
    const std::string_view name = csv.substr(0, comma);
    FieldMask bit = 0;
    for (const auto& [n, b] : kNames) {
      if (n == name) bit = b;
    }
    if (bit == 0) return Fail(error, "fields", "unknown field \"" + std::string(name) + "\"");
    *mask |= bit;
    if (comma == std::string_view::npos) return true;
    csv.remove_prefix(comma + 1);
  }
}

void AppendTokenJson(std::string* out, const Token& t, FieldMask fields) {
  out->push_back('{');
  bool first = true;
  const auto name = [&](const char* n) {
    if (!first) out->push_back(',');
    first = false;
    out->push_back('"');
    out->append(n);
    out->append("\":");
  };
  if (fields & kFieldId) name("id"), base::AppendJsonInt(out, t.id);
  if (fields & kFieldKey) name("key"), base::AppendJsonString(out, t.key);
  if (fields & kFieldInfo) name("info"), base::AppendJsonString(out, t.info);
  if (fields & kFieldEnabled) name("enabled"), out->append(t.enabled ? "true" : "false");
  if (fields & kFieldExpire) name("expire"), base::AppendJsonInt(out, t.expire);
  if (fields & kFieldTtl) name("ttl"), base::AppendJsonInt(out, t.ttl);
  if (fields & kFieldCreated) name("created"), base::AppendJsonInt(out, t.created);
  if (fields & kFieldAccessed) name("accessed"), base::AppendJsonInt(out, t.accessed);
  if (fields & kFieldMetadata) {
    name("metadata");
    if (t.metadata.empty()) {
      out->append("null");
    } else {
      out->append(t.metadata);
    }
  }
  if (fields & kFieldAccess) {
    name("access");
    out->append("{\"type\":");
    base::AppendJsonInt(out, static_cast<int>(t.access.type));
    if (t.access.type == AccessType::kAcl) {
      out->append(",\"acl\":[");
      for (size_t i = 0; i < t.access.acl.size(); ++i) {
        const AclEntry& e = t.access.acl[i];
        if (i > 0) out->push_back(',');
        out->append("{\"uri\":\"mqtt\",\"topic\":");
        base::AppendJsonString(out, e.topic);
        out->append(",\"actions\":[");
        if (e.actions & kActionPublish) out->append("\"publish\"");
        if (e.actions & kActionSubscribe) {
          out->append((e.actions & kActionPublish) ? ",\"subscribe\"" : "\"subscribe\"");
        }
        out->push_back(']');
        if (e.methods != 0) {  // written only when set: entries without stay as they were
          out->append(",\"methods\":[");
          bool first_method = true;
          for (const char* m : {"GET", "POST", "PUT", "PATCH", "DELETE"}) {
            if ((e.methods & MethodBit(m)) == 0) continue;
            if (!first_method) out->push_back(',');
            first_method = false;
            out->push_back('"');
            out->append(m);
            out->push_back('"');
          }
          out->push_back(']');
        }
        out->push_back('}');
      }
      out->push_back(']');
    }
    out->push_back('}');
  }
  if ((fields & kFieldMaxConnections) && (t.max_connections != 0 || fields != kAllFields)) {
    name("max_connections");
    base::AppendJsonInt(out, t.max_connections);
  }
  if (fields & kFieldCid) name("cid"), base::AppendJsonInt(out, t.cid);
  if (fields & kFieldOrigins) {
    name("origins");
    out->push_back('[');
    for (size_t i = 0; i < t.origins.size(); ++i) {
      if (i > 0) out->push_back(',');
      if (t.origins[i].as_object) out->append("{\"ip\":");
      base::AppendJsonString(out, t.origins[i].ip);
      if (t.origins[i].as_object) out->push_back('}');
    }
    out->push_back(']');
  }
  out->push_back('}');
}

std::string TokenToJson(const Token& token, FieldMask fields) {
  std::string out;
  AppendTokenJson(&out, token, fields);
  return out;
}

std::string SerializeTokenFile(int64_t next_id, const std::vector<const Token*>& tokens) {
  std::string out = "{\"format\":1,\"next_id\":" + std::to_string(next_id) + ",\"tokens\":[\n";
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (i > 0) out.append(",\n");
    AppendTokenJson(&out, *tokens[i]);
  }
  out.append("\n]}\n");
  return out;
}

namespace {

// One token object of the store (every field, id included).
bool ParseStoredElement(element e, const std::string& path, Token* t, std::string* error) {
  TokenUpdate u;
  if (!ParseTokenObject(e, path, &u, t, error)) return false;
  const int64_t id = t->id;
  if (!ApplyTokenUpdate(u, UpdateMode::kCreate, t, error)) {
    *error = (path.empty() ? "" : path + ": ") + *error;
    return false;
  }
  if (id <= 0) return Fail(error, path.empty() ? "id" : path + ".id", "missing");
  return true;
}

}  // namespace

bool ParseStoredToken(std::string_view json, Token* token, std::string* error) {
  simdjson::dom::parser parser;
  element root;
  if (!ParseJson(parser, json, &root, error)) return false;
  *token = Token{};
  return ParseStoredElement(root, "", token, error);
}

bool ParseTokenFile(std::string_view text, int64_t* next_id, std::vector<Token>* tokens,
                    std::string* error) {
  tokens->clear();
  simdjson::dom::parser parser;
  element root;
  if (!ParseJson(parser, text, &root, error)) return false;
  bool have_format = false;
  bool have_next = false;
  bool have_tokens = false;
  const bool ok = ForEachField(root, "", error, [&](std::string_view key, element v) {
    if (key == "format") {
      int64_t f = 0;
      if (v.get_int64().get(f) != simdjson::SUCCESS || f != 1) {
        return Fail(error, "format", "unsupported (expected 1)");
      }
      have_format = true;
      return true;
    }
    if (key == "next_id") {
      if (v.type() != element_type::INT64 || v.get_int64().get(*next_id) != simdjson::SUCCESS ||
          *next_id <= 0) {
        return Fail(error, "next_id", "must be a positive integer");
      }
      have_next = true;
      return true;
    }
    if (key == "tokens") {
      simdjson::dom::array arr;
      if (v.get_array().get(arr) != simdjson::SUCCESS)
        return WrongType(error, "tokens", "an array", v);
      size_t i = 0;
      for (element e : arr) {
        Token t;
        if (!ParseStoredElement(e, "tokens[" + std::to_string(i++) + "]", &t, error)) return false;
        tokens->push_back(std::move(t));
      }
      have_tokens = true;
      return true;
    }
    return Fail(error, std::string(key), "unknown field");
  });
  if (!ok) return false;
  if (!have_format || !have_next || !have_tokens) {
    return Fail(error, "", "missing format, next_id or tokens");
  }
  std::unordered_set<int64_t> ids;
  std::unordered_set<std::string_view> keys;
  for (const Token& t : *tokens) {
    if (t.id >= *next_id) return Fail(error, "tokens", "id not below next_id");
    if (!ids.insert(t.id).second) return Fail(error, "tokens", "duplicate id");
    if (!keys.insert(t.key).second) return Fail(error, "tokens", "duplicate key");
  }
  return true;
}

}  // namespace ringmq::acl
