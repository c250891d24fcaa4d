// Proves ParseTxnView reads what a full v1::Event parse reads: on taps, loads and refunds with
// every field set, on other bodies, on concatenated records (protobuf merges repeated message
// fields and lets a later oneof body replace an earlier one), and on every prefix of each record
// (a prefix that protobuf parses must read the same; one ParseTxnView refuses, protobuf must
// refuse too).
#include "libs/txn/txn_view.h"

#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "google/protobuf/stubs/logging.h"
#include "gtest/gtest.h"
#include "proto/events.pb.h"

namespace tongka::txn {
namespace {

// The view a full parse implies.
TxnView Expected(const v1::Event& event) {
  TxnView view;
  view.event_id = event.event_id();
  view.recorded_at_us = event.recorded_at_us();
  const v1::TxnCommon* txn = nullptr;
  switch (event.body_case()) {
    case v1::Event::kTap:
      view.kind = TxnKind::kTap;
      view.amount_fen = event.tap().amount_fen();
      view.mode = event.tap().mode();
      txn = &event.tap().txn();
      break;
    case v1::Event::kLoad:
      view.kind = TxnKind::kLoad;
      view.amount_fen = event.load().amount_fen();
      txn = &event.load().txn();
      break;
    case v1::Event::kRefund:
      view.kind = TxnKind::kRefund;
      view.amount_fen = event.refund().amount_fen();
      view.original_terminal_id = event.refund().original_terminal_id();
      txn = &event.refund().txn();
      break;
    case v1::Event::BODY_NOT_SET:
      view.kind = TxnKind::kNone;
      break;
    default:
      view.kind = TxnKind::kOther;
  }
  if (txn != nullptr) {
    view.card_id = txn->card_id();
    view.issuer_city = txn->issuer_city();
    view.acquirer_city = txn->acquirer_city();
  }
  return view;
}

void ExpectSame(const TxnView& actual, const TxnView& expected, const std::string& what) {
  EXPECT_EQ(actual.event_id, expected.event_id) << what;
  EXPECT_EQ(actual.recorded_at_us, expected.recorded_at_us) << what;
  EXPECT_EQ(static_cast<int>(actual.kind), static_cast<int>(expected.kind)) << what;
  EXPECT_EQ(actual.amount_fen, expected.amount_fen) << what;
  EXPECT_EQ(actual.card_id, expected.card_id) << what;
  EXPECT_EQ(actual.issuer_city, expected.issuer_city) << what;
  EXPECT_EQ(actual.acquirer_city, expected.acquirer_city) << what;
  EXPECT_EQ(actual.mode, expected.mode) << what;
  EXPECT_EQ(actual.original_terminal_id, expected.original_terminal_id) << what;
}

v1::Event RandomTransaction(std::mt19937_64& rng, int kind) {
  v1::Event event;
  event.set_event_id(absl::StrCat("txn/310000-BUS-", rng() % 1000000, "/", rng() % 100000));
  event.set_occurred_at_us(static_cast<int64_t>(rng() % (int64_t{1} << 52)));
  event.set_recorded_at_us(static_cast<int64_t>(rng() % (int64_t{1} << 52)));
  event.mutable_source()->set_kind(v1::TENANT_KIND_CITY_OPERATOR);
  event.mutable_source()->set_city(310000);
  v1::TxnCommon* txn = nullptr;
  const int64_t amount = 1 + static_cast<int64_t>(rng() % 100000);
  if (kind == 0) {
    v1::Tap* tap = event.mutable_tap();
    tap->set_amount_fen(amount);
    tap->set_mode(static_cast<v1::TransportMode>(1 + rng() % 6));
    tap->set_route_id("71");
    tap->set_station_id("S00042");
    txn = tap->mutable_txn();
  } else if (kind == 1) {
    v1::Load* load = event.mutable_load();
    load->set_amount_fen(amount);
    load->set_channel("ticket_machine");
    txn = load->mutable_txn();
  } else {
    v1::Refund* refund = event.mutable_refund();
    refund->set_amount_fen(amount);
    refund->set_original_terminal_id("P-unionmart-000042");
    refund->set_original_terminal_seq(rng() % 1000);
    refund->set_reason("fare_adjustment");
    txn = refund->mutable_txn();
  }
  txn->set_card_id(absl::StrCat("3100000", 1000000000000 + rng() % 9000000000000));
  txn->set_issuer_city(static_cast<uint32_t>(110000 + rng() % 540000));
  txn->set_acquirer_city(static_cast<uint32_t>(110000 + rng() % 540000));
  txn->set_operator_id("310000");
  txn->set_terminal_id("310000-BUS-000123");
  txn->set_terminal_seq(rng());
  txn->set_card_counter(static_cast<uint32_t>(rng()));
  txn->set_balance_before_fen(static_cast<int64_t>(rng() % 100000));
  txn->set_balance_after_fen(-static_cast<int64_t>(rng() % 100000));  // negatives: 10-byte varints
  txn->set_mac(std::string(16, static_cast<char>(rng())));
  txn->set_late(rng() % 2 == 0);
  return event;
}

// Every prefix: what protobuf accepts, ParseTxnView reads the same.
void CheckEveryPrefix(const std::string& bytes, const std::string& what) {
  for (size_t size = 0; size <= bytes.size(); ++size) {
    const std::string prefix = bytes.substr(0, size);
    v1::Event event;
    const bool full = event.ParseFromString(prefix);
    TxnView view;
    const bool lean = ParseTxnView(prefix, &view);
    if (full) {
      ASSERT_TRUE(lean) << what << ": protobuf parses the first " << size << " bytes";
      ExpectSame(view, Expected(event), absl::StrCat(what, ", first ", size, " bytes"));
    }
    if (!lean) {
      EXPECT_FALSE(full) << what << ": refused " << size << " bytes protobuf parses";
    }
  }
}

TEST(TxnViewTest, ReadsWhatAFullParseReadsOnEveryPrefix) {
  std::mt19937_64 rng(20261201);
  for (int i = 0; i < 60; ++i) {
    const v1::Event event = RandomTransaction(rng, i % 3);
    const std::string bytes = event.SerializeAsString();
    TxnView view;
    ASSERT_TRUE(ParseTxnView(bytes, &view));
    ExpectSame(view, Expected(event), absl::StrCat("record ", i));
    CheckEveryPrefix(bytes, absl::StrCat("record ", i));
  }
}

// Records with random damage (bytes changed, inserted, deleted; varint-shaped runs; tags of
// other fields and wire types): whatever protobuf still parses, ParseTxnView reads the same, so
// the hand-written wire reader agrees with protobuf's parser beyond the shapes above.
TEST(TxnViewTest, ReadsWhatAFullParseReadsOnDamagedRecords) {
  std::mt19937_64 rng(20261202);
  google::protobuf::LogSilencer quiet;  // protobuf logs every invalid UTF-8 string it refuses
  int parsed_by_protobuf = 0;
  for (int i = 0; i < 200000; ++i) {
    std::string bytes = RandomTransaction(rng, i % 3).SerializeAsString();
    const int damages = 1 + static_cast<int>(rng() % 3);
    for (int d = 0; d < damages && !bytes.empty(); ++d) {
      const size_t at = rng() % bytes.size();
      switch (rng() % 5) {
        case 0:
          bytes[at] = static_cast<char>(rng());
          break;
        case 1:
          bytes.insert(at, 1, static_cast<char>(rng()));
          break;
        case 2:
          bytes.erase(at, 1 + rng() % 4);
          break;
        case 3:
          bytes.insert(at, std::string(1 + rng() % 11, static_cast<char>(0x80 | (rng() & 0x7f))));
          break;
        default:
          bytes[at] = static_cast<char>(rng() % 32 << 3 | rng() % 8);  // a small tag
      }
    }
    v1::Event event;
    TxnView view;
    const bool lean = ParseTxnView(bytes, &view);
    if (!event.ParseFromString(bytes)) continue;
    ++parsed_by_protobuf;
    ASSERT_TRUE(lean) << "damaged record " << i << " protobuf parses";
    ExpectSame(view, Expected(event), absl::StrCat("damaged record ", i));
    if (HasFailure()) return;
  }
  EXPECT_GT(parsed_by_protobuf, 10000) << "the damage should leave many records parseable";
}

TEST(TxnViewTest, ConcatenatedRecordsMergeAndALaterBodyReplacesAnEarlierOne) {
  std::mt19937_64 rng(7);
  for (int first = 0; first < 3; ++first) {
    for (int second = 0; second < 3; ++second) {
      const std::string bytes = RandomTransaction(rng, first).SerializeAsString() +
                                RandomTransaction(rng, second).SerializeAsString();
      v1::Event merged;
      ASSERT_TRUE(merged.ParseFromString(bytes));
      TxnView view;
      ASSERT_TRUE(ParseTxnView(bytes, &view));
      ExpectSame(view, Expected(merged), absl::StrCat(first, " then ", second));
    }
  }
  // A body with only some fields merges into the earlier one of the same kind.
  v1::Event tap = RandomTransaction(rng, 0);
  v1::Event partial;
  partial.mutable_tap()->set_amount_fen(777);
  const std::string bytes = tap.SerializeAsString() + partial.SerializeAsString();
  v1::Event merged;
  ASSERT_TRUE(merged.ParseFromString(bytes));
  TxnView view;
  ASSERT_TRUE(ParseTxnView(bytes, &view));
  EXPECT_EQ(view.amount_fen, 777);
  EXPECT_EQ(view.issuer_city, tap.tap().txn().issuer_city());
  ExpectSame(view, Expected(merged), "partial merge");
}

TEST(TxnViewTest, OtherBodiesAndEmptyRecordsAreNotTransactions) {
  v1::Event delta;
  delta.set_event_id("settlement/tongka.txn/0/0-9/2026-11-24/0");
  delta.mutable_settlement_delta()->set_window_id("2026-11-24");
  delta.mutable_settlement_delta()->add_cells()->set_taps(3);
  TxnView view;
  ASSERT_TRUE(ParseTxnView(delta.SerializeAsString(), &view));
  EXPECT_EQ(view.kind, TxnKind::kOther);
  CheckEveryPrefix(delta.SerializeAsString(), "delta");

  ASSERT_TRUE(ParseTxnView("", &view));
  EXPECT_EQ(view.kind, TxnKind::kNone);

  // A tap followed by another body: the oneof holds the later one.
  std::mt19937_64 rng(3);
  const std::string bytes =
      RandomTransaction(rng, 0).SerializeAsString() + delta.SerializeAsString();
  ASSERT_TRUE(ParseTxnView(bytes, &view));
  EXPECT_EQ(view.kind, TxnKind::kOther);
  EXPECT_EQ(view.amount_fen, 0);
}

// Every body of the oneof other than the three transactions is "other", and only those: an
// unknown length-delimited field leaves the transaction as it was, as protobuf does.
TEST(TxnViewTest, OtherBodiesAreExactlyTheOneofsOtherFields) {
  std::mt19937_64 rng(11);
  const std::string tap = RandomTransaction(rng, 0).SerializeAsString();
  const google::protobuf::OneofDescriptor* body = v1::Event::descriptor()->FindOneofByName("body");
  ASSERT_NE(body, nullptr);
  for (uint32_t field = 5; field < 200; ++field) {
    if (field == 10 || field == 11 || field == 12) continue;
    // Field `field`, wire type 2, an empty message: a valid body or an unknown field.
    std::string bytes = tap;
    uint32_t tag = field << 3 | 2;
    while (tag >= 0x80) {
      bytes.push_back(static_cast<char>((tag & 0x7f) | 0x80));
      tag >>= 7;
    }
    bytes.push_back(static_cast<char>(tag));
    bytes.push_back('\0');
    v1::Event event;
    ASSERT_TRUE(event.ParseFromString(bytes)) << field;
    TxnView view;
    ASSERT_TRUE(ParseTxnView(bytes, &view)) << field;
    ExpectSame(view, Expected(event), absl::StrCat("field ", field));
  }
}

TEST(TxnViewTest, UnknownGroupsAreSkippedLikeProtobufDoes) {
  std::mt19937_64 rng(5);
  const std::string tap = RandomTransaction(rng, 0).SerializeAsString();
  // Field 900 as a group holding a varint field and a nested group, then its end tag.
  const std::string group =
      std::string("\xa3\x38", 2) + "\x08\x07" + "\x13" + "\x14" + std::string("\xa4\x38", 2);
  const std::string bytes = group + tap;  // the views point into it
  v1::Event event;
  ASSERT_TRUE(event.ParseFromString(bytes));
  TxnView view;
  ASSERT_TRUE(ParseTxnView(bytes, &view));
  ExpectSame(view, Expected(event), "group before the tap");
  CheckEveryPrefix(bytes, "group before the tap");
  const std::string unmatched = std::string("\xa3\x38", 2) + std::string("\xac\x38", 2);
  EXPECT_FALSE(event.ParseFromString(unmatched + tap));
  EXPECT_FALSE(ParseTxnView(unmatched + tap, &view)) << "end tag of another group";
}

TEST(TxnViewTest, BrokenStructureIsRefused) {
  TxnView view;
  EXPECT_FALSE(ParseTxnView(std::string("\x08", 1), &view)) << "truncated varint";
  EXPECT_FALSE(ParseTxnView(std::string("\x0a\x05"
                                        "ab",
                                        4),
                            &view))
      << "length past the end";
  EXPECT_FALSE(ParseTxnView(std::string("\x0b", 1), &view)) << "group without its end";
  EXPECT_FALSE(ParseTxnView(std::string("\x0c", 1), &view)) << "end group without a start";
  EXPECT_FALSE(ParseTxnView(std::string("\x0e\x00", 2), &view)) << "wire type 6";
  EXPECT_FALSE(ParseTxnView(std::string("\x00\x00", 2), &view)) << "field number 0";
  EXPECT_FALSE(ParseTxnView(std::string(11, '\xff') + "\x01", &view)) << "varint of 12 bytes";
}

}  // namespace
}  // namespace tongka::txn
