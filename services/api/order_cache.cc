#include "services/api/order_cache.h"

#include "projections/order_record.h"
#include "projections/views.h"

namespace orderflow::services::api {

Status OrderBodyCache::Render(const projections::ProjectionStore& store, const std::string& id, std::string* body) {
  const uint64_t stamp = store.VisibleStamp();  // before the read it vouches for
  Shard& shard = shards_[std::hash<std::string>()(id) % kShards];
  if (stamp != 0 && per_shard_ > 0) {
    std::lock_guard lock(shard.mu);
    auto it = shard.entries.find(id);
    if (it != shard.entries.end() && it->second.stamp == stamp) {
      *body = it->second.body;
      return Count(kFresh);
    }
  }
  thread_local std::string record;  // scratch: keeps its capacity across requests
  auto found = store.GetOrderRecord(id, &record);
  if (!found.ok()) return found.status();
  if (!*found) return Status::NotFound("order " + id + " not found");
  if (per_shard_ > 0) {
    std::lock_guard lock(shard.mu);
    auto it = shard.entries.find(id);
    if (it != shard.entries.end() && it->second.record == record) {
      it->second.stamp = std::max(it->second.stamp, stamp);
      *body = it->second.body;
      return Count(kRevalidated);
    }
  }
  auto order = projections::DecodeOrderRecord(record);
  if (!order.ok()) return order.status();
  *body = projections::OrderJson(*order).dump();
  if (per_shard_ > 0) {
    std::lock_guard lock(shard.mu);
    auto it = shard.entries.find(id);
    if (it == shard.entries.end()) {
      if (shard.entries.size() >= per_shard_) shard.entries.erase(shard.entries.begin());
      it = shard.entries.emplace(id, Entry{}).first;
    }
    it->second = {stamp, record, *body};
  }
  return Count(kRendered);
}

}  // namespace orderflow::services::api
