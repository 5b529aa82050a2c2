// Golden fixtures: the bytes of every event as each released schema version
// wrote them, checked in under tests/fixtures/vN/, must decode (through the
// upcasters) to the expected current events forever.
// ORDERFLOW_WRITE_GOLDEN=1 writes missing fixtures (never overwrites one).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "eventstore/codec.h"

namespace orderflow::eventstore {
namespace {

using namespace orderflow::domain;

Event Golden(EventPayload payload, uint16_t version = 1) {
  Event e;
  for (size_t i = 0; i < e.id.size(); ++i) e.id[i] = static_cast<uint8_t>(0xA0 + i);
  e.order_id = "0b6f8e9e-1c2d-4e5f-8a9b-0c1d2e3f4a5b";
  e.occurred_at_ms = 1'763'726'400'000;  // 2025-11-21T12:00:00Z
  e.schema_version = version;
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

// What a v1 event means in the current schema, spelled out (not by calling
// the upcaster under test): template names use dots; v1 paid by card only.
Event AsCurrent(Event e) {
  auto dots = [](std::string s) {
    std::replace(s.begin(), s.end(), '_', '.');
    return s;
  };
  if (auto* sent = std::get_if<NotificationSent>(&e.payload)) sent->template_name = dots(sent->template_name);
  if (auto* req = std::get_if<NotificationRequested>(&e.payload)) req->template_name = dots(req->template_name);
  if (auto* paid = std::get_if<PaymentAuthorized>(&e.payload)) paid->method = "card";
  return e;
}

// Schema version 2's new fields, written by v2 code.
std::vector<Event> V2Events() {
  return {
      Golden(OrderPlaced{"alice", {{"SKU-MUG", 2, 1450}}, 2900, "EUR", "12 Damrak, Amsterdam"}, 2),
      Golden(PaymentAuthorized{"pay-0b6f8e9e", 2900, "paypal"}, 2),
      Golden(NotificationSent{"5a1d", "order.shipped", "alice", NotificationPriority::kLow}, 2),
  };
}

std::string FixturePath(const Event& e) {
  return std::string(ORDERFLOW_SOURCE_DIR) + "/tests/fixtures/v" + std::to_string(e.schema_version) + "/" +
         std::string(EventTypeName(e.payload)) + ".bin";
}

void CheckFixture(const Event& written, const Event& expected) {
  const std::string path = FixturePath(written);
  if (std::getenv("ORDERFLOW_WRITE_GOLDEN") != nullptr && !std::filesystem::exists(path)) {
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    std::ofstream(path, std::ios::binary) << EncodeEvent(written);
  }
  std::ifstream in(path, std::ios::binary);
  ASSERT_TRUE(in) << "missing golden fixture " << path;
  std::stringstream bytes;
  bytes << in.rdbuf();
  auto decoded = DecodeEvent(bytes.str());
  ASSERT_TRUE(decoded.ok()) << path << ": " << decoded.status().ToString();
  EXPECT_EQ(*decoded, expected) << path;
  EXPECT_EQ(decoded->schema_version, written.schema_version) << "the written version is kept";
}

TEST(GoldenFixtureTest, EveryV1EventDecodesThroughTheUpcastersForever) {
  for (const Event& v1 : V1Events()) CheckFixture(v1, AsCurrent(v1));
}

TEST(GoldenFixtureTest, V2EventsDecodeForever) {
  for (const Event& v2 : V2Events()) CheckFixture(v2, v2);
}

TEST(GoldenFixtureTest, EveryEventTypeHasAFixture) {
  EXPECT_EQ(V1Events().size(), std::variant_size_v<EventPayload>)
      << "a new event type needs a golden fixture of the version that introduces it";
}

}  // namespace
}  // namespace orderflow::eventstore
