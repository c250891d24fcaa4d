#include "services/ingest/testing/uploads.h"

#include <glog/logging.h>

#include "absl/strings/str_format.h"
#include "libs/crypto/sm4_cmac.h"
#include "libs/txn/card_id.h"
#include "libs/txn/mac_input.h"
#include "libs/txn/terminal_id.h"
#include "libs/txn/upload.h"

namespace tongka::ingest::testing {
namespace {

void FillCommon(const TxnSpec& spec, int64_t balance_after_fen, v1::TxnCommon* txn,
                v1::TransportMode mode) {
  txn->set_card_id(txn::MakeCardId(spec.issuer_city, spec.card_serial));
  txn->set_issuer_city(spec.issuer_city);
  txn->set_acquirer_city(spec.acquirer_city);
  if (spec.partner_id.empty()) {
    txn->set_terminal_id(txn::CityTerminalId(spec.acquirer_city, mode, spec.terminal_serial));
    txn->set_operator_id(absl::StrFormat("%06d", spec.acquirer_city));
  } else {
    txn->set_terminal_id(txn::PartnerTerminalId(spec.partner_id, spec.terminal_serial));
    txn->set_operator_id("partner:" + spec.partner_id);
    txn->set_partner_id(spec.partner_id);
  }
  txn->set_terminal_seq(spec.seq);
  txn->set_card_counter(static_cast<uint32_t>(spec.seq));
  txn->set_balance_before_fen(spec.balance_before_fen);
  txn->set_balance_after_fen(balance_after_fen);
}

}  // namespace

void Sign(const txn::CityKeyring& keyring, v1::TransactionUpload* upload) {
  absl::Status signed_ok = txn::SignUpload(keyring, upload);
  CHECK(signed_ok.ok()) << signed_ok;
}

v1::TransactionUpload SignedTap(const txn::CityKeyring& keyring, const TxnSpec& spec) {
  v1::TransactionUpload upload;
  upload.set_occurred_at_us(absl::ToUnixMicros(spec.occurred_at));
  v1::Tap* tap = upload.mutable_tap();
  const v1::TransportMode mode =
      spec.partner_id.empty() ? v1::TRANSPORT_MODE_BUS : v1::TRANSPORT_MODE_RETAIL;
  FillCommon(spec, spec.balance_before_fen - spec.amount_fen, tap->mutable_txn(), mode);
  tap->set_amount_fen(spec.amount_fen);
  tap->set_mode(mode);
  tap->set_route_id("71");
  tap->set_station_id("S0042");
  Sign(keyring, &upload);
  return upload;
}

v1::TransactionUpload SignedLoad(const txn::CityKeyring& keyring, const TxnSpec& spec) {
  v1::TransactionUpload upload;
  upload.set_occurred_at_us(absl::ToUnixMicros(spec.occurred_at));
  v1::Load* load = upload.mutable_load();
  FillCommon(spec, spec.balance_before_fen + spec.amount_fen, load->mutable_txn(),
             v1::TRANSPORT_MODE_METRO);
  load->set_amount_fen(spec.amount_fen);
  load->set_channel("ticket_machine");
  Sign(keyring, &upload);
  return upload;
}

v1::TransactionUpload SignedRefund(const txn::CityKeyring& keyring, const TxnSpec& spec) {
  v1::TransactionUpload upload;
  upload.set_occurred_at_us(absl::ToUnixMicros(spec.occurred_at));
  v1::Refund* refund = upload.mutable_refund();
  FillCommon(spec, spec.balance_before_fen + spec.amount_fen, refund->mutable_txn(),
             v1::TRANSPORT_MODE_RETAIL);
  refund->set_amount_fen(spec.amount_fen);
  refund->set_original_terminal_id(refund->txn().terminal_id());
  refund->set_original_terminal_seq(spec.seq > 1 ? spec.seq - 1 : 1);
  refund->set_reason("double_charge");
  Sign(keyring, &upload);
  return upload;
}

}  // namespace tongka::ingest::testing
