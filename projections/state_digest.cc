#include "projections/state_digest.h"

#include <openssl/evp.h>
#include <xxhash.h>

#include <memory>

#include "domain/hex.h"
#include "projections/store_layout.h"

namespace orderflow::projections {

static_assert(kFamilyCount == 8, "StateDigest::kFamilies must match the families");

void StateDigest::Count(int family, std::string_view key, std::string_view value, int sign) {
  scratch_.clear();
  PutBE32(&scratch_, static_cast<uint32_t>(key.size()));
  scratch_.append(key);
  PutBE32(&scratch_, static_cast<uint32_t>(value.size()));
  scratch_.append(value);
  const XXH128_hash_t h = XXH3_128bits(scratch_.data(), scratch_.size());
  if (sign > 0) {
    sum_[family].Add(h.high64, h.low64);
    ++count_[family];
  } else {
    sum_[family].Subtract(h.high64, h.low64);
    --count_[family];
  }
}

void StateDigest::Merge(const StateDigest& other) {
  for (int f = 0; f < kFamilies; ++f) {
    sum_[f].Add(other.sum_[f].high, other.sum_[f].low);
    count_[f] += other.count_[f];
  }
}

std::string StateDigest::Serialize() const {
  std::string out;
  for (int f = 0; f < kFamilies; ++f) {
    PutBE64(&out, count_[f]);
    PutBE64(&out, sum_[f].high);
    PutBE64(&out, sum_[f].low);
  }
  return out;
}

std::optional<StateDigest> StateDigest::Parse(std::string_view bytes) {
  if (bytes.size() != kFamilies * 24) return std::nullopt;
  StateDigest d;
  for (int f = 0; f < kFamilies; ++f) {
    d.count_[f] = GetBE(bytes.substr(f * 24, 8));
    d.sum_[f].high = GetBE(bytes.substr(f * 24 + 8, 8));
    d.sum_[f].low = GetBE(bytes.substr(f * 24 + 16, 8));
  }
  return d;
}

std::string StateDigest::Hex() const {
  std::string input;
  for (Family f : kStateFamilies) {
    const std::string_view name = kFamilyNames[f];
    PutBE32(&input, static_cast<uint32_t>(name.size()));
    input.append(name);
    PutBE64(&input, count_[f]);
    PutBE64(&input, sum_[f].high);
    PutBE64(&input, sum_[f].low);
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  EVP_Digest(input.data(), input.size(), md, &md_len, EVP_sha256(), nullptr);
  return domain::HexEncode(std::string_view(reinterpret_cast<const char*>(md), md_len));
}

}  // namespace orderflow::projections
