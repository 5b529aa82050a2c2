// GET /orders/{id}'s cache of rendered orders.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

#include "projections/store.h"
#include "services/api/reply.h"

namespace orderflow::services::api {

// The JSON of GET /orders/{id}, kept per order so that reading an unchanged
// order skips the Cap'n Proto decode and the JSON rendering (about half of
// such a request's CPU). An entry holds the stored record it was rendered
// from and the store's VisibleStamp() taken before that record was read. It
// is served as it is only while the stamp is unchanged, which proves no write
// became visible since (so the record read then is the record now); once the
// stamp moved, the order's record is read again and the entry is served only
// if its bytes are equal, else the order is rendered anew. So an answer is
// never older than a read of the store at the time of the request: a request
// whose ?min_position was reached sees that write, as without the cache.
// Thread safety: all methods may be called concurrently.
class OrderBodyCache {
 public:
  explicit OrderBodyCache(size_t capacity) : per_shard_((capacity + kShards - 1) / kShards) {}

  // How an answer was found, for /metrics.
  enum Outcome { kFresh, kRevalidated, kRendered, kOutcomeCount };

  // Puts the JSON of order `id` as the store holds it now in *body; refuses
  // with 404 for an unknown order and the store's error for a failed read.
  [[nodiscard]] Status Render(const projections::ProjectionStore& store, const std::string& id, std::string* body);

  uint64_t count(Outcome o) const { return counts_[o].load(std::memory_order_relaxed); }

 private:
  static constexpr size_t kShards = 16;  // concurrent readers rarely meet on one lock
  struct Entry {
    uint64_t stamp = 0;
    std::string record;
    std::string body;
  };
  struct Shard {
    std::mutex mu;
    std::unordered_map<std::string, Entry> entries;
  };

  Status Count(Outcome o) {
    counts_[o].fetch_add(1, std::memory_order_relaxed);
    return Status::Ok();
  }

  const size_t per_shard_;
  std::array<Shard, kShards> shards_;
  std::array<std::atomic<uint64_t>, kOutcomeCount> counts_{};
};

}  // namespace orderflow::services::api
