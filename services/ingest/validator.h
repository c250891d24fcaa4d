// Validator: the pure judgement of one uploaded transaction, every rule named.
//
// What it is: given the calling tenant, one TransactionUpload and the platform's "now", it either
// names the first rule the upload breaks (field, rule, message) or returns what ingest needs to
// append it: the event id, the canonical signed bytes and whether it is late. It reads nothing
// but its arguments, the limits and the keyring (whose terminal-key cache makes MAC checks cheap),
// so every rule is unit-tested with a manual clock.
//
// Rules, in the order they are checked (field paths are relative to the body: "tap.txn.card_id"):
//   body               required              one of tap, load, refund
//   occurred_at_us     required              > 0
//   txn.card_id        required, card_id_format, card_id_luhn
//   txn.issuer_city    required, member_city, issuer_matches_card_id
//   txn.acquirer_city  required, member_city
//   txn.terminal_id    required, terminal_id_format|_city|_mode|_partner|_serial (terminal_id.h)
//   txn.terminal_seq   required              >= 1
//   txn.operator_id    operator_matches_terminal   "<city6>" or "partner:<id>" of the terminal
//   txn.partner_id     partner_matches_terminal    empty for city terminals, the terminal's partner
//   txn.acquirer_city  acquirer_matches_terminal   a city terminal acquires for its own city
//   txn.terminal_id    terminal_not_yours    a city operator uploads only its city's terminals,
//                                            a partner only "P-<its id>-..." terminals
//   txn.acquirer_city  acquirer_not_yours    a city operator's acquirer_city is its own city
//   txn.acquirer_city  acquirer_suspended    taps and loads where the acquirer city is SUSPENDED
//   txn.issuer_city    issuer_suspended      taps and loads of a SUSPENDED issuer's cards
//   txn.issuer_city    issuer_not_accepted   taps and loads where the acquirer city has an
//                                            explicit accepted-issuer list without the issuer
//                      (the member table, member_table.h; refunds pass all three: they give
//                      money back to cardholders; EXITING members keep working)
//   txn.balance_*_fen  balance_range         0 <= balance <= limits.balance_max_fen
//   amount_fen         amount_range          1 <= amount <= the kind's limit
//   txn.balance_after_fen balance_arithmetic tap: after = before - amount; load, refund:
//                                            after = before + amount
//   tap.mode           required; mode_matches_terminal (city terminals carry their mode)
//   refund.original_terminal_id / original_terminal_seq   required
//   any text field     no_separator ('|' would make the MAC input ambiguous), too_long (> 64)
//   occurred_at_us     occurred_at_future    ahead of now by more than limits.future_skew_max
//                      occurred_at_too_old   older than dedup_horizon - future_skew_max
//                      (older than late_horizon is accepted, late = true)
//   txn.mac            mac_length (16 bytes), terminal_key (no key for the acquirer city),
//                      mac_verify (SM4-CMAC over txn::MacInput under the terminal's key)
//
// Tenancy of the call itself (ministry and platform may not upload) is CheckUploader's job.
//
// Ownership: borrows the keyring and the member source, which must outlive the Validator.
// Thread-safety: const and thread-safe.
// Failure: Validate never fails; a broken rule is a value (Verdict::rule non-empty).
//
// Example:
//   Validator validator(limits, &keyring);
//   Verdict verdict = validator.Validate(tenant, upload, absl::Now());
//   if (!verdict.ok()) result->set_rule(verdict.rule);
#ifndef TONGKA_SERVICES_INGEST_VALIDATOR_H_
#define TONGKA_SERVICES_INGEST_VALIDATOR_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "libs/crypto/bytes.h"
#include "libs/txn/keys.h"
#include "proto/common.pb.h"
#include "proto/events.pb.h"
#include "proto/ingest.pb.h"
#include "services/ingest/ingest_config.h"
#include "services/ingest/member_table.h"

namespace tongka::ingest {

inline constexpr size_t kTextFieldSizeMax = 64;

struct Verdict {
  bool ok() const { return rule.empty(); }

  // Rejected: the offending field, the rule's name, a human-readable detail.
  std::string field;
  std::string rule;
  std::string message;

  // For metrics, whatever the outcome: the acquirer city if it is a member city, else 0.
  uint32_t metrics_city = 0;

  // Accepted only:
  std::string event_id;   // "txn/<terminal_id>/<terminal_seq>"
  std::string mac_input;  // txn::MacInput(upload): the canonical signed content
  bool late = false;
};

// OK if `tenant` may upload transactions at all (city operators and partners); PERMISSION_DENIED
// naming the tenant otherwise (the ministry and platform services read, they do not upload).
absl::Status CheckUploader(const v1::Tenant& tenant);

class Validator {
 public:
  // `members` null: every member ACTIVE, every issuer accepted (the genesis table). A batch is
  // judged against one snapshot of it.
  Validator(const ValidationLimits& limits, const txn::CityKeyring* keyring,
            const MemberSource* members = nullptr)
      : limits_(limits), keyring_(keyring), members_(members) {}

  Verdict Validate(const v1::Tenant& tenant, const v1::TransactionUpload& upload,
                   absl::Time now) const;

  // Validate of every upload of a batch: verdicts[i] judges uploads[i], by the same rules in the
  // same order. The MACs of the items that pass every other rule are verified together
  // (crypto::Sm4CmacMany: SIMD lanes), which is most of why a batch costs less than its items.
  std::vector<Verdict> ValidateMany(const v1::Tenant& tenant,
                                    absl::Span<const v1::TransactionUpload* const> uploads,
                                    absl::Time now) const;

 private:
  struct TerminalMemo;
  // Every rule but mac_verify. On success the verdict has its event id and MAC input, and `key`
  // the terminal's key (the caller wipes it). `memo` carries what the previous upload's terminal
  // id parsed to and its key: a batch holds runs of one terminal's transactions.
  Verdict Prepare(const v1::Tenant& tenant, const v1::TransactionUpload& upload, absl::Time now,
                  const MemberTable& members, TerminalMemo& memo, crypto::Sm4Key* key) const;

  const ValidationLimits limits_;
  const txn::CityKeyring* const keyring_;
  const MemberSource* const members_;
};

// The event ingest appends for an accepted upload: event_id, device and platform time, the
// caller as source, and the body with TxnCommon.late set.
v1::Event BuildTxnEvent(const v1::TransactionUpload& upload, const v1::Tenant& source,
                        const Verdict& verdict, absl::Time recorded_at);

// BuildTxnEvent(...).SerializeAsString(), byte for byte, written straight from the upload where
// it can be (the body holds no unknown fields and its TxnCommon.late is already the verdict's):
// no copy of the body into an Event, and nothing to destroy after.
std::string SerializeTxnEvent(const v1::TransactionUpload& upload, const v1::Tenant& source,
                              const Verdict& verdict, absl::Time recorded_at);
// The same into `bytes` (replacing what it held): a writer of many events reuses one buffer.
void SerializeTxnEventTo(const v1::TransactionUpload& upload, const v1::Tenant& source,
                         const Verdict& verdict, absl::Time recorded_at, std::string* bytes);

// The event ingest publishes to tongka.txn.conflicts when an upload reuses an accepted
// transaction id with other content (a TxnConflict; the digests are SM3 of the canonical content
// and MAC, as the dedup index keeps them). Its id names the transaction and the conflicting
// content, so publishing the same conflict again yields the same event.
v1::Event BuildConflictEvent(const v1::TransactionUpload& upload, const v1::Tenant& source,
                             const Verdict& verdict, absl::string_view accepted_digest,
                             absl::string_view conflicting_digest, absl::Time recorded_at);

}  // namespace tongka::ingest

#endif  // TONGKA_SERVICES_INGEST_VALIDATOR_H_
