#include "services/card_registry/testing/state_test.h"

#include <algorithm>
#include <filesystem>
#include <iterator>

#include "absl/strings/str_cat.h"
#include "libs/server/tenant.h"
#include "libs/txn/card_id.h"
#include "services/card_registry/card_registry_keys.h"

namespace tongka::card_registry::testing {

std::unique_ptr<StateStore> FreshStore(const std::string& name) {
  std::string dir = absl::StrCat(::testing::TempDir(), "/", name);
  std::filesystem::remove_all(dir);
  auto store = StateStore::Open({.path = dir});
  EXPECT_TRUE(store.ok()) << store.status();
  return std::move(*store);
}

std::string CardId(uint32_t issuer, uint64_t serial) { return txn::MakeCardId(issuer, serial); }

std::string Token(char fill) { return std::string(32, fill); }

v1::Tenant City(uint32_t city) {
  v1::Tenant tenant;
  tenant.set_kind(v1::TENANT_KIND_CITY_OPERATOR);
  tenant.set_city(city);
  return tenant;
}

v1::Tenant Ministry() {
  v1::Tenant tenant;
  tenant.set_kind(v1::TENANT_KIND_MINISTRY);
  return tenant;
}

v1::Tenant Platform(const std::string& service) {
  v1::Tenant tenant;
  tenant.set_kind(v1::TENANT_KIND_PLATFORM);
  tenant.set_service(service);
  return tenant;
}

std::string CommandId(const v1::Tenant& source, const std::string& request_id) {
  return absl::StrCat("cmd/", server::TenantName(source), "/", request_id);
}

namespace {

std::string RequestIdOf(const v1::Event& event) {
  if (event.has_card_issue_requested()) return event.card_issue_requested().request_id();
  if (event.has_card_status_change_requested()) {
    return event.card_status_change_requested().request_id();
  }
  if (event.has_card_close_requested()) return event.card_close_requested().request_id();
  if (event.has_card_replace_requested()) return event.card_replace_requested().request_id();
  if (event.has_virtual_card_link_requested()) {
    return event.virtual_card_link_requested().request_id();
  }
  return "";
}

uint32_t IssuerOf(const std::string& card_id) {
  absl::StatusOr<uint32_t> issuer = txn::ParseCardId(card_id);
  return issuer.ok() ? *issuer : kShanghai;  // tests of bad ids send them as Shanghai
}

}  // namespace

v1::Event From(v1::Event command, const v1::Tenant& source) {
  *command.mutable_source() = source;
  command.set_event_id(CommandId(source, RequestIdOf(command)));
  return command;
}

v1::Event Issue(const std::string& card_id, const std::string& request_id) {
  v1::Event event;
  event.set_recorded_at_us(kDayStartUs);
  v1::CardIssueRequested* request = event.mutable_card_issue_requested();
  request->set_request_id(request_id);
  request->set_card_id(card_id);
  request->set_form(v1::CARD_FORM_PHYSICAL);
  request->set_product(v1::CARD_PRODUCT_STORED_VALUE);
  request->set_initial_balance_fen(500);
  request->mutable_holder()->set_id_number_token(Token('i'));
  request->mutable_holder()->set_phone_token(Token('p'));
  request->set_actor("staff-7");
  return From(std::move(event), City(IssuerOf(card_id)));
}

v1::Event Block(const std::string& card_id, const std::string& request_id, v1::BlockReason reason) {
  v1::Event event;
  event.set_recorded_at_us(kDayStartUs + kHourUs);
  v1::CardStatusChangeRequested* request = event.mutable_card_status_change_requested();
  request->set_request_id(request_id);
  request->set_card_id(card_id);
  request->set_new_status(v1::CARD_STATUS_BLOCKED);
  request->set_block_reason(reason);
  request->set_reason("lost");
  return From(std::move(event), City(IssuerOf(card_id)));
}

v1::Event Unblock(const std::string& card_id, const std::string& request_id) {
  v1::Event event = Block(card_id, request_id);
  event.mutable_card_status_change_requested()->set_new_status(v1::CARD_STATUS_ACTIVE);
  event.mutable_card_status_change_requested()->set_block_reason(v1::BLOCK_REASON_UNSPECIFIED);
  return event;
}

v1::Event Close(const std::string& card_id, const std::string& request_id) {
  v1::Event event;
  event.set_recorded_at_us(kDayStartUs + 2 * kHourUs);
  v1::CardCloseRequested* request = event.mutable_card_close_requested();
  request->set_request_id(request_id);
  request->set_card_id(card_id);
  request->set_reason("returned");
  return From(std::move(event), City(IssuerOf(card_id)));
}

v1::Event Replace(const std::string& card_id, const std::string& new_card_id,
                  const std::string& request_id) {
  v1::Event event;
  event.set_recorded_at_us(kDayStartUs + 3 * kHourUs);
  v1::CardReplaceRequested* request = event.mutable_card_replace_requested();
  request->set_request_id(request_id);
  request->set_old_card_id(card_id);
  request->set_new_card_id(new_card_id);
  request->set_new_form(v1::CARD_FORM_PHYSICAL);
  request->set_reason("lost");
  return From(std::move(event), City(IssuerOf(card_id)));
}

v1::Event Link(const std::string& card_id, const std::string& virtual_card_id,
               const std::string& request_id) {
  v1::Event event;
  event.set_recorded_at_us(kDayStartUs + 3 * kHourUs);
  v1::VirtualCardLinkRequested* request = event.mutable_virtual_card_link_requested();
  request->set_request_id(request_id);
  request->set_physical_card_id(card_id);
  request->set_virtual_card_id(virtual_card_id);
  request->set_form(v1::CARD_FORM_QR);
  return From(std::move(event), City(IssuerOf(card_id)));
}

v1::Event Tap(const std::string& card_id, uint32_t counter, int64_t balance_after_fen,
              int64_t occurred_at_us, uint64_t seq) {
  v1::Event event;
  const std::string terminal = "310000-METRO-000001";
  event.set_event_id(absl::StrCat("txn/", terminal, "/", seq));
  event.set_occurred_at_us(occurred_at_us);
  event.set_recorded_at_us(occurred_at_us + 1000);
  v1::Tap* tap = event.mutable_tap();
  tap->set_amount_fen(200);
  tap->set_mode(v1::TRANSPORT_MODE_METRO);
  v1::TxnCommon* txn = tap->mutable_txn();
  txn->set_card_id(card_id);
  txn->set_issuer_city(IssuerOf(card_id));
  txn->set_acquirer_city(kShanghai);
  txn->set_terminal_id(terminal);
  txn->set_terminal_seq(seq);
  txn->set_card_counter(counter);
  txn->set_balance_before_fen(balance_after_fen + 200);
  txn->set_balance_after_fen(balance_after_fen);
  return event;
}

std::string CardIdOf(const v1::Event& event) {
  if (event.has_card_issue_requested()) return event.card_issue_requested().card_id();
  if (event.has_card_status_change_requested()) {
    return event.card_status_change_requested().card_id();
  }
  if (event.has_card_close_requested()) return event.card_close_requested().card_id();
  if (event.has_card_replace_requested()) return event.card_replace_requested().old_card_id();
  if (event.has_virtual_card_link_requested()) {
    return event.virtual_card_link_requested().physical_card_id();
  }
  // Derived commands travel keyed by the card they create; a returned balance by the old card.
  if (event.has_card_replaced()) return event.card_replaced().new_card_id();
  if (event.has_virtual_card_linked()) return event.virtual_card_linked().virtual_card_id();
  if (event.has_carried_balance_returned()) {
    return event.carried_balance_returned().old_card_id();
  }
  if (event.has_tap()) return event.tap().txn().card_id();
  if (event.has_load()) return event.load().txn().card_id();
  if (event.has_refund()) return event.refund().txn().card_id();
  return "";
}

Input Cards(const v1::Event& event) {
  return Input{kCardsTopic, CardIdOf(event), event.SerializeAsString()};
}

Input TxnInput(const v1::Event& event) {
  return Input{kTxnTopic, CardIdOf(event), event.SerializeAsString()};
}

void StateTest::Feed(StateStore* store, CardLedger* ledger, const std::vector<Input>& inputs,
                     size_t batch_size, int32_t partition) {
  for (size_t i = 0; i < inputs.size(); i += batch_size) {
    StateBatch batch(store);
    for (size_t j = i; j < std::min(inputs.size(), i + batch_size); ++j) {
      int64_t& offset = next_offset_[{store, inputs[j].topic, partition}];
      event_log::Record record = event_log::Record::Owned(inputs[j].topic, partition, offset,
                                                          inputs[j].key, inputs[j].value);
      absl::Status applied = ledger->Apply(record, batch);
      EXPECT_TRUE(applied.ok()) << applied;
      ++offset;
      batch.SetNextOffset({inputs[j].topic, partition}, offset);
    }
    EXPECT_TRUE(ledger->FinishBatch(batch).ok());
    absl::Status committed = store->Commit(batch);
    EXPECT_TRUE(committed.ok()) << committed;
  }
}

std::vector<state_store::OutboxRecord> StateTest::NewOutbox(StateStore* store) {
  std::vector<state_store::OutboxRecord> out;
  auto outbox = store->ReadOutbox(1000000);
  EXPECT_TRUE(outbox.ok());
  if (!outbox.ok()) return out;
  for (auto& entry : *outbox) {
    if (entry.sequence > acked_[store]) out.push_back(entry);
  }
  if (!outbox->empty()) acked_[store] = outbox->back().sequence;
  return out;
}

void StateTest::Forget(const StateStore* store) {
  for (auto it = next_offset_.begin(); it != next_offset_.end();) {
    it = std::get<0>(it->first) == store ? next_offset_.erase(it) : std::next(it);
  }
  acked_.erase(store);
}

RequestOutcome StateTest::Outcome(StateStore* store, const std::string& event_id) {
  auto outcome = ReadOutcome(ViewOf(*store), event_id);
  EXPECT_TRUE(outcome.ok() && outcome->has_value()) << event_id;
  return outcome.ok() ? outcome->value_or(RequestOutcome()) : RequestOutcome();
}

}  // namespace tongka::card_registry::testing
