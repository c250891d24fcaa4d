// Test-only: the CityData service (testdata/city_data.proto) implemented the way every Tongka
// handler is meant to be: resolve the tenant, check its scope, then read. It counts handler runs
// so tests can prove rejected calls never reached a handler.
//
// Ownership: shares the Authenticator. Thread-safety: handlers are thread-safe.
// Failure behaviour: returns the Authenticator's or scope check's status; NOT_FOUND for a city
// with no data.
//
// Example:
//   tongka::servertest::CityDataService service(authenticator, {{310000, 1200}});
//   auto server = tongka::server::GrpcServer::Start(config, authenticator, {&service});
#ifndef TONGKA_LIBS_SERVER_TESTDATA_CITY_DATA_SERVICE_H_
#define TONGKA_LIBS_SERVER_TESTDATA_CITY_DATA_SERVICE_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>

#include "libs/server/authenticator.h"
#include "libs/server/testdata/city_data.grpc.pb.h"

namespace tongka::servertest {

class CityDataService final : public CityData::Service {
 public:
  CityDataService(std::shared_ptr<const server::Authenticator> authenticator,
                  std::map<uint32_t, int64_t> total_fen_by_city);

  grpc::Status GetCityTotal(grpc::ServerContext* context, const GetCityTotalRequest* request,
                            GetCityTotalResponse* response) override;
  grpc::Status WhoAmI(grpc::ServerContext* context, const WhoAmIRequest* request,
                      WhoAmIResponse* response) override;

  int64_t handler_calls() const { return handler_calls_.load(); }

 private:
  const std::shared_ptr<const server::Authenticator> authenticator_;
  const std::map<uint32_t, int64_t> total_fen_by_city_;
  std::atomic<int64_t> handler_calls_{0};
};

}  // namespace tongka::servertest

#endif  // TONGKA_LIBS_SERVER_TESTDATA_CITY_DATA_SERVICE_H_
