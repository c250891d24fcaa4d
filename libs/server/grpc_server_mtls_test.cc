// Proves GrpcServer in mTLS mode: a throwaway CA (made with the OpenSSL API into TEST_TMPDIR)
// signs the server's certificate and client certificates whose subject CN names a tenant. A call
// with CN=city:310000 resolves to that city operator (and is scoped like one); the ministry reads
// all; a certificate whose CN is not a tenant is UNAUTHENTICATED before the handler; a client
// without a certificate, or with one from another CA, cannot complete the handshake; health
// checking works for any certificate from the CA.
#include <grpcpp/create_channel.h>
#include <grpcpp/impl/client_unary_call.h>
#include <grpcpp/impl/rpc_method.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "libs/server/authenticator.h"
#include "libs/server/grpc_server.h"
#include "libs/server/tenant.h"
#include "libs/server/test_pki.h"
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
using testing::Credential;
using testing::TestCa;
using testing::WriteTestFile;

class MtlsServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ca_ = new TestCa("Tongka test CA");
    const Credential server = ca_->Issue("localhost", /*server=*/true);
    config_ = new GrpcServerConfig;
    config_->listen_address = "127.0.0.1:0";
    config_->auth_mode = AuthMode::kMtls;
    config_->tls_cert_path = WriteTestFile("server.pem", server.cert_pem);
    config_->tls_key_path = WriteTestFile("server.key", server.key_pem);
    config_->tls_client_ca_path = WriteTestFile("ca.pem", ca_->cert_pem());
  }
  static void TearDownTestSuite() {
    delete config_;
    delete ca_;
  }

  void SetUp() override {
    absl::StatusOr<std::shared_ptr<const Authenticator>> authenticator =
        MakeAuthenticator(*config_);
    ASSERT_TRUE(authenticator.ok()) << authenticator.status();
    service_ = std::make_unique<CityDataService>(
        *authenticator, std::map<uint32_t, int64_t>{{310000, 120000}, {330200, 45000}});
    absl::StatusOr<std::unique_ptr<GrpcServer>> server =
        GrpcServer::Start(*config_, *authenticator, {service_.get()});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
  }

  // A channel to the server presenting `client` (no client certificate when null), trusting
  // `trusted_ca_pem` for the server's certificate.
  std::shared_ptr<grpc::Channel> Channel(const Credential* client,
                                         const std::string& trusted_ca_pem) {
    grpc::SslCredentialsOptions options;
    options.pem_root_certs = trusted_ca_pem;
    if (client != nullptr) {
      options.pem_private_key = client->key_pem;
      options.pem_cert_chain = client->cert_pem;
    }
    grpc::ChannelArguments args;
    args.SetSslTargetNameOverride("localhost");
    return grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", server_->port()),
                                     grpc::SslCredentials(options), args);
  }

  grpc::Status GetTotal(grpc::Channel* channel, uint32_t city, GetCityTotalResponse* response) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    GetCityTotalRequest request;
    request.set_city(city);
    return CityData::NewStub(std::shared_ptr<grpc::Channel>(channel, [](grpc::Channel*) {}))
        ->GetCityTotal(&context, request, response);
  }

  static TestCa* ca_;
  static GrpcServerConfig* config_;
  std::unique_ptr<CityDataService> service_;
  std::unique_ptr<GrpcServer> server_;
};

TestCa* MtlsServerTest::ca_ = nullptr;
GrpcServerConfig* MtlsServerTest::config_ = nullptr;

TEST_F(MtlsServerTest, ClientCertificateSubjectIsTheTenant) {
  const Credential shanghai = ca_->Issue("city:310000", /*server=*/false);
  std::shared_ptr<grpc::Channel> channel = Channel(&shanghai, ca_->cert_pem());

  grpc::ClientContext context;
  WhoAmIResponse who;
  grpc::Status status = CityData::NewStub(channel)->WhoAmI(&context, WhoAmIRequest(), &who);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(TenantName(who.tenant()), "city:310000");

  GetCityTotalResponse response;
  status = GetTotal(channel.get(), 310000, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.total_fen(), 120000);
  EXPECT_EQ(GetTotal(channel.get(), 330200, &response).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
}

TEST_F(MtlsServerTest, MinistryCertificateReadsAll) {
  const Credential ministry = ca_->Issue("ministry", /*server=*/false);
  std::shared_ptr<grpc::Channel> channel = Channel(&ministry, ca_->cert_pem());
  for (uint32_t city : {310000u, 330200u}) {
    GetCityTotalResponse response;
    grpc::Status status = GetTotal(channel.get(), city, &response);
    EXPECT_TRUE(status.ok()) << city << ": " << status.error_message();
  }
}

TEST_F(MtlsServerTest, CertificateNotNamingATenantIsUnauthenticated) {
  const Credential stranger = ca_->Issue("intruder.example.com", /*server=*/false);
  std::shared_ptr<grpc::Channel> channel = Channel(&stranger, ca_->cert_pem());
  GetCityTotalResponse response;
  grpc::Status status = GetTotal(channel.get(), 310000, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_NE(status.error_message().find("is not a Tongka tenant"), std::string::npos)
      << status.error_message();
  EXPECT_EQ(service_->handler_calls(), 0);
  EXPECT_EQ(server_->unauthenticated_calls_total(), 1);
}

TEST_F(MtlsServerTest, DevTokenIsIgnoredInMtlsMode) {
  const Credential stranger = ca_->Issue("intruder.example.com", /*server=*/false);
  std::shared_ptr<grpc::Channel> channel = Channel(&stranger, ca_->cert_pem());
  grpc::ClientContext context;
  AttachDevToken(&context, "whatever.token");
  WhoAmIResponse who;
  grpc::Status status = CityData::NewStub(channel)->WhoAmI(&context, WhoAmIRequest(), &who);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
}

TEST_F(MtlsServerTest, CallWithoutClientCertificateFails) {
  std::shared_ptr<grpc::Channel> channel = Channel(nullptr, ca_->cert_pem());
  GetCityTotalResponse response;
  grpc::Status status = GetTotal(channel.get(), 310000, &response);
  EXPECT_FALSE(status.ok());
  // gRPC reports a failed handshake as UNAVAILABLE.
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  EXPECT_EQ(service_->handler_calls(), 0);
}

TEST_F(MtlsServerTest, CertificateFromAnotherCaFails) {
  TestCa rogue("Rogue CA");
  const Credential forged = rogue.Issue("ministry", /*server=*/false);
  std::shared_ptr<grpc::Channel> channel = Channel(&forged, ca_->cert_pem());
  GetCityTotalResponse response;
  grpc::Status status = GetTotal(channel.get(), 310000, &response);
  EXPECT_FALSE(status.ok());
  EXPECT_EQ(service_->handler_calls(), 0);
}

TEST_F(MtlsServerTest, HealthCheckWorksForAnyCertificateFromTheCa) {
  const Credential prober = ca_->Issue("kubelet-prober", /*server=*/false);
  std::shared_ptr<grpc::Channel> channel = Channel(&prober, ca_->cert_pem());
  static const grpc::internal::RpcMethod kCheck("/grpc.health.v1.Health/Check",
                                                grpc::internal::RpcMethod::NORMAL_RPC);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  servertest::HealthCheckResponse response;
  grpc::Status status =
      grpc::internal::BlockingUnaryCall<servertest::HealthCheckRequest,
                                        servertest::HealthCheckResponse,
                                        grpc::protobuf::MessageLite, grpc::protobuf::MessageLite>(
          channel.get(), kCheck, &context, servertest::HealthCheckRequest(), &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.status(), servertest::HealthCheckResponse::SERVING);
}

}  // namespace
}  // namespace tongka::server
