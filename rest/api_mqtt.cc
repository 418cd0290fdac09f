// The endpoints answered by the shards through BrokerHooks: /mqtt/sessions, /mqtt/messages,
// /metrics. Each validates the request completely, then calls one hook; the hook's callback
// builds the answer.
#include <openssl/evp.h>
#include <simdjson.h>

#include <set>

#include "acl/json.h"
#include "proto/topic.h"
#include "proto/utf8.h"
#include "rest/api.h"
#include "rest/internal/json_body.h"
#include "rest/internal/publish_body.h"
#include "rest/internal/session_body.h"
#include "rest/internal/session_json.h"

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
  const bool text = proto::IsValidMqttUtf8(bytes) || bytes.empty();
  out->append(",\"").append(name).append("\":");
  acl::AppendJsonString(out, text ? std::string(bytes) : Base64Encode(bytes));
  out->append(",\"").append(encoding_name).append("\":");
  out->append(text ? "\"text\"" : "\"base64\"");
}

std::string MessageJson(const MqttMessage& m) {
  std::string out = "{\"topic\":";
  acl::AppendJsonString(&out, m.topic);
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
  if (m.message_expiry_interval) {
    field("message_expiry_interval");
    out.append(std::to_string(*m.message_expiry_interval));
  }
  if (!m.content_type.empty()) field("content_type"), acl::AppendJsonString(&out, m.content_type);
  if (!m.response_topic.empty()) {
    field("response_topic");
    acl::AppendJsonString(&out, m.response_topic);
  }
  if (!m.correlation_data.empty()) {
    field("correlation_data");
    acl::AppendJsonString(&out, Base64Encode(m.correlation_data));
  }
  if (!m.user_properties.empty()) {
    field("user_properties");
    out.push_back('[');
    for (size_t i = 0; i < m.user_properties.size(); ++i) {
      if (i > 0) out.push_back(',');
      out.append("{\"name\":");
      acl::AppendJsonString(&out, m.user_properties[i].first);
      out.append(",\"value\":");
      acl::AppendJsonString(&out, m.user_properties[i].second);
      out.push_back('}');
    }
    out.push_back(']');
  }
  out.append("}}");
  return out;
}

}  // namespace

std::string SessionJson(const SessionInfo& s) {
  std::string out = "{\"client_id\":";
  acl::AppendJsonString(&out, s.client_id);
  out.append(",\"connected\":").append(s.connected ? "true" : "false");
  out.append(",\"protocol_version\":").append(std::to_string(s.protocol_version));
  out.append(",\"clean\":").append(s.clean ? "true" : "false");
  out.append(",\"expiry_interval\":").append(std::to_string(s.expiry_interval));
  out.append(",\"keep_alive\":").append(std::to_string(s.keep_alive));
  out.append(",\"token_id\":").append(std::to_string(s.token_id));
  out.append(",\"peer\":");
  acl::AppendJsonString(&out, s.peer);
  out.append(",\"shard\":").append(std::to_string(s.shard));
  out.append(",\"connected_since\":").append(std::to_string(s.connected_since));
  out.append(",\"subscriptions\":").append(std::to_string(s.subscriptions));
  out.append(",\"queued\":").append(std::to_string(s.queued));
  out.append(",\"inflight\":").append(std::to_string(s.inflight));
  out.push_back('}');
  return out;
}

std::string SubscriptionJson(const SubscriptionInfo& s) {
  std::string out = "{\"client_id\":";
  acl::AppendJsonString(&out, s.client_id);
  out.append(",\"topic\":");
  acl::AppendJsonString(&out, s.filter);
  out.append(",\"qos\":").append(std::to_string(s.qos));
  out.append(",\"no_local\":").append(s.no_local ? "true" : "false");
  out.append(",\"retain_as_published\":").append(s.retain_as_published ? "true" : "false");
  out.append(",\"retain_handling\":").append(std::to_string(s.retain_handling));
  out.append(",\"subscription_id\":").append(std::to_string(s.subscription_id));
  out.append(",\"effective\":[");
  for (size_t i = 0; i < s.effective.size(); ++i) {
    if (i > 0) out.push_back(',');
    acl::AppendJsonString(&out, s.effective[i]);
  }
  out.append("]}");
  return out;
}

namespace {

// "all" or a comma list of percent-encoded client ids.
bool ParseSessionSelector(std::string_view sel, size_t max_items, Selector* out,
                          std::string* error) {
  return ParseNameList(
      sel, max_items, "client ids",
      "selector: expected all or a comma list of (percent-encoded) client ids",
      [](const std::string& id) { return !id.empty() && proto::IsValidMqttUtf8(id); }, out, error);
}

// One message object of a POST /mqtt/messages body.
bool ParseMessage(element e, const std::string& path, MqttMessage* m, std::string* error) {
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
          m->message_expiry_interval = static_cast<uint32_t>(n);
        } else if (p.key == "content_type") {
          if (!get_string(p.value, pk, &m->content_type)) return false;
        } else if (p.key == "response_topic") {
          if (!get_string(p.value, pk, &m->response_topic)) return false;
          if (proto::ValidateTopicName(m->response_topic) != proto::ReasonCode::kSuccess) {
            return fail(pk, "invalid topic name");
          }
        } else if (p.key == "correlation_data") {
          std::string b64;
          if (!get_string(p.value, pk, &b64)) return false;
          if (!Base64Decode(b64, &m->correlation_data)) return fail(pk, "must be base64");
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
  if (m->payload_format_indicator == 1 && !proto::IsValidMqttUtf8(m->payload)) {
    return fail("payload", "not UTF-8 although payload_format_indicator is 1");
  }
  return true;
}

}  // namespace

bool ParsePublishBody(std::string_view body, size_t max_items, std::vector<MqttMessage>* messages,
                      std::string* error) {
  messages->clear();
  return ForEachBodyItem(body, max_items, "messages", error,
                         [&](element e, const std::string& path) {
                           MqttMessage m;
                           if (!ParseMessage(e, path, &m, error)) return false;
                           messages->push_back(std::move(m));
                           return true;
                         });
}

namespace {

// Wraps a hook answer: a non-empty error becomes 503.
template <typename T, typename Fn>
BrokerHooks::Done<T> Answer(Respond respond, Fn make_items) {
  return [respond = std::move(respond), make_items = std::move(make_items)](
             const std::string& error, T value) {
    if (!error.empty()) return respond(JsonError(503, error));
    respond(JsonResult(200, make_items(value)));
  };
}

}  // namespace

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
  if (!ParseSessionSelector(seg[2], limits_.max_items, &sel, &error)) {
    return respond(JsonError(400, error));
  }
  if (subs && (seg.size() == 5 || req.method != "GET")) {  // api_sessions.cc
    return HandleSubscriptions(req, sel, seg.size() == 5 ? seg[4] : std::string_view(), respond);
  }
  if (hooks_ == nullptr) return respond(JsonError(503, "no broker attached"));
  if (subs) {
    return hooks_->ListSubscriptions(
        sel, Answer<std::vector<SubscriptionInfo>>(respond, [](const auto& v) {
          std::vector<std::string> items;
          items.reserve(v.size());
          for (const SubscriptionInfo& s : v) items.push_back(SubscriptionJson(s));
          return items;
        }));
  }
  if (req.method == "GET") {
    return hooks_->ListSessions(sel, Answer<std::vector<SessionInfo>>(respond, [](const auto& v) {
                                  std::vector<std::string> items;
                                  items.reserve(v.size());
                                  for (const SessionInfo& s : v) items.push_back(SessionJson(s));
                                  return items;
                                }));
  }
  if (req.method == "DELETE") {
    return hooks_->DeleteSessions(
        sel, Answer<std::vector<std::string>>(respond, [](const auto& v) {
          std::vector<std::string> items;
          items.reserve(v.size());
          for (const std::string& id : v)
            items.push_back("{\"client_id\":" + acl::JsonString(id) + "}");
          return items;
        }));
  }
  respond(JsonError(405, "method not allowed"));
}

void Api::HandleMessages(const HttpRequest& req, std::string_view rest, const Respond& respond) {
  if (rest.empty()) {
    if (req.method != "POST") {
      return respond(JsonError(405,
                               "method not allowed (POST /mqtt/messages, or "
                               "GET/DELETE /mqtt/messages/{topic filter})"));
    }
    std::vector<MqttMessage> messages;
    std::string error;
    if (!ParsePublishBody(req.body, limits_.max_items, &messages, &error)) {
      return respond(JsonError(400, error));
    }
    if (hooks_ == nullptr) return respond(JsonError(503, "no broker attached"));
    std::vector<std::string> items;
    items.reserve(messages.size());
    for (const MqttMessage& m : messages)
      items.push_back("{\"topic\":" + acl::JsonString(m.topic) + "}");
    return hooks_->Publish(std::move(messages),
                           [respond, items = std::move(items)](const std::string& error, bool) {
                             if (!error.empty()) return respond(JsonError(503, error));
                             respond(JsonResult(200, items));
                           });
  }
  std::string filter;
  if (!PercentDecode(rest, &filter) ||
      proto::ValidateTopicFilter(filter) != proto::ReasonCode::kSuccess ||
      proto::ParseSharedFilter(filter).has_value()) {
    return respond(JsonError(400, "invalid topic filter (percent-encode '#' as %23)"));
  }
  if (hooks_ == nullptr) return respond(JsonError(503, "no broker attached"));
  if (req.method == "GET") {
    return hooks_->ListRetained(filter,
                                Answer<std::vector<MqttMessage>>(respond, [](const auto& v) {
                                  std::vector<std::string> items;
                                  items.reserve(v.size());
                                  for (const MqttMessage& m : v) items.push_back(MessageJson(m));
                                  return items;
                                }));
  }
  if (req.method == "DELETE") {
    return hooks_->DeleteRetained(filter,
                                  Answer<std::vector<std::string>>(respond, [](const auto& v) {
                                    std::vector<std::string> items;
                                    items.reserve(v.size());
                                    for (const std::string& t : v)
                                      items.push_back("{\"topic\":" + acl::JsonString(t) + "}");
                                    return items;
                                  }));
  }
  respond(JsonError(405, "method not allowed"));
}

void Api::HandleMetrics(const Respond& respond) {
  std::string own =
      "# HELP ringmq_tokens Tokens in the token store\n# TYPE ringmq_tokens gauge\nringmq_tokens " +
      std::to_string(store_->size()) + "\n";
  if (extra_metrics_) own += extra_metrics_();
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
