#include "cli/app/projector_service.h"

#include <charconv>
#include <system_error>

#include "eventstore/topics.h"

namespace orderflow::services {

Result<std::unique_ptr<ProjectorService>> ProjectorService::Start(ProjectorServiceOptions options) {
  std::unique_ptr<ProjectorService> service(new ProjectorService());
  const std::string suffix = options.instance.empty() ? "" : "-" + options.instance;
  auto store = projections::ProjectionStore::Open(options.data_dir, {});
  if (!store.ok()) return store.status();
  service->store_ = std::move(store).value();
  eventstore::KafkaConfig reader_config = options.kafka;
  if (options.fetch_wait.count() > 0) {  // before the user's own settings, which win
    reader_config.overrides.insert(reader_config.overrides.begin(),
                                   {{"fetch.wait.max.ms", std::to_string(options.fetch_wait.count())},
                                    {"fetch.min.bytes", std::to_string(ProjectorServiceOptions::kBatchBytes)}});
  }
  auto reader = eventstore::Reader::Create(reader_config, "orderflow-projector" + suffix);
  if (!reader.ok()) return reader.status();
  service->reader_ = std::move(reader).value();
  // Its own producer: Flush reports the errors of everything appended through it.
  auto dead_letters = eventstore::Producer::Create(options.kafka, "orderflow-projector-dlq" + suffix);
  if (!dead_letters.ok()) return dead_letters.status();
  service->dead_letters_ = std::move(dead_letters).value();

  projections::ProjectorOptions popts;
  popts.topics = {eventstore::kOrdersTopic};
  popts.batch_size = options.batch_size;
  popts.dead_letters = service->dead_letters_.get();
  popts.commit_for_operators = true;
  popts.wait_durable = std::move(options.wait_durable);
  // The user's fetch.wait.max.ms (--kafka or the properties file; the last
  // one wins, as in the client's configuration) sets the interval too.
  popts.min_batch_interval = options.batch_interval;
  for (const auto& [key, value] : options.kafka.overrides) {
    if (key != "fetch.wait.max.ms") continue;
    int ms = 0;
    const auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), ms);
    if (error == std::errc() && end == value.data() + value.size() && ms >= 0) {
      popts.min_batch_interval = std::chrono::milliseconds(ms);
    }
  }
  service->projector_ = std::make_unique<projections::Projector>(*service->store_, *service->reader_, popts);
  ORDERFLOW_RETURN_IF_ERROR(service->projector_->Start());
  return service;
}

ProjectorService::~ProjectorService() = default;

Status ProjectorService::Run(std::stop_token stop) { return projector_->Run(stop); }

Status ProjectorService::RunUntilCaughtUp(std::stop_token stop) { return projector_->RunUntilCaughtUp(stop); }

}  // namespace orderflow::services
