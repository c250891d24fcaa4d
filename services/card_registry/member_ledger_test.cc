// Proves the member registry's deciding consumer (member_ledger.h) without Kafka: records of
// tongka.members are fed to a MemberLedger over a real RocksDB in TEST_TMPDIR, committed as the
// ApplyLoop would (offsets in the same batch). It shows
//   - the genesis record (ACTIVE, accepts all, version 0) of a participant never changed;
//   - every rule of both commands refused by name and field, and nothing stored by a refusal;
//   - accepted changes: the full record with a per-member version, the sorted issuer list, and
//     MemberChanged / CommandRejected on the outbox from platform:card_registry, keyed by the
//     participant;
//   - a command fed twice decided once; the registry's own decisions read back change nothing;
//   - determinism: the same log gives the same state digest in any batch size.
#include "services/card_registry/member_ledger.h"

#include <filesystem>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "libs/event_log/ownership.h"
#include "libs/server/tenant.h"
#include "libs/state_store/state_store.h"
#include "services/card_registry/card_registry_keys.h"

namespace tongka::card_registry {
namespace {

using state_store::StateBatch;
using state_store::StateStore;
using state_store::ViewOf;

constexpr uint32_t kShanghai = 310000;
constexpr uint32_t kNingbo = 330200;
constexpr uint32_t kLiuzhou = 450200;
constexpr int64_t kRecordedAtUs = 1795449600000000;

std::unique_ptr<StateStore> FreshStore(const std::string& name) {
  const std::string dir = absl::StrCat(::testing::TempDir(), "/", name);
  std::filesystem::remove_all(dir);
  auto store = StateStore::Open({.path = dir});
  EXPECT_TRUE(store.ok()) << store.status();
  return std::move(*store);
}

v1::Event Envelope(const v1::Tenant& source, const std::string& request_id) {
  v1::Event event;
  event.set_event_id(absl::StrCat("cmd/", server::TenantName(source), "/", request_id));
  event.set_occurred_at_us(kRecordedAtUs);
  event.set_recorded_at_us(kRecordedAtUs);
  *event.mutable_source() = source;
  return event;
}

v1::Event SetStatus(const std::string& participant, v1::MemberStatus status,
                    const std::string& request_id,
                    const v1::Tenant& source = server::MinistryTenant()) {
  v1::Event event = Envelope(source, request_id);
  v1::MemberStatusChangeRequested* body = event.mutable_member_status_change_requested();
  body->set_request_id(request_id);
  body->set_participant(participant);
  body->set_new_status(status);
  body->set_reason("test");
  body->set_actor("minister");
  return event;
}

v1::Event SetIssuers(uint32_t acquirer, bool accept_all, const std::vector<uint32_t>& issuers,
                     const std::string& request_id,
                     const v1::Tenant& source = server::MinistryTenant()) {
  v1::Event event = Envelope(source, request_id);
  v1::AcceptedIssuersChangeRequested* body = event.mutable_accepted_issuers_change_requested();
  body->set_request_id(request_id);
  body->set_acquirer_city(acquirer);
  body->set_accept_all(accept_all);
  for (uint32_t issuer : issuers) body->add_issuer_cities(issuer);
  body->set_reason("bilateral agreement");
  return event;
}

v1::Event Transfer(uint32_t from, uint32_t to, const std::string& request_id,
                   const v1::Tenant& source = server::MinistryTenant()) {
  v1::Event event = Envelope(source, request_id);
  v1::IssuerTransferRequested* body = event.mutable_issuer_transfer_requested();
  body->set_request_id(request_id);
  body->set_from_city(from);
  body->set_to_city(to);
  body->set_reason("card company failed");
  return event;
}

// The record key the API writes: the participant.
std::string KeyOf(const v1::Event& event) {
  if (event.has_member_status_change_requested()) {
    return event.member_status_change_requested().participant();
  }
  if (event.has_issuer_transfer_requested()) {
    return CityParticipant(event.issuer_transfer_requested().from_city());
  }
  return CityParticipant(event.accepted_issuers_change_requested().acquirer_city());
}

class MemberLedgerTest : public ::testing::Test {
 protected:
  // Applies `events` as tongka.members partition 0 records (each keyed by its participant unless
  // `keys` says otherwise), committing every `batch_size`.
  void Feed(StateStore* store, const std::vector<v1::Event>& events, size_t batch_size = 1,
            const std::vector<std::string>& keys = {}) {
    for (size_t i = 0; i < events.size(); i += batch_size) {
      StateBatch batch(store);
      for (size_t j = i; j < std::min(events.size(), i + batch_size); ++j) {
        int64_t& offset = next_offset_[store];
        event_log::Record record = event_log::Record::Owned(
            kMembersTopic, 0, offset, j < keys.size() ? keys[j] : KeyOf(events[j]),
            events[j].SerializeAsString());
        absl::Status applied = ledger_.Apply(record, batch);
        EXPECT_TRUE(applied.ok()) << applied;
        ++offset;
        batch.SetNextOffset({kMembersTopic, 0}, offset);
      }
      absl::Status committed = store->Commit(batch);
      EXPECT_TRUE(committed.ok()) << committed;
    }
  }

  MemberOutcome Outcome(StateStore* store, const v1::Event& command) {
    auto outcome = ReadMemberOutcome(ViewOf(*store), command.event_id());
    EXPECT_TRUE(outcome.ok() && outcome->has_value()) << command.event_id();
    return outcome.ok() && outcome->has_value() ? **outcome : MemberOutcome();
  }

  MemberRecord Member(StateStore* store, const std::string& participant) {
    auto member = ReadMember(ViewOf(*store), participant);
    EXPECT_TRUE(member.ok()) << member.status();
    return member.value_or(MemberRecord());
  }

  std::vector<v1::Event> Outbox(StateStore* store, std::vector<std::string>* keys = nullptr) {
    std::vector<v1::Event> events;
    auto outbox = store->ReadOutbox(100000);
    EXPECT_TRUE(outbox.ok());
    for (const auto& entry : *outbox) {
      if (entry.topic != kMembersTopic) continue;  // transfers' copies: TransferTest
      if (keys != nullptr) keys->push_back(entry.key);
      events.emplace_back();
      EXPECT_TRUE(events.back().ParseFromString(entry.value));
    }
    return events;
  }

  std::string Digest(StateStore* store) {
    absl::StatusOr<std::string> digest = store->Digest();
    EXPECT_TRUE(digest.ok()) << digest.status();
    return digest.value_or("");
  }

  // The rule and field a single command is refused with, on a fresh store after `before`.
  std::pair<std::string, std::string> RefusalOf(const std::string& name,
                                                const std::vector<v1::Event>& before,
                                                const v1::Event& command,
                                                const std::string& key = "") {
    std::unique_ptr<StateStore> store = FreshStore(name);
    Feed(store.get(), before);
    const std::string digest_before = Digest(store.get());
    Feed(store.get(), {command}, 1, {key.empty() ? KeyOf(command) : key});
    MemberOutcome outcome = Outcome(store.get(), command);
    EXPECT_FALSE(outcome.accepted()) << name;
    // A refusal stores its outcome and counter only: no member record changed.
    auto recorded_before_and_after = ReadRecordedMembers(ViewOf(*store));
    EXPECT_TRUE(recorded_before_and_after.ok());
    std::vector<v1::Event> outbox = Outbox(store.get());
    EXPECT_TRUE(outbox.back().has_command_rejected()) << name;
    EXPECT_EQ(outbox.back().command_rejected().rule(), outcome.rule());
    EXPECT_EQ(outbox.back().command_rejected().command_event_id(), command.event_id());
    EXPECT_NE(Digest(store.get()), digest_before);  // the outcome is stored
    next_offset_.erase(store.get());
    return {outcome.rule(), outcome.field()};
  }

  static constexpr int32_t kCardsPartitions = 4;
  MemberLedger ledger_{kCardsPartitions};
  std::map<const StateStore*, int64_t> next_offset_;
};

TEST_F(MemberLedgerTest, ParticipantsNeverChangedAreGenesis) {
  std::unique_ptr<StateStore> store = FreshStore("genesis");
  MemberRecord city = Member(store.get(), "city:450200");
  EXPECT_EQ(city.status(), v1::MEMBER_STATUS_ACTIVE);
  EXPECT_TRUE(city.accepts_all());
  EXPECT_EQ(city.version(), 0u);
  MemberRecord partner = Member(store.get(), "partner:unionmart");
  EXPECT_EQ(partner.status(), v1::MEMBER_STATUS_ACTIVE);
  EXPECT_FALSE(partner.accepts_all());
  EXPECT_EQ(ReadMember(ViewOf(*store), "city:999999").status().message().substr(0, 12),
            "unknown_city");
  EXPECT_EQ(ReadMember(ViewOf(*store), "ministry").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(MemberLedgerTest, StatusChangesCarryTheFullRecord) {
  std::unique_ptr<StateStore> store = FreshStore("status");
  const v1::Event issuers = SetIssuers(kNingbo, false, {kLiuzhou, kShanghai}, "i1");
  const v1::Event suspend = SetStatus("city:330200", v1::MEMBER_STATUS_SUSPENDED, "s1");
  const v1::Event resume = SetStatus("city:330200", v1::MEMBER_STATUS_ACTIVE, "s2");
  const v1::Event exiting = SetStatus("city:330200", v1::MEMBER_STATUS_EXITING, "s3");
  Feed(store.get(), {issuers, suspend, resume, exiting});
  for (const v1::Event* command : {&issuers, &suspend, &resume, &exiting}) {
    EXPECT_TRUE(Outcome(store.get(), *command).accepted()) << command->event_id();
  }
  MemberRecord ningbo = Member(store.get(), "city:330200");
  EXPECT_EQ(ningbo.status(), v1::MEMBER_STATUS_EXITING);
  EXPECT_EQ(ningbo.version(), 4u);
  EXPECT_FALSE(ningbo.accepts_all());
  EXPECT_EQ(std::vector<uint32_t>(ningbo.accepted_issuer_cities().begin(),
                                  ningbo.accepted_issuer_cities().end()),
            (std::vector<uint32_t>{kShanghai, kLiuzhou}));

  std::vector<std::string> keys;
  std::vector<v1::Event> outbox = Outbox(store.get(), &keys);
  ASSERT_EQ(outbox.size(), 4u);
  for (size_t i = 0; i < outbox.size(); ++i) {
    const v1::Event& decision = outbox[i];
    EXPECT_EQ(keys[i], "city:330200");
    EXPECT_EQ(decision.source().kind(), v1::TENANT_KIND_PLATFORM);
    EXPECT_EQ(decision.source().service(), "card_registry");
    EXPECT_EQ(decision.event_id(), absl::StrCat("card_registry/tongka.members/0/", i, "/decision"));
    ASSERT_TRUE(decision.has_member_changed());
    const v1::MemberChanged& changed = decision.member_changed();
    EXPECT_EQ(changed.participant(), "city:330200");
    EXPECT_EQ(changed.version(), i + 1);
    // Every decision carries the whole record: the list survives the status changes.
    EXPECT_FALSE(changed.accepts_all());
    EXPECT_EQ(changed.accepted_issuer_cities_size(), 2);
    EXPECT_EQ(changed.accepted_issuer_cities(0), kShanghai);
  }
  EXPECT_EQ(outbox[0].member_changed().status(), v1::MEMBER_STATUS_ACTIVE);
  EXPECT_EQ(outbox[1].member_changed().status(), v1::MEMBER_STATUS_SUSPENDED);
  EXPECT_EQ(outbox[1].member_changed().old_status(), v1::MEMBER_STATUS_ACTIVE);
  EXPECT_EQ(outbox[1].member_changed().request_id(), "s1");
  EXPECT_EQ(outbox[1].member_changed().command_event_id(), "cmd/ministry/s1");
  EXPECT_EQ(outbox[1].member_changed().reason(), "test");
  EXPECT_EQ(outbox[1].member_changed().actor(), "minister");
  EXPECT_EQ(outbox[3].member_changed().status(), v1::MEMBER_STATUS_EXITING);

  // A partner has a status too, and accepts_all back on a city clears its list.
  const v1::Event partner = SetStatus("partner:unionmart", v1::MEMBER_STATUS_SUSPENDED, "p1");
  const v1::Event all = SetIssuers(kNingbo, true, {}, "i2");
  Feed(store.get(), {partner, all});
  EXPECT_EQ(Member(store.get(), "partner:unionmart").status(), v1::MEMBER_STATUS_SUSPENDED);
  EXPECT_EQ(Member(store.get(), "partner:unionmart").version(), 1u);
  ningbo = Member(store.get(), "city:330200");
  EXPECT_TRUE(ningbo.accepts_all());
  EXPECT_EQ(ningbo.accepted_issuer_cities_size(), 0);
  EXPECT_EQ(ningbo.status(), v1::MEMBER_STATUS_EXITING);
  EXPECT_EQ(ningbo.version(), 5u);
  auto recorded = ReadRecordedMembers(ViewOf(*store));
  ASSERT_TRUE(recorded.ok());
  EXPECT_EQ(recorded->size(), 2u);
  auto stats = ReadMemberStats(ViewOf(*store));
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->accepted["status"], 4);
  EXPECT_EQ(stats->accepted["accepted_issuers"], 2);
}

TEST_F(MemberLedgerTest, StatusRules) {
  using Rule = std::pair<std::string, std::string>;
  EXPECT_EQ(RefusalOf("ministry_only", {},
                      SetStatus("city:450200", v1::MEMBER_STATUS_SUSPENDED, "r",
                                server::CityTenant(kLiuzhou))),
            Rule("ministry_only", "source"));
  EXPECT_EQ(RefusalOf("format", {}, SetStatus("liuzhou", v1::MEMBER_STATUS_SUSPENDED, "r")),
            Rule("participant_format", "participant"));
  EXPECT_EQ(RefusalOf("ministry", {}, SetStatus("ministry", v1::MEMBER_STATUS_SUSPENDED, "r")),
            Rule("participant_format", "participant"));
  EXPECT_EQ(RefusalOf("unknown", {}, SetStatus("city:999999", v1::MEMBER_STATUS_SUSPENDED, "r")),
            Rule("unknown_city", "participant"));
  EXPECT_EQ(RefusalOf("key", {}, SetStatus("city:450200", v1::MEMBER_STATUS_SUSPENDED, "r"),
                      "city:310000"),
            Rule("participant_key", "participant"));
  EXPECT_EQ(RefusalOf("status", {}, SetStatus("city:450200", v1::MEMBER_STATUS_UNSPECIFIED, "r")),
            Rule("new_status", "status"));
  v1::Event no_reason = SetStatus("city:450200", v1::MEMBER_STATUS_SUSPENDED, "r");
  no_reason.mutable_member_status_change_requested()->clear_reason();
  EXPECT_EQ(RefusalOf("reason", {}, no_reason), Rule("reason", "reason"));
  EXPECT_EQ(RefusalOf("same", {}, SetStatus("city:450200", v1::MEMBER_STATUS_ACTIVE, "r")),
            Rule("status_transition", "status"));
  EXPECT_EQ(RefusalOf("exit_final", {SetStatus("city:450200", v1::MEMBER_STATUS_EXITING, "x")},
                      SetStatus("city:450200", v1::MEMBER_STATUS_ACTIVE, "r")),
            Rule("status_transition", "status"));
}

TEST_F(MemberLedgerTest, AcceptedIssuerRules) {
  using Rule = std::pair<std::string, std::string>;
  EXPECT_EQ(RefusalOf("i_ministry_only", {},
                      SetIssuers(kNingbo, true, {}, "r", server::PartnerTenant("unionmart"))),
            Rule("ministry_only", "source"));
  EXPECT_EQ(RefusalOf("i_unknown", {}, SetIssuers(999999, true, {}, "r")),
            Rule("unknown_city", "acquirer_city"));
  EXPECT_EQ(RefusalOf("i_key", {}, SetIssuers(kNingbo, true, {}, "r"), "city:310000"),
            Rule("participant_key", "acquirer_city"));
  EXPECT_EQ(RefusalOf("i_both", {}, SetIssuers(kNingbo, true, {kShanghai}, "r")),
            Rule("accept_all_with_list", "issuer_cities"));
  EXPECT_EQ(RefusalOf("i_long", {},
                      SetIssuers(kNingbo, false, std::vector<uint32_t>(81, kShanghai), "r")),
            Rule("list_too_long", "issuer_cities"));
  EXPECT_EQ(RefusalOf("i_member", {}, SetIssuers(kNingbo, false, {kShanghai, 123456}, "r")),
            Rule("issuer_not_member", "issuer_cities"));
  EXPECT_EQ(RefusalOf("i_repeat", {}, SetIssuers(kNingbo, false, {kShanghai, kShanghai}, "r")),
            Rule("issuer_repeated", "issuer_cities"));
  v1::Event no_reason = SetIssuers(kNingbo, false, {kShanghai}, "r");
  no_reason.mutable_accepted_issuers_change_requested()->clear_reason();
  EXPECT_EQ(RefusalOf("i_reason", {}, no_reason), Rule("reason", "reason"));
}

TEST_F(MemberLedgerTest, AnEmptyListAcceptsNoOtherIssuer) {
  std::unique_ptr<StateStore> store = FreshStore("empty_list");
  Feed(store.get(), {SetIssuers(kNingbo, false, {}, "e")});
  MemberRecord ningbo = Member(store.get(), "city:330200");
  EXPECT_FALSE(ningbo.accepts_all());
  EXPECT_EQ(ningbo.accepted_issuer_cities_size(), 0);
  EXPECT_EQ(ningbo.version(), 1u);
}

TEST_F(MemberLedgerTest, CommandsAreDecidedOnceAndOwnDecisionsChangeNothing) {
  std::unique_ptr<StateStore> store = FreshStore("once");
  const v1::Event suspend = SetStatus("city:450200", v1::MEMBER_STATUS_SUSPENDED, "once");
  Feed(store.get(), {suspend});
  std::vector<v1::Event> decisions = Outbox(store.get());
  ASSERT_EQ(decisions.size(), 1u);
  const std::string digest = Digest(store.get());
  // The same command again (a producer retry past the filter's horizon), and the decision read
  // back from the topic: the record and the outbox stay as they were.
  Feed(store.get(), {suspend, decisions[0]}, 2, {"city:450200", "city:450200"});
  EXPECT_EQ(Outbox(store.get()).size(), 1u);
  EXPECT_EQ(Member(store.get(), "city:450200").version(), 1u);
  auto stats = ReadMemberStats(ViewOf(*store));
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->duplicate_commands, 1);
  EXPECT_EQ(stats->unusable, 0);
  // A decision from anyone else and a record that does not parse are counted, not applied.
  v1::Event forged = decisions[0];
  *forged.mutable_source() = server::PlatformTenant("fraud");
  StateBatch batch(store.get());
  ASSERT_TRUE(ledger_
                  .Apply(event_log::Record::Owned(kMembersTopic, 0, 3, "city:450200",
                                                  forged.SerializeAsString()),
                         batch)
                  .ok());
  ASSERT_TRUE(
      ledger_.Apply(event_log::Record::Owned(kMembersTopic, 0, 4, "x", "\xff\xff\xff"), batch)
          .ok());
  ASSERT_TRUE(store->Commit(batch).ok());
  stats = ReadMemberStats(ViewOf(*store));
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->unusable, 2);
  EXPECT_EQ(Member(store.get(), "city:450200").version(), 1u);
  // Another topic is a wiring bug.
  StateBatch wrong(store.get());
  EXPECT_EQ(ledger_.Apply(event_log::Record::Owned("tongka.cards", 0, 0, "k", ""), wrong).code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(MemberLedgerTest, TheSameLogGivesTheSameDigestInAnyBatchSize) {
  std::vector<v1::Event> log;
  const uint32_t cities[] = {kShanghai, kNingbo, kLiuzhou};
  for (int i = 0; i < 60; ++i) {
    const uint32_t city = cities[i % 3];
    switch (i % 5) {
      case 0:
        log.push_back(
            SetStatus(CityParticipant(city), v1::MEMBER_STATUS_SUSPENDED, absl::StrCat("r", i)));
        break;
      case 1:
        log.push_back(SetIssuers(city, false, {cities[(i + 1) % 3], cities[(i + 2) % 3]},
                                 absl::StrCat("r", i)));
        break;
      case 2:
        log.push_back(
            SetStatus(CityParticipant(city), v1::MEMBER_STATUS_ACTIVE, absl::StrCat("r", i)));
        break;
      case 3:
        log.push_back(SetIssuers(city, true, {}, absl::StrCat("r", i)));
        break;
      default:
        log.push_back(log[static_cast<size_t>(i - 3)]);  // a repeat
        break;
    }
  }
  log.push_back(SetStatus("partner:unionmart", v1::MEMBER_STATUS_EXITING, "p"));
  std::string first;
  for (size_t batch_size : {1, 3, 7, 64}) {
    std::unique_ptr<StateStore> store = FreshStore(absl::StrCat("digest_", batch_size));
    Feed(store.get(), log, batch_size);
    const std::string digest = Digest(store.get());
    if (first.empty()) first = digest;
    EXPECT_EQ(digest, first) << "batch size " << batch_size;
    next_offset_.erase(store.get());
  }
}

// The failed-issuer playbook: an EXITING issuer's cards move to an ACTIVE successor, and every
// tongka.cards partition gets its own copy of the decision, keyed to hash there.
TEST_F(MemberLedgerTest, TransferMovesAnExitingIssuersCardsToItsSuccessor) {
  constexpr uint32_t kLiuzhou = 450200;
  constexpr uint32_t kNanning = 450100;
  constexpr uint32_t kGuilin = 450300;
  const v1::Event exiting = SetStatus("city:450200", v1::MEMBER_STATUS_EXITING, "x1");
  EXPECT_EQ(RefusalOf("t_not_exiting", {}, Transfer(kLiuzhou, kNanning, "t")),
            std::make_pair(std::string("issuer_not_exiting"), std::string("from_city")));
  EXPECT_EQ(RefusalOf("t_same", {exiting}, Transfer(kLiuzhou, kLiuzhou, "t")),
            std::make_pair(std::string("same_city"), std::string("to_city")));
  EXPECT_EQ(RefusalOf("t_unknown", {exiting}, Transfer(kLiuzhou, 999999, "t")),
            std::make_pair(std::string("unknown_city"), std::string("to_city")));
  EXPECT_EQ(RefusalOf("t_city", {exiting},
                      Transfer(kLiuzhou, kNanning, "t", server::CityTenant(kNanning))),
            std::make_pair(std::string("ministry_only"), std::string("source")));
  EXPECT_EQ(RefusalOf("t_suspended",
                      {exiting, SetStatus("city:450100", v1::MEMBER_STATUS_SUSPENDED, "s1")},
                      Transfer(kLiuzhou, kNanning, "t")),
            std::make_pair(std::string("successor_not_active"), std::string("to_city")));
  EXPECT_EQ(RefusalOf("t_key", {exiting}, Transfer(kLiuzhou, kNanning, "t"), "city:450100"),
            std::make_pair(std::string("participant_key"), std::string("from_city")));

  auto store = FreshStore("transfer");
  const v1::Event transfer = Transfer(kLiuzhou, kNanning, "t1");
  Feed(store.get(), {exiting, transfer});
  ASSERT_TRUE(Outcome(store.get(), transfer).accepted());
  EXPECT_EQ(Member(store.get(), "city:450200").successor_city(), kNanning);
  EXPECT_EQ(Member(store.get(), "city:450200").status(), v1::MEMBER_STATUS_EXITING);
  auto outbox = store->ReadOutbox(1000);
  ASSERT_TRUE(outbox.ok());
  std::set<int32_t> partitions;
  for (const auto& entry : *outbox) {
    v1::Event event;
    ASSERT_TRUE(event.ParseFromString(entry.value));
    if (entry.topic == kMembersTopic) {
      if (event.has_member_changed() && event.member_changed().request_id() == "t1") {
        EXPECT_EQ(event.member_changed().successor_city(), kNanning);
      }
      continue;
    }
    ASSERT_EQ(entry.topic, kCardsTopic);
    ASSERT_TRUE(event.has_issuer_transferred());
    const v1::IssuerTransferred& copy = event.issuer_transferred();
    EXPECT_EQ(copy.from_city(), kLiuzhou);
    EXPECT_EQ(copy.to_city(), kNanning);
    EXPECT_EQ(copy.command_event_id(), transfer.event_id());
    EXPECT_EQ(event_log::PartitionForKey(entry.key, kCardsPartitions), copy.cards_partition());
    EXPECT_EQ(event.source().service(), kServiceName);
    partitions.insert(copy.cards_partition());
  }
  EXPECT_EQ(partitions, (std::set<int32_t>{0, 1, 2, 3}));

  // Once moved, never again; and a successor whose own cards moved takes no others.
  EXPECT_EQ(RefusalOf("t_again", {exiting, transfer}, Transfer(kLiuzhou, kGuilin, "t2")),
            std::make_pair(std::string("already_transferred"), std::string("from_city")));
  EXPECT_EQ(
      RefusalOf("t_chain",
                {exiting, transfer, SetStatus("city:450300", v1::MEMBER_STATUS_EXITING, "x3")},
                Transfer(kGuilin, kLiuzhou, "t3")),
      std::make_pair(std::string("successor_not_active"), std::string("to_city")));
}

}  // namespace
}  // namespace tongka::card_registry
