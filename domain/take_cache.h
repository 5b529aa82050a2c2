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
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>

namespace orderflow::domain {

template <typename Value>
class TakeCache {
 public:
  explicit TakeCache(size_t capacity) : capacity_(capacity) {}

  // The value of `id`, taken out of the cache; nullopt if it is not there.
  std::optional<Value> Take(const std::string& id) {
    auto it = values_.find(id);
    if (it == values_.end()) return std::nullopt;
    std::optional<Value> value(std::move(it->second.value));
    values_.erase(it);
    return value;
  }

  // Holds `value` as the newest for `id`, replacing what it held for it.
  void Put(const std::string& id, Value value) {
    if (capacity_ == 0) return;
    values_.insert_or_assign(id, Entry{std::move(value), ++puts_});
    arrival_.emplace_back(id, puts_);
    while (values_.size() > capacity_) {  // the oldest go
      if (Current(arrival_.front())) values_.erase(arrival_.front().first);
      arrival_.pop_front();
    }
    if (arrival_.size() > 2 * capacity_ + 64) {  // drop the stale entries (amortized: at most every capacity puts)
      std::erase_if(arrival_, [&](const auto& a) { return !Current(a); });
    }
  }

  void Clear() {
    values_.clear();
    arrival_.clear();
  }
  size_t size() const { return values_.size(); }

 private:
  struct Entry {
    Value value;
    uint64_t put = 0;  // which Put stored it
  };
  // Whether an arrival is the entry's latest Put (not taken or put again since).
  bool Current(const std::pair<std::string, uint64_t>& arrival) const {
    auto it = values_.find(arrival.first);
    return it != values_.end() && it->second.put == arrival.second;
  }

  size_t capacity_;
  uint64_t puts_ = 0;
  std::unordered_map<std::string, Entry> values_;
  std::deque<std::pair<std::string, uint64_t>> arrival_;  // (id, put) in order; stale once taken or put again
};

}  // namespace orderflow::domain
