// The transports of the load generator: plain TCP, and a stack of optional TLS and WebSocket
// layers for tls, ws and wss.
#include "tools/bench/transport.h"

#include "tools/bench/tls_client.h"
#include "tools/bench/ws_client.h"

namespace ringmq::bench {

namespace {

class TcpTransport final : public Transport {
 public:
  void Start(std::vector<uint8_t>*) override {}
  bool ready() const override { return true; }
  bool Receive(std::span<const uint8_t> wire, std::span<const uint8_t>* app,
               std::vector<uint8_t>*) override {
    *app = wire;
    return true;
  }
  void Wrap(std::vector<uint8_t>* app, std::vector<uint8_t>* wire) override { wire->swap(*app); }
};

// TLS (when tls_ is set) under WebSocket (when ws_ is set). For wss the WebSocket upgrade starts
// once the TLS handshake completes, and everything the WebSocket layer sends is encrypted.
class StackTransport final : public Transport {
 public:
  StackTransport(std::unique_ptr<TlsClient> tls, std::unique_ptr<WsClient> ws)
      : tls_(std::move(tls)), ws_(std::move(ws)) {}

  void Start(std::vector<uint8_t>* wire_out) override {
    if (tls_) {
      if (!tls_->Start(wire_out)) failed_ = true;
    } else {
      ws_->Start(wire_out);
    }
  }

  bool ready() const override {
    return !failed_ && (!tls_ || tls_->open()) && (!ws_ || ws_->open());
  }

  bool Receive(std::span<const uint8_t> wire, std::span<const uint8_t>* app,
               std::vector<uint8_t>* wire_out) override {
    if (failed_) return false;
    std::span<const uint8_t> bytes = wire;
    if (tls_) {
      plain_.clear();
      if (!tls_->Feed(wire, &plain_, wire_out)) return Failed();
      if (ws_ && ws_->state() == WsClient::State::kIdle && tls_->open()) {
        scratch_.clear();
        ws_->Start(&scratch_);
        if (!tls_->Write(scratch_, wire_out)) return Failed();
      }
      bytes = plain_;
    }
    if (!ws_) {
      *app = bytes;
      return true;
    }
    app_.clear();
    scratch_.clear();
    const bool ok = ws_->Feed(bytes, &app_, tls_ ? &scratch_ : wire_out);
    if (tls_ && !scratch_.empty() && !tls_->Write(scratch_, wire_out)) return Failed();
    if (!ok) return Failed();
    *app = app_;
    return true;
  }

  void Wrap(std::vector<uint8_t>* app, std::vector<uint8_t>* wire) override {
    if (ws_ && tls_) {
      scratch_.clear();
      ws_->Wrap(*app, &scratch_);
      if (!tls_->Write(scratch_, wire)) failed_ = true;
    } else if (ws_) {
      ws_->Wrap(*app, wire);
    } else if (!tls_->Write(*app, wire)) {
      failed_ = true;
    }
    app->clear();
  }

  std::string error() const override {
    if (tls_ && !tls_->error().empty()) return tls_->error();
    if (ws_ && !ws_->error().empty()) return ws_->error();
    return {};
  }

 private:
  bool Failed() {
    failed_ = true;
    return false;
  }

  std::unique_ptr<TlsClient> tls_;
  std::unique_ptr<WsClient> ws_;
  bool failed_ = false;
  std::vector<uint8_t> plain_;    // decrypted bytes of one Receive
  std::vector<uint8_t> app_;      // WebSocket payload of one Receive
  std::vector<uint8_t> scratch_;  // WebSocket bytes on their way into TLS
};

}  // namespace

TransportFactory::~TransportFactory() {
  if (ssl_ctx_ != nullptr) FreeTlsClientContext(ssl_ctx_);
}

bool TransportFactory::Init(const TransportOptions& options, std::string* error) {
  options_ = options;
  const std::string& k = options.kind;
  if (k != "tcp" && k != "tls" && k != "ws" && k != "wss") {
    *error = "unknown transport " + k;
    return false;
  }
  const bool ipv6 = options.host.find(':') != std::string::npos;
  host_header_ =
      (ipv6 ? "[" + options.host + "]" : options.host) + ":" + std::to_string(options.port);
  if (k == "tls" || k == "wss") {
    ssl_ctx_ = MakeTlsClientContext(options.cafile, options.insecure, error);
    if (ssl_ctx_ == nullptr) return false;
  }
  return true;
}

std::unique_ptr<Transport> TransportFactory::Make(uint64_t seed) const {
  const std::string& k = options_.kind;
  if (k == "tcp") return std::make_unique<TcpTransport>();
  std::unique_ptr<TlsClient> tls;
  std::unique_ptr<WsClient> ws;
  if (k == "tls" || k == "wss") tls = std::make_unique<TlsClient>(ssl_ctx_, options_.host);
  if (k == "ws" || k == "wss") {
    ws = std::make_unique<WsClient>(host_header_, options_.ws_path, seed);
  }
  return std::make_unique<StackTransport>(std::move(tls), std::move(ws));
}

}  // namespace ringmq::bench
