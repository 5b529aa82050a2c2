#include "tests/util/future_event.h"

#include <capnp/message.h>
#include <capnp/serialize-packed.h>
#include <kj/io.h>

#include "tests/fixtures/future_events.capnp.h"

namespace orderflow::testing {

std::string EncodeFutureEnvelope(const std::string& aggregate_id, uint16_t schema_version, bool future_member,
                                 size_t id_size) {
  capnp::MallocMessageBuilder message;
  auto env = message.initRoot<testschema::Envelope>();
  std::string id(id_size, '\x07');
  env.setEventId(capnp::Data::Reader(reinterpret_cast<const kj::byte*>(id.data()), id.size()));
  env.setAggregateId(aggregate_id);
  env.setSchemaVersion(schema_version);
  if (future_member) {
    env.getPayload().setFutureEvent("from the future");
  } else {
    env.getPayload().initOrderDelivered().setReceivedBy("bob");
  }
  kj::VectorOutputStream out;
  capnp::writePackedMessage(out, message);
  return std::string(reinterpret_cast<const char*>(out.getArray().begin()), out.getArray().size());
}

}  // namespace orderflow::testing
