// RemoteInterest (cluster/remote_interest.h).
#include "cluster/remote_interest.h"

#include "cluster/subject.h"

namespace ringmq::cluster {

RemoteInterest::RemoteInterest(std::string_view prefix, const std::vector<std::string>& subjects) {
  for (const std::string& s : subjects) {
    const std::string filter = SubjectFilter(prefix, "m", s);
    if (filter.empty()) {
      everything_ = true;  // unreadable: assume the widest interest rather than lose messages
      return;
    }
    trie_.Insert(filter, 0);
  }
}

bool RemoteInterest::Matches(std::string_view topic) const {
  if (everything_) return true;
  bool any = false;
  trie_.Match(topic, [&any](char) { any = true; });
  return any;
}

}  // namespace ringmq::cluster
