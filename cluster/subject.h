// NATS subjects for MQTT topics and filters (DESIGN.md section 8b, doc/cluster.md).
//
// A topic travels on the subject PREFIX.FAMILY.T1.T2... where Ti is the topic's i-th level as a
// NATS token: bytes [A-Za-z0-9_-] as they are, every other byte as %XX (upper-case hex), an empty
// level as a lone "%". The mapping is injective, and a token is never empty, never contains '.',
// whitespace or a wildcard, so any MQTT topic (levels "*", ">", "", "a.b", "$SYS") has a valid
// subject. A node subscribes to *coarse* subjects that cover its filters: the first `levels` levels
// of a filter mapped as above ('+' -> '*', '#' -> '>' plus the parent level), and '>' for whatever
// lies deeper. The coarse set over-covers by design (millions of browser filters under one prefix
// become one NATS subscription); the node filters exactly on delivery with its own trie.
//
// Thread-safety: pure functions.
// Invariants:
//   1. For every valid topic T and valid filter F (not $share) with Matches(F, T), some subject of
//      CoarseSubjects(prefix, family, F, levels) matches TopicSubject(prefix, family, T) under NATS
//      rules ('*' one token, '>' one or more trailing tokens).
//   2. TopicToken(a) == TopicToken(b) only if a == b.
//   3. See SubjectFilter.
#ifndef RINGMQ_CLUSTER_SUBJECT_H_
#define RINGMQ_CLUSTER_SUBJECT_H_

#include <string>
#include <string_view>
#include <vector>

namespace ringmq::cluster {

// One topic level as a NATS token (invariant 2).
std::string TopicToken(std::string_view level);

// PREFIX.FAMILY.T1...Tn for a valid topic name. `family` is a single token ("m", "r").
std::string TopicSubject(std::string_view prefix, std::string_view family, std::string_view topic);

// The subjects a node subscribes to for `filter` (a valid, non-shared topic filter), at most two
// (a trailing '#' within the first `levels` levels adds its parent). REQUIRES: levels >= 1.
std::vector<std::string> CoarseSubjects(std::string_view prefix, std::string_view family,
                                        std::string_view filter, unsigned levels);

// The MQTT filter a coarse subject of PREFIX.FAMILY stands for ('*' -> '+', '>' -> '#', tokens
// unescaped), or "" when `subject` is not one (another prefix, a bad escape). Invariant 3: for a
// filter F, every topic F matches is matched by some SubjectFilter(s), s in CoarseSubjects(F).
std::string SubjectFilter(std::string_view prefix, std::string_view family,
                          std::string_view subject);

// Whether NATS delivers a message published on `subject` to a subscription on `pattern` (for the
// tests of invariant 1; the server does the real matching).
bool NatsSubjectMatches(std::string_view pattern, std::string_view subject);

}  // namespace ringmq::cluster

#endif  // RINGMQ_CLUSTER_SUBJECT_H_
