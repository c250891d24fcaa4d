// Proves the pure report and digests without any store: the invariants catch a broken report,
// and the id digest is order-independent and additive.
#include "services/settlement/settlement_report.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace tongka::settlement {
namespace {

constexpr uint32_t kShanghai = 310000;
constexpr uint32_t kNingbo = 330200;

TEST(SettlementReportTest, InvariantsCatchABrokenReport) {
  v1::SettlementCell pair;
  pair.set_issuer_city(kShanghai);
  pair.set_acquirer_city(kNingbo);
  pair.set_taps(1);
  pair.set_taps_fen(1000);
  pair.set_fee_fen(5);
  v1::SettlementReport report = BuildReport("2026-11-24", {pair});
  EXPECT_TRUE(CheckReportInvariants(report).empty());
  report.mutable_net(0)->set_net_fen(report.net(0).net_fen() + 1);
  std::vector<std::string> violations = CheckReportInvariants(report);
  ASSERT_FALSE(violations.empty());
  EXPECT_NE(violations[0].find("net_sums_to_zero"), std::string::npos);
}

TEST(SettlementReportTest, IdDigestIsOrderIndependentAndAdditive) {
  v1::SettlementCell a, b, sum;
  for (const char* id : {"txn/x/1", "txn/x/2", "txn/x/3"}) AddIdToDigest(id, &a);
  for (const char* id : {"txn/x/3", "txn/x/1", "txn/x/2"}) AddIdToDigest(id, &b);
  EXPECT_EQ(DigestHex(a), DigestHex(b));
  v1::SettlementCell first, second;
  AddIdToDigest("txn/x/1", &first);
  AddIdToDigest("txn/x/2", &second);
  AddIdToDigest("txn/x/3", &second);
  AddCell(first, &sum);
  AddCell(second, &sum);
  EXPECT_EQ(DigestHex(sum), DigestHex(a));
  v1::SettlementCell other;
  for (const char* id : {"txn/x/1", "txn/x/2", "txn/x/4"}) AddIdToDigest(id, &other);
  EXPECT_NE(DigestHex(other), DigestHex(a));
  EXPECT_EQ(DigestHex(a).size(), 32u);
}

}  // namespace
}  // namespace tongka::settlement
