// Terminal ids: the names of the devices (gates, bus validators, POS) that take card payments,
// and therefore of who owns them. The contract between terminals (tools/tapgen) and ingest.
//
//   city terminals     "<city6>-<MODE>-<serial6>"    e.g. "310000-BUS-000123"
//                      MODE is one of BUS METRO FERRY BIKE PARK RETAIL; the owner is the city's
//                      operator, whose operator_id is "<city6>".
//   partner terminals  "P-<partner_id>-<serial6>"    e.g. "P-unionmart-004711"
//                      partner_id is 1..32 characters of [a-z0-9]; the owner is the partner
//                      chain, whose operator_id is "partner:<partner_id>".
//
// Ids are case-sensitive and have exactly one spelling; anything else is rejected, so an id can
// be compared as a string everywhere (dedup keys, event ids, key derivation).
//
// Thread-safety: pure functions. Failure: ParseTerminalId returns INVALID_ARGUMENT whose message
// starts with the rule's name ("terminal_id_format: ..."), like card_id.h. Whether a city is a
// member city is the caller's check (cities.h).
//
// Example:
//   absl::StatusOr<TerminalId> id = ParseTerminalId("310000-BUS-000123");
//   // id->owner == TerminalOwner::kCity, id->city == 310000, id->mode == TRANSPORT_MODE_BUS
//   std::string op = OperatorIdOf(*id);  // "310000"
#ifndef TONGKA_LIBS_TXN_TERMINAL_ID_H_
#define TONGKA_LIBS_TXN_TERMINAL_ID_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "proto/common.pb.h"

namespace tongka::txn {

enum class TerminalOwner { kCity, kPartner };

inline constexpr size_t kPartnerIdSizeMax = 32;
inline constexpr uint32_t kTerminalSerialMax = 999999;

struct TerminalId {
  TerminalOwner owner = TerminalOwner::kCity;
  uint32_t city = 0;       // kCity: the GB/T 2260 code of the owning city
  std::string partner_id;  // kPartner: the partner chain
  v1::TransportMode mode = v1::TRANSPORT_MODE_UNSPECIFIED;  // kCity: the terminal's mode
  uint32_t serial = 0;                                      // 0..999999
};

// Parses `id`. Rules (the message starts with the rule's name):
//   terminal_id_format   not "<city6>-<MODE>-<serial6>" nor "P-<partner_id>-<serial6>"
//   terminal_id_city     the city part is not six digits starting with 1-9
//   terminal_id_mode     MODE is not one of BUS METRO FERRY BIKE PARK RETAIL
//   terminal_id_partner  partner_id empty, longer than 32, or not [a-z0-9]
//   terminal_id_serial   the serial is not six digits
absl::StatusOr<TerminalId> ParseTerminalId(absl::string_view id);

// The canonical ids. CHECK-fail on a city code that is not six digits, a serial above 999999, a
// mode with no terminal spelling, or a partner id that breaks the grammar.
std::string CityTerminalId(uint32_t city, v1::TransportMode mode, uint32_t serial);
std::string PartnerTerminalId(absl::string_view partner_id, uint32_t serial);

// The operator_id a transaction from this terminal carries: "<city6>" or "partner:<partner_id>".
std::string OperatorIdOf(const TerminalId& terminal);

// "BUS", "METRO", "FERRY", "BIKE", "PARK", "RETAIL"; "" for modes terminals do not have.
absl::string_view TerminalModeName(v1::TransportMode mode);

}  // namespace tongka::txn

#endif  // TONGKA_LIBS_TXN_TERMINAL_ID_H_
