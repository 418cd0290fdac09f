#include "net/http_head.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ringmq::net {
namespace {

// Records what the parser reports.
struct Recorder {
  std::vector<HttpHead> heads;
  std::vector<std::string> bodies;
  std::vector<bool> completes;  // keep_alive of each
  int begins = 0;

  HttpParser::Callbacks Callbacks() {
    HttpParser::Callbacks c;
    c.begin = [this] {
      ++begins;
      bodies.emplace_back();
    };
    c.head = [this](const HttpHead& h) {
      heads.push_back(h);
      return true;
    };
    c.body = [this](std::string_view piece) {
      bodies.back().append(piece);
      return true;
    };
    c.complete = [this](bool keep_alive) {
      completes.push_back(keep_alive);
      return true;
    };
    return c;
  }
};

HttpParser::Result FeedBytewise(HttpParser& p, std::string_view s) {
  HttpParser::Result r = HttpParser::Result::kOk;
  for (const char c : s) {
    r = p.Feed(&c, 1);
    if (r != HttpParser::Result::kOk) break;
  }
  return r;
}

TEST(HttpParser, PipelinedRequestsByteByByte) {
  Recorder rec;
  HttpParser p(1024, rec.Callbacks());
  const std::string wire =
      "POST /platform/tokens?limit=2 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
      "X-Long: a\r\n b\r\n\r\nhello"
      "GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  EXPECT_EQ(FeedBytewise(p, wire), HttpParser::Result::kOk);
  ASSERT_EQ(rec.heads.size(), 2u);
  EXPECT_EQ(rec.begins, 2);
  EXPECT_EQ(rec.heads[0].method, "POST");
  EXPECT_EQ(rec.heads[0].path, "/platform/tokens");
  EXPECT_EQ(rec.heads[0].query, "limit=2");
  EXPECT_TRUE(rec.heads[0].has_content_length);
  EXPECT_EQ(rec.heads[0].content_length, 5u);
  EXPECT_EQ(rec.bodies[0], "hello");
  EXPECT_EQ(rec.heads[1].path, "/a");
  EXPECT_TRUE(rec.heads[1].query.empty());
  EXPECT_FALSE(rec.heads[1].has_content_length);
  EXPECT_EQ(rec.completes, (std::vector<bool>{true, false}));
  EXPECT_EQ(rec.heads[1].http_major, 1);
  EXPECT_EQ(rec.heads[1].http_minor, 1);
}

TEST(HttpParser, HeadersAreCaseInsensitiveJoinedAndCounted) {
  Recorder rec;
  HttpParser p(1024, rec.Callbacks());
  const std::string wire = "GET / HTTP/1.1\r\nHost: h\r\nAccept:  a \r\naccept: b\r\n\r\n";
  ASSERT_EQ(p.Feed(wire.data(), wire.size()), HttpParser::Result::kOk);
  ASSERT_EQ(rec.heads.size(), 1u);
  const HttpHead& h = rec.heads[0];
  EXPECT_EQ(h.Get("ACCEPT"), "a, b");
  EXPECT_EQ(h.Count("Accept"), 2u);
  EXPECT_TRUE(h.Has("host"));
  EXPECT_FALSE(h.Has("cookie"));
  EXPECT_EQ(h.Get("cookie"), "");
}

TEST(HttpParser, AbsoluteFormTargetsGiveTheirPath) {
  Recorder rec;
  HttpParser p(1024, rec.Callbacks());
  const std::string wire = "GET http://broker:8080/mqtt?x=1 HTTP/1.1\r\nHost: broker\r\n\r\n";
  ASSERT_EQ(p.Feed(wire.data(), wire.size()), HttpParser::Result::kOk);
  ASSERT_EQ(rec.heads.size(), 1u);
  EXPECT_TRUE(rec.heads[0].origin_form);
  EXPECT_EQ(rec.heads[0].path, "/mqtt");
  EXPECT_EQ(rec.heads[0].query, "x=1");
}

TEST(HttpParser, AHeadOverTheLimitStopsBeforeItsCallback) {
  Recorder rec;
  HttpParser p(40, rec.Callbacks());
  const std::string wire = "GET / HTTP/1.1\r\nX-Pad: " + std::string(40, 'p') + "\r\n\r\n";
  EXPECT_EQ(p.Feed(wire.data(), wire.size()), HttpParser::Result::kHeadTooLarge);
  EXPECT_TRUE(rec.heads.empty());
  EXPECT_EQ(p.method(), std::string("GET"));
  EXPECT_EQ(p.path(), "/");
  // Sticky: nothing more is parsed.
  EXPECT_EQ(p.Feed("GET / HTTP/1.1\r\n\r\n", 18), HttpParser::Result::kHeadTooLarge);
  EXPECT_TRUE(rec.heads.empty());
}

TEST(HttpParser, MalformedInputIsReportedWithAReason) {
  Recorder rec;
  HttpParser p(1024, rec.Callbacks());
  EXPECT_EQ(p.Feed("GET / HTTP/9x\r\n\r\n", 17), HttpParser::Result::kMalformed);
  EXPECT_NE(std::string(p.error()), "success");
  EXPECT_STREQ(p.method(), "GET");
}

TEST(HttpParser, AnUpgradeStopsAfterItsHeadAndAStoppingCallbackStopsForGood) {
  Recorder rec;
  HttpParser p(1024, rec.Callbacks());
  // The head, then the first bytes of a WebSocket frame (0x82 0x00) that the parser must not
  // consume.
  std::string wire =
      "GET /mqtt HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
  wire += {'\x82', '\x00'};
  EXPECT_EQ(p.Feed(wire.data(), wire.size()), HttpParser::Result::kUpgrade);
  ASSERT_EQ(rec.heads.size(), 1u);
  EXPECT_TRUE(rec.heads[0].upgrade);

  HttpParser::Callbacks c;
  int heads = 0;
  c.head = [&heads](const HttpHead&) { return ++heads < 1; };
  HttpParser q(1024, std::move(c));
  const std::string two = "GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n";
  EXPECT_EQ(q.Feed(two.data(), two.size()), HttpParser::Result::kStopped);
  EXPECT_EQ(q.Feed(two.data(), two.size()), HttpParser::Result::kStopped);
  EXPECT_EQ(heads, 1);
}

TEST(HttpParser, MethodIsOtherBeforeTheRequestLineGotThatFar) {
  HttpParser p(1024, {});
  EXPECT_EQ(p.Feed("PO", 2), HttpParser::Result::kOk);
  EXPECT_STREQ(p.method(), "OTHER");
}

}  // namespace
}  // namespace ringmq::net
