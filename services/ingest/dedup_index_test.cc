// Proves the dedup index on a real RocksDB in TEST_TMPDIR: entries survive a reopen (ingest
// restart), identical content has the same digest and different content a different one (and
// the batched digests equal the one-by-one ones), conflict evidence accumulates under increasing
// numbers, and pruning deletes exactly the entries recorded before the cutoff, oldest first, in
// bounded steps; and the per-terminal high-water mark never hides a recorded entry: not out of
// order, not after a reopen, not under concurrent commits; entries in their 64-seq buckets are
// found exactly; and a store of the previous layout is upgraded in place.
#include "services/ingest/dedup_index.h"

#include <gtest/gtest.h>

#include <filesystem>
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
    auto store = state_store::StateStore::Open({.path = dir_});
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
  EXPECT_TRUE(Find(id).has_value());
  EXPECT_EQ(*index_->Prune(t0 + absl::Hours(11), 100), 1);
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
TEST_F(DedupIndexTest, AnIngestV1StoreIsUpgradedInPlace) {
  index_.reset();
  store_.reset();
  std::filesystem::remove_all(dir_);
  const std::string t = "310000-BUS-000001";
  std::vector<DedupEntry> old_entries;
  for (uint64_t seq = 1; seq <= 25000; ++seq) {
    old_entries.push_back({absl::StrCat("txn/", t, "/", seq), ContentDigest(absl::StrCat(seq), "m"),
                           1767225600000000 + static_cast<int64_t>(seq)});
  }
  {
    auto v1 = state_store::StateStore::Open({.path = dir_, .layout = "ingest/1"});
    ASSERT_TRUE(v1.ok()) << v1.status();
    state_store::StateBatch batch(v1->get());
    for (const DedupEntry& entry : old_entries) {
      std::string value(reinterpret_cast<const char*>(entry.digest.data()), entry.digest.size());
      for (int i = 0; i < 8; ++i) {
        value.push_back(
            static_cast<char>(static_cast<uint64_t>(entry.recorded_at_us) >> (56 - 8 * i)));
      }
      batch.Put(entry.event_id, value);
    }
    batch.Put(absl::StrCat("hw/", t), std::string("\0\0\0\0\0\0\x61\xa8", 8));  // 25000
    ingest_storage::ConflictEvidence evidence;
    evidence.set_conflicting_digest("other");
    evidence.set_published(true);
    batch.Put("conflict/txn/310000-BUS-000001/7/000000", evidence.SerializeAsString());
    ASSERT_TRUE((*v1)->Commit(batch).ok());
    // A crash during an earlier upgrade had already moved seq 7 (and deleted its old key).
    DedupIndex half(v1->get());
    ASSERT_TRUE(half.Record({old_entries[6]}).ok());
    state_store::StateBatch moved(v1->get());
    moved.Delete(old_entries[6].event_id);
    ASSERT_TRUE((*v1)->Commit(moved).ok());
  }
  const state_store::StateStoreOptions options{
      .path = dir_,
      .layout = "ingest/2",
      .upgrades = {{.from = "ingest/1", .upgrade = DedupIndex::UpgradeFromV1}}};
  for (int open = 0; open < 2; ++open) {
    auto store = state_store::StateStore::Open(options);
    ASSERT_TRUE(store.ok()) << store.status();
    EXPECT_EQ(*(*store)->Layout(), "ingest/2");
    int old_keys = 0;
    ASSERT_TRUE((*store)
                    ->ScanPrefix("txn/",
                                 [&](absl::string_view, absl::string_view) {
                                   ++old_keys;
                                   return true;
                                 })
                    .ok());
    EXPECT_EQ(old_keys, 0);
    DedupIndex index(store->get());
    for (const DedupEntry& want : old_entries) {
      auto found = index.Lookup(want.event_id);
      ASSERT_TRUE(found.ok() && found->has_value()) << want.event_id;
      EXPECT_EQ((*found)->digest, want.digest) << want.event_id;
      EXPECT_EQ((*found)->recorded_at_us, want.recorded_at_us) << want.event_id;
    }
    EXPECT_FALSE(index.Lookup(absl::StrCat("txn/", t, "/25001"))->has_value());
    EXPECT_TRUE(*index.ConflictKept("txn/310000-BUS-000001/7", "other"));
  }
}

}  // namespace
}  // namespace tongka::ingest
