// One Run of a lifecycle service (ServiceRunner::Run, runner.h): poll a batch
// from the consumers in priority order, hand it to the reactor, append its
// outputs and dead letters, then write state and offsets together; restart
// from the stored offsets after a retryable error. Without --exactly-once the
// next batch is polled, handled and appended while the broker acknowledges
// the previous one, which is stored after (Pending).
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include "eventstore/backoff.h"
#include "eventstore/codec.h"
#include "eventstore/dead_letter.h"
#include "eventstore/state_db.h"
#include "eventstore/topics.h"
#include "services/lifecycle/batch_context.h"
#include "services/lifecycle/outputs_index.h"
#include "services/lifecycle/runner.h"
#include "services/lifecycle/runner_internal.h"
#include "services/lifecycle/service_keys.h"
#include "services/lifecycle/stall_watchdog.h"

namespace orderflow::services {

using namespace store_keys;

namespace {

// A handler that fails this many times on one record gets it dead-lettered.
constexpr int kMaxAttempts = 3;

}  // namespace

// One Run of a service: poll a batch, handle it, commit it; each step a method.
// A step's retryable error restarts consumption from the stored offsets
// (Restart); any other error ends the run.
class ServiceRunner::Loop {
 public:
  Loop(ServiceRunner& runner, std::stop_token stop)
      : runner_(runner), options_(runner.options_), impl_(*runner.impl_), stop_(stop),
        watchdog_(*options_.clock, impl_.io.log_end),
        next_recommit_(options_.clock->Now() + std::chrono::seconds(5)) {
    impl_.before_revoke = [this] { BeforeRevoke(); };
  }
  ~Loop() { impl_.before_revoke = nullptr; }

  Status Run() {
    while (!stop_.stop_requested()) {
      if (impl_.readers.empty()) ORDERFLOW_RETURN_IF_ERROR(OpenReaders());
      Status polled = Poll();
      if (!polled.ok()) {
        records_.clear();  // before the consumers that own them go
        if (stop_.stop_requested()) break;  // nothing of this poll was handled; the stored offsets stand
        if (polled.code() == StatusCode::kOutOfRange || polled.code() == StatusCode::kNotFound) {
          if (auto problem = runner_.ConfirmLogProblem(polled)) {
            StoreBeforeExit();
            return Status(polled.code(), options_.name + ": " + *problem);
          }
        }
        ORDERFLOW_RETURN_IF_ERROR(Restart(polled));
        continue;
      }
      runner_.stats_.polls.fetch_add(1);
      if (Status stalled = CheckStalls(); !stalled.ok()) {
        runner_.stats_.stalls.fetch_add(1);
        ORDERFLOW_RETURN_IF_ERROR(Restart(stalled));  // the records are consumed again by the new consumers
        continue;
      }
      PublishOffsets(/*now=*/false);
      if (!records_.empty()) {
        // No side effect and no output while the store could not record them.
        if (Status room = impl_.store->HasRoom(); !room.ok()) {
          ORDERFLOW_RETURN_IF_ERROR(Restart(room));
          continue;
        }
      }
      Status handled = HandleBatch();
      if (handled.ok()) continue;
      if (handled.IsRetryable()) {
        ORDERFLOW_RETURN_IF_ERROR(Restart(handled));
        continue;
      }
      StoreBeforeExit();
      return handled;
    }
    StoreBeforeExit();
    PublishOffsets(/*now=*/true);
    return Status::Ok();
  }

 private:
  // The run ends: the batch in flight is stored if the broker has it all
  // (otherwise the next start handles it again).
  void StoreBeforeExit() {
    if (Status stored = StorePending(); !stored.ok()) {
      spdlog::warn("{} {}: {}; its batch is handled again on the next start", options_.name, options_.instance,
                   stored.ToString());
    }
  }

  // Where a batch's outputs landed and how many are still unacknowledged
  // (filled by delivery reports).
  struct Deliveries {
    std::mutex mu;
    std::map<eventstore::TopicPartition, int64_t> written_to;
    size_t outstanding = 0;
  };

  // A batch handled and appended whose outputs the broker has not
  // acknowledged yet: stored (StorePending) after the next batch is appended,
  // or before anything else touches the offsets. The next batch reads through
  // it (ServiceBatch's `behind`).
  struct Pending {
    std::unique_ptr<ServiceBatch> ctx;
    std::map<eventstore::TopicPartition, int64_t> next;
    std::shared_ptr<Deliveries> deliveries;
  };
  // The stored offsets, copied to the consumer groups for operators' tools
  // (`orderflow lag`): at most once a second while busy, so a batch does not
  // cost the broker an offset commit of its own, and at once on a clean stop.
  void PublishOffsets(bool now) {
    if (!offsets_to_publish_ || impl_.readers.empty()) return;
    const auto at = options_.clock->Now();
    if (!now && at < next_publish_) return;
    // A consumer not assigned yet (or in a rebalance) could not be told: again later.
    offsets_to_publish_ = !impl_.RecommitForOperators();
    next_publish_ = at + std::chrono::seconds(1);
  }

  // Drops the consumers (and with them any uncommitted progress), reloads the
  // committed state into the reactor and waits before consuming again.
  Status Restart(const Status& why) {
    // A batch appended before the failure is stored if the broker has it all;
    // otherwise it is handled again with the rest.
    if (Status stored = StorePending(); !stored.ok()) {
      spdlog::warn("{} {}: {}", options_.name, options_.instance, stored.ToString());
    }
    if (unsettled_) {
      // Outputs of a batch that was not stored may still be on their way: let
      // them land (or fail) before the outputs index is caught up again, so
      // that the batch handled again finds them there.
      Status settled = impl_.io.output->Flush(std::chrono::seconds(5));
      if (!settled.ok()) spdlog::warn("{} {}: {}", options_.name, options_.instance, settled.ToString());
      unsettled_ = false;
    }
    records_.clear();  // every Record of the failed batch goes before its consumer
    held_.clear();     // the new consumers' partitions are caught up again
    cache_.Clear();    // as the reactor's state, reloaded from the store
    const auto wait = backoff_.Next();
    spdlog::warn("{} {}: {}; resuming from stored offsets in {} ms", options_.name, options_.instance, why.ToString(),
                 wait.count());
    PublishOffsets(/*now=*/true);  // what was committed before the failure, while the consumers are there
    impl_.readers.clear();  // (their close revokes everything: nothing is pending by now)
    revoke_status_ = Status::Ok();  // this restart is what a failed BeforeRevoke asked for
    revoked_in_poll_ = false;
    {
      std::lock_guard lock(impl_.offsets_mu);
      impl_.assigned.clear();
    }
    ORDERFLOW_RETURN_IF_ERROR(impl_.LoadState());
    options_.clock->SleepFor(wait, stop_);
    return Status::Ok();
  }

  // One consumer per priority class, each starting at the stored offsets.
  Status OpenReaders() {
    for (size_t i = 0; i < options_.inputs.size(); ++i) {
      std::string group = ServiceGroupId(options_.name, i, options_.inputs.size());
      // The readers outlive this Loop (the runner owns them): capture the Impl.
      auto reader = impl_.io.open_input(
          i, group,
          [impl = &impl_](const eventstore::TopicPartition& tp) { return impl->StoredOffset(tp); },
          [impl = &impl_] {
            if (impl->before_revoke) impl->before_revoke();
          });
      if (!reader.ok()) return reader.status();
      impl_.readers.push_back(std::move(reader).value());
    }
    return Status::Ok();
  }

  // Polls the classes in priority order into records_ (the first with work
  // wins), then follows the assignment: a partition this instance did not
  // hold a moment ago gets the outputs index caught up before it is handled.
  Status Poll() {
    records_.clear();  // the previous batch, handled (or skipped) by now
    const auto poll_start = options_.clock->Now();
    for (size_t i = 0; i < impl_.readers.size(); ++i) {
      bool last = i + 1 == impl_.readers.size();
      // With a batch pending, no waiting: if nothing came, it is stored at once.
      const bool wait = last && !pending_;
      auto polled = impl_.readers[i]->Poll(options_.batch_size, wait ? options_.poll_timeout : std::chrono::milliseconds(0));
      if (!polled.ok()) return polled.status();
      if (!revoke_status_.ok()) {  // the batch pending is not stored: consumed again from the stored offsets
        records_.clear();
        return std::exchange(revoke_status_, Status::Ok());
      }
      if (!polled->empty()) {
        records_ = std::move(polled).value();
        break;  // a higher-priority class had work: drain it first
      }
    }
    std::vector<eventstore::TopicPartition> assigned;
    bool all = true;
    for (const auto& r : impl_.readers) {
      auto a = r->Assignment();
      all = all && !a.empty();
      assigned.insert(assigned.end(), a.begin(), a.end());
    }
    if (revoked_in_poll_) {
      // A record of a partition revoked inside this poll is the new owner's to handle.
      revoked_in_poll_ = false;
      const std::set<eventstore::TopicPartition> now(assigned.begin(), assigned.end());
      std::erase_if(records_, [&now](const eventstore::Record& r) {
        return !now.count(eventstore::TopicPartition{std::string(r.topic()), r.partition()});
      });
    }
    bool gained = false;
    for (const auto& tp : assigned) gained = gained || !held_.count(tp);
    if (gained) {
      ORDERFLOW_RETURN_IF_ERROR(IndexOutputs(options_, *impl_.store, runner_.stats_, stop_));
      held_ = std::set<eventstore::TopicPartition>(assigned.begin(), assigned.end());
    } else if (assigned.size() != held_.size()) {
      held_ = std::set<eventstore::TopicPartition>(assigned.begin(), assigned.end());  // partitions revoked
    }
    if (all) runner_.ready_.store(true);
    {
      std::lock_guard lock(impl_.offsets_mu);
      if (assigned != impl_.assigned) impl_.assigned = std::move(assigned);
    }
    process_start_ = options_.clock->Now();
    runner_.poll_us_ += std::chrono::duration_cast<std::chrono::microseconds>(process_start_ - poll_start).count();
    return Status::Ok();
  }

  Status CheckStalls() {
    std::vector<eventstore::TopicPartition> assigned;
    std::map<eventstore::TopicPartition, int64_t> stored;
    {
      std::lock_guard lock(impl_.offsets_mu);
      assigned = impl_.assigned;
      stored = impl_.offsets;
    }
    return watchdog_.Check(assigned, stored);
  }

  // Hands records_ to the reactor, then commits what it decided (nothing on an
  // idle tick).
  Status HandleBatch() {
    auto batch = std::make_unique<ServiceBatch>(options_.name, *impl_.db, options_.clock->WallMs(), cache_,
                                                pending_ ? pending_->ctx.get() : nullptr, impl_.legacy_outputs);
    ServiceBatch& ctx = *batch;
    std::map<eventstore::TopicPartition, int64_t> next;
    Status status = HandleRecords(ctx, next);
    impl_.reactor->OnTick(ctx);
    ctx.ForgetBehind();  // handled: nothing more is read
    if (status.ok()) status = ctx.status();
    ORDERFLOW_RETURN_IF_ERROR(status);  // Restart stores the batch pending, if it can
    if (next.empty() && ctx.outputs().empty() && ctx.dead_letters().empty()) {  // idle tick
      ORDERFLOW_RETURN_IF_ERROR(StorePending());
      if (records_.empty()) ORDERFLOW_RETURN_IF_ERROR(impl_.StepOverMarkers());
      if (options_.clock->Now() >= next_recommit_) {
        next_recommit_ = options_.clock->Now() + std::chrono::seconds(5);
        offsets_to_publish_ = true;  // again at rest: a commit sent during a rebalance was refused
        PublishOffsets(/*now=*/true);
      }
      return Status::Ok();
    }
    runner_.process_us_ +=
        std::chrono::duration_cast<std::chrono::microseconds>(options_.clock->Now() - process_start_).count();
    if (options_.exactly_once) {
      ORDERFLOW_RETURN_IF_ERROR(Commit(ctx, next));  // one transaction per batch, nothing in flight between
    } else {
      auto deliveries = std::make_shared<Deliveries>();
      Status appended = AppendFailed(Append(ctx, deliveries, /*wait=*/false));
      if (appended.ok()) appended = StorePending();
      if (!appended.ok()) {
        unsettled_ = true;  // some of its outputs may still be on their way
        return appended;
      }
      pending_ = Pending{std::move(batch), std::move(next), std::move(deliveries)};
    }
    backoff_.Reset();
    return Status::Ok();
  }

  // Decodes and applies each record not yet applied, advancing `next` past it.
  // Records that cannot be processed are dead-lettered in `ctx`; a handler
  // failure abandons the batch (retried until kMaxAttempts, then parked).
  Status HandleRecords(ServiceBatch& ctx, std::map<eventstore::TopicPartition, int64_t>& next) {
    ServiceStats& stats = runner_.stats_;
    for (const eventstore::Record& record : records_) {
      eventstore::TopicPartition tp{std::string(record.topic()), record.partition()};
      auto stored = next.count(tp) ? next[tp] : Handled(tp);
      if (record.offset() < stored) continue;
      next[tp] = record.offset() + 1;
      stats.events.fetch_add(1);
      if (tp.topic == eventstore::kOrdersTopic) {
        const std::string_view type = record.HeaderValue(eventstore::kHeaderEventType);
        if (!type.empty() && impl_.reactor->Skips(type)) {
          stats.skipped.fetch_add(1);
          continue;
        }
      }
      auto event = eventstore::DecodeEvent(record.value());
      if (!event.ok()) {
        stats.rejected.fetch_add(1);
        spdlog::warn("{}: {}[{}] offset {}: dead-lettered undecodable record: {}", options_.name, tp.topic,
                     tp.partition, record.offset(), event.status().ToString());
        ctx.DeadLetter(record, event.status().ToString(), 1);
        continue;
      }
      if (tp.topic == eventstore::kOrdersTopic && event->order_id != record.key()) {
        stats.rejected.fetch_add(1);
        ctx.DeadLetter(record, "record key '" + std::string(record.key()) + "' does not match the event's order id '" +
                                   event->order_id + "'",
                       1);
        continue;
      }
      // A record whose handler kept failing is parked, not applied: for the
      // whole service, or only for the hosted reactors that failed it.
      const auto failure_key = std::make_pair(tp, record.offset());
      std::vector<std::string> excluded;
      if (auto f = impl_.failures.find(failure_key); f != impl_.failures.end()) {
        Impl::Failure& failure = f->second;
        if (failure.attempts >= kMaxAttempts) {
          Impl::Attempts& last = failure;
          failure.parked.push_back(std::move(last));
          last = {};
        }
        bool whole = false;
        for (const Impl::Attempts& p : failure.parked) {
          spdlog::error("{}: {}[{}] offset {}: dead-lettered after {} failed attempts of {}: {}", options_.name,
                        tp.topic, tp.partition, record.offset(), p.attempts, p.service, p.error);
          ctx.DeadLetter(record, p.error, p.attempts, p.service);
          excluded.push_back(p.service);
          whole = whole || p.service == options_.name;
        }
        if (whole || !impl_.reactor->Exclude(excluded)) {
          impl_.reactor->Exclude({});
          stats.rejected.fetch_add(1);
          continue;
        }
      }
      bool in_reactor = false;
      std::optional<std::string> failed = Apply(tp, *event, ctx, in_reactor);
      if (!excluded.empty()) impl_.reactor->Exclude({});
      if (!ctx.status().ok()) return ctx.status();
      if (failed) {
        // The batch is abandoned (nothing of it is written) and consumed again
        // from the stored offsets; after kMaxAttempts the record is parked.
        Impl::Failure& failure = impl_.failures[failure_key];
        ++failure.attempts;
        failure.error = "handler failed: " + *failed;
        // Blamed on a hosted reactor only when it failed in its handler (one
        // left out is not called); otherwise it is the runner's own.
        failure.service = in_reactor ? impl_.reactor->FailedIn() : std::string();
        if (failure.service.empty()) failure.service = options_.name;
        return Status::Unavailable(tp.topic + "[" + std::to_string(tp.partition) + "] offset " +
                                   std::to_string(record.offset()) + ": " +
                                   (failure.service == options_.name ? "" : failure.service + ": ") + failure.error +
                                   " (attempt " + std::to_string(failure.attempts) + " of " +
                                   std::to_string(kMaxAttempts) + ")");
      }
    }
    return Status::Ok();
  }

  // Hands one decoded event to the reactor. Returns why the handler failed
  // (a Status it returned, or an exception escaping it: this is the one place a
  // reactor's exceptions are caught), nullopt when it succeeded.
  // `in_reactor` says whether it failed in the reactor's handler.
  std::optional<std::string> Apply(const eventstore::TopicPartition& tp, const domain::Event& event, ServiceBatch& ctx,
                                   bool& in_reactor) {
    try {
      if (tp.topic == eventstore::kOrdersTopic) {
        auto order = ctx.Order(event.order_id);
        if (!order.ok()) {
          ctx.SetStatus(order.status());
          return std::nullopt;
        }
        domain::OrderState& state = **order;
        if (state.HasApplied(event.id)) return std::nullopt;
        const domain::OrderStatus before = state.status;
        domain::Apply(state, event);
        in_reactor = true;
        if (Status failed = impl_.reactor->OnOrderEvent(event, before, state, ctx); !failed.ok()) {
          return failed.message();
        }
      } else {
        in_reactor = true;
        if (Status failed = impl_.reactor->OnEvent(tp.topic, event, ctx); !failed.ok()) return failed.message();
      }
    } catch (const std::exception& e) {
      return std::string(e.what());
    }
    return std::nullopt;
  }

  // Partitions are about to go to another instance, which resumes them from
  // its own store and catches its outputs index up from the log: the batch
  // pending is acknowledged and stored first, so that its outputs are there
  // to be found. If it cannot be, the poll fails (Restart).
  void BeforeRevoke() {
    revoked_in_poll_ = true;
    if (Status stored = StorePending(); !stored.ok() && revoke_status_.ok()) revoke_status_ = stored;
  }

  // The next offset of `tp` after the batches handled so far (the one
  // pending, or the stored offsets).
  int64_t Handled(const eventstore::TopicPartition& tp) const {
    if (pending_) {
      if (auto it = pending_->next.find(tp); it != pending_->next.end()) return it->second;
    }
    return impl_.StoredOffset(tp);
  }

  // Side effects, then outputs and dead letters acknowledged by the broker,
  // then (once the log is durable that far) state and offsets together.
  Status Commit(ServiceBatch& ctx, const std::map<eventstore::TopicPartition, int64_t>& next) {
    auto deliveries = std::make_shared<Deliveries>();
    ORDERFLOW_RETURN_IF_ERROR(AppendFailed(Append(ctx, deliveries, /*wait=*/true)));
    return Store(ctx, next, *deliveries);
  }

  // An append that failed commits nothing: the inputs are consumed again from
  // the stored offsets.
  Status AppendFailed(const Status& status) const {
    if (status.ok()) return status;
    if (status.code() == StatusCode::kInvalidArgument || status.code() == StatusCode::kInternal) {
      return Status(status.code(), options_.name + ": " + status.message());  // retrying cannot fix it
    }
    return status.IsRetryable() ? status : Status::Unavailable(status.message());
  }

  // Waits for the pending batch's outputs, then stores it. A failure drops
  // it: it is handled again from the stored offsets.
  Status StorePending() {
    if (!pending_) return Status::Ok();
    Pending p = std::move(*pending_);
    pending_.reset();
    const auto wait_start = options_.clock->Now();
    Status acknowledged = impl_.io.output->WaitForDeliveries(
        [d = p.deliveries] {
          std::lock_guard lock(d->mu);
          return d->outstanding == 0;
        },
        std::chrono::seconds(30));
    runner_.flush_us_ +=
        std::chrono::duration_cast<std::chrono::microseconds>(options_.clock->Now() - wait_start).count();
    if (!acknowledged.ok()) unsettled_ = true;
    ORDERFLOW_RETURN_IF_ERROR(AppendFailed(acknowledged));
    return Store(*p.ctx, p.next, *p.deliveries);
  }

  // State and offsets of a batch whose outputs the broker acknowledged, in
  // one write (once the log is durable that far).
  Status Store(ServiceBatch& ctx, const std::map<eventstore::TopicPartition, int64_t>& next, Deliveries& deliveries) {
    if (options_.wait_durable) {
      // Nothing counts as done until the log holds it durably: what this
      // batch consumed, and what it appended.
      std::map<eventstore::TopicPartition, int64_t> targets;
      {
        std::lock_guard lock(deliveries.mu);
        targets = deliveries.written_to;
      }
      for (const auto& [tp, offset] : next) targets[tp] = std::max(targets[tp], offset);
      Status durable = options_.wait_durable(targets);
      if (!durable.ok()) return durable.IsRetryable() ? durable : Status::Unavailable(durable.message());
    }
    rocksdb::WriteBatch batch;
    ctx.AddTo(batch);
    eventstore::PutPartitionValues(batch, impl_.db->DefaultColumnFamily(), kOffsetPrefix, next);
    // Disk full (or busy) is retryable: nothing of the batch is stored, and its
    // inputs are consumed again once writing works.
    ORDERFLOW_RETURN_IF_ERROR(impl_.store->Write(batch, "write state"));
    Committed(ctx, next);
    return Status::Ok();
  }

  // The batch's side effects, outputs and dead letters: appended and, with
  // `wait`, flushed (or committed as one transaction with --exactly-once);
  // without, StorePending waits for their delivery reports.
  Status Append(ServiceBatch& ctx, const std::shared_ptr<Deliveries>& deliveries, bool wait) {
    Status status = impl_.reactor->FlushSideEffects();
    const bool transaction = options_.exactly_once && !ctx.outputs().empty();
    if (status.ok() && transaction) status = impl_.io.output->BeginTransaction();
    const bool report = options_.wait_durable || !wait;
    auto report_to = [&](const std::string& topic) -> eventstore::DeliveryCallback {
      if (!report) return nullptr;
      {
        std::lock_guard lock(deliveries->mu);
        ++deliveries->outstanding;
      }
      return [deliveries, topic](const Status& s, eventstore::Position pos) {
        std::lock_guard lock(deliveries->mu);
        --deliveries->outstanding;
        if (!s.ok() || pos.offset < 0) return;  // the producer reports the error itself
        int64_t& end = deliveries->written_to[{topic, pos.partition}];
        end = std::max(end, pos.offset + 1);
      };
    };
    for (const auto& [topic, event] : ctx.outputs()) {
      if (!status.ok()) break;
      status = impl_.io.output->AppendEvent(topic, event, report_to(topic));
    }
    // Dead letters are waited for like outputs: the offsets about to commit
    // skip their records, so the parked copy must be durable first.
    for (const auto& d : ctx.dead_letters()) {
      if (!status.ok()) break;
      status = impl_.io.output->Append(eventstore::kDeadLetterTopic, d.key, d.value, d.headers,
                                      report_to(eventstore::kDeadLetterTopic));
    }
    const auto flush_start = options_.clock->Now();
    if (status.ok() && wait) {
      status = transaction ? impl_.io.output->CommitTransaction(std::chrono::seconds(30))
                           : impl_.io.output->Flush(std::chrono::seconds(30));
    }
    if (!status.ok() && transaction) {
      Status aborted = impl_.io.output->AbortTransaction(std::chrono::seconds(30));
      if (!aborted.ok()) spdlog::warn("{}: {}", options_.name, aborted.ToString());
    }
    const auto flush_took =
        std::chrono::duration_cast<std::chrono::microseconds>(options_.clock->Now() - flush_start).count();
    runner_.flush_us_ += flush_took;
    if (flush_took > 50000) {
      spdlog::debug("{}: slow flush: {} ms for {} outputs", options_.name, flush_took / 1000, ctx.outputs().size());
    }
    const ServiceStats& stats = runner_.stats_;
    if (stats.batches.load() % 1000 == 0) {
      spdlog::debug("{}: {} batches, {} events, poll {} ms, process {} ms, flush {} ms", options_.name,
                    stats.batches.load(), stats.events.load(), runner_.poll_us_ / 1000, runner_.process_us_ / 1000,
                    runner_.flush_us_ / 1000);
    }
    return status;
  }

  // After the state and offsets are stored: publish the offsets (to other
  // threads now, to the consumer groups soon: PublishOffsets), forget the
  // failures now behind them, count.
  void Committed(ServiceBatch& ctx, const std::map<eventstore::TopicPartition, int64_t>& next) {
    {
      std::lock_guard lock(impl_.offsets_mu);
      for (const auto& [tp, offset] : next) impl_.offsets[tp] = offset;
    }
    offsets_to_publish_ = true;
    ctx.Committed();  // its orders, as stored, stay in the cache
    impl_.reactor->Stored();
    std::erase_if(impl_.failures, [&](const auto& f) {
      auto it = impl_.offsets.find(f.first.first);
      return it != impl_.offsets.end() && it->second > f.first.second;
    });
    ServiceStats& stats = runner_.stats_;
    stats.batches.fetch_add(1);
    stats.outputs.fetch_add(ctx.outputs().size());
    stats.suppressed.fetch_add(ctx.suppressed());
    stats.dead_letters.fetch_add(ctx.dead_letters().size());
  }

  ServiceRunner& runner_;
  const ServiceOptions& options_;
  Impl& impl_;
  std::stop_token stop_;
  eventstore::Backoff backoff_{std::chrono::milliseconds(100), std::chrono::milliseconds(5000)};
  std::vector<eventstore::Record> records_;  // the batch being handled
  std::set<eventstore::TopicPartition> held_;  // input partitions held since their last outputs catch-up
  StallWatchdog watchdog_;
  std::chrono::steady_clock::time_point next_recommit_;
  std::chrono::steady_clock::time_point process_start_;
  // Committed order states: a few seconds of orders in flight at 1,000 orders/s.
  OrderCache cache_{4096};
  std::optional<Pending> pending_;  // appended, not stored yet
  bool unsettled_ = false;           // a batch appended and then dropped: outputs may be in flight
  Status revoke_status_;             // BeforeRevoke could not store the batch pending
  bool revoked_in_poll_ = false;     // BeforeRevoke ran in the poll under way
  bool offsets_to_publish_ = false;  // committed since the consumer groups last heard
  std::chrono::steady_clock::time_point next_publish_{};
};

Status ServiceRunner::Run(std::stop_token stop) {
  Status status;
  {
    Loop loop(*this, stop);
    status = loop.Run();
  }
  // The consumers close here, on the thread that ran the service, and side by
  // side: each may wait for its group coordinator (bounded, GroupReader), and
  // every service of `up` stops within its grace period. Nothing is pending
  // by now (the loop stored its batch), so their final revoke has no work.
  std::vector<std::unique_ptr<InputConsumer>> readers = std::move(impl_->readers);
  impl_->readers.clear();
  std::vector<std::thread> closing;
  for (size_t i = 1; i < readers.size(); ++i) {
    closing.emplace_back([reader = std::move(readers[i])]() mutable { reader.reset(); });
  }
  readers.clear();
  for (std::thread& t : closing) t.join();
  return status;
}

}  // namespace orderflow::services
