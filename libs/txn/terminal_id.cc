#include "libs/txn/terminal_id.h"

#include <glog/logging.h>

#include <algorithm>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"

namespace tongka::txn {
namespace {

struct ModeSpelling {
  absl::string_view name;
  v1::TransportMode mode;
};

constexpr ModeSpelling kModes[] = {
    {"BUS", v1::TRANSPORT_MODE_BUS},      {"METRO", v1::TRANSPORT_MODE_METRO},
    {"FERRY", v1::TRANSPORT_MODE_FERRY},  {"BIKE", v1::TRANSPORT_MODE_BIKE},
    {"PARK", v1::TRANSPORT_MODE_PARKING}, {"RETAIL", v1::TRANSPORT_MODE_RETAIL},
};

bool AllDigits(absl::string_view s) {
  return !s.empty() &&
         std::all_of(s.begin(), s.end(), [](char c) { return absl::ascii_isdigit(c); });
}

bool ValidPartnerId(absl::string_view s) {
  return !s.empty() && s.size() <= kPartnerIdSizeMax && std::all_of(s.begin(), s.end(), [](char c) {
    return absl::ascii_islower(c) || absl::ascii_isdigit(c);
  });
}

absl::Status Broken(absl::string_view rule, absl::string_view detail) {
  return absl::InvalidArgumentError(absl::StrCat(rule, ": ", detail));
}

absl::StatusOr<uint32_t> ParseSerial(absl::string_view serial) {
  uint32_t value = 0;
  if (serial.size() != 6 || !AllDigits(serial) || !absl::SimpleAtoi(serial, &value)) {
    return Broken("terminal_id_serial", "the serial is six digits, e.g. 000123");
  }
  return value;
}

}  // namespace

absl::StatusOr<TerminalId> ParseTerminalId(absl::string_view id) {
  std::vector<absl::string_view> parts = absl::StrSplit(id, '-');
  if (parts.size() != 3) {
    return Broken("terminal_id_format",
                  "a terminal id is <city6>-<MODE>-<serial6> or P-<partner_id>-<serial6>");
  }
  TerminalId terminal;
  if (parts[0] == "P") {
    if (!ValidPartnerId(parts[1])) {
      return Broken("terminal_id_partner", "partner_id is 1..32 characters of [a-z0-9]");
    }
    terminal.owner = TerminalOwner::kPartner;
    terminal.partner_id = std::string(parts[1]);
  } else {
    if (parts[0].size() != 6 || !AllDigits(parts[0]) || parts[0][0] == '0') {
      return Broken("terminal_id_city", "the city is a six-digit GB/T 2260 code, e.g. 310000");
    }
    CHECK(absl::SimpleAtoi(parts[0], &terminal.city));
    auto mode = std::find_if(std::begin(kModes), std::end(kModes),
                             [&](const ModeSpelling& m) { return m.name == parts[1]; });
    if (mode == std::end(kModes)) {
      return Broken("terminal_id_mode", "MODE is one of BUS METRO FERRY BIKE PARK RETAIL");
    }
    terminal.owner = TerminalOwner::kCity;
    terminal.mode = mode->mode;
  }
  absl::StatusOr<uint32_t> serial = ParseSerial(parts[2]);
  if (!serial.ok()) return serial.status();
  terminal.serial = *serial;
  return terminal;
}

absl::string_view TerminalModeName(v1::TransportMode mode) {
  for (const ModeSpelling& m : kModes) {
    if (m.mode == mode) return m.name;
  }
  return "";
}

std::string CityTerminalId(uint32_t city, v1::TransportMode mode, uint32_t serial) {
  CHECK(city >= 100000 && city <= 999999) << "city codes have six digits: " << city;
  CHECK_LE(serial, kTerminalSerialMax);
  absl::string_view name = TerminalModeName(mode);
  CHECK(!name.empty()) << "no terminal spelling for mode " << mode;
  return absl::StrFormat("%06d-%s-%06d", city, name, serial);
}

std::string PartnerTerminalId(absl::string_view partner_id, uint32_t serial) {
  CHECK(ValidPartnerId(partner_id)) << "bad partner id: " << partner_id;
  CHECK_LE(serial, kTerminalSerialMax);
  return absl::StrFormat("P-%s-%06d", partner_id, serial);
}

std::string OperatorIdOf(const TerminalId& terminal) {
  if (terminal.owner == TerminalOwner::kPartner) {
    return absl::StrCat("partner:", terminal.partner_id);
  }
  return absl::StrFormat("%06d", terminal.city);
}

}  // namespace tongka::txn
