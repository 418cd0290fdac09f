// Query parameters of the REST API: the names an endpoint accepts (anything else is 400), and
// `limit` / `offset` paging of list answers (doc/rest-api.md, "Pagination").
//
// A list answer is sorted by its stable key (token id, client id, topic) before paging; `count`
// is the number of matches before paging. Without `limit` and `offset` the answer has every
// match and no `pagination` object (as before paging existed).
//
// Thread-safety: pure functions.
#ifndef RINGMQ_REST_PAGINATION_H_
#define RINGMQ_REST_PAGINATION_H_

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "rest/http.h"

namespace ringmq::rest {

inline constexpr size_t kMaxPageLimit = 1000;
inline constexpr size_t kMaxPageOffset = 1'000'000'000;

struct Page {
  bool requested = false;  // limit or offset was given
  size_t limit = kMaxPageLimit;
  size_t offset = 0;
};

// Fails with *error when the query has a parameter not in `allowed`, one twice, or a malformed
// percent-encoding.
[[nodiscard]] bool CheckQueryNames(std::string_view query,
                                   const std::vector<std::string_view>& allowed,
                                   std::string* error);

// limit (1..kMaxPageLimit) and offset (0..kMaxPageOffset), decimal. Fails with *error naming the
// parameter and its range.
[[nodiscard]] bool ParsePage(std::string_view query, Page* page, std::string* error);

// {"result":[items[offset, offset+limit)]} plus "pagination":{"limit","offset","count"} when
// page.requested, and "errors" when `errors` is not empty. `items` are JSON texts, all matches in
// their stable order.
HttpResponse PagedResult(std::vector<std::string> items, const Page& page,
                         const std::vector<ApiError>& errors = {});

}  // namespace ringmq::rest

#endif  // RINGMQ_REST_PAGINATION_H_
