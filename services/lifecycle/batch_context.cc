#include "services/lifecycle/batch_context.h"

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <vector>

#include "projections/order_record.h"
#include "services/lifecycle/service_keys.h"

namespace orderflow::services {

using eventstore::FromRocks;
using namespace store_keys;

bool ServiceBatch::EmitAs(const std::string& producer, const std::string& topic, const domain::Event& cause,
                          const std::string& aggregate_id, const std::string& tag, domain::EventPayload payload) {
  domain::Event e;
  e.id = domain::DeriveEventId(cause.id, producer + "/" + tag);
  if (InLog(aggregate_id, e.id)) {
    ++suppressed_;
    return false;
  }
  e.order_id = aggregate_id;
  e.occurred_at_ms = now_;
  e.causation_id = cause.id;
  e.correlation_id = cause.correlation_id == domain::EventId{} ? cause.id : cause.correlation_id;
  e.producer = producer;
  e.payload = std::move(payload);
  output_ids_.insert(e.id);
  outputs_.emplace_back(topic, std::move(e));
  return true;
}

std::optional<std::string> ServiceBatch::Get(const std::string& key) {
  auto it = writes_.find(key);
  if (it != writes_.end()) return it->second;
  if (behind_ != nullptr) {
    auto was = behind_->writes_.find(key);
    if (was != behind_->writes_.end()) return was->second;
  }
  std::string value;
  rocksdb::Status s = db_.Get(rocksdb::ReadOptions(), kStatePrefix + key, &value);
  if (s.ok()) return value;
  if (!s.IsNotFound() && status_.ok()) status_ = FromRocks(s, "read state");
  return std::nullopt;
}

bool ServiceBatch::InLog(const std::string& aggregate_id, const domain::EventId& id) {
  if (behind_ != nullptr && behind_->output_ids_.count(id)) return true;  // on its way to the log
  std::string ignored;
  rocksdb::Status st = db_.Get(rocksdb::ReadOptions(), OutputKey(aggregate_id, id), &ignored);
  if (st.IsNotFound() && legacy_outputs_) st = db_.Get(rocksdb::ReadOptions(), LegacyOutputKey(id), &ignored);
  if (st.ok()) return true;
  if (!st.IsNotFound() && status_.ok()) status_ = FromRocks(st, "read outputs index");
  return false;
}

Result<domain::OrderState*> ServiceBatch::Order(const std::string& id) {
  auto [it, inserted] = orders_.try_emplace(id);
  if (inserted) {
    if (behind_ != nullptr) {
      if (auto was = behind_->orders_.find(id); was != behind_->orders_.end()) {
        it->second = was->second;  // a copy: the batch behind stores its own
        return &it->second;
      }
    }
    if (auto cached = cache_.Take(id)) {
      it->second = std::move(*cached);
      return &it->second;
    }
    std::string bytes;
    rocksdb::Status s = db_.Get(rocksdb::ReadOptions(), kOrderPrefix + id, &bytes);
    if (s.ok()) {
      auto state = projections::DecodeOrderRecord(bytes);
      if (!state.ok()) return state.status();
      it->second = std::move(state).value();
    } else if (!s.IsNotFound()) {
      return FromRocks(s, "read order " + id);
    }
  }
  return &it->second;
}

void ServiceBatch::AddTo(rocksdb::WriteBatch& batch) const {
  // In key order (k/ < o/ < y/, each sorted): the store's memtable inserts a
  // key near the one before it cheaply (eventstore::TuneForPointLookups).
  for (const auto& [key, value] : writes_) {
    if (value) {
      batch.Put(kStatePrefix + key, *value).PermitUncheckedError();
    } else {
      batch.Delete(kStatePrefix + key).PermitUncheckedError();
    }
  }
  std::vector<const std::pair<const std::string, domain::OrderState>*> orders;
  orders.reserve(orders_.size());
  for (const auto& entry : orders_) orders.push_back(&entry);
  std::sort(orders.begin(), orders.end(), [](const auto* a, const auto* b) { return a->first < b->first; });
  for (const auto* entry : orders) {
    batch.Put(kOrderPrefix + entry->first, projections::EncodeOrderRecord(entry->second)).PermitUncheckedError();
  }
  std::vector<std::string> outputs;
  outputs.reserve(outputs_.size());
  for (const auto& [topic, e] : outputs_) outputs.push_back(OutputKey(e.order_id, e.id));
  std::sort(outputs.begin(), outputs.end());
  for (const auto& key : outputs) batch.Put(key, "").PermitUncheckedError();
}

void ServiceBatch::Committed() {
  for (auto& [id, state] : orders_) cache_.Put(id, std::move(state));
  orders_.clear();
}

}  // namespace orderflow::services
