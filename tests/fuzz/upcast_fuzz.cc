// libFuzzer target: the upcaster chain. Any event that decodes is taken as if
// written by schema version 1 and upcast (the envelope keeps the version it
// was written with; the upcasters give it the current meaning): upcasting
// again must change nothing, and encoding and decoding it (which upcasts on
// read) must give it back unchanged.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "eventstore/codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace orderflow;
  auto event = eventstore::DecodeEvent(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!event.ok()) return 0;
  domain::Event old = *event;
  old.schema_version = 1;
  eventstore::UpcastToCurrent(old);
  domain::Event twice = old;
  eventstore::UpcastToCurrent(twice);
  if (eventstore::EncodeEvent(twice) != eventstore::EncodeEvent(old)) std::abort();  // idempotent
  auto decoded = eventstore::DecodeEvent(eventstore::EncodeEvent(old));
  if (!decoded.ok() || decoded->schema_version != 1 ||
      eventstore::EncodeEvent(*decoded) != eventstore::EncodeEvent(old)) {
    std::abort();
  }
  return 0;
}
