// SeenFilter: which order ids the bulk loader (bulk_load.cc) wrote in an
// earlier window, as a Bloom filter of fixed size. Internal to projections/.
// Thread safety: one thread adds and asks.
#pragma once

#include <cstdint>
#include <functional>
#include <string_view>
#include <utility>
#include <vector>

namespace orderflow::projections {

// Which order ids were written by an earlier window: a blocked Bloom filter of
// at most 16 MiB, so memory does not grow with the log (every probe of one id
// falls in one 64-byte line, so adding or asking costs one cache miss). A
// "maybe" is looked up in RocksDB; a "no" is a new order. More orders than the
// filter was sized for only make lookups more frequent, never wrong.
class SeenFilter {
 public:
  static constexpr uint64_t kMaxBytes = uint64_t{16} << 20;
  static constexpr uint64_t kMinBytes = uint64_t{1} << 20;

  // Before the first Add: sizes the filter for about `orders` ids (~32 bits
  // each, a power of two from 1 to 16 MiB). A smaller filter is zeroed
  // faster and stays in the caches: the 400k-order replay spent ~2 % less CPU
  // with 2 MiB than with 16.
  void SizeFor(uint64_t orders) {
    if (!words_.empty()) return;
    uint64_t bytes = kMinBytes;
    while (bytes < orders * 4 && bytes < kMaxBytes) bytes <<= 1;
    blocks_ = bytes / 64;
  }

  // The bits are allocated by the first Add: a loader started on a restored
  // snapshot never uses them.
  void Add(std::string_view id) {
    if (words_.empty()) words_.resize(blocks_ * kWordsPerBlock);
    const auto [block, h] = Probe(id);
    for (uint64_t i = 0; i < kProbes; ++i) {
      const uint64_t bit = (h >> (9 * i)) & 511;
      words_[block + bit / 64] |= uint64_t{1} << (bit % 64);
    }
  }
  bool MaybeContains(std::string_view id) const {
    if (words_.empty()) return false;
    const auto [block, h] = Probe(id);
    for (uint64_t i = 0; i < kProbes; ++i) {
      const uint64_t bit = (h >> (9 * i)) & 511;
      if ((words_[block + bit / 64] & (uint64_t{1} << (bit % 64))) == 0) return false;
    }
    return true;
  }

 private:
  static constexpr uint64_t kWordsPerBlock = 8;  // 512 bits
  static constexpr uint64_t kProbes = 6;  // 9 bits each from a 64-bit hash
  // The first word of the id's block, and the hash its probes take bits from.
  std::pair<uint64_t, uint64_t> Probe(std::string_view id) const {
    const uint64_t h = std::hash<std::string_view>{}(id);
    return {(h % blocks_) * kWordsPerBlock, (h ^ (h >> 31)) * 0x9E3779B97F4A7C15ULL};
  }
  uint64_t blocks_ = kMaxBytes / 64;
  std::vector<uint64_t> words_;
};

}  // namespace orderflow::projections
