// Corrupts a file in place: the byte at `offset` XOR 0x5a (tests of corrupt stores).
#pragma once

#include <filesystem>
#include <fstream>

namespace orderflow::testing {

inline void FlipByte(const std::filesystem::path& path, std::streamoff offset) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(offset);
  char c = 0;
  f.get(c);
  f.seekp(offset);
  f.put(static_cast<char>(c ^ 0x5a));
}

}  // namespace orderflow::testing
