#include "services/settlement/settlement_report.h"

#include <algorithm>
#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace tongka::settlement {

namespace internal {

void DigestHalves(const crypto::Sm3Digest& digest, uint64_t* lo, uint64_t* hi) {
  *lo = 0;
  *hi = 0;
  for (int i = 7; i >= 0; --i) *lo = (*lo << 8) | digest[i];
  for (int i = 15; i >= 8; --i) *hi = (*hi << 8) | digest[i];
}

void AddDigest(uint64_t lo, uint64_t hi, v1::SettlementCell* cell) {
  cell->set_id_digest_lo(cell->id_digest_lo() + lo);  // modulo 2^64: unsigned wrap-around
  cell->set_id_digest_hi(cell->id_digest_hi() + hi);
}

}  // namespace internal

namespace {

using internal::AddDigest;
using internal::DigestHalves;

void IdDigest(absl::string_view event_id, uint64_t* lo, uint64_t* hi) {
  DigestHalves(crypto::Sm3(event_id), lo, hi);
}

}  // namespace

void AddIdToDigest(absl::string_view event_id, v1::SettlementCell* cell) {
  uint64_t lo = 0;
  uint64_t hi = 0;
  IdDigest(event_id, &lo, &hi);
  AddDigest(lo, hi, cell);
}

void AddCell(const v1::SettlementCell& from, v1::SettlementCell* into) {
  into->set_taps(into->taps() + from.taps());
  into->set_taps_fen(into->taps_fen() + from.taps_fen());
  into->set_refunds(into->refunds() + from.refunds());
  into->set_refunds_fen(into->refunds_fen() + from.refunds_fen());
  into->set_fee_fen(into->fee_fen() + from.fee_fen());
  into->set_loads(into->loads() + from.loads());
  into->set_loads_fen(into->loads_fen() + from.loads_fen());
  into->set_openings(into->openings() + from.openings());
  into->set_openings_fen(into->openings_fen() + from.openings_fen());
  into->set_payouts(into->payouts() + from.payouts());
  into->set_payouts_fen(into->payouts_fen() + from.payouts_fen());
  into->set_id_digest_lo(into->id_digest_lo() + from.id_digest_lo());
  into->set_id_digest_hi(into->id_digest_hi() + from.id_digest_hi());
}

std::string DigestHex(const v1::SettlementCell& cell) {
  return absl::StrFormat("%016x%016x", cell.id_digest_hi(), cell.id_digest_lo());
}

int64_t CountOf(const v1::SettlementCell& cell) { return cell.taps() + cell.refunds(); }
int64_t GrossFenOf(const v1::SettlementCell& cell) { return cell.taps_fen() - cell.refunds_fen(); }

// ---- the report ----

v1::BilateralPosition PositionOf(const v1::SettlementCell& pair) {
  v1::BilateralPosition position;
  position.set_issuer_city(pair.issuer_city());
  position.set_acquirer_city(pair.acquirer_city());
  position.set_count(CountOf(pair));
  position.set_gross_fen(GrossFenOf(pair));
  position.set_fee_fen(pair.fee_fen());
  position.set_net_fen(GrossFenOf(pair) - pair.fee_fen());
  position.set_refunds(pair.refunds());
  position.set_refunds_fen(pair.refunds_fen());
  return position;
}

std::vector<v1::NetPosition> NetPositions(const std::vector<v1::BilateralPosition>& bilateral) {
  std::map<uint32_t, int64_t> net;
  for (const v1::BilateralPosition& row : bilateral) {
    net[row.issuer_city()];  // every city that appears, same-city-only ones with 0
    net[row.acquirer_city()];
    if (row.issuer_city() == row.acquirer_city()) continue;  // float, not inter-city money
    net[row.acquirer_city()] += row.net_fen();
    net[row.issuer_city()] -= row.net_fen();
  }
  std::vector<v1::NetPosition> out;
  out.reserve(net.size());
  for (const auto& [city, fen] : net) {
    out.emplace_back();
    out.back().set_city(city);
    out.back().set_net_fen(fen);
  }
  return out;
}

std::string ReportDigest(const v1::SettlementReport& report) {
  v1::SettlementReport copy = report;
  copy.clear_digest();
  const crypto::Sm3Digest digest = crypto::Sm3(copy.SerializeAsString());
  return std::string(crypto::AsStringView(digest));
}

v1::SettlementReport BuildReport(absl::string_view window_id,
                                 const std::vector<v1::SettlementCell>& pairs) {
  std::vector<v1::BilateralPosition> bilateral;
  bilateral.reserve(pairs.size());
  for (const v1::SettlementCell& pair : pairs) bilateral.push_back(PositionOf(pair));
  std::sort(bilateral.begin(), bilateral.end(), [](const auto& a, const auto& b) {
    return std::pair(a.issuer_city(), a.acquirer_city()) <
           std::pair(b.issuer_city(), b.acquirer_city());
  });
  v1::SettlementReport report;
  report.set_window_id(std::string(window_id));
  for (v1::NetPosition& net : NetPositions(bilateral)) {
    if (net.net_fen() > 0)
      report.set_total_receivable_fen(report.total_receivable_fen() + net.net_fen());
    if (net.net_fen() < 0) report.set_total_payable_fen(report.total_payable_fen() - net.net_fen());
    *report.add_net() = std::move(net);
  }
  for (v1::BilateralPosition& row : bilateral) *report.add_bilateral() = std::move(row);
  report.set_digest(ReportDigest(report));
  return report;
}

std::vector<std::string> CheckReportInvariants(const v1::SettlementReport& report) {
  std::vector<std::string> violations;
  int64_t sum = 0;
  int64_t receivable = 0;
  int64_t payable = 0;
  for (const v1::NetPosition& net : report.net()) {
    sum += net.net_fen();
    if (net.net_fen() > 0) receivable += net.net_fen();
    if (net.net_fen() < 0) payable -= net.net_fen();
  }
  if (sum != 0) violations.push_back(absl::StrCat("net_sums_to_zero: nets sum to ", sum, " fen"));
  if (receivable != payable || receivable != report.total_receivable_fen() ||
      payable != report.total_payable_fen()) {
    violations.push_back(absl::StrCat("payables_equal_receivables: receivable ", receivable,
                                      " fen, payable ", payable, " fen"));
  }
  // The bilateral rows must re-net to the same positions.
  std::vector<v1::BilateralPosition> rows(report.bilateral().begin(), report.bilateral().end());
  std::vector<v1::NetPosition> renet = NetPositions(rows);
  bool same = static_cast<int>(renet.size()) == report.net_size();
  for (size_t i = 0; same && i < renet.size(); ++i) {
    same = renet[i].city() == report.net(static_cast<int>(i)).city() &&
           renet[i].net_fen() == report.net(static_cast<int>(i)).net_fen();
  }
  if (!same) violations.push_back("bilateral_nets_to_net: rows do not net to the net positions");
  for (const v1::BilateralPosition& row : rows) {
    if (row.net_fen() != row.gross_fen() - row.fee_fen()) {
      violations.push_back(
          absl::StrCat("net_is_gross_minus_fee: ", row.issuer_city(), "->", row.acquirer_city()));
    }
  }
  return violations;
}

}  // namespace tongka::settlement
