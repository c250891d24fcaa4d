// Caller: how tongka_ctl authenticates its gRPC calls, from the flags every command shares.
//   - mTLS (production): --tls_ca, --tls_cert, --tls_key; the client certificate names the tenant.
//   - development (the service runs with --auth=dev): plaintext, and a dev token for --tenant
//     signed with --dev_token_secret attached to every call.
// Call() runs one unary RPC with those credentials and a 60 s deadline, printing the gRPC status
// when it fails.
//
// Example:
//   Caller caller;
//   auto stub = v1::SettlementService::NewStub(caller.Channel(target));
//   if (!Call(caller, stub.get(), &v1::SettlementService::Stub::ListWindows, request, &response))
//     return 1;
#ifndef TONGKA_TOOLS_CLI_CALLER_H_
#define TONGKA_TOOLS_CLI_CALLER_H_

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <string>

namespace tongka::cli {

class Caller {
 public:
  // Reads the credential flags.
  Caller();

  std::shared_ptr<grpc::Channel> Channel(const std::string& target) const;

  // Sets the deadline (60 s from now, or `seconds`) and, in development, the dev token.
  // False, with the reason printed, when the token cannot be made (bad --tenant or secret).
  bool Prepare(grpc::ClientContext* context, int seconds = 60) const;

 private:
  std::string dev_token_secret_;
  std::shared_ptr<grpc::ChannelCredentials> credentials_;
};

// Prints a failed call's status ("tongka_ctl: PERMISSION_DENIED: ...") on stderr.
void PrintFailure(const grpc::Status& status);

// One unary RPC of `stub` with the caller's credentials; false (printed) when it failed.
template <typename Stub, typename Request, typename Response>
bool Call(const Caller& caller, Stub* stub,
          grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&, Response*),
          const Request& request, Response* response) {
  grpc::ClientContext context;
  if (!caller.Prepare(&context)) return false;
  grpc::Status status = (stub->*method)(&context, request, response);
  if (!status.ok()) PrintFailure(status);
  return status.ok();
}

}  // namespace tongka::cli

#endif  // TONGKA_TOOLS_CLI_CALLER_H_
