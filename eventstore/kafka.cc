// The Record of kafka.h: a view of a librdkafka message it owns, or of copies
// (Record::Make), with its headers; and the deleter of librdkafka handles. The
// clients are kafka_producer.cc and kafka_reader.cc, their configuration
// kafka_conf.cc, librdkafka's errors and log lines kafka_errors.cc.
#include "eventstore/kafka.h"

#include <librdkafka/rdkafka.h>

#include <string>
#include <utility>
#include <vector>

namespace orderflow::eventstore {

void KafkaHandleDeleter::operator()(rd_kafka_s* rk) const {
  if (rk != nullptr) rd_kafka_destroy(rk);
}

namespace {
// Backing store of a Record built from copies.
struct OwnedRecord {
  std::string topic, key, value;
  std::vector<Header> headers;
};
}  // namespace

Record Record::Make(std::string topic, int32_t partition, int64_t offset, std::string key, std::string value,
                    std::vector<Header> headers, int64_t timestamp_ms) {
  auto* owned = new OwnedRecord{std::move(topic), std::move(key), std::move(value), std::move(headers)};
  Record r;
  r.owner_ = Owner(owned, [](void* p) { delete static_cast<OwnedRecord*>(p); });
  r.topic_ = owned->topic;
  r.key_ = owned->key;
  r.value_ = owned->value;
  r.partition_ = partition;
  r.offset_ = offset;
  r.timestamp_ms_ = timestamp_ms;
  return r;
}

std::string_view Record::HeaderValue(std::string_view name) const {
  if (!owner_) return {};
  if (owner_is_message_) {
    auto* m = static_cast<rd_kafka_message_t*>(owner_.get());
    rd_kafka_headers_t* hdrs = nullptr;
    if (rd_kafka_message_headers(m, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR) return {};
    const void* val = nullptr;
    size_t size = 0;
    std::string key(name);
    if (rd_kafka_header_get_last(hdrs, key.c_str(), &val, &size) != RD_KAFKA_RESP_ERR_NO_ERROR || !val) return {};
    return std::string_view(static_cast<const char*>(val), size);
  }
  const auto* owned = static_cast<const OwnedRecord*>(owner_.get());
  for (auto it = owned->headers.rbegin(); it != owned->headers.rend(); ++it) {
    if (it->name == name) return it->value;
  }
  return {};
}

std::vector<Header> Record::Headers() const {
  std::vector<Header> out;
  if (!owner_) return out;
  if (owner_is_message_) {
    auto* m = static_cast<rd_kafka_message_t*>(owner_.get());
    rd_kafka_headers_t* hdrs = nullptr;
    if (rd_kafka_message_headers(m, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR) return out;
    const char* name = nullptr;
    const void* val = nullptr;
    size_t size = 0;
    for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &val, &size) == RD_KAFKA_RESP_ERR_NO_ERROR; ++i) {
      out.push_back({name, val ? std::string(static_cast<const char*>(val), size) : std::string()});
    }
    return out;
  }
  return static_cast<const OwnedRecord*>(owner_.get())->headers;
}

}  // namespace orderflow::eventstore
