// Envelopes as a newer orderflow would write them (tests/fixtures/future_events.capnp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace orderflow::testing {

// A packed Envelope for `aggregate_id` with `schema_version`; with
// `future_member` its payload is a union member this build does not know,
// else an OrderDelivered. `id_size` is the event id's length (16 is valid).
std::string EncodeFutureEnvelope(const std::string& aggregate_id, uint16_t schema_version, bool future_member,
                                 size_t id_size = 16);

}  // namespace orderflow::testing
