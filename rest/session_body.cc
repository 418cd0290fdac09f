// Parsing of the session and subscription bodies (rest/internal/session_body.h).
#include "rest/internal/session_body.h"

#include <simdjson.h>

#include <cstdint>
#include <set>

#include "base/utf8.h"
#include "proto/topic.h"
#include "rest/http.h"
#include "rest/internal/json_body.h"

namespace ringmq::rest {

namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;

constexpr uint64_t kMaxSubscriptionId = 268'435'455;  // MQTT 5.0 section 3.8.2.1.2

// Reads the fields of one object; every failure names its path.
class Fields {
 public:
  Fields(std::string path, std::string* error) : path_(std::move(path)), error_(error) {}

  bool Fail(std::string_view field, std::string_view what) const {
    *error_ = path_ + (path_.empty() ? "" : ".") + std::string(field) + ": " + std::string(what);
    return false;
  }
  bool String(element v, std::string_view field, std::string* out) const {
    std::string_view s;
    if (v.get_string().get(s) != simdjson::SUCCESS) return Fail(field, "must be a string");
    out->assign(s);
    return true;
  }
  bool Uint(element v, std::string_view field, uint64_t min, uint64_t max, uint64_t* out) const {
    uint64_t n = 0;
    if ((v.type() != element_type::INT64 && v.type() != element_type::UINT64) ||
        v.get_uint64().get(n) != simdjson::SUCCESS || n < min || n > max) {
      return Fail(field,
                  "must be an integer from " + std::to_string(min) + " to " + std::to_string(max));
    }
    *out = n;
    return true;
  }
  bool Bool(element v, std::string_view field, bool* out) const {
    if (v.get_bool().get(*out) != simdjson::SUCCESS) return Fail(field, "must be a boolean");
    return true;
  }
  // The value at this path itself must be an object.
  bool Object(element v, simdjson::dom::object* out) const {
    if (v.get_object().get(*out) == simdjson::SUCCESS) return true;
    *error_ = (path_.empty() ? "body" : path_) + ": must be an object";
    return false;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::string* error_;
};

bool ParseSubscription(element e, const std::string& path, admin_api::NewSubscription* s,
                       std::string* error) {
  const Fields f(path, error);
  simdjson::dom::object obj;
  if (!f.Object(e, &obj)) return false;
  std::set<std::string_view> seen;
  bool have_topic = false;
  for (auto field : obj) {
    const std::string_view k = field.key;
    if (!seen.insert(k).second) return f.Fail(k, "duplicate field");
    uint64_t n = 0;
    if (k == "topic") {
      if (!f.String(field.value, k, &s->filter)) return false;
      if (proto::ValidateTopicFilter(s->filter) != proto::ReasonCode::kSuccess) {
        return f.Fail(k, "invalid topic filter");
      }
      have_topic = true;
    } else if (k == "qos") {
      if (!f.Uint(field.value, k, 0, 2, &n)) return false;
      s->qos = static_cast<uint8_t>(n);
    } else if (k == "no_local") {
      if (!f.Bool(field.value, k, &s->no_local)) return false;
    } else if (k == "retain_as_published") {
      if (!f.Bool(field.value, k, &s->retain_as_published)) return false;
    } else if (k == "retain_handling") {
      if (!f.Uint(field.value, k, 0, 2, &n)) return false;
      s->retain_handling = static_cast<uint8_t>(n);
    } else if (k == "subscription_id") {
      if (!f.Uint(field.value, k, 0, kMaxSubscriptionId, &n)) return false;
      s->subscription_id = static_cast<uint32_t>(n);
    } else {
      return f.Fail(k, "unknown field");
    }
  }
  if (!have_topic) return f.Fail("topic", "missing");
  if (s->no_local && proto::ParseSharedFilter(s->filter)) {
    return f.Fail("no_local", "not allowed on a shared subscription");
  }
  return true;
}

// One subscription of a list, which must not repeat a filter.
bool AddSubscription(element e, const std::string& path, std::set<std::string>* filters,
                     std::vector<admin_api::NewSubscription>* out, std::string* error) {
  admin_api::NewSubscription s;
  if (!ParseSubscription(e, path, &s, error)) return false;
  if (!filters->insert(s.filter).second) {
    *error = path + ".topic: the same filter twice";
    return false;
  }
  out->push_back(std::move(s));
  return true;
}

bool ParseSession(element e, const std::string& path, size_t max_items, admin_api::NewSession* s,
                  std::string* error) {
  const Fields f(path, error);
  simdjson::dom::object obj;
  if (!f.Object(e, &obj)) return false;
  std::set<std::string_view> seen;
  bool have_id = false, have_expiry = false, have_token = false;
  for (auto field : obj) {
    const std::string_view k = field.key;
    if (!seen.insert(k).second) return f.Fail(k, "duplicate field");
    uint64_t n = 0;
    if (k == "client_id") {
      if (!f.String(field.value, k, &s->client_id)) return false;
      if (s->client_id.empty() || s->client_id.size() > 65535 ||
          !base::IsValidMqttUtf8(s->client_id)) {
        return f.Fail(k, "must be 1 to 65535 bytes of valid UTF-8 without U+0000");
      }
      have_id = true;
    } else if (k == "expiry_interval") {
      if (!f.Uint(field.value, k, 1, UINT32_MAX, &n)) return false;
      s->expiry_interval = static_cast<uint32_t>(n);
      have_expiry = true;
    } else if (k == "token_id") {
      if (!f.Uint(field.value, k, 1, INT64_MAX, &n)) return false;
      s->token_id = static_cast<int64_t>(n);
      have_token = true;
    } else if (k == "clean") {
      bool clean = false;
      if (!f.Bool(field.value, k, &clean)) return false;
      if (clean) return f.Fail(k, "a session created over REST is persistent: must be false");
    } else if (k == "subscriptions") {
      if (field.value.type() != element_type::ARRAY) return f.Fail(k, "must be an array");
      if (field.value.get_array().value_unsafe().size() == 0) continue;  // none yet
      const std::string sub_path = (path.empty() ? "" : path + ".") + "subscriptions";
      std::set<std::string> filters;
      if (!ForEachJsonItem(field.value, max_items, "subscriptions", sub_path, error,
                           [&](element sub, const std::string& p) {
                             return AddSubscription(sub, p, &filters, &s->subscriptions, error);
                           })) {
        return false;
      }
    } else {
      return f.Fail(k, "unknown field");
    }
  }
  if (!have_id) return f.Fail("client_id", "missing");
  if (!have_expiry) return f.Fail("expiry_interval", "missing (seconds the session outlives)");
  if (!have_token) return f.Fail("token_id", "missing (the token the session belongs to)");
  return true;
}

}  // namespace

bool ParseSessionsBody(std::string_view body, size_t max_items,
                       std::vector<admin_api::NewSession>* sessions, std::string* error) {
  sessions->clear();
  std::set<std::string> ids;
  return ForEachBodyItem(body, max_items, "sessions", error,
                         [&](element e, const std::string& path) {
                           admin_api::NewSession s;
                           if (!ParseSession(e, path, max_items, &s, error)) return false;
                           if (!ids.insert(s.client_id).second) {
                             *error = path + ".client_id: the same client id twice";
                             return false;
                           }
                           sessions->push_back(std::move(s));
                           return true;
                         });
}

bool ParseSubscriptionsBody(std::string_view body, size_t max_items,
                            std::vector<admin_api::NewSubscription>* subscriptions,
                            std::string* error) {
  subscriptions->clear();
  std::set<std::string> filters;
  return ForEachBodyItem(body, max_items, "subscriptions", error,
                         [&](element e, const std::string& path) {
                           return AddSubscription(e, path, &filters, subscriptions, error);
                         });
}

bool ParseNameList(std::string_view sel, size_t max_items, std::string_view what,
                   std::string_view expected, const std::function<bool(const std::string&)>& valid,
                   admin_api::IdSet* out, std::string* error) {
  if (sel == "all") {
    out->all = true;
    return true;
  }
  std::set<std::string> seen;
  while (true) {
    const size_t comma = sel.find(',');
    std::string name;
    if (!PercentDecode(sel.substr(0, comma), &name) || !valid(name)) {
      *error = "bad " + std::string(expected);
      return false;
    }
    if (seen.insert(name).second) out->ids.push_back(std::move(name));
    if (out->ids.size() > max_items) {
      *error = "selector lists more than " + std::to_string(max_items) + " " + std::string(what);
      return false;
    }
    if (comma == std::string_view::npos) return true;
    sel.remove_prefix(comma + 1);
  }
}

bool ParseFilterSelector(std::string_view sel, size_t max_items, admin_api::IdSet* out,
                         std::string* error) {
  return ParseNameList(
      sel, max_items, "filters",
      "subscription selector: expected all or a comma list of percent-encoded topic filters "
      "(%2F for '/', %23 for '#', %2C for ',')",
      [](const std::string& f) {
        return proto::ValidateTopicFilter(f) == proto::ReasonCode::kSuccess;
      },
      out, error);
}

}  // namespace ringmq::rest
