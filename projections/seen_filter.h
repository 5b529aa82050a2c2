// SeenFilter: which order ids the bulk loader (bulk_load.cc) wrote in an
// earlier window, as a Bloom filter of fixed size; also the ids of the orders
// a snapshot holds, kept beside it (snapshot.h) so that a restore's tail asks
// the store only about orders that may be there. Internal to projections/.
// Thread safety: one thread adds and asks.
#pragma once

#include <xxhash.h>

#include <bit>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
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
  // snapshot without a filter of its orders never uses them.
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

  // The filter as bytes: a magic, the number of 64-byte blocks (be64), then
  // the bits as little-endian words. The same ids give the same bytes on
  // every build (the hash is XXH3's, not std::hash's), so a filter written by
  // one build answers for another.
  std::string Serialize() const {
    static_assert(std::endian::native == std::endian::little, "the words are written as they lie in memory");
    std::string out(kMagic, sizeof(kMagic) - 1);
    for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>((blocks_ >> shift) & 0xff));
    const size_t bytes = blocks_ * kWordsPerBlock * sizeof(uint64_t);
    if (words_.empty()) {
      out.append(bytes, '\0');
    } else {
      out.append(reinterpret_cast<const char*>(words_.data()), bytes);
    }
    return out;
  }
  // A filter from Serialize's bytes; nullopt when they are not a filter's
  // (another magic, a block count out of range, a size that does not match).
  static std::optional<SeenFilter> Parse(std::string_view bytes) {
    // A filter written elsewhere answers here only if XXH3 hashes an id as it
    // did there: a library that differed would say "no" for ids it holds.
    if (XXH3_64bits("order-1", 7) != 0x5fc46503368e2876ULL) return std::nullopt;
    const size_t header = sizeof(kMagic) - 1 + 8;
    if (bytes.size() < header || bytes.substr(0, sizeof(kMagic) - 1) != std::string_view(kMagic)) return std::nullopt;
    uint64_t blocks = 0;
    for (size_t i = sizeof(kMagic) - 1; i < header; ++i) blocks = blocks << 8 | static_cast<unsigned char>(bytes[i]);
    if (blocks == 0 || blocks > kMaxBytes / 64 || bytes.size() - header != blocks * 64) return std::nullopt;
    SeenFilter filter;
    filter.blocks_ = blocks;
    filter.words_.resize(blocks * kWordsPerBlock);
    std::memcpy(filter.words_.data(), bytes.data() + header, blocks * 64);
    return filter;
  }

 private:
  static constexpr char kMagic[] = "ofseen01";
  static constexpr uint64_t kWordsPerBlock = 8;  // 512 bits
  static constexpr uint64_t kProbes = 6;  // 9 bits each from a 64-bit hash
  // The first word of the id's block, and the hash its probes take bits from.
  std::pair<uint64_t, uint64_t> Probe(std::string_view id) const {
    const uint64_t h = XXH3_64bits(id.data(), id.size());
    return {(h % blocks_) * kWordsPerBlock, (h ^ (h >> 31)) * 0x9E3779B97F4A7C15ULL};
  }
  uint64_t blocks_ = kMaxBytes / 64;
  std::vector<uint64_t> words_;
};

}  // namespace orderflow::projections
