#include "services/ingest/member_table.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"

namespace tongka::ingest {

MemberTable::Applied MemberTable::Apply(const v1::Event& event) {
  if (!event.has_member_changed() || event.source().kind() != v1::TENANT_KIND_PLATFORM ||
      event.source().service() != "card_registry") {
    return Applied::kIgnored;
  }
  const v1::MemberChanged& changed = event.member_changed();
  if (changed.status() == v1::MEMBER_STATUS_UNSPECIFIED) return Applied::kIgnored;
  Entry* entry = nullptr;
  absl::string_view name = changed.participant();
  uint32_t city = 0;
  if (absl::ConsumePrefix(&name, "city:")) {
    if (name.size() != 6 || !absl::SimpleAtoi(name, &city) || city == 0) return Applied::kIgnored;
    entry = &cities_[city];
  } else if (absl::ConsumePrefix(&name, "partner:") && !name.empty()) {
    entry = &partners_[std::string(name)];
  } else {
    return Applied::kIgnored;
  }
  if (changed.version() <= entry->version) return Applied::kStale;
  entry->status = changed.status();
  entry->accepts_all = changed.accepts_all();
  entry->issuers.assign(changed.accepted_issuer_cities().begin(),
                        changed.accepted_issuer_cities().end());
  std::sort(entry->issuers.begin(), entry->issuers.end());
  entry->version = changed.version();
  return Applied::kChanged;
}

v1::MemberStatus MemberTable::CityStatus(uint32_t city) const {
  auto it = cities_.find(city);
  return it == cities_.end() ? v1::MEMBER_STATUS_ACTIVE : it->second.status;
}

bool MemberTable::Accepts(uint32_t acquirer, uint32_t issuer) const {
  if (acquirer == issuer) return true;
  auto it = cities_.find(acquirer);
  if (it == cities_.end() || it->second.accepts_all) return true;
  return std::binary_search(it->second.issuers.begin(), it->second.issuers.end(), issuer);
}

}  // namespace tongka::ingest
