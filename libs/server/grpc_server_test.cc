// Proves GrpcServer in dev-token mode end to end, against a real server on a kernel-chosen port
// with the test CityData service and a manual clock:
//   - a city operator reads its own city; another city or a partner gets PERMISSION_DENIED; the
//     ministry reads every city;
//   - a missing, forged, tampered, wrongly-schemed or expired token gets UNAUTHENTICATED before
//     any handler runs (the service's handler counter stays put);
//   - concurrent calls carrying different tenants' tokens on one connection each see their own
//     tenant (no identity leaks between calls sharing a connection);
//   - health checking answers SERVING and reflection lists services without credentials;
//   - bad config is refused naming the field; shutdown is graceful and idempotent; status
//     conversion keeps code and message; the shutdown-signal helper returns the signal.
#include "libs/server/grpc_server.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/impl/client_unary_call.h>
#include <grpcpp/impl/rpc_method.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/sync_stream.h>
#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>

#include <optional>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "libs/server/dev_token.h"
#include "libs/server/tenant.h"
#include "libs/server/testdata/city_data.grpc.pb.h"
#include "libs/server/testdata/city_data_service.h"

namespace tongka::server {
namespace {

using servertest::CityData;
using servertest::CityDataService;
using servertest::GetCityTotalRequest;
using servertest::GetCityTotalResponse;
using servertest::WhoAmIRequest;
using servertest::WhoAmIResponse;

constexpr absl::string_view kSecret = "dev-secret-for-tests-0123456789";
const absl::Time kStart = absl::FromUnixSeconds(1767225600);  // 2026-01-01T00:00:00Z

class ManualClock {
 public:
  explicit ManualClock(absl::Time now) : now_(now) {}
  absl::Time Now() const {
    absl::MutexLock lock(&mu_);
    return now_;
  }
  void Advance(absl::Duration by) {
    absl::MutexLock lock(&mu_);
    now_ += by;
  }

 private:
  mutable absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_);
};

GrpcServerConfig DevConfig() {
  GrpcServerConfig config;
  config.listen_address = "127.0.0.1:0";
  config.auth_mode = AuthMode::kDevToken;
  config.dev_token_secret = std::string(kSecret);
  return config;
}

class DevServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::shared_ptr<const Authenticator>> authenticator =
        MakeAuthenticator(DevConfig(), [clock = clock_] { return clock->Now(); });
    ASSERT_TRUE(authenticator.ok()) << authenticator.status();
    service_ = std::make_unique<CityDataService>(
        *authenticator, std::map<uint32_t, int64_t>{{310000, 120000}, {330200, 45000}});
    absl::StatusOr<std::unique_ptr<GrpcServer>> server =
        GrpcServer::Start(DevConfig(), *authenticator, {service_.get()});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    ASSERT_GT(server_->port(), 0);
    channel_ = grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_->port()),
                                   grpc::InsecureChannelCredentials());
    stub_ = CityData::NewStub(channel_);
  }

  std::string Token(const v1::Tenant& tenant, absl::Duration valid_for = absl::Hours(1),
                    absl::string_view secret = kSecret) {
    absl::StatusOr<DevTokenIssuer> issuer = DevTokenIssuer::Create(secret);
    EXPECT_TRUE(issuer.ok()) << issuer.status();
    absl::StatusOr<std::string> token = issuer->Issue(tenant, clock_->Now() + valid_for);
    EXPECT_TRUE(token.ok()) << token.status();
    return *token;
  }

  grpc::Status GetTotal(uint32_t city, std::optional<std::string> authorization,
                        GetCityTotalResponse* response) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    if (authorization.has_value()) context.AddMetadata("authorization", *authorization);
    GetCityTotalRequest request;
    request.set_city(city);
    return stub_->GetCityTotal(&context, request, response);
  }

  grpc::Status GetTotalAs(uint32_t city, const v1::Tenant& tenant, GetCityTotalResponse* response) {
    return GetTotal(city, absl::StrCat("Bearer ", Token(tenant)), response);
  }

  std::shared_ptr<ManualClock> clock_ = std::make_shared<ManualClock>(kStart);
  std::unique_ptr<CityDataService> service_;
  std::unique_ptr<GrpcServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<CityData::Stub> stub_;
};

TEST_F(DevServerTest, CityOperatorReadsOwnCity) {
  GetCityTotalResponse response;
  grpc::Status status = GetTotalAs(310000, CityTenant(310000), &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.city(), 310000u);
  EXPECT_EQ(response.total_fen(), 120000);
}

TEST_F(DevServerTest, OtherTenantsArePermissionDenied) {
  GetCityTotalResponse response;
  grpc::Status status = GetTotalAs(310000, CityTenant(330200), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(status.error_message(),
            "city:330200 may not access tap totals of city 310000; allowed: city:310000, ministry");

  status = GetTotalAs(310000, PartnerTenant("unionmart"), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  status = GetTotalAs(310000, PlatformTenant("fraud"), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
}

TEST_F(DevServerTest, MinistryReadsEveryCity) {
  for (uint32_t city : {310000u, 330200u}) {
    GetCityTotalResponse response;
    grpc::Status status = GetTotalAs(city, MinistryTenant(), &response);
    ASSERT_TRUE(status.ok()) << city << ": " << status.error_message();
    EXPECT_EQ(response.city(), city);
  }
}

TEST_F(DevServerTest, MissingTokenIsRejectedBeforeTheHandler) {
  GetCityTotalResponse response;
  grpc::Status status = GetTotal(310000, std::nullopt, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_NE(status.error_message().find("missing credentials"), std::string::npos)
      << status.error_message();
  EXPECT_EQ(service_->handler_calls(), 0);
  EXPECT_EQ(server_->unauthenticated_calls_total(), 1);
}

TEST_F(DevServerTest, ForgedOrTamperedTokensAreRejectedBeforeTheHandler) {
  GetCityTotalResponse response;
  // Signed with another secret.
  const std::string forged = Token(MinistryTenant(), absl::Hours(1), "not-the-server-secret-42");
  grpc::Status status = GetTotal(310000, absl::StrCat("Bearer ", forged), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_NE(status.error_message().find("signature does not verify"), std::string::npos)
      << status.error_message();

  // A genuine city token whose payload is swapped for the ministry's, keeping the signature.
  const std::string genuine = Token(CityTenant(330200));
  const std::string ministry = Token(MinistryTenant());
  const std::string tampered =
      ministry.substr(0, ministry.find('.')) + genuine.substr(genuine.find('.'));
  status = GetTotal(310000, absl::StrCat("Bearer ", tampered), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);

  // Garbage, the wrong scheme, an empty bearer.
  for (const std::string& authorization :
       {std::string("Bearer not-a-token"), absl::StrCat("Basic ", genuine), std::string("Bearer "),
        genuine}) {
    status = GetTotal(310000, authorization, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED) << authorization;
  }
  EXPECT_EQ(service_->handler_calls(), 0);
}

TEST_F(DevServerTest, ExpiredTokenIsRejected) {
  const std::string token = Token(CityTenant(310000), absl::Minutes(5));
  GetCityTotalResponse response;
  ASSERT_TRUE(GetTotal(310000, absl::StrCat("Bearer ", token), &response).ok());

  clock_->Advance(absl::Minutes(5));
  grpc::Status status = GetTotal(310000, absl::StrCat("Bearer ", token), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_NE(status.error_message().find("expired at 2026-01-01T00:05:00"), std::string::npos)
      << status.error_message();
  EXPECT_EQ(service_->handler_calls(), 1);
}

TEST_F(DevServerTest, HandlerSeesTheCallersTenant) {
  grpc::ClientContext context;
  AttachDevToken(&context, Token(PartnerTenant("unionmart")));
  WhoAmIResponse response;
  grpc::Status status = stub_->WhoAmI(&context, WhoAmIRequest(), &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(TenantName(response.tenant()), "partner:unionmart");
}

TEST_F(DevServerTest, ConcurrentCallsOnOneConnectionKeepTheirOwnTenants) {
  const std::vector<v1::Tenant> tenants = {CityTenant(310000), CityTenant(330200),
                                           PartnerTenant("unionmart"), MinistryTenant()};
  std::vector<std::string> tokens;
  for (const v1::Tenant& tenant : tenants) tokens.push_back(Token(tenant));
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (size_t t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 40; ++i) {
        const size_t which = (t + i) % tenants.size();
        grpc::ClientContext context;
        AttachDevToken(&context, tokens[which]);
        WhoAmIResponse response;
        grpc::Status status = stub_->WhoAmI(&context, WhoAmIRequest(), &response);
        if (!status.ok() || TenantName(response.tenant()) != TenantName(tenants[which])) {
          mismatches.fetch_add(1);
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(mismatches.load(), 0);
}

// grpc.health.v1.Health/Check through a generic call (Debian ships no health.proto).
grpc::Status CheckHealth(grpc::Channel* channel, servertest::HealthCheckResponse* response) {
  static const grpc::internal::RpcMethod kCheck("/grpc.health.v1.Health/Check",
                                                grpc::internal::RpcMethod::NORMAL_RPC);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  return grpc::internal::BlockingUnaryCall<
      servertest::HealthCheckRequest, servertest::HealthCheckResponse, grpc::protobuf::MessageLite,
      grpc::protobuf::MessageLite>(channel, kCheck, &context, servertest::HealthCheckRequest(),
                                   response);
}

TEST_F(DevServerTest, HealthCheckNeedsNoCredentials) {
  servertest::HealthCheckResponse response;
  grpc::Status status = CheckHealth(channel_.get(), &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.status(), servertest::HealthCheckResponse::SERVING);

  server_->SetServing(false);
  ASSERT_TRUE(CheckHealth(channel_.get(), &response).ok());
  EXPECT_EQ(response.status(), servertest::HealthCheckResponse::NOT_SERVING);
  EXPECT_EQ(server_->unauthenticated_calls_total(), 0);
}

TEST_F(DevServerTest, ReflectionNeedsNoCredentials) {
  static const grpc::internal::RpcMethod kInfo(
      "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
      grpc::internal::RpcMethod::BIDI_STREAMING);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  std::unique_ptr<
      grpc::ClientReaderWriter<servertest::ReflectionRequest, servertest::ReflectionResponse>>
      stream(grpc::internal::ClientReaderWriterFactory<
             servertest::ReflectionRequest, servertest::ReflectionResponse>::Create(channel_.get(),
                                                                                    kInfo,
                                                                                    &context));
  servertest::ReflectionRequest request;
  request.set_list_services("");
  ASSERT_TRUE(stream->Write(request));
  ASSERT_TRUE(stream->WritesDone());
  servertest::ReflectionResponse response;
  ASSERT_TRUE(stream->Read(&response));
  std::vector<std::string> names;
  for (const auto& service : response.list_services_response().service()) {
    names.push_back(service.name());
  }
  grpc::Status status = stream->Finish();
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_NE(std::find(names.begin(), names.end(), "tongka.servertest.CityData"), names.end())
      << absl::StrJoin(names, ", ");
}

TEST_F(DevServerTest, ShutdownIsGracefulAndIdempotent) {
  server_->Shutdown(absl::Now() + absl::Seconds(5));
  server_->Shutdown(absl::Now() + absl::Seconds(5));
  GetCityTotalResponse response;
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(2)));
  AttachDevToken(&context, Token(MinistryTenant()));
  GetCityTotalRequest request;
  request.set_city(310000);
  grpc::Status status = stub_->GetCityTotal(&context, request, &response);
  EXPECT_FALSE(status.ok());
}

TEST(GrpcServerConfigTest, RejectsBadConfigNamingTheField) {
  struct Case {
    std::function<void(GrpcServerConfig&)> mutate;
    const char* field;
  };
  const Case cases[] = {
      {[](GrpcServerConfig& c) { c.listen_address = ""; }, "grpc.listen_address"},
      {[](GrpcServerConfig& c) { c.listen_address = "localhost"; }, "grpc.listen_address"},
      {[](GrpcServerConfig& c) { c.max_message_bytes = 100; }, "grpc.max_message_bytes"},
      {[](GrpcServerConfig& c) { c.max_message_bytes = int64_t{1} << 40; },
       "grpc.max_message_bytes"},
      {[](GrpcServerConfig& c) { c.dev_token_secret = "short"; }, "grpc.dev_token_secret"},
      {[](GrpcServerConfig& c) { c.auth_mode = AuthMode::kMtls; }, "grpc.tls_cert_path"},
      {[](GrpcServerConfig& c) { c.tls_cert_path = "/x"; }, "grpc.tls_cert_path"},
      {[](GrpcServerConfig& c) { c.tls_key_path = "/x"; }, "grpc.tls_key_path"},
      {[](GrpcServerConfig& c) { c.tls_client_ca_path = "/x"; }, "grpc.tls_client_ca_path"},
      {[](GrpcServerConfig& c) {
         c.auth_mode = AuthMode::kMtls;
         c.tls_cert_path = c.tls_key_path = c.tls_client_ca_path = "/x";
       },
       "grpc.dev_token_secret"},
  };
  for (const Case& c : cases) {
    GrpcServerConfig config = DevConfig();
    c.mutate(config);
    absl::Status status = ValidateGrpcServerConfig(config);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << c.field;
    EXPECT_TRUE(absl::StartsWith(status.message(), c.field)) << status;
  }
  EXPECT_TRUE(ValidateGrpcServerConfig(DevConfig()).ok());
}

TEST(GrpcServerStartTest, RefusesMismatchedAuthenticatorAndUnreadableTlsFiles) {
  absl::StatusOr<std::unique_ptr<GrpcServer>> server =
      GrpcServer::Start(DevConfig(), Authenticator::ForMtls(), {});
  EXPECT_EQ(server.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(server.status().message(), "grpc.auth_mode")) << server.status();

  GrpcServerConfig mtls;
  mtls.listen_address = "127.0.0.1:0";
  mtls.tls_cert_path = "/nonexistent/server.pem";
  mtls.tls_key_path = "/nonexistent/server.key";
  mtls.tls_client_ca_path = "/nonexistent/ca.pem";
  server = GrpcServer::Start(mtls, Authenticator::ForMtls(), {});
  EXPECT_EQ(server.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(server.status().message(), "grpc.tls_cert_path")) << server.status();
}

TEST(GrpcServerStartTest, UnbindableAddressIsUnavailable) {
  GrpcServerConfig config = DevConfig();
  config.listen_address = "203.0.113.7:0";  // TEST-NET-3: never a local address
  absl::StatusOr<std::shared_ptr<const Authenticator>> authenticator = MakeAuthenticator(config);
  ASSERT_TRUE(authenticator.ok());
  absl::StatusOr<std::unique_ptr<GrpcServer>> server =
      GrpcServer::Start(config, *authenticator, {});
  EXPECT_EQ(server.status().code(), absl::StatusCode::kUnavailable) << server.status();
}

TEST(StatusConversionTest, KeepsCodeAndMessage) {
  const absl::Status denied = absl::PermissionDeniedError("no");
  grpc::Status converted = ToGrpcStatus(denied);
  EXPECT_EQ(converted.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(converted.error_message(), "no");
  EXPECT_EQ(FromGrpcStatus(converted), denied);
  EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok());
  for (int code = 0; code <= 16; ++code) {
    const absl::Status status(static_cast<absl::StatusCode>(code), code == 0 ? "" : "m");
    EXPECT_EQ(FromGrpcStatus(ToGrpcStatus(status)), status) << code;
  }
}

TEST(ShutdownSignalTest, ReturnsTheSignalThatArrived) {
  BlockShutdownSignals();
  // Directed at this thread, where the signal is blocked, so it stays pending for sigwait.
  ASSERT_EQ(pthread_kill(pthread_self(), SIGTERM), 0);
  EXPECT_EQ(WaitForShutdownSignal(), SIGTERM);
  ASSERT_EQ(pthread_kill(pthread_self(), SIGINT), 0);
  EXPECT_EQ(WaitForShutdownSignal(), SIGINT);
}

}  // namespace
}  // namespace tongka::server
