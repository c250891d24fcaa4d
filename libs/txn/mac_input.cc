#include "libs/txn/mac_input.h"

#include "absl/strings/str_cat.h"

namespace tongka::txn {

const v1::TxnCommon* CommonOf(const v1::TransactionUpload& upload) {
  switch (upload.body_case()) {
    case v1::TransactionUpload::kTap:
      return &upload.tap().txn();
    case v1::TransactionUpload::kLoad:
      return &upload.load().txn();
    case v1::TransactionUpload::kRefund:
      return &upload.refund().txn();
    default:
      return nullptr;
  }
}

v1::TxnCommon* MutableCommonOf(v1::TransactionUpload* upload) {
  switch (upload->body_case()) {
    case v1::TransactionUpload::kTap:
      return upload->mutable_tap()->mutable_txn();
    case v1::TransactionUpload::kLoad:
      return upload->mutable_load()->mutable_txn();
    case v1::TransactionUpload::kRefund:
      return upload->mutable_refund()->mutable_txn();
    default:
      return nullptr;
  }
}

absl::StatusOr<std::string> MacInput(const v1::TransactionUpload& upload) {
  const v1::TxnCommon* txn = CommonOf(upload);
  if (txn == nullptr) {
    return absl::InvalidArgumentError("transaction: one of tap, load, refund is required");
  }
  std::string out;
  out.reserve(
      192);  // a transaction's is ~120 bytes: one allocation, where the appends would grow it
  auto common = [&](absl::string_view kind, int64_t amount_fen) {
    absl::StrAppend(&out, "v1|", kind, "|", upload.occurred_at_us(), "|", txn->card_id(), "|",
                    txn->issuer_city(), "|", txn->acquirer_city(), "|", txn->operator_id(), "|",
                    txn->terminal_id(), "|", txn->terminal_seq(), "|", txn->card_counter(), "|",
                    txn->balance_before_fen(), "|", txn->balance_after_fen(), "|",
                    txn->partner_id(), "|", amount_fen);
  };
  switch (upload.body_case()) {
    case v1::TransactionUpload::kTap: {
      const v1::Tap& tap = upload.tap();
      common("tap", tap.amount_fen());
      absl::StrAppend(&out, "|", static_cast<int>(tap.mode()), "|", tap.route_id(), "|",
                      tap.station_id());
      break;
    }
    case v1::TransactionUpload::kLoad:
      common("load", upload.load().amount_fen());
      absl::StrAppend(&out, "|", upload.load().channel());
      break;
    case v1::TransactionUpload::kRefund: {
      const v1::Refund& refund = upload.refund();
      common("refund", refund.amount_fen());
      absl::StrAppend(&out, "|", refund.original_terminal_id(), "|", refund.original_terminal_seq(),
                      "|", refund.reason());
      break;
    }
    default:
      break;
  }
  return out;
}

}  // namespace tongka::txn
