#include "rest/token_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <set>

#include "acl/token_json.h"

namespace ringmq::rest {

namespace {

std::string Errno(const std::string& what, const std::string& path) {
  return what + " " + path + ": " + std::strerror(errno);
}

bool MakeDirs(const std::string& dir, std::string* error) {
  for (size_t pos = 1; pos <= dir.size(); ++pos) {
    if (pos != dir.size() && dir[pos] != '/') continue;
    const std::string part = dir.substr(0, pos);
    if (mkdir(part.c_str(), 0700) != 0 && errno != EEXIST) {
      *error = Errno("cannot create directory", part);
      return false;
    }
  }
  return true;
}

bool WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

}  // namespace

TokenStore::TokenStore(std::string data_dir)
    : dir_(std::move(data_dir)), path_(dir_ + "/tokens.json") {}

bool TokenStore::Open(std::string* error) {
  if (dir_.empty()) {
    *error = "no data directory";
    return false;
  }
  if (!MakeDirs(dir_, error)) return false;
  const int fd = open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return true;  // first start
    *error = Errno("cannot open", path_);
    return false;
  }
  std::string text;
  char buf[65536];
  for (;;) {
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      *error = Errno("cannot read", path_);
      close(fd);
      return false;
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  std::vector<acl::Token> tokens;
  int64_t next_id = 1;
  if (!acl::ParseTokenFile(text, &next_id, &tokens, error)) {
    *error = path_ + ": " + *error;
    return false;
  }
  tokens_.clear();
  by_key_.clear();
  for (acl::Token& t : tokens) {
    by_key_.emplace(acl::DigestKey(t.key), t.id);
    const int64_t id = t.id;
    tokens_.emplace(id, std::move(t));
  }
  next_id_ = next_id;
  return true;
}

const acl::Token* TokenStore::FindById(int64_t id) const {
  const auto it = tokens_.find(id);
  return it == tokens_.end() ? nullptr : &it->second;
}

const acl::Token* TokenStore::FindByKey(std::string_view key) const {
  const auto it = by_key_.find(acl::DigestKey(key));
  return it == by_key_.end() ? nullptr : FindById(it->second);
}

std::vector<const acl::Token*> TokenStore::All() const {
  std::vector<const acl::Token*> out;
  out.reserve(tokens_.size());
  for (const auto& [id, t] : tokens_) out.push_back(&t);
  return out;
}

bool TokenStore::Insert(std::vector<acl::Token>* tokens, std::string* error) {
  std::set<std::string_view> keys;
  for (const acl::Token& t : *tokens) {
    if (by_key_.count(acl::DigestKey(t.key)) != 0 || !keys.insert(t.key).second) {
      *error = "a token with this key exists already";
      return false;
    }
  }
  int64_t next_id = next_id_;
  for (acl::Token& t : *tokens) t.id = next_id++;
  std::vector<const acl::Token*> view = All();  // new ids are larger: order is kept
  for (const acl::Token& t : *tokens) view.push_back(&t);
  if (!WriteFile(view, next_id, error)) return false;
  for (const acl::Token& t : *tokens) {
    by_key_.emplace(acl::DigestKey(t.key), t.id);
    tokens_.emplace(t.id, t);
  }
  next_id_ = next_id;
  return true;
}

bool TokenStore::Update(const std::vector<acl::Token>& tokens, std::string* error) {
  std::map<int64_t, const acl::Token*> changed;
  for (const acl::Token& t : tokens) {
    const acl::Token* old = FindById(t.id);
    if (old == nullptr || old->key != t.key) {
      *error = "unknown token id " + std::to_string(t.id) + " or key changed";
      return false;
    }
    changed[t.id] = &t;
  }
  std::vector<const acl::Token*> view;
  view.reserve(tokens_.size());
  for (const auto& [id, t] : tokens_) {
    const auto it = changed.find(id);
    view.push_back(it == changed.end() ? &t : it->second);
  }
  if (!WriteFile(view, next_id_, error)) return false;
  for (const acl::Token& t : tokens) tokens_[t.id] = t;
  return true;
}

bool TokenStore::Erase(const std::vector<int64_t>& ids, std::string* error) {
  const std::set<int64_t> gone(ids.begin(), ids.end());
  std::vector<const acl::Token*> view;
  for (const auto& [id, t] : tokens_) {
    if (gone.count(id) == 0) view.push_back(&t);
  }
  if (view.size() == tokens_.size()) return true;  // nothing to do
  if (!WriteFile(view, next_id_, error)) return false;
  for (int64_t id : gone) {
    const auto it = tokens_.find(id);
    if (it == tokens_.end()) continue;
    by_key_.erase(acl::DigestKey(it->second.key));
    tokens_.erase(it);
  }
  return true;
}

void TokenStore::Touch(int64_t id, int64_t now) {
  const auto it = tokens_.find(id);
  if (it == tokens_.end() || it->second.accessed >= now) return;
  it->second.accessed = now;
  dirty_ = true;
}

bool TokenStore::Flush(std::string* error) {
  if (!dirty_) return true;
  return WriteFile(All(), next_id_, error);
}

bool TokenStore::WriteFile(const std::vector<const acl::Token*>& tokens, int64_t next_id,
                           std::string* error) {
  const std::string text = acl::SerializeTokenFile(next_id, tokens);
  const std::string tmp = path_ + ".tmp";
  const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    *error = Errno("cannot create", tmp);
    return false;
  }
  if (!WriteAll(fd, text) || fdatasync(fd) != 0) {
    *error = Errno("cannot write", tmp);
    close(fd);
    unlink(tmp.c_str());
    return false;
  }
  if (close(fd) != 0) {
    *error = Errno("cannot close", tmp);
    unlink(tmp.c_str());
    return false;
  }
  if (rename(tmp.c_str(), path_.c_str()) != 0) {
    *error = Errno("cannot rename to", path_);
    unlink(tmp.c_str());
    return false;
  }
  const int dfd = open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0 || fsync(dfd) != 0) {
    // The rename happened: the file is the new state, only its durability is in doubt.
    *error = Errno("cannot fsync directory", dir_);
    if (dfd >= 0) close(dfd);
    return false;
  }
  close(dfd);
  dirty_ = false;
  return true;
}

}  // namespace ringmq::rest
