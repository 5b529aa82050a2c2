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

// Which order ids were written by an earlier window: a fixed-size blocked
// Bloom filter (16 MiB, so memory does not grow with the log; every probe of
// one id falls in one 64-byte line, so adding or asking costs one cache miss).
// A "maybe" is looked up in RocksDB; a "no" is a new order. More orders than
// the filter was sized for only make lookups more frequent, never wrong.
class SeenFilter {
 public:
  // The bits are allocated by the first Add: a loader started on a restored
  // snapshot never uses them.
  void Add(std::string_view id) {
    if (words_.empty()) words_.resize(kBlocks * kWordsPerBlock);
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
  static constexpr uint64_t kBlocks = (uint64_t{16} << 20) / 64;
  static constexpr uint64_t kProbes = 6;  // 9 bits each from a 64-bit hash
  // The first word of the id's block, and the hash its probes take bits from.
  static std::pair<uint64_t, uint64_t> Probe(std::string_view id) {
    const uint64_t h = std::hash<std::string_view>{}(id);
    return {(h % kBlocks) * kWordsPerBlock, (h ^ (h >> 31)) * 0x9E3779B97F4A7C15ULL};
  }
  std::vector<uint64_t> words_;
};

}  // namespace orderflow::projections
