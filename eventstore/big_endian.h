// Big-endian integers for RocksDB keys and values: byte order = numeric order,
// so offsets and sequence numbers sort correctly. Header-only, thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace orderflow::eventstore {

inline void PutBE32(std::string* out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out->push_back(static_cast<char>((v >> shift) & 0xff));
}

inline void PutBE64(std::string* out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out->push_back(static_cast<char>((v >> shift) & 0xff));
}

// Reads up to 8 bytes as one big-endian unsigned number.
inline uint64_t GetBE(std::string_view in) {
  uint64_t v = 0;
  for (char c : in) v = v << 8 | static_cast<uint8_t>(c);
  return v;
}

}  // namespace orderflow::eventstore
