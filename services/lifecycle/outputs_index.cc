#include "services/lifecycle/outputs_index.h"

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "eventstore/codec.h"
#include "services/lifecycle/service_keys.h"

namespace orderflow::services {

using eventstore::FromRocks;
using eventstore::GetBE;
using eventstore::PartitionKey;
using namespace store_keys;

Status IndexOutputs(const ServiceOptions& options, eventstore::StateDb& store, ServiceStats& stats,
                    std::stop_token stop) {
  rocksdb::DB* db = &store.db();
  if (options.outputs.empty()) return Status::Ok();
  const auto started = options.clock->Now();
  auto reader = eventstore::Reader::Create(options.kafka, "orderflow-" + options.name + "-catchup");
  if (!reader.ok()) return reader.status();
  std::vector<std::pair<eventstore::TopicPartition, int64_t>> positions;
  std::vector<eventstore::TopicPartition> reading;
  std::map<eventstore::TopicPartition, int64_t> ends;
  auto listed = (*reader)->Partitions(options.outputs, std::chrono::seconds(10));
  if (!listed.ok()) return listed.status();
  const std::vector<eventstore::TopicPartition>& outputs = *listed;
  auto marks = (*reader)->QueryWatermarks(outputs, std::chrono::seconds(10));
  if (!marks.ok()) return marks.status();
  for (size_t i = 0; i < outputs.size(); ++i) {
    const eventstore::TopicPartition& tp = outputs[i];
    const eventstore::Watermarks& w = (*marks)[i];
    int64_t from = 0;
    std::string value;
    rocksdb::Status st = db->Get(rocksdb::ReadOptions(), PartitionKey(kOutputIndexPrefix, tp), &value);
    if (st.ok() && value.size() == 8) from = static_cast<int64_t>(GetBE(value));
    if (!st.ok() && !st.IsNotFound()) return FromRocks(st, "read outputs index");
    from = std::max(from, w.low);
    if (w.high <= from) continue;
    positions.emplace_back(tp, from);
    reading.push_back(tp);
    ends[tp] = w.high;
  }
  if (positions.empty()) return Status::Ok();
  ORDERFLOW_RETURN_IF_ERROR((*reader)->Assign(positions));
  const std::vector<std::string> producers = options.producers.empty() ? std::vector{options.name} : options.producers;
  auto own = [&](const std::string& producer) {
    return std::find(producers.begin(), producers.end(), producer) != producers.end();
  };
  rocksdb::WriteBatch batch;
  uint64_t records = 0, found = 0;
  // Where each partition is read to: stored with the index entries every
  // kSaveEvery records, so a catch-up cut short (the deadline, a stop, a
  // crash) resumes there rather than from where the last one finished.
  constexpr uint64_t kSaveEvery = 200'000;
  std::map<eventstore::TopicPartition, int64_t> reached;
  const auto deadline = started + std::chrono::minutes(5);
  auto save = [&] {  // what was read so far, with where it was read to
    eventstore::PutPartitionValues(batch, db->DefaultColumnFamily(), kOutputIndexPrefix, reached);
    Status written = store.Write(batch, "write outputs index");
    batch.Clear();
    return written;
  };
  for (;;) {
    if (stop.stop_requested()) {
      (void)save();  // the next catch-up resumes there (a failure here only costs it a longer read)
      return Status::Unavailable(options.name + ": stopping before its outputs were indexed");
    }
    auto polled = (*reader)->Poll(10000, std::chrono::milliseconds(100), /*fill=*/false);
    if (!polled.ok()) return polled.status();
    for (const eventstore::Record& r : *polled) {
      eventstore::TopicPartition tp{std::string(r.topic()), r.partition()};
      if (r.offset() >= ends[tp]) continue;
      ++records;
      auto event = eventstore::DecodeEvent(r.value());
      if (event.ok() && own(event->producer)) {
        batch.Put(OutputKey(event->order_id, event->id), "").PermitUncheckedError();
        ++found;
      }
      reached[tp] = r.offset() + 1;  // this record's entry is in the batch
      if (records % kSaveEvery == 0) ORDERFLOW_RETURN_IF_ERROR(save());
    }
    if (polled->empty()) {
      bool done = true;
      for (const auto& [tp, position] : (*reader)->Positions(reading)) done = done && position >= ends[tp];
      if (done) break;
    }
    if (options.clock->Now() > deadline) {
      (void)save();
      return Status::Unavailable(options.name + ": indexing its outputs took longer than 5 minutes");
    }
  }
  eventstore::PutPartitionValues(batch, db->DefaultColumnFamily(), kOutputIndexPrefix, ends);
  ORDERFLOW_RETURN_IF_ERROR(store.Write(batch, "write outputs index"));
  stats.catch_ups.fetch_add(1);
  stats.indexed.fetch_add(found);
  spdlog::info("{} {}: caught up with its outputs: {} records read, {} of its outputs indexed, {} ms", options.name,
               options.instance, records, found,
               std::chrono::duration_cast<std::chrono::milliseconds>(options.clock->Now() - started).count());
  return Status::Ok();
}

}  // namespace orderflow::services
