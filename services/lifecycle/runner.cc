// ServiceRunner (runner.h): creating one (its store, reactor state and
// producer), its committed offsets and state as other threads read them, and
// telling a log that lost a stored offset from a broker that restarts. The
// loop of one Run is runner_loop.cc.
#include "services/lifecycle/runner.h"

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>
#include <spdlog/spdlog.h>

#include <mutex>
#include <utility>

#include "eventstore/big_endian.h"
#include "eventstore/state_db.h"
#include "eventstore/topics.h"
#include "services/lifecycle/runner_internal.h"
#include "services/lifecycle/service_keys.h"

namespace orderflow::services {

std::string ServiceGroupId(const std::string& name, size_t index, size_t classes) {
  return "orderflow-" + name + (classes > 1 ? "-" + std::to_string(index) : "");
}
using eventstore::BE64;
using eventstore::FromRocks;
using eventstore::GetBE;
using eventstore::PartitionKey;
using namespace store_keys;

Status ServiceRunner::Impl::StepOverMarkers() {
  rocksdb::WriteBatch batch;
  std::vector<std::vector<std::pair<eventstore::TopicPartition, int64_t>>> moved(readers.size());
  bool any = false;
  for (size_t i = 0; i < readers.size(); ++i) {
    for (const auto& [tp, position] : readers[i]->Positions()) {
      auto it = offsets.find(tp);
      if (position <= (it == offsets.end() ? 0 : it->second)) continue;
      batch.Put(OffsetKey(tp), BE64(position)).PermitUncheckedError();
      moved[i].emplace_back(tp, position);
      any = true;
    }
  }
  if (!any) return Status::Ok();
  ORDERFLOW_RETURN_IF_ERROR(store->Write(batch, "write offsets"));
  std::lock_guard lock(offsets_mu);
  for (size_t i = 0; i < readers.size(); ++i) {
    for (const auto& [tp, position] : moved[i]) offsets[tp] = position;
    readers[i]->CommitForOperators(moved[i]);
  }
  return Status::Ok();
}

bool ServiceRunner::Impl::RecommitForOperators() {
  std::lock_guard lock(offsets_mu);
  bool all = !readers.empty();
  for (auto& reader : readers) {
    const auto assignment = reader->Assignment();
    all = all && !assignment.empty();
    std::vector<std::pair<eventstore::TopicPartition, int64_t>> held;
    for (const auto& tp : assignment) {
      if (auto it = offsets.find(tp); it != offsets.end()) held.emplace_back(tp, it->second);
    }
    if (!held.empty()) reader->CommitForOperators(held);
  }
  return all;
}

Status ServiceRunner::Impl::LoadState() {
  std::map<std::string, std::string> state;
  std::lock_guard lock(offsets_mu);
  offsets.clear();
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek(kStatePrefix); it->Valid() && it->key().starts_with(kStatePrefix); it->Next()) {
    state.emplace(it->key().ToString().substr(sizeof(kStatePrefix) - 1), it->value().ToString());
  }
  ORDERFLOW_RETURN_IF_ERROR(FromRocks(it->status(), "read " + data_dir));
  auto stored = eventstore::ReadPartitionValues(*db, db->DefaultColumnFamily(), kOffsetPrefix, "offset");
  if (!stored.ok()) return stored.status();
  offsets = std::move(stored).value();
  reactor->Load(state);
  return Status::Ok();
}

ServiceRunner::ServiceRunner(ServiceOptions options, std::unique_ptr<Impl> impl)
    : options_(std::move(options)), impl_(std::move(impl)) {}

ServiceRunner::~ServiceRunner() {
  if (impl_) {
    impl_->readers.clear();
    impl_->io.output.reset();
    impl_->store.reset();
  }
}

Result<std::unique_ptr<ServiceRunner>> ServiceRunner::Create(ServiceOptions options, std::unique_ptr<Reactor> reactor) {
  auto io = MakeKafkaRunnerIo(options);
  if (!io.ok()) return io.status();
  return Create(std::move(options), std::move(reactor), std::move(io).value());
}

Result<std::unique_ptr<ServiceRunner>> ServiceRunner::Create(ServiceOptions options, std::unique_ptr<Reactor> reactor,
                                                             RunnerIo io) {
  auto impl = std::make_unique<Impl>();
  impl->io = std::move(io);
  impl->reactor = std::move(reactor);
  eventstore::StateDbOptions db_options;
  db_options.db.keep_log_file_num = 3;
  // Every output is looked up in the outputs index first (nearly always a
  // miss) and most orders are read from the store once; a 16 MiB memtable keeps
  // the skiplist searches short. Measured (docs/benchmarks.md): 60,000 orders at
  // 2,000/s, a fifth less CPU per order, and 2,000/s is sustained where it was not.
  eventstore::TuneForPointLookups(db_options.default_family, 16, 0.02);
  db_options.corruption_remedy = "this state is derived from the log: move " + options.data_dir +
                                 " aside and start the service again, it rebuilds its state from the log";
  auto store = eventstore::StateDb::Open(options.data_dir, options.name + " store", std::move(db_options));
  if (!store.ok()) return store.status();
  impl->store = std::move(store).value();
  impl->db = &impl->store->db();

  impl->data_dir = options.data_dir;
  {
    // Entries an earlier version wrote to the outputs index, under the event
    // id alone: looked up too as long as any is there.
    std::unique_ptr<rocksdb::Iterator> it(impl->db->NewIterator(rocksdb::ReadOptions()));
    it->Seek(kLegacyOutputPrefix);
    impl->legacy_outputs = it->Valid() && it->key().starts_with(kLegacyOutputPrefix);
    ORDERFLOW_RETURN_IF_ERROR(FromRocks(it->status(), "read " + options.data_dir));
  }
  ORDERFLOW_RETURN_IF_ERROR(impl->LoadState());
  return std::unique_ptr<ServiceRunner>(new ServiceRunner(std::move(options), std::move(impl)));
}

std::map<eventstore::TopicPartition, int64_t> ServiceRunner::committed_offsets() const {
  std::lock_guard lock(impl_->offsets_mu);
  return impl_->offsets;
}

Result<std::optional<std::string>> ServiceRunner::ReadState(const std::string& key) const {
  std::string value;
  rocksdb::Status s = impl_->db->Get(rocksdb::ReadOptions(), kStatePrefix + key, &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  ORDERFLOW_RETURN_IF_ERROR(FromRocks(s, "read " + impl_->data_dir));
  return std::optional<std::string>(std::move(value));
}

std::vector<eventstore::TopicPartition> ServiceRunner::assigned_partitions() const {
  std::lock_guard lock(impl_->offsets_mu);
  return impl_->assigned;
}

std::optional<std::string> ServiceRunner::ConfirmLogProblem(const Status& error) {
  const std::string remedy = "This service cannot resume: move " + options_.data_dir +
                             " aside and start it again to rebuild its state from the log's start; rebuild the "
                             "projections with `orderflow replay` or restore a snapshot";
  auto reader = eventstore::Reader::Create(options_.kafka, "orderflow-" + options_.name + "-bounds");
  if (!reader.ok()) return std::nullopt;
  for (const auto& inputs : options_.inputs) {
    for (const std::string& topic : inputs) {
      auto count = (*reader)->PartitionCount(topic, std::chrono::seconds(10));
      if (count.status().code() == StatusCode::kNotFound) {
        bool consumed = false;
        {
          std::lock_guard lock(impl_->offsets_mu);
          for (const auto& [tp, next] : impl_->offsets) consumed = consumed || (tp.topic == topic && next > 0);
        }
        if (consumed) {
          return error.message() + "; input topic " + eventstore::ClusterName(options_.kafka, topic) +
                 " no longer exists. " + remedy;
        }
        // Never consumed: the topics are not created yet. Wait for them.
        if (stats_.topic_waits.fetch_add(1) % 10 == 0) {
          spdlog::warn("{} {}: waiting for input topic {} to be created (`orderflow up --brokers ...` creates "
                       "orderflow's topics)",
                       options_.name, options_.instance, eventstore::ClusterName(options_.kafka, topic));
        }
        return std::nullopt;
      }
      if (!count.ok()) return std::nullopt;
      for (int32_t p = 0; p < *count; ++p) {
        const eventstore::TopicPartition tp{topic, p};
        auto w = (*reader)->QueryWatermarks(tp, std::chrono::seconds(10));
        if (!w.ok()) return std::nullopt;
        int64_t next = 0;
        {
          std::lock_guard lock(impl_->offsets_mu);
          if (auto it = impl_->offsets.find(tp); it != impl_->offsets.end()) next = it->second;
        }
        Status covered = eventstore::CheckLogCovers(tp, next, *w, options_.data_dir, remedy);
        if (!covered.ok()) return covered.message();
      }
    }
  }
  return std::nullopt;
}

}  // namespace orderflow::services
