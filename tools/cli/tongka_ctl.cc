// tongka_ctl: the operator's command line for the settlement API and the card registry, as a city
// operator, a partner or the ministry. It calls tongka.v1.SettlementService at --target and
// tongka.v1.CardRegistryService at --registry over gRPC, either with mTLS (the caller's client
// certificate names the tenant) or, in development, with a signed dev token for --tenant
// (caller.h).
//
//   tongka_ctl --target=HOST:PORT --tenant=ministry windows
//   tongka_ctl ... window 2026-12-01           live positions of one window
//   tongka_ctl ... close 2026-12-01            the ministry closes it (read-your-writes answer)
//   tongka_ctl ... report 2026-12-01 [--top=N] the report: net positions, largest flows
//   tongka_ctl ... float [2026-12-01]          every issuer's prepaid float and reserve coverage
//   tongka_ctl ... rules [2026-12-01]          the business-day and fee rules, window by window
//   tongka_ctl ... schedule-rules 2026-12-20 --zone=Asia/Shanghai --cut=24h --fees=default:40
//                                              the ministry changes them from that window on
//   tongka_ctl ... transfer-float 450200 450100 --reason="card company failed"
//                                              the ministry moves a failed issuer's float to a
//                                              successor (read-your-writes answer)
//   tongka_ctl ... card issue|get|block|lost|unblock|close CARD_ID, card replace|link CARD_ID NEW,
//                  balances CITY, hotlist, hotlist-delta SINCE
//                                              the card registry (card_commands.h)
//   tongka_ctl ... member status|accept|transfer|get|list  the member registry (member_commands.h)
//
// Exit status: 0 on success, 1 when the call failed (the gRPC status is printed) or a command was
// refused (its rule is printed), 2 on bad usage.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "libs/txn/cities.h"
#include "proto/settlement.grpc.pb.h"
#include "tools/cli/caller.h"
#include "tools/cli/card_commands.h"
#include "tools/cli/member_commands.h"

ABSL_FLAG(std::string, target, "127.0.0.1:7000", "The settlement service, host:port.");
ABSL_FLAG(int32_t, top, 10, "report: how many of the largest inter-city flows to list.");
ABSL_FLAG(std::string, request_id, "",
          "close, schedule-rules, transfer-float, card commands: the idempotency key (default: "
          "derived).");
ABSL_FLAG(std::string, zone, "", "schedule-rules: the business-day zone (default: unchanged).");
ABSL_FLAG(absl::Duration, cut, absl::ZeroDuration(),
          "schedule-rules: the local time of day of the cut, (0, 24h] (default: unchanged).");
ABSL_FLAG(std::string, fees, "", "schedule-rules: the fee schedule (default: unchanged).");
ABSL_FLAG(std::string, reason, "",
          "schedule-rules, transfer-float, member status and accept: why, for the audit trail.");

namespace tongka::cli {
namespace {

std::string CityName(uint32_t code) {
  const txn::City* city = txn::FindCity(code);
  return city == nullptr ? absl::StrCat(code) : absl::StrCat(code, " ", city->name);
}

// FNV-1a: a short, stable name for the rules asked for (the same rules, the same name, in any
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

class Ctl {
 public:
  explicit Ctl(const Caller& caller)
      : caller_(caller),
        stub_(v1::SettlementService::NewStub(caller.Channel(absl::GetFlag(FLAGS_target)))) {}

  // Runs one RPC with the caller's credentials; prints the status when it fails.
  template <typename Request, typename Response>
  bool Call(grpc::Status (v1::SettlementService::Stub::*method)(grpc::ClientContext*,
                                                                const Request&, Response*),
            const Request& request, Response* response) {
    return cli::Call(caller_, stub_.get(), method, request, response);
  }

  int Windows() {
    v1::ListWindowsResponse response;
    if (!Call(&v1::SettlementService::Stub::ListWindows, v1::ListWindowsRequest(), &response)) {
      return 1;
    }
    std::cout << absl::StrFormat("%-10s  %-8s  %12s  %16s  %s\n", "window", "state", "transactions",
                                 "gross yuan", "report");
    for (const v1::WindowSummary& window : response.windows()) {
      std::cout << absl::StrFormat("%-10s  %-8s  %12d  %16s  %s\n", window.window_id(),
                                   StateName(window.state()), window.transactions(),
                                   Yuan(window.gross_fen()), window.report_ready() ? "ready" : "-");
    }
    return 0;
  }

  int Window(const std::string& window_id) {
    v1::GetWindowRequest request;
    request.set_window_id(window_id);
    v1::GetWindowResponse response;
    if (!Call(&v1::SettlementService::Stub::GetWindow, request, &response)) return 1;
    std::cout << "window " << window_id << ": " << StateName(response.window().state()) << ", "
              << response.window().transactions() << " transactions, "
              << Yuan(response.window().gross_fen()) << " yuan gross, " << response.bilateral_size()
              << " (issuer, acquirer) rows\n";
    PrintNets(response.net());
    PrintTopFlows(response.bilateral());
    return 0;
  }

  int Close(const std::string& window_id) {
    v1::ChangeWindowStateRequest request;
    std::string request_id = absl::GetFlag(FLAGS_request_id);
    if (request_id.empty()) request_id = absl::StrCat("ctl-close-", window_id);
    request.set_request_id(request_id);
    request.set_window_id(window_id);
    request.set_target_state(v1::WINDOW_STATE_CLOSED);
    request.set_reason("closed with tongka_ctl");
    v1::ChangeWindowStateResponse response;
    if (!Call(&v1::SettlementService::Stub::ChangeWindowState, request, &response)) return 1;
    if (!response.accepted()) {
      std::cout << "refused (" << response.rule() << "): " << response.message() << "\n";
      return 1;
    }
    std::cout << "window " << window_id << " is " << StateName(response.state()) << "\n";
    return 0;
  }

  int Report(const std::string& window_id) {
    v1::GetReportRequest request;
    request.set_window_id(window_id);
    v1::GetReportResponse response;
    if (!Call(&v1::SettlementService::Stub::GetReport, request, &response)) return 1;
    const v1::SettlementReport& report = response.report();
    int64_t cross = 0;
    int64_t same = 0;
    int64_t fee = 0;
    for (const v1::BilateralPosition& row : report.bilateral()) {
      (row.issuer_city() == row.acquirer_city() ? same : cross) += row.gross_fen();
      if (row.issuer_city() != row.acquirer_city()) fee += row.fee_fen();
    }
    std::cout << "settlement report " << report.window_id()
              << (response.filtered() ? " (your rows only)" : "") << "\n"
              << "  inter-city gross " << Yuan(cross) << " yuan, interchange fees " << Yuan(fee)
              << " yuan; same-city " << Yuan(same) << " yuan (float, not settled between cities)\n";
    if (!response.filtered()) {
      std::cout << "  payables = receivables = " << Yuan(report.total_payable_fen()) << " yuan\n";
    }
    PrintNets(report.net());
    PrintTopFlows(report.bilateral());
    std::string digest;
    for (unsigned char c : report.digest()) absl::StrAppend(&digest, absl::Hex(c, absl::kZeroPad2));
    std::cout << "  report digest (SM3): " << digest << "\n";
    return 0;
  }

  int Rules(const std::string& window_id) {
    v1::GetRulesRequest request;
    request.set_window_id(window_id);
    v1::GetRulesResponse response;
    if (!Call(&v1::SettlementService::Stub::GetRules, request, &response)) return 1;
    std::cout << absl::StrFormat("%-10s  %-16s  %5s  %-30s  %s\n", "from", "zone", "cut", "fees",
                                 "first window (UTC)");
    for (const v1::RulesPeriod& period : response.periods()) PrintPeriod(period);
    if (!window_id.empty()) {
      std::cout << "in force for " << window_id << ":\n";
      PrintPeriod(response.in_force());
    }
    return 0;
  }

  int ScheduleRules(const std::string& window_id) {
    // Unset flags keep the rules in force for that window now.
    v1::GetRulesRequest get;
    get.set_window_id(window_id);
    v1::GetRulesResponse current;
    if (!Call(&v1::SettlementService::Stub::GetRules, get, &current)) return 1;
    v1::ScheduleRulesRequest request;
    std::string request_id = absl::GetFlag(FLAGS_request_id);

    request.set_effective_window_id(window_id);
    *request.mutable_rules() = current.in_force().rules();
    if (!absl::GetFlag(FLAGS_zone).empty())
      request.mutable_rules()->set_zone(absl::GetFlag(FLAGS_zone));
    if (absl::GetFlag(FLAGS_cut) != absl::ZeroDuration()) {
      request.mutable_rules()->set_cut_minutes(
          static_cast<int32_t>(absl::ToInt64Minutes(absl::GetFlag(FLAGS_cut))));
    }
    if (!absl::GetFlag(FLAGS_fees).empty()) {
      request.mutable_rules()->set_fee_schedule(absl::GetFlag(FLAGS_fees));
    }
    request.set_reason(absl::GetFlag(FLAGS_reason).empty() ? "scheduled with tongka_ctl"
                                                           : absl::GetFlag(FLAGS_reason));
    // By default the request id names the change itself, so a corrected change is a new request
    // and a repeated one is the same.
    if (request_id.empty()) {
      request_id = absl::StrCat("ctl-rules-", window_id, "-",
                                absl::Hex(Fnv1a64(request.rules().SerializeAsString())));
    }
    request.set_request_id(request_id);
    v1::ScheduleRulesResponse response;
    if (!Call(&v1::SettlementService::Stub::ScheduleRules, request, &response)) return 1;
    if (response.superseded()) {
      std::cout << "accepted earlier, and replaced since by a later change\n";
      return 0;
    }
    std::cout << "scheduled:\n";
    PrintPeriod(response.period());
    return 0;
  }

  int Float(const std::string& window_id) {
    v1::GetFloatRequest request;
    request.set_window_id(window_id);
    v1::GetFloatResponse response;
    if (!Call(&v1::SettlementService::Stub::GetFloat, request, &response)) return 1;
    std::cout << absl::StrFormat("%-22s  %16s  %16s  %9s  %-22s  %16s  %s\n", "issuer",
                                 "outstanding yuan", "reserve yuan", "coverage", "successor",
                                 "transferred yuan", window_id.empty() ? "" : "change in window");
    for (const v1::FloatPosition& issuer : response.issuers()) {
      // A successor's outstanding includes its predecessors' float (inherited); a failed
      // issuer's is 0, its cards' float shown as transferred and covered by its own escrow.
      std::string successor;
      if (issuer.successor_city() != 0) {
        successor = absl::StrCat("-> ", CityName(issuer.successor_city()));
      } else if (issuer.predecessor_cities_size() > 0) {
        successor = absl::StrCat("+", Yuan(issuer.inherited_fen()), " from ",
                                 issuer.predecessor_cities_size(), " failed");
      }
      std::cout << absl::StrFormat(
          "%-22s  %16s  %16s  %8.0f%%%s  %-22s  %16s  %s\n", CityName(issuer.issuer_city()),
          Yuan(issuer.outstanding_fen()), Yuan(issuer.reserve_fen()), issuer.coverage_ratio() * 100,
          issuer.under_covered() ? "!" : " ", successor,
          issuer.successor_city() != 0 ? Yuan(issuer.transferred_fen()) : "",
          window_id.empty() ? "" : Yuan(issuer.window_change_fen()));
    }
    return 0;
  }

  int TransferFloat(const std::string& from, const std::string& to) {
    v1::TransferFloatRequest request;
    uint32_t from_city = 0;
    uint32_t to_city = 0;
    if (!absl::SimpleAtoi(from, &from_city) || !absl::SimpleAtoi(to, &to_city)) {
      std::cerr << "tongka_ctl transfer-float: FROM and TO are six-digit city codes\n";
      return 2;
    }
    request.set_from_city(from_city);
    request.set_to_city(to_city);
    request.set_reason(absl::GetFlag(FLAGS_reason).empty() ? "transferred with tongka_ctl"
                                                           : absl::GetFlag(FLAGS_reason));
    // By default the request id names the transfer, so repeating it is the same request.
    std::string request_id = absl::GetFlag(FLAGS_request_id);
    if (request_id.empty()) request_id = absl::StrCat("ctl-transfer-", from_city, "-", to_city);
    request.set_request_id(request_id);
    v1::TransferFloatResponse response;
    if (!Call(&v1::SettlementService::Stub::TransferFloat, request, &response)) return 1;
    std::cout << absl::StrFormat(
        "transferred: %s -> %s, %s yuan (%s); %s now carries %s yuan\n", CityName(from_city),
        CityName(to_city), Yuan(response.from().transferred_fen()), response.command_event_id(),
        CityName(to_city), Yuan(response.to().outstanding_fen()));
    return 0;
  }

 private:
  static std::string StateName(v1::WindowState state) {
    std::string name = v1::WindowState_Name(state);
    return name.substr(std::min(name.size(), sizeof("WINDOW_STATE_") - 1));
  }

  static void PrintPeriod(const v1::RulesPeriod& period) {
    const int32_t cut = period.rules().cut_minutes();
    std::string first = "-";
    if (period.first_window_end_at_us() != 0) {
      first = absl::StrCat(
          absl::FormatTime("%Y-%m-%d %H:%M",
                           absl::FromUnixMicros(period.first_window_start_at_us()),
                           absl::UTCTimeZone()),
          " .. ",
          absl::FormatTime("%Y-%m-%d %H:%M", absl::FromUnixMicros(period.first_window_end_at_us()),
                           absl::UTCTimeZone()));
    }
    std::cout << absl::StrFormat(
        "%-10s  %-16s  %02d:%02d  %-30s  %s\n",
        period.effective_window_id().empty() ? "genesis" : period.effective_window_id(),
        period.rules().zone(), cut / 60, cut % 60, period.rules().fee_schedule(), first);
  }

  static void PrintNets(const google::protobuf::RepeatedPtrField<v1::NetPosition>& nets) {
    std::vector<v1::NetPosition> sorted(nets.begin(), nets.end());
    std::sort(sorted.begin(), sorted.end(),
              [](const auto& a, const auto& b) { return a.net_fen() > b.net_fen(); });
    std::cout << "  net positions (> 0 receives, < 0 pays), largest first:\n";
    const size_t top = static_cast<size_t>(std::max(1, absl::GetFlag(FLAGS_top)));
    for (size_t i = 0; i < sorted.size(); ++i) {
      if (sorted.size() > 2 * top && i == top) {
        std::cout << "    ... " << sorted.size() - 2 * top << " more\n";
        i = sorted.size() - top - 1;
        continue;
      }
      std::cout << absl::StrFormat("    %-22s %16s\n", CityName(sorted[i].city()),
                                   Yuan(sorted[i].net_fen()));
    }
  }

  static void PrintTopFlows(const google::protobuf::RepeatedPtrField<v1::BilateralPosition>& rows) {
    std::vector<v1::BilateralPosition> cross;
    for (const auto& row : rows) {
      if (row.issuer_city() != row.acquirer_city()) cross.push_back(row);
    }
    std::sort(cross.begin(), cross.end(),
              [](const auto& a, const auto& b) { return a.net_fen() > b.net_fen(); });
    const size_t top = std::min(cross.size(), static_cast<size_t>(absl::GetFlag(FLAGS_top)));
    std::cout << "  largest inter-city flows (issuer pays acquirer):\n";
    for (size_t i = 0; i < top; ++i) {
      std::cout << absl::StrFormat("    %-22s -> %-22s %7d tx  net %12s  fee %9s\n",
                                   CityName(cross[i].issuer_city()),
                                   CityName(cross[i].acquirer_city()), cross[i].count(),
                                   Yuan(cross[i].net_fen()), Yuan(cross[i].fee_fen()));
    }
  }

  const Caller& caller_;
  std::unique_ptr<v1::SettlementService::Stub> stub_;
};

int Main(const std::vector<char*>& args) {
  if (args.size() < 2) {
    std::cerr << absl::ProgramUsageMessage() << "\n";
    return 2;
  }
  const std::string command = args[1];
  const Caller caller;
  if (IsCardCommand(command)) {
    return RunCardCommand(caller, std::vector<std::string>(args.begin() + 1, args.end()));
  }
  if (IsMemberCommand(command)) {
    return RunMemberCommand(caller, std::vector<std::string>(args.begin() + 1, args.end()));
  }
  const std::string window_id = args.size() > 2 ? args[2] : "";
  Ctl ctl(caller);
  if (command == "windows") return ctl.Windows();
  if (command == "float") return ctl.Float(window_id);
  if (command == "rules") return ctl.Rules(window_id);
  if (command == "transfer-float") {
    if (args.size() != 4) {
      std::cerr << "tongka_ctl transfer-float: needs FROM and TO city codes\n";
      return 2;
    }
    return ctl.TransferFloat(args[2], args[3]);
  }
  if (window_id.empty()) {
    std::cerr << "tongka_ctl " << command << ": needs a window id (YYYY-MM-DD)\n";
    return 2;
  }
  if (command == "window") return ctl.Window(window_id);
  if (command == "close") return ctl.Close(window_id);
  if (command == "report") return ctl.Report(window_id);
  if (command == "schedule-rules") return ctl.ScheduleRules(window_id);
  std::cerr << "tongka_ctl: unknown command " << command << "\n";
  return 2;
}

}  // namespace
}  // namespace tongka::cli

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "tongka_ctl [--target=HOST:PORT] [--tenant=ministry|city:<code>|partner:<id> "
      "--dev_token_secret=S | --tls_ca=F --tls_cert=F --tls_key=F] "
      "windows | window ID | close ID | report ID [--top=N] | float [ID] | rules [ID] | "
      "schedule-rules ID [--zone=Z] [--cut=D] [--fees=S] [--reason=R] | "
      "transfer-float FROM TO [--reason=R] | " +
      std::string(tongka::cli::kCardUsage) + " | " + tongka::cli::kMemberUsage);
  return tongka::cli::Main(absl::ParseCommandLine(argc, argv));
}
