#include "rest/http.h"

#include "base/json.h"

namespace ringmq::rest {

const char* StatusText(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 413:
      return "Payload Too Large";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    default:
      return "Unknown";
  }
}

HttpResponse JsonResult(int status, const std::vector<std::string>& items) {
  HttpResponse r;
  r.status = status;
  size_t size = 16;
  for (const std::string& i : items) size += i.size() + 1;
  r.body.reserve(size);
  r.body = "{\"result\":[";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) r.body.push_back(',');
    r.body.append(items[i]);
  }
  r.body.append("]}");
  return r;
}

namespace {

void AppendErrors(std::string* out, const std::vector<ApiError>& errors) {
  out->append("\"errors\":[");
  for (size_t i = 0; i < errors.size(); ++i) {
    if (i > 0) out->push_back(',');
    out->append("{\"code\":" + std::to_string(errors[i].code) + ",\"reason\":");
    base::AppendJsonString(out, errors[i].reason);
    out->push_back('}');
  }
  out->push_back(']');
}

}  // namespace

HttpResponse JsonResult(int status, const std::vector<std::string>& items,
                        const std::vector<ApiError>& errors) {
  HttpResponse r = JsonResult(status, items);
  if (errors.empty()) return r;
  r.body.pop_back();  // the closing '}'
  r.body.push_back(',');
  AppendErrors(&r.body, errors);
  r.body.push_back('}');
  return r;
}

HttpResponse JsonErrors(int status, const std::vector<ApiError>& errors) {
  HttpResponse r;
  r.status = status;
  r.body = "{";
  AppendErrors(&r.body, errors);
  r.body.push_back('}');
  return r;
}

HttpResponse JsonError(int status, std::string_view reason) {
  return JsonErrors(status, {ApiError{status, std::string(reason)}});
}

std::string SerializeResponse(const HttpResponse& response, bool close) {
  std::string out;
  out.reserve(response.body.size() + 160);
  out.append("HTTP/1.1 ");
  out.append(std::to_string(response.status));
  out.push_back(' ');
  out.append(StatusText(response.status));
  out.append("\r\nContent-Type: ");
  out.append(response.content_type);
  out.append("\r\nContent-Length: ");
  out.append(std::to_string(response.body.size()));
  if (close) out.append("\r\nConnection: close");
  out.append("\r\n\r\n");
  out.append(response.body);
  return out;
}

bool PercentDecode(std::string_view in, std::string* out) {
  out->clear();
  out->reserve(in.size());
  const auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out->push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size()) return false;
    const int hi = hex(in[i + 1]);
    const int lo = hex(in[i + 2]);
    if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) return false;
    out->push_back(static_cast<char>(hi << 4 | lo));
    i += 2;
  }
  return true;
}

bool QueryParam(std::string_view query, std::string_view name, std::string* value) {
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    const size_t eq = pair.find('=');
    if (pair.substr(0, eq) == name) {
      const std::string_view raw =
          eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
      if (!PercentDecode(raw, value)) value->assign(raw);  // the caller's validation refuses it
      return true;
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return false;
}

}  // namespace ringmq::rest
