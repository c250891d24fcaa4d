// Proves the dedup index on a real RocksDB in TEST_TMPDIR: entries survive a reopen (ingest
// restart), identical content has the same digest and different content a different one (and
// the batched digests equal the one-by-one ones), conflict evidence accumulates under increasing
// numbers, and pruning deletes exactly the entries recorded before the cutoff, oldest first, in
// bounded steps; and the per-terminal high-water mark never hides a recorded entry: not out of
// order, not after a reopen, not under concurrent commits; entries in their 64-seq buckets are
// found exactly; the time index lists a commit's ids as runs, and pruning reads those and the
// previous layout's id lines alike and refuses corrupt ones; and stores of the previous layouts
// are upgraded in place (and then refused by the binaries that wrote them).
#include "services/ingest/dedup_index.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <thread>

#include "absl/strings/str_cat.h"

namespace tongka::ingest {
namespace {

class DedupIndexTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = absl::StrCat(::testing::TempDir(), "/dedup_",
                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    Open();
  }
  void Open() {
    index_.reset();
    store_.reset();
    // Ingest's own options: no value cache, so every read goes through RocksDB's merge path.
    auto store = state_store::StateStore::Open(DedupIndex::StoreOptions(dir_));
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    index_ = std::make_unique<DedupIndex>(store_.get());
  }
  std::optional<DedupEntry> Find(const std::string& id) {
    auto found = index_->Lookup(id);
    EXPECT_TRUE(found.ok()) << found.status();
    return found.ok() ? *found : std::nullopt;
  }

  std::string dir_;
  std::unique_ptr<state_store::StateStore> store_;
  std::unique_ptr<DedupIndex> index_;
};

// ContentDigests, which hashes many contents in SIMD lanes, gives each content its ContentDigest,
// at every length of the signed content (short, each lane block count, and past the lanes).
TEST(ContentDigestsTest, EachEqualsItsContentDigest) {
  std::vector<std::string> inputs;
  std::vector<std::string> macs;
  for (size_t size = 0; size < 320; size += 7) {
    inputs.push_back(std::string(size, static_cast<char>('a' + size % 26)));
    macs.push_back(std::string(16, static_cast<char>(size)));
  }
  std::vector<SignedContent> contents;
  for (size_t i = 0; i < inputs.size(); ++i) contents.push_back({inputs[i], macs[i]});
  std::vector<crypto::Sm3Digest> digests(contents.size());
  ContentDigests(contents, absl::MakeSpan(digests));
  for (size_t i = 0; i < contents.size(); ++i) {
    EXPECT_EQ(digests[i], ContentDigest(inputs[i], macs[i])) << inputs[i].size() << " bytes";
  }
}

TEST_F(DedupIndexTest, RecordsSurviveReopen) {
  EXPECT_FALSE(Find("txn/310000-BUS-000001/1").has_value());
  DedupEntry entry{"txn/310000-BUS-000001/1", ContentDigest("v1|tap|...", "mac"), 1767225600000000};
  ASSERT_TRUE(index_->Record({entry}).ok());
  Open();
  std::optional<DedupEntry> found = Find(entry.event_id);
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->digest, entry.digest);
  EXPECT_EQ(found->recorded_at_us, entry.recorded_at_us);
  EXPECT_EQ(found->event_id, entry.event_id);
  EXPECT_FALSE(Find("txn/310000-BUS-000001/2").has_value());
}

TEST_F(DedupIndexTest, DigestSeparatesContent) {
  EXPECT_EQ(ContentDigest("a|b", "m"), ContentDigest("a|b", "m"));
  EXPECT_NE(ContentDigest("a|b", "m"), ContentDigest("a|c", "m"));
  EXPECT_NE(ContentDigest("a|b", "m"), ContentDigest("a|b", "n"));
}

TEST_F(DedupIndexTest, ConflictsAccumulateAsEvidence) {
  const std::string id = "txn/310000-BUS-000001/9";
  for (int i = 0; i < 3; ++i) {
    ingest_storage::ConflictEvidence evidence;
    evidence.set_recorded_at_us(1000 + i);
    evidence.set_conflicting_digest(absl::StrCat("content ", i));
    absl::StatusOr<DedupIndex::ConflictRecorded> recorded = index_->RecordConflict(id, evidence);
    ASSERT_TRUE(recorded.ok()) << recorded.status();
    EXPECT_EQ(recorded->number, i);
    EXPECT_TRUE(recorded->kept_now);
  }
  // The second content again (a client's retry): the evidence already kept, nothing written.
  ingest_storage::ConflictEvidence retry;
  retry.set_recorded_at_us(2000);
  retry.set_conflicting_digest("content 1");
  absl::StatusOr<DedupIndex::ConflictRecorded> again = index_->RecordConflict(id, retry);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->number, 1);
  EXPECT_FALSE(again->kept_now);
  Open();
  auto conflicts = index_->Conflicts(id);
  ASSERT_TRUE(conflicts.ok()) << conflicts.status();
  ASSERT_EQ(conflicts->size(), 3u);
  EXPECT_EQ((*conflicts)[2].recorded_at_us(), 1002);
  EXPECT_TRUE(index_->Conflicts("txn/310000-BUS-000001/10")->empty());
}

// Only published evidence counts as kept; evidence kept before conflicts were published is
// marked published (without being kept again) when its content is published.
TEST_F(DedupIndexTest, ConflictKeptMeansKeptAndPublished) {
  const std::string id = "txn/310000-BUS-000001/9";
  ingest_storage::ConflictEvidence legacy;
  legacy.set_recorded_at_us(1000);
  legacy.set_conflicting_digest("content");
  ASSERT_TRUE(index_->RecordConflict(id, legacy)->kept_now);
  EXPECT_FALSE(*index_->ConflictKept(id, "content")) << "never published";
  ingest_storage::ConflictEvidence published = legacy;
  published.set_recorded_at_us(2000);
  published.set_published(true);
  absl::StatusOr<DedupIndex::ConflictRecorded> marked = index_->RecordConflict(id, published);
  ASSERT_TRUE(marked.ok()) << marked.status();
  EXPECT_FALSE(marked->kept_now) << "kept (and counted) before";
  EXPECT_TRUE(*index_->ConflictKept(id, "content"));
  EXPECT_FALSE(*index_->ConflictKept(id, "other content"));
  auto conflicts = index_->Conflicts(id);
  ASSERT_EQ(conflicts->size(), 1u);
  EXPECT_TRUE((*conflicts)[0].published());
  EXPECT_EQ((*conflicts)[0].recorded_at_us(), 1000) << "the first sighting's evidence stays";
}

TEST_F(DedupIndexTest, PruneDeletesOnlyEntriesBeforeTheCutoffOldestFirst) {
  const absl::Time t0 = absl::FromUnixSeconds(1767225600);
  // Ten commits of two entries, an hour apart.
  std::vector<DedupEntry> entries;
  for (int i = 0; i < 10; ++i) {
    std::vector<DedupEntry> commit;
    for (int j = 0; j < 2; ++j) {
      commit.push_back({absl::StrCat("txn/310000-BUS-000001/", 2 * i + j + 1),
                        ContentDigest("x", "y"), absl::ToUnixMicros(t0 + absl::Hours(i))});
      entries.push_back(commit.back());
    }
    ASSERT_TRUE(index_->Record(commit).ok());
  }
  // Cutoff at t0 + 5h: commits 0..4 (ten entries) go, a few commits per step.
  int64_t total = 0;
  for (;;) {
    absl::StatusOr<int64_t> pruned = index_->Prune(t0 + absl::Hours(5), 3);
    ASSERT_TRUE(pruned.ok()) << pruned.status();
    EXPECT_LE(*pruned, 4);
    if (*pruned == 0) break;
    total += *pruned;
  }
  EXPECT_EQ(total, 10);
  Open();  // what Prune wrote, read back from RocksDB
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(Find(entries[i].event_id).has_value(), i >= 10) << i;
  }
  EXPECT_EQ(*index_->Prune(t0 + absl::Hours(100), 100), 10);
  EXPECT_FALSE(Find(entries[19].event_id).has_value());
}

TEST_F(DedupIndexTest, PruneKeepsAnEntryRecordedAgainLater) {
  const absl::Time t0 = absl::FromUnixSeconds(1767225600);
  const std::string id = "txn/310000-BUS-000001/1";
  ASSERT_TRUE(index_->Record({{id, ContentDigest("x", "y"), absl::ToUnixMicros(t0)}}).ok());
  // Recorded again (a re-produce after a crash between Kafka's ack and the first record).
  ASSERT_TRUE(
      index_->Record({{id, ContentDigest("x", "y"), absl::ToUnixMicros(t0 + absl::Hours(10))}})
          .ok());
  EXPECT_EQ(*index_->Prune(t0 + absl::Hours(5), 100), 0);
  Open();
  EXPECT_TRUE(Find(id).has_value());
  EXPECT_EQ(Find(id)->recorded_at_us, absl::ToUnixMicros(t0 + absl::Hours(10)));
  EXPECT_EQ(*index_->Prune(t0 + absl::Hours(11), 100), 1);
  Open();
  EXPECT_FALSE(Find(id).has_value());
}

DedupEntry Entry(const std::string& terminal, uint64_t seq) {
  return {absl::StrCat("txn/", terminal, "/", seq), ContentDigest(absl::StrCat(seq), "m"),
          1767225600000000};
}

TEST_F(DedupIndexTest, HighWaterMarkNeverHidesARecordedEntry) {
  const std::string t = "310000-BUS-000001";
  ASSERT_TRUE(index_->Record({Entry(t, 10)}).ok());
  ASSERT_TRUE(index_->Record({Entry(t, 7)}).ok());  // out of order: the mark stays 10
  for (int pass = 0; pass < 2; ++pass) {
    EXPECT_TRUE(Find(Entry(t, 10).event_id).has_value()) << pass;
    EXPECT_TRUE(Find(Entry(t, 7).event_id).has_value()) << pass;
    EXPECT_FALSE(Find(Entry(t, 8).event_id).has_value()) << pass;   // below the mark, absent
    EXPECT_FALSE(Find(Entry(t, 11).event_id).has_value()) << pass;  // above the mark
    EXPECT_FALSE(Find(Entry("310000-BUS-000002", 1).event_id).has_value()) << pass;
    Open();  // the marks come back from RocksDB
  }
}

TEST_F(DedupIndexTest, ConcurrentCommitsOfOneTerminalKeepTheHighestMark) {
  const std::string t = "310000-METRO-000001";
  std::vector<std::thread> threads;
  for (int k = 0; k < 4; ++k) {
    threads.emplace_back([this, k, &t] {
      for (uint64_t i = 0; i < 50; ++i) {
        EXPECT_TRUE(index_->Record({Entry(t, 1 + k + 4 * i)}).ok());
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  Open();
  for (uint64_t seq = 1; seq <= 200; ++seq) {
    ASSERT_TRUE(Find(Entry(t, seq).event_id).has_value()) << seq;
  }
  EXPECT_FALSE(Find(Entry(t, 201).event_id).has_value());
}

// Entries go into buckets of 64 seqs: runs that cross a bucket's edge, terminals interleaved in
// one commit, a bucket filled over several commits, the highest seqs there are: each id finds
// its own entry and no other.
TEST_F(DedupIndexTest, EveryIdFindsItsOwnEntryAcrossBucketsAndCommits) {
  const std::string a = "310000-BUS-000001";
  const std::string b = "310000-BUS-000002";
  std::vector<DedupEntry> recorded;
  auto entry = [](const std::string& terminal, uint64_t seq, int64_t at) {
    return DedupEntry{absl::StrCat("txn/", terminal, "/", seq),
                      ContentDigest(absl::StrCat(terminal, seq), "m"), at};
  };
  const uint64_t kTop = ~uint64_t{0};
  std::vector<std::vector<DedupEntry>> commits = {
      {entry(a, 60, 1), entry(a, 61, 1), entry(a, 62, 1), entry(a, 63, 1), entry(a, 64, 1),
       entry(a, 65, 1), entry(b, 63, 2), entry(a, 66, 1), entry(b, 64, 2)},
      {entry(a, 1, 3), entry(a, 128, 3), entry(b, 0, 3), entry(a, 2, 3)},
      {entry(a, 59, 4), entry(b, 65, 4), entry(b, kTop - 1, 4), entry(b, kTop, 4)},
  };
  for (const auto& commit : commits) {
    ASSERT_TRUE(index_->Record(commit).ok());
    recorded.insert(recorded.end(), commit.begin(), commit.end());
  }
  for (int pass = 0; pass < 2; ++pass) {
    for (const DedupEntry& want : recorded) {
      std::optional<DedupEntry> found = Find(want.event_id);
      ASSERT_TRUE(found.has_value()) << want.event_id << " pass " << pass;
      EXPECT_EQ(found->digest, want.digest) << want.event_id;
      EXPECT_EQ(found->recorded_at_us, want.recorded_at_us) << want.event_id;
    }
    for (uint64_t seq : {0, 3, 58, 67, 127, 129, 192}) {
      EXPECT_FALSE(Find(Entry(a, seq).event_id).has_value()) << seq;
    }
    EXPECT_FALSE(Find(Entry(b, kTop - 2).event_id).has_value());
    EXPECT_FALSE(Find(Entry(b, 1).event_id).has_value());
    EXPECT_FALSE(Find("not-a-transaction-id").has_value());
    Open();
  }
}

// An id recorded again (the catch-up after a crash re-records what Kafka has) is found with its
// newest recording, whatever order the recordings were appended in.
TEST_F(DedupIndexTest, AnIdRecordedAgainIsFoundWithItsNewestRecording) {
  const std::string id = "txn/310000-BUS-000001/5";
  ASSERT_TRUE(index_->Record({{id, ContentDigest("x", "y"), 200}}).ok());
  ASSERT_TRUE(index_->Record({{id, ContentDigest("x", "y"), 100}}).ok());
  EXPECT_EQ(Find(id)->recorded_at_us, 200);
  ASSERT_TRUE(index_->Record({{id, ContentDigest("x", "y"), 300}}).ok());
  EXPECT_EQ(Find(id)->recorded_at_us, 300);
}

// A store of the previous layout (one key per transaction, "ingest/1") opened by this binary:
// every entry moves into its bucket, the conflict evidence and the marks stay, and the moved
// store answers exactly as the old one did. A half-moved store (a crash during the upgrade)
// finishes moving on the next open.
// The ingest/1 value of an entry: digest + recorded_at_us (big-endian).
std::string V1Value(const DedupEntry& entry) {
  std::string value(reinterpret_cast<const char*>(entry.digest.data()), entry.digest.size());
  for (int i = 0; i < 8; ++i) {
    value.push_back(static_cast<char>(static_cast<uint64_t>(entry.recorded_at_us) >> (56 - 8 * i)));
  }
  return value;
}

std::vector<DedupEntry> WriteV1Store(const std::string& dir, const std::string& layout, int n) {
  std::vector<DedupEntry> entries;
  auto store = state_store::StateStore::Open({.path = dir, .layout = layout});
  EXPECT_TRUE(store.ok()) << store.status();
  state_store::StateBatch batch(store->get());
  for (int seq = 1; seq <= n; ++seq) {
    entries.push_back({absl::StrCat("txn/310000-BUS-000001/", seq),
                       ContentDigest(absl::StrCat(seq), "m"), 1767225600000000 + seq});
    batch.Put(entries.back().event_id, V1Value(entries.back()));
  }
  std::string mark;
  for (int i = 0; i < 8; ++i)
    mark.push_back(static_cast<char>(static_cast<uint64_t>(n) >> (56 - 8 * i)));
  batch.Put("hw/310000-BUS-000001", mark);
  EXPECT_TRUE((*store)->Commit(batch).ok());
  return entries;
}

// Keys of the ingest/1 layout left in a store.
int OldKeys(const state_store::StateStore& store) {
  int old_keys = 0;
  EXPECT_TRUE(store
                  .ScanPrefix("txn/",
                              [&](absl::string_view, absl::string_view) {
                                ++old_keys;
                                return true;
                              })
                  .ok());
  return old_keys;
}

// Opens `dir` as ingest does (upgrading it if need be) and finds every entry as it was recorded.
void ExpectAllFound(const std::string& dir, const std::vector<DedupEntry>& entries) {
  auto store = state_store::StateStore::Open(DedupIndex::StoreOptions(dir));
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ(*(*store)->Layout(), "ingest/3");
  DedupIndex index(store->get());
  for (const DedupEntry& want : entries) {
    auto found = index.Lookup(want.event_id);
    ASSERT_TRUE(found.ok() && found->has_value()) << want.event_id;
    EXPECT_EQ((*found)->digest, want.digest) << want.event_id;
    EXPECT_EQ((*found)->recorded_at_us, want.recorded_at_us) << want.event_id;
  }
  EXPECT_FALSE(
      index.Lookup(absl::StrCat("txn/310000-BUS-000001/", entries.size() + 1))->has_value());
  EXPECT_EQ(OldKeys(**store), 0);
}

std::string FreshDir(absl::string_view name) {
  const std::string dir = absl::StrCat(::testing::TempDir(), "/dedup_", name);
  std::filesystem::remove_all(dir);
  return dir;
}

TEST(DedupUpgradeTest, AnIngestV1StoreIsUpgradedInPlace) {
  const std::string dir = FreshDir("v1");
  const std::vector<DedupEntry> entries = WriteV1Store(dir, "ingest/1", 25000);
  {
    auto v1 = state_store::StateStore::Open({.path = dir});
    ASSERT_TRUE(v1.ok()) << v1.status();
    state_store::StateBatch batch(v1->get());
    ingest_storage::ConflictEvidence evidence;
    evidence.set_conflicting_digest("other");
    evidence.set_published(true);
    batch.Put("conflict/txn/310000-BUS-000001/7/000000", evidence.SerializeAsString());
    // Seq 7 already in its bucket (its old key gone), as an earlier run of the upgrade leaves it.
    state_store::StateBatch moved(v1->get());
    moved.Delete(entries[6].event_id);
    ASSERT_TRUE((*v1)->Commit(batch).ok());
    ASSERT_TRUE(DedupIndex(v1->get()).Record({entries[6]}).ok());
    ASSERT_TRUE((*v1)->Commit(moved).ok());
  }
  for (int open = 0; open < 2; ++open) {
    ExpectAllFound(dir, entries);
    auto store = state_store::StateStore::Open(DedupIndex::StoreOptions(dir));
    ASSERT_TRUE(store.ok()) << store.status();
    EXPECT_TRUE(*DedupIndex(store->get()).ConflictKept("txn/310000-BUS-000001/7", "other"));
  }
}

// A catch-up commit mixes recorded_at stamps (each event's own): the commit stays in the time
// index until its newest entry is past the cutoff, and then all of it goes.
TEST_F(DedupIndexTest, ACommitOfMixedStampsIsPrunedWholeOnceItsNewestExpires) {
  const absl::Time t0 = absl::FromUnixSeconds(1767225600);
  const std::string a = "txn/310000-BUS-000001/1";
  const std::string b = "txn/310000-BUS-000001/2";
  ASSERT_TRUE(index_
                  ->Record({{a, ContentDigest("a", "m"), absl::ToUnixMicros(t0)},
                            {b, ContentDigest("b", "m"), absl::ToUnixMicros(t0 + absl::Hours(10))}})
                  .ok());
  EXPECT_EQ(*index_->Prune(t0 + absl::Hours(5), 100), 0);
  EXPECT_TRUE(Find(a).has_value()) << "kept with its commit";
  EXPECT_TRUE(Find(b).has_value());
  EXPECT_EQ(*index_->Prune(t0 + absl::Hours(11), 100), 2);
  Open();
  EXPECT_FALSE(Find(a).has_value());
  EXPECT_FALSE(Find(b).has_value());
}

// LookupMany answers each id as Lookup does, whatever the order of terminals and ids: recorded,
// in a gap below the mark, above the mark, of a terminal never seen, malformed.
TEST_F(DedupIndexTest, LookupManyAnswersEachIdAsLookupDoes) {
  std::vector<DedupEntry> commit;
  for (uint64_t seq : {1, 2, 3, 5, 70, 71}) commit.push_back(Entry("310000-BUS-000001", seq));
  for (uint64_t seq : {10, 11}) commit.push_back(Entry("310000-BUS-000002", seq));
  ASSERT_TRUE(index_->Record(commit).ok());
  const std::vector<std::string> owned = {"txn/310000-BUS-000001/1",   "txn/310000-BUS-000001/4",
                                          "txn/310000-BUS-000001/70",  "txn/310000-BUS-000001/72",
                                          "txn/310000-BUS-000002/10",  "txn/310000-BUS-000001/5",
                                          "txn/310000-BUS-000003/1",   "txn/310000-BUS-000002/12",
                                          "txn/310000-BUS-000002/011", "txn/7",
                                          "txn/310000-BUS-000002/11",  "txn/310000-BUS-000001/2"};
  const std::vector<absl::string_view> ids(owned.begin(), owned.end());
  absl::StatusOr<std::vector<std::optional<DedupEntry>>> many = index_->LookupMany(ids);
  ASSERT_TRUE(many.ok()) << many.status();
  ASSERT_EQ(many->size(), ids.size());
  int found = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    const std::optional<DedupEntry> one = Find(owned[i]);
    ASSERT_EQ((*many)[i].has_value(), one.has_value()) << owned[i];
    if (!one.has_value()) continue;
    ++found;
    EXPECT_EQ((*many)[i]->event_id, one->event_id);
    EXPECT_EQ((*many)[i]->digest, one->digest);
    EXPECT_EQ((*many)[i]->recorded_at_us, one->recorded_at_us);
  }
  EXPECT_EQ(found, 6);
  EXPECT_TRUE(index_->LookupMany({})->empty());
}

// Only the canonical spelling of a seq is a transaction id: "07" or "+7" never finds 7's entry.
TEST_F(DedupIndexTest, OnlyTheCanonicalIdFindsAnEntry) {
  ASSERT_TRUE(index_->Record({Entry("310000-BUS-000001", 7)}).ok());
  EXPECT_TRUE(Find("txn/310000-BUS-000001/7").has_value());
  for (const char* other : {"txn/310000-BUS-000001/07", "txn/310000-BUS-000001/+7",
                            "txn/310000-BUS-000001/ 7", "txn/310000-BUS-000001/", "txn/7"}) {
    EXPECT_FALSE(Find(other).has_value()) << other;
  }
}

// Prune rewrites buckets that Record keeps appending to (late entries into the same 64-seq
// buckets): none of the appended entries may be lost.
TEST_F(DedupIndexTest, PruneNeverDropsAnEntryAppendedWhileItRewritesTheBucket) {
  constexpr int kTerminals = 50;
  auto id = [](int t, uint64_t seq) {
    return absl::StrCat("txn/310000-BUS-", 100000 + t, "/", seq);
  };
  // Old entries, due for pruning: the even seqs, one commit per terminal.
  for (int t = 0; t < kTerminals; ++t) {
    std::vector<DedupEntry> commit;
    for (uint64_t seq = 0; seq < 640; seq += 2) {
      commit.push_back({id(t, seq), ContentDigest("old", "m"), 1 + t});
    }
    ASSERT_TRUE(index_->Record(commit).ok());
  }
  std::atomic<bool> done{false};
  std::thread pruner([&] {
    while (!done) EXPECT_TRUE(index_->Prune(absl::FromUnixMicros(1000), 1).ok());
  });
  // New entries, the odd seqs, into the same buckets: they all stay.
  std::vector<std::string> stay;
  for (uint64_t seq = 1; seq < 640; seq += 2) {
    std::vector<DedupEntry> commit;
    for (int t = 0; t < kTerminals; ++t) {
      commit.push_back({id(t, seq), ContentDigest("new", "m"), 1000000});
      stay.push_back(commit.back().event_id);
    }
    ASSERT_TRUE(index_->Record(commit).ok());
  }
  done = true;
  pruner.join();
  int lost = 0;
  for (const std::string& kept : stay) lost += Find(kept).has_value() ? 0 : 1;
  EXPECT_EQ(lost, 0) << "of " << stay.size();
}

// The time index of a commit, as Record wrote it.
std::vector<std::string> TimeRecords(state_store::StateStore& store) {
  std::vector<std::string> records;
  EXPECT_TRUE(store
                  .ScanPrefix("dedup_time/",
                              [&](absl::string_view, absl::string_view ids) {
                                records.emplace_back(ids);
                                return true;
                              })
                  .ok());
  return records;
}

TEST_F(DedupIndexTest, TheTimeIndexListsACommitsIdsAsRuns) {
  std::vector<DedupEntry> commit;
  for (uint64_t seq = 60; seq <= 200; ++seq) commit.push_back(Entry("310000-BUS-000001", seq));
  commit.push_back(Entry("310000-BUS-000001", 7));   // out of order: a run of its own
  commit.push_back(Entry("310000-BUS-000002", 8));   // another terminal, one id
  commit.push_back(Entry("310000-BUS-000002", 10));  // a gap
  commit.push_back(Entry("310000-BUS-000002", 11));
  commit.push_back(Entry("310000-BUS-000001", 201));  // the first terminal again
  // The largest seq and then 0 are not a run (seq + 1 wraps).
  commit.push_back(Entry("310000-BUS-000003", std::numeric_limits<uint64_t>::max()));
  commit.push_back(Entry("310000-BUS-000003", 0));
  ASSERT_TRUE(index_->Record(commit).ok());
  EXPECT_EQ(TimeRecords(*store_),
            std::vector<std::string>{
                "txn/310000-BUS-000001/60-200\ntxn/310000-BUS-000001/7\ntxn/310000-BUS-000002/8\n"
                "txn/310000-BUS-000002/10-11\ntxn/310000-BUS-000001/201\n"
                "txn/310000-BUS-000003/18446744073709551615\ntxn/310000-BUS-000003/0"});
  // Pruning the commit removes exactly its ids, across the buckets its runs span.
  EXPECT_EQ(*index_->Prune(absl::FromUnixMicros(std::numeric_limits<int64_t>::max()), 1000),
            static_cast<int64_t>(commit.size()));
  for (const DedupEntry& entry : commit)
    EXPECT_FALSE(Find(entry.event_id).has_value()) << entry.event_id;
  EXPECT_TRUE(TimeRecords(*store_).empty());
}

// ingest/2 listed each id on a line of its own: Prune reads those as runs of one; and a line of
// any other shape is corruption, reported, with nothing deleted.
TEST_F(DedupIndexTest, PruneReadsIdLinesAndRefusesCorruptRuns) {
  const std::vector<DedupEntry> commit = {
      Entry("310000-BUS-000001", 1), Entry("310000-BUS-000001", 2), Entry("310000-BUS-000001", 3)};
  ASSERT_TRUE(index_->Record(commit).ok());
  std::string time_key;
  ASSERT_TRUE(store_
                  ->ScanPrefix("dedup_time/",
                               [&](absl::string_view key, absl::string_view) {
                                 time_key = std::string(key);
                                 return false;
                               })
                  .ok());
  ASSERT_FALSE(time_key.empty());
  auto rewrite = [&](const std::string& value) {
    state_store::StateBatch batch(store_.get());
    batch.Put(time_key, value);
    ASSERT_TRUE(store_->Commit(batch).ok());
  };
  const absl::Time after_all = absl::FromUnixMicros(std::numeric_limits<int64_t>::max());
  for (const char* corrupt :
       {"txn/310000-BUS-000001/3-1", "txn/310000-BUS-000001/1-1", "txn/310000-BUS-000001/1-03",
        "txn/310000-BUS-000001/1-", "txn/310000-BUS-000001/1-99999999", "txn/", "1-3"}) {
    rewrite(corrupt);
    absl::StatusOr<int64_t> pruned = index_->Prune(after_all, 1000);
    EXPECT_EQ(pruned.status().code(), absl::StatusCode::kInternal) << corrupt;
    EXPECT_TRUE(Find(commit[0].event_id).has_value()) << corrupt;
  }
  rewrite("txn/310000-BUS-000001/1\ntxn/310000-BUS-000001/2\ntxn/310000-BUS-000001/3");
  EXPECT_EQ(*index_->Prune(after_all, 1000), 3);
  for (const DedupEntry& entry : commit) EXPECT_FALSE(Find(entry.event_id).has_value());
}

// An ingest/2 store opens as ingest/3 with its entries found and pruned, and the ingest/2 binary
// then refuses it (its Prune would not read the runs).
TEST(DedupUpgradeTest, AnIngestV2StoreBecomesIngestV3) {
  const std::string dir = FreshDir("v2");
  {
    auto v2 = state_store::StateStore::Open(
        {.path = dir,
         .layout = "ingest/2",
         .compaction = state_store::StateStoreOptions::Compaction::kUniversal,
         .value_cache_entries = 0});
    ASSERT_TRUE(v2.ok()) << v2.status();
    // What ingest/2 wrote for a commit of two ids: their bucket (as now) and id lines.
    ASSERT_TRUE(DedupIndex(v2->get())
                    .Record({Entry("310000-BUS-000001", 1), Entry("310000-BUS-000001", 2)})
                    .ok());
    std::string time_key;
    ASSERT_TRUE((*v2)
                    ->ScanPrefix("dedup_time/",
                                 [&](absl::string_view key, absl::string_view) {
                                   time_key = std::string(key);
                                   return false;
                                 })
                    .ok());
    state_store::StateBatch batch(v2->get());
    batch.Put(time_key, "txn/310000-BUS-000001/1\ntxn/310000-BUS-000001/2");
    ASSERT_TRUE((*v2)->Commit(batch).ok());
  }
  {
    auto v3 = state_store::StateStore::Open(DedupIndex::StoreOptions(dir));
    ASSERT_TRUE(v3.ok()) << v3.status();
    EXPECT_EQ(*(*v3)->Layout(), "ingest/3");
    DedupIndex index(v3->get());
    EXPECT_TRUE(index.Lookup("txn/310000-BUS-000001/2")->has_value());
    EXPECT_EQ(*index.Prune(absl::FromUnixMicros(std::numeric_limits<int64_t>::max()), 100), 2);
  }
  auto rollback = state_store::StateStore::Open({.path = dir, .layout = "ingest/2"});
  EXPECT_EQ(rollback.status().code(), absl::StatusCode::kFailedPrecondition) << rollback.status();
}

// A store ingest wrote before layouts were recorded has the ingest/1 keys and no layout: it is
// upgraded like an ingest/1 store, not taken as ingest/2 (which would hide all its entries).
TEST(DedupUpgradeTest, AStoreFromBeforeLayoutsIsUpgradedFromIngestV1) {
  const std::string dir = FreshDir("prelayout");
  const std::vector<DedupEntry> entries = WriteV1Store(dir, "", 100);
  ExpectAllFound(dir, entries);
}

// The upgrade killed after its first chunk (SIGKILL, as a power cut): the half-moved store is
// marked, the previous binary refuses it instead of missing the moved entries, and the next open
// of this binary finishes the upgrade.
TEST(DedupUpgradeTest, AnUpgradeKilledMidwayIsRefusedByTheOldBinaryAndFinishedByTheNew) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  const std::string dir = FreshDir("killed");
  const std::vector<DedupEntry> entries = WriteV1Store(dir, "ingest/1", 25000);
  ASSERT_EXIT(
      {
        setenv("TONGKA_FAILPOINTS", "ingest.upgrade_after_chunk", 1);
        (void)state_store::StateStore::Open(DedupIndex::StoreOptions(dir));
        std::exit(0);
      },
      ::testing::KilledBySignal(SIGKILL), "");
  {
    auto midway = state_store::StateStore::Open({.path = dir});
    ASSERT_TRUE(midway.ok()) << midway.status();
    EXPECT_EQ(*(*midway)->Layout(), "ingest/1>ingest/3");
    EXPECT_EQ(OldKeys(**midway), 15000) << "one chunk of 10,000 moved before the kill";
  }
  auto rollback = state_store::StateStore::Open({.path = dir, .layout = "ingest/1"});
  EXPECT_EQ(rollback.status().code(), absl::StatusCode::kFailedPrecondition) << rollback.status();
  ExpectAllFound(dir, entries);
}

}  // namespace
}  // namespace tongka::ingest
