// libFuzzer target: the event decoder (and the upcasters it runs) on
// arbitrary bytes. It must never crash, hang or leak; an event it accepts must
// survive an encode/decode round trip unchanged.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "eventstore/codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace orderflow;
  auto event = eventstore::DecodeEvent(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!event.ok()) return 0;
  const std::string bytes = eventstore::EncodeEvent(*event);
  auto again = eventstore::DecodeEvent(bytes);
  if (!again.ok()) {  // what we write, we must read
    std::fprintf(stderr, "re-encoded event does not decode: %s\n", again.status().ToString().c_str());
    std::abort();
  }
  auto check = [](bool ok, const char* what) {
    if (!ok) {
      std::fprintf(stderr, "round trip changed the %s\n", what);
      std::abort();
    }
  };
  check(again->id == event->id, "event id");
  check(again->order_id == event->order_id, "order id");
  check(again->schema_version == event->schema_version, "schema version");
  check(again->payload.index() == event->payload.index(), "event type");
  check(domain::Summarize(again->payload) == domain::Summarize(event->payload), "payload");
  check(eventstore::EncodeEvent(*again) == bytes, "encoding");
  return 0;
}
