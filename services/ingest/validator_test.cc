// Proves every validation rule of validator.h, table-driven: each case breaks exactly one rule of
// a well-formed, correctly signed upload (re-signing it, so that the rule under test and not the
// MAC is what fails) and expects that field and rule. Time is a fixed "now" (a manual clock), so
// the skew, late and horizon rules are exact at their boundaries.
#include "services/ingest/validator.h"

#include <gtest/gtest.h>

#include <functional>
#include <memory>

#include "absl/strings/str_cat.h"
#include "libs/crypto/sm4_cmac.h"
#include "libs/server/tenant.h"
#include "libs/txn/card_id.h"
#include "libs/txn/mac_input.h"
#include "libs/txn/upload.h"
#include "services/ingest/testing/uploads.h"

namespace tongka::ingest {
namespace {

using testing::SignedLoad;
using testing::SignedRefund;
using testing::SignedTap;
using testing::TxnSpec;

const absl::Time kNow = absl::FromUnixSeconds(1767225600) + absl::Minutes(1);

class ValidatorTest : public ::testing::Test {
 protected:
  ValidatorTest() : keyring_(*txn::CityKeyring::Dev()), validator_(limits_, &keyring_) {}

  Verdict Check(const v1::TransactionUpload& upload,
                const v1::Tenant& tenant = server::CityTenant(310000), absl::Time now = kNow) {
    return validator_.Validate(tenant, upload, now);
  }

  // ValidateMany of the uploads, each verdict checked against the upload's own Validate.
  std::vector<Verdict> ExpectBatchJudgedAsAlone(const std::vector<v1::TransactionUpload>& uploads,
                                                const v1::Tenant& tenant) {
    std::vector<const v1::TransactionUpload*> batch;
    for (const v1::TransactionUpload& upload : uploads) batch.push_back(&upload);
    std::vector<Verdict> verdicts = validator_.ValidateMany(tenant, batch, kNow);
    EXPECT_EQ(verdicts.size(), uploads.size());
    for (size_t i = 0; i < std::min(uploads.size(), verdicts.size()); ++i) {
      const Verdict alone = Check(uploads[i], tenant);
      EXPECT_EQ(verdicts[i].rule, alone.rule) << i;
      EXPECT_EQ(verdicts[i].field, alone.field) << i;
      EXPECT_EQ(verdicts[i].message, alone.message) << i;
      EXPECT_EQ(verdicts[i].event_id, alone.event_id) << i;
      EXPECT_EQ(verdicts[i].mac_input, alone.mac_input) << i;
      EXPECT_EQ(verdicts[i].late, alone.late) << i;
      EXPECT_EQ(verdicts[i].metrics_city, alone.metrics_city) << i;
    }
    return verdicts;
  }

  ValidationLimits limits_;
  txn::CityKeyring keyring_;
  Validator validator_;
};

TEST_F(ValidatorTest, WellFormedKindsPass) {
  for (const v1::TransactionUpload& upload :
       {SignedTap(keyring_, {}), SignedLoad(keyring_, {}), SignedRefund(keyring_, {})}) {
    Verdict verdict = Check(upload);
    EXPECT_TRUE(verdict.ok()) << verdict.field << " " << verdict.rule << ": " << verdict.message;
    EXPECT_EQ(verdict.event_id, txn::TxnEventId(txn::CommonOf(upload)->terminal_id(), 1));
    EXPECT_EQ(verdict.mac_input, *txn::MacInput(upload));
    EXPECT_FALSE(verdict.late);
    EXPECT_EQ(verdict.metrics_city, 310000u);
  }
  EXPECT_EQ(txn::TxnEventId("310000-BUS-000001", 7), "txn/310000-BUS-000001/7");
}

TEST_F(ValidatorTest, CrossCityCardAndPartnerTerminalsPass) {
  // A Ningbo card on a Shanghai bus.
  EXPECT_TRUE(Check(SignedTap(keyring_, {.issuer_city = 330200})).ok());
  // A partner's shop in Liuzhou, uploaded by the partner.
  Verdict verdict = Check(SignedTap(keyring_, {.acquirer_city = 450200, .partner_id = "unionmart"}),
                          server::PartnerTenant("unionmart"));
  EXPECT_TRUE(verdict.ok()) << verdict.rule << ": " << verdict.message;
  EXPECT_EQ(verdict.metrics_city, 450200u);
}

struct RuleCase {
  const char* name;
  std::function<void(v1::TransactionUpload*)> mutate;  // applied to a signed Shanghai bus tap
  const char* field;
  const char* rule;
  bool resign = true;
  v1::Tenant tenant = server::CityTenant(310000);
  absl::Time now = kNow;
};

v1::TxnCommon* Txn(v1::TransactionUpload* u) { return u->mutable_tap()->mutable_txn(); }

TEST_F(ValidatorTest, EveryRuleIsNamed) {
  const std::vector<RuleCase> cases = {
      {"no body", [](auto* u) { u->clear_body(); }, "body", "required", false},
      {"no device time", [](auto* u) { u->set_occurred_at_us(0); }, "tap.occurred_at_us",
       "required"},
      {"no card", [](auto* u) { Txn(u)->clear_card_id(); }, "tap.txn.card_id", "required"},
      {"card format", [](auto* u) { Txn(u)->set_card_id("31000000000000001"); }, "tap.txn.card_id",
       "card_id_format"},
      {"card luhn",
       [](auto* u) {
         std::string id = Txn(u)->card_id();
         id.back() = id.back() == '9' ? '0' : id.back() + 1;
         Txn(u)->set_card_id(id);
       },
       "tap.txn.card_id", "card_id_luhn"},
      {"no issuer", [](auto* u) { Txn(u)->set_issuer_city(0); }, "tap.txn.issuer_city", "required"},
      {"issuer not member", [](auto* u) { Txn(u)->set_issuer_city(999999); }, "tap.txn.issuer_city",
       "member_city"},
      {"issuer not the card's", [](auto* u) { Txn(u)->set_issuer_city(330200); },
       "tap.txn.issuer_city", "issuer_matches_card_id"},
      {"no acquirer", [](auto* u) { Txn(u)->set_acquirer_city(0); }, "tap.txn.acquirer_city",
       "required"},
      {"acquirer not member", [](auto* u) { Txn(u)->set_acquirer_city(310001); },
       "tap.txn.acquirer_city", "member_city"},
      {"no terminal", [](auto* u) { Txn(u)->clear_terminal_id(); }, "tap.txn.terminal_id",
       "required"},
      {"terminal format", [](auto* u) { Txn(u)->set_terminal_id("bus-7"); }, "tap.txn.terminal_id",
       "terminal_id_format"},
      {"terminal mode", [](auto* u) { Txn(u)->set_terminal_id("310000-TRAM-000001"); },
       "tap.txn.terminal_id", "terminal_id_mode"},
      {"terminal serial", [](auto* u) { Txn(u)->set_terminal_id("310000-BUS-1"); },
       "tap.txn.terminal_id", "terminal_id_serial"},
      {"terminal separator", [](auto* u) { Txn(u)->set_terminal_id("310000-BUS-00|001"); },
       "tap.txn.terminal_id", "terminal_id_serial"},
      {"no seq", [](auto* u) { Txn(u)->set_terminal_seq(0); }, "tap.txn.terminal_seq", "required"},
      {"operator", [](auto* u) { Txn(u)->set_operator_id("330200"); }, "tap.txn.operator_id",
       "operator_matches_terminal"},
      {"partner on a city terminal", [](auto* u) { Txn(u)->set_partner_id("unionmart"); },
       "tap.txn.partner_id", "partner_matches_terminal"},
      {"partner id of another partner",
       [](auto* u) {
         *u = SignedTap(*txn::CityKeyring::Dev(), {.partner_id = "unionmart"});
         Txn(u)->set_partner_id("othermart");
       },
       "tap.txn.partner_id", "partner_matches_terminal", true, server::PartnerTenant("unionmart")},
      {"acquirer of another city's terminal", [](auto* u) { Txn(u)->set_acquirer_city(330200); },
       "tap.txn.acquirer_city", "acquirer_matches_terminal"},
      {"another city's terminal",
       [](auto* u) { *u = SignedTap(*txn::CityKeyring::Dev(), {.acquirer_city = 330200}); },
       "tap.txn.terminal_id", "terminal_not_yours"},
      {"a partner terminal uploaded by a city",
       [](auto* u) { *u = SignedTap(*txn::CityKeyring::Dev(), {.partner_id = "unionmart"}); },
       "tap.txn.terminal_id", "terminal_not_yours"},
      {"a partner acquiring in another city",
       [](auto* u) {
         *u = SignedTap(*txn::CityKeyring::Dev(),
                        {.acquirer_city = 330200, .partner_id = "unionmart"});
       },
       "tap.txn.terminal_id", "terminal_not_yours", true, server::CityTenant(330200)},
      {"another partner's terminal",
       [](auto* u) { *u = SignedTap(*txn::CityKeyring::Dev(), {.partner_id = "othermart"}); },
       "tap.txn.terminal_id", "terminal_not_yours", true, server::PartnerTenant("unionmart")},
      {"a city terminal uploaded by a partner", [](auto* u) {}, "tap.txn.terminal_id",
       "terminal_not_yours", true, server::PartnerTenant("unionmart")},
      {"negative balance before",
       [](auto* u) {
         Txn(u)->set_balance_before_fen(-1);
         Txn(u)->set_balance_after_fen(-201);
       },
       "tap.txn.balance_before_fen", "balance_range"},
      {"negative balance after",
       [](auto* u) {
         Txn(u)->set_balance_before_fen(100);
         Txn(u)->set_balance_after_fen(-100);
       },
       "tap.txn.balance_after_fen", "balance_range"},
      {"balance too large", [](auto* u) { Txn(u)->set_balance_before_fen(int64_t{1} << 62); },
       "tap.txn.balance_before_fen", "balance_range"},
      {"zero tap", [](auto* u) { u->mutable_tap()->set_amount_fen(0); }, "tap.amount_fen",
       "amount_range"},
      {"tap too large",
       [](auto* u) {
         u->mutable_tap()->set_amount_fen(100001);
         Txn(u)->set_balance_before_fen(200000);
         Txn(u)->set_balance_after_fen(200000 - 100001);
       },
       "tap.amount_fen", "amount_range"},
      {"tap balance chain", [](auto* u) { Txn(u)->set_balance_after_fen(9801); },
       "tap.txn.balance_after_fen", "balance_arithmetic"},
      {"load too large",
       [](auto* u) { *u = SignedLoad(*txn::CityKeyring::Dev(), {.amount_fen = 500001}); },
       "load.amount_fen", "amount_range"},
      {"load balance goes down",
       [](auto* u) {
         *u = SignedLoad(*txn::CityKeyring::Dev(), {.amount_fen = 5000});
         u->mutable_load()->mutable_txn()->set_balance_after_fen(5000);
       },
       "load.txn.balance_after_fen", "balance_arithmetic"},
      {"refund negative",
       [](auto* u) {
         *u = SignedRefund(*txn::CityKeyring::Dev(), {});
         u->mutable_refund()->set_amount_fen(-200);
       },
       "refund.amount_fen", "amount_range"},
      {"refund balance chain",
       [](auto* u) {
         *u = SignedRefund(*txn::CityKeyring::Dev(), {});
         u->mutable_refund()->mutable_txn()->set_balance_after_fen(9800);
       },
       "refund.txn.balance_after_fen", "balance_arithmetic"},
      {"refund without original",
       [](auto* u) {
         *u = SignedRefund(*txn::CityKeyring::Dev(), {});
         u->mutable_refund()->clear_original_terminal_id();
       },
       "refund.original_terminal_id", "required"},
      {"refund without original seq",
       [](auto* u) {
         *u = SignedRefund(*txn::CityKeyring::Dev(), {});
         u->mutable_refund()->set_original_terminal_seq(0);
       },
       "refund.original_terminal_seq", "required"},
      {"refund reason separator",
       [](auto* u) {
         *u = SignedRefund(*txn::CityKeyring::Dev(), {});
         u->mutable_refund()->set_reason("a|b");
       },
       "refund.reason", "no_separator"},
      {"load channel separator",
       [](auto* u) {
         *u = SignedLoad(*txn::CityKeyring::Dev(), {});
         u->mutable_load()->set_channel("app|x");
       },
       "load.channel", "no_separator"},
      {"no mode", [](auto* u) { u->mutable_tap()->clear_mode(); }, "tap.mode", "required"},
      {"mode of another terminal",
       [](auto* u) { u->mutable_tap()->set_mode(v1::TRANSPORT_MODE_METRO); }, "tap.mode",
       "mode_matches_terminal"},
      {"route separator", [](auto* u) { u->mutable_tap()->set_route_id("71|72"); }, "tap.route_id",
       "no_separator"},
      {"station too long", [](auto* u) { u->mutable_tap()->set_station_id(std::string(65, 's')); },
       "tap.station_id", "too_long"},
      {"future beyond skew",
       [](auto* u) {
         u->set_occurred_at_us(absl::ToUnixMicros(kNow + absl::Minutes(5) + absl::Microseconds(1)));
       },
       "tap.occurred_at_us", "occurred_at_future"},
      {"older than the dedup horizon",
       [](auto* u) {
         u->set_occurred_at_us(absl::ToUnixMicros(kNow - absl::Hours(24 * 30) + absl::Minutes(5) -
                                                  absl::Microseconds(1)));
       },
       "tap.occurred_at_us", "occurred_at_too_old"},
      {"short mac", [](auto* u) { Txn(u)->set_mac("short"); }, "tap.txn.mac", "mac_length", false},
      {"forged mac", [](auto* u) { Txn(u)->set_mac(std::string(16, '\0')); }, "tap.txn.mac",
       "mac_verify", false},
      {"signed content changed", [](auto* u) { u->mutable_tap()->set_route_id("72"); },
       "tap.txn.mac", "mac_verify", false},
      {"signed by another terminal's key",
       [](auto* u) {
         v1::TransactionUpload other = SignedTap(*txn::CityKeyring::Dev(), {.terminal_serial = 2});
         Txn(u)->set_mac(other.tap().txn().mac());
       },
       "tap.txn.mac", "mac_verify", false},
  };
  for (const RuleCase& c : cases) {
    v1::TransactionUpload upload = SignedTap(keyring_, {});
    c.mutate(&upload);
    // Re-sign where a key exists, so the MAC is not what fails (rules about cities and terminal
    // ids come before the MAC check, so those need no valid tag).
    const v1::TxnCommon* txn = txn::CommonOf(upload);
    if (c.resign && txn != nullptr &&
        keyring_.TerminalKey(txn->acquirer_city(), txn->terminal_id()).ok()) {
      testing::Sign(keyring_, &upload);
    }
    Verdict verdict = Check(upload, c.tenant, c.now);
    EXPECT_EQ(verdict.rule, c.rule) << c.name << ": " << verdict.field << " " << verdict.message;
    EXPECT_EQ(verdict.field, c.field) << c.name;
    EXPECT_FALSE(verdict.message.empty()) << c.name;
    EXPECT_TRUE(verdict.event_id.empty()) << c.name;
  }
}

// ValidateMany verifies a batch's MACs together; each verdict must still be exactly what
// Validate gives its item alone, whatever its neighbours are (good, forged, late, other rules
// broken, other kinds and terminals), and a bad MAC must never leak into a neighbour's verdict.
// Validate is ValidateMany of one, so the MAC outcome is also checked independently of both:
// crypto::VerifySm4Cmac (OpenSSL) over txn::MacInput under the keyring's key.
// ValidateMany carries a terminal's parse and key from one item to the next while they name the
// same terminal: a partner's terminal in shops of several cities (a key per city), re-signed under
// the wrong city's key, a malformed terminal id twice in a row, and runs that come back. Every
// verdict equals the item's own.
TEST_F(ValidatorTest, RunsOfOneTerminalAreJudgedAsEachItemAlone) {
  const uint32_t kShopCities[] = {450200, 450200, 310000, 310000, 450200, 110000};
  std::vector<v1::TransactionUpload> uploads;
  uint64_t seq = 1;
  for (uint32_t city : kShopCities) {
    uploads.push_back(
        SignedTap(keyring_, {.acquirer_city = city, .seq = seq++, .partner_id = "unionmart"}));
  }
  // Signed for Liuzhou's shop, claimed for Shanghai's: the key differs.
  v1::TransactionUpload moved = uploads[0];
  txn::MutableCommonOf(&moved)->set_acquirer_city(310000);
  uploads.push_back(moved);
  for (int i = 0; i < 2; ++i) {
    v1::TransactionUpload broken =
        SignedTap(keyring_, {.acquirer_city = 450200, .seq = seq++, .partner_id = "unionmart"});
    txn::MutableCommonOf(&broken)->set_terminal_id("P-unionmart-12");
    uploads.push_back(broken);
  }
  uploads.push_back(
      SignedTap(keyring_, {.acquirer_city = 450200, .seq = seq++, .partner_id = "unionmart"}));
  uploads.push_back(SignedTap(
      keyring_,
      {.acquirer_city = 450200, .terminal_serial = 2, .seq = seq++, .partner_id = "unionmart"}));
  uploads.push_back(uploads[1]);
  const std::vector<Verdict> verdicts =
      ExpectBatchJudgedAsAlone(uploads, server::PartnerTenant("unionmart"));
  ASSERT_EQ(verdicts.size(), uploads.size());
  int accepted = 0;
  for (const Verdict& verdict : verdicts) accepted += verdict.ok();
  EXPECT_EQ(accepted, 9);
  EXPECT_EQ(verdicts[6].rule, "mac_verify");
  EXPECT_EQ(verdicts[7].rule, "terminal_id_serial");
  EXPECT_EQ(verdicts[8].rule, "terminal_id_serial");
}

TEST_F(ValidatorTest, ABatchIsJudgedAsItsItemsAreOneByOne) {
  std::vector<v1::TransactionUpload> uploads;
  for (uint32_t i = 1; i <= 40; ++i) {
    const TxnSpec spec{.terminal_serial = 1 + i / 7, .seq = i};
    v1::TransactionUpload upload = i % 3 == 0   ? SignedLoad(keyring_, spec)
                                   : i % 3 == 1 ? SignedTap(keyring_, spec)
                                                : SignedRefund(keyring_, spec);
    switch (i % 8) {
      case 2:  // forged
        txn::MutableCommonOf(&upload)->set_mac(std::string(16, static_cast<char>(i)));
        break;
      case 4:  // signed content changed after signing
        upload.set_occurred_at_us(upload.occurred_at_us() + 1);
        break;
      case 5:  // another rule, before the MAC
        txn::MutableCommonOf(&upload)->set_mac("short");
        break;
      case 7:  // a MAC under another terminal's key
        txn::MutableCommonOf(&upload)->set_terminal_id("310000-BUS-000099");
        break;
      case 6:  // late (accepted, marked) and, every other time, forged as well
        upload.set_occurred_at_us(absl::ToUnixMicros(kNow - absl::Hours(24 * 8)));
        if (i % 16 == 6) {
          testing::Sign(keyring_, &upload);
        } else {
          txn::MutableCommonOf(&upload)->set_mac(std::string(16, 'x'));
        }
        break;
      default:
        break;
    }
    uploads.push_back(std::move(upload));
  }
  const v1::Tenant tenant = server::CityTenant(310000);
  const std::vector<Verdict> verdicts = ExpectBatchJudgedAsAlone(uploads, tenant);
  ASSERT_EQ(verdicts.size(), uploads.size());
  int accepted = 0;
  for (size_t i = 0; i < uploads.size(); ++i) {
    const size_t item = i + 1;  // uploads[i] was made as item i + 1
    const v1::TxnCommon& txn = *txn::CommonOf(uploads[i]);
    const bool verifies =
        crypto::VerifySm4Cmac(*keyring_.TerminalKey(txn.acquirer_city(), txn.terminal_id()),
                              *txn::MacInput(uploads[i]), txn.mac());
    if (item % 8 == 5) {
      EXPECT_EQ(verdicts[i].rule, "mac_length") << i;
    } else {
      EXPECT_EQ(verdicts[i].ok(), verifies) << i;
      EXPECT_EQ(verdicts[i].rule, verifies ? "" : "mac_verify") << i;
    }
    if (item % 8 == 6 && verifies) {
      EXPECT_TRUE(verdicts[i].late) << i;
    }
    accepted += verdicts[i].ok();
  }
  EXPECT_EQ(accepted, 18);
  EXPECT_TRUE(validator_.ValidateMany(tenant, {}, kNow).empty());
}

TEST_F(ValidatorTest, TimeBoundariesAreExact) {
  const absl::Time occurred = absl::FromUnixSeconds(1767225600);
  v1::TransactionUpload tap = SignedTap(keyring_, {.occurred_at = occurred});
  // Exactly at the skew allowance: accepted.
  EXPECT_TRUE(Check(tap, server::CityTenant(310000), occurred - absl::Minutes(5)).ok());
  EXPECT_EQ(
      Check(tap, server::CityTenant(310000), occurred - absl::Minutes(5) - absl::Microseconds(1))
          .rule,
      "occurred_at_future");
  // Exactly at the late horizon: not late; one microsecond past: late.
  Verdict at_horizon = Check(tap, server::CityTenant(310000), occurred + absl::Hours(24 * 7));
  ASSERT_TRUE(at_horizon.ok()) << at_horizon.rule;
  EXPECT_FALSE(at_horizon.late);
  Verdict past = Check(tap, server::CityTenant(310000),
                       occurred + absl::Hours(24 * 7) + absl::Microseconds(1));
  ASSERT_TRUE(past.ok()) << past.rule;
  EXPECT_TRUE(past.late);
  // The dedup horizon minus the skew allowance is the last accepted age.
  const absl::Duration oldest = absl::Hours(24 * 30) - absl::Minutes(5);
  EXPECT_TRUE(Check(tap, server::CityTenant(310000), occurred + oldest).ok());
  EXPECT_EQ(Check(tap, server::CityTenant(310000), occurred + oldest + absl::Microseconds(1)).rule,
            "occurred_at_too_old");
}

TEST_F(ValidatorTest, ConfiguredBoundsApply) {
  ValidationLimits tight;
  tight.tap_amount_max_fen = 300;
  Validator validator(tight, &keyring_);
  EXPECT_TRUE(
      validator.Validate(server::CityTenant(310000), SignedTap(keyring_, {.amount_fen = 300}), kNow)
          .ok());
  EXPECT_EQ(
      validator.Validate(server::CityTenant(310000), SignedTap(keyring_, {.amount_fen = 301}), kNow)
          .rule,
      "amount_range");
}

TEST_F(ValidatorTest, RejectionsStillCarryTheMetricsCity) {
  v1::TransactionUpload tap = SignedTap(keyring_, {});
  Txn(&tap)->set_mac("x");
  EXPECT_EQ(Check(tap).metrics_city, 310000u);
  Txn(&tap)->set_acquirer_city(999999);
  EXPECT_EQ(Check(tap).metrics_city, 0u);
}

TEST_F(ValidatorTest, OnlyOperatorsAndPartnersUpload) {
  EXPECT_TRUE(CheckUploader(server::CityTenant(310000)).ok());
  EXPECT_TRUE(CheckUploader(server::PartnerTenant("unionmart")).ok());
  EXPECT_EQ(CheckUploader(server::MinistryTenant()).code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(CheckUploader(server::PlatformTenant("fraud")).code(),
            absl::StatusCode::kPermissionDenied);
}

TEST_F(ValidatorTest, EventCarriesEnvelopeAndLateFlag) {
  v1::TransactionUpload tap = SignedTap(keyring_, {});
  Verdict verdict = Check(tap, server::CityTenant(310000), kNow + absl::Hours(24 * 8));
  ASSERT_TRUE(verdict.ok());
  ASSERT_TRUE(verdict.late);
  v1::Event event = BuildTxnEvent(tap, server::CityTenant(310000), verdict, kNow);
  EXPECT_EQ(event.event_id(), verdict.event_id);
  EXPECT_EQ(event.occurred_at_us(), tap.occurred_at_us());
  EXPECT_EQ(event.recorded_at_us(), absl::ToUnixMicros(kNow));
  EXPECT_EQ(event.source().city(), 310000u);
  EXPECT_TRUE(event.tap().txn().late());
  EXPECT_EQ(event.tap().txn().mac(), tap.tap().txn().mac());
  EXPECT_EQ(event.tap().amount_fen(), tap.tap().amount_fen());
}

// The upload's body (tap, load or refund) as a message.
google::protobuf::Message* MutableBody(v1::TransactionUpload* upload) {
  switch (upload->body_case()) {
    case v1::TransactionUpload::kTap:
      return upload->mutable_tap();
    case v1::TransactionUpload::kLoad:
      return upload->mutable_load();
    default:
      return upload->mutable_refund();
  }
}

TEST_F(ValidatorTest, UnsignedUnknownFieldsNeverReachTheLog) {
  // Field 99 is unknown to this schema in every message, so neither the MAC nor the digest
  // covers it: in the body, in its TxnCommon, or at the top of the upload.
  auto add_unknown = [](google::protobuf::Message* message) {
    message->GetReflection()->MutableUnknownFields(message)->AddVarint(99, 7);
  };
  for (const v1::TransactionUpload& signed_upload :
       {SignedTap(keyring_, {}), SignedLoad(keyring_, {}), SignedRefund(keyring_, {})}) {
    v1::TransactionUpload upload = signed_upload;
    google::protobuf::Message* body = MutableBody(&upload);
    add_unknown(&upload);
    add_unknown(body);
    add_unknown(
        body->GetReflection()->MutableMessage(body, body->GetDescriptor()->FindFieldByName("txn")));
    Verdict verdict = Check(upload);
    ASSERT_TRUE(verdict.ok()) << upload.ShortDebugString();
    const v1::Event event = BuildTxnEvent(upload, server::CityTenant(310000), verdict, kNow);
    v1::Event clean = event;
    clean.DiscardUnknownFields();
    EXPECT_EQ(event.SerializeAsString(), clean.SerializeAsString()) << upload.ShortDebugString();
    EXPECT_NE(event.body_case(), v1::Event::BODY_NOT_SET);
  }
}

// What ingest appends is SerializeTxnEvent's bytes: exactly BuildTxnEvent's serialization, for
// every body, whether the upload's late flag agrees with the verdict or not, with unknown fields
// anywhere, and at the edges of the envelope (no event id, negative and zero times, a partner's
// and an empty source).
TEST_F(ValidatorTest, SerializedEventIsTheBuiltEventByteForByte) {
  auto add_unknown = [](google::protobuf::Message* message) {
    message->GetReflection()->MutableUnknownFields(message)->AddLengthDelimited(99, "x");
  };
  std::vector<v1::TransactionUpload> uploads;
  for (const v1::TransactionUpload& signed_upload :
       {SignedTap(keyring_, {}), SignedLoad(keyring_, {}), SignedRefund(keyring_, {})}) {
    for (int variant = 0; variant < 5; ++variant) {
      v1::TransactionUpload upload = signed_upload;
      v1::TxnCommon* txn = txn::MutableCommonOf(&upload);
      google::protobuf::Message* body = MutableBody(&upload);
      if (variant == 1) txn->set_late(true);
      if (variant == 2) add_unknown(body);
      if (variant == 3) add_unknown(txn);
      if (variant == 4) add_unknown(&upload);
      uploads.push_back(upload);
    }
  }
  v1::TransactionUpload odd_times = SignedTap(keyring_, {});
  odd_times.set_occurred_at_us(-5);
  uploads.push_back(odd_times);
  odd_times.set_occurred_at_us(0);
  uploads.push_back(odd_times);
  v1::Tenant partner;
  partner.set_kind(v1::TENANT_KIND_PARTNER);
  partner.set_partner_id("unionpay-shops");
  // One buffer through every case, as ingest reuses it: whatever it held before is replaced.
  std::string reused(4096, 'x');
  for (const v1::TransactionUpload& upload : uploads) {
    for (bool late : {false, true}) {
      for (const std::string& event_id : {std::string("txn/310000-BUS-000001/1"), std::string()}) {
        for (const v1::Tenant& source : {server::CityTenant(310000), partner, v1::Tenant()}) {
          for (absl::Time recorded_at : {kNow, absl::UnixEpoch()}) {
            Verdict verdict;
            verdict.event_id = event_id;
            verdict.late = late;
            const std::string expected =
                BuildTxnEvent(upload, source, verdict, recorded_at).SerializeAsString();
            EXPECT_EQ(SerializeTxnEvent(upload, source, verdict, recorded_at), expected)
                << upload.ShortDebugString() << " late=" << late << " id=" << event_id
                << " source=" << source.ShortDebugString();
            SerializeTxnEventTo(upload, source, verdict, recorded_at, &reused);
            EXPECT_EQ(reused, expected) << "into a reused buffer";
          }
        }
      }
    }
  }
}

// BuildTxnEvent drops unknown fields from a body and its TxnCommon only: that is complete only
// while TxnCommon is the one message-typed field of a body and TxnCommon holds no message. A
// change to that schema must extend DropUnknownFields in validator.cc, and then this test.
TEST(BuildTxnEventSchemaTest, TxnCommonIsTheOnlyMessageInsideABody) {
  for (const google::protobuf::Descriptor* body :
       {v1::Tap::descriptor(), v1::Load::descriptor(), v1::Refund::descriptor()}) {
    for (int i = 0; i < body->field_count(); ++i) {
      const google::protobuf::FieldDescriptor* field = body->field(i);
      if (field->type() != google::protobuf::FieldDescriptor::TYPE_MESSAGE) continue;
      EXPECT_EQ(field->name(), "txn") << body->full_name();
      EXPECT_EQ(field->message_type(), v1::TxnCommon::descriptor()) << body->full_name();
    }
  }
  const google::protobuf::Descriptor* txn = v1::TxnCommon::descriptor();
  for (int i = 0; i < txn->field_count(); ++i) {
    EXPECT_NE(txn->field(i)->type(), google::protobuf::FieldDescriptor::TYPE_MESSAGE)
        << txn->field(i)->full_name();
    EXPECT_NE(txn->field(i)->type(), google::protobuf::FieldDescriptor::TYPE_GROUP);
  }
}

// The member rules judge by a snapshot of the member table (member_table.h), here a fixed one.
class FixedMembers : public MemberSource {
 public:
  void Change(const std::string& participant, v1::MemberStatus status, bool accepts_all,
              const std::vector<uint32_t>& issuers) {
    v1::Event event;
    event.mutable_source()->set_kind(v1::TENANT_KIND_PLATFORM);
    event.mutable_source()->set_service("card_registry");
    v1::MemberChanged* changed = event.mutable_member_changed();
    changed->set_participant(participant);
    changed->set_status(status);
    changed->set_accepts_all(accepts_all);
    for (uint32_t issuer : issuers) changed->add_accepted_issuer_cities(issuer);
    changed->set_version(++version_);
    auto table = std::make_shared<MemberTable>(*table_);
    EXPECT_EQ(table->Apply(event), MemberTable::Applied::kChanged);
    table_ = std::move(table);
  }
  std::shared_ptr<const MemberTable> Current() const override { return table_; }

 private:
  uint64_t version_ = 0;
  std::shared_ptr<const MemberTable> table_ = std::make_shared<MemberTable>();
};

class MemberRulesTest : public ValidatorTest {
 protected:
  Verdict Judge(const v1::TransactionUpload& upload) {
    return Validator(limits_, &keyring_, &members_)
        .Validate(server::CityTenant(310000), upload, kNow);
  }
  void ExpectRule(const v1::TransactionUpload& upload, const std::string& field,
                  const std::string& rule) {
    Verdict verdict = Judge(upload);
    EXPECT_EQ(verdict.rule, rule) << verdict.message;
    EXPECT_EQ(verdict.field, absl::StrCat(BodyOf(upload), ".", field));
    EXPECT_EQ(verdict.metrics_city, 310000u);
  }
  static std::string BodyOf(const v1::TransactionUpload& upload) {
    return upload.has_tap() ? "tap" : upload.has_load() ? "load" : "refund";
  }

  FixedMembers members_;
};

TEST_F(MemberRulesTest, AnEmptyTableRefusesNothing) {
  EXPECT_TRUE(Judge(SignedTap(keyring_, {.issuer_city = 450200})).ok());
  EXPECT_TRUE(
      Validator(limits_, &keyring_)
          .Validate(server::CityTenant(310000), SignedTap(keyring_, {.issuer_city = 450200}), kNow)
          .ok());
}

TEST_F(MemberRulesTest, IssuerNotAccepted) {
  // Shanghai accepts Ningbo only: a Liuzhou card is refused, Ningbo's and its own pass.
  members_.Change("city:310000", v1::MEMBER_STATUS_ACTIVE, false, {330200});
  ExpectRule(SignedTap(keyring_, {.issuer_city = 450200}), "txn.issuer_city",
             "issuer_not_accepted");
  ExpectRule(SignedLoad(keyring_, {.issuer_city = 450200}), "txn.issuer_city",
             "issuer_not_accepted");
  EXPECT_TRUE(Judge(SignedRefund(keyring_, {.issuer_city = 450200})).ok());
  EXPECT_TRUE(Judge(SignedTap(keyring_, {.issuer_city = 330200})).ok());
  EXPECT_TRUE(Judge(SignedTap(keyring_, {})).ok()) << "an acquirer always takes its own cards";
  // Another acquirer's list does not apply here; accepting all again lifts the rule.
  members_.Change("city:330200", v1::MEMBER_STATUS_ACTIVE, false, {});
  EXPECT_TRUE(Judge(SignedTap(keyring_, {.issuer_city = 330200})).ok());
  members_.Change("city:310000", v1::MEMBER_STATUS_ACTIVE, true, {});
  EXPECT_TRUE(Judge(SignedTap(keyring_, {.issuer_city = 450200})).ok());
}

TEST_F(MemberRulesTest, IssuerSuspended) {
  members_.Change("city:450200", v1::MEMBER_STATUS_SUSPENDED, true, {});
  ExpectRule(SignedTap(keyring_, {.issuer_city = 450200}), "txn.issuer_city", "issuer_suspended");
  ExpectRule(SignedLoad(keyring_, {.issuer_city = 450200}), "txn.issuer_city", "issuer_suspended");
  EXPECT_TRUE(Judge(SignedRefund(keyring_, {.issuer_city = 450200})).ok())
      << "refunds give money back to the cardholder";
  EXPECT_TRUE(Judge(SignedTap(keyring_, {.issuer_city = 330200})).ok());
  // EXITING members keep working until their cards have moved.
  members_.Change("city:450200", v1::MEMBER_STATUS_EXITING, true, {});
  EXPECT_TRUE(Judge(SignedTap(keyring_, {.issuer_city = 450200})).ok());
}

TEST_F(MemberRulesTest, AcquirerSuspended) {
  members_.Change("city:310000", v1::MEMBER_STATUS_SUSPENDED, true, {});
  ExpectRule(SignedTap(keyring_, {}), "txn.acquirer_city", "acquirer_suspended");
  ExpectRule(SignedLoad(keyring_, {.issuer_city = 330200}), "txn.acquirer_city",
             "acquirer_suspended");
  EXPECT_TRUE(Judge(SignedRefund(keyring_, {})).ok());
  members_.Change("city:310000", v1::MEMBER_STATUS_ACTIVE, true, {});
  EXPECT_TRUE(Judge(SignedTap(keyring_, {})).ok());
}

TEST_F(MemberRulesTest, OnlyTheRegistrysNewerDecisionsCount) {
  MemberTable table;
  v1::Event event;
  v1::MemberChanged* changed = event.mutable_member_changed();
  changed->set_participant("city:450200");
  changed->set_status(v1::MEMBER_STATUS_SUSPENDED);
  changed->set_version(2);
  // Anyone but platform:card_registry is ignored.
  *event.mutable_source() = server::MinistryTenant();
  EXPECT_EQ(table.Apply(event), MemberTable::Applied::kIgnored);
  *event.mutable_source() = server::PlatformTenant("card_registry");
  EXPECT_EQ(table.Apply(event), MemberTable::Applied::kChanged);
  EXPECT_EQ(table.CityStatus(450200), v1::MEMBER_STATUS_SUSPENDED);
  // An older copy read again does not undo a newer decision.
  changed->set_status(v1::MEMBER_STATUS_ACTIVE);
  changed->set_version(1);
  EXPECT_EQ(table.Apply(event), MemberTable::Applied::kStale);
  EXPECT_EQ(table.CityStatus(450200), v1::MEMBER_STATUS_SUSPENDED);
  // Commands and rejections are not decisions.
  v1::Event command;
  *command.mutable_source() = server::PlatformTenant("card_registry");
  command.mutable_member_status_change_requested()->set_participant("city:310000");
  EXPECT_EQ(table.Apply(command), MemberTable::Applied::kIgnored);
  EXPECT_EQ(table.size(), 1u);
}

}  // namespace
}  // namespace tongka::ingest
