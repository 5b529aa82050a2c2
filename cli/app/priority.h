// Scheduling priority of the threads that process events, below the threads
// that answer queries (`orderflow up --services-nice`).
#pragma once

#include <functional>

#include "domain/status.h"

namespace orderflow::services {

// Sets the calling thread's nice value to `nice` (0 to 19; 0 does nothing).
// Threads it creates afterwards inherit it: librdkafka's broker and main
// threads of the clients it creates, the embedded broker's. If the system
// refuses, says so in the log and leaves the thread as it was.
void SetThreadNice(int nice);

// Runs `f` on a thread of its own at `nice` and waits for it: whatever `f`
// creates (Kafka clients, the embedded broker) runs its threads at `nice`,
// while the caller keeps its own priority. `f` runs on the caller's thread
// when nice is 0.
Status RunAtNice(int nice, const std::function<Status()>& f);

}  // namespace orderflow::services
