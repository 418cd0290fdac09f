#include "rest/internal/request_parser.h"

#include <strings.h>

#include <climits>
#include <utility>

namespace ringmq::rest {

namespace {

bool EqualsNoCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace

// http-parser's C callbacks, routed to the RequestParser in parser.data. A callback that returns
// non-zero stops http_parser_execute; Feed then looks at stopped_ / refused_ to tell why.
struct RequestParserCallbacks {
  static RequestParser& P(http_parser* p) { return *static_cast<RequestParser*>(p->data); }

  static bool AddHeaderBytes(RequestParser& r, size_t n) {
    r.header_bytes_ += n;
    if (r.header_bytes_ > r.limits_.max_header_bytes) {
      r.Refuse(JsonError(431, "request headers larger than " +
                                  std::to_string(r.limits_.max_header_bytes) + " bytes"));
      return false;
    }
    return true;
  }
  static int OnMessageBegin(http_parser* p) {
    RequestParser& r = P(p);
    r.request_ = HttpRequest{};
    r.url_.clear();
    r.field_.clear();
    r.value_.clear();
    r.in_value_ = false;
    r.expect_continue_ = false;
    r.have_authorization_ = false;
    r.method_known_ = false;
    r.header_bytes_ = 0;
    r.SetPhase(RequestParser::Phase::kHead);
    return 0;
  }
  static int OnUrl(http_parser* p, const char* at, size_t n) {
    RequestParser& r = P(p);
    r.method_known_ = true;  // http-parser reports the URL only after the method
    if (!AddHeaderBytes(r, n)) return -1;
    r.url_.append(at, n);
    return 0;
  }
  static int OnHeaderField(http_parser* p, const char* at, size_t n) {
    RequestParser& r = P(p);
    if (!AddHeaderBytes(r, n) || !r.EndHeader()) return -1;
    r.field_.append(at, n);
    return 0;
  }
  static int OnHeaderValue(http_parser* p, const char* at, size_t n) {
    RequestParser& r = P(p);
    if (!AddHeaderBytes(r, n)) return -1;
    r.in_value_ = true;
    r.value_.append(at, n);
    return 0;
  }
  static int OnHeadersComplete(http_parser* p) {
    RequestParser& r = P(p);
    if (!r.EndHeader()) return -1;
    // http-parser sets `upgrade` before this callback (CONNECT, or Upgrade + Connection: upgrade).
    if (p->upgrade) {
      r.Refuse(JsonError(400, "protocol upgrade not supported"));
      return -1;
    }
    if (p->content_length != ULLONG_MAX && p->content_length > r.limits_.max_body_bytes) {
      r.Refuse(JsonError(
          413, "request body larger than " + std::to_string(r.limits_.max_body_bytes) + " bytes"));
      return -1;
    }
    r.request_.method = http_method_str(static_cast<http_method>(p->method));
    const size_t q = r.url_.find('?');
    r.request_.path = r.url_.substr(0, q);
    r.request_.query = q == std::string::npos ? std::string() : r.url_.substr(q + 1);
    if (r.expect_continue_ && r.handler_.expect_continue) {
      if (std::optional<HttpResponse> refused = r.handler_.expect_continue(r.request_)) {
        r.Refuse(std::move(*refused));
        return -1;
      }
    }
    r.SetPhase(RequestParser::Phase::kBody);
    return 0;
  }
  static int OnBody(http_parser* p, const char* at, size_t n) {
    RequestParser& r = P(p);
    if (r.request_.body.size() + n > r.limits_.max_body_bytes) {
      r.Refuse(JsonError(
          413, "request body larger than " + std::to_string(r.limits_.max_body_bytes) + " bytes"));
      return -1;
    }
    r.request_.body.append(at, n);
    return 0;
  }
  static int OnMessageComplete(http_parser* p) {
    RequestParser& r = P(p);
    r.SetPhase(RequestParser::Phase::kIdle);
    const bool keep_alive = http_should_keep_alive(p) != 0;
    HttpRequest req = std::move(r.request_);
    r.request_ = HttpRequest{};
    const bool go_on = r.handler_.request ? r.handler_.request(std::move(req), keep_alive) : true;
    // After Connection: close (or HTTP/1.0 without keep-alive) nothing more is read.
    if (!go_on || !keep_alive) {
      r.stopped_ = true;
      return -1;
    }
    return 0;
  }

  static const http_parser_settings& Settings() {
    static const http_parser_settings kSettings = [] {
      http_parser_settings s{};
      s.on_message_begin = OnMessageBegin;
      s.on_url = OnUrl;
      s.on_header_field = OnHeaderField;
      s.on_header_value = OnHeaderValue;
      s.on_headers_complete = OnHeadersComplete;
      s.on_body = OnBody;
      s.on_message_complete = OnMessageComplete;
      return s;
    }();
    return kSettings;
  }
};

RequestParser::RequestParser(Limits limits, Handler handler)
    : limits_(limits), handler_(std::move(handler)) {
  http_parser_init(&parser_, HTTP_REQUEST);
  parser_.data = this;
}

RequestParser::Result RequestParser::Feed(const char* data, size_t len) {
  if (refused_) return Result::kRefused;
  if (stopped_) return Result::kStopped;
  const size_t parsed =
      http_parser_execute(&parser_, &RequestParserCallbacks::Settings(), data, len);
  if (refused_) return Result::kRefused;
  if (stopped_) return Result::kStopped;
  const auto err = static_cast<http_errno>(parser_.http_errno);
  if (err != HPE_OK) {
    Refuse(JsonError(400, std::string("malformed HTTP request: ") + http_errno_description(err)));
    return Result::kRefused;
  }
  if (parser_.upgrade || parsed != len) {  // not reached: upgrades are refused with their head
    Refuse(JsonError(400, "protocol upgrade not supported"));
    return Result::kRefused;
  }
  return Result::kOk;
}

const char* RequestParser::method() const {
  return method_known_ ? http_method_str(static_cast<http_method>(parser_.method)) : "OTHER";
}

std::string_view RequestParser::path() const {
  const std::string_view url = url_;
  return url.substr(0, url.find('?'));
}

void RequestParser::Refuse(HttpResponse response) {
  if (refused_) return;
  refused_ = true;
  refusal_ = std::move(response);
}

bool RequestParser::EndHeader() {
  if (!in_value_) return true;
  if (EqualsNoCase(field_, "authorization")) {
    // Two credentials are ambiguous (a proxy may have added one): refuse rather than pick one.
    if (have_authorization_) {
      Refuse(JsonError(400, "duplicate Authorization header"));
      return false;
    }
    have_authorization_ = true;
    request_.authorization = value_;
  }
  if (EqualsNoCase(field_, "expect") && EqualsNoCase(value_, "100-continue")) {
    expect_continue_ = true;
  }
  field_.clear();
  value_.clear();
  in_value_ = false;
  return true;
}

void RequestParser::SetPhase(Phase p) {
  if (phase_ == p) return;
  phase_ = p;
  ++phase_changes_;
}

}  // namespace ringmq::rest
