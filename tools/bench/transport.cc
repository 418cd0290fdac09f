// Plain TCP transport: bytes pass through unchanged.
#include "tools/bench/transport.h"

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

}  // namespace

std::unique_ptr<Transport> MakeTransport(const std::string& kind) {
  if (kind == "tcp") return std::make_unique<TcpTransport>();
  return nullptr;
}

}  // namespace ringmq::bench
