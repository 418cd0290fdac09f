// Plain HTTP request/response values exchanged between the HTTP server (rest/http_server.h) and
// the API handlers (rest/api.h), plus the helpers that build ringmq's JSON envelopes:
// success {"result": [...]}, failure {"errors": [{"code": N, "reason": "..."}]}.
//
// Thread-safety: value types and pure functions.
#ifndef RINGMQ_REST_HTTP_H_
#define RINGMQ_REST_HTTP_H_

#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace ringmq::rest {

struct HttpRequest {
  std::string method;         // "GET", "POST", ...
  std::string path;           // raw (still percent-encoded), without the query
  std::string query;          // raw, after '?', may be empty
  std::string authorization;  // the Authorization header, empty when absent
  std::string peer;           // the client's IP address, empty when unknown (origins refuse it)
  std::string body;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
};

// Answers a request exactly once. May be called later (asynchronous handlers) but only on the
// admin thread.
using Respond = std::function<void(HttpResponse)>;

// The standard reason phrase ("Not Found"), "Unknown" for others.
const char* StatusText(int status);

// {"result":[items joined by ',']}.
HttpResponse JsonResult(int status, const std::vector<std::string>& items);

// One entry of an "errors" array.
struct ApiError {
  int code = 0;  // the HTTP status this error alone would answer
  std::string reason;
};
// {"result":[items],"errors":[{"code":N,"reason":"..."},...]}: a partial result (flespi: a
// multi-id selector some of whose ids do not exist). Without errors, the same as JsonResult.
HttpResponse JsonResult(int status, const std::vector<std::string>& items,
                        const std::vector<ApiError>& errors);
// {"errors":[{"code":status,"reason":reason}]}.
HttpResponse JsonError(int status, std::string_view reason);
// {"errors":[...]} with several errors. REQUIRES: errors is not empty.
HttpResponse JsonErrors(int status, const std::vector<ApiError>& errors);

// Serializes the status line, Content-Type, Content-Length, optional Connection: close, and body.
std::string SerializeResponse(const HttpResponse& response, bool close);

// Decodes %XX escapes ('+' stays '+'). False on a malformed escape or a decoded NUL byte.
bool PercentDecode(std::string_view in, std::string* out);

// The value of `name` in a query string "a=1&b=2" (percent-decoded), or false when absent.
bool QueryParam(std::string_view query, std::string_view name, std::string* value);

}  // namespace ringmq::rest

#endif  // RINGMQ_REST_HTTP_H_
