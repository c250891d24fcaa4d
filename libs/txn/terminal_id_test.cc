// Proves the terminal id grammar: every canonical id parses to its parts and back, and every way
// of breaking it is refused with the rule's name (table-driven).
#include "libs/txn/terminal_id.h"

#include <gtest/gtest.h>

#include "absl/strings/match.h"

namespace tongka::txn {
namespace {

TEST(TerminalIdTest, CityTerminalRoundTrips) {
  absl::StatusOr<TerminalId> id = ParseTerminalId("310000-BUS-000123");
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(id->owner, TerminalOwner::kCity);
  EXPECT_EQ(id->city, 310000u);
  EXPECT_EQ(id->mode, v1::TRANSPORT_MODE_BUS);
  EXPECT_EQ(id->serial, 123u);
  EXPECT_EQ(OperatorIdOf(*id), "310000");
  EXPECT_EQ(CityTerminalId(310000, v1::TRANSPORT_MODE_BUS, 123), "310000-BUS-000123");
}

TEST(TerminalIdTest, EveryModeRoundTrips) {
  for (v1::TransportMode mode :
       {v1::TRANSPORT_MODE_BUS, v1::TRANSPORT_MODE_METRO, v1::TRANSPORT_MODE_FERRY,
        v1::TRANSPORT_MODE_BIKE, v1::TRANSPORT_MODE_PARKING, v1::TRANSPORT_MODE_RETAIL}) {
    std::string text = CityTerminalId(450200, mode, 999999);
    absl::StatusOr<TerminalId> id = ParseTerminalId(text);
    ASSERT_TRUE(id.ok()) << text << ": " << id.status();
    EXPECT_EQ(id->mode, mode) << text;
    EXPECT_EQ(id->serial, 999999u);
  }
  EXPECT_EQ(CityTerminalId(330200, v1::TRANSPORT_MODE_PARKING, 7), "330200-PARK-000007");
  EXPECT_EQ(TerminalModeName(v1::TRANSPORT_MODE_TAXI), "");
}

TEST(TerminalIdTest, PartnerTerminalRoundTrips) {
  absl::StatusOr<TerminalId> id = ParseTerminalId("P-unionmart-004711");
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(id->owner, TerminalOwner::kPartner);
  EXPECT_EQ(id->partner_id, "unionmart");
  EXPECT_EQ(id->city, 0u);
  EXPECT_EQ(id->serial, 4711u);
  EXPECT_EQ(OperatorIdOf(*id), "partner:unionmart");
  EXPECT_EQ(PartnerTerminalId("unionmart", 4711), "P-unionmart-004711");
}

TEST(TerminalIdTest, BrokenIdsNameTheRule) {
  struct Case {
    const char* id;
    const char* rule;
  };
  const Case cases[] = {
      {"", "terminal_id_format"},
      {"310000-BUS", "terminal_id_format"},
      {"310000-BUS-000123-1", "terminal_id_format"},
      {"310000_BUS_000123", "terminal_id_format"},
      {"31000-BUS-000123", "terminal_id_city"},
      {"3100000-BUS-000123", "terminal_id_city"},
      {"010000-BUS-000123", "terminal_id_city"},
      {"31a000-BUS-000123", "terminal_id_city"},
      {"310000-bus-000123", "terminal_id_mode"},
      {"310000-TAXI-000123", "terminal_id_mode"},
      {"310000-PARKING-000123", "terminal_id_mode"},
      {"310000--000123", "terminal_id_mode"},
      {"310000-BUS-123", "terminal_id_serial"},
      {"310000-BUS-0001234", "terminal_id_serial"},
      {"310000-BUS-00012a", "terminal_id_serial"},
      {"310000-BUS-+00123", "terminal_id_serial"},
      {"P--000123", "terminal_id_partner"},
      {"P-UnionMart-000123", "terminal_id_partner"},
      {"P-union_mart-000123", "terminal_id_partner"},
      {"P-union|mart-000123", "terminal_id_partner"},
      {"P-abcdefghijklmnopqrstuvwxyz0123456-000123", "terminal_id_partner"},
      {"P-unionmart-12345", "terminal_id_serial"},
      {"p-unionmart-000123", "terminal_id_city"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<TerminalId> id = ParseTerminalId(c.id);
    ASSERT_FALSE(id.ok()) << c.id;
    EXPECT_EQ(id.status().code(), absl::StatusCode::kInvalidArgument) << c.id;
    EXPECT_TRUE(absl::StartsWith(id.status().message(), std::string(c.rule) + ":"))
        << c.id << " -> " << id.status() << ", want " << c.rule;
  }
}

}  // namespace
}  // namespace tongka::txn
