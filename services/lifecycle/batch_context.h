// ServiceBatch: the BatchContext a lifecycle service's reactor sees while the
// runner handles one batch. Emitted outputs (dropped when the outputs index
// says they are in the log already), the reactor's key-value state and the
// order aggregates read through to the service's store, and dead letters are
// held until the runner appends the outputs and writes the rest with the
// batch's offsets (AddTo). One batch, one thread.
#pragma once

#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "domain/take_cache.h"
#include "eventstore/dead_letter.h"
#include "services/lifecycle/runner.h"

namespace rocksdb {
class DB;
class WriteBatch;
}  // namespace rocksdb

namespace orderflow::services {

// Order states as this instance last committed them, so that a batch does
// not read and decode them from its store again. Used by the loop's thread
// only. Only that loop writes the store, and each instance resumes every
// partition it is given from its own stored offsets, so a partition that
// moved to another instance and back leaves nothing stale here.
using OrderCache = domain::TakeCache<domain::OrderState>;

class ServiceBatch final : public BatchContext {
 public:
  // `cache` holds committed order states; Order() takes from it. `behind`,
  // when given, is the previous batch, handled and appended but not stored
  // yet: reads go through its orders, state and outputs first.
  // `legacy_outputs`: the store holds outputs index entries of a version
  // before they were kept under their aggregate (store_keys::LegacyOutputKey).
  ServiceBatch(const std::string& service, rocksdb::DB& db, int64_t now, OrderCache& cache,
               const ServiceBatch* behind = nullptr, bool legacy_outputs = false)
      : service_(service), db_(db), now_(now), cache_(cache), behind_(behind), legacy_outputs_(legacy_outputs) {}
  // The batch behind is stored (or dropped): read the store and cache only.
  void ForgetBehind() { behind_ = nullptr; }

  bool Emit(const std::string& topic, const domain::Event& cause, const std::string& aggregate_id,
            const std::string& tag, domain::EventPayload payload) override {
    return EmitAs(service_, topic, cause, aggregate_id, tag, std::move(payload));
  }
  bool EmitAs(const std::string& producer, const std::string& topic, const domain::Event& cause,
              const std::string& aggregate_id, const std::string& tag, domain::EventPayload payload) override;
  std::optional<std::string> Get(const std::string& key) override;
  void Put(const std::string& key, std::string value) override { writes_[key] = std::move(value); }
  void Delete(const std::string& key) override { writes_[key] = std::nullopt; }
  int64_t now_ms() const override { return now_; }

  // Outputs not appended because the log already had them.
  uint64_t suppressed() const { return suppressed_; }
  // Records an error that abandons the batch (the first one wins).
  void SetStatus(Status s) {
    if (status_.ok()) status_ = std::move(s);
  }
  // Whether the outputs index holds `id`, an output of this service about
  // `aggregate_id`, already in the log (or the batch behind appends it).
  bool InLog(const std::string& aggregate_id, const domain::EventId& id);
  // The order aggregate, loaded once per batch.
  Result<domain::OrderState*> Order(const std::string& id);
  // Parks `record` on orders.dlq with this batch's outputs, in the name of
  // `service` (a reactor the service hosts; default: the service).
  void DeadLetter(const eventstore::Record& record, const std::string& error, int attempts,
                  const std::string& service = {}) {
    dead_letters_.push_back(eventstore::MakeDeadLetter(record, service.empty() ? service_ : service, error, attempts, now_));
  }

  const std::vector<std::pair<std::string, domain::Event>>& outputs() const { return outputs_; }
  const std::vector<eventstore::DeadLetterRecord>& dead_letters() const { return dead_letters_; }
  const Status& status() const { return status_; }

  // Adds the outputs (in the log by now: flushed before the batch commits) to
  // the outputs index, and the orders and state written, to `batch`.
  void AddTo(rocksdb::WriteBatch& batch) const;
  // Once the batch is stored: its orders, as committed, go to the cache.
  void Committed();

 private:
  const std::string& service_;
  rocksdb::DB& db_;
  int64_t now_;
  OrderCache& cache_;
  const ServiceBatch* behind_;
  bool legacy_outputs_;
  std::vector<std::pair<std::string, domain::Event>> outputs_;
  // Event ids are UUIDs whose last eight bytes are a hash's (v5) or random
  // (v7): they hash them. (An ordered set's compares were 1.5 % of the
  // lifecycle's CPU at 3,500 orders/s.)
  struct LastBytesHash {
    size_t operator()(const domain::EventId& id) const {
      uint64_t h;
      std::memcpy(&h, id.data() + 8, sizeof h);
      return static_cast<size_t>(h);
    }
  };
  std::unordered_set<domain::EventId, LastBytesHash> output_ids_;  // of outputs_, for the batch after
  std::vector<eventstore::DeadLetterRecord> dead_letters_;
  std::map<std::string, std::optional<std::string>> writes_;
  std::unordered_map<std::string, domain::OrderState> orders_;
  uint64_t suppressed_ = 0;
  Status status_;
};

}  // namespace orderflow::services
