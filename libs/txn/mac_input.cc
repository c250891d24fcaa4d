#include "libs/txn/mac_input.h"

#include <glog/logging.h>
#include <string.h>

#include <charconv>
#include <system_error>
#include <utility>

#include "absl/strings/string_view.h"

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

namespace {

// Writes the pieces straight into a buffer sized for the longest they can be (strings' sizes
// plus 20 characters per number, the longest int64 or uint64), then trims it: one allocation and
// one pass, where StrAppend formats each number apart and copies it again. std::to_chars writes
// the same decimal text as StrCat (no locale, '-' for negatives).
class InputWriter {
 public:
  explicit InputWriter(size_t strings_size) { out_.resize(strings_size + kFixedMax); }

  InputWriter& Text(absl::string_view text) {
    CHECK_LE(at_ + text.size(), out_.size());
    memcpy(&out_[at_], text.data(), text.size());
    at_ += text.size();
    return *this;
  }
  InputWriter& Field(absl::string_view text) { return Text(text).Bar(); }
  template <typename Int>
  InputWriter& Number(Int value) {
    CHECK_LE(at_ + kNumberMax, out_.size());
    const std::to_chars_result written =
        std::to_chars(&out_[at_], out_.data() + out_.size(), value);
    CHECK(written.ec == std::errc());
    at_ = written.ptr - out_.data();
    return *this;
  }
  template <typename Int>
  InputWriter& NumberField(Int value) {
    return Number(value).Bar();
  }
  std::string Finish() && {
    out_.resize(at_);
    return std::move(out_);
  }

 private:
  // "v1|refund|" and the separators and numbers of the longest body (9 numbers, 16 bars), with
  // room to spare.
  static constexpr size_t kNumberMax = 20;
  static constexpr size_t kFixedMax = 10 + 17 + 10 * kNumberMax;

  InputWriter& Bar() {
    CHECK_LT(at_, out_.size());
    out_[at_++] = '|';
    return *this;
  }

  std::string out_;
  size_t at_ = 0;
};

}  // namespace

absl::StatusOr<std::string> MacInput(const v1::TransactionUpload& upload) {
  const v1::TxnCommon* txn = CommonOf(upload);
  if (txn == nullptr) {
    return absl::InvalidArgumentError("transaction: one of tap, load, refund is required");
  }
  size_t strings_size = txn->card_id().size() + txn->operator_id().size() +
                        txn->terminal_id().size() + txn->partner_id().size();
  switch (upload.body_case()) {
    case v1::TransactionUpload::kTap:
      strings_size += upload.tap().route_id().size() + upload.tap().station_id().size();
      break;
    case v1::TransactionUpload::kLoad:
      strings_size += upload.load().channel().size();
      break;
    case v1::TransactionUpload::kRefund:
      strings_size +=
          upload.refund().original_terminal_id().size() + upload.refund().reason().size();
      break;
    default:
      LOG(FATAL) << "unreachable: CommonOf found a body";
  }
  InputWriter out(strings_size);
  auto common = [&](absl::string_view kind, int64_t amount_fen) {
    out.Field("v1")
        .Field(kind)
        .NumberField(upload.occurred_at_us())
        .Field(txn->card_id())
        .NumberField(txn->issuer_city())
        .NumberField(txn->acquirer_city())
        .Field(txn->operator_id())
        .Field(txn->terminal_id())
        .NumberField(txn->terminal_seq())
        .NumberField(txn->card_counter())
        .NumberField(txn->balance_before_fen())
        .NumberField(txn->balance_after_fen())
        .Field(txn->partner_id())
        .NumberField(amount_fen);
  };
  switch (upload.body_case()) {
    case v1::TransactionUpload::kTap: {
      const v1::Tap& tap = upload.tap();
      common("tap", tap.amount_fen());
      out.NumberField(static_cast<int>(tap.mode())).Field(tap.route_id()).Text(tap.station_id());
      break;
    }
    case v1::TransactionUpload::kLoad:
      common("load", upload.load().amount_fen());
      out.Text(upload.load().channel());
      break;
    default: {  // kRefund (the switch above has checked the body)
      const v1::Refund& refund = upload.refund();
      common("refund", refund.amount_fen());
      out.Field(refund.original_terminal_id())
          .NumberField(refund.original_terminal_seq())
          .Text(refund.reason());
      break;
    }
  }
  return std::move(out).Finish();
}

}  // namespace tongka::txn
