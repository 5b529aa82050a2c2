// Helpers shared by the Cap'n Proto codecs (events here, records in projections/).
#pragma once

#include <capnp/message.h>
#include <capnp/serialize-packed.h>
#include <capnp/serialize.h>
#include <kj/exception.h>
#include <kj/io.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include "domain/status.h"

namespace orderflow::eventstore {

// Text up to its first NUL byte: what orderflow's encoder writes (it sets text
// from C strings), so a foreign record with an embedded NUL reads as it would
// be written back (the decode/encode round trip the fuzzer checks).
inline std::string ToString(capnp::Text::Reader text) { return std::string(text.cStr()); }

// A kj output stream that writes into a std::string: messages are serialized
// straight into the string they are returned in (no second buffer, no copy).
class StringOutputStream final : public kj::BufferedOutputStream {
 public:
  explicit StringOutputStream(size_t capacity) { out_.resize(capacity); }
  kj::ArrayPtr<kj::byte> getWriteBuffer() override { return kj::arrayPtr(at(fill_), out_.size() - fill_); }
  void write(const void* buffer, size_t size) override {
    if (buffer != at(fill_)) {  // else the bytes were written into getWriteBuffer() already
      if (fill_ + size > out_.size()) out_.resize(std::max(out_.size() * 2, fill_ + size));
      std::memcpy(at(fill_), buffer, size);
    }
    fill_ += size;
  }
  std::string Take() && {
    out_.resize(fill_);
    return std::move(out_);
  }

 private:
  kj::byte* at(size_t i) { return reinterpret_cast<kj::byte*>(out_.data()) + i; }
  std::string out_;
  size_t fill_ = 0;
};

// Serializes a message with the packed encoding.
inline std::string WritePacked(capnp::MessageBuilder& message) {
  StringOutputStream out(512);
  capnp::writePackedMessage(out, message);
  return std::move(out).Take();
}

// Appends the message, serialized flat (unpacked), to *out: cheaper than
// packing when the message is mostly an opaque blob that is already packed
// (history entries).
inline void AppendFlat(capnp::MessageBuilder& message, std::string* out) {
  const size_t at = out->size();
  const size_t size = capnp::computeSerializedSizeInWords(message) * sizeof(capnp::word);
  out->resize(at + size);
  kj::ArrayOutputStream stream(kj::arrayPtr(reinterpret_cast<kj::byte*>(out->data()) + at, size));
  capnp::writeMessage(stream, message);
}

// Reads a flat message (see AppendFlat) from untrusted bytes; errors as ReadPackedRoot.
template <typename Root, typename Out, typename Convert>
Result<Out> ReadFlatRoot(std::string_view bytes, const char* what, Convert&& convert) {
  if (bytes.empty() || bytes.size() % sizeof(capnp::word) != 0) {
    return Status::Corruption(std::string("malformed ") + what + " record: size " + std::to_string(bytes.size()));
  }
  try {
    // Copy into word-aligned memory; RocksDB values carry no alignment guarantee.
    kj::Array<capnp::word> words = kj::heapArray<capnp::word>(bytes.size() / sizeof(capnp::word));
    std::memcpy(words.begin(), bytes.data(), bytes.size());
    capnp::ReaderOptions options;
    options.traversalLimitInWords = 1 << 20;
    options.nestingLimit = 16;
    capnp::FlatArrayMessageReader message(words, options);
    if (message.getEnd() != words.end()) {
      return Status::Corruption(std::string("trailing bytes after ") + what + " record");
    }
    return convert(message.template getRoot<Root>());
  } catch (const kj::Exception& e) {
    return Status::Corruption(std::string("malformed ") + what + " record: " + e.getDescription().cStr());
  }
}

// Reads a packed message of root type `Root` from untrusted bytes and converts it
// with `convert` (Root::Reader -> Result<Out>). Any Cap'n Proto exception raised
// while parsing or traversing (truncation, bad pointers, limits) becomes kCorruption.
template <typename Root, typename Out, typename Convert>
Result<Out> ReadPackedRoot(std::string_view bytes, const char* what, Convert&& convert) {
  if (bytes.empty()) return Status::Corruption(std::string("empty ") + what + " record");
  // The result lives outside the message's scope: its reader's destructor may
  // raise a kj::Exception (it reads the rest of a truncated message), and a return value
  // already built when a local's destructor throws is leaked by the compilers
  // at hand (found by the fuzzer under LeakSanitizer).
  std::optional<Result<Out>> out;
  try {
    kj::ArrayInputStream in(kj::ArrayPtr<const kj::byte>(reinterpret_cast<const kj::byte*>(bytes.data()),
                                                         bytes.size()));
    capnp::ReaderOptions options;
    options.traversalLimitInWords = 1 << 20;  // 8 MiB: far above any real record
    options.nestingLimit = 16;
    {
      // Most records fit in this thread's scratch segment: no allocation per
      // record. Only the innermost of nested reads on one thread uses it.
      thread_local kj::Array<capnp::word> scratch = kj::heapArray<capnp::word>(1024);
      thread_local bool scratch_busy = false;
      const bool use_scratch = !scratch_busy;
      scratch_busy = true;
      struct Release {
        bool used;
        ~Release() {
          if (used) scratch_busy = false;
        }
      } release{use_scratch};
      capnp::PackedMessageReader message(in, options, use_scratch ? kj::ArrayPtr<capnp::word>(scratch) : nullptr);
      out.emplace(convert(message.template getRoot<Root>()));
    }
    if (out->ok() && in.tryGetReadBuffer().size() != 0) {
      return Status::Corruption(std::string("trailing bytes after ") + what + " record");
    }
  } catch (const kj::Exception& e) {
    return Status::Corruption(std::string("malformed ") + what + " record: " + e.getDescription().cStr());
  } catch (const std::exception& e) {
    return Status::Corruption(std::string("malformed ") + what + " record: " + e.what());
  }
  return std::move(*out);
}

}  // namespace orderflow::eventstore
