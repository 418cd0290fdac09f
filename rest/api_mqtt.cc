// The endpoints answered by the shards through BrokerHooks: /mqtt/sessions, /mqtt/messages,
// /metrics. Each validates the request completely, then calls one hook; the hook's callback
// builds the answer.
#include <openssl/evp.h>
#include <simdjson.h>

#include <algorithm>
#include <memory>
#include <set>
#include <tuple>

#include "acl/rest_access.h"
#include "base/json.h"
#include "base/utf8.h"
#include "proto/topic.h"
#include "rest/api.h"
#include "rest/internal/json_body.h"
#include "rest/internal/publish_body.h"
#include "rest/internal/session_body.h"
#include "rest/internal/session_json.h"
#include "rest/json_fields.h"
#include "rest/pagination.h"
#include "rest/selector.h"

namespace ringmq::rest {

namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;

std::string Base64Encode(std::string_view in) {
  std::string out(4 * ((in.size() + 2) / 3), '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(in.data()),
                                static_cast<int>(in.size()));
  out.resize(n < 0 ? 0 : static_cast<size_t>(n));
  return out;
}

bool Base64Decode(std::string_view in, std::string* out) {
  if (in.size() % 4 != 0) return false;
  out->assign(in.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out->data()),
                                reinterpret_cast<const unsigned char*>(in.data()),
                                static_cast<int>(in.size()));
  if (n < 0) return false;
  size_t pad = 0;
  if (!in.empty() && in.back() == '=') ++pad;
  if (in.size() >= 2 && in[in.size() - 2] == '=') ++pad;
  out->resize(static_cast<size_t>(n) - pad);
  return true;
}

// Text when the bytes are valid UTF-8 (MQTT rules), base64 otherwise.
void AppendPayload(std::string* out, const char* name, const char* encoding_name,
                   std::string_view bytes) {
  const bool text = base::IsValidMqttUtf8(bytes) || bytes.empty();
  out->append(",\"").append(name).append("\":");
  base::AppendJsonString(out, text ? std::string(bytes) : Base64Encode(bytes));
  out->append(",\"").append(encoding_name).append("\":");
  out->append(text ? "\"text\"" : "\"base64\"");
}

// `now_ms` on the messages' expiry clock (route::SteadyNowMs): the remaining expiry interval is
// shown, rounded up, as a subscriber would get it.
std::string MessageJson(const route::Message& m, int64_t now_ms) {
  std::string out = "{\"topic\":";
  base::AppendJsonString(&out, m.topic);
  AppendPayload(&out, "payload", "encoding", m.payload);
  out.append(",\"qos\":").append(std::to_string(m.qos));
  out.append(",\"retain\":").append(m.retain ? "true" : "false");
  out.append(",\"properties\":{");
  bool first = true;
  const auto field = [&](const char* name) {
    if (!first) out.push_back(',');
    first = false;
    out.append("\"").append(name).append("\":");
  };
  if (m.payload_format_indicator) {
    field("payload_format_indicator");
    out.append(std::to_string(*m.payload_format_indicator));
  }
  if (m.expires_at_ms != 0) {
    field("message_expiry_interval");
    out.append(std::to_string(std::max<int64_t>(0, (m.expires_at_ms - now_ms + 999) / 1000)));
  }
  // Empty strings are not shown, as they are not taken in a POST (absent and empty are one).
  if (m.content_type.value_or("") != "") {
    field("content_type");
    base::AppendJsonString(&out, *m.content_type);
  }
  if (m.response_topic.value_or("") != "") {
    field("response_topic");
    base::AppendJsonString(&out, *m.response_topic);
  }
  if (m.correlation_data.value_or("") != "") {
    field("correlation_data");
    base::AppendJsonString(&out, Base64Encode(*m.correlation_data));
  }
  if (!m.user_properties.empty()) {
    field("user_properties");
    out.push_back('[');
    for (size_t i = 0; i < m.user_properties.size(); ++i) {
      if (i > 0) out.push_back(',');
      out.append("{\"name\":");
      base::AppendJsonString(&out, m.user_properties[i].first);
      out.append(",\"value\":");
      base::AppendJsonString(&out, m.user_properties[i].second);
      out.push_back('}');
    }
    out.push_back(']');
  }
  out.append("}}");
  return out;
}

}  // namespace

std::string SessionJson(const admin_api::SessionInfo& s) {
  std::string out = "{\"client_id\":";
  base::AppendJsonString(&out, s.client_id);
  out.append(",\"connected\":").append(s.connected ? "true" : "false");
  out.append(",\"protocol_version\":").append(std::to_string(s.protocol_version));
  out.append(",\"clean\":").append(s.clean ? "true" : "false");
  out.append(",\"expiry_interval\":").append(std::to_string(s.expiry_interval));
  out.append(",\"keep_alive\":").append(std::to_string(s.keep_alive));
  out.append(",\"token_id\":").append(std::to_string(s.token_id));
  out.append(",\"peer\":");
  base::AppendJsonString(&out, s.peer);
  out.append(",\"shard\":").append(std::to_string(s.shard));
  out.append(",\"connected_since\":").append(std::to_string(s.connected_since));
  out.append(",\"subscriptions\":").append(std::to_string(s.subscriptions));
  out.append(",\"queued\":").append(std::to_string(s.queued));
  out.append(",\"inflight\":").append(std::to_string(s.inflight));
  out.push_back('}');
  return out;
}

std::string SubscriptionJson(const admin_api::SubscriptionInfo& s) {
  std::string out = "{\"client_id\":";
  base::AppendJsonString(&out, s.client_id);
  out.append(",\"topic\":");
  base::AppendJsonString(&out, s.filter);
  out.append(",\"qos\":").append(std::to_string(s.qos));
  out.append(",\"no_local\":").append(s.no_local ? "true" : "false");
  out.append(",\"retain_as_published\":").append(s.retain_as_published ? "true" : "false");
  out.append(",\"retain_handling\":").append(std::to_string(s.retain_handling));
  out.append(",\"subscription_id\":").append(std::to_string(s.subscription_id));
  out.append(",\"effective\":[");
  for (size_t i = 0; i < s.effective.size(); ++i) {
    if (i > 0) out.push_back(',');
    base::AppendJsonString(&out, s.effective[i]);
  }
  out.append("]}");
  return out;
}

namespace {

// One message object of a POST /mqtt/messages body, its expiry counted from now_ms.
bool ParseMessage(element e, const std::string& path, int64_t now_ms, route::Message* m,
                  std::string* error) {
  simdjson::dom::object obj;
  if (e.get_object().get(obj) != simdjson::SUCCESS) {
    *error = path + ": must be an object";
    return false;
  }
  std::set<std::string_view> seen;
  std::string encoding = "text";
  bool have_topic = false;
  const auto fail = [&](std::string_view field, std::string_view what) {
    *error = (path.empty() ? "" : path + ".") + std::string(field) + ": " + std::string(what);
    return false;
  };
  const auto get_string = [&](element v, std::string_view field, std::string* out) {
    std::string_view s;
    if (v.get_string().get(s) != simdjson::SUCCESS) return fail(field, "must be a string");
    out->assign(s);
    return true;
  };
  // A string property whose empty value is the same as none (the PUBLISH carries none).
  const auto get_property = [&](element v, std::string_view field,
                                std::optional<std::string>* out) {
    std::string s;
    if (!get_string(v, field, &s)) return false;
    if (s.empty()) {
      out->reset();
    } else {
      *out = std::move(s);
    }
    return true;
  };
  const auto get_uint = [&](element v, std::string_view field, uint64_t max, uint64_t* out) {
    int64_t n = 0;
    if (v.type() != element_type::INT64 || v.get_int64().get(n) != simdjson::SUCCESS || n < 0 ||
        static_cast<uint64_t>(n) > max) {
      return fail(field, "must be an integer from 0 to " + std::to_string(max));
    }
    *out = static_cast<uint64_t>(n);
    return true;
  };
  for (auto field : obj) {
    const std::string_view k = field.key;
    const element v = field.value;
    if (!seen.insert(k).second) return fail(k, "duplicate field");
    uint64_t n = 0;
    if (k == "topic") {
      if (!get_string(v, k, &m->topic)) return false;
      if (proto::ValidateTopicName(m->topic) != proto::ReasonCode::kSuccess) {
        return fail(k, "invalid topic name");
      }
      if (proto::IsSysTopic(m->topic)) return fail(k, "$SYS topics are the broker's own");
      have_topic = true;
    } else if (k == "payload") {
      if (!get_string(v, k, &m->payload)) return false;
    } else if (k == "encoding") {
      if (!get_string(v, k, &encoding)) return false;
      if (encoding != "text" && encoding != "base64") return fail(k, "must be text or base64");
    } else if (k == "qos") {
      if (!get_uint(v, k, 2, &n)) return false;
      m->qos = static_cast<uint8_t>(n);
    } else if (k == "retain") {
      if (v.get_bool().get(m->retain) != simdjson::SUCCESS) return fail(k, "must be a boolean");
    } else if (k == "properties") {
      simdjson::dom::object props;
      if (v.get_object().get(props) != simdjson::SUCCESS) return fail(k, "must be an object");
      std::set<std::string_view> seen_props;
      for (auto p : props) {
        const std::string pk = "properties." + std::string(p.key);
        if (!seen_props.insert(p.key).second) return fail(pk, "duplicate field");
        if (p.key == "payload_format_indicator") {
          if (!get_uint(p.value, pk, 1, &n)) return false;
          m->payload_format_indicator = static_cast<uint8_t>(n);
        } else if (p.key == "message_expiry_interval") {
          if (!get_uint(p.value, pk, UINT32_MAX, &n)) return false;
          m->expires_at_ms = now_ms + static_cast<int64_t>(n) * 1000;
        } else if (p.key == "content_type") {
          if (!get_property(p.value, pk, &m->content_type)) return false;
        } else if (p.key == "response_topic") {
          std::string topic;
          if (!get_string(p.value, pk, &topic)) return false;
          if (proto::ValidateTopicName(topic) != proto::ReasonCode::kSuccess) {
            return fail(pk, "invalid topic name");
          }
          m->response_topic = std::move(topic);
        } else if (p.key == "correlation_data") {
          std::string b64, bytes;
          if (!get_string(p.value, pk, &b64)) return false;
          if (!Base64Decode(b64, &bytes)) return fail(pk, "must be base64");
          if (!bytes.empty()) m->correlation_data = std::move(bytes);
        } else if (p.key == "user_properties") {
          simdjson::dom::object up;
          if (p.value.get_object().get(up) != simdjson::SUCCESS) {
            return fail(pk, "must be an object of strings");
          }
          for (auto u : up) {
            std::string_view s;
            if (u.value.get_string().get(s) != simdjson::SUCCESS) {
              return fail(pk + "." + std::string(u.key), "must be a string");
            }
            m->user_properties.emplace_back(std::string(u.key), std::string(s));
          }
        } else {
          return fail(pk, "unknown field");
        }
      }
    } else {
      return fail(k, "unknown field");
    }
  }
  if (!have_topic) return fail("topic", "missing");
  if (encoding == "base64") {
    std::string bytes;
    if (!Base64Decode(m->payload, &bytes)) return fail("payload", "invalid base64");
    m->payload = std::move(bytes);
  }
  if (m->payload_format_indicator == 1 && !base::IsValidMqttUtf8(m->payload)) {
    return fail("payload", "not UTF-8 although payload_format_indicator is 1");
  }
  return true;
}

}  // namespace

bool ParsePublishBody(std::string_view body, size_t max_items,
                      std::vector<route::MessagePtr>* messages, std::string* error) {
  messages->clear();
  const int64_t now = route::SteadyNowMs();
  return ForEachBodyItem(body, max_items, "messages", error,
                         [&](element e, const std::string& path) {
                           route::Message m;
                           if (!ParseMessage(e, path, now, &m, error)) return false;
                           messages->push_back(std::make_shared<route::Message>(std::move(m)));
                           return true;
                         });
}

namespace {

// Wraps a hook answer: a non-empty error becomes 503; make_items(value) gives every match in its
// stable order, which `page` cuts.
template <typename T, typename Fn>
admin_api::BrokerHooks::Done<T> Answer(Respond respond, Page page, Fn make_items) {
  return [respond = std::move(respond), page, make_items = std::move(make_items)](
             const std::string& error, T value) {
    if (!error.empty()) return respond(JsonError(503, error));
    respond(PagedResult(make_items(value), page));
  };
}

// Calls fn(x, view) for each x of `all` that `sel` selects, by id(x) or by its JSON view json(x).
template <typename T, typename Json, typename Id, typename Fn>
void ForEachSelected(const Selector& sel, const std::vector<T>& all, Json json, Id id, Fn fn) {
  JsonFields fields;
  for (const T& x : all) {
    std::string view = json(x);
    if (sel.needs_fields()) fields.Parse(view);
    if (sel.Matches(id(x), fields)) fn(x, std::move(view));
  }
}

// The JSON views of the objects of `all` that `sel` selects.
template <typename T, typename Json, typename Id>
std::vector<std::string> Selected(const Selector& sel, const std::vector<T>& all, Json json,
                                  Id id) {
  std::vector<std::string> items;
  ForEachSelected(sel, all, json, id,
                  [&items](const T&, std::string view) { items.push_back(std::move(view)); });
  return items;
}

const std::string& ClientIdOf(const admin_api::SessionInfo& s) { return s.client_id; }

// What the shards are handed for `sel`: every session when the selector reads fields (their views
// are then filtered here), else its client ids.
admin_api::IdSet ToClientIds(const Selector& sel) {
  if (sel.needs_fields() || sel.form() == Selector::Form::kAll) return {true, {}};
  return {false, sel.ids()};
}
const std::string& TopicOf(const route::MessagePtr& m) { return m->topic; }
// The JSON view of a retained message, for Selected / ForEachSelected.
auto MessageView(int64_t now_ms) {
  return [now_ms](const route::MessagePtr& m) { return MessageJson(*m, now_ms); };
}

}  // namespace

void Api::ResolveSessions(const Selector& sel, const Respond& respond,
                          std::function<void(const admin_api::IdSet&)> next) {
  if (!sel.needs_fields()) return next(ToClientIds(sel));
  hooks_->ListSessions(ToClientIds(sel), [sel, respond, next = std::move(next)](
                                             const std::string& error,
                                             const std::vector<admin_api::SessionInfo>& v) {
    if (!error.empty()) return respond(JsonError(503, error));
    std::vector<std::string> ids;
    ForEachSelected(sel, v, SessionJson, ClientIdOf,
                    [&ids](const admin_api::SessionInfo& s, const std::string&) {
                      ids.push_back(s.client_id);
                    });
    next(admin_api::IdSet{false, std::move(ids)});
  });
}

void Api::HandleSessions(const HttpRequest& req, const std::vector<std::string_view>& seg,
                         const Respond& respond) {
  if (seg.size() == 2) {  // POST /mqtt/sessions (api_sessions.cc)
    if (req.method != "POST") {
      return respond(JsonError(405,
                               "method not allowed (POST /mqtt/sessions, or "
                               "GET/DELETE /mqtt/sessions/{selector})"));
    }
    return CreateSessions(req, respond);
  }
  const bool subs = seg.size() >= 4 && seg[3] == "subscriptions";
  if (seg.size() > 5 || (seg.size() >= 4 && !subs)) {
    return respond(JsonError(404, "no such endpoint"));
  }
  Selector sel;
  std::string error;
  if (!Selector::Parse(seg[2], Selector::IdKind::kClientId, limits_.max_items, &sel, &error)) {
    return respond(JsonError(400, error));
  }
  Page page;
  if (!ParsePage(req.query, &page, &error)) return respond(JsonError(400, error));
  if (hooks_ == nullptr) return respond(JsonError(503, "no broker attached"));
  if (subs && (seg.size() == 5 || req.method != "GET")) {  // api_sessions.cc
    // The request is copied: a selector that reads fields is resolved after a ListSessions.
    return ResolveSessions(
        sel, respond,
        [this, req, sub_sel = std::string(seg.size() == 5 ? seg[4] : ""), respond](
            const admin_api::IdSet& ids) { HandleSubscriptions(req, ids, sub_sel, respond); });
  }
  if (subs) {
    return ResolveSessions(sel, respond, [this, respond, page](const admin_api::IdSet& ids) {
      hooks_->ListSubscriptions(
          ids, Answer<std::vector<admin_api::SubscriptionInfo>>(respond, page, [](auto& v) {
            std::sort(
                v.begin(), v.end(),
                [](const admin_api::SubscriptionInfo& a, const admin_api::SubscriptionInfo& b) {
                  return std::tie(a.client_id, a.filter) < std::tie(b.client_id, b.filter);
                });
            std::vector<std::string> items;
            items.reserve(v.size());
            for (const admin_api::SubscriptionInfo& s : v) items.push_back(SubscriptionJson(s));
            return items;
          }));
    });
  }
  if (req.method == "GET") {
    // Field and expression selectors are evaluated here, on the views of every session.
    return hooks_->ListSessions(
        ToClientIds(sel),
        Answer<std::vector<admin_api::SessionInfo>>(respond, page, [sel](auto& v) {
          std::sort(v.begin(), v.end(),
                    [](const admin_api::SessionInfo& a, const admin_api::SessionInfo& b) {
                      return a.client_id < b.client_id;
                    });
          return Selected(sel, v, SessionJson, ClientIdOf);
        }));
  }
  if (req.method == "DELETE") {
    return ResolveSessions(sel, respond, [this, respond](const admin_api::IdSet& ids) {
      hooks_->DeleteSessions(ids, Answer<std::vector<std::string>>(respond, Page(), [](auto& v) {
                               std::sort(v.begin(), v.end());
                               std::vector<std::string> items;
                               items.reserve(v.size());
                               for (const std::string& id : v)
                                 items.push_back("{\"client_id\":" + base::JsonString(id) + "}");
                               return items;
                             }));
    });
  }
  respond(JsonError(405, "method not allowed"));
}

void Api::HandleMessages(const HttpRequest& req, std::string_view rest, const acl::Token* limited,
                         const Respond& respond) {
  if (rest.empty()) {
    if (req.method != "POST") {
      return respond(JsonError(405,
                               "method not allowed (POST /mqtt/messages, or "
                               "GET/DELETE /mqtt/messages/{topic filter})"));
    }
    std::vector<route::MessagePtr> messages;
    std::string error;
    if (!ParsePublishBody(req.body, limits_.max_items, &messages, &error)) {
      return respond(JsonError(400, error));
    }
    if (limited != nullptr) {
      for (const route::MessagePtr& m : messages) {
        if (!acl::MethodAllowsTopic(limited->access.acl, acl::kMethodPost, m->topic)) {
          return respond(JsonError(403, "topic " + base::JsonString(m->topic) +
                                            ": no entry of this token allows POST there"));
        }
      }
    }
    if (hooks_ == nullptr) return respond(JsonError(503, "no broker attached"));
    std::vector<std::string> items;
    items.reserve(messages.size());
    for (const route::MessagePtr& m : messages) {
      items.push_back("{\"topic\":" + base::JsonString(m->topic) + "}");
    }
    return hooks_->Publish(std::move(messages),
                           [respond, items = std::move(items)](const std::string& error, bool) {
                             if (!error.empty()) return respond(JsonError(503, error));
                             respond(JsonResult(200, items));
                           });
  }
  // A topic filter, or a {expression} over the retained messages' views (all topics but $...).
  std::string filter;
  Selector sel;
  std::string error;
  if (!PercentDecode(rest, &filter)) {
    return respond(JsonError(400, "invalid topic filter (percent-encode '#' as %23)"));
  }
  if (!filter.empty() && filter.front() == '{') {
    if (!Selector::Parse(rest, Selector::IdKind::kClientId, limits_.max_items, &sel, &error)) {
      return respond(JsonError(400, error));
    }
    filter = "#";
  } else if (proto::ValidateTopicFilter(filter) != proto::ReasonCode::kSuccess ||
             proto::ParseSharedFilter(filter).has_value()) {
    return respond(JsonError(400, "invalid topic filter (percent-encode '#' as %23)"));
  }
  Page page;
  if (!ParsePage(req.query, &page, &error)) return respond(JsonError(400, error));
  if (limited != nullptr) {
    // GET lists what the token's GET entries reach of the filter; DELETE may not reach further
    // than one DELETE entry (acl/rest_access.h). An expression is over every topic ('#').
    const bool get = req.method == "GET";
    if (get ? !acl::MethodMeetsFilter(limited->access.acl, acl::kMethodGet, filter)
            : !acl::MethodCoversFilter(limited->access.acl, acl::MethodBit(req.method), filter)) {
      return respond(
          JsonError(403, "topic filter " + base::JsonString(filter) +
                             (get ? ": outside every entry of this token listing GET"
                                  : ": not inside an entry of this token listing " + req.method)));
    }
  }
  if (hooks_ == nullptr) return respond(JsonError(503, "no broker attached"));
  if (req.method == "GET") {
    std::vector<acl::AclEntry> only;  // a copy: the answer comes later, the token may change
    if (limited != nullptr) only = limited->access.acl;
    return hooks_->ListRetained(
        filter,
        Answer<std::vector<route::MessagePtr>>(
            respond, page, [sel, only = std::move(only), all = limited == nullptr](auto& v) {
              if (!all) {
                std::erase_if(v, [&only](const route::MessagePtr& m) {
                  return !acl::MethodAllowsTopic(only, acl::kMethodGet, m->topic);
                });
              }
              std::sort(v.begin(), v.end(),
                        [](const route::MessagePtr& a, const route::MessagePtr& b) {
                          return a->topic < b->topic;
                        });
              return Selected(sel, v, MessageView(route::SteadyNowMs()), TopicOf);
            }));
  }
  if (req.method != "DELETE") return respond(JsonError(405, "method not allowed"));
  if (!sel.needs_fields()) return DeleteRetainedTopics(filter, {}, respond);
  hooks_->ListRetained(filter, [this, sel, respond](const std::string& error,
                                                    const std::vector<route::MessagePtr>& v) {
    if (!error.empty()) return respond(JsonError(503, error));
    std::vector<std::string> topics;
    ForEachSelected(
        sel, v, MessageView(route::SteadyNowMs()), TopicOf,
        [&topics](const route::MessagePtr& m, const std::string&) { topics.push_back(m->topic); });
    if (topics.empty()) return respond(JsonResult(200, {}));
    DeleteRetainedTopics("", std::move(topics), respond);
  });
}

void Api::DeleteRetainedTopics(const std::string& filter, std::vector<std::string> topics,
                               const Respond& respond) {
  // One DeleteRetained per filter (a topic name is a filter matching itself); the answer lists
  // the topics removed, in order, once every call answered.
  if (topics.empty()) topics.push_back(filter);
  struct State {
    size_t remaining;
    std::vector<std::string> removed;
    std::string error;
  };
  auto state = std::make_shared<State>(State{topics.size(), {}, {}});
  for (const std::string& t : topics) {
    hooks_->DeleteRetained(
        t, [state, respond](const std::string& error, std::vector<std::string> removed) {
          if (!error.empty()) state->error = error;
          for (std::string& r : removed) state->removed.push_back(std::move(r));
          if (--state->remaining != 0) return;
          if (!state->error.empty()) return respond(JsonError(503, state->error));
          std::sort(state->removed.begin(), state->removed.end());
          std::vector<std::string> items;
          items.reserve(state->removed.size());
          for (const std::string& r : state->removed) {
            items.push_back("{\"topic\":" + base::JsonString(r) + "}");
          }
          respond(JsonResult(200, items));
        });
  }
}

void Api::HandleMetrics(const Respond& respond) {
  std::string own =
      "# HELP ringmq_tokens Tokens in the token store\n# TYPE ringmq_tokens gauge\nringmq_tokens " +
      std::to_string(store_->size()) + "\n";
  if (extra_metrics_) own += extra_metrics_();
  if (cluster_.metrics) own += cluster_.metrics();
  const auto finish = [respond, own](const std::string& error, std::string text) {
    if (!error.empty()) return respond(JsonError(503, error));
    HttpResponse r;
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    r.body = std::move(text);
    if (!r.body.empty() && r.body.back() != '\n') r.body.push_back('\n');
    r.body += own;
    respond(std::move(r));
  };
  if (hooks_ == nullptr) return finish("", "");
  hooks_->Metrics(finish);
}

}  // namespace ringmq::rest
