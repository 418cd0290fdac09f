// Log line formats: every JSON line must parse (simdjson checks UTF-8 strictly), whatever bytes a
// client put in a field; text lines stay one line.
#include "base/internal/log_format.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <string>

#include "base/log.h"

namespace ringmq::base::log_internal {
namespace {

constexpr int64_t kMs = 1'795'930'801'123;  // 2026-11-29T05:40:01.123Z

std::string Line(LogFormat f, std::string_view payload, std::string_view level = "info") {
  std::string out;
  FormatLogLine(f, kMs, level, "mqtt", payload, &out);
  return out;
}

// Parses a JSON line; fails the test when it is not one valid object.
simdjson::dom::object Parse(simdjson::dom::parser& parser, const std::string& line) {
  EXPECT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\n'), line.size() - 1);
  simdjson::dom::object obj;
  const auto error = parser.parse(line).get(obj);
  EXPECT_EQ(error, simdjson::SUCCESS) << line;
  return obj;
}

std::string_view Str(simdjson::dom::object& o, std::string_view key) {
  std::string_view v;
  EXPECT_EQ(o[key].get(v), simdjson::SUCCESS) << key;
  return v;
}

TEST(LogFormat, Timestamp) {
  std::string out;
  AppendTimestamp(&out, kMs);
  EXPECT_EQ(out, "2026-11-29T05:40:01.123Z");
  out.clear();
  AppendTimestamp(&out, 5);
  EXPECT_EQ(out, "1970-01-01T00:00:00.005Z");
}

TEST(LogFormat, JsonPlainMessage) {
  simdjson::dom::parser parser;
  const std::string line = Line(LogFormat::kJson, "shard 0: started");
  EXPECT_EQ(line, R"({"ts":"2026-11-29T05:40:01.123Z","level":"info","subsystem":"mqtt",)"
                  R"("msg":"shard 0: started"})"
                  "\n");
  Parse(parser, line);
}

TEST(LogFormat, JsonEventFields) {
  const std::string event = LogEvent("client connected")
                                .Str("client_id", "c1")
                                .Int("token_id", 42)
                                .Bool("clean_start", true)
                                .Str("peer", "127.0.0.1:5000")
                                .text();
  simdjson::dom::parser parser;
  auto o = Parse(parser, Line(LogFormat::kJson, event));
  EXPECT_EQ(Str(o, "msg"), "client connected");
  EXPECT_EQ(Str(o, "client_id"), "c1");
  EXPECT_EQ(Str(o, "peer"), "127.0.0.1:5000");
  int64_t id = 0;
  EXPECT_EQ(o["token_id"].get(id), simdjson::SUCCESS);
  EXPECT_EQ(id, 42);
  bool clean = false;
  EXPECT_EQ(o["clean_start"].get(clean), simdjson::SUCCESS);
  EXPECT_TRUE(clean);
}

TEST(LogFormat, JsonEscapesEverythingAClientCanSend) {
  // Quotes, backslashes, every control character, DEL, invalid UTF-8 of each kind (stray
  // continuation, overlong, surrogate, above U+10FFFF, truncated), a NUL in a field, valid
  // multi-byte characters.
  std::string nasty = "a\"b\\c";
  for (int c = 1; c < 0x20; ++c) nasty.push_back(static_cast<char>(c));
  nasty += "\x7f|\x80|\xC0\xAF|\xED\xA0\x80|\xF4\x90\x80\x80|\xE2\x82|\xF0\x9F|é€😀|";
  const std::string event =
      LogEvent(nasty).Str("client_id", nasty).Str(std::string("z\0y", 3), "v").text();
  simdjson::dom::parser parser;
  for (const std::string& payload : {nasty, event}) {
    const std::string line = Line(LogFormat::kJson, payload);
    auto o = Parse(parser, line);
    const std::string_view msg = Str(o, "msg");
    EXPECT_NE(msg.find("a\"b\\c\x01"), std::string_view::npos);
    EXPECT_NE(msg.find("\xEF\xBF\xBD"), std::string_view::npos);  // U+FFFD
    EXPECT_NE(msg.find("é€😀"), std::string_view::npos);
  }
  auto o = Parse(parser, Line(LogFormat::kJson, event));
  EXPECT_EQ(Str(o, "client_id"), Str(o, "msg"));
}

TEST(LogFormat, JsonNumberFieldThatIsNotANumberBecomesAString) {
  std::string event = "m";
  AppendField(&event, kNumberField, "n", "1,\"x\":2");
  simdjson::dom::parser parser;
  auto o = Parse(parser, Line(LogFormat::kJson, event));
  EXPECT_EQ(Str(o, "n"), "1,\"x\":2");
}

TEST(LogFormat, Text) {
  const std::string event =
      LogEvent("client disconnected").Str("client_id", "c1").Str("reason", "peer closed").text();
  EXPECT_EQ(Line(LogFormat::kText, event),
            "2026-11-29T05:40:01.123Z info [mqtt] client disconnected client_id=c1 "
            "reason=\"peer closed\"\n");
  // A client's newline cannot start a forged line.
  EXPECT_EQ(Line(LogFormat::kText, "x\ny", "warn"),
            "2026-11-29T05:40:01.123Z warn [mqtt] x\\x0ay\n");
}

// A client's long string costs a bounded part of a line, and says how long it was.
TEST(LogFormat, CutLongStrings) {
  std::string out;
  AppendCut(&out, "short", 8);
  EXPECT_EQ(out, "short");
  out.clear();
  AppendCut(&out, "12345678", 8);  // exactly the limit: whole
  EXPECT_EQ(out, "12345678");
  out.clear();
  AppendCut(&out, "123456789", 8);
  EXPECT_EQ(out, "12345678...[cut, 9 bytes]");
  // Never in the middle of a UTF-8 character: "ab" + U+20AC (3 bytes) cut at 3 keeps "ab".
  out.clear();
  AppendCut(&out, "ab\xE2\x82\xAC", 3);
  EXPECT_EQ(out, "ab...[cut, 5 bytes]");
  out.clear();
  AppendCut(&out, "ab\xE2\x82\xACz", 5);  // ends right after the character
  EXPECT_EQ(out, "ab\xE2\x82\xAC...[cut, 6 bytes]");
  // Not UTF-8 (continuation bytes only): cut at the limit.
  out.clear();
  AppendCut(&out, std::string(10, '\x80'), 4);
  EXPECT_EQ(out, std::string(4, '\x80') + "...[cut, 10 bytes]");
}

TEST(LogFormat, ClientStringsAreCutInLines) {
  const std::string filter = "#" + std::string(65534, 'a');
  // LOG_*_S arguments wrapped in Cut.
  const std::string msg = fmt::format("SUBSCRIBE '{}' refused", Cut(filter));
  EXPECT_EQ(msg,
            "SUBSCRIBE '#" + std::string(kLogCutBytes - 1, 'a') + "...[cut, 65535 bytes]' refused");
  // Every LogEvent string field.
  const std::string event = LogEvent("client connected").Str("client_id", filter).text();
  EXPECT_LT(event.size(), kLogCutBytes + 64);
  EXPECT_NE(event.find("...[cut, 65535 bytes]"), std::string::npos);
  const std::string line = Line(LogFormat::kText, event);
  EXPECT_LT(line.size(), kLogCutBytes + 128);
  // Short ones are left alone.
  EXPECT_EQ(fmt::format("{}", Cut("c1")), "c1");
}

}  // namespace
}  // namespace ringmq::base::log_internal
