// tapgen: generates deterministic card transactions for the 80 member cities (tapgen.h) and
// writes them to a file, drives ingest with them over gRPC (driver.h), or both. See README.md.
#include <glog/logging.h>

#include <cmath>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "libs/txn/keys.h"
#include "tools/tapgen/driver.h"
#include "tools/tapgen/issue_cards.h"
#include "tools/tapgen/tapgen.h"

ABSL_FLAG(uint64_t, seed, 1, "PRNG seed: the same seed and flags give byte-identical output.");
ABSL_FLAG(int64_t, transactions, 100000, "Records to generate (loads, refunds, fraud included).");
ABSL_FLAG(int64_t, cards, 50000, "Cards issued across the member cities.");
ABSL_FLAG(std::string, start_at, "auto",
          "Start of the simulated period: RFC 3339 (2026-11-24T00:00:00+08:00), 'yesterday' "
          "(Beijing midnight `days` days before today's, so every device time is in the recent "
          "past), or 'auto' (= 'yesterday' with --target, else 2026-11-24T00:00:00+08:00).");
ABSL_FLAG(int32_t, days, 1, "Length of the simulated period in days.");
ABSL_FLAG(int32_t, terminals_per_million, 50, "City terminals per million residents.");
ABSL_FLAG(double, cross_city_share, 0.05, "Share of taps made outside the card's issuer city.");
ABSL_FLAG(double, fraud_rate, 0.001, "Share of records that are injected fraud cases.");
ABSL_FLAG(int64_t, replay_lag_min, 10000, "A replay repeats a record at least this many old.");
ABSL_FLAG(std::string, keys_file, "",
          "City master keys ('<city> <32 hex>' lines); empty = the public DEVELOPMENT keys.");
ABSL_FLAG(std::string, in, "",
          "Drive --target with the records of this file (written by --out) instead of generating: "
          "loaded into memory first, so the measured rate is ingest's, not the generator's.");
ABSL_FLAG(std::string, out, "", "Write the records here, length-delimited TransactionUpload.");
ABSL_FLAG(std::string, ground_truth_out, "", "Write the injected fraud cases here (JSON lines).");
ABSL_FLAG(std::string, cards_out, "",
          "Write the issued cards here (CSV: card_id,issuer_city,form,initial_balance_fen,"
          "initial_counter,travel_city).");
ABSL_FLAG(std::string, target, "", "Drive ingest at host:port (IngestService/UploadBatch).");
ABSL_FLAG(std::string, registry, "",
          "Before the traffic, issue every card in the card registry at host:port (IssueCards, "
          "one dev token per issuer city), so their opening balances reach settlement's float.");
ABSL_FLAG(double, rate, 0, "Target records per second with --target; 0 = as fast as possible.");
ABSL_FLAG(int32_t, batch_size, 1000, "Records per UploadBatch call (one tenant per batch).");
ABSL_FLAG(int32_t, concurrency, 4, "Batches in flight at once.");
ABSL_FLAG(std::string, dev_token_secret, "tongka-dev-token-secret-v1",
          "Shared secret of ingest's dev-token mode; tokens are minted per tenant.");
ABSL_FLAG(int32_t, call_timeout_s, 30, "Deadline of one UploadBatch call, seconds.");
ABSL_FLAG(int32_t, max_attempts, 30, "Attempts per batch on UNAVAILABLE/RESOURCE_EXHAUSTED/...");
ABSL_FLAG(bool, stream, false, "Send batches on UploadStream instead of UploadBatch.");
ABSL_FLAG(std::string, acked_out, "",
          "Write the event id of every ACCEPTED or DUPLICATE item here, one per line.");

namespace tongka::tapgen {
namespace {

constexpr int64_t kDayUs = int64_t{86400} * 1000000;
constexpr int64_t kBeijingOffsetUs = int64_t{8} * 3600 * 1000000;

absl::StatusOr<int64_t> StartAtUs(const std::string& flag, bool live, int32_t days) {
  if (flag == "yesterday" || (flag == "auto" && live)) {
    const int64_t local_us = absl::ToUnixMicros(absl::Now()) + kBeijingOffsetUs;
    return local_us / kDayUs * kDayUs - kBeijingOffsetUs - days * kDayUs;
  }
  if (flag == "auto") return kDefaultStartAtUs;
  absl::Time time;
  std::string error;
  if (!absl::ParseTime(absl::RFC3339_full, flag, &time, &error)) {
    return absl::InvalidArgumentError(absl::StrCat("--start_at: ", error));
  }
  return absl::ToUnixMicros(time);
}

std::string FormName(v1::CardForm form) {
  switch (form) {
    case v1::CARD_FORM_PHYSICAL:
      return "physical";
    case v1::CARD_FORM_VIRTUAL_NFC:
      return "virtual_nfc";
    case v1::CARD_FORM_QR:
      return "qr";
    default:
      return "unspecified";
  }
}

absl::StatusOr<std::unique_ptr<Driver>> MakeDriver(const std::string& target, std::ostream* acked) {
  DriverConfig config;
  config.target = target;
  config.rate = absl::GetFlag(FLAGS_rate);
  config.batch_size = absl::GetFlag(FLAGS_batch_size);
  config.concurrency = absl::GetFlag(FLAGS_concurrency);
  config.dev_token_secret = absl::GetFlag(FLAGS_dev_token_secret);
  config.call_timeout = absl::Seconds(absl::GetFlag(FLAGS_call_timeout_s));
  config.max_attempts = absl::GetFlag(FLAGS_max_attempts);
  config.use_stream = absl::GetFlag(FLAGS_stream);
  return Driver::Create(config, nullptr, acked);
}

absl::Status Finish(Driver* driver) {
  DriverReport report = driver->Finish();
  std::cout << report.Summary() << std::flush;
  if (report.failed_records > 0) {
    return absl::UnavailableError(
        absl::StrCat(report.failed_records, " records were not answered: ", report.first_error));
  }
  return absl::OkStatus();
}

// --in: replay a file to ingest.
absl::Status DriveFile(const std::string& in_path, const std::string& target) {
  if (target.empty()) return absl::InvalidArgumentError("--in needs --target");
  if (!absl::GetFlag(FLAGS_out).empty() || !absl::GetFlag(FLAGS_ground_truth_out).empty() ||
      !absl::GetFlag(FLAGS_cards_out).empty()) {
    return absl::InvalidArgumentError(
        "--in sends a file; --out, --ground_truth_out and "
        "--cards_out belong to a generating run");
  }
  std::ifstream in(in_path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("--in: cannot open ", in_path));
  absl::StatusOr<std::vector<v1::TransactionUpload>> uploads = ReadDelimited(&in);
  if (!uploads.ok()) return uploads.status();
  std::cout << "loaded " << uploads->size() << " records from " << in_path << std::endl;
  std::ofstream acked;
  const std::string acked_path = absl::GetFlag(FLAGS_acked_out);
  if (!acked_path.empty()) {
    acked.open(acked_path, std::ios::trunc);
    if (!acked) return absl::NotFoundError(absl::StrCat("--acked_out: cannot open ", acked_path));
  }
  absl::StatusOr<std::unique_ptr<Driver>> driver =
      MakeDriver(target, acked_path.empty() ? nullptr : &acked);
  if (!driver.ok()) return driver.status();
  for (const v1::TransactionUpload& upload : *uploads) (*driver)->Add(upload);
  return Finish(driver->get());
}

absl::Status Run() {
  const std::string in_path = absl::GetFlag(FLAGS_in);
  if (!in_path.empty()) return DriveFile(in_path, absl::GetFlag(FLAGS_target));
  const std::string out_path = absl::GetFlag(FLAGS_out);
  const std::string target = absl::GetFlag(FLAGS_target);
  if (out_path.empty() && target.empty()) {
    return absl::InvalidArgumentError("give --out=FILE, --target=host:port, or both");
  }
  GeneratorConfig config;
  config.seed = absl::GetFlag(FLAGS_seed);
  config.transactions = absl::GetFlag(FLAGS_transactions);
  config.cards = absl::GetFlag(FLAGS_cards);
  config.days = absl::GetFlag(FLAGS_days);
  absl::StatusOr<int64_t> start_at_us =
      StartAtUs(absl::GetFlag(FLAGS_start_at), !target.empty(), config.days);
  if (!start_at_us.ok()) return start_at_us.status();
  config.start_at_us = *start_at_us;
  config.terminals_per_million = absl::GetFlag(FLAGS_terminals_per_million);
  config.cross_city_share = absl::GetFlag(FLAGS_cross_city_share);
  config.fraud_rate = absl::GetFlag(FLAGS_fraud_rate);
  config.replay_lag_min = absl::GetFlag(FLAGS_replay_lag_min);

  const std::string keys_file = absl::GetFlag(FLAGS_keys_file);
  absl::StatusOr<txn::CityKeyring> keyring =
      keys_file.empty() ? txn::CityKeyring::Dev() : txn::CityKeyring::FromFile(keys_file);
  if (!keyring.ok()) return keyring.status();
  if (keys_file.empty()) LOG(INFO) << "signing with the public DEVELOPMENT city keys";
  absl::StatusOr<std::unique_ptr<Generator>> generator = Generator::Create(config, *keyring);
  if (!generator.ok()) return generator.status();

  const std::string registry = absl::GetFlag(FLAGS_registry);
  if (!registry.empty()) {
    absl::Status issued =
        IssueCards(registry, absl::GetFlag(FLAGS_dev_token_secret), (*generator)->IssuedCards());
    if (!issued.ok()) return issued;
  }

  std::ofstream out;
  if (!out_path.empty()) {
    out.open(out_path, std::ios::binary | std::ios::trunc);
    if (!out) return absl::NotFoundError(absl::StrCat("--out: cannot open ", out_path));
  }
  std::ofstream acked;
  const std::string acked_path = absl::GetFlag(FLAGS_acked_out);
  if (!acked_path.empty()) {
    acked.open(acked_path, std::ios::trunc);
    if (!acked) return absl::NotFoundError(absl::StrCat("--acked_out: cannot open ", acked_path));
  }
  std::unique_ptr<Driver> driver;
  if (!target.empty()) {
    absl::StatusOr<std::unique_ptr<Driver>> created =
        MakeDriver(target, acked_path.empty() ? nullptr : &acked);
    if (!created.ok()) return created.status();
    driver = *std::move(created);
  }

  const absl::Time started = absl::Now();
  absl::Time next_progress = started + absl::Seconds(10);
  v1::TransactionUpload upload;
  while ((*generator)->Next(&upload)) {
    if (out.is_open()) {
      absl::Status written = WriteDelimited(upload, &out);
      if (!written.ok()) return written;
    }
    if (driver != nullptr) driver->Add(upload);
    // A progress line every ten seconds for long runs (the clock is read every 4,096 records).
    if (((*generator)->stats().records & 4095) == 0 && absl::Now() >= next_progress) {
      next_progress += absl::Seconds(10);
      const int64_t records = (*generator)->stats().records;
      LOG(INFO) << records << " of " << config.transactions << " records, "
                << static_cast<int64_t>(records / absl::ToDoubleSeconds(absl::Now() - started))
                << " records/s";
    }
  }
  const double generate_seconds = absl::ToDoubleSeconds(absl::Now() - started);
  if (out.is_open()) {
    out.close();
    if (!out) return absl::DataLossError(absl::StrCat("--out: writing ", out_path, " failed"));
  }

  const std::string ground_truth_path = absl::GetFlag(FLAGS_ground_truth_out);
  if (!ground_truth_path.empty()) {
    std::ofstream ground_truth(ground_truth_path, std::ios::trunc);
    for (const FraudCase& c : (*generator)->fraud_cases()) {
      ground_truth << FraudCaseJson(c) << "\n";
    }
    ground_truth.close();
    if (!ground_truth) return absl::DataLossError("--ground_truth_out: write failed");
  }
  const std::string cards_path = absl::GetFlag(FLAGS_cards_out);
  if (!cards_path.empty()) {
    std::ofstream cards(cards_path, std::ios::trunc);
    cards << "card_id,issuer_city,form,initial_balance_fen,initial_counter,travel_city\n";
    for (const IssuedCard& card : (*generator)->IssuedCards()) {
      cards << card.card_id << "," << card.issuer_city << "," << FormName(card.form) << ","
            << card.initial_balance_fen << "," << card.initial_counter << "," << card.travel_city
            << "\n";
    }
    cards.close();
    if (!cards) return absl::DataLossError("--cards_out: write failed");
  }

  const GeneratorStats& stats = (*generator)->stats();
  std::cout << "generated " << stats.records << " records (" << stats.taps << " taps, "
            << stats.loads << " loads, " << stats.refunds << " refunds; cross-city taps "
            << stats.cross_city_taps << "; fraud cases " << stats.fraud_cases << ") on "
            << (*generator)->terminals().size() << " terminals in " << generate_seconds << " s"
            << std::endl;
  if (driver != nullptr) return Finish(driver.get());
  return absl::OkStatus();
}

}  // namespace
}  // namespace tongka::tapgen

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  google::InitGoogleLogging(argv[0]);
  FLAGS_logtostderr = true;
  absl::Status status = tongka::tapgen::Run();
  if (!status.ok()) {
    LOG(ERROR) << "tapgen: " << status;
    return 1;
  }
  return 0;
}
