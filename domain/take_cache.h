// TakeCache: values by order id that a batch takes out instead of reading
// and decoding them from its store, and puts back once the batch is
// committed. A value is taken once: a batch that fails leaves nothing of
// itself behind, and the next reads the store. At most `capacity` values
// (0: none); once over, the oldest puts go first.
//
// Used for the committed order states of a lifecycle service (ServiceBatch)
// and of the projection store (ProjectionStore::Prepare).
//
// Thread safety: none; the owner serializes its calls.
#pragma once

#include <cstddef>
#include <list>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>

namespace orderflow::domain {

template <typename Value>
class TakeCache {
 public:
  explicit TakeCache(size_t capacity) : capacity_(capacity) {
    values_.reserve(capacity + 1);  // never rehashed: the arrival list's iterators stay valid
  }
  // A copy's arrival list would point into the original's map.
  TakeCache(const TakeCache&) = delete;
  TakeCache& operator=(const TakeCache&) = delete;
  TakeCache(TakeCache&&) = default;  // the nodes move with the map: the iterators stay valid
  TakeCache& operator=(TakeCache&&) = default;

  // The value of `id`, taken out of the cache; nullopt if it is not there.
  std::optional<Value> Take(const std::string& id) {
    auto it = values_.find(id);
    if (it == values_.end()) return std::nullopt;
    std::optional<Value> value(std::move(it->second.value));
    arrival_.erase(it->second.arrival);
    values_.erase(it);
    return value;
  }

  // Holds `value` as the newest for `id`, replacing what it held for it.
  void Put(const std::string& id, Value value) {
    if (capacity_ == 0) return;
    auto [it, inserted] = values_.try_emplace(id);
    if (inserted) {
      try {
        it->second.arrival = arrival_.insert(arrival_.end(), it);
      } catch (...) {
        values_.erase(it);
        throw;
      }
    } else {
      arrival_.splice(arrival_.end(), arrival_, it->second.arrival);  // now the newest
    }
    it->second.value = std::move(value);
    if (values_.size() > capacity_) {  // the oldest goes
      values_.erase(arrival_.front());
      arrival_.pop_front();
    }
  }

  void Clear() {
    arrival_.clear();
    values_.clear();
  }
  size_t size() const { return values_.size(); }

 private:
  struct Entry;
  using Map = std::unordered_map<std::string, Entry>;
  struct Entry {
    Value value;
    typename std::list<typename Map::iterator>::iterator arrival;  // its place in arrival_
  };

  size_t capacity_;
  Map values_;
  std::list<typename Map::iterator> arrival_;  // oldest Put first; one per value held
};

}  // namespace orderflow::domain
