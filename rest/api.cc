#include "rest/api.h"

#include <strings.h>

#include <algorithm>
#include <charconv>
#include <set>

#include "acl/json.h"
#include "acl/token_json.h"

namespace ringmq::rest {

namespace {

constexpr std::string_view kIndexHtml =
    "<!doctype html><html><head><title>ringmq</title></head><body><h1>ringmq</h1>"
    "<p>MQTT broker admin API: see doc/rest-api.md.</p></body></html>\n";

// "/a/b/c" -> {"a", "b", "c"}; a trailing '/' is ignored.
std::vector<std::string_view> Split(std::string_view path) {
  std::vector<std::string_view> out;
  if (!path.empty() && path.front() == '/') path.remove_prefix(1);
  if (!path.empty() && path.back() == '/') path.remove_suffix(1);
  while (!path.empty()) {
    const size_t slash = path.find('/');
    out.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return out;
}

// The key of "FlespiToken <key>" or "Bearer <key>" (scheme case-insensitive), or empty.
std::string_view BearerKey(std::string_view header) {
  for (std::string_view scheme : {std::string_view("FlespiToken"), std::string_view("Bearer")}) {
    if (header.size() > scheme.size() && header[scheme.size()] == ' ' &&
        strncasecmp(header.data(), scheme.data(), scheme.size()) == 0) {
      std::string_view key = header.substr(scheme.size());
      while (!key.empty() && key.front() == ' ') key.remove_prefix(1);
      while (!key.empty() && key.back() == ' ') key.remove_suffix(1);
      return key;
    }
  }
  return {};
}

}  // namespace

Api::Api(TokenStore* store, BrokerHooks* hooks, Clock clock, Limits limits)
    : store_(store), hooks_(hooks), clock_(std::move(clock)), limits_(limits) {}

void Api::Handle(HttpRequest req, Respond respond) {
  const std::string& m = req.method;
  if (req.path == "/" || req.path == "/index.html") {
    if (m != "GET") return respond(JsonError(405, "method not allowed"));
    HttpResponse r;
    r.content_type = "text/html; charset=utf-8";
    r.body = kIndexHtml;
    return respond(std::move(r));
  }
  if (req.path == "/healthz") {
    if (m != "GET") return respond(JsonError(405, "method not allowed"));
    return respond(JsonResult(200, {R"({"status":"ok"})"}));
  }
  // /mqtt/messages/{filter}: the filter keeps its slashes, so it is cut, not split.
  constexpr std::string_view kMessages = "/mqtt/messages";
  const std::vector<std::string_view> seg = Split(req.path);
  const bool known =
      (seg.size() >= 2 && seg[0] == "platform" && seg[1] == "tokens" && seg.size() <= 3) ||
      (seg.size() >= 3 && seg[0] == "mqtt" && seg[1] == "sessions") ||
      (seg.size() >= 2 && seg[0] == "mqtt" && seg[1] == "messages") ||
      (seg.size() == 1 && seg[0] == "metrics");
  if (!known) return respond(JsonError(404, "no such endpoint"));
  if (!Authorize(req, respond)) return;

  if (seg[0] == "platform") {
    if (seg.size() == 2) {
      if (m == "POST") return CreateTokens(req, respond);
      return respond(JsonError(405,
                               "method not allowed (POST /platform/tokens, or "
                               "GET/PUT/PATCH/DELETE /platform/tokens/{selector})"));
    }
    if (m == "GET") return GetTokens(req, seg[2], respond);
    if (m == "PUT") return UpdateTokens(req, seg[2], false, respond);
    if (m == "PATCH") return UpdateTokens(req, seg[2], true, respond);
    if (m == "DELETE") return DeleteTokens(req, seg[2], respond);
    return respond(JsonError(405, "method not allowed"));
  }
  if (seg[0] == "metrics") {
    if (m != "GET") return respond(JsonError(405, "method not allowed"));
    return HandleMetrics(respond);
  }
  if (seg[1] == "sessions") return HandleSessions(req, seg, respond);
  std::string_view rest = std::string_view(req.path).substr(kMessages.size());
  if (!rest.empty() && rest.front() == '/') rest.remove_prefix(1);
  return HandleMessages(req, rest, respond);
}

bool Api::Authorize(const HttpRequest& req, const Respond& respond) {
  if (req.authorization.empty()) {
    respond(JsonError(401, "missing Authorization header (FlespiToken <key> or Bearer <key>)"));
    return false;
  }
  const std::string_view key = BearerKey(req.authorization);
  if (key.empty()) {
    respond(JsonError(401, "malformed Authorization header (FlespiToken <key> or Bearer <key>)"));
    return false;
  }
  const acl::Token* token = store_->FindByKey(key);
  if (token == nullptr) {
    respond(JsonError(401, "unknown token"));
    return false;
  }
  const int64_t now = clock_();
  const acl::TokenState state = acl::CheckToken(*token, now);
  if (state != acl::TokenState::kValid) {
    respond(JsonError(401, std::string("token ") + acl::TokenStateName(state)));
    return false;
  }
  if (token->access.type != acl::AccessType::kMaster) {
    respond(JsonError(403, "a master token (access.type 1) is required"));
    return false;
  }
  store_->Touch(token->id, now);
  return true;
}

bool Api::SelectTokens(std::string_view sel, std::vector<const acl::Token*>* tokens,
                       const Respond& respond) {
  tokens->clear();
  if (sel == "all") {
    *tokens = store_->All();
    return true;
  }
  std::set<int64_t> seen;
  size_t count = 0;
  while (true) {
    const size_t comma = sel.find(',');
    const std::string_view item = sel.substr(0, comma);
    int64_t id = 0;
    const auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), id);
    if (item.empty() || ec != std::errc() || end != item.data() + item.size() || id <= 0) {
      respond(JsonError(400, "bad selector \"" + std::string(item) +
                                 "\": expected all, an id or a comma list of ids"));
      return false;
    }
    if (++count > limits_.max_items) {
      respond(
          JsonError(400, "selector lists more than " + std::to_string(limits_.max_items) + " ids"));
      return false;
    }
    if (seen.insert(id).second) {
      if (const acl::Token* t = store_->FindById(id)) tokens->push_back(t);
    }
    if (comma == std::string_view::npos) break;
    sel.remove_prefix(comma + 1);
  }
  if (tokens->empty()) {
    respond(JsonError(404, "no token matches the selector"));
    return false;
  }
  return true;
}

namespace {

bool Fields(const HttpRequest& req, acl::FieldMask* mask, const Respond& respond) {
  std::string fields;
  if (!QueryParam(req.query, "fields", &fields)) fields.clear();
  std::string error;
  if (!acl::ParseFieldSelection(fields, mask, &error)) {
    respond(JsonError(400, error));
    return false;
  }
  return true;
}

HttpResponse TokenList(const std::vector<const acl::Token*>& tokens, acl::FieldMask mask) {
  std::vector<std::string> items;
  items.reserve(tokens.size());
  for (const acl::Token* t : tokens) items.push_back(acl::TokenToJson(*t, mask));
  return JsonResult(200, items);
}

}  // namespace

void Api::CreateTokens(const HttpRequest& req, const Respond& respond) {
  acl::FieldMask mask = 0;
  if (!Fields(req, &mask, respond)) return;
  std::vector<acl::TokenUpdate> updates;
  std::string error;
  if (!acl::ParseTokenUpdates(req.body, true, limits_.max_items, &updates, &error)) {
    return respond(JsonError(400, error));
  }
  const int64_t now = clock_();
  std::vector<acl::Token> tokens;
  tokens.reserve(updates.size());
  for (size_t i = 0; i < updates.size(); ++i) {
    const std::string where = updates.size() > 1 ? "[" + std::to_string(i) + "]" : "";
    acl::Token t;
    t.created = t.accessed = now;
    if (!acl::GenerateTokenKey(&t.key)) return respond(JsonError(500, "random source failed"));
    if (!acl::ApplyTokenUpdate(updates[i], acl::UpdateMode::kCreate, &t, &error)) {
      return respond(JsonError(400, where.empty() ? error : where + "." + error));
    }
    if (t.expire != 0 && t.expire <= now) {
      return respond(JsonError(400, (where.empty() ? "" : where + ".") + "expire: in the past"));
    }
    tokens.push_back(std::move(t));
  }
  if (!store_->Insert(&tokens, &error)) return respond(JsonError(500, "token store: " + error));
  std::vector<const acl::Token*> out;
  for (const acl::Token& t : tokens) out.push_back(&t);
  respond(TokenList(out, mask));
}

void Api::GetTokens(const HttpRequest& req, std::string_view sel, const Respond& respond) {
  acl::FieldMask mask = 0;
  if (!Fields(req, &mask, respond)) return;
  std::vector<const acl::Token*> tokens;
  if (!SelectTokens(sel, &tokens, respond)) return;
  respond(TokenList(tokens, mask));
}

void Api::UpdateTokens(const HttpRequest& req, std::string_view sel, bool patch,
                       const Respond& respond) {
  acl::FieldMask mask = 0;
  if (!Fields(req, &mask, respond)) return;
  std::vector<const acl::Token*> selected;
  if (!SelectTokens(sel, &selected, respond)) return;
  std::vector<acl::TokenUpdate> updates;
  std::string error;
  if (!acl::ParseTokenUpdates(req.body, false, 1, &updates, &error)) {
    return respond(JsonError(400, error));
  }
  const int64_t now = clock_();
  std::vector<acl::Token> changed;
  changed.reserve(selected.size());
  for (const acl::Token* old : selected) {
    acl::Token t = *old;
    if (!acl::ApplyTokenUpdate(
            updates[0], patch ? acl::UpdateMode::kPatch : acl::UpdateMode::kReplace, &t, &error)) {
      return respond(JsonError(400, error));
    }
    if (t.expire != 0 && t.expire <= now && t.expire != old->expire) {
      return respond(JsonError(400, "expire: in the past"));
    }
    changed.push_back(std::move(t));
  }
  std::vector<acl::Token> before;
  for (const acl::Token* old : selected) before.push_back(*old);
  if (!store_->Update(changed, &error)) return respond(JsonError(500, "token store: " + error));
  for (size_t i = 0; i < changed.size(); ++i) Notify(before[i], changed[i]);
  std::vector<const acl::Token*> out;
  for (const acl::Token& t : changed) out.push_back(store_->FindById(t.id));
  respond(TokenList(out, mask));
}

void Api::Notify(const acl::Token& before, const acl::Token& after) {
  if (hooks_ == nullptr) return;
  if (!after.enabled) {
    if (before.enabled) hooks_->TokenRevoked(after, RevokeReason::kDisabled);
    return;
  }
  if (before.access == after.access && before.enabled == after.enabled &&
      before.expire == after.expire) {
    return;  // info, metadata or ttl: nothing the shards hold
  }
  hooks_->TokenChanged(after, acl::CompiledAcl::Compile(after, NextVersion()));
}

void Api::DeleteTokens(const HttpRequest& req, std::string_view sel, const Respond& respond) {
  (void)req;
  std::vector<const acl::Token*> selected;
  if (!SelectTokens(sel, &selected, respond)) return;
  std::vector<int64_t> ids;
  std::vector<acl::Token> gone;
  for (const acl::Token* t : selected) {
    ids.push_back(t->id);
    gone.push_back(*t);
  }
  std::string error;
  if (!store_->Erase(ids, &error)) return respond(JsonError(500, "token store: " + error));
  std::vector<std::string> items;
  for (const acl::Token& t : gone) {
    if (hooks_ != nullptr) hooks_->TokenRevoked(t, RevokeReason::kDeleted);
    items.push_back("{\"id\":" + std::to_string(t.id) + "}");
  }
  respond(JsonResult(200, items));
}

Api::AuthResult Api::Authenticate(std::string_view key) {
  AuthResult r;
  const acl::Token* token = store_->FindByKey(key);
  if (token == nullptr) return r;
  r.token_id = token->id;
  const int64_t now = clock_();
  switch (acl::CheckToken(*token, now)) {
    case acl::TokenState::kExpired:
      r.status = AuthStatus::kExpired;
      return r;
    case acl::TokenState::kDisabled:
      r.status = AuthStatus::kDisabled;
      return r;
    case acl::TokenState::kValid:
      break;
  }
  store_->Touch(token->id, now);
  r.status = AuthStatus::kOk;
  r.acl = acl::CompiledAcl::Compile(*token, NextVersion());
  return r;
}

void Api::Touch(const std::vector<std::string>& keys) {
  const int64_t now = clock_();
  for (const std::string& k : keys) {
    const acl::Token* t = store_->FindByKey(k);
    if (t != nullptr && acl::CheckToken(*t, now) == acl::TokenState::kValid) {
      store_->Touch(t->id, now);
    }
  }
}

void Api::Sweep() {
  const int64_t now = clock_();
  std::vector<int64_t> ids;
  std::vector<acl::Token> gone;
  for (const acl::Token* t : store_->All()) {
    if (acl::CheckToken(*t, now) == acl::TokenState::kExpired) {
      ids.push_back(t->id);
      gone.push_back(*t);
    }
  }
  std::string error;
  if (!ids.empty()) {
    if (!store_->Erase(ids, &error)) return;  // retried at the next sweep
    for (const acl::Token& t : gone) {
      if (hooks_ != nullptr) hooks_->TokenRevoked(t, RevokeReason::kExpired);
    }
    last_flush_ = now;
    return;
  }
  constexpr int64_t kFlushIntervalSeconds = 10;
  if (store_->dirty() && now - last_flush_ >= kFlushIntervalSeconds) {
    if (store_->Flush(&error)) last_flush_ = now;
  }
}

}  // namespace ringmq::rest
