// Order ids (services::NewOrderId): time-ordered UUIDs (v7, RFC 9562).
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <thread>

#include "domain/clock.h"
#include "domain/events.h"
#include "services/orders/order_service.h"

namespace orderflow::services {
namespace {

TEST(OrderIdTest, IsAVersion7UuidCarryingTheTimeItWasMadeAt) {
  const int64_t before = SystemClock().WallMs();
  const std::string id = NewOrderId();
  const int64_t after = SystemClock().WallMs();
  domain::EventId bytes;
  ASSERT_TRUE(domain::UuidFromString(id, &bytes)) << id;
  EXPECT_EQ(bytes[6] >> 4, 7) << id << ": version";
  EXPECT_EQ(bytes[8] >> 6, 2) << id << ": variant (RFC 9562)";
  int64_t ms = 0;
  for (int i = 0; i < 6; ++i) ms = (ms << 8) | bytes[i];
  EXPECT_GE(ms, before);
  EXPECT_LE(ms, after);
}

TEST(OrderIdTest, LaterIdsSortAfterEarlierOnesAndNoneRepeats) {
  std::set<std::string> ids;
  std::string previous = NewOrderId();
  ids.insert(previous);
  for (int i = 0; i < 3; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // later milliseconds: the time part orders them
    const std::string next = NewOrderId();
    EXPECT_LT(previous, next);
    previous = next;
    ids.insert(next);
  }
  for (int i = 0; i < 10000; ++i) ids.insert(NewOrderId());  // many a millisecond: the random part tells them apart
  EXPECT_EQ(ids.size(), 10004u);
}

}  // namespace
}  // namespace orderflow::services
