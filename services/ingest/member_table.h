// MemberTable: ingest's picture of the member registry, the latest MemberChanged per participant
// that card_registry decided on tongka.members (proto/events.proto, "Members"). The validator
// reads it for three rules (validator.h): acquirer_suspended, issuer_suspended and
// issuer_not_accepted. A participant with no MemberChanged is ACTIVE and, as a city acquirer,
// accepts every member issuer (genesis), so an empty topic refuses nothing.
//
// Only decisions from platform:card_registry count: anyone else's MemberChanged, commands and
// rejections are ignored. Of a participant's decisions the highest version wins (they arrive in
// version order on the one partition; the check only guards against a replayed older copy).
// An acquirer always accepts its own city's cards.
//
// MemberSource is the seam the validator is given: Current() returns an immutable snapshot, so a
// batch is judged against one table while the view (members_view.h) moves on.
//
// Thread-safety: a MemberTable is not synchronized; snapshots shared through MemberSource are
// never changed after they are published. Failure: Apply never fails; it reports what it did.
//
// Example:
//   MemberTable table;
//   table.Apply(event);  // a MemberChanged read from tongka.members
//   if (!table.Accepts(330200, 450200)) Reject("issuer_not_accepted");
#ifndef TONGKA_SERVICES_INGEST_MEMBER_TABLE_H_
#define TONGKA_SERVICES_INGEST_MEMBER_TABLE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "proto/events.pb.h"

namespace tongka::ingest {

inline constexpr char kMembersTopic[] = "tongka.members";

class MemberTable {
 public:
  enum class Applied { kChanged, kIgnored, kStale };

  // Takes `event` into the table when it is a MemberChanged from platform:card_registry of a
  // well-formed participant with a higher version than the one held.
  Applied Apply(const v1::Event& event);

  // ACTIVE for a city with no decision.
  v1::MemberStatus CityStatus(uint32_t city) const;
  // Whether `acquirer` accepts cards of `issuer`: its own always, others by its list.
  bool Accepts(uint32_t acquirer, uint32_t issuer) const;
  // How many participants have a decision.
  size_t size() const { return cities_.size() + partners_.size(); }

 private:
  struct Entry {
    v1::MemberStatus status = v1::MEMBER_STATUS_ACTIVE;
    bool accepts_all = true;
    std::vector<uint32_t> issuers;  // sorted
    uint64_t version = 0;
  };
  absl::flat_hash_map<uint32_t, Entry> cities_;
  std::map<std::string, Entry> partners_;
};

class MemberSource {
 public:
  virtual ~MemberSource() = default;
  // The table as of now; never null.
  virtual std::shared_ptr<const MemberTable> Current() const = 0;
};

}  // namespace tongka::ingest

#endif  // TONGKA_SERVICES_INGEST_MEMBER_TABLE_H_
