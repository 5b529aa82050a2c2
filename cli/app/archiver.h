// The embedded broker keeps no data across restarts; `orderflow up` keeps its
// log in a local archive (eventstore/log_archive.h) instead: copied from the
// broker as records are appended (RunArchiver), put back into the fresh broker
// at start (RestoreArchive).
#pragma once

#include <stop_token>
#include <string>
#include <vector>

#include "domain/status.h"
#include "eventstore/kafka.h"
#include "eventstore/log_archive.h"
#include "eventstore/topics.h"

namespace orderflow::services {

// Copies every record of `topics` into `archive`, from where it ends, until
// `halt`. A full disk pauses it until there is room. Errors: those that
// retrying cannot cure. Runs on its own thread; `archive` outlives the call.
Status RunArchiver(const eventstore::KafkaConfig& kafka, const std::vector<eventstore::TopicSpec>& topics,
                   eventstore::LogArchive& archive, std::stop_token halt);

// Puts the archived log back into the (empty) embedded broker at `kafka`, each
// record at its partition and offset, before anything consumes. Errors:
// kFailedPrecondition when the store in `data_dir` holds state but there is
// no archive of its log; those of republishing, naming the archive.
Status RestoreArchive(const std::string& data_dir, const eventstore::KafkaConfig& kafka,
                      eventstore::LogArchive& archive);

}  // namespace orderflow::services
