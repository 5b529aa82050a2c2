// Dead letters: records a consumer could not process, parked on orders.dlq
// with headers naming the error, the source topic/partition/offset, the
// service and the attempts, so the consumer can move on. Redrive appends such
// a record to its source topic again; consumers then decode it (upcasters
// included) and handle it like any record, and event-id dedupe keeps a
// redriven event from being applied twice.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "domain/status.h"
#include "eventstore/kafka.h"

namespace orderflow::eventstore {

inline constexpr char kDlqError[] = "dlq-error";
inline constexpr char kDlqService[] = "dlq-service";
inline constexpr char kDlqSourceTopic[] = "dlq-source-topic";
inline constexpr char kDlqSourcePartition[] = "dlq-source-partition";
inline constexpr char kDlqSourceOffset[] = "dlq-source-offset";
inline constexpr char kDlqAttempts[] = "dlq-attempts";
inline constexpr char kDlqFailedAt[] = "dlq-failed-at";
inline constexpr char kDlqRedriveOf[] = "dlq-redrive-of";  // on a marker record: the dead letter's id
inline constexpr char kRedrivenFrom[] = "redriven-from";   // on a redriven record: "orders.dlq:<id>"

// The orders.dlq record for `source`, which `service` failed to process.
struct DeadLetterRecord {
  std::string key;
  std::string value;
  std::vector<Header> headers;
};
DeadLetterRecord MakeDeadLetter(const Record& source, std::string_view service, std::string_view error,
                                int attempts, int64_t now_ms);

struct DeadLetter {
  int64_t id = 0;  // its offset in orders.dlq (one partition)
  std::string service;
  std::string error;
  std::string source_topic;
  int32_t source_partition = 0;
  int64_t source_offset = 0;
  int attempts = 0;
  int64_t failed_at_ms = 0;
  std::string key;               // the source record's key
  std::string value;             // and value, as they were
  std::vector<Header> headers;   // its own headers (without the dlq-* ones)
  std::optional<int64_t> redriven_at_ms;
};

// Every dead letter on orders.dlq, oldest first, with its redrive state.
// Errors: kNotFound if the topic does not exist, kUnavailable on timeout.
Result<std::vector<DeadLetter>> ReadDeadLetters(const KafkaConfig& config, std::chrono::milliseconds timeout);

struct RedriveResult {
  std::vector<int64_t> redriven;  // dead letter ids marked redriven
  size_t appended = 0;            // records appended to their source topics (one per source position)
};

// Appends the record of each dead letter in `ids` (all pending ones if empty)
// to its source topic again, once per source position, then marks them
// redriven. Ids already redriven are refused unless `force`.
// Errors: kNotFound for an unknown id, kFailedPrecondition for one already redriven.
Result<RedriveResult> Redrive(const KafkaConfig& config, const std::vector<int64_t>& ids, bool force,
                              std::chrono::milliseconds timeout);

}  // namespace orderflow::eventstore
