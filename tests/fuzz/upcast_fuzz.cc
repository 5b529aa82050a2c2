// libFuzzer target: the upcaster chain. Any event that decodes is taken as if
// written by schema version 1 and upcast: the result must be at the current
// version, upcasting again must change nothing, and it must encode and decode.
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
  if (old.schema_version != domain::kCurrentSchemaVersion) std::abort();
  domain::Event twice = old;
  eventstore::UpcastToCurrent(twice);
  if (eventstore::EncodeEvent(twice) != eventstore::EncodeEvent(old)) std::abort();  // idempotent
  auto decoded = eventstore::DecodeEvent(eventstore::EncodeEvent(old));
  if (!decoded.ok() || domain::Summarize(decoded->payload) != domain::Summarize(old.payload)) std::abort();
  return 0;
}
