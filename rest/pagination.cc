#include "rest/pagination.h"

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <set>

namespace ringmq::rest {

bool CheckQueryNames(std::string_view query, const std::vector<std::string_view>& allowed,
                     std::string* error) {
  std::set<std::string> seen;
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    std::string name;
    if (!PercentDecode(pair.substr(0, pair.find('=')), &name)) {
      *error = "query: malformed percent-encoding";
      return false;
    }
    if (!pair.empty()) {
      if (std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
        std::string names;
        for (std::string_view a : allowed) names.append(names.empty() ? "" : ", ").append(a);
        *error = "query: unknown parameter \"" + name + "\" (this endpoint takes " +
                 (names.empty() ? std::string("none") : names) + ")";
        return false;
      }
      if (!seen.insert(name).second) {
        *error = "query: \"" + name + "\" given twice";
        return false;
      }
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return true;
}

namespace {

bool ParseBounded(std::string_view query, const char* name, size_t min, size_t max, size_t* out,
                  bool* given, std::string* error) {
  std::string text;
  if (!QueryParam(query, name, &text)) return true;
  *given = true;
  size_t n = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || n < min || n > max) {
    *error = std::string(name) + ": must be an integer from " + std::to_string(min) + " to " +
             std::to_string(max);
    return false;
  }
  *out = n;
  return true;
}

}  // namespace

bool ParsePage(std::string_view query, Page* page, std::string* error) {
  Page p;
  if (!ParseBounded(query, "limit", 1, kMaxPageLimit, &p.limit, &p.requested, error) ||
      !ParseBounded(query, "offset", 0, kMaxPageOffset, &p.offset, &p.requested, error)) {
    return false;
  }
  *page = p;
  return true;
}

HttpResponse PagedResult(std::vector<std::string> items, const Page& page,
                         const std::vector<ApiError>& errors) {
  const size_t count = items.size();
  if (page.requested) {
    const size_t begin = std::min(page.offset, count);
    const size_t end = std::min(count, begin + page.limit);
    items.erase(items.begin() + static_cast<std::ptrdiff_t>(end), items.end());
    items.erase(items.begin(), items.begin() + static_cast<std::ptrdiff_t>(begin));
  }
  HttpResponse r = JsonResult(200, items, errors);
  if (page.requested) {
    r.body.pop_back();  // the closing '}'
    r.body.append(",\"pagination\":{\"limit\":").append(std::to_string(page.limit));
    r.body.append(",\"offset\":").append(std::to_string(page.offset));
    r.body.append(",\"count\":").append(std::to_string(count)).append("}}");
  }
  return r;
}

}  // namespace ringmq::rest
