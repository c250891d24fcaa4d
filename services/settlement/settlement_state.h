// The settlement service's pure apply logic: two stages over one RocksDB (DESIGN.md "Exactly-once
// state", pattern 4), plus the readers the API and the report use. This header gathers them;
// each part documents itself:
//
//   txn_stage.h           stage one, TxnStage: tongka.txn (owned partitions) -> SettlementDelta
//                         events per (partition, window), and the id index for the drill-down
//   window_ledger.h       stage two, WindowLedger: every tongka.settlement partition in every
//                         replica -> windows and their lifecycle, reports, floats, and where
//                         late and aborted money went
//   settlement_report.h   cells, id digests and the report (pure): bilateral matrix,
//                         multilateral net, SM3 digest, the invariants
//   settlement_readers.h  StateView and the readers (windows, pairs, hours, reports, the id
//                         index joined with where its money went, floats, outcomes, counters)
//   settlement_keys.h     the topics, the key layout of the state column family, the stored
//                         index entry format
//
// Determinism: no clock (times come from the events' recorded_at), ordered containers only, so
// the same log yields the same bytes. Records that do not parse are counted and skipped.
// Thread-safety: each applier is driven by one ApplyLoop thread (TxnStage::Prepare by its prefetch
// thread); the readers are thread-safe.
//
// Example (settlement_app.cc wires both stages):
//   TxnStage stage(&calendar, &fees);                   // tongka.txn -> deltas
//   WindowLedger ledger({.calendar = &calendar});       // deltas and commands -> windows
//   auto report = ReadReport(ViewOf(store), "2026-11-24");
#ifndef TONGKA_SERVICES_SETTLEMENT_SETTLEMENT_STATE_H_
#define TONGKA_SERVICES_SETTLEMENT_SETTLEMENT_STATE_H_

#include "services/settlement/settlement_keys.h"     // IWYU pragma: export
#include "services/settlement/settlement_readers.h"  // IWYU pragma: export
#include "services/settlement/settlement_report.h"   // IWYU pragma: export
#include "services/settlement/txn_stage.h"           // IWYU pragma: export
#include "services/settlement/window_ledger.h"       // IWYU pragma: export

#endif  // TONGKA_SERVICES_SETTLEMENT_SETTLEMENT_STATE_H_
