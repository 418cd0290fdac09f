#include "rest/pagination.h"

#include <gtest/gtest.h>

namespace ringmq::rest {
namespace {

TEST(Pagination, QueryNames) {
  std::string error;
  EXPECT_TRUE(CheckQueryNames("", {}, &error));
  EXPECT_TRUE(CheckQueryNames("limit=1&offset=2&fields=id", {"fields", "limit", "offset"}, &error));
  EXPECT_TRUE(CheckQueryNames("a=1&", {"a"}, &error));
  EXPECT_FALSE(CheckQueryNames("limit=1&foo=2", {"limit"}, &error));
  EXPECT_EQ(error, "query: unknown parameter \"foo\" (this endpoint takes limit)");
  EXPECT_FALSE(CheckQueryNames("x", {}, &error));
  EXPECT_EQ(error, "query: unknown parameter \"x\" (this endpoint takes none)");
  EXPECT_FALSE(CheckQueryNames("limit=1&limit=2", {"limit"}, &error));
  EXPECT_EQ(error, "query: \"limit\" given twice");
  EXPECT_FALSE(CheckQueryNames("%zz=1", {"limit"}, &error));
  EXPECT_TRUE(CheckQueryNames("%6Cimit=1", {"limit"}, &error));  // names are percent-decoded
}

TEST(Pagination, LimitAndOffsetBounds) {
  Page p;
  std::string error;
  ASSERT_TRUE(ParsePage("", &p, &error));
  EXPECT_FALSE(p.requested);
  ASSERT_TRUE(ParsePage("limit=10&offset=20", &p, &error));
  EXPECT_TRUE(p.requested);
  EXPECT_EQ(p.limit, 10u);
  EXPECT_EQ(p.offset, 20u);
  ASSERT_TRUE(ParsePage("offset=5", &p, &error));
  EXPECT_EQ(p.limit, kMaxPageLimit);
  for (const char* bad : {"limit=0", "limit=1001", "limit=-1", "limit=x", "limit=", "limit=1.5",
                          "limit=99999999999999999999999"}) {
    EXPECT_FALSE(ParsePage(bad, &p, &error)) << bad;
    EXPECT_EQ(error, "limit: must be an integer from 1 to 1000") << bad;
  }
  for (const char* bad : {"offset=-1", "offset=1000000001", "offset=a"}) {
    EXPECT_FALSE(ParsePage(bad, &p, &error)) << bad;
    EXPECT_EQ(error, "offset: must be an integer from 0 to 1000000000") << bad;
  }
}

TEST(Pagination, ResultSlicesAndCounts) {
  const std::vector<std::string> items = {"1", "2", "3", "4", "5"};
  EXPECT_EQ(PagedResult(items, Page{}).body, R"({"result":[1,2,3,4,5]})");
  EXPECT_EQ(PagedResult(items, Page{true, 2, 1}).body,
            R"({"result":[2,3],"pagination":{"limit":2,"offset":1,"count":5}})");
  EXPECT_EQ(PagedResult(items, Page{true, 10, 4}).body,
            R"({"result":[5],"pagination":{"limit":10,"offset":4,"count":5}})");
  EXPECT_EQ(PagedResult(items, Page{true, 10, 99}).body,
            R"({"result":[],"pagination":{"limit":10,"offset":99,"count":5}})");
}

}  // namespace
}  // namespace ringmq::rest
