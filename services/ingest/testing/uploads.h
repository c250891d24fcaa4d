// Test and benchmark helpers: well-formed, correctly signed uploads, and a way to re-sign one after
// changing it (to test a rule other than mac_verify).
//
// Ownership: values. Thread-safety: pure functions (the keyring is thread-safe).
// Failure: CHECK-fails on a keyring without the acquirer city's key (a test bug).
//
// Example:
//   txn::CityKeyring keyring = *txn::CityKeyring::Dev();
//   v1::TransactionUpload tap = SignedTap(keyring, {.acquirer_city = 310000, .seq = 1});
//   tap.mutable_tap()->set_route_id("71");
//   Sign(keyring, &tap);
#ifndef TONGKA_SERVICES_INGEST_TESTING_UPLOADS_H_
#define TONGKA_SERVICES_INGEST_TESTING_UPLOADS_H_

#include <cstdint>
#include <string>

#include "absl/time/time.h"
#include "libs/txn/keys.h"
#include "proto/ingest.pb.h"

namespace tongka::ingest::testing {

struct TxnSpec {
  uint32_t acquirer_city = 310000;
  uint32_t issuer_city = 310000;
  uint64_t card_serial = 1;
  uint32_t terminal_serial = 1;
  uint64_t seq = 1;
  int64_t amount_fen = 200;
  int64_t balance_before_fen = 10000;
  absl::Time occurred_at = absl::FromUnixSeconds(1767225600);  // 2026-01-01T00:00:00Z
  // Empty: a city terminal "<acquirer>-BUS-<serial>"; else a partner terminal
  // "P-<partner_id>-<serial>" of that partner.
  std::string partner_id;
};

// Recomputes the upload's MAC under its terminal's key.
void Sign(const txn::CityKeyring& keyring, v1::TransactionUpload* upload);

// A tap (bus for city terminals, retail for partner terminals), a load and a refund, signed.
v1::TransactionUpload SignedTap(const txn::CityKeyring& keyring, const TxnSpec& spec);
v1::TransactionUpload SignedLoad(const txn::CityKeyring& keyring, const TxnSpec& spec);
v1::TransactionUpload SignedRefund(const txn::CityKeyring& keyring, const TxnSpec& spec);

}  // namespace tongka::ingest::testing

#endif  // TONGKA_SERVICES_INGEST_TESTING_UPLOADS_H_
