// Codec: domain events <-> Cap'n Proto bytes (packed encoding of Envelope).
//
// Decoding never trusts its input: garbage, truncated, oversized or unknown
// records come back as a kCorruption Status, never as a crash or an exception.
// A record written by a newer schema version than this code knows is
// kFailedPrecondition, so the caller can tell "upgrade me" from "garbage".
// All functions are thread-safe (no shared state).
#pragma once

#include <string>
#include <string_view>

#include "domain/events.h"
#include "domain/status.h"

namespace orderflow::eventstore {

// Kafka header names carried by every record.
inline constexpr std::string_view kHeaderEventType = "event-type";
inline constexpr std::string_view kHeaderSchemaVersion = "schema-version";
inline constexpr std::string_view kHeaderContentType = "content-type";
inline constexpr std::string_view kContentType = "application/x-capnp-packed; schema=orderflow.Envelope";

// Serializes `event` as a packed Cap'n Proto Envelope.
std::string EncodeEvent(const domain::Event& event);

// Parses bytes produced by EncodeEvent (of this or an older schema version)
// and runs the upcaster chain, so every reader (live consumers, replay,
// snapshots' history, redrive) sees current-version content. `schema_version`
// keeps the version the record was written with.
Result<domain::Event> DecodeEvent(std::string_view bytes);

// The upcaster chain: rewrites an event decoded from an older schema version
// into the meaning of the current one. Idempotent; a no-op for current events.
void UpcastToCurrent(domain::Event& event);

}  // namespace orderflow::eventstore
