#include "services/lifecycle/host_reactor.h"

#include <algorithm>
#include <utility>

namespace orderflow::services {
namespace {

// What one hosted reactor sees of the host's batch: its own name on what it
// emits, its own corner of the state.
class HostedContext final : public BatchContext {
 public:
  HostedContext(const std::string& name, BatchContext& host)
      : name_(name), prefix_(HostedStatePrefix(name)), host_(host) {}

  bool Emit(const std::string& topic, const domain::Event& cause, const std::string& aggregate_id,
            const std::string& tag, domain::EventPayload payload) override {
    return host_.EmitAs(name_, topic, cause, aggregate_id, tag, std::move(payload));
  }
  bool EmitAs(const std::string& producer, const std::string& topic, const domain::Event& cause,
              const std::string& aggregate_id, const std::string& tag, domain::EventPayload payload) override {
    return host_.EmitAs(producer, topic, cause, aggregate_id, tag, std::move(payload));
  }
  std::optional<std::string> Get(const std::string& key) override { return host_.Get(prefix_ + key); }
  void Put(const std::string& key, std::string value) override { host_.Put(prefix_ + key, std::move(value)); }
  void Delete(const std::string& key) override { host_.Delete(prefix_ + key); }
  int64_t now_ms() const override { return host_.now_ms(); }

 private:
  const std::string& name_;
  const std::string prefix_;
  BatchContext& host_;
};

class HostReactor final : public Reactor {
 public:
  explicit HostReactor(std::vector<HostedReactor> hosted) : hosted_(std::move(hosted)) {}

  void Load(const std::map<std::string, std::string>& state) override {
    for (HostedReactor& h : hosted_) {
      const std::string prefix = HostedStatePrefix(h.name);
      std::map<std::string, std::string> own;
      for (auto it = state.lower_bound(prefix); it != state.end() && it->first.starts_with(prefix); ++it) {
        own.emplace(it->first.substr(prefix.size()), it->second);
      }
      h.reactor->Load(own);
    }
  }

  bool Skips(std::string_view event_type) const override {
    return std::all_of(hosted_.begin(), hosted_.end(), [&](const HostedReactor& h) {
      return h.reactor->Skips(event_type);
    });
  }

  Status OnOrderEvent(const domain::Event& event, domain::OrderStatus before, const domain::OrderState& after,
                      BatchContext& ctx) override {
    const std::string_view type = domain::EventTypeName(event.payload);
    for (HostedReactor& h : hosted_) {
      if (h.reactor->Skips(type) || Excluded(h)) continue;  // as its own service would have
      HostedContext own(h.name, ctx);
      Status s = Attributed(h, [&] { return h.reactor->OnOrderEvent(event, before, after, own); });
      if (!s.ok()) return s;
    }
    return Status::Ok();
  }

  Status OnEvent(const std::string& topic, const domain::Event& event, BatchContext& ctx) override {
    for (HostedReactor& h : hosted_) {
      if (std::find(h.topics.begin(), h.topics.end(), topic) == h.topics.end() || Excluded(h)) continue;
      HostedContext own(h.name, ctx);
      Status s = Attributed(h, [&] { return h.reactor->OnEvent(topic, event, own); });
      if (!s.ok()) return s;
    }
    return Status::Ok();
  }

  void OnTick(BatchContext& ctx) override {
    for (HostedReactor& h : hosted_) {
      HostedContext own(h.name, ctx);
      h.reactor->OnTick(own);
    }
  }

  Status FlushSideEffects() override {
    for (HostedReactor& h : hosted_) {
      Status s = Attributed(h, [&] { return h.reactor->FlushSideEffects(); });
      if (!s.ok()) return s;
    }
    return Status::Ok();
  }

  void Stored() override {
    for (HostedReactor& h : hosted_) h.reactor->Stored();
  }

  std::string FailedIn() const override { return failed_in_; }
  bool Exclude(const std::vector<std::string>& names) override {
    excluded_ = names;
    return true;
  }

 private:
  // Runs one hosted reactor's handler; a failure (an error or an exception,
  // which the runner catches) is recorded as that reactor's.
  template <typename Handler>
  Status Attributed(const HostedReactor& h, Handler handler) {
    failed_in_.clear();  // a failure outside every handler (the runner's own) is nobody's here
    try {
      Status s = handler();
      if (!s.ok()) failed_in_ = h.name;
      return s;
    } catch (...) {
      failed_in_ = h.name;
      throw;
    }
  }

  bool Excluded(const HostedReactor& h) const {
    return std::find(excluded_.begin(), excluded_.end(), h.name) != excluded_.end();
  }

  std::vector<HostedReactor> hosted_;
  std::string failed_in_;
  std::vector<std::string> excluded_;  // Exclude: hosted reactors that parked the record at hand
};

}  // namespace

std::unique_ptr<Reactor> MakeHostReactor(std::vector<HostedReactor> hosted) {
  return std::make_unique<HostReactor>(std::move(hosted));
}

}  // namespace orderflow::services
