// The floor under any durable replay: a bare librdkafka consumer (as
// consume_baseline) that also keeps each record in RocksDB the cheapest way
// there is: one key per record (the record's key + offset), the record's bytes
// copied once, windows of 100,000 records sorted and written with
// SstFileWriter on a second thread, then ingested. No decoding, no folding, no
// indexes: orderflow's replay stores four keys per event and decodes every
// event, so its rate cannot pass this one. Used by docs/benchmarks.md to say
// what ratio the hardware allows.
//
//   replay_floor BROKERS TOPIC DIR
// Prints one JSON line: {"records":N,"seconds":S,"records_per_second":R}.
#include <rocksdb/db.h>
#include <rocksdb/sst_file_writer.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <future>
#include <string>
#include <vector>

#include "bench/bare_consumer.h"

namespace {

using Entry = std::pair<std::string, std::string>;

bool WriteWindow(rocksdb::DB* db, const std::string& dir, int n, std::vector<Entry> window) {
  std::sort(window.begin(), window.end(), [](const Entry& a, const Entry& b) { return a.first < b.first; });
  window.erase(std::unique(window.begin(), window.end(),
                           [](const Entry& a, const Entry& b) { return a.first == b.first; }),
               window.end());
  rocksdb::Options options;
  options.compression = rocksdb::kNoCompression;
  rocksdb::SstFileWriter writer(rocksdb::EnvOptions(), options);
  const std::string path = dir + "/w" + std::to_string(n) + ".sst";
  auto failed = [&](const rocksdb::Status& s) {
    if (!s.ok()) std::fprintf(stderr, "%s: %s\n", path.c_str(), s.ToString().c_str());
    return !s.ok();
  };
  if (failed(writer.Open(path))) return false;
  for (const auto& [k, v] : window) {
    if (failed(writer.Put(k, v))) return false;
  }
  if (failed(writer.Finish())) return false;
  rocksdb::IngestExternalFileOptions ingest;
  ingest.move_files = true;
  const rocksdb::Status s = db->IngestExternalFile({path}, ingest);
  if (!s.ok()) std::fprintf(stderr, "ingest %s: %s\n", path.c_str(), s.ToString().c_str());
  return s.ok();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: replay_floor BROKERS TOPIC DIR\n");
    return 2;
  }
  const std::string topic = argv[2], dir = argv[3];
  std::filesystem::create_directories(dir + "/files");
  rocksdb::Options db_options;
  db_options.create_if_missing = true;
  rocksdb::DB* db = nullptr;
  if (!rocksdb::DB::Open(db_options, dir + "/db", &db).ok()) {
    std::fprintf(stderr, "cannot open %s/db\n", dir.c_str());
    return 1;
  }
  BareConsumer consumer;
  if (!consumer.Open(argv[1], topic, "orderflow-bench-floor")) return 1;
  std::vector<rd_kafka_message_t*> buf(10000);
  int64_t seen = 0;
  std::vector<Entry> window;
  std::future<bool> writing;
  int windows = 0;
  bool ok = true;
  auto flush = [&] {
    if (writing.valid()) ok = writing.get() && ok;
    if (window.empty()) return;
    writing = std::async(std::launch::async, WriteWindow, db, dir + "/files", ++windows, std::move(window));
    window = {};
    window.reserve(100'000);
  };
  window.reserve(100'000);
  const auto start = std::chrono::steady_clock::now();
  while (seen < consumer.total) {
    const ssize_t n = rd_kafka_consume_batch_queue(consumer.queue, 100, buf.data(), buf.size());
    for (ssize_t i = 0; i < n; ++i) {
      const rd_kafka_message_t* m = buf[i];
      if (!m->err) {
        ++seen;
        std::string key(static_cast<const char*>(m->key), m->key_len);
        char offset[8];
        for (int b = 0; b < 8; ++b) offset[b] = static_cast<char>(static_cast<uint64_t>(m->offset) >> (56 - 8 * b));
        key.append(offset, 8);
        window.emplace_back(std::move(key), std::string(static_cast<const char*>(m->payload), m->len));
        if (window.size() >= 100'000) flush();
      }
      rd_kafka_message_destroy(buf[i]);
    }
  }
  flush();
  if (writing.valid()) ok = writing.get() && ok;
  rocksdb::WriteOptions sync;
  sync.sync = true;
  ok = db->Put(sync, "end", std::to_string(seen)).ok() && ok;
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("{\"records\":%lld,\"seconds\":%.3f,\"records_per_second\":%.0f,\"ok\":%s}\n",
              static_cast<long long>(seen), secs, seen / secs, ok ? "true" : "false");
  delete db;
  return ok ? 0 : 1;
}
