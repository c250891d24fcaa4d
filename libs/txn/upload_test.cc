// Proves upload signing and ids: a signed upload's MAC verifies under an independently derived
// terminal key and breaks when a signed field changes; ids follow "txn/<terminal>/<seq>".
#include "libs/txn/upload.h"

#include "gtest/gtest.h"
#include "libs/crypto/sm4_cmac.h"
#include "libs/crypto/terminal_key.h"
#include "libs/txn/card_id.h"
#include "libs/txn/mac_input.h"

namespace tongka::txn {
namespace {

v1::TransactionUpload Tap() {
  v1::TransactionUpload upload;
  upload.set_occurred_at_us(1795500000000000);
  v1::TxnCommon* txn = upload.mutable_tap()->mutable_txn();
  txn->set_card_id(MakeCardId(310000, 42));
  txn->set_issuer_city(310000);
  txn->set_acquirer_city(330200);
  txn->set_operator_id("330200");
  txn->set_terminal_id("330200-BUS-000123");
  txn->set_terminal_seq(7);
  upload.mutable_tap()->set_amount_fen(200);
  return upload;
}

TEST(UploadTest, SignedMacVerifiesAndCoversTheFields) {
  auto keyring = CityKeyring::Dev();
  ASSERT_TRUE(keyring.ok());
  v1::TransactionUpload upload = Tap();
  ASSERT_TRUE(SignUpload(*keyring, &upload).ok());
  auto master = DevCityMasterKey(330200);
  ASSERT_TRUE(master.ok());
  auto key = crypto::DeriveTerminalKey(*master, "330200-BUS-000123");
  ASSERT_TRUE(key.ok());
  EXPECT_TRUE(crypto::VerifySm4Cmac(*key, *MacInput(upload), upload.tap().txn().mac()));
  v1::TransactionUpload changed = upload;
  changed.mutable_tap()->set_amount_fen(201);
  EXPECT_FALSE(crypto::VerifySm4Cmac(*key, *MacInput(changed), changed.tap().txn().mac()));
}

TEST(UploadTest, IdsAndErrors) {
  EXPECT_EQ(TxnEventIdOf(Tap()), "txn/330200-BUS-000123/7");
  EXPECT_EQ(TxnEventIdOf(v1::TransactionUpload()), "");
  auto keyring = CityKeyring::Dev();
  v1::TransactionUpload empty;
  EXPECT_EQ(SignUpload(*keyring, &empty).code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace tongka::txn
