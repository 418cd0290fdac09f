#include "broker/connect_rules.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ringmq::broker {
namespace {

using proto::Version;

proto::Connect Cn(Version v, std::string_view client_id, bool clean_start = true) {
  proto::Connect cn;
  cn.version = v;
  cn.client_id = client_id;
  cn.clean_start = clean_start;
  return cn;
}

acl::AclPtr TokenAcl(int64_t id, acl::AccessType type) {
  acl::Token t;
  t.id = id;
  t.expire = 99;
  t.access.type = type;
  return acl::CompiledAcl::Compile(t, 1);
}

TEST(ConnectRules, ClientIds) {
  EXPECT_EQ(ClientIdRuleFor(Cn(Version::kV311, "c", false)), ClientIdRule::kAsSent);
  EXPECT_EQ(ClientIdRuleFor(Cn(Version::kV31, "c", false)), ClientIdRule::kAsSent);
  // Empty: MQTT 5 always gets one assigned; 3.1.1 only with clean session [MQTT-3.1.3-7/8].
  EXPECT_EQ(ClientIdRuleFor(Cn(Version::kV5, "", false)), ClientIdRule::kAssign);
  EXPECT_EQ(ClientIdRuleFor(Cn(Version::kV311, "", true)), ClientIdRule::kAssign);
  EXPECT_EQ(ClientIdRuleFor(Cn(Version::kV311, "", false)), ClientIdRule::kRefuse);
  EXPECT_EQ(ClientIdRuleFor(Cn(Version::kV31, "", true)), ClientIdRule::kRefuse);
}

TEST(ConnectRules, ASessionBelongsToItsToken) {
  const acl::AclPtr mine = TokenAcl(7, acl::AccessType::kStandard);
  const acl::AclPtr other = TokenAcl(8, acl::AccessType::kAcl);
  const acl::AclPtr master = TokenAcl(9, acl::AccessType::kMaster);
  EXPECT_TRUE(MayUseSession(0, nullptr));  // nobody's: anyone's
  EXPECT_TRUE(MayUseSession(0, other.get()));
  EXPECT_TRUE(MayUseSession(7, mine.get()));
  EXPECT_FALSE(MayUseSession(7, other.get()));
  EXPECT_FALSE(MayUseSession(7, nullptr));  // anonymous
  EXPECT_TRUE(MayUseSession(7, master.get()));
}

TEST(ConnectRules, KeepAliveIsHeldToTheMaximum) {
  EXPECT_EQ(GrantedKeepAlive(60, 65535), 60);
  EXPECT_EQ(GrantedKeepAlive(0, 65535), 0);  // none asked, none imposed
  EXPECT_EQ(GrantedKeepAlive(600, 300), 300);
  EXPECT_EQ(GrantedKeepAlive(0, 300), 300);  // "none" is more than any maximum
  EXPECT_EQ(GrantedKeepAlive(300, 300), 300);
}

TEST(ConnectRules, SessionExpiry) {
  proto::Connect v5 = Cn(Version::kV5, "c");
  EXPECT_EQ(GrantedSessionExpiry(v5, 3600), 0u);  // no property: ends with the connection
  v5.props.session_expiry_interval = 60;
  EXPECT_EQ(GrantedSessionExpiry(v5, 3600), 60u);
  v5.props.session_expiry_interval = 0xFFFFFFFF;
  EXPECT_EQ(GrantedSessionExpiry(v5, 3600), 3600u);
  EXPECT_EQ(GrantedSessionExpiry(Cn(Version::kV311, "c", true), 3600), 0u);
  EXPECT_EQ(GrantedSessionExpiry(Cn(Version::kV311, "c", false), 3600), 0xFFFFFFFFu);
}

TEST(ConnectRules, Mqtt311ConnackCarriesNoProperties) {
  const Config cfg;
  const proto::Connack ack =
      AcceptingConnack(Cn(Version::kV311, "c", false), cfg, /*session_present=*/true, "", 60);
  EXPECT_TRUE(ack.session_present);
  EXPECT_EQ(ack.reason, proto::ReasonCode::kSuccess);
  EXPECT_EQ(ack.props, proto::Properties{});
}

TEST(ConnectRules, Mqtt5ConnackAnnouncesLimitsAndWhatWasGrantedDifferently) {
  Config cfg;
  cfg.max_session_expiry = 3600;
  proto::Connect cn = Cn(Version::kV5, "");
  cn.keep_alive = 600;
  cn.props.session_expiry_interval = 7200;
  const std::string assigned = "ringmq-0-1-1";
  const proto::Connack ack = AcceptingConnack(cn, cfg, false, assigned, 300);
  EXPECT_FALSE(ack.session_present);
  EXPECT_EQ(ack.props.receive_maximum, cfg.receive_maximum);
  EXPECT_EQ(ack.props.maximum_packet_size, cfg.max_packet_size);
  EXPECT_EQ(ack.props.topic_alias_maximum, kTopicAliasMaximum);
  EXPECT_EQ(ack.props.assigned_client_identifier, assigned);
  EXPECT_EQ(ack.props.server_keep_alive, 300);
  EXPECT_EQ(ack.props.session_expiry_interval, 3600u);

  // Granted as asked: neither is announced; a client id of its own is not repeated.
  cn.keep_alive = 30;
  cn.props.session_expiry_interval = 60;
  const proto::Connack plain = AcceptingConnack(cn, cfg, true, "", 30);
  EXPECT_FALSE(plain.props.assigned_client_identifier.has_value());
  EXPECT_FALSE(plain.props.server_keep_alive.has_value());
  EXPECT_FALSE(plain.props.session_expiry_interval.has_value());
}

}  // namespace
}  // namespace ringmq::broker
