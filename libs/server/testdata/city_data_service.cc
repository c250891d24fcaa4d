#include "libs/server/testdata/city_data_service.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "libs/server/grpc_server.h"
#include "libs/server/tenant.h"

namespace tongka::servertest {

CityDataService::CityDataService(std::shared_ptr<const server::Authenticator> authenticator,
                                 std::map<uint32_t, int64_t> total_fen_by_city)
    : authenticator_(std::move(authenticator)), total_fen_by_city_(std::move(total_fen_by_city)) {}

grpc::Status CityDataService::GetCityTotal(grpc::ServerContext* context,
                                           const GetCityTotalRequest* request,
                                           GetCityTotalResponse* response) {
  handler_calls_.fetch_add(1);
  absl::StatusOr<v1::Tenant> tenant = authenticator_->TenantFromContext(*context);
  if (!tenant.ok()) return server::ToGrpcStatus(tenant.status());
  if (absl::Status status = server::RequireCity(*tenant, request->city(), "tap totals");
      !status.ok()) {
    return server::ToGrpcStatus(status);
  }
  const auto it = total_fen_by_city_.find(request->city());
  if (it == total_fen_by_city_.end()) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND,
                        absl::StrCat("no tap totals for city ", request->city()));
  }
  response->set_city(it->first);
  response->set_total_fen(it->second);
  return grpc::Status::OK;
}

grpc::Status CityDataService::WhoAmI(grpc::ServerContext* context, const WhoAmIRequest* request,
                                     WhoAmIResponse* response) {
  handler_calls_.fetch_add(1);
  absl::StatusOr<v1::Tenant> tenant = authenticator_->TenantFromContext(*context);
  if (!tenant.ok()) return server::ToGrpcStatus(tenant.status());
  *response->mutable_tenant() = *std::move(tenant);
  return grpc::Status::OK;
}

}  // namespace tongka::servertest
