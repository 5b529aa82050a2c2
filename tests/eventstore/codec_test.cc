#include "eventstore/codec.h"

#include <capnp/message.h>
#include <capnp/serialize-packed.h>
#include <gtest/gtest.h>
#include <kj/io.h>

#include <random>

#include "tests/util/future_event.h"

namespace orderflow::eventstore {
namespace {

using namespace orderflow::domain;

Event MakeEvent(EventPayload payload) {
  Event e;
  for (size_t i = 0; i < e.id.size(); ++i) e.id[i] = static_cast<uint8_t>(i + 1);
  e.order_id = "3f2c1a9e-0000-4000-8000-000000000001";
  e.occurred_at_ms = 1'763'000'000'123;
  e.causation_id[0] = 0xAA;
  e.correlation_id[15] = 0xBB;
  e.producer = "test";
  e.payload = std::move(payload);
  return e;
}

std::vector<Event> EveryEventType() {
  return {
      MakeEvent(OrderPlaced{"alice", {{"SKU-MUG", 2, 1450}, {"SKU-KETTLE", 1, 5990}}, 8890, "EUR"}),
      MakeEvent(PaymentAuthorized{"pay-1", 8890}),
      MakeEvent(PaymentDeclined{"over limit", 8890}),
      MakeEvent(InventoryReserved{"res-1", {{"SKU-MUG", 2, 1450}}}),
      MakeEvent(InventoryRejected{"SKU-MUG", 5, 2, "insufficient stock"}),
      MakeEvent(PaymentRefunded{"pay-1", 8890, "inventory rejected"}),
      MakeEvent(OrderShipped{"DHL", "TRK-123"}),
      MakeEvent(OrderDelivered{"alice"}),
      MakeEvent(OrderCancelled{"customer request", CancelSource::kCustomer}),
      MakeEvent(NotificationSent{"n-1", "order_delivered", "alice", NotificationPriority::kHigh}),
      MakeEvent(InventoryLineReserved{"SKU-MUG", 2}),
      MakeEvent(InventoryLineRejected{"SKU-MUG", 2, 1}),
      MakeEvent(InventoryLineReleased{"SKU-MUG", 2}),
      MakeEvent(StockAdded{"SKU-MUG", 100}),
      MakeEvent(StockReservationRequested{"SKU-MUG", "order-1", 2}),
      MakeEvent(StockReleaseRequested{"SKU-MUG", "order-1", 2}),
      MakeEvent(NotificationRequested{"n-2", "order_placed", "alice", NotificationPriority::kLow}),
  };
}

TEST(CodecTest, EveryEventTypeRoundTrips) {
  EXPECT_EQ(EveryEventType().size(), std::variant_size_v<EventPayload>);
  for (const Event& e : EveryEventType()) {
    std::string bytes = EncodeEvent(e);
    auto decoded = DecodeEvent(bytes);
    ASSERT_TRUE(decoded.ok()) << EventTypeName(e.payload) << ": " << decoded.status().ToString();
    EXPECT_EQ(*decoded, e) << EventTypeName(e.payload);
  }
}

TEST(CodecTest, CommandCausedEventsKeepZeroCausation) {
  Event e = MakeEvent(OrderDelivered{""});
  e.causation_id = {};
  e.correlation_id = {};
  auto decoded = DecodeEvent(EncodeEvent(e));
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->causation_id, EventId{});
}

TEST(CodecTest, EmptyInputIsCorruption) {
  auto r = DecodeEvent("");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kCorruption);
}

TEST(CodecTest, EveryTruncationIsAnErrorNotACrash) {
  for (const Event& e : EveryEventType()) {
    std::string bytes = EncodeEvent(e);
    for (size_t len = 0; len < bytes.size(); ++len) {
      auto r = DecodeEvent(std::string_view(bytes).substr(0, len));
      EXPECT_FALSE(r.ok()) << EventTypeName(e.payload) << " truncated to " << len;
    }
  }
}

TEST(CodecTest, RandomGarbageNeverCrashes) {
  std::mt19937 rng(42);
  int decoded_ok = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string bytes(std::uniform_int_distribution<size_t>(0, 300)(rng), '\0');
    for (char& c : bytes) c = static_cast<char>(rng());
    auto r = DecodeEvent(bytes);
    if (r.ok()) {
      ++decoded_ok;
    } else {
      EXPECT_NE(r.status().message(), "");
    }
  }
  // Random bytes essentially never form a valid envelope with a 16-byte id.
  EXPECT_LT(decoded_ok, 10);
}

TEST(CodecTest, BitFlipsOfValidRecordsNeverCrash) {
  std::mt19937 rng(1);
  for (const Event& e : EveryEventType()) {
    const std::string bytes = EncodeEvent(e);
    for (int i = 0; i < 500; ++i) {
      std::string mutated = bytes;
      mutated[rng() % mutated.size()] ^= static_cast<char>(1 << (rng() % 8));
      auto r = DecodeEvent(mutated);  // either an error or some event; never a crash
      if (!r.ok()) {
        EXPECT_FALSE(r.status().message().empty());
      }
    }
  }
}

TEST(CodecTest, TrailingBytesAreRejected) {
  std::string bytes = EncodeEvent(EveryEventType()[0]) + std::string(16, '\x01');
  auto r = DecodeEvent(bytes);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kCorruption);
}

std::string EncodeFuture(uint16_t schema_version, bool future_member, size_t id_size = 16) {
  return orderflow::testing::EncodeFutureEnvelope("order-1", schema_version, future_member, id_size);
}

TEST(CodecTest, UnknownEventTypeIsCorruptionNamingTheDiscriminant) {
  auto r = DecodeEvent(EncodeFuture(1, true));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kCorruption);
  EXPECT_NE(r.status().message().find("unknown event type"), std::string::npos) << r.status().message();
}

TEST(CodecTest, NewerSchemaVersionIsAFailedPrecondition) {
  auto r = DecodeEvent(EncodeFuture(kCurrentSchemaVersion + 1, false));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("upgrade"), std::string::npos);
}

TEST(CodecTest, WrongSizedEventIdIsCorruption) {
  auto r = DecodeEvent(EncodeFuture(1, false, 5));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kCorruption);
  // The same bytes with a proper id decode: the test is not passing by accident.
  EXPECT_TRUE(DecodeEvent(EncodeFuture(1, false, 16)).ok());
}

}  // namespace
}  // namespace orderflow::eventstore
