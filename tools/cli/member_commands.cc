#include "tools/cli/member_commands.h"

#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "proto/card_registry.grpc.pb.h"

ABSL_DECLARE_FLAG(std::string, request_id);
ABSL_DECLARE_FLAG(std::string, reason);
ABSL_DECLARE_FLAG(std::string, registry);
ABSL_DECLARE_FLAG(std::string, actor);

namespace tongka::cli {
namespace {

using Stub = v1::MemberRegistryService::Stub;

std::string StatusName(v1::MemberStatus status) {
  std::string name = v1::MemberStatus_Name(status);
  return absl::StartsWith(name, "MEMBER_STATUS_") ? name.substr(14) : name;
}

// A bare 6-digit code is a city.
std::string ParticipantOf(const std::string& text) {
  uint32_t code = 0;
  if (text.size() == 6 && absl::SimpleAtoi(text, &code)) return absl::StrCat("city:", text);
  return text;
}

void PrintMember(const v1::Member& member) {
  std::string accepts = "all issuers";
  if (!member.accepts_all()) {
    accepts =
        member.accepted_issuer_cities().empty()
            ? "its own cards only"
            : absl::StrCat("its own and ", absl::StrJoin(member.accepted_issuer_cities(), ","));
  }
  std::cout << absl::StrFormat("%-20s  %-9s  v%-4d  accepts %s", member.participant(),
                               StatusName(member.status()), member.version(), accepts);
  if (member.successor_city() != 0) {
    std::cout << ", cards moved to city " << member.successor_city();
  }
  std::cout << "\n";
}

int Usage(const std::string& message) {
  std::cerr << "tongka_ctl member: " << message << "\n";
  return 2;
}

std::string RequestId(const std::string& verb, const std::string& participant) {
  std::string id = absl::GetFlag(FLAGS_request_id);
  if (!id.empty()) return id;
  // ':' is allowed in request ids; the participant names the command's subject.
  return absl::StrCat("ctl-member-", verb, "-", participant, "-", absl::ToUnixMillis(absl::Now()));
}

class MemberCtl {
 public:
  explicit MemberCtl(const Caller& caller)
      : caller_(caller),
        stub_(v1::MemberRegistryService::NewStub(caller.Channel(absl::GetFlag(FLAGS_registry)))) {}

  int Status(const std::string& participant_text, const std::string& status_text) {
    const std::string participant = ParticipantOf(participant_text);
    const std::string lower = absl::AsciiStrToLower(status_text);
    v1::SetMemberStatusRequest request;
    if (lower == "active") {
      request.set_status(v1::MEMBER_STATUS_ACTIVE);
    } else if (lower == "suspended") {
      request.set_status(v1::MEMBER_STATUS_SUSPENDED);
    } else if (lower == "exiting") {
      request.set_status(v1::MEMBER_STATUS_EXITING);
    } else {
      return Usage("status: active, suspended or exiting");
    }
    request.set_request_id(RequestId("status", participant));
    request.set_participant(participant);
    request.set_reason(absl::GetFlag(FLAGS_reason));
    request.set_actor(absl::GetFlag(FLAGS_actor));
    return Command(&Stub::SetMemberStatus, request);
  }

  int Accept(const std::string& city_text, const std::string& list) {
    v1::SetAcceptedIssuersRequest request;
    uint32_t city = 0;
    if (!absl::SimpleAtoi(absl::StripPrefix(city_text, "city:"), &city)) {
      return Usage("accept: the acquirer is a 6-digit city code");
    }
    request.set_acquirer_city(city);
    if (list == "all") {
      request.set_accept_all(true);
    } else if (list != "none") {
      for (absl::string_view item : absl::StrSplit(list, ',', absl::SkipEmpty())) {
        uint32_t issuer = 0;
        if (!absl::SimpleAtoi(absl::StripPrefix(item, "city:"), &issuer)) {
          return Usage(absl::StrCat("accept: not a city code: ", item));
        }
        request.add_issuer_cities(issuer);
      }
    }
    request.set_request_id(RequestId("accept", absl::StrCat("city:", city)));
    request.set_reason(absl::GetFlag(FLAGS_reason));
    request.set_actor(absl::GetFlag(FLAGS_actor));
    return Command(&Stub::SetAcceptedIssuers, request);
  }

  // member transfer FROM TO: the failed-issuer playbook (FROM must be EXITING).
  int Transfer(const std::string& from_text, const std::string& to_text) {
    v1::TransferIssuerRequest request;
    uint32_t from = 0;
    uint32_t to = 0;
    if (!absl::SimpleAtoi(absl::StripPrefix(from_text, "city:"), &from) ||
        !absl::SimpleAtoi(absl::StripPrefix(to_text, "city:"), &to)) {
      return Usage("transfer: FROM and TO are 6-digit city codes");
    }
    request.set_from_city(from);
    request.set_to_city(to);
    request.set_request_id(RequestId("transfer", absl::StrCat("city:", from)));
    request.set_reason(absl::GetFlag(FLAGS_reason));
    request.set_actor(absl::GetFlag(FLAGS_actor));
    return Command(&Stub::TransferIssuer, request);
  }

  int Get(const std::string& participant) {
    v1::GetMemberRequest request;
    request.set_participant(ParticipantOf(participant));
    v1::GetMemberResponse response;
    if (!Call(caller_, stub_.get(), &Stub::GetMember, request, &response)) return 1;
    PrintMember(response.member());
    return 0;
  }

  int List() {
    v1::ListMembersResponse response;
    if (!Call(caller_, stub_.get(), &Stub::ListMembers, v1::ListMembersRequest(), &response)) {
      return 1;
    }
    for (const v1::Member& member : response.members()) PrintMember(member);
    return 0;
  }

 private:
  template <typename Request>
  int Command(grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&,
                                           v1::MemberCommandResponse*),
              const Request& request) {
    v1::MemberCommandResponse response;
    grpc::ClientContext context;
    if (!caller_.Prepare(&context)) return 1;
    const grpc::Status status = (stub_.get()->*method)(&context, request, &response);
    if (!status.ok()) {
      PrintFailure(status);
      if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED ||
          status.error_code() == grpc::StatusCode::UNAVAILABLE) {
        std::cerr << "tongka_ctl: retry with --request_id=" << request.request_id() << "\n";
      }
      return 1;
    }
    if (!response.accepted()) {
      std::cout << "refused: rule " << response.rule() << ", field " << response.field() << ": "
                << response.message() << "\n";
      return 1;
    }
    PrintMember(response.member());
    return 0;
  }

  const Caller& caller_;
  std::unique_ptr<Stub> stub_;
};

}  // namespace

bool IsMemberCommand(const std::string& command) { return command == "member"; }

int RunMemberCommand(const Caller& caller, const std::vector<std::string>& args) {
  MemberCtl ctl(caller);
  if (args.size() < 2) return Usage(kMemberUsage);
  const std::string& verb = args[1];
  if (verb == "list" && args.size() == 2) return ctl.List();
  if (verb == "get" && args.size() == 3) return ctl.Get(args[2]);
  if (verb == "status" && args.size() == 4) return ctl.Status(args[2], args[3]);
  if (verb == "accept" && args.size() == 4) return ctl.Accept(args[2], args[3]);
  if (verb == "transfer" && args.size() == 4) return ctl.Transfer(args[2], args[3]);
  return Usage(kMemberUsage);
}

}  // namespace tongka::cli
