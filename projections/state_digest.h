// StateDigest: the digest of a projection store's state, as a multiset hash.
//
// Each entry (family, key, value) hashes to 128 bits (XXH3 of the key and the
// value, each length-prefixed); a family's part is the entry count and the
// sum of its entries' hashes modulo 2^128; the digest is the SHA-256 of every
// state family's name, count and sum. A sum does not depend on the order in
// which entries are added, and an entry that is overwritten or deleted is
// taken out by subtracting its hash: so a rebuild computes the digest of the
// store it writes as it writes it, with no second pass over the store, and
// ProjectionStore::Digest() computes the same value by reading the store.
// It detects any difference between two states (a changed, missing or extra
// entry) except with probability about 2^-128; it is not meant to resist
// someone crafting entries to collide.
//
// Thread safety: none; give each thread its own and Merge them.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace orderflow::projections {

class StateDigest {
 public:
  // `family` is a projection family's index (store_layout.h's Family).
  void Add(int family, std::string_view key, std::string_view value) { Count(family, key, value, +1); }
  void Remove(int family, std::string_view key, std::string_view value) { Count(family, key, value, -1); }
  void Merge(const StateDigest& other);
  // Lowercase hex SHA-256 over the state families (meta is not state).
  std::string Hex() const;

  // The counts and sums as bytes (kept in the store's meta family, so a store
  // knows its digest without reading itself), and back; nullopt if `bytes`
  // is not such a value.
  std::string Serialize() const;
  static std::optional<StateDigest> Parse(std::string_view bytes);

 private:
  static constexpr int kFamilies = 8;
  void Count(int family, std::string_view key, std::string_view value, int sign);
  std::array<uint64_t, kFamilies> count_{};
  struct Sum {
    uint64_t high = 0, low = 0;  // modulo 2^128
    void Add(uint64_t h, uint64_t l) {
      low += l;
      high += h + (low < l ? 1 : 0);
    }
    void Subtract(uint64_t h, uint64_t l) {
      high -= h + (low < l ? 1 : 0);
      low -= l;
    }
  };
  std::array<Sum, kFamilies> sum_{};
  std::string scratch_;  // the length-prefixed key and value, hashed in one call
};

}  // namespace orderflow::projections
