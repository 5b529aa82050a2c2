// Helpers shared by the Cap'n Proto codecs (events here, records in projections/).
#pragma once

#include <capnp/message.h>
#include <capnp/serialize-packed.h>
#include <kj/exception.h>
#include <kj/io.h>

#include <string>
#include <string_view>

#include "domain/status.h"

namespace orderflow::eventstore {

inline std::string ToString(capnp::Text::Reader text) { return std::string(text.cStr(), text.size()); }

// Serializes a message with the packed encoding.
inline std::string WritePacked(capnp::MessageBuilder& message) {
  kj::VectorOutputStream out(512);
  capnp::writePackedMessage(out, message);
  auto bytes = out.getArray();
  return std::string(reinterpret_cast<const char*>(bytes.begin()), bytes.size());
}

// Reads a packed message of root type `Root` from untrusted bytes and converts it
// with `convert` (Root::Reader -> Result<Out>). Any Cap'n Proto exception raised
// while parsing or traversing (truncation, bad pointers, limits) becomes kCorruption.
template <typename Root, typename Out, typename Convert>
Result<Out> ReadPackedRoot(std::string_view bytes, const char* what, Convert&& convert) {
  if (bytes.empty()) return Status::Corruption(std::string("empty ") + what + " record");
  try {
    kj::ArrayInputStream in(kj::ArrayPtr<const kj::byte>(reinterpret_cast<const kj::byte*>(bytes.data()),
                                                         bytes.size()));
    capnp::ReaderOptions options;
    options.traversalLimitInWords = 1 << 20;  // 8 MiB: far above any real record
    options.nestingLimit = 16;
    capnp::PackedMessageReader reader(in, options);
    Result<Out> out = convert(reader.template getRoot<Root>());
    if (out.ok() && in.tryGetReadBuffer().size() != 0) {
      return Status::Corruption(std::string("trailing bytes after ") + what + " record");
    }
    return out;
  } catch (const kj::Exception& e) {
    return Status::Corruption(std::string("malformed ") + what + " record: " + e.getDescription().cStr());
  } catch (const std::exception& e) {
    return Status::Corruption(std::string("malformed ") + what + " record: " + e.what());
  }
}

}  // namespace orderflow::eventstore
