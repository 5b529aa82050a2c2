// Golden fixtures: the bytes of every event as schema version 1 wrote them,
// checked in under tests/fixtures/v1/, must decode to these events forever.
// ORDERFLOW_WRITE_GOLDEN=1 writes missing fixtures (never overwrites one).
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "eventstore/codec.h"

namespace orderflow::eventstore {
namespace {

using namespace orderflow::domain;

Event Golden(EventPayload payload) {
  Event e;
  for (size_t i = 0; i < e.id.size(); ++i) e.id[i] = static_cast<uint8_t>(0xA0 + i);
  e.order_id = "0b6f8e9e-1c2d-4e5f-8a9b-0c1d2e3f4a5b";
  e.occurred_at_ms = 1'763'726'400'000;  // 2025-11-21T12:00:00Z
  e.schema_version = 1;
  e.causation_id[0] = 0x11;
  e.correlation_id[0] = 0x22;
  e.producer = "golden";
  e.payload = std::move(payload);
  return e;
}

// One per event type of schema version 1; never edit an entry once released.
std::vector<Event> V1Events() {
  return {
      Golden(OrderPlaced{"alice", {{"SKU-MUG", 2, 1450}, {"SKU-KETTLE", 1, 5990}}, 8890, "EUR"}),
      Golden(PaymentAuthorized{"pay-0b6f8e9e", 8890}),
      Golden(PaymentDeclined{"card blocked", 8890}),
      Golden(InventoryReserved{"res-0b6f8e9e", {{"SKU-MUG", 2, 1450}}}),
      Golden(InventoryRejected{"SKU-KETTLE", 3, 1, "insufficient stock"}),
      Golden(PaymentRefunded{"pay-0b6f8e9e", 8890, "inventory rejected"}),
      Golden(OrderShipped{"DHL", "TRK0B6F8E9E"}),
      Golden(OrderDelivered{"alice"}),
      Golden(OrderCancelled{"customer request", CancelSource::kCustomer}),
      Golden(NotificationSent{"5a1c", "order_delivered", "alice", NotificationPriority::kHigh}),
      Golden(InventoryLineReserved{"SKU-MUG", 2}),
      Golden(InventoryLineRejected{"SKU-KETTLE", 3, 1}),
      Golden(InventoryLineReleased{"SKU-MUG", 2}),
      Golden(StockAdded{"SKU-MUG", 100}),
      Golden(StockReservationRequested{"SKU-MUG", "0b6f8e9e-1c2d-4e5f-8a9b-0c1d2e3f4a5b", 2}),
      Golden(StockReleaseRequested{"SKU-MUG", "0b6f8e9e-1c2d-4e5f-8a9b-0c1d2e3f4a5b", 2}),
      Golden(NotificationRequested{"5a1c", "order_placed", "alice", NotificationPriority::kLow}),
  };
}

std::string FixturePath(const Event& e) {
  return std::string(ORDERFLOW_SOURCE_DIR) + "/tests/fixtures/v1/" + std::string(EventTypeName(e.payload)) + ".bin";
}

TEST(GoldenFixtureTest, EveryV1EventDecodesForever) {
  const bool write = std::getenv("ORDERFLOW_WRITE_GOLDEN") != nullptr;
  for (const Event& expected : V1Events()) {
    const std::string path = FixturePath(expected);
    if (write && !std::filesystem::exists(path)) std::ofstream(path, std::ios::binary) << EncodeEvent(expected);
    std::ifstream in(path, std::ios::binary);
    ASSERT_TRUE(in) << "missing golden fixture " << path;
    std::stringstream bytes;
    bytes << in.rdbuf();
    auto decoded = DecodeEvent(bytes.str());
    ASSERT_TRUE(decoded.ok()) << path << ": " << decoded.status().ToString();
    EXPECT_EQ(*decoded, expected) << path;
  }
}

TEST(GoldenFixtureTest, EveryEventTypeHasAFixture) {
  EXPECT_EQ(V1Events().size(), std::variant_size_v<EventPayload>)
      << "a new event type needs a golden fixture of the version that introduces it";
}

}  // namespace
}  // namespace orderflow::eventstore
