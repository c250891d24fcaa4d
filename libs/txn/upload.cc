#include "libs/txn/upload.h"

#include "absl/strings/str_cat.h"
#include "libs/crypto/sm4_cmac.h"
#include "libs/txn/mac_input.h"

namespace tongka::txn {

std::string TxnEventId(absl::string_view terminal_id, uint64_t terminal_seq) {
  return absl::StrCat("txn/", terminal_id, "/", terminal_seq);
}

std::string TxnEventIdOf(const v1::TransactionUpload& upload) {
  const v1::TxnCommon* txn = CommonOf(upload);
  return txn == nullptr ? "" : TxnEventId(txn->terminal_id(), txn->terminal_seq());
}

absl::Status SignUpload(const CityKeyring& keyring, v1::TransactionUpload* upload) {
  v1::TxnCommon* txn = MutableCommonOf(upload);
  if (txn == nullptr) {
    return absl::InvalidArgumentError("transaction: one of tap, load, refund is required");
  }
  absl::StatusOr<crypto::Sm4Key> key =
      keyring.TerminalKey(txn->acquirer_city(), txn->terminal_id());
  if (!key.ok()) return key.status();
  absl::StatusOr<std::string> input = MacInput(*upload);
  if (!input.ok()) return input.status();
  txn->set_mac(std::string(crypto::AsStringView(crypto::Sm4Cmac(*key, *input))));
  return absl::OkStatus();
}

}  // namespace tongka::txn
