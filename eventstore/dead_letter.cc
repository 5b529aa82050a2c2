#include "eventstore/dead_letter.h"

#include <charconv>
#include <map>
#include <set>
#include <tuple>

#include "eventstore/topics.h"

namespace orderflow::eventstore {
namespace {

int64_t ToInt(std::string_view text) {
  int64_t v = 0;
  std::from_chars(text.data(), text.data() + text.size(), v);
  return v;
}

}  // namespace

DeadLetterRecord MakeDeadLetter(const Record& source, std::string_view service, std::string_view error,
                                int attempts, int64_t now_ms) {
  DeadLetterRecord out;
  out.key = std::string(source.key());
  out.value = std::string(source.value());
  for (Header& h : source.Headers()) {
    if (!h.name.starts_with("dlq-")) out.headers.push_back(std::move(h));
  }
  out.headers.push_back({kDlqError, std::string(error)});
  out.headers.push_back({kDlqService, std::string(service)});
  out.headers.push_back({kDlqSourceTopic, std::string(source.topic())});
  out.headers.push_back({kDlqSourcePartition, std::to_string(source.partition())});
  out.headers.push_back({kDlqSourceOffset, std::to_string(source.offset())});
  out.headers.push_back({kDlqAttempts, std::to_string(attempts)});
  out.headers.push_back({kDlqFailedAt, std::to_string(now_ms)});
  return out;
}

Result<std::vector<DeadLetter>> ReadDeadLetters(const KafkaConfig& config, std::chrono::milliseconds timeout) {
  auto reader = Reader::Create(config, "orderflow-dlq-reader");
  if (!reader.ok()) return reader.status();
  const TopicPartition tp{kDeadLetterTopic, 0};
  auto count = (*reader)->PartitionCount(kDeadLetterTopic, timeout);
  if (!count.ok()) return count.status();
  auto marks = (*reader)->QueryWatermarks(tp, timeout);
  if (!marks.ok()) return marks.status();
  std::vector<DeadLetter> out;
  std::map<int64_t, int64_t> redriven;  // dead letter id -> when
  // A consumer that crashed after parking a record parks it again on restart: keep the first.
  std::set<std::tuple<std::string, std::string, int32_t, int64_t>> seen;
  if (marks->high <= marks->low) return out;
  ORDERFLOW_RETURN_IF_ERROR((*reader)->Assign({{tp, marks->low}}));
  const auto deadline = config.clock->Now() + timeout;
  int64_t next = marks->low;
  while (next < marks->high) {
    if (config.clock->Now() > deadline) {
      return Status::Unavailable("reading " + std::string(kDeadLetterTopic) + " timed out at offset " +
                                 std::to_string(next) + " of " + std::to_string(marks->high));
    }
    auto records = (*reader)->Poll(1000, std::chrono::milliseconds(200));
    if (!records.ok()) return records.status();
    for (const Record& r : *records) {
      next = r.offset() + 1;
      if (auto of = r.HeaderValue(kDlqRedriveOf); !of.empty()) {
        redriven[ToInt(of)] = r.timestamp_ms();
        continue;
      }
      DeadLetter d;
      d.id = r.offset();
      d.service = std::string(r.HeaderValue(kDlqService));
      d.error = std::string(r.HeaderValue(kDlqError));
      d.source_topic = std::string(r.HeaderValue(kDlqSourceTopic));
      d.source_partition = static_cast<int32_t>(ToInt(r.HeaderValue(kDlqSourcePartition)));
      d.source_offset = ToInt(r.HeaderValue(kDlqSourceOffset));
      d.attempts = static_cast<int>(ToInt(r.HeaderValue(kDlqAttempts)));
      d.failed_at_ms = ToInt(r.HeaderValue(kDlqFailedAt));
      d.key = std::string(r.key());
      d.value = std::string(r.value());
      for (Header& h : r.Headers()) {
        if (!h.name.starts_with("dlq-")) d.headers.push_back(std::move(h));
      }
      if (!seen.insert({d.service, d.source_topic, d.source_partition, d.source_offset}).second) continue;
      out.push_back(std::move(d));
    }
  }
  for (DeadLetter& d : out) {
    if (auto it = redriven.find(d.id); it != redriven.end()) d.redriven_at_ms = it->second;
  }
  return out;
}

Result<RedriveResult> Redrive(const KafkaConfig& config, const std::vector<int64_t>& ids, bool force,
                              std::chrono::milliseconds timeout) {
  auto letters = ReadDeadLetters(config, timeout);
  if (!letters.ok()) return letters.status();
  std::map<int64_t, const DeadLetter*> by_id;
  for (const DeadLetter& d : *letters) by_id[d.id] = &d;
  std::vector<const DeadLetter*> chosen;
  if (ids.empty()) {
    for (const DeadLetter& d : *letters) {
      if (!d.redriven_at_ms || force) chosen.push_back(&d);
    }
  } else {
    for (int64_t id : ids) {
      auto it = by_id.find(id);
      if (it == by_id.end()) return Status::NotFound("no dead letter " + std::to_string(id) + " on orders.dlq");
      if (it->second->redriven_at_ms && !force) {
        return Status::FailedPrecondition("dead letter " + std::to_string(id) +
                                          " was already redriven; pass --force to send it again");
      }
      chosen.push_back(it->second);
    }
  }
  RedriveResult result;
  if (chosen.empty()) return result;
  auto producer = Producer::Create(config, "orderflow-dlq-redrive");
  if (!producer.ok()) return producer.status();
  // Several services may have parked the same source record: send it once.
  std::set<std::tuple<std::string, int32_t, int64_t>> sent;
  for (const DeadLetter* d : chosen) {
    if (!sent.insert({d->source_topic, d->source_partition, d->source_offset}).second) continue;
    std::vector<Header> headers = d->headers;
    headers.push_back({kRedrivenFrom, std::string(kDeadLetterTopic) + ":" + std::to_string(d->id)});
    ORDERFLOW_RETURN_IF_ERROR((*producer)->Append(d->source_topic, d->key, d->value, headers));
    ++result.appended;
  }
  // The records are in the log before any is marked: a crash in between
  // leaves them pending, and a second redrive is deduplicated by event id.
  ORDERFLOW_RETURN_IF_ERROR((*producer)->Flush(timeout));
  for (const DeadLetter* d : chosen) {
    ORDERFLOW_RETURN_IF_ERROR(
        (*producer)->Append(kDeadLetterTopic, "redrive", "", {{kDlqRedriveOf, std::to_string(d->id)}}));
    result.redriven.push_back(d->id);
  }
  ORDERFLOW_RETURN_IF_ERROR((*producer)->Flush(timeout));
  return result;
}

}  // namespace orderflow::eventstore
