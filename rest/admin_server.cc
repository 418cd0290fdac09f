#include "rest/admin_server.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>

#include "net/socket.h"

namespace ringmq::rest {

namespace {

int64_t SystemNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

std::string MasterKeyFromEnv() {
  const char* v = std::getenv("RINGMQ_MASTER_TOKEN");
  return v == nullptr ? std::string() : std::string(v);
}

AdminServer::AdminServer(AdminOptions options, admin_api::BrokerHooks* hooks)
    : options_(std::move(options)), hooks_(hooks) {
  if (!options_.clock) options_.clock = SystemNow;
}

AdminServer::~AdminServer() { Stop(); }

std::optional<AdminStartInfo> AdminServer::Start(std::string* error) {
  AdminStartInfo info;
  store_ = options_.token_backend ? std::make_unique<TokenStore>(std::move(options_.token_backend))
                                  : std::make_unique<TokenStore>(options_.data_dir);
  if (!store_->Open(error)) return std::nullopt;

  // The first master token.
  const int64_t now = options_.clock();
  std::string key = options_.master_key;
  if (!key.empty()) {
    if (!acl::ValidateTokenKey(key, error)) {
      *error = "RINGMQ_MASTER_TOKEN: " + *error;
      return std::nullopt;
    }
  } else if (store_->may_seed()) {
    if (!acl::GenerateTokenKey(&key)) {
      *error = "cannot generate a token key (OpenSSL RAND_bytes failed)";
      return std::nullopt;
    }
    info.generated_master_key = key;
  }
  if (!key.empty() && store_->FindByKey(key) == nullptr) {
    std::vector<acl::Token> master(1);
    master[0].key = key;
    master[0].info = info.generated_master_key.empty() ? "master (RINGMQ_MASTER_TOKEN)"
                                                       : "master (created at first start)";
    master[0].created = master[0].accessed = now;
    master[0].access.type = acl::AccessType::kMaster;
    StoreError e;
    if (!store_->Insert(&master, &e)) {
      // Another node of a cluster stored the same key at the same moment: it is there.
      if (e.status != 409 || !info.generated_master_key.empty()) {
        *error = "token store: " + e.text;
        return std::nullopt;
      }
    }
  }

  listen_fd_ = net::ListenTcp(options_.host, options_.port, error);
  if (listen_fd_ < 0) return std::nullopt;
  wake_fd_ = eventfd(0, EFD_CLOEXEC);
  if (wake_fd_ < 0) {
    *error = "eventfd failed";
    close(listen_fd_);
    listen_fd_ = -1;
    return std::nullopt;
  }
  info.port = net::LocalPort(listen_fd_);
  info.address = net::LocalAddress(listen_fd_);

  api_ = std::make_unique<Api>(store_.get(), hooks_, options_.clock, options_.api_limits);
  api_->set_cluster(options_.cluster);
  {
    std::lock_guard<std::mutex> lock(inbox_mu_);
    accepting_ = true;
  }
  // The ring must be created by the thread that uses it: wait for its verdict.
  std::string init_error;
  std::atomic<int> init_state{0};  // 0 pending, 1 ok, 2 failed
  stop_.store(false);
  thread_ = std::thread(&AdminServer::ThreadMain, this, &init_error, &init_state);
  while (init_state.load(std::memory_order_acquire) == 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (init_state.load() == 2) {
    thread_.join();
    {
      std::lock_guard<std::mutex> lock(inbox_mu_);
      accepting_ = false;
    }
    close(listen_fd_);
    close(wake_fd_);
    listen_fd_ = wake_fd_ = -1;
    *error = init_error;
    return std::nullopt;
  }
  started_ = true;
  // Changes other nodes make to the tokens (cluster mode), applied on the admin thread.
  store_->backend().Follow([this](std::function<void()> fn) { return Post(std::move(fn)); },
                           [this](TokenBackend::Remote r) { api_->ApplyRemote(std::move(r)); });
  return info;
}

void AdminServer::ThreadMain(std::string* init_error, std::atomic<int>* init_state) {
  HttpServer http(options_.limits, [this](const HttpRequest& req, const Respond& respond) {
    api_->Handle(req, respond);
  });
  if (!http.Init(listen_fd_, wake_fd_, init_error)) {
    init_state->store(2, std::memory_order_release);
    return;
  }
  if (options_.tls) {  // a TlsContext belongs to the thread that loads it (net/tls.h)
    tls_ = std::make_unique<net::TlsContext>();
    if (std::string e = tls_->Load(*options_.tls); !e.empty()) {
      *init_error = "HTTPS: " + e;
      tls_.reset();
      init_state->store(2, std::memory_order_release);
      return;
    }
    http.set_tls(tls_.get());
  }
  if (options_.on_request) http.set_request_observer(options_.on_request);
  if (options_.on_event) http.set_event_observer(options_.on_event);
  // Expect: 100-continue is answered only for a request the API would take (authorization first).
  http.set_head_check([this](const HttpRequest& head) { return api_->CheckHead(head); });
  api_->set_extra_metrics([&http] {
    std::string text =
        "# HELP ringmq_rest_connections Open connections to the REST API\n"
        "# TYPE ringmq_rest_connections gauge\nringmq_rest_connections " +
        std::to_string(http.connection_count()) +
        "\n# HELP ringmq_rest_requests_total REST requests answered, by method and status code\n"
        "# TYPE ringmq_rest_requests_total counter\n";
    // Counted when answered: this /metrics request itself is not in it yet.
    for (const auto& [key, n] : http.request_counts()) {
      text += "ringmq_rest_requests_total{method=\"" + key.first + "\",code=\"" +
              std::to_string(key.second) + "\"} " + std::to_string(n) + "\n";
    }
    return text;
  });
  init_state->store(1, std::memory_order_release);  // init_* must not be touched after this
  http.Run(
      stop_, [this] { DrainInbox(); }, [this] { api_->Sweep(); }, options_.tick_ms);
  api_->set_extra_metrics(nullptr);
  StoreError error;
  (void)store_->Flush(&error);  // best effort: only `accessed` values can be pending
}

void AdminServer::Stop() {
  if (!started_) return;
  store_->backend().Unfollow();  // no Post from its thread after this
  {
    std::lock_guard<std::mutex> lock(inbox_mu_);
    accepting_ = false;
  }
  stop_.store(true, std::memory_order_release);
  const uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof(one));
  thread_.join();
  {
    std::lock_guard<std::mutex> lock(inbox_mu_);
    inbox_.clear();
  }
  close(listen_fd_);
  close(wake_fd_);
  listen_fd_ = wake_fd_ = -1;
  // The store's backend may hold connections (a cluster's bucket): released now, not at
  // destruction, so that the process's NATS client can wind down after Stop.
  api_.reset();
  store_.reset();
  started_ = false;
}

bool AdminServer::Post(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> lock(inbox_mu_);
    if (!accepting_) return false;
    inbox_.push_back(std::move(fn));
  }
  const uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof(one));
  return true;
}

void AdminServer::DrainInbox() {
  std::vector<std::function<void()>> work;
  {
    std::lock_guard<std::mutex> lock(inbox_mu_);
    work.swap(inbox_);
  }
  for (auto& fn : work) fn();
}

bool AdminServer::QueueAuthenticate(acl::Credentials credentials,
                                    std::function<void(Api::AuthResult)> done) {
  return Post([this, credentials = std::move(credentials), done = std::move(done)] {
    done(api_->Authenticate(credentials));
  });
}

bool AdminServer::ReloadTls(std::function<void(std::string error)> done) {
  return Post([this, done = std::move(done)] {
    if (tls_ != nullptr) done(tls_->Reload());
  });
}

bool AdminServer::QueueTouch(std::vector<std::string> keys) {
  return Post([this, keys = std::move(keys)] { api_->Touch(keys); });
}

}  // namespace ringmq::rest
