// Transaction ids and signing for uploads: what ingest, tapgen and their tests share.
//
// The transaction id of an upload is (terminal_id, terminal_seq); its event id on tongka.txn is
// "txn/<terminal_id>/<terminal_seq>". Signing sets TxnCommon.mac to the SM4-CMAC of
// MacInput(upload) (mac_input.h) under the terminal's key (keys.h), as a terminal does.
//
// Thread-safety: pure functions (the keyring is thread-safe). Failure: SignUpload returns the
// keyring's or MacInput's error (an unknown city, an upload without a body).
//
// Example:
//   CHECK_OK(SignUpload(keyring, &upload));
//   std::string id = TxnEventIdOf(upload);  // "txn/310000-BUS-000123/42"
#ifndef TONGKA_LIBS_TXN_UPLOAD_H_
#define TONGKA_LIBS_TXN_UPLOAD_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "libs/txn/keys.h"
#include "proto/ingest.pb.h"

namespace tongka::txn {

std::string TxnEventId(absl::string_view terminal_id, uint64_t terminal_seq);

// The event id of an upload; "" when it has no body.
std::string TxnEventIdOf(const v1::TransactionUpload& upload);

absl::Status SignUpload(const CityKeyring& keyring, v1::TransactionUpload* upload);

}  // namespace tongka::txn

#endif  // TONGKA_LIBS_TXN_UPLOAD_H_
