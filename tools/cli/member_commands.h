// tongka_ctl's member registry commands: tongka.v1.MemberRegistryService
// (proto/card_registry.proto) at --registry, with the credentials of the other commands (caller.h).
//
//   member status PARTICIPANT active|suspended|exiting --reason=R    SetMemberStatus (ministry)
//   member accept CITY all|CITY[,CITY...]|none --reason=R            SetAcceptedIssuers (ministry)
//   member transfer FROM TO --reason=R                               TransferIssuer (ministry)
//   member get PARTICIPANT                                           GetMember
//   member list                                                      ListMembers
//
// PARTICIPANT is "city:<6 digits>" or "partner:<id>"; for status and get a bare 6-digit city code
// means "city:<code>". "none" is an explicit empty list: the city then accepts only its own cards.
// A command's --request_id is its idempotency key among member commands; the default is
// "ctl-member-<verb>-<participant>-<unix ms>" (a member may be changed back and forth), printed
// when the answer is lost (DEADLINE_EXCEEDED, UNAVAILABLE) so that a retry gets the decision.
//
// Exit status as tongka_ctl's: 0 accepted / answered; 1 the call failed (gRPC status printed) or
// the registry refused the command (its rule and field printed); 2 bad usage.
#ifndef TONGKA_TOOLS_CLI_MEMBER_COMMANDS_H_
#define TONGKA_TOOLS_CLI_MEMBER_COMMANDS_H_

#include <string>
#include <vector>

#include "tools/cli/caller.h"

namespace tongka::cli {

inline constexpr char kMemberUsage[] =
    "member status PARTICIPANT active|suspended|exiting --reason=R | "
    "member accept CITY all|CITY,...|none --reason=R | member transfer FROM TO --reason=R | "
    "member get PARTICIPANT | member list";

bool IsMemberCommand(const std::string& command);

// Runs one: args[0] is "member", the rest its arguments. Returns the exit status.
int RunMemberCommand(const Caller& caller, const std::vector<std::string>& args);

}  // namespace tongka::cli

#endif  // TONGKA_TOOLS_CLI_MEMBER_COMMANDS_H_
