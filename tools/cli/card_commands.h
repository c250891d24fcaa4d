// tongka_ctl's card registry commands: tongka.v1.CardRegistryService (proto/card_registry.proto)
// at --registry, with the credentials of the other commands (caller.h).
//
//   card issue CARD_ID [--form=physical|nfc|qr] [--device_id=ID] [--balance_fen=N]
//                      [--product=stored|concession --expires=RFC3339]   IssueCard (issuer city)
//   card get CARD_ID                                                     GetCard
//   card block CARD_ID --reason=issuer|holder|fraud|lost [--note=TEXT]   BlockCard
//   card lost CARD_ID [--note=TEXT]                                      ReportLost
//   card unblock CARD_ID [--note=TEXT]                                   UnblockCard
//   card close CARD_ID [--note=TEXT]                                     CloseCard
//   hotlist                                                              GetHotlist
//   hotlist-delta [SINCE] [--limit=N]   SINCE "p:seq,p:seq" (what a previous call printed as its
//                                       version; none: from the start)   GetHotlistDelta
//
// A command's --request_id is its idempotency key (per tenant, across all card commands). The
// defaults: issue "ctl-issue-CARD_ID-<hash of the request>" (the same request again gets the first
// decision, a corrected one is new); close "ctl-close-CARD_ID" (a card is closed once); block,
// lost and unblock, which a card may see many times, "ctl-<command>-CARD_ID-<unix ms>". When a
// command's answer is lost (DEADLINE_EXCEEDED, UNAVAILABLE) its id is printed for the retry.
// Card replacement is not in the registry's API yet, so there is no `card replace`.
//
// Exit status as tongka_ctl's: 0 accepted / answered; 1 the call failed (gRPC status printed) or
// the registry refused the command (its rule and field printed); 2 bad usage.
#ifndef TONGKA_TOOLS_CLI_CARD_COMMANDS_H_
#define TONGKA_TOOLS_CLI_CARD_COMMANDS_H_

#include <string>
#include <vector>

#include "tools/cli/caller.h"

namespace tongka::cli {

// The usage line of the card commands, for tongka_ctl's.
inline constexpr char kCardUsage[] =
    "[--registry=HOST:PORT] card issue ID [--form=physical|nfc|qr] [--device_id=D] "
    "[--balance_fen=N] [--product=stored|concession --expires=RFC3339] | card get ID | "
    "card block ID --reason=issuer|holder|fraud|lost [--note=T] | card lost ID | "
    "card unblock ID | card close ID | hotlist | hotlist-delta [p:seq,...] [--limit=N]";

// Whether `command` (tongka_ctl's first argument) is one of the above.
bool IsCardCommand(const std::string& command);

// Runs one: args[0] is "card", "hotlist" or "hotlist-delta", the rest its arguments. Returns the
// exit status.
int RunCardCommand(const Caller& caller, const std::vector<std::string>& args);

}  // namespace tongka::cli

#endif  // TONGKA_TOOLS_CLI_CARD_COMMANDS_H_
