// What the brokers acknowledged to this process's producers, for checking that
// a broker kept it: tests name a record the embedded broker acknowledged and
// then lost (tests/util/broker.h, LostAcknowledged), and that the real
// cluster lost none. Counted in the producers' delivery reports (kafka.cc).
#pragma once

#include <cstdint>
#include <map>

#include "eventstore/kafka.h"

namespace orderflow::eventstore {

// Off by default. TrackAcknowledged(config) starts counting the delivery
// reports of every Producer of this process for the cluster and topic prefix
// of `config`, from nothing (a new cluster may reuse an old one's ports).
// AcknowledgedEnds(config) gives, per partition, the offset after the highest
// record acknowledged there: the partition's high watermark must be at least
// that.
void TrackAcknowledged(const KafkaConfig& config);
std::map<TopicPartition, int64_t> AcknowledgedEnds(const KafkaConfig& config);

}  // namespace orderflow::eventstore
