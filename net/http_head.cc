#include "net/http_head.h"

#include <http_parser.h>

#include <algorithm>
#include <climits>

namespace ringmq::net {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Path and query of the request target: http-parser's URL parser, which also takes the
// absolute form (RFC 7230 section 5.3.2); a target it does not take is split at '?'.
void SplitTarget(HttpHead* h) {
  http_parser_url u;
  http_parser_url_init(&u);
  h->origin_form = http_parser_parse_url(h->url.data(), h->url.size(), 0, &u) == 0 &&
                   (u.field_set & (1 << UF_PATH)) != 0;
  if (h->origin_form) {
    h->path = h->url.substr(u.field_data[UF_PATH].off, u.field_data[UF_PATH].len);
    if ((u.field_set & (1 << UF_QUERY)) != 0) {
      h->query = h->url.substr(u.field_data[UF_QUERY].off, u.field_data[UF_QUERY].len);
    }
    return;
  }
  const size_t q = h->url.find('?');
  h->path = h->url.substr(0, q);
  h->query = q == std::string::npos ? std::string() : h->url.substr(q + 1);
}

}  // namespace

bool EqualsNoCase(std::string_view a, std::string_view b) {
  const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                            [&](char x, char y) { return lower(x) == lower(y); });
}

std::string HttpHead::Get(std::string_view name) const {
  std::string v;
  for (const auto& [field, value] : headers) {
    if (!EqualsNoCase(field, name)) continue;
    if (!v.empty()) v += ", ";
    v += Trim(value);
  }
  return v;
}

size_t HttpHead::Count(std::string_view name) const {
  return static_cast<size_t>(std::count_if(
      headers.begin(), headers.end(), [&](const auto& h) { return EqualsNoCase(h.first, name); }));
}

// http-parser's C callbacks, routed to the Impl in parser.data. A callback that returns non-zero
// stops http_parser_execute; Feed then looks at `result` to tell why.
struct HttpParser::Impl {
  size_t max_head_bytes;
  Callbacks callbacks;
  http_parser parser{};
  HttpHead head;
  bool value_last = false;    // the last callback was a header value: a field starts a new one
  bool method_known = false;  // the request line's method was parsed (it is in parser.method)
  size_t head_bytes = 0;
  Result result = Result::kOk;  // sticky once not kOk

  static Impl& Of(http_parser* p) { return *static_cast<Impl*>(p->data); }

  bool AddHeadBytes(size_t n) {
    head_bytes += n;
    if (head_bytes <= max_head_bytes) return true;
    result = Result::kHeadTooLarge;
    return false;
  }
  int Stop() {
    result = Result::kStopped;
    return -1;
  }

  static int OnMessageBegin(http_parser* p) {
    Impl& r = Of(p);
    r.head = HttpHead{};
    r.value_last = false;
    r.method_known = false;
    r.head_bytes = 0;
    if (r.callbacks.begin) r.callbacks.begin();
    return 0;
  }
  static int OnUrl(http_parser* p, const char* at, size_t n) {
    Impl& r = Of(p);
    r.method_known = true;  // http-parser reports the URL only after the method
    if (!r.AddHeadBytes(n)) return -1;
    r.head.url.append(at, n);
    return 0;
  }
  static int OnHeaderField(http_parser* p, const char* at, size_t n) {
    Impl& r = Of(p);
    if (!r.AddHeadBytes(n)) return -1;
    if (r.head.headers.empty() || r.value_last) r.head.headers.emplace_back();
    r.value_last = false;
    r.head.headers.back().first.append(at, n);
    return 0;
  }
  static int OnHeaderValue(http_parser* p, const char* at, size_t n) {
    Impl& r = Of(p);
    if (!r.AddHeadBytes(n)) return -1;
    if (r.head.headers.empty()) r.head.headers.emplace_back();  // not reached: a field comes first
    r.value_last = true;
    r.head.headers.back().second.append(at, n);
    return 0;
  }
  static int OnHeadersComplete(http_parser* p) {
    Impl& r = Of(p);
    HttpHead& h = r.head;
    h.method = http_method_str(static_cast<http_method>(p->method));
    h.http_major = p->http_major;
    h.http_minor = p->http_minor;
    // http-parser sets `upgrade` before this callback (CONNECT, or Upgrade + Connection: upgrade).
    h.upgrade = p->upgrade != 0;
    h.has_content_length = p->content_length != ULLONG_MAX;
    h.content_length = h.has_content_length ? p->content_length : 0;
    SplitTarget(&h);
    if (r.callbacks.head && !r.callbacks.head(h)) return r.Stop();
    return 0;
  }
  static int OnBody(http_parser* p, const char* at, size_t n) {
    Impl& r = Of(p);
    if (r.callbacks.body && !r.callbacks.body(std::string_view(at, n))) return r.Stop();
    return 0;
  }
  static int OnMessageComplete(http_parser* p) {
    Impl& r = Of(p);
    const bool keep_alive = http_should_keep_alive(p) != 0;
    if (r.callbacks.complete && !r.callbacks.complete(keep_alive)) return r.Stop();
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

HttpParser::HttpParser(size_t max_head_bytes, Callbacks callbacks)
    : impl_(std::make_unique<Impl>()) {
  impl_->max_head_bytes = max_head_bytes;
  impl_->callbacks = std::move(callbacks);
  http_parser_init(&impl_->parser, HTTP_REQUEST);
  impl_->parser.data = impl_.get();
}

HttpParser::~HttpParser() = default;

HttpParser::Result HttpParser::Feed(const char* data, size_t len) {
  Impl& r = *impl_;
  if (r.result != Result::kOk) return r.result;
  const size_t parsed = http_parser_execute(&r.parser, &Impl::Settings(), data, len);
  if (r.result != Result::kOk) return r.result;
  if (HTTP_PARSER_ERRNO(&r.parser) != HPE_OK) {
    r.result = Result::kMalformed;
  } else if (r.parser.upgrade || parsed != len) {
    r.result = Result::kUpgrade;  // http-parser stops after the head of an upgrade
  }
  return r.result;
}

const char* HttpParser::error() const {
  return http_errno_description(HTTP_PARSER_ERRNO(&impl_->parser));
}

const char* HttpParser::method() const {
  return impl_->method_known ? http_method_str(static_cast<http_method>(impl_->parser.method))
                             : "OTHER";
}

std::string_view HttpParser::path() const {
  const std::string_view url = impl_->head.url;
  return url.substr(0, url.find('?'));
}

}  // namespace ringmq::net
