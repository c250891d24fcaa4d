#include "services/settlement/testing/state_test.h"

#include <filesystem>

namespace tongka::settlement::testing {

std::unique_ptr<StateStore> FreshStore(const std::string& name, bool with_rules) {
  std::string dir = absl::StrCat(::testing::TempDir(), "/", name);
  std::filesystem::remove_all(dir);
  auto store = StateStore::Open({.path = dir});
  EXPECT_TRUE(store.ok()) << store.status();
  if (with_rules) {
    EXPECT_TRUE(ApplyRulesCommand(store->get(), "", kTestFeeSchedule, 0, "genesis",
                                  v1::TENANT_KIND_PLATFORM)
                    .accepted());
  }
  return std::move(*store);
}

RequestOutcome ApplyRulesCommand(StateStore* store, const std::string& effective_window_id,
                                 const std::string& fee_schedule, int64_t recorded_at_us,
                                 const std::string& request_id, v1::TenantKind kind,
                                 const std::string& zone, absl::Duration cut) {
  v1::Event event;
  event.set_recorded_at_us(recorded_at_us);
  event.mutable_source()->set_kind(kind);
  if (kind == v1::TENANT_KIND_PLATFORM) event.mutable_source()->set_service(kServiceName);
  event.set_event_id(absl::StrCat(
      "cmd/", kind == v1::TENANT_KIND_PLATFORM ? "platform" : "ministry", "/", request_id));
  v1::SettlementRulesRequested* request = event.mutable_settlement_rules_requested();
  request->set_request_id(request_id);
  request->set_effective_window_id(effective_window_id);
  *request->mutable_rules() = MakeRules(zone, cut, fee_schedule);
  // The rules partition: its own offsets, apart from the fixture's partition 0.
  int64_t offset = 0;
  auto offsets = store->Offsets();
  EXPECT_TRUE(offsets.ok());
  if (offsets.ok()) {
    auto it = offsets->find({kSettlementTopic, kRulesTestPartition});
    if (it != offsets->end()) offset = it->second;
  }
  WindowLedger ledger({});
  StateBatch batch(store);
  event_log::Record record = event_log::Record::Owned(kSettlementTopic, kRulesTestPartition, offset,
                                                      kRulesEventKey, event.SerializeAsString());
  EXPECT_TRUE(ledger.Apply(record, batch).ok());
  batch.SetNextOffset({kSettlementTopic, kRulesTestPartition}, offset + 1);
  EXPECT_TRUE(store->Commit(batch).ok());
  auto outcome = ReadOutcome(ViewOf(*store), event.event_id());
  EXPECT_TRUE(outcome.ok() && outcome->has_value()) << request_id;
  return outcome.ok() ? outcome->value_or(RequestOutcome()) : RequestOutcome();
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
