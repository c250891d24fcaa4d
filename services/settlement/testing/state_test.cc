#include "services/settlement/testing/state_test.h"

#include <filesystem>

namespace tongka::settlement::testing {

std::unique_ptr<StateStore> FreshStore(const std::string& name) {
  std::string dir = absl::StrCat(::testing::TempDir(), "/", name);
  std::filesystem::remove_all(dir);
  auto store = StateStore::Open({.path = dir});
  EXPECT_TRUE(store.ok()) << store.status();
  return std::move(*store);
}

v1::Event Txn(v1::Event::BodyCase kind, uint32_t issuer, uint32_t acquirer, int64_t amount_fen,
              int64_t recorded_at_us, uint64_t seq) {
  v1::Event event;
  std::string terminal = absl::StrCat(acquirer, "-METRO-000001");
  event.set_event_id(absl::StrCat("txn/", terminal, "/", seq));
  event.set_recorded_at_us(recorded_at_us);
  v1::TxnCommon* txn = nullptr;
  if (kind == v1::Event::kTap) {
    event.mutable_tap()->set_amount_fen(amount_fen);
    event.mutable_tap()->set_mode(v1::TRANSPORT_MODE_METRO);
    txn = event.mutable_tap()->mutable_txn();
  } else if (kind == v1::Event::kRefund) {
    event.mutable_refund()->set_amount_fen(amount_fen);
    event.mutable_refund()->set_original_terminal_id(terminal);
    event.mutable_refund()->set_original_terminal_seq(1);
    txn = event.mutable_refund()->mutable_txn();
  } else {
    event.mutable_load()->set_amount_fen(amount_fen);
    txn = event.mutable_load()->mutable_txn();
  }
  txn->set_card_id(absl::StrCat(issuer, "000000000001"));
  txn->set_issuer_city(issuer);
  txn->set_acquirer_city(acquirer);
  txn->set_terminal_id(terminal);
  txn->set_terminal_seq(seq);
  return event;
}

}  // namespace tongka::settlement::testing
