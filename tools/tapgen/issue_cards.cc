#include "tools/tapgen/issue_cards.h"

#include <glog/logging.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "libs/server/dev_token.h"
#include "libs/server/grpc_server.h"
#include "libs/server/tenant.h"
#include "proto/card_registry.grpc.pb.h"

namespace tongka::tapgen {
namespace {

constexpr int kAttemptsMax = 5;

v1::IssueCardRequest RequestOf(const IssuedCard& card) {
  v1::IssueCardRequest request;
  request.set_request_id(absl::StrCat("tapgen-", card.card_id));
  request.set_card_id(card.card_id);
  request.set_form(card.form);
  request.set_product(v1::CARD_PRODUCT_STORED_VALUE);
  request.set_initial_balance_fen(card.initial_balance_fen);
  // A phone card is bound to a device; tapgen's phones are made up.
  if (card.form == v1::CARD_FORM_VIRTUAL_NFC) {
    request.set_device_id(absl::StrCat("tapgen-phone-", card.card_id));
  }
  request.set_actor("tapgen");
  return request;
}

}  // namespace

absl::Status IssueCards(const std::string& registry, const std::string& dev_token_secret,
                        const std::vector<IssuedCard>& cards, absl::Duration call_timeout) {
  absl::StatusOr<server::DevTokenIssuer> issuer = server::DevTokenIssuer::Create(dev_token_secret);
  if (!issuer.ok()) return issuer.status();
  std::unique_ptr<v1::CardRegistryService::Stub> stub = v1::CardRegistryService::NewStub(
      grpc::CreateChannel(registry, grpc::InsecureChannelCredentials()));
  std::map<uint32_t, std::vector<const IssuedCard*>> by_issuer;
  for (const IssuedCard& card : cards) by_issuer[card.issuer_city].push_back(&card);

  int64_t accepted = 0;
  int64_t existed = 0;
  for (const auto& [city, city_cards] : by_issuer) {
    const v1::Tenant tenant = server::CityTenant(city);
    for (size_t begin = 0; begin < city_cards.size(); begin += kIssueBatchMax) {
      const size_t end = std::min(city_cards.size(), begin + kIssueBatchMax);
      v1::IssueCardsRequest request;
      for (size_t i = begin; i < end; ++i) *request.add_cards() = RequestOf(*city_cards[i]);
      v1::IssueCardsResponse response;
      grpc::Status status;
      for (int attempt = 1; attempt <= kAttemptsMax; ++attempt) {
        grpc::ClientContext context;
        context.set_deadline(std::chrono::system_clock::now() +
                             absl::ToChronoMilliseconds(call_timeout));
        absl::StatusOr<std::string> token = issuer->Issue(tenant, absl::Now() + absl::Hours(1));
        if (!token.ok()) return token.status();
        server::AttachDevToken(&context, *token);
        status = stub->IssueCards(&context, request, &response);
        if (status.ok()) break;
        const bool retry = status.error_code() == grpc::StatusCode::UNAVAILABLE ||
                           status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED;
        if (!retry || attempt == kAttemptsMax) {
          return absl::Status(
              server::FromGrpcStatus(status).code(),
              absl::StrCat("IssueCards for city ", city, ": ", status.error_message()));
        }
        absl::SleepFor(absl::Milliseconds(200) * attempt);
      }
      for (const v1::CardCommandResponse& result : response.results()) {
        if (result.accepted()) {
          ++accepted;
        } else if (result.rule() == "card_exists") {
          ++existed;
        } else {
          return absl::FailedPreconditionError(
              absl::StrCat("card ", result.card_id(), " refused: ", result.rule(), " (",
                           result.field(), "): ", result.message()));
        }
      }
    }
  }
  LOG(INFO) << "issued " << accepted << " cards in the card registry (" << existed
            << " already there) for " << by_issuer.size() << " cities";
  return absl::OkStatus();
}

}  // namespace tongka::tapgen
