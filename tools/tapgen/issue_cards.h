// IssueCards: issues a tapgen run's cards in the card registry before the traffic, so every card
// that taps exists there and its opening balance reaches settlement's float (the float then adds
// up to the cards' balances). Development mode: each issuer city's batch goes with a dev token
// minted for that city, as city operators issue only their own cards.
//
// Request ids are "tapgen-<card_id>", so a rerun against the same registry gets each card's first
// decision back; a card issued before under another request id answers card_exists, which counts
// as issued. Any other refusal is an error naming the card, its rule and field.
//
// Thread-safety: a plain function; one call at a time. Failure: UNAVAILABLE and the like from
// gRPC (retried a few times, then returned), FAILED_PRECONDITION for a refused card.
//
// Example:
//   absl::Status issued = IssueCards("127.0.0.1:7200", secret, generator->IssuedCards());
#ifndef TONGKA_TOOLS_TAPGEN_ISSUE_CARDS_H_
#define TONGKA_TOOLS_TAPGEN_ISSUE_CARDS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "tools/tapgen/tapgen.h"

namespace tongka::tapgen {

// Cards per IssueCards call (the registry takes up to 10,000).
inline constexpr size_t kIssueBatchMax = 5000;

absl::Status IssueCards(const std::string& registry, const std::string& dev_token_secret,
                        const std::vector<IssuedCard>& cards,
                        absl::Duration call_timeout = absl::Seconds(60));

}  // namespace tongka::tapgen

#endif  // TONGKA_TOOLS_TAPGEN_ISSUE_CARDS_H_
