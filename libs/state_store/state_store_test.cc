// Proves the state store on a real RocksDB in a temp dir: a commit writes state, offsets and outbox
// together; reads inside a batch see the batch's own writes; offsets never move backwards; outbox
// sequences survive reopen and are never reused; the digest depends only on content, not on batch
// boundaries; a checkpoint opens as a full copy at that point; appends join alike under both
// compaction styles, the style chosen is the one RocksDB runs, and the write-ahead log stays
// within its bound.
#include "libs/state_store/state_store.h"

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tongka::state_store {
namespace {

std::string FreshDir(const std::string& name) {
  std::string dir = absl::StrCat(::testing::TempDir(), "/", name);
  std::filesystem::remove_all(dir);
  return dir;
}

std::unique_ptr<StateStore> OpenStore(const std::string& dir) {
  auto store = StateStore::Open({.path = dir});
  EXPECT_TRUE(store.ok()) << store.status();
  return std::move(*store);
}

// Commits `values` as one batch of puts.
void Seed(StateStore& store, const std::vector<std::pair<std::string, std::string>>& values) {
  StateBatch seed(&store);
  for (const auto& [key, value] : values) seed.Put(key, value);
  ASSERT_TRUE(store.Commit(seed).ok());
}

TEST(StateStoreTest, CommitWritesStateOffsetsAndOutboxTogether) {
  std::string dir = FreshDir("commit");
  {
    auto store = OpenStore(dir);
    StateBatch batch(store.get());
    batch.Put("card/1", "100");
    batch.AppendOutbox("alerts", "1", "alert-bytes");
    batch.SetNextOffset({"txn", 2}, 42);
    EXPECT_FALSE(store->Get("card/1")->has_value()) << "visible before commit";
    ASSERT_TRUE(store->Commit(batch).ok());
    EXPECT_TRUE(batch.empty());
  }
  auto store = OpenStore(dir);
  EXPECT_EQ(store->Get("card/1")->value(), "100");
  auto offsets = store->Offsets();
  ASSERT_TRUE(offsets.ok());
  EXPECT_EQ(offsets->at({"txn", 2}), 42);
  auto outbox = store->ReadOutbox(10);
  ASSERT_TRUE(outbox.ok());
  ASSERT_EQ(outbox->size(), 1u);
  EXPECT_EQ((*outbox)[0].topic, "alerts");
  EXPECT_EQ((*outbox)[0].value, "alert-bytes");
  EXPECT_EQ(store->OutboxDepth(), 1);
}

TEST(StateStoreTest, BatchReadsSeeTheirOwnWrites) {
  auto store = OpenStore(FreshDir("ryw"));
  StateBatch seed(store.get());
  seed.Put("a", "1");
  seed.Put("b", "2");
  ASSERT_TRUE(store->Commit(seed).ok());
  StateBatch batch(store.get());
  batch.Put("a", "10");
  batch.Delete("b");
  EXPECT_EQ(batch.Get("a")->value(), "10");
  EXPECT_FALSE(batch.Get("b")->has_value());
  EXPECT_EQ(store->Get("b")->value(), "2");
}

TEST(StateStoreTest, BatchScanOverlaysItsWritesOnTheStore) {
  auto store = OpenStore(FreshDir("scan"));
  Seed(*store, {{"p/a", "1"}, {"p/b", "2"}, {"p/c", "3"}, {"q/a", "9"}});
  StateBatch batch(store.get());
  batch.Put("p/b", "20");
  batch.Delete("p/c");
  batch.Put("p/d", "4");
  batch.Put("q/b", "8");
  std::vector<std::string> seen;
  ASSERT_TRUE(batch
                  .ScanPrefix("p/",
                              [&](absl::string_view key, absl::string_view value) {
                                seen.push_back(absl::StrCat(key, "=", value));
                                return true;
                              })
                  .ok());
  EXPECT_EQ(seen, (std::vector<std::string>{"p/a=1", "p/b=20", "p/d=4"}));
}

TEST(StateStoreTest, ValueCacheNeverServesAStaleValue) {
  for (int64_t cache_entries : {int64_t{0}, int64_t{2}, int64_t{1} << 20}) {
    auto store = StateStore::Open({.path = FreshDir(absl::StrCat("cache", cache_entries)),
                                   .value_cache_entries = cache_entries});
    ASSERT_TRUE(store.ok());
    StateStore& s = **store;
    EXPECT_FALSE(s.Get("k")->has_value());  // an absent key, now cached as absent
    for (int i = 0; i < 5; ++i) {
      StateBatch put(&s);
      put.Put("k", absl::StrCat(i));
      put.Put(absl::StrCat("other", i), "x");  // pushes the small cache past its bound
      ASSERT_TRUE(s.Commit(put).ok());
      EXPECT_EQ(s.Get("k")->value(), absl::StrCat(i)) << cache_entries;
    }
    StateBatch erase(&s);
    erase.Delete("k");
    ASSERT_TRUE(s.Commit(erase).ok());
    EXPECT_FALSE(s.Get("k")->has_value()) << cache_entries;
  }
}

TEST(StateStoreTest, AppendJoinsItsPiecesInOrderWithinAndAcrossBatchesAndReopens) {
  for (int64_t cache_entries : {int64_t{0}, int64_t{1} << 20}) {
    const std::string dir = FreshDir(absl::StrCat("append", cache_entries));
    {
      auto store = StateStore::Open({.path = dir, .value_cache_entries = cache_entries});
      ASSERT_TRUE(store.ok());
      StateStore& s = **store;
      StateBatch first(&s);
      first.Append("idx/a", "1");  // an absent key is taken as empty
      first.Append("idx/a", "2");
      EXPECT_EQ(first.Get("idx/a")->value(), "12") << "read-your-appends";
      ASSERT_TRUE(s.Commit(first).ok());
      EXPECT_EQ(s.Get("idx/a")->value(), "12");  // now cached
      StateBatch second(&s);
      second.Append("idx/a", "3");
      EXPECT_EQ(second.Get("idx/a")->value(), "123") << "the store's value, then the batch's";
      second.Put("idx/b", "x");
      second.Append("idx/b", "y");  // onto a pending Put
      second.Delete("idx/c");
      second.Append("idx/c", "z");  // onto a pending Delete: the appended bytes alone
      ASSERT_TRUE(s.Commit(second).ok());
      EXPECT_EQ(s.Get("idx/a")->value(), "123") << cache_entries;
      EXPECT_EQ(s.Get("idx/b")->value(), "xy");
      EXPECT_EQ(s.Get("idx/c")->value(), "z");
      StateBatch third(&s);
      third.Append("idx/a", "4");
      std::vector<std::pair<std::string, std::string>> seen;
      ASSERT_TRUE(third
                      .ScanPrefix("idx/",
                                  [&](absl::string_view key, absl::string_view value) {
                                    seen.emplace_back(key, value);
                                    return true;
                                  })
                      .ok());
      EXPECT_EQ(seen, (std::vector<std::pair<std::string, std::string>>{
                          {"idx/a", "1234"}, {"idx/b", "xy"}, {"idx/c", "z"}}));
      ASSERT_TRUE(s.Commit(third).ok());
      StateBatch erase(&s);
      erase.Delete("idx/b");
      ASSERT_TRUE(s.Commit(erase).ok());
      StateBatch regrow(&s);
      regrow.Append("idx/b", "new");  // a deleted key starts again from empty
      ASSERT_TRUE(s.Commit(regrow).ok());
      EXPECT_EQ(s.Get("idx/b")->value(), "new");
    }
    auto reopened = OpenStore(dir);  // the merge operands come back from the WAL
    EXPECT_EQ(reopened->Get("idx/a")->value(), "1234");
    EXPECT_EQ(reopened->Get("idx/b")->value(), "new");
  }
}

TEST(StateStoreTest, AScanJoinsEachAppendedKeysPiecesOnTheirOwn) {
  auto store = OpenStore(FreshDir("append_scan"));
  for (int round = 0; round < 3; ++round) {
    StateBatch batch(store.get());
    for (const char* key : {"idx/1", "idx/2", "idx/3"}) batch.Append(key, absl::StrCat(key, round));
    ASSERT_TRUE(store->Commit(batch).ok());
  }
  // RocksDB's iterator hands the merge the buffer that held the previous key's value.
  std::vector<std::pair<std::string, std::string>> scanned;
  ASSERT_TRUE(store
                  ->ScanPrefix("idx/",
                               [&](absl::string_view key, absl::string_view value) {
                                 scanned.emplace_back(key, value);
                                 return true;
                               })
                  .ok());
  EXPECT_EQ(scanned,
            (std::vector<std::pair<std::string, std::string>>{{"idx/1", "idx/10idx/11idx/12"},
                                                              {"idx/2", "idx/20idx/21idx/22"},
                                                              {"idx/3", "idx/30idx/31idx/32"}}));
}

TEST(StateStoreTest, AppendedValuesDigestLikeTheSameBytesPutWhole) {
  for (const StateStoreOptions::Compaction compaction :
       {StateStoreOptions::Compaction::kLeveled, StateStoreOptions::Compaction::kUniversal}) {
    SCOPED_TRACE(static_cast<int>(compaction));
    auto whole = OpenStore(FreshDir("append_whole"));
    // A small memtable: the pieces go through flushes and compactions, where RocksDB joins them.
    const std::string pieces_dir = FreshDir("append_pieces");
    const StateStoreOptions pieces_options = {
        .path = pieces_dir, .state_memtable_bytes = 64 << 10, .compaction = compaction};
    auto pieces = StateStore::Open(pieces_options);
    ASSERT_TRUE(pieces.ok());
    StateBatch put(whole.get());
    std::string value;
    for (int i = 0; i < 400; ++i) value += absl::StrCat(i, ":", std::string(1000, 'a' + i % 26));
    put.Put("idx/k", value);
    ASSERT_TRUE(whole->Commit(put).ok());
    for (int i = 0; i < 400; ++i) {
      StateBatch append(pieces->get());
      append.Append("idx/k", absl::StrCat(i, ":", std::string(1000, 'a' + i % 26)));
      ASSERT_TRUE((*pieces)->Commit(append).ok());
    }
    EXPECT_EQ((*pieces)->Get("idx/k")->value(), value);
    EXPECT_EQ(*whole->Digest(), *(*pieces)->Digest());
    pieces->reset();
    pieces = StateStore::Open(pieces_options);
    ASSERT_TRUE(pieces.ok());
    EXPECT_EQ((*pieces)->Get("idx/k")->value(), value);
  }
}

// The text of the newest RocksDB OPTIONS file in `dir`: what the store really opened with.
std::string OptionsFile(const std::string& dir) {
  std::filesystem::path newest;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("OPTIONS-", 0) == 0 && entry.path() > newest) newest = entry.path();
  }
  std::ifstream in(newest);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// The [CFOptions "state"] section of an OPTIONS file.
std::string StateSection(const std::string& options) {
  const size_t start = options.find("[CFOptions \"state\"]");
  if (start == std::string::npos) return "";
  return options.substr(start, options.find("\n[", start + 1) - start);
}

TEST(StateStoreTest, CompactionStyleReachesRocksDb) {
  const std::string leveled = FreshDir("style_leveled");
  const std::string universal = FreshDir("style_universal");
  ASSERT_TRUE(StateStore::Open({.path = leveled}).ok());
  ASSERT_TRUE(
      StateStore::Open({.path = universal, .compaction = StateStoreOptions::Compaction::kUniversal})
          .ok());
  EXPECT_THAT(StateSection(OptionsFile(leveled)),
              ::testing::HasSubstr("compaction_style=kCompactionStyleLevel"));
  const std::string section = StateSection(OptionsFile(universal));
  EXPECT_THAT(section, ::testing::HasSubstr("compaction_style=kCompactionStyleUniversal"));
  EXPECT_THAT(section, ::testing::HasSubstr("compression=kNoCompression"));
}

TEST(StateStoreTest, ALeveledStoreReopensUniversalWithEveryValue) {
  // Ingest's dedup stores were leveled before; the binary that makes them universal opens them
  // in place. A small memtable and enough data put files on the levels below the first.
  const std::string dir = FreshDir("style_change");
  const std::string value(500, 'v');
  {
    auto store = StateStore::Open({.path = dir, .state_memtable_bytes = 64 << 10});
    ASSERT_TRUE(store.ok());
    for (int commit = 0; commit < 200; ++commit) {
      StateBatch batch(store->get());
      for (int i = 0; i < 50; ++i) batch.Put(absl::StrCat("k/", (commit * 7919 + i) % 5000), value);
      batch.Append("idx/a", absl::StrCat(commit, ";"));
      ASSERT_TRUE((*store)->Commit(batch).ok());
    }
  }
  auto store = StateStore::Open({.path = dir,
                                 .state_memtable_bytes = 64 << 10,
                                 .compaction = StateStoreOptions::Compaction::kUniversal});
  ASSERT_TRUE(store.ok()) << store.status();
  std::string appended;
  for (int commit = 0; commit < 200; ++commit) {
    appended += absl::StrCat(commit, ";");
    StateBatch batch(store->get());
    batch.Put(absl::StrCat("new/", commit), value);
    ASSERT_TRUE((*store)->Commit(batch).ok());
  }
  int keys = 0;
  ASSERT_TRUE((*store)
                  ->ScanPrefix("k/",
                               [&](absl::string_view, absl::string_view stored) {
                                 EXPECT_EQ(stored, value);
                                 return ++keys > 0;
                               })
                  .ok());
  EXPECT_EQ(keys, 5000);
  EXPECT_EQ((*store)->Get("idx/a")->value_or(""), appended);
  EXPECT_THAT(StateSection(OptionsFile(dir)),
              ::testing::HasSubstr("compaction_style=kCompactionStyleUniversal"));
}

// Total bytes of the write-ahead log files in `dir` (RocksDB may delete one as we count).
int64_t WalBytes(const std::string& dir) {
  int64_t bytes = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    std::error_code gone;
    const uintmax_t size = entry.file_size(gone);
    if (entry.path().extension() == ".log" && !gone) bytes += static_cast<int64_t>(size);
  }
  return bytes;
}

TEST(StateStoreTest, WriteAheadLogStaysWithinItsBound) {
  // The layout marker goes to another column family once, at open, and nothing writes there
  // again: unbounded, its unflushed write would pin every later log file.
  const std::string dir = FreshDir("wal_bound");
  constexpr int64_t kMemtable = 256 << 10, kWalMax = 1 << 20;
  auto store = StateStore::Open({.path = dir,
                                 .layout = "test/1",
                                 .state_memtable_bytes = kMemtable,
                                 .wal_bytes_max = kWalMax});
  ASSERT_TRUE(store.ok()) << store.status();
  const std::string value(1000, 'v');
  int64_t wal_bytes_most = 0;
  for (int commit = 0; commit < 400; ++commit) {  // 20 MB in all
    StateBatch batch(store->get());
    for (int i = 0; i < 50; ++i) batch.Put(absl::StrCat("k/", commit, "/", i), value);
    ASSERT_TRUE((*store)->Commit(batch).ok());
    wal_bytes_most = std::max(wal_bytes_most, WalBytes(dir));
  }
  // The bound, plus the logs of the memtables not yet flushed: up to six (max_write_buffer_number,
  // as OptimizeLevelStyleCompaction sets it), flushed in pairs, one being written.
  EXPECT_LE(wal_bytes_most, kWalMax + 8 * kMemtable);
  EXPECT_EQ((*store)->Get("k/0/0")->value_or(""), value);
}

TEST(StateStoreTest, AWriteAheadLogBoundBelowTwoMemtablesDoesNotOpen) {
  auto store = StateStore::Open({.path = FreshDir("wal_small"),
                                 .state_memtable_bytes = 8 << 20,
                                 .wal_bytes_max = (16 << 20) - 1});
  EXPECT_EQ(store.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(store.status().message(), ::testing::HasSubstr("wal_bytes_max"));
  // Unset, the bound follows the memtable: a large one opens.
  EXPECT_TRUE(
      StateStore::Open({.path = FreshDir("wal_derived"), .state_memtable_bytes = 256 << 20}).ok());
}

TEST(StateStoreTest, MarkSeenDropsRepeatsWithinAndAcrossBatches) {
  auto store = OpenStore(FreshDir("seen"));
  StateBatch batch(store.get());
  EXPECT_TRUE(*batch.MarkSeen("e1"));
  EXPECT_FALSE(*batch.MarkSeen("e1"));
  ASSERT_TRUE(store->Commit(batch).ok());
  StateBatch next(store.get());
  EXPECT_FALSE(*next.MarkSeen("e1"));
  EXPECT_TRUE(*next.MarkSeen("e2"));
}

TEST(StateStoreDeathTest, OffsetsNeverMoveBackwards) {
  auto store = OpenStore(FreshDir("backwards"));
  StateBatch batch(store.get());
  batch.SetNextOffset({"txn", 0}, 10);
  ASSERT_TRUE(store->Commit(batch).ok());
  StateBatch back(store.get());
  back.SetNextOffset({"txn", 0}, 9);
  EXPECT_DEATH(store->Commit(back).IgnoreError(), "would move backwards");
}

TEST(StateStoreTest, OutboxSequencesSurviveReopenAndAreNeverReused) {
  std::string dir = FreshDir("outbox");
  uint64_t last = 0;
  {
    auto store = OpenStore(dir);
    StateBatch batch(store.get());
    for (int i = 0; i < 3; ++i) batch.AppendOutbox("t", "k", absl::StrCat(i));
    ASSERT_TRUE(store->Commit(batch).ok());
    auto entries = store->ReadOutbox(10);
    ASSERT_EQ(entries->size(), 3u);
    EXPECT_LT((*entries)[0].sequence, (*entries)[1].sequence);
    last = (*entries)[2].sequence;
    ASSERT_TRUE(store->AckOutbox(last).ok());
    EXPECT_EQ(store->OutboxDepth(), 0);
  }
  auto store = OpenStore(dir);
  EXPECT_TRUE(store->ReadOutbox(10)->empty());
  StateBatch batch(store.get());
  batch.AppendOutbox("t", "k", "after-reopen");
  ASSERT_TRUE(store->Commit(batch).ok());
  auto entries = store->ReadOutbox(10);
  ASSERT_EQ(entries->size(), 1u);
  EXPECT_GT((*entries)[0].sequence, last);
}

TEST(StateStoreTest, DigestDependsOnContentNotOnBatchBoundaries) {
  auto one = OpenStore(FreshDir("digest1"));
  auto many = OpenStore(FreshDir("digest2"));
  StateBatch all(one.get());
  for (int i = 0; i < 1000; ++i) all.Put(absl::StrCat("k", i), absl::StrCat(i * 7));
  ASSERT_TRUE(one->Commit(all).ok());
  for (int i = 999; i >= 0; --i) {
    StateBatch single(many.get());
    single.Put(absl::StrCat("k", i), absl::StrCat(i * 7));
    ASSERT_TRUE(many->Commit(single).ok());
  }
  EXPECT_EQ(*one->Digest(), *many->Digest());
  StateBatch change(many.get());
  change.Put("k5", "36");
  ASSERT_TRUE(many->Commit(change).ok());
  EXPECT_NE(*one->Digest(), *many->Digest());
}

TEST(StateStoreTest, CheckpointOpensAsACopyAtThatPoint) {
  std::string dir = FreshDir("live");
  std::string checkpoint = FreshDir("checkpoint");
  auto store = OpenStore(dir);
  StateBatch batch(store.get());
  batch.Put("a", "1");
  batch.SetNextOffset({"txn", 0}, 5);
  ASSERT_TRUE(store->Commit(batch).ok());
  std::string digest_at_checkpoint = *store->Digest();
  ASSERT_TRUE(store->Checkpoint(checkpoint).ok());
  StateBatch later(store.get());
  later.Put("a", "2");
  later.SetNextOffset({"txn", 0}, 9);
  ASSERT_TRUE(store->Commit(later).ok());

  auto restored = OpenStore(checkpoint);
  EXPECT_EQ(*restored->Digest(), digest_at_checkpoint);
  EXPECT_EQ(restored->Offsets()->at({"txn", 0}), 5);
  EXPECT_EQ(restored->Get("a")->value(), "1");
}

TEST(StateStoreTest, MutableUpdatesInPlaceWhatGetAndPutWould) {
  auto store = OpenStore(FreshDir("mutable"));
  Seed(*store, {{"stored", "s"}, {"deleted", "d"}, {"appended", "a"}});
  StateBatch batch(store.get());
  bool present = true;
  std::string* absent = *batch.Mutable("absent", &present);
  EXPECT_FALSE(present);
  EXPECT_EQ(*absent, "");
  absent->append("new");
  EXPECT_EQ(**batch.Get("absent"), "new");
  EXPECT_EQ(*batch.Mutable("absent", &present), absent) << "the same pending value";
  EXPECT_TRUE(present);

  std::string* stored = *batch.Mutable("stored", &present);
  EXPECT_TRUE(present);
  EXPECT_EQ(*stored, "s");
  stored->append("+1");

  batch.Delete("deleted");
  EXPECT_EQ(**batch.Mutable("deleted", &present), "");
  EXPECT_FALSE(present);

  batch.Append("appended", "b");
  std::string* appended = *batch.Mutable("appended", &present);
  EXPECT_TRUE(present);
  EXPECT_EQ(*appended, "ab") << "the store's value, then the pending append";
  appended->append("c");

  batch.Put("put", "p");
  EXPECT_EQ(**batch.Mutable("put", &present), "p");
  EXPECT_TRUE(present);
  ASSERT_TRUE(store->Commit(batch).ok());

  EXPECT_EQ(**store->Get("absent"), "new");
  EXPECT_EQ(**store->Get("stored"), "s+1");
  EXPECT_EQ(**store->Get("deleted"), "") << "written as a Put of what the string held";
  EXPECT_EQ(**store->Get("appended"), "abc");
  EXPECT_EQ(**store->Get("put"), "p");

  // The same changes through Get and Put give the same store.
  auto twin = OpenStore(FreshDir("mutable-twin"));
  Seed(*twin,
       {{"stored", "s+1"}, {"deleted", ""}, {"appended", "abc"}, {"absent", "new"}, {"put", "p"}});
  EXPECT_EQ(*twin->Digest(), *store->Digest());
}

TEST(StateStoreTest, AStoreOpensOnlyUnderTheKeyLayoutItWasBuiltWith) {
  const std::string dir = FreshDir("layout");
  {
    auto store = StateStore::Open({.path = dir, .layout = "sample/1"});
    ASSERT_TRUE(store.ok()) << store.status();
    EXPECT_EQ(*(*store)->Layout(), "sample/1");
    StateBatch batch(store->get());
    batch.Put("card/1", "x");
    batch.SetNextOffset({"t", 0}, 1);
    ASSERT_TRUE((*store)->Commit(batch).ok());
  }
  EXPECT_TRUE(StateStore::Open({.path = dir, .layout = "sample/1"}).ok()) << "same layout";
  EXPECT_TRUE(StateStore::Open({.path = dir}).ok()) << "no layout asked: no check";
  auto other = StateStore::Open({.path = dir, .layout = "sample/2"});
  ASSERT_EQ(other.status().code(), absl::StatusCode::kFailedPrecondition) << other.status();
  EXPECT_NE(other.status().message().find("\"sample/1\""), std::string::npos) << other.status();
  EXPECT_NE(other.status().message().find("\"sample/2\""), std::string::npos) << other.status();
  auto reopened = StateStore::Open({.path = dir});
  ASSERT_TRUE(reopened.ok());
  EXPECT_EQ(*(*reopened)->Get("card/1"), "x") << "a refused open changes nothing";
  EXPECT_EQ(*(*reopened)->Layout(), "sample/1");
}

TEST(StateStoreTest, AnUpgradeRewritesAStoreOfAnEarlierLayoutAndCanBeResumed) {
  const std::string dir = FreshDir("layout-upgrade");
  {
    auto store = StateStore::Open({.path = dir, .layout = "sample/1"});
    ASSERT_TRUE(store.ok()) << store.status();
    StateBatch batch(store->get());
    for (int i = 0; i < 5; ++i) batch.Put(absl::StrCat("old/", i), absl::StrCat(i));
    ASSERT_TRUE((*store)->Commit(batch).ok());
  }
  // Moves old/<i> to new/<i>, one key per commit; fails once after the first `fail_after` keys.
  int runs = 0;
  int fail_after = 2;
  auto upgrade = [&](StateStore& store) -> absl::Status {
    ++runs;
    std::vector<std::pair<std::string, std::string>> old;
    absl::Status scanned =
        store.ScanPrefix("old/", [&](absl::string_view key, absl::string_view v) {
          old.emplace_back(std::string(key), std::string(v));
          return true;
        });
    if (!scanned.ok()) return scanned;
    for (const auto& [key, value] : old) {
      if (fail_after-- == 0) return absl::UnavailableError("disk went away");
      StateBatch batch(&store);
      batch.Delete(key);
      batch.Put(absl::StrCat("new/", key.substr(4)), value);
      if (absl::Status committed = store.Commit(batch); !committed.ok()) return committed;
    }
    return absl::OkStatus();
  };
  auto never = [](StateStore&) -> absl::Status {
    ADD_FAILURE() << "the upgrade from another layout ran";
    return absl::OkStatus();
  };
  const StateStoreOptions options{.path = dir,
                                  .layout = "sample/2",
                                  .upgrades = {{.from = "sample/0", .upgrade = never},
                                               {.from = "sample/1", .upgrade = upgrade}}};
  auto failed = StateStore::Open(options);
  ASSERT_EQ(failed.status().code(), absl::StatusCode::kUnavailable) << failed.status();
  EXPECT_NE(failed.status().message().find("\"sample/1\" to \"sample/2\""), std::string::npos)
      << failed.status();
  {
    auto midway = StateStore::Open({.path = dir});
    ASSERT_TRUE(midway.ok());
    EXPECT_EQ(*(*midway)->Layout(), "sample/1>sample/2") << "an unfinished upgrade is marked";
    EXPECT_EQ(*(*midway)->Get("new/1"), "1");
    EXPECT_EQ(*(*midway)->Get("old/2"), "2");
  }
  // The binary of the old layout (a rollback) must not read the half-moved keys.
  auto rollback = StateStore::Open({.path = dir, .layout = "sample/1"});
  ASSERT_EQ(rollback.status().code(), absl::StatusCode::kFailedPrecondition) << rollback.status();
  EXPECT_NE(rollback.status().message().find("halfway"), std::string::npos) << rollback.status();
  auto upgraded = StateStore::Open(options);
  ASSERT_TRUE(upgraded.ok()) << upgraded.status();
  EXPECT_EQ(runs, 2);
  EXPECT_EQ(*(*upgraded)->Layout(), "sample/2");
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(*(*upgraded)->Get(absl::StrCat("new/", i)), absl::StrCat(i)) << i;
    EXPECT_EQ(*(*upgraded)->Get(absl::StrCat("old/", i)), std::nullopt) << i;
  }
  upgraded->reset();
  ASSERT_TRUE(StateStore::Open(options).ok());
  EXPECT_EQ(runs, 2) << "an upgraded store is not upgraded again";
  EXPECT_EQ(StateStore::Open({.path = dir, .layout = "sample/3", .upgrades = options.upgrades})
                .status()
                .code(),
            absl::StatusCode::kFailedPrecondition)
      << "no upgrade from sample/2 was given";
}

// A service that knows what its stores looked like before layouts were recorded says so
// (unrecorded_layout): such a store is upgraded from there, and a new store is not.
TEST(StateStoreTest, AStoreFromBeforeLayoutsIsUpgradedFromTheLayoutItWasWrittenUnder) {
  const std::string dir = FreshDir("layout-unrecorded");
  {
    auto store = OpenStore(dir);
    StateBatch batch(store.get());
    batch.Put("old/1", "x");
    ASSERT_TRUE(store->Commit(batch).ok());
  }
  int runs = 0;
  auto upgrade = [&runs](StateStore& store) -> absl::Status {
    ++runs;
    StateBatch batch(&store);
    batch.Delete("old/1");
    batch.Put("new/1", "x");
    return store.Commit(batch);
  };
  const StateStoreOptions options{.path = dir,
                                  .layout = "sample/2",
                                  .upgrades = {{.from = "sample/1", .upgrade = upgrade}},
                                  .unrecorded_layout = "sample/1"};
  auto store = StateStore::Open(options);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ(runs, 1);
  EXPECT_EQ(*(*store)->Layout(), "sample/2");
  EXPECT_EQ(*(*store)->Get("new/1"), "x");
  const std::string fresh = FreshDir("layout-unrecorded-fresh");
  StateStoreOptions fresh_options = options;
  fresh_options.path = fresh;
  auto new_store = StateStore::Open(fresh_options);
  ASSERT_TRUE(new_store.ok()) << new_store.status();
  EXPECT_EQ(runs, 1) << "a new store has nothing to upgrade";
  EXPECT_EQ(*(*new_store)->Layout(), "sample/2");
}

TEST(StateStoreTest, AStoreFromBeforeLayoutsTakesTheFirstOneAskedFor) {
  const std::string dir = FreshDir("layout-adopt");
  {
    auto store = OpenStore(dir);
    StateBatch batch(store.get());
    batch.Put("card/1", "x");
    batch.SetNextOffset({"t", 0}, 1);
    ASSERT_TRUE(store->Commit(batch).ok());
    EXPECT_EQ(*store->Layout(), "");
  }
  ASSERT_TRUE(StateStore::Open({.path = dir, .layout = "sample/1"}).ok());
  EXPECT_EQ(StateStore::Open({.path = dir, .layout = "sample/2"}).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace tongka::state_store
