#include "rest/internal/request_parser.h"

#include <utility>

namespace ringmq::rest {

RequestParser::RequestParser(Limits limits, Handler handler)
    : limits_(limits),
      handler_(std::move(handler)),
      parser_(limits.max_header_bytes, Callbacks()) {}

net::HttpParser::Callbacks RequestParser::Callbacks() {
  net::HttpParser::Callbacks c;
  c.begin = [this] {
    request_ = HttpRequest{};
    SetPhase(Phase::kHead);
  };
  c.head = [this](const net::HttpHead& head) { return OnHead(head); };
  c.body = [this](std::string_view piece) {
    if (request_.body.size() + piece.size() > limits_.max_body_bytes) {
      Refuse(JsonError(
          413, "request body larger than " + std::to_string(limits_.max_body_bytes) + " bytes"));
      return false;
    }
    request_.body.append(piece);
    return true;
  };
  c.complete = [this](bool keep_alive) {
    SetPhase(Phase::kIdle);
    HttpRequest req = std::move(request_);
    request_ = HttpRequest{};
    const bool go_on = handler_.request ? handler_.request(std::move(req), keep_alive) : true;
    // After Connection: close (or HTTP/1.0 without keep-alive) nothing more is read.
    return go_on && keep_alive;
  };
  return c;
}

bool RequestParser::OnHead(const net::HttpHead& head) {
  // Two credentials are ambiguous (a proxy may have added one): refuse rather than pick one.
  if (head.Count("authorization") > 1) {
    Refuse(JsonError(400, "duplicate Authorization header"));
    return false;
  }
  if (head.upgrade) {
    Refuse(JsonError(400, "protocol upgrade not supported"));
    return false;
  }
  if (head.has_content_length && head.content_length > limits_.max_body_bytes) {
    Refuse(JsonError(
        413, "request body larger than " + std::to_string(limits_.max_body_bytes) + " bytes"));
    return false;
  }
  request_.method = head.method;
  request_.path = head.path;
  request_.query = head.query;
  request_.authorization = head.Get("authorization");
  if (net::EqualsNoCase(head.Get("expect"), "100-continue") && handler_.expect_continue) {
    if (std::optional<HttpResponse> refused = handler_.expect_continue(request_)) {
      Refuse(std::move(*refused));
      return false;
    }
  }
  SetPhase(Phase::kBody);
  return true;
}

RequestParser::Result RequestParser::Feed(const char* data, size_t len) {
  if (refused_) return Result::kRefused;
  switch (parser_.Feed(data, len)) {
    case net::HttpParser::Result::kOk:
      return Result::kOk;
    case net::HttpParser::Result::kStopped:  // a callback refused, or the request ended the talk
      return refused_ ? Result::kRefused : Result::kStopped;
    case net::HttpParser::Result::kHeadTooLarge:
      Refuse(JsonError(431, "request headers larger than " +
                                std::to_string(limits_.max_header_bytes) + " bytes"));
      return Result::kRefused;
    case net::HttpParser::Result::kMalformed:
      Refuse(JsonError(400, std::string("malformed HTTP request: ") + parser_.error()));
      return Result::kRefused;
    case net::HttpParser::Result::kUpgrade:  // not reached: upgrades are refused with their head
      Refuse(JsonError(400, "protocol upgrade not supported"));
      return Result::kRefused;
  }
  return Result::kRefused;
}

void RequestParser::Refuse(HttpResponse response) {
  if (refused_) return;
  refused_ = true;
  refusal_ = std::move(response);
}

void RequestParser::SetPhase(Phase p) {
  if (phase_ == p) return;
  phase_ = p;
  ++phase_changes_;
}

}  // namespace ringmq::rest
