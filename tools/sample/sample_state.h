// The runtime's sample pipeline: the pure apply logic of its two stages.
//
// Before the real services exist, this pipeline proves the exactly-once pattern end to end on the
// libraries every service will use (DESIGN.md "Exactly-once state"):
//   stage one (TapCounter) consumes tongka.txn, keeps per-card totals, and per batch derives one
//     SampleTally per (partition, acquirer city) into its outbox, keyed by acquirer city, with the
//     event id "sample/tongka.txn/<partition>/<first>-<last>/<city>" (the offsets it covers);
//   stage two (CityTally) consumes tongka.sample.tally and keeps per-city totals: the single
//     writer per city key. Repeated event ids (resent outbox entries after a crash) never reach
//     it: the apply loop's EventFilter drops them, as it does on every loop.
// If no record is lost or applied twice, stage two's city totals equal the sums over the taps.
//
// Both appliers are deterministic (no clock, no I/O besides the batch) so a rebuild from offset 0
// reproduces the live state bit for bit. Records that do not parse are counted under
// "stats/<stage>_unparseable" and skipped, deterministically.
//
// Thread-safety: an applier is driven by one ApplyLoop thread.
#ifndef TONGKA_TOOLS_SAMPLE_SAMPLE_STATE_H_
#define TONGKA_TOOLS_SAMPLE_SAMPLE_STATE_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "libs/state_store/apply_loop.h"
#include "libs/state_store/prepared_queue.h"
#include "libs/state_store/state_store.h"
#include "proto/events.pb.h"

namespace tongka::sample {

inline constexpr char kTxnTopic[] = "tongka.txn";
inline constexpr char kTallyTopic[] = "tongka.sample.tally";

// Per batch, TapCounter sums each card's taps in memory and writes each card it saw once, in
// FinishBatch: the state after a batch is the same as with a read-modify-write per tap, with one
// store write per card instead of one per tap. Prepare reads each record (txn::ParseTxnView, no
// v1::Event built) on the prefetch thread.
class TapCounter : public state_store::Applier {
 public:
  absl::Status Apply(const event_log::Record& record, state_store::StateBatch& batch) override;
  absl::Status FinishBatch(state_store::StateBatch& batch) override;
  void Prepare(const std::vector<event_log::Record>& records) override;

 private:
  // What the stage reads of a record. card_id points into the record's bytes at `base` (Apply
  // re-bases it onto the record it applies: an entry left by a loop that stopped may outlive the
  // bytes it was read from) and is copied before the record goes.
  struct ParsedTap {
    bool usable = false;  // a tap that parsed
    absl::string_view card_id;
    const char* base = nullptr;
    uint32_t acquirer_city = 0;
    int64_t amount_fen = 0;
  };
  static ParsedTap Parse(const event_log::Record& record);
  struct CardDelta {
    int64_t taps = 0;
    int64_t spent_fen = 0;
  };
  struct Tally {
    int64_t first_offset = -1;
    int64_t last_offset = -1;
    int64_t taps = 0;
    int64_t amount_fen = 0;
  };
  // This batch's tallies by (partition, acquirer city), ordered so the outbox order is stable.
  std::map<std::pair<int32_t, uint32_t>, Tally> tallies_;
  absl::flat_hash_map<std::string, CardDelta> cards_;  // this batch's, by card id
  int64_t unparseable_ = 0;                            // this batch's
  state_store::PreparedQueue<ParsedTap> prepared_;
  v1::Event tally_;  // scratch for the derived events: Clear keeps its allocations
};

class CityTally : public state_store::Applier {
 public:
  absl::Status Apply(const event_log::Record& record, state_store::StateBatch& batch) override;
};

// What the pipeline has computed, read from a store.
struct SampleTotals {
  int64_t card_taps = 0;  // stage one: sum over cards
  int64_t card_spent_fen = 0;
  int64_t city_taps = 0;  // stage two: sum over cities
  int64_t city_amount_fen = 0;
  int64_t duplicates_dropped = 0;  // both stages' loops (state_store::ReadDropCounts)
  int64_t unparseable = 0;
  std::map<uint32_t, std::pair<int64_t, int64_t>> per_city;  // city -> (taps, amount_fen)
};
absl::StatusOr<SampleTotals> ReadTotals(const state_store::StateStore& store);

// The i-th tap of a deterministic synthetic stream (the quick start and the crash test feed it).
// Cards are spread over a few member cities; each tap's acquirer city may differ from the issuer.
v1::Event SyntheticTap(uint64_t seed, uint64_t i);

}  // namespace tongka::sample

#endif  // TONGKA_TOOLS_SAMPLE_SAMPLE_STATE_H_
