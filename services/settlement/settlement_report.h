// Settlement's figures, pure: the cells both stages add up (counts, fen, fee and the
// order-independent digest of the transaction ids) and the report the ledger builds from a
// window's pairs when it closes (bilateral matrix, multilateral net, SM3 digest) with the
// invariants it must hold before it is published (window_ledger.h).
//
// The id digest of a cell is the sum, modulo 2^64 per half, of the first 16 bytes of each id's
// SM3 (two little-endian halves): adding ids or cells in any order gives the same digest.
//
// Thread-safety: pure functions. Failure: none; CheckReportInvariants names what a report breaks.
//
// Example:
//   v1::SettlementReport report = BuildReport("2026-11-24", pairs);
//   std::vector<std::string> violations = CheckReportInvariants(report);  // empty: publishable
#ifndef TONGKA_SERVICES_SETTLEMENT_SETTLEMENT_REPORT_H_
#define TONGKA_SERVICES_SETTLEMENT_SETTLEMENT_REPORT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "libs/crypto/sm3.h"
#include "proto/events.pb.h"

namespace tongka::settlement {

// ---- cells and digests ----
// Adds one transaction id to a cell's digest.
void AddIdToDigest(absl::string_view event_id, v1::SettlementCell* cell);
// Adds every count, amount and digest of `from` into `into` (keys are not touched).
void AddCell(const v1::SettlementCell& from, v1::SettlementCell* into);
// hi then lo, 32 lowercase hex digits.
std::string DigestHex(const v1::SettlementCell& cell);
int64_t CountOf(const v1::SettlementCell& cell);     // taps + refunds
int64_t GrossFenOf(const v1::SettlementCell& cell);  // taps_fen - refunds_fen

// ---- the report (pure) ----
// The position of one (issuer, acquirer) pair.
v1::BilateralPosition PositionOf(const v1::SettlementCell& pair);
// Multilateral net per city over the pairs with issuer != acquirer: the acquirer receives
// gross - fee, the issuer pays it. Sorted by city; cities of same-city-only pairs appear with 0.
std::vector<v1::NetPosition> NetPositions(const std::vector<v1::BilateralPosition>& bilateral);
// The full report of a window from its pairs (any order): sorted rows, nets, totals, digest.
v1::SettlementReport BuildReport(absl::string_view window_id,
                                 const std::vector<v1::SettlementCell>& pairs);
// The invariants every report must hold; an empty list when all hold. Each entry names one.
std::vector<std::string> CheckReportInvariants(const v1::SettlementReport& report);
// SM3 over the report with its digest field cleared.
std::string ReportDigest(const v1::SettlementReport& report);

// For stage one, which hashes ids in bulk ahead of Apply (TxnStage::Prepare); not for callers
// outside this folder.
namespace internal {

// The two halves an id adds to a cell's digest: the first 16 bytes of its SM3, little-endian.
void DigestHalves(const crypto::Sm3Digest& digest, uint64_t* lo, uint64_t* hi);
// Adds halves from DigestHalves to a cell's digest.
void AddDigest(uint64_t lo, uint64_t hi, v1::SettlementCell* cell);

}  // namespace internal
}  // namespace tongka::settlement

#endif  // TONGKA_SERVICES_SETTLEMENT_SETTLEMENT_REPORT_H_
