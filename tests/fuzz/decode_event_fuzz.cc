// libFuzzer target: the event decoder (and the upcasters it runs) on
// arbitrary bytes. It must never crash, hang or leak; an event it accepts must
// survive an encode/decode round trip unchanged.
#include <cstdint>
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
  if (!again.ok()) std::abort();  // what we write, we must read
  if (again->id != event->id || again->order_id != event->order_id ||
      again->schema_version != event->schema_version || again->payload.index() != event->payload.index() ||
      domain::Summarize(again->payload) != domain::Summarize(event->payload) ||
      eventstore::EncodeEvent(*again) != bytes) {
    std::abort();
  }
  return 0;
}
