#include "tools/cli/card_commands.h"

#include <algorithm>
#include <cstdint>
#include <iostream>
#include <map>
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
#include "absl/time/time.h"
#include "proto/card_registry.grpc.pb.h"

ABSL_DECLARE_FLAG(std::string, request_id);
ABSL_DECLARE_FLAG(std::string, reason);

ABSL_FLAG(std::string, registry, "127.0.0.1:7200", "The card registry service, host:port.");
ABSL_FLAG(std::string, form, "physical", "card issue, replace, link: physical, nfc or qr.");
ABSL_FLAG(std::string, device_id, "",
          "card issue, replace, link --form=nfc: the phone's device id.");
ABSL_FLAG(int64_t, balance_fen, 0, "card issue: the opening balance in fen.");
ABSL_FLAG(std::string, product, "stored", "card issue: stored (stored value) or concession.");
ABSL_FLAG(std::string, expires, "", "card issue --product=concession: expiry, RFC 3339.");
ABSL_FLAG(std::string, note, "",
          "card block, lost, unblock, close, replace: why, for the audit trail.");
ABSL_FLAG(std::string, actor, "tongka_ctl", "card commands: who asks, for the audit trail.");
ABSL_FLAG(int32_t, limit, 0, "hotlist-delta: at most this many changes (0: the service's 10,000).");

namespace tongka::cli {
namespace {

using Stub = v1::CardRegistryService::Stub;

// The enum value's name without its prefix: CARD_STATUS_BLOCKED -> BLOCKED.
std::string Short(const std::string& name, absl::string_view prefix) {
  return absl::StartsWith(name, prefix) ? name.substr(prefix.size()) : name;
}
std::string StatusName(v1::CardStatus status) {
  return Short(v1::CardStatus_Name(status), "CARD_STATUS_");
}
std::string ReasonName(v1::BlockReason reason) {
  return Short(v1::BlockReason_Name(reason), "BLOCK_REASON_");
}

// FNV-1a: a short, stable name for a request's content (the same request, the same name, in any
// run), not a security measure.
uint64_t Fnv1a64(absl::string_view bytes) {
  uint64_t hash = 14695981039346656037ULL;
  for (unsigned char c : bytes) hash = (hash ^ c) * 1099511628211ULL;
  return hash;
}

std::string Yuan(int64_t fen) {
  const char* sign = fen < 0 ? "-" : "";
  const uint64_t abs = fen < 0 ? -static_cast<uint64_t>(fen) : static_cast<uint64_t>(fen);
  return absl::StrFormat("%s%d.%02d", sign, abs / 100, abs % 100);
}

std::string Time(int64_t unix_us) {
  if (unix_us == 0) return "-";
  return absl::FormatTime(absl::RFC3339_sec, absl::FromUnixMicros(unix_us), absl::UTCTimeZone());
}

// "p:seq,p:seq" in partition order: what hotlist-delta takes back.
std::string VersionString(const v1::HotlistVersion& version) {
  std::map<int32_t, uint64_t> sorted(version.partition_seq().begin(),
                                     version.partition_seq().end());
  return sorted.empty() ? "-"
                        : absl::StrJoin(sorted, ",",
                                        absl::PairFormatter(absl::AlphaNumFormatter(), ":",
                                                            absl::AlphaNumFormatter()));
}

bool ParseVersion(const std::string& text, v1::HotlistVersion* version) {
  if (text.empty() || text == "-") return true;
  for (absl::string_view item : absl::StrSplit(text, ',')) {
    std::vector<absl::string_view> parts = absl::StrSplit(item, ':');
    int32_t partition = 0;
    uint64_t seq = 0;
    if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &partition) || partition < 0 ||
        !absl::SimpleAtoi(parts[1], &seq)) {
      return false;
    }
    (*version->mutable_partition_seq())[partition] = seq;
  }
  return true;
}

void PrintEntry(const v1::HotlistEntry& entry) {
  std::cout << absl::StrFormat(
      "%-19s  %-8s  %-7s  %-7s  %9d  %8d\n", entry.card_id(), entry.listed() ? "deny" : "delisted",
      StatusName(entry.status()),
      entry.block_reason() == v1::BLOCK_REASON_UNSPECIFIED ? "-" : ReasonName(entry.block_reason()),
      entry.partition(), entry.seq());
}

void PrintEntryHeader() {
  std::cout << absl::StrFormat("%-19s  %-8s  %-7s  %-7s  %9s  %8s\n", "card", "hotlist", "status",
                               "reason", "partition", "seq");
}

class CardCtl {
 public:
  explicit CardCtl(const Caller& caller)
      : caller_(caller),
        stub_(v1::CardRegistryService::NewStub(caller.Channel(absl::GetFlag(FLAGS_registry)))) {}

  int Issue(const std::string& card_id) {
    v1::IssueCardRequest request;
    request.set_card_id(card_id);
    v1::CardForm form;
    if (!ParseForm(&form)) return Usage("--form: physical, nfc or qr");
    request.set_form(form);
    request.set_device_id(absl::GetFlag(FLAGS_device_id));
    const std::string product = absl::GetFlag(FLAGS_product);
    if (product == "stored") {
      request.set_product(v1::CARD_PRODUCT_STORED_VALUE);
    } else if (product == "concession") {
      request.set_product(v1::CARD_PRODUCT_CONCESSION);
    } else {
      return Usage("--product: stored or concession");
    }
    if (!absl::GetFlag(FLAGS_expires).empty()) {
      absl::Time expires;
      std::string error;
      if (!absl::ParseTime(absl::RFC3339_full, absl::GetFlag(FLAGS_expires), &expires, &error)) {
        return Usage(absl::StrCat("--expires: not RFC 3339 (", error, ")"));
      }
      request.set_expires_at_us(absl::ToUnixMicros(expires));
    }
    request.set_initial_balance_fen(absl::GetFlag(FLAGS_balance_fen));
    request.set_actor(absl::GetFlag(FLAGS_actor));
    // The default id names the request's content: a repeat gets the first decision, a corrected
    // request (after a refusal) is a new one.
    std::string request_id = absl::GetFlag(FLAGS_request_id);
    if (request_id.empty()) {
      request_id =
          absl::StrCat("ctl-issue-", card_id, "-", absl::Hex(Fnv1a64(request.SerializeAsString())));
    }
    request.set_request_id(request_id);
    return Command(&Stub::IssueCard, request);
  }

  int Get(const std::string& card_id) {
    v1::GetCardRequest request;
    request.set_card_id(card_id);
    v1::GetCardResponse response;
    if (!Call(caller_, stub_.get(), &Stub::GetCard, request, &response)) return 1;
    const v1::CardView& card = response.card();
    std::cout << "card " << card.card_id() << " of city " << card.issuer_city() << ": "
              << StatusName(card.status()) << "\n";
    if (!card.full()) {
      std::cout << "  (status only: not your card)\n";
      return 0;
    }
    std::cout << "  form " << Short(v1::CardForm_Name(card.form()), "CARD_FORM_") << ", product "
              << Short(v1::CardProduct_Name(card.product()), "CARD_PRODUCT_");
    if (card.expires_at_us() != 0) std::cout << ", expires " << Time(card.expires_at_us());
    std::cout << "\n  balance " << Yuan(card.balance_fen()) << " yuan (opening "
              << Yuan(card.initial_balance_fen()) << ")\n"
              << "  last use " << Time(card.last_used_at_us()) << " in city "
              << card.last_acquirer_city() << ", counter " << card.last_counter() << "\n";
    if (card.block_reason() != v1::BLOCK_REASON_UNSPECIFIED) {
      std::cout << "  block reason " << ReasonName(card.block_reason()) << "\n";
    }
    if (!card.carried_from_card_id().empty()) {
      std::cout << "  replaces card " << card.carried_from_card_id() << ", carried "
                << Yuan(card.carried_balance_fen()) << " yuan\n";
    }
    if (!card.replaced_by_card_id().empty()) {
      std::cout << "  replaced by card " << card.replaced_by_card_id() << "\n";
    }
    if (!card.linked_card_id().empty()) {
      std::cout << "  linked to physical card " << card.linked_card_id() << "\n";
    }
    if (card.balance_owed_fen() != 0) {
      std::cout << "  owed to the holder " << Yuan(card.balance_owed_fen()) << " yuan\n";
    }
    return 0;
  }

  // card replace OLD NEW: --form (of the new card), --device_id, --note.
  int Replace(const std::string& card_id, const std::string& new_card_id) {
    v1::ReplaceCardRequest request;
    // One id per (old, new) pair: a repeat is the same request, another replacement a new one.
    request.set_request_id(
        RequestId("replace", absl::StrCat(card_id, "-", new_card_id), /*repeatable=*/false));
    request.set_card_id(card_id);
    request.set_new_card_id(new_card_id);
    v1::CardForm form;
    if (!ParseForm(&form)) return Usage("--form: physical, nfc or qr");
    request.set_new_form(form);
    request.set_device_id(absl::GetFlag(FLAGS_device_id));
    request.set_reason(absl::GetFlag(FLAGS_note));
    request.set_actor(absl::GetFlag(FLAGS_actor));
    return Command(&Stub::ReplaceCard, request);
  }

  // card link PHYSICAL VIRTUAL: --form nfc (with --device_id) or qr.
  int Link(const std::string& card_id, const std::string& virtual_card_id) {
    v1::LinkVirtualCardRequest request;
    request.set_request_id(RequestId("link", virtual_card_id, /*repeatable=*/false));
    request.set_card_id(card_id);
    request.set_virtual_card_id(virtual_card_id);
    v1::CardForm form;
    if (!ParseForm(&form)) return Usage("--form: nfc or qr");
    request.set_form(form);
    request.set_device_id(absl::GetFlag(FLAGS_device_id));
    request.set_actor(absl::GetFlag(FLAGS_actor));
    return Command(&Stub::LinkVirtualCard, request);
  }

  // balances CITY: the sum of the issuer's open cards' balances.
  int Balances(const std::string& city) {
    v1::GetIssuerBalancesRequest request;
    uint32_t issuer = 0;
    if (!absl::SimpleAtoi(city, &issuer)) return Usage("balances: CITY is a six-digit code");
    request.set_issuer_city(issuer);
    v1::GetIssuerBalancesResponse response;
    if (!Call(caller_, stub_.get(), &Stub::GetIssuerBalances, request, &response)) return 1;
    std::cout << "city " << response.issuer_city() << ": " << response.cards()
              << " open card(s) holding " << Yuan(response.balance_fen()) << " yuan, "
              << response.closed_cards() << " closed\n";
    return 0;
  }

  int Block(const std::string& card_id) {
    const std::string reason = absl::AsciiStrToUpper(absl::GetFlag(FLAGS_reason));
    v1::BlockReason block_reason;
    if (reason.empty() ||
        !v1::BlockReason_Parse(absl::StrCat("BLOCK_REASON_", reason), &block_reason) ||
        block_reason == v1::BLOCK_REASON_UNSPECIFIED) {
      return Usage("card block: --reason=issuer|holder|fraud|lost");
    }
    v1::CardStatusRequest request = StatusRequest("block", card_id);
    request.set_block_reason(block_reason);
    return Command(&Stub::BlockCard, request);
  }

  int Lost(const std::string& card_id) {
    return Command(&Stub::ReportLost, StatusRequest("lost", card_id));
  }

  int Unblock(const std::string& card_id) {
    return Command(&Stub::UnblockCard, StatusRequest("unblock", card_id));
  }

  int Close(const std::string& card_id) {
    v1::CloseCardRequest request;
    request.set_request_id(RequestId("close", card_id, /*repeatable=*/false));
    request.set_card_id(card_id);
    request.set_reason(absl::GetFlag(FLAGS_note));
    request.set_actor(absl::GetFlag(FLAGS_actor));
    return Command(&Stub::CloseCard, request);
  }

  int Hotlist() {
    v1::GetHotlistResponse response;
    if (!Call(caller_, stub_.get(), &Stub::GetHotlist, v1::GetHotlistRequest(), &response)) {
      return 1;
    }
    std::vector<v1::HotlistEntry> cards(response.cards().begin(), response.cards().end());
    std::sort(cards.begin(), cards.end(),
              [](const auto& a, const auto& b) { return a.card_id() < b.card_id(); });
    std::cout << cards.size() << " card(s) denied\n";
    if (!cards.empty()) PrintEntryHeader();
    for (const v1::HotlistEntry& entry : cards) PrintEntry(entry);
    std::cout << "version " << VersionString(response.version()) << "\n";
    return 0;
  }

  int HotlistDelta(const std::string& since) {
    v1::GetHotlistDeltaRequest request;
    if (!ParseVersion(since, request.mutable_since())) {
      return Usage("hotlist-delta: SINCE is p:seq,p:seq (a version hotlist printed)");
    }
    request.set_limit(absl::GetFlag(FLAGS_limit));
    v1::GetHotlistDeltaResponse response;
    if (!Call(caller_, stub_.get(), &Stub::GetHotlistDelta, request, &response)) return 1;
    std::cout << response.changes_size() << " change(s)"
              << (response.more() ? " (more: call again from the version below)" : "") << "\n";
    if (response.changes_size() > 0) PrintEntryHeader();
    for (const v1::HotlistEntry& entry : response.changes()) PrintEntry(entry);
    std::cout << "version " << VersionString(response.version()) << "\n";
    return 0;
  }

 private:
  static bool ParseForm(v1::CardForm* form) {
    const std::string name = absl::GetFlag(FLAGS_form);
    if (name == "physical") {
      *form = v1::CARD_FORM_PHYSICAL;
    } else if (name == "nfc") {
      *form = v1::CARD_FORM_VIRTUAL_NFC;
    } else if (name == "qr") {
      *form = v1::CARD_FORM_QR;
    } else {
      return false;
    }
    return true;
  }

  static int Usage(const std::string& message) {
    std::cerr << "tongka_ctl " << message << "\n";
    return 2;
  }

  // --request_id, or the default: one per card (close), or one per run (block, lost, unblock).
  static std::string RequestId(const std::string& command, const std::string& card_id,
                               bool repeatable) {
    std::string id = absl::GetFlag(FLAGS_request_id);
    if (!id.empty()) return id;
    id = absl::StrCat("ctl-", command, "-", card_id);
    if (repeatable) absl::StrAppend(&id, "-", absl::ToUnixMillis(absl::Now()));
    return id;
  }

  static v1::CardStatusRequest StatusRequest(const std::string& command,
                                             const std::string& card_id) {
    v1::CardStatusRequest request;
    request.set_request_id(RequestId(command, card_id, /*repeatable=*/true));
    request.set_card_id(card_id);
    request.set_reason(absl::GetFlag(FLAGS_note));
    request.set_actor(absl::GetFlag(FLAGS_actor));
    return request;
  }

  // A command RPC: the registry's decision, accepted (0) or refused naming its rule and field (1).
  template <typename Request>
  int Command(grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&,
                                           v1::CardCommandResponse*),
              const Request& request) {
    v1::CardCommandResponse response;
    grpc::ClientContext context;
    if (!caller_.Prepare(&context)) return 1;
    const grpc::Status status = (stub_.get()->*method)(&context, request, &response);
    if (!status.ok()) {
      PrintFailure(status);
      // Written, maybe decided, but not answered: the same request id gets its decision.
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
    std::cout << "card " << response.card_id() << " is " << StatusName(response.status());
    if (!response.hotlist_version().partition_seq().empty()) {
      std::cout << " (hotlist " << VersionString(response.hotlist_version()) << ")";
    }
    std::cout << "\n";
    if (response.has_derived()) {
      const v1::DerivedCard& derived = response.derived();
      switch (derived.state()) {
        case v1::DerivedCard::STATE_ISSUED:
          std::cout << "card " << derived.card_id() << " is issued";
          if (derived.carried_balance_fen() != 0) {
            std::cout << ", carrying " << Yuan(derived.carried_balance_fen()) << " yuan";
          }
          std::cout << "\n";
          break;
        case v1::DerivedCard::STATE_REFUSED:
          std::cout << "card " << derived.card_id() << " was not issued: rule " << derived.rule()
                    << "; a carried balance is owed to the holder on the old card\n";
          return 1;
        default:
          std::cout << "card " << derived.card_id()
                    << " is not decided yet: card get it in a moment\n";
      }
    }
    return 0;
  }

  const Caller& caller_;
  std::unique_ptr<Stub> stub_;
};

}  // namespace

bool IsCardCommand(const std::string& command) {
  return command == "card" || command == "hotlist" || command == "hotlist-delta" ||
         command == "balances";
}

int RunCardCommand(const Caller& caller, const std::vector<std::string>& args) {
  CardCtl ctl(caller);
  const std::string& command = args[0];
  if (command == "hotlist") return ctl.Hotlist();
  if (command == "hotlist-delta") return ctl.HotlistDelta(args.size() > 1 ? args[1] : "");
  if (command == "balances") {
    if (args.size() < 2) return ctl.Balances("");
    return ctl.Balances(args[1]);
  }
  if (args.size() < 3) {
    std::cerr << "tongka_ctl card: needs a command and a card id: card "
                 "issue|get|block|lost|unblock|close CARD_ID, replace CARD_ID NEW_CARD_ID, "
                 "link CARD_ID VIRTUAL_CARD_ID\n";
    return 2;
  }
  const std::string& verb = args[1];
  const std::string& card_id = args[2];
  if (verb == "issue") return ctl.Issue(card_id);
  if (verb == "get") return ctl.Get(card_id);
  if (verb == "block") return ctl.Block(card_id);
  if (verb == "lost") return ctl.Lost(card_id);
  if (verb == "unblock") return ctl.Unblock(card_id);
  if (verb == "close") return ctl.Close(card_id);
  if (verb == "replace" || verb == "link") {
    if (args.size() < 4) {
      std::cerr << "tongka_ctl card " << verb << ": needs the card id and the new card id\n";
      return 2;
    }
    return verb == "replace" ? ctl.Replace(card_id, args[3]) : ctl.Link(card_id, args[3]);
  }
  std::cerr << "tongka_ctl card: unknown command " << verb << "\n";
  return 2;
}

}  // namespace tongka::cli
