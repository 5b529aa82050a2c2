#include "projections/bulk_load.h"

#include <rocksdb/write_batch.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <filesystem>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "eventstore/codec.h"
#include "projections/records_internal.h"
#include "projections/state_digest.h"
#include "projections/load_window.h"
#include "projections/seen_filter.h"
#include "projections/store_internal.h"

namespace orderflow::projections {
namespace {

// One record as the decoding thread leaves it for the worker.
struct Decoded {
  std::optional<domain::Event> event;  // empty: rejected
  size_t at = 0, size = 0;             // its history entry in the chunk's bytes
  std::string rejected_key, rejected_value;
};
// The records of one Add, with their history entries laid end to end in one
// buffer: one allocation per chunk instead of one per event (made on the
// decoding thread, freed by another: costly in pieces), freed in one piece
// once the window's history is written.
struct Chunk {
  std::vector<Decoded> records;
  std::unique_ptr<std::string> bytes;
};

}  // namespace

struct BulkLoader::Impl {
  // What an order's state takes in a window, about (its strings, lines and
  // applied ids, in the hash map): counted against BulkLoadOptions::window_bytes.
  static constexpr size_t kOrderBytes = 1024;
  ProjectionStore& store;
  ProjectionStore::Impl& db;  // the store's RocksDB handle and families
  BulkLoadOptions options;
  std::string work_dir;  // sorted files before they are ingested

  // Decoding side (the caller's thread).
  Offsets next;
  uint64_t records = 0;

  // The queue between the two threads.
  std::mutex mu;
  std::condition_variable changed;
  std::deque<Chunk> queue;
  bool closing = false;
  Status worker_status;  // the worker's first error (guarded by mu)
  std::thread worker;

  // Worker side: the window.
  // Folded into by the worker; when full it is sealed and written on other
  // threads while the next window fills. Up to kWindowsInFlight sealed windows
  // are written at once (their files in parallel, their ingests in order):
  // writing one window is most of a rebuild's work, and with one at a time the
  // fold waits on it.
  static constexpr size_t kWindowsInFlight = 2;
  // The last window written, kept to be filled again: a window's orders take
  // ~10 MiB, which jemalloc returns to the system as soon as they are freed
  // (a block that large), so a new one took a page fault per 4 KiB.
  std::unique_ptr<LoadWindow> spare;
  std::unique_ptr<LoadWindow> window = NewWindow();
  std::deque<std::unique_ptr<LoadWindow>> sealed;  // oldest first, not yet known to be in RocksDB
  std::deque<std::shared_future<Status>> writing;  // one per sealed window
  std::future<Status> history_writing;  // the window's history written ahead of it (FlushHistory)
  std::map<std::string, int64_t> analytics;  // every counter, for the whole rebuild
  SeenFilter seen;
  bool any_window_written = false;
  // Started on a store that holds state already (a restored snapshot): any
  // order may be in it, so LoadEarlier asks RocksDB for every new one, unless
  // the snapshot's filter of its orders (`stored`) says it is not there.
  bool started_on_state = false;
  std::optional<SeenFilter> stored;
  std::map<std::string, int64_t> analytics_at_start;  // the counters the store held then
  std::atomic<uint64_t> file_number{0};  // WriteFile runs on two threads at once (history beside the rest)
  // The digest of what the files hold once ingested (and Finish wrote).
  std::mutex digest_mu;
  StateDigest digest;
  // Counted by the worker, read by the caller for progress.
  std::atomic<uint64_t> applied{0}, duplicates{0}, rejected_records{0}, windows{0}, looked_up{0};
  bool finished = false;
  // Where the time goes (seconds), for the debug line at the end.
  double decode_s = 0, wait_s = 0, fold_s = 0, load_s = 0;
  std::atomic<double> write_s{0};
  double Since(std::chrono::steady_clock::time_point t) const {
    return std::chrono::duration<double>(options.clock->Now() - t).count();
  }

  Impl(ProjectionStore& s, ProjectionStore::Impl& d, const BulkLoadOptions& o)
      : store(s), db(d), options(o), work_dir(s.dir() + "/bulk-load") {}

  // A window sized for its limits (Fold makes room for each chunk past them).
  std::unique_ptr<LoadWindow> NewWindow() {
    std::unique_ptr<LoadWindow> w;
    if (spare) {
      w = std::move(spare);
      w->Clear();
    } else {
      w = std::make_unique<LoadWindow>();
    }
    const size_t orders = std::min(options.window_events, options.window_bytes / kOrderBytes + 1);
    w->orders.Reserve(orders);
    return w;
  }

  void Run() {
    for (;;) {
      Chunk chunk;
      {
        std::unique_lock lock(mu);
        changed.wait(lock, [&] { return !queue.empty() || closing; });
        if (queue.empty()) return;
        chunk = std::move(queue.front());
        queue.pop_front();
      }
      changed.notify_all();
      const auto t = options.clock->Now();
      Status s = Fold(chunk);
      fold_s += Since(t);
      if (!s.ok()) {
        {
          std::lock_guard lock(mu);
          if (worker_status.ok()) worker_status = s;
          queue.clear();
        }
        changed.notify_all();  // Add may be waiting for room in the queue
        return;
      }
    }
  }

  // Loads the orders of `chunk` that earlier windows wrote and this one does not hold yet.
  Status LoadEarlier(const std::vector<Decoded>& chunk) {
    if (!any_window_written) return Status::Ok();
    auto& orders = window->orders;
    std::vector<std::string> ids;
    for (const Decoded& d : chunk) {
      if (!d.event || orders.Find(d.event->order_id) != nullptr) continue;
      if (!MaybeWritten(d.event->order_id)) continue;
      // A sealed window may still be on its way into RocksDB: the newest that
      // holds the order has its latest state.
      bool in_sealed = false;
      for (auto w = sealed.rbegin(); w != sealed.rend() && !in_sealed; ++w) {
        const WindowOrder* earlier = (*w)->orders.Find(d.event->order_id);
        if (earlier == nullptr) continue;
        Loaded(earlier->id, earlier->state, internal::EncodeOrder(earlier->state));
        in_sealed = true;
      }
      if (!in_sealed) ids.push_back(d.event->order_id);
    }
    if (ids.empty()) return Status::Ok();
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    looked_up += ids.size();
    std::vector<rocksdb::Slice> keys(ids.begin(), ids.end());
    std::vector<rocksdb::PinnableSlice> values(keys.size());
    std::vector<rocksdb::Status> statuses(keys.size());
    db.db->MultiGet(rocksdb::ReadOptions(), db.cf(kOrders), keys.size(), keys.data(), values.data(), statuses.data(),
                    /*sorted_input=*/true);
    for (size_t i = 0; i < keys.size(); ++i) {
      if (statuses[i].IsNotFound()) continue;
      if (!statuses[i].ok()) return FromRocks(statuses[i], "read order " + ids[i]);
      auto state = internal::DecodeOrder(values[i].ToStringView());
      if (!state.ok()) return Status::Corruption("stored order " + ids[i] + ": " + state.status().message());
      Loaded(ids[i], std::move(state).value(), values[i].ToString());
    }
    return Status::Ok();
  }

  // Adds to the window an order an earlier window wrote (`stored`, its value
  // then): counted against the window's bytes as a new order is, with that value.
  void Loaded(std::string_view id, domain::OrderState state, std::string stored) {
    WindowOrder& loaded = *window->orders.FindOrAdd(id).first;
    loaded.state = std::move(state);
    loaded.initial_status = loaded.state.status;
    loaded.stored = std::move(stored);
    window->bytes += kOrderBytes + loaded.stored->size();
  }

  // Whether the store or a sealed window may hold `id`: an order of an earlier
  // window (the seen filter), or any order of a restored snapshot that its
  // filter does not rule out.
  bool MaybeWritten(const std::string& id) const {
    if (started_on_state && (!stored || stored->MaybeContains(id))) return true;
    return seen.MaybeContains(id);
  }

  // Applies a chunk exactly as ProjectionStore::Prepare does.
  Status Fold(Chunk& chunk) {
    const auto t = options.clock->Now();
    // Room for every order of the chunk: a window is sealed after the chunk
    // that filled it, so it holds up to a chunk's orders past its limits.
    window->orders.Reserve(window->orders.size() + chunk.records.size());
    ORDERFLOW_RETURN_IF_ERROR(LoadEarlier(chunk.records));
    load_s += Since(t);
    std::map<std::string, int64_t> delta;
    const char* bytes = chunk.bytes->data();
    for (Decoded& d : chunk.records) {
      if (!d.event) {
        window->bytes += d.rejected_value.size();
        window->rejected.emplace_back(std::move(d.rejected_key), std::move(d.rejected_value));
        ++rejected_records;
        continue;
      }
      domain::Event& event = *d.event;
      auto [order, inserted] = window->orders.FindOrAdd(event.order_id);
      if (inserted) {
        window->bytes += kOrderBytes;
        // Asked only for orders not in the window: from the next one on, this
        // order is in the store or a sealed window. On a snapshot without a
        // filter of its orders every order is looked up.
        if (!started_on_state || stored) seen.Add(event.order_id);
      }
      WindowOrder& loaded = *order;
      domain::OrderState& state = loaded.state;
      if (state.HasApplied(event.id)) {
        ++duplicates;
        continue;
      }
      const domain::OrderStatus status_before = state.status;
      domain::Apply(state, std::move(event));  // keeps what CountAnalytics reads: type and stamps
      loaded.dirty = true;
      ++applied;
      if (!std::holds_alternative<domain::OrderDelivered>(event.payload) || status_before != state.status) {
        CountAnalytics(event, state, delta);
      }
      window->history_bytes += d.size + 64;
      ++window->history_events;
      loaded.history.emplace_back(state.version, std::string_view(bytes + d.at, d.size));
      ++window->events;
    }
    window->history_buffers.push_back(std::move(chunk.bytes));  // the views stay put
    for (const auto& [k, v] : delta) {
      // Wrapping, as the batch path's counters (sums of honest events never wrap).
      auto& total = analytics[k];
      total = static_cast<int64_t>(static_cast<uint64_t>(total) + static_cast<uint64_t>(v));
    }
    if (window->events >= options.window_events || window->bytes >= options.window_bytes) return Seal();
    if (window->history_events >= options.history_events || window->history_bytes >= options.history_bytes) {
      return FlushHistory();
    }
    return Status::Ok();
  }

  // Writes `entries` as one file of `family` (WriteSortedFile) in the work
  // directory and returns its path, or "" when there is nothing to write.
  Result<std::string> WriteFile(Family family, FileEntries& entries) {
    if (entries.empty()) return std::string();
    const std::string path = work_dir + "/" + std::to_string(++file_number) + "-" + kFamilyNames[family] + ".sst";
    StateDigest written;
    ORDERFLOW_RETURN_IF_ERROR(WriteSortedFile(db.cf(family), family, path, entries, &written));
    std::lock_guard lock(digest_mu);
    digest.Merge(written);
    return path;
  }

  // Writes the history entries the window holds as a file of their own (on
  // another thread; one such file at a time) and ingests it. Their keys are
  // new, so the file's place among the others does not matter.
  Status FlushHistory() {
    ORDERFLOW_RETURN_IF_ERROR(WaitHistory());
    struct Taken {
      std::string id;
      std::vector<std::pair<uint32_t, std::string_view>> history;
    };
    struct AllTaken {
      std::vector<Taken> orders;
      std::vector<std::unique_ptr<std::string>> buffers;  // every entry the window held is in them
    };
    auto taken = std::make_shared<AllTaken>();
    for (WindowOrder& loaded : window->orders.all()) {
      if (loaded.history.empty()) continue;
      taken->orders.push_back({std::string(loaded.id), std::move(loaded.history)});
      loaded.history.clear();
    }
    taken->buffers = std::move(window->history_buffers);
    window->history_buffers.clear();
    window->history_events = window->history_bytes = 0;
    history_writing = std::async(std::launch::async, [this, taken]() -> Status {
      const auto started = options.clock->Now();
      KeyArena arena;
      FileEntries entries;
      const std::vector<Taken>& orders = taken->orders;
      for (size_t i : SortedByKey(orders.size(), [&](size_t i) -> const std::string& { return orders[i].id; })) {
        const Taken& t = orders[i];
        for (const auto& [version, value] : t.history) entries.push_back({arena.History(t.id, version), value});
      }
      auto path = WriteFile(kHistory, entries);
      if (!path.ok()) return path.status();
      if (path->empty()) return Status::Ok();
      rocksdb::IngestExternalFileOptions ingest;
      ingest.move_files = true;
      Status s = FromRocks(db.db->IngestExternalFile(db.cf(kHistory), {*path}, ingest), "ingest rebuilt history");
      write_s += Since(started);
      return s;
    });
    return Status::Ok();
  }
  Status WaitHistory() {
    if (!history_writing.valid()) return Status::Ok();
    return history_writing.get();
  }

  // Hands the window to a writing thread (once fewer than kWindowsInFlight
  // are being written); it ingests its files after the window before it.
  Status Seal() {
    while (writing.size() >= kWindowsInFlight) ORDERFLOW_RETURN_IF_ERROR(PopWritten());
    any_window_written = any_window_written || window->events > 0;  // an event applied: an order changed
    LoadWindow* w = window.get();
    std::shared_future<Status> before = writing.empty() ? std::shared_future<Status>() : writing.back();
    sealed.push_back(std::move(window));
    window = NewWindow();
    writing.push_back(std::async(std::launch::async, [this, w, before] {
                        Status s = WriteWindowFiles(*w, before);
                        if (s.ok()) ++windows;
                        return s;
                      }).share());
    return Status::Ok();
  }
  // Waits for the oldest sealed window to be in RocksDB and lets it go.
  Status PopWritten() {
    Status s = writing.front().get();
    writing.pop_front();
    spare = std::move(sealed.front());
    sealed.pop_front();
    return s;
  }
  Status WaitWritten() {
    Status first;
    while (!writing.empty()) {
      Status s = PopWritten();
      if (first.ok()) first = s;
    }
    return first;
  }
  // Lays out and writes the window's files on three threads: the orders (most
  // of the encoding), the history (most of the bytes) and the indexes; then,
  // once the window `before` it is in (a later window's entries must win),
  // ingests them together.
  Status WriteWindowFiles(const LoadWindow& w, const std::shared_future<Status>& before) {
    const auto t_window = options.clock->Now();
    WindowEntries laid;
    const std::vector<WindowOrderRef> changed = ChangedOrdersById(w);
    auto orders_file = std::async(std::launch::async, [&] {
      LayOutOrders(changed, &laid);
      {
        std::lock_guard lock(digest_mu);
        digest.Merge(laid.overwritten);
      }
      return WriteFile(kOrders, laid.orders);
    });
    auto history_file = std::async(std::launch::async, [&] {
      LayOutHistory(changed, &laid);
      return WriteFile(kHistory, laid.history);
    });
    LayOutIndexes(changed, w, &laid);
    std::vector<std::pair<Family, Result<std::string>>> written;
    const std::pair<Family, FileEntries*> files[] = {{kByStatus, &laid.by_status},
                                                     {kByCustomer, &laid.by_customer},
                                                     {kByTime, &laid.by_time},
                                                     {kRejected, &laid.rejected}};
    for (const auto& [family, entries] : files) written.emplace_back(family, WriteFile(family, *entries));
    written.emplace_back(kOrders, orders_file.get());
    written.emplace_back(kHistory, history_file.get());
    std::vector<rocksdb::IngestExternalFileArg> args;
    for (auto& [family, path] : written) {
      if (!path.ok()) return path.status();
      if (path->empty()) continue;
      rocksdb::IngestExternalFileArg arg;
      arg.column_family = db.cf(family);
      arg.external_files = {*path};
      arg.options.move_files = true;
      args.push_back(std::move(arg));
    }
    write_s += Since(t_window);  // not the wait for the window before
    if (before.valid()) ORDERFLOW_RETURN_IF_ERROR(before.get());
    const auto t_ingest = options.clock->Now();
    if (!args.empty()) ORDERFLOW_RETURN_IF_ERROR(FromRocks(db.db->IngestExternalFiles(args), "ingest rebuilt state"));
    spdlog::debug("bulk load window: {} orders, laid out and written {:.3f} s, ingest {:.3f} s", laid.orders.size(),
                  std::chrono::duration<double>(t_ingest - t_window).count(), Since(t_ingest));
    return Status::Ok();
  }
};

BulkLoader::BulkLoader(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

BulkLoader::~BulkLoader() {
  {
    std::lock_guard lock(impl_->mu);
    impl_->closing = true;
    impl_->queue.clear();
  }
  impl_->changed.notify_all();
  if (impl_->worker.joinable()) impl_->worker.join();
  for (auto& writing : impl_->writing) writing.wait();
  if (impl_->history_writing.valid()) impl_->history_writing.wait();
}

Result<std::unique_ptr<BulkLoader>> BulkLoader::Start(ProjectionStore& store, const BulkLoadOptions& options) {
  ProjectionStore::Impl& db = *store.impl_;
  if (!db.options.rebuild) return Status::FailedPrecondition("bulk load needs a store opened for a rebuild");
  auto impl = std::make_unique<Impl>(store, db, options);
  {
    std::lock_guard lock(db.cache_mu);  // the loader writes orders the batch path's cache may hold
    db.order_cache.Clear();
  }
  {
    std::lock_guard lock(db.offsets_mu);
    if (!db.digest) return Status::FailedPrecondition("bulk load needs a store opened for writing");
    impl->digest = *db.digest;
    if (!db.offsets.empty()) {
      // A restored snapshot: load its tail on top of it.
      impl->started_on_state = true;
      impl->any_window_written = true;
      impl->next = db.offsets;
      impl->analytics = db.analytics;
      impl->analytics_at_start = db.analytics;
      if (!options.stored_orders.empty()) {
        impl->stored = SeenFilter::Parse(options.stored_orders);
        if (!impl->stored) {
          spdlog::warn("bulk load: the snapshot's filter of its orders is not one; looking every new order up");
        }
      }
    }
  }
  impl->options.stored_orders = std::string();  // parsed: not kept twice
  std::error_code ec;
  std::filesystem::remove_all(impl->work_dir, ec);
  std::filesystem::create_directories(impl->work_dir, ec);
  if (ec) return Status::Internal("cannot create " + impl->work_dir + ": " + ec.message());
  // The store is marked unfinished already: ProjectionStore::Open did it for `rebuild`.
  std::unique_ptr<BulkLoader> loader(new BulkLoader(std::move(impl)));
  loader->impl_->worker = std::thread([l = loader->impl_.get()] { l->Run(); });
  return loader;
}

Status BulkLoader::Add(std::vector<eventstore::Record> records) {
  Impl& s = *impl_;
  const auto t0 = s.options.clock->Now();
  Chunk chunk;
  chunk.records.reserve(records.size());
  size_t bytes = 0;
  for (const eventstore::Record& record : records) bytes += record.value().size();
  chunk.bytes = std::make_unique<std::string>();
  chunk.bytes->reserve(bytes + records.size() * internal::kHistoryOverhead);
  int64_t* next = nullptr;  // s.next's entry for the partition of the records at hand (they come in runs)
  const eventstore::TopicPartition* at = nullptr;
  for (const eventstore::Record& record : records) {
    if (at == nullptr || at->partition != record.partition() || at->topic != record.topic()) {
      auto [it, inserted] = s.next.try_emplace({std::string(record.topic()), record.partition()}, 0);
      at = &it->first;
      next = &it->second;
    }
    if (record.offset() < *next) continue;  // a re-delivery
    *next = record.offset() + 1;
    ++s.records;
    Decoded d;
    auto event = eventstore::DecodeEvent(record.value());
    const std::string error = RejectionOf(record, event);
    if (!error.empty()) {
      spdlog::warn("{}[{}] offset {}: rejected record: {}", record.topic(), record.partition(), record.offset(), error);
      d.rejected_key = RejectedKey(record);
      d.rejected_value = internal::EncodeRejected(record, error);
    } else {
      d.at = chunk.bytes->size();
      internal::AppendHistory(chunk.bytes.get(), record, domain::EventTypeName(event->payload), event->schema_version);
      d.size = chunk.bytes->size() - d.at;
      d.event = std::move(event).value();
    }
    chunk.records.push_back(std::move(d));
  }
  const auto t1 = s.options.clock->Now();
  s.decode_s += std::chrono::duration<double>(t1 - t0).count();
  std::unique_lock lock(s.mu);
  // Two chunks in the queue at most: decoding waits for the worker, so memory stays bounded.
  s.changed.wait(lock, [&] { return s.queue.size() < 2 || !s.worker_status.ok(); });
  s.wait_s += s.Since(t1);
  if (!s.worker_status.ok()) return s.worker_status;
  s.queue.push_back(std::move(chunk));
  s.changed.notify_all();
  return Status::Ok();
}

Status BulkLoader::Finish(const Offsets& positions) {
  Impl& s = *impl_;
  if (s.finished) return Status::Ok();
  {
    std::lock_guard lock(s.mu);
    s.closing = true;
  }
  s.changed.notify_all();
  const auto t_join = s.options.clock->Now();
  if (s.worker.joinable()) s.worker.join();
  ORDERFLOW_RETURN_IF_ERROR(s.worker_status);
  const auto t_seal = s.options.clock->Now();
  ORDERFLOW_RETURN_IF_ERROR(s.Seal());
  ORDERFLOW_RETURN_IF_ERROR(s.WaitWritten());
  const auto t_history = s.options.clock->Now();
  ORDERFLOW_RETURN_IF_ERROR(s.WaitHistory());
  const auto t_sync = s.options.clock->Now();
  // Counters, offsets and the end of the rebuild in one synced write.
  rocksdb::WriteBatch batch;
  for (const auto& [k, v] : s.analytics) {
    if (auto before = s.analytics_at_start.find(k); before != s.analytics_at_start.end()) {
      s.digest.Remove(kAnalytics, k, CounterValue(before->second));
    }
    const std::string value = CounterValue(v);
    ORDERFLOW_RETURN_IF_ERROR(FromRocks(batch.Put(s.db.cf(kAnalytics), k, value), "batch"));
    s.digest.Add(kAnalytics, k, value);
  }
  Offsets offsets = s.next;
  for (const auto& [tp, position] : positions) offsets[tp] = std::max(offsets[tp], position);
  for (const auto& [tp, offset] : offsets) {
    if (offset <= 0) continue;
    std::string value;
    PutBE64(&value, static_cast<uint64_t>(offset));
    ORDERFLOW_RETURN_IF_ERROR(FromRocks(batch.Put(s.db.cf(kMeta), OffsetKey(tp), value), "batch"));
  }
  ORDERFLOW_RETURN_IF_ERROR(FromRocks(batch.Put(s.db.cf(kMeta), kDigestKey, s.digest.Serialize()), "batch"));
  rocksdb::WriteOptions sync;
  sync.sync = true;
  ORDERFLOW_RETURN_IF_ERROR(FromRocks(s.db.db->Write(sync, &batch), "finish the rebuild"));
  ORDERFLOW_RETURN_IF_ERROR(ClearRebuildMark(s.store.dir()));
  spdlog::debug("bulk load finish: the worker's last chunks {:.3f} s, the last window {:.3f} s, its history {:.3f} s, "
                "the synced end {:.3f} s", std::chrono::duration<double>(t_seal - t_join).count(),
                std::chrono::duration<double>(t_history - t_seal).count(),
                std::chrono::duration<double>(t_sync - t_history).count(), s.Since(t_sync));
  {
    std::lock_guard lock(s.db.offsets_mu);
    for (const auto& [tp, offset] : offsets) {
      if (offset > 0) s.db.offsets[tp] = offset;
    }
    s.db.analytics = s.analytics;
    s.db.digest = s.digest;
    ++s.db.commit_count;
  }
  std::error_code ec;
  std::filesystem::remove_all(s.work_dir, ec);
  s.finished = true;
  spdlog::debug("bulk load: decode {:.3f} s, waiting for the worker {:.3f} s; worker: fold {:.3f} s (of it loading "
                "earlier orders {:.3f} s, {} of them asked of the store), writing {} windows {:.3f} s",
                s.decode_s, s.wait_s, s.fold_s, s.load_s, s.looked_up.load(), s.windows.load(), s.write_s);
  return Status::Ok();
}

void BulkLoader::ExpectRecords(uint64_t records) {
  // The worker first touches the filter after the first Add hands it a chunk (under the queue's mutex).
  impl_->seen.SizeFor(records);
}

const Offsets& BulkLoader::next_offsets() const { return impl_->next; }

Result<std::string> BulkLoader::Digest() const {
  if (!impl_->finished) return Status::FailedPrecondition("the rebuild's digest is known once it is finished");
  return impl_->digest.Hex();
}

BulkLoadTotals BulkLoader::totals() const {
  BulkLoadTotals t;
  t.records = impl_->records;
  t.applied = impl_->applied.load();
  t.duplicates = impl_->duplicates.load();
  t.rejected = impl_->rejected_records.load();
  t.windows = impl_->windows.load();
  t.looked_up = impl_->looked_up.load();
  return t;
}

}  // namespace orderflow::projections
