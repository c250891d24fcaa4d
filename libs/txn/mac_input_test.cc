// MacInput is the contract between terminals (and tapgen) and ingest: these tests pin its bytes.
#include "libs/txn/mac_input.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <random>
#include <string>

#include "absl/strings/str_cat.h"

namespace tongka::txn {
namespace {

v1::TxnCommon Common() {
  v1::TxnCommon txn;
  txn.set_card_id("3100000000000000017");
  txn.set_issuer_city(310000);
  txn.set_acquirer_city(320100);
  txn.set_operator_id("320100-metro");
  txn.set_terminal_id("320100-BUS-7");
  txn.set_terminal_seq(42);
  txn.set_card_counter(9);
  txn.set_balance_before_fen(10000);
  txn.set_balance_after_fen(9800);
  txn.set_mac(std::string(16, '\x01'));  // not part of the input
  txn.set_late(true);                    // set by the platform: not part of the input
  return txn;
}

TEST(MacInputTest, TapBytes) {
  v1::TransactionUpload upload;
  upload.set_occurred_at_us(1767225600000000);
  v1::Tap* tap = upload.mutable_tap();
  *tap->mutable_txn() = Common();
  tap->set_amount_fen(200);
  tap->set_mode(static_cast<v1::TransportMode>(2));
  tap->set_route_id("R12");
  tap->set_station_id("S3");
  EXPECT_EQ(*MacInput(upload),
            "v1|tap|1767225600000000|3100000000000000017|310000|320100|320100-metro|320100-BUS-7|"
            "42|9|10000|9800||200|2|R12|S3");
}

TEST(MacInputTest, LoadBytesWithPartner) {
  v1::TransactionUpload upload;
  upload.set_occurred_at_us(5);
  v1::Load* load = upload.mutable_load();
  *load->mutable_txn() = Common();
  load->mutable_txn()->set_partner_id("unionmart");
  load->set_amount_fen(5000);
  load->set_channel("app");
  EXPECT_EQ(*MacInput(upload),
            "v1|load|5|3100000000000000017|310000|320100|320100-metro|320100-BUS-7|42|9|10000|9800|"
            "unionmart|5000|app");
}

TEST(MacInputTest, RefundBytesWithExtremeNumbers) {
  v1::TransactionUpload upload;
  upload.set_occurred_at_us(std::numeric_limits<int64_t>::min());
  v1::Refund* refund = upload.mutable_refund();
  *refund->mutable_txn() = Common();
  refund->mutable_txn()->set_terminal_seq(std::numeric_limits<uint64_t>::max());
  refund->mutable_txn()->set_card_counter(std::numeric_limits<uint32_t>::max());
  refund->mutable_txn()->set_balance_before_fen(-1);
  refund->mutable_txn()->set_balance_after_fen(std::numeric_limits<int64_t>::max());
  refund->set_amount_fen(0);
  refund->set_original_terminal_id("320100-BUS-7");
  refund->set_original_terminal_seq(41);
  refund->set_reason("double tap");
  EXPECT_EQ(*MacInput(upload),
            "v1|refund|-9223372036854775808|3100000000000000017|310000|320100|320100-metro|"
            "320100-BUS-7|18446744073709551615|4294967295|-1|9223372036854775807||0|"
            "320100-BUS-7|41|double tap");
}

TEST(MacInputTest, EmptyBodyFieldsAreEmptyPieces) {
  v1::TransactionUpload upload;
  upload.mutable_tap();
  EXPECT_EQ(*MacInput(upload), "v1|tap|0||0|0|||0|0|0|0||0|0||");
}

TEST(MacInputTest, NoBodyIsInvalidArgument) {
  v1::TransactionUpload upload;
  upload.set_occurred_at_us(1);
  EXPECT_EQ(MacInput(upload).status().code(), absl::StatusCode::kInvalidArgument);
}

// The format as the header states it, written with StrCat: random uploads (long strings, any
// numbers) come out the same.
std::string Spec(const v1::TransactionUpload& upload) {
  const v1::TxnCommon& t = *CommonOf(upload);
  auto common = [&](absl::string_view kind, int64_t amount) {
    return absl::StrCat("v1|", kind, "|", upload.occurred_at_us(), "|", t.card_id(), "|",
                        t.issuer_city(), "|", t.acquirer_city(), "|", t.operator_id(), "|",
                        t.terminal_id(), "|", t.terminal_seq(), "|", t.card_counter(), "|",
                        t.balance_before_fen(), "|", t.balance_after_fen(), "|", t.partner_id(),
                        "|", amount);
  };
  switch (upload.body_case()) {
    case v1::TransactionUpload::kTap:
      return absl::StrCat(common("tap", upload.tap().amount_fen()), "|",
                          static_cast<int>(upload.tap().mode()), "|", upload.tap().route_id(), "|",
                          upload.tap().station_id());
    case v1::TransactionUpload::kLoad:
      return absl::StrCat(common("load", upload.load().amount_fen()), "|", upload.load().channel());
    default:
      return absl::StrCat(common("refund", upload.refund().amount_fen()), "|",
                          upload.refund().original_terminal_id(), "|",
                          upload.refund().original_terminal_seq(), "|", upload.refund().reason());
  }
}

TEST(MacInputTest, RandomUploadsMatchTheStatedFormat) {
  std::mt19937_64 random(7);
  auto text = [&random] {  // empty one time in four
    return random() % 4 == 0 ? std::string()
                             : std::string(random() % 300, static_cast<char>('a' + random() % 26));
  };
  auto any = [&random] { return static_cast<int64_t>(random()); };
  for (int i = 0; i < 3000; ++i) {
    v1::TransactionUpload upload;
    upload.set_occurred_at_us(any());
    v1::TxnCommon* txn = nullptr;
    switch (i % 3) {
      case 0: {
        v1::Tap* tap = upload.mutable_tap();
        tap->set_amount_fen(any());
        // Any int32 an upload can carry, open enums included (negative, unknown).
        tap->set_mode(static_cast<v1::TransportMode>(static_cast<int32_t>(random())));
        tap->set_route_id(text());
        tap->set_station_id(text());
        txn = tap->mutable_txn();
        break;
      }
      case 1:
        upload.mutable_load()->set_amount_fen(any());
        upload.mutable_load()->set_channel(text());
        txn = upload.mutable_load()->mutable_txn();
        break;
      default:
        upload.mutable_refund()->set_amount_fen(any());
        upload.mutable_refund()->set_original_terminal_id(text());
        upload.mutable_refund()->set_original_terminal_seq(random());
        upload.mutable_refund()->set_reason(text());
        txn = upload.mutable_refund()->mutable_txn();
    }
    txn->set_card_id(text());
    txn->set_issuer_city(static_cast<uint32_t>(random()));
    txn->set_acquirer_city(static_cast<uint32_t>(random()));
    txn->set_operator_id(text());
    txn->set_terminal_id(text());
    txn->set_terminal_seq(random());
    txn->set_card_counter(static_cast<uint32_t>(random()));
    txn->set_balance_before_fen(any());
    txn->set_balance_after_fen(any());
    txn->set_partner_id(text());
    ASSERT_EQ(*MacInput(upload), Spec(upload)) << i;
  }
}

}  // namespace
}  // namespace tongka::txn
