#include "rest/token_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
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

FileTokenBackend::FileTokenBackend(std::string data_dir)
    : dir_(std::move(data_dir)), path_(dir_ + "/tokens.json") {}

bool FileTokenBackend::Load(int64_t* next_id, std::vector<acl::Token>* tokens, bool* may_seed,
                            std::string* error) {
  *may_seed = true;
  *next_id = 1;
  tokens->clear();
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
  if (!acl::ParseTokenFile(text, next_id, tokens, error)) {
    *error = path_ + ": " + *error;
    return false;
  }
  return true;
}

TokenStore::TokenStore(std::string data_dir)
    : TokenStore(std::make_unique<FileTokenBackend>(std::move(data_dir))) {}

TokenStore::TokenStore(std::unique_ptr<TokenBackend> backend) : backend_(std::move(backend)) {}

bool TokenStore::Open(std::string* error) {
  std::vector<acl::Token> tokens;
  int64_t next_id = 1;
  if (!backend_->Load(&next_id, &tokens, &may_seed_, error)) return false;
  tokens_.clear();
  by_key_.clear();
  touched_.clear();
  for (acl::Token& t : tokens) Put(std::move(t));
  next_id_ = next_id;
  return true;
}

void TokenStore::Put(acl::Token token) {
  const auto old = tokens_.find(token.id);
  if (old != tokens_.end()) by_key_.erase(acl::DigestKey(old->second.key));
  const auto [key, inserted] = by_key_.emplace(acl::DigestKey(token.key), token.id);
  if (!inserted) {  // another id had this key (a cluster race the bucket resolved): it is gone
    tokens_.erase(key->second);
    key->second = token.id;
  }
  next_id_ = std::max(next_id_, token.id + 1);
  const int64_t id = token.id;
  tokens_.insert_or_assign(id, std::move(token));
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

bool TokenStore::Insert(std::vector<acl::Token>* tokens, StoreError* error) {
  std::set<std::string_view> keys;
  for (const acl::Token& t : *tokens) {
    if (by_key_.count(acl::DigestKey(t.key)) != 0 || !keys.insert(t.key).second) {
      *error = {409, "a token with this key exists already"};
      return false;
    }
  }
  int64_t first = 0;
  if (!backend_->ReserveIds(tokens->size(), next_id_, &first, error)) return false;
  int64_t next_id = std::max(next_id_, first);
  for (acl::Token& t : *tokens) t.id = next_id++;
  TokenBackend::Change change;
  std::vector<const acl::Token*> view = All();  // new ids are larger: order is kept
  for (const acl::Token& t : *tokens) {
    view.push_back(&t);
    change.created.push_back(&t);
  }
  change.all = &view;
  change.next_id = next_id;
  if (!backend_->Commit(change, error)) return false;
  for (const acl::Token& t : *tokens) Put(t);
  next_id_ = std::max(next_id_, next_id);
  return true;
}

bool TokenStore::Update(const std::vector<acl::Token>& tokens, StoreError* error) {
  std::map<int64_t, const acl::Token*> changed;
  TokenBackend::Change change;
  for (const acl::Token& t : tokens) {
    const acl::Token* old = FindById(t.id);
    if (old == nullptr || old->key != t.key) {
      *error = {500, "unknown token id " + std::to_string(t.id) + " or key changed"};
      return false;
    }
    changed[t.id] = &t;
    change.updated.emplace_back(old, &t);
  }
  std::vector<const acl::Token*> view;
  view.reserve(tokens_.size());
  for (const auto& [id, t] : tokens_) {
    const auto it = changed.find(id);
    view.push_back(it == changed.end() ? &t : it->second);
  }
  change.all = &view;
  change.next_id = next_id_;
  if (!backend_->Commit(change, error)) return false;
  for (const acl::Token& t : tokens) {
    tokens_[t.id] = t;
    touched_.erase(t.id);
  }
  return true;
}

bool TokenStore::Erase(const std::vector<int64_t>& ids, StoreError* error) {
  const std::set<int64_t> gone(ids.begin(), ids.end());
  TokenBackend::Change change;
  std::vector<const acl::Token*> view;
  for (const auto& [id, t] : tokens_) {
    (gone.count(id) == 0 ? view : change.erased).push_back(&t);
  }
  if (change.erased.empty()) return true;  // nothing to do
  change.all = &view;
  change.next_id = next_id_;
  if (!backend_->Commit(change, error)) return false;
  for (int64_t id : gone) {
    const auto it = tokens_.find(id);
    if (it == tokens_.end()) continue;
    by_key_.erase(acl::DigestKey(it->second.key));
    tokens_.erase(it);
    touched_.erase(id);
  }
  return true;
}

void TokenStore::Touch(int64_t id, int64_t now) {
  const auto it = tokens_.find(id);
  if (it == tokens_.end() || it->second.accessed >= now) return;
  it->second.accessed = now;
  touched_.insert(id);
}

bool TokenStore::Flush(StoreError* error) {
  if (touched_.empty()) return true;
  TokenBackend::Change change;
  const std::vector<const acl::Token*> view = All();
  change.all = &view;
  change.next_id = next_id_;
  change.touch_only = true;
  for (int64_t id : touched_) {
    const acl::Token* t = FindById(id);
    change.updated.emplace_back(t, t);
  }
  if (!backend_->Commit(change, error)) return false;
  touched_.clear();
  return true;
}

std::optional<acl::Token> TokenStore::ApplyRemote(TokenBackend::Remote remote) {
  std::optional<acl::Token> before;
  const auto it = tokens_.find(remote.id);
  if (it != tokens_.end()) before = it->second;
  if (!remote.token) {
    if (before) {
      by_key_.erase(acl::DigestKey(before->key));
      tokens_.erase(it);
      touched_.erase(remote.id);
    }
    return before;
  }
  remote.token->id = remote.id;
  if (before) remote.token->accessed = std::max(remote.token->accessed, before->accessed);
  Put(std::move(*remote.token));
  return before;
}

bool FileTokenBackend::Commit(const Change& change, StoreError* error) {
  const std::string text = acl::SerializeTokenFile(change.next_id, *change.all);
  const auto fail = [error](std::string what) {
    *error = {500, std::move(what)};
    return false;
  };
  const std::string tmp = path_ + ".tmp";
  const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return fail(Errno("cannot create", tmp));
  if (!WriteAll(fd, text) || fdatasync(fd) != 0) {
    std::string what = Errno("cannot write", tmp);
    close(fd);
    unlink(tmp.c_str());
    return fail(std::move(what));
  }
  if (close(fd) != 0) {
    std::string what = Errno("cannot close", tmp);
    unlink(tmp.c_str());
    return fail(std::move(what));
  }
  if (rename(tmp.c_str(), path_.c_str()) != 0) {
    std::string what = Errno("cannot rename to", path_);
    unlink(tmp.c_str());
    return fail(std::move(what));
  }
  const int dfd = open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0 || fsync(dfd) != 0) {
    // The rename happened: the file is the new state, only its durability is in doubt.
    std::string what = Errno("cannot fsync directory", dir_);
    if (dfd >= 0) close(dfd);
    return fail(std::move(what));
  }
  close(dfd);
  return true;
}

}  // namespace ringmq::rest
