// The canonical bytes a terminal's SM4-CMAC covers, for taps, loads and refunds.
//
// Terminals (and tools/tapgen) compute `mac = SM4-CMAC(terminal_key, MacInput(upload))` and ingest
// verifies it the same way, so this one function is the contract between them. The input is a
// versioned, '|'-separated text of every field that carries meaning (not the mac itself, and not
// fields the platform sets: `late`, recorded time), so any change to a signed field breaks the MAC.
//
//   v1|<kind>|<occurred_at_us>|<card_id>|<issuer_city>|<acquirer_city>|<operator_id>|
//   <terminal_id>|<terminal_seq>|<card_counter>|<balance_before_fen>|<balance_after_fen>|
//   <partner_id>|<amount_fen>|<kind-specific fields>
//   tap:    <mode number>|<route_id>|<station_id>
//   load:   <channel>
//   refund: <original_terminal_id>|<original_terminal_seq>|<reason>
//
// Text fields must not contain '|' (ingest rejects them before checking the MAC).
// Thread-safety: pure function. Failure: an upload without a body yields INVALID_ARGUMENT.
//
// Example:
//   absl::StatusOr<std::string> input = MacInput(upload);
//   txn->set_mac(AsStringView(Sm4Cmac(terminal_key, *input)));
#ifndef TONGKA_LIBS_TXN_MAC_INPUT_H_
#define TONGKA_LIBS_TXN_MAC_INPUT_H_

#include <string>

#include "absl/status/statusor.h"
#include "proto/ingest.pb.h"

namespace tongka::txn {

absl::StatusOr<std::string> MacInput(const v1::TransactionUpload& upload);

// The TxnCommon of whichever body the upload carries; nullptr when it has none.
const v1::TxnCommon* CommonOf(const v1::TransactionUpload& upload);
v1::TxnCommon* MutableCommonOf(v1::TransactionUpload* upload);

}  // namespace tongka::txn

#endif  // TONGKA_LIBS_TXN_MAC_INPUT_H_
