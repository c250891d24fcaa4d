// Proves EventFilter on real RocksDB, record by record as the apply loop drives it: the envelope's
// event id is read as a full protobuf parse reads it; a repeated id is dropped within a batch,
// across commits and across a reopen (the index is rebuilt from the store); ids older than the
// horizon are pruned from the store and from memory, and only then does a copy get through;
// the stored index depends only on the log, not on batch boundaries; a record whose key hashes
// to another partition is refused, with the partition computed by Kafka's murmur2 written out
// here independently of librdkafka.
#include "libs/state_store/event_filter.h"

#include <random>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "libs/event_log/ownership.h"
#include "libs/state_store/state_store.h"
#include "proto/events.pb.h"

namespace tongka::state_store {
namespace {

using event_log::Record;
using Verdict = EventFilter::Verdict;

constexpr char kTopic[] = "tongka.txn";
constexpr int32_t kPartitions = 8;
constexpr int64_t kHourMs = 3600 * 1000;

// Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2), transcribed from its Java
// source, and its partition for a keyed record: toPositive(murmur2(key)) % partitions.
int32_t JavaMurmur2Partition(absl::string_view key, int32_t partitions) {
  const uint32_t m = 0x5bd1e995;
  const int r = 24;
  const size_t length = key.size();
  uint32_t h = 0x9747b28c ^ static_cast<uint32_t>(length);
  const size_t length4 = length / 4;
  const auto* data = reinterpret_cast<const uint8_t*>(key.data());
  for (size_t i = 0; i < length4; ++i) {
    const size_t i4 = i * 4;
    uint32_t k = data[i4] | (data[i4 + 1] << 8) | (data[i4 + 2] << 16) |
                 (static_cast<uint32_t>(data[i4 + 3]) << 24);
    k *= m;
    k ^= k >> r;
    k *= m;
    h *= m;
    h ^= k;
  }
  switch (length % 4) {
    case 3:
      h ^= static_cast<uint32_t>(data[(length & ~3u) + 2]) << 16;
      [[fallthrough]];
    case 2:
      h ^= static_cast<uint32_t>(data[(length & ~3u) + 1]) << 8;
      [[fallthrough]];
    case 1:
      h ^= data[length & ~3u];
      h *= m;
  }
  h ^= h >> 13;
  h *= m;
  h ^= h >> 15;
  return static_cast<int32_t>((h & 0x7fffffff) % static_cast<uint32_t>(partitions));
}

std::string EventBytes(const std::string& event_id) {
  v1::Event event;
  event.set_event_id(event_id);
  event.set_recorded_at_us(1'700'000'000'000'000);
  event.mutable_tap()->mutable_txn()->set_card_id("3100001234567");
  event.mutable_tap()->set_amount_fen(200);
  return event.SerializeAsString();
}

// A key that murmur2 puts in `partition`.
std::string KeyIn(int32_t partition) {
  for (int i = 0;; ++i) {
    std::string key = absl::StrCat("card", i);
    if (JavaMurmur2Partition(key, kPartitions) == partition) return key;
  }
}

Record TxnRecord(int32_t partition, int64_t offset, const std::string& event_id,
                 int64_t timestamp_ms) {
  return Record::Owned(kTopic, partition, offset, KeyIn(partition), EventBytes(event_id),
                       timestamp_ms);
}

class EventFilterTest : public ::testing::Test {
 protected:
  std::unique_ptr<StateStore> OpenStore(const std::string& name) {
    auto store = StateStore::Open({.path = absl::StrCat(::testing::TempDir(), "/", name)});
    EXPECT_TRUE(store.ok()) << store.status();
    return std::move(*store);
  }

  std::unique_ptr<EventFilter> LoadFilter(StateStore* store, EventFilterOptions options = {}) {
    auto filter = std::make_unique<EventFilter>(store, options);
    absl::Status loaded = filter->Load({{kTopic, 0}, {kTopic, 1}}, {{kTopic, kPartitions}});
    EXPECT_TRUE(loaded.ok()) << loaded;
    return filter;
  }

  Verdict Admit(EventFilter& filter, const Record& record, StateBatch& batch) {
    absl::StatusOr<Verdict> verdict = filter.Admit(record, batch);
    EXPECT_TRUE(verdict.ok()) << verdict.status();
    return verdict.ok() ? *verdict : Verdict::kApply;
  }

  // The stored chunk keys, in order.
  std::vector<std::string> ChunkKeys(StateStore& store) {
    std::vector<std::string> keys;
    EXPECT_TRUE(store
                    .ScanPrefix("~ids/",
                                [&](absl::string_view key, absl::string_view) {
                                  keys.emplace_back(key);
                                  return true;
                                })
                    .ok());
    return keys;
  }
};

TEST_F(EventFilterTest, ReadsTheEventIdAsAFullParseDoes) {
  std::mt19937_64 random(7);
  for (int i = 0; i < 200; ++i) {
    v1::Event event;
    event.set_event_id(absl::StrCat("txn/T", random() % 100000, "/", i));
    event.set_occurred_at_us(static_cast<int64_t>(random()));
    event.set_recorded_at_us(-static_cast<int64_t>(random() % 1000));
    event.mutable_source()->set_city(310000);
    if (i % 2 == 0) {
      event.mutable_refund()->mutable_txn()->set_card_id(std::string(random() % 300, 'x'));
    } else {
      event.mutable_load()->set_amount_fen(static_cast<int64_t>(random()));
    }
    const std::string bytes = event.SerializeAsString();
    std::optional<absl::string_view> id = EnvelopeEventId(bytes);
    ASSERT_TRUE(id.has_value()) << i;
    EXPECT_EQ(*id, event.event_id());
    // Every strict prefix either fails to parse in protobuf too, or gives protobuf's answer.
    for (size_t cut = 0; cut < bytes.size(); cut += 7) {
      v1::Event parsed;
      const absl::string_view prefix(bytes.data(), cut);
      std::optional<absl::string_view> got = EnvelopeEventId(prefix);
      if (!parsed.ParseFromArray(prefix.data(), static_cast<int>(prefix.size()))) {
        EXPECT_FALSE(got.has_value()) << i << " cut " << cut;
      } else if (parsed.event_id().empty()) {
        EXPECT_FALSE(got.has_value()) << i << " cut " << cut;
      } else {
        ASSERT_TRUE(got.has_value()) << i << " cut " << cut;
        EXPECT_EQ(*got, parsed.event_id());
      }
    }
  }
  // The last occurrence wins, as in protobuf.
  v1::Event first;
  first.set_event_id("first");
  v1::Event second;
  second.set_event_id("second");
  const std::string twice = first.SerializeAsString() + second.SerializeAsString();
  v1::Event parsed;
  ASSERT_TRUE(parsed.ParseFromString(twice));
  EXPECT_EQ(EnvelopeEventId(twice), std::optional<absl::string_view>(parsed.event_id()));
  EXPECT_EQ(EnvelopeEventId(""), std::nullopt);
  EXPECT_EQ(EnvelopeEventId("v"), std::nullopt);
  EXPECT_EQ(EnvelopeEventId(v1::Event().SerializeAsString()), std::nullopt);
}

TEST_F(EventFilterTest, PrepareAllPreparesEachRecordAsPrepareDoes) {
  auto store = OpenStore("prepare-all");
  auto filter = LoadFilter(store.get());
  std::vector<Record> records;
  for (int i = 0; i < 40; ++i) {
    const int32_t partition = (i / 3) % 2;  // runs of three per partition
    records.push_back(i % 7 == 6 ? Record::Owned(kTopic, partition, i, KeyIn(1 - partition),
                                                 EventBytes(absl::StrCat("txn/P/", i)), 0)
                                 : TxnRecord(partition, i, absl::StrCat("txn/P/", i), 0));
  }
  std::vector<EventFilter::Prepared> all;
  filter->PrepareAll(records, &all);
  ASSERT_EQ(all.size(), records.size());
  for (size_t i = 0; i < records.size(); ++i) {
    const EventFilter::Prepared one = filter->Prepare(records[i]);
    EXPECT_EQ(all[i].partition, one.partition) << i;
    EXPECT_EQ(all[i].misrouted, one.misrouted) << i;
    EXPECT_EQ(all[i].has_id, one.has_id) << i;
    EXPECT_EQ(all[i].id, one.id) << i;
    EXPECT_EQ(all[i].hash, one.hash) << i;
    EXPECT_EQ(all[i].misrouted, i % 7 == 6) << i;
  }
}

TEST_F(EventFilterTest, PartitionForKeyIsKafkasMurmur2) {
  std::mt19937_64 random(11);
  for (int i = 0; i < 20000; ++i) {
    std::string key(1 + random() % 40, '\0');
    for (char& c : key) c = static_cast<char>(random());
    const int32_t partitions = 1 + static_cast<int32_t>(random() % 64);
    ASSERT_EQ(event_log::PartitionForKey(key, partitions), JavaMurmur2Partition(key, partitions))
        << i;
  }
}

TEST_F(EventFilterTest, DropsARepeatedIdInABatchAcrossCommitsAndAcrossAReopen) {
  const std::string path = "repeats";
  {
    auto store = OpenStore(path);
    auto filter = LoadFilter(store.get());
    StateBatch batch(store.get());
    EXPECT_EQ(Admit(*filter, TxnRecord(0, 0, "txn/A/1", kHourMs), batch), Verdict::kApply);
    EXPECT_EQ(Admit(*filter, TxnRecord(0, 1, "txn/A/2", kHourMs), batch), Verdict::kApply);
    EXPECT_EQ(Admit(*filter, TxnRecord(0, 2, "txn/A/1", kHourMs), batch), Verdict::kDuplicate);
    ASSERT_TRUE(filter->Flush(batch).ok());
    ASSERT_TRUE(store->Commit(batch).ok());
    EXPECT_EQ(Admit(*filter, TxnRecord(0, 3, "txn/A/2", kHourMs + 5), batch), Verdict::kDuplicate);
    // The same id in another partition is another partition's business (a copy there would be
    // misrouted: the key decides the partition).
    EXPECT_EQ(Admit(*filter, TxnRecord(1, 0, "txn/A/2", kHourMs), batch), Verdict::kApply);
    ASSERT_TRUE(filter->Flush(batch).ok());
    ASSERT_TRUE(store->Commit(batch).ok());
    EXPECT_EQ(filter->RememberedIds(), 3);
  }
  auto store = OpenStore(path);
  auto filter = LoadFilter(store.get());
  EXPECT_EQ(filter->RememberedIds(), 3);
  StateBatch batch(store.get());
  EXPECT_EQ(Admit(*filter, TxnRecord(0, 4, "txn/A/1", 2 * kHourMs), batch), Verdict::kDuplicate);
  EXPECT_EQ(Admit(*filter, TxnRecord(1, 1, "txn/A/2", 2 * kHourMs), batch), Verdict::kDuplicate);
  EXPECT_EQ(Admit(*filter, TxnRecord(0, 5, "txn/A/3", 2 * kHourMs), batch), Verdict::kApply);
  // Records without an event id are the applier's to judge.
  EXPECT_EQ(Admit(*filter, Record::Owned(kTopic, 0, 6, KeyIn(0), "v", 0), batch), Verdict::kApply);
  EXPECT_EQ(Admit(*filter, Record::Owned(kTopic, 0, 7, KeyIn(0), "v", 0), batch), Verdict::kApply);
  // The drops are state, committed with the batch.
  ASSERT_TRUE(filter->Flush(batch).ok());
  ASSERT_TRUE(store->Commit(batch).ok());
  absl::StatusOr<DropCounts> drops = ReadDropCounts(*store, kTopic);
  ASSERT_TRUE(drops.ok()) << drops.status();
  EXPECT_EQ(drops->duplicates, 4);
  EXPECT_EQ(drops->misrouted, 0);
}

TEST_F(EventFilterTest, RefusesARecordWhoseKeyHashesToAnotherPartition) {
  auto store = OpenStore("misrouted");
  auto filter = LoadFilter(store.get());
  StateBatch batch(store.get());
  const Record misrouted = Record::Owned(kTopic, 1, 0, KeyIn(0), EventBytes("txn/B/1"), kHourMs);
  EXPECT_EQ(Admit(*filter, misrouted, batch), Verdict::kMisrouted);
  // Refused, it is not remembered: the rightly placed record is applied.
  EXPECT_EQ(Admit(*filter, TxnRecord(0, 0, "txn/B/1", kHourMs), batch), Verdict::kApply);
  // Unkeyed records go anywhere.
  EXPECT_EQ(Admit(*filter, Record::Owned(kTopic, 1, 1, "", EventBytes("txn/B/2"), kHourMs), batch),
            Verdict::kApply);
  ASSERT_TRUE(filter->Flush(batch).ok());
  ASSERT_TRUE(store->Commit(batch).ok());
  absl::StatusOr<DropCounts> drops = ReadDropCounts(*store);
  ASSERT_TRUE(drops.ok()) << drops.status();
  EXPECT_EQ(drops->duplicates, 0);
  EXPECT_EQ(drops->misrouted, 1);
  // Switched off, the check lets it through.
  auto lenient_store = OpenStore("misrouted-off");
  auto lenient = LoadFilter(lenient_store.get(), {.refuse_misrouted = false});
  StateBatch lenient_batch(lenient_store.get());
  EXPECT_EQ(Admit(*lenient, misrouted, lenient_batch), Verdict::kApply);
}

TEST_F(EventFilterTest, PrunesIdsBeyondTheHorizonAndOnlyThenLetsACopyThrough) {
  auto store = OpenStore("horizon");
  const EventFilterOptions options{.horizon = absl::Hours(2), .bucket_width = absl::Hours(1)};
  auto filter = LoadFilter(store.get(), options);
  StateBatch batch(store.get());
  EXPECT_EQ(Admit(*filter, TxnRecord(0, 0, "txn/C/1", 10 * kHourMs), batch), Verdict::kApply);
  EXPECT_EQ(Admit(*filter, TxnRecord(0, 1, "txn/C/2", 11 * kHourMs), batch), Verdict::kApply);
  // A record stamped earlier than the clock is filed under the clock (11): log time only moves
  // forward, so nothing is pruned early.
  EXPECT_EQ(Admit(*filter, TxnRecord(0, 2, "txn/C/3", 3 * kHourMs), batch), Verdict::kApply);
  ASSERT_TRUE(filter->Flush(batch).ok());
  ASSERT_TRUE(store->Commit(batch).ok());
  EXPECT_EQ(ChunkKeys(*store), (std::vector<std::string>{
                                   "~ids/tongka.txn/0000/00000000000000000010",
                                   "~ids/tongka.txn/0000/00000000000000000011",
                               }));
  // At 12 h bucket 10 is still within two hours.
  EXPECT_EQ(Admit(*filter, TxnRecord(0, 3, "txn/C/1", 12 * kHourMs), batch), Verdict::kDuplicate);
  EXPECT_EQ(Admit(*filter, TxnRecord(0, 4, "txn/C/4", 12 * kHourMs), batch), Verdict::kApply);
  ASSERT_TRUE(filter->Flush(batch).ok());
  ASSERT_TRUE(store->Commit(batch).ok());
  // At 13 h bucket 10 falls out: deleted in the same batch, forgotten in memory.
  EXPECT_EQ(Admit(*filter, TxnRecord(0, 5, "txn/C/5", 13 * kHourMs), batch), Verdict::kApply);
  ASSERT_TRUE(filter->Flush(batch).ok());
  ASSERT_TRUE(store->Commit(batch).ok());
  EXPECT_EQ(ChunkKeys(*store), (std::vector<std::string>{
                                   "~ids/tongka.txn/0000/00000000000000000011",
                                   "~ids/tongka.txn/0000/00000000000000000012",
                                   "~ids/tongka.txn/0000/00000000000000000013",
                               }));
  EXPECT_EQ(filter->RememberedIds(), 4);
  EXPECT_EQ(Admit(*filter, TxnRecord(0, 6, "txn/C/3", 13 * kHourMs), batch), Verdict::kDuplicate);
  EXPECT_EQ(Admit(*filter, TxnRecord(0, 7, "txn/C/1", 13 * kHourMs), batch), Verdict::kApply);
  // A reopened filter knows exactly what the store holds.
  ASSERT_TRUE(filter->Flush(batch).ok());
  ASSERT_TRUE(store->Commit(batch).ok());
  auto reopened = LoadFilter(store.get(), options);
  EXPECT_EQ(reopened->RememberedIds(), filter->RememberedIds());
}

TEST_F(EventFilterTest, TheStoredIndexDependsOnlyOnTheLog) {
  std::vector<Record> log;
  std::mt19937_64 random(3);
  for (int i = 0; i < 3000; ++i) {
    const int32_t partition = static_cast<int32_t>(random() % 2);
    // One in ten repeats an earlier id; the clock walks through a dozen buckets.
    const std::string id = absl::StrCat("txn/D/", random() % 10 == 0 ? random() % (i + 1) : i);
    log.push_back(TxnRecord(partition, i, id, i * 60'000 + static_cast<int64_t>(random() % 1000)));
  }
  const EventFilterOptions options{.horizon = absl::Hours(3), .bucket_width = absl::Minutes(30)};
  std::string digests[2];
  int64_t applied[2] = {0, 0};
  for (int run = 0; run < 2; ++run) {
    auto store = OpenStore(absl::StrCat("determinism", run));
    auto filter = LoadFilter(store.get(), options);
    StateBatch batch(store.get());
    const size_t commit_every = run == 0 ? 1 : 977;
    for (size_t i = 0; i < log.size(); ++i) {
      if (Admit(*filter, log[i], batch) == Verdict::kApply) ++applied[run];
      if ((i + 1) % commit_every == 0) {
        ASSERT_TRUE(filter->Flush(batch).ok());
        ASSERT_TRUE(store->Commit(batch).ok());
        if (run == 1 && i % 3 == 0) filter = LoadFilter(store.get(), options);  // a restart
      }
    }
    ASSERT_TRUE(filter->Flush(batch).ok());
    ASSERT_TRUE(store->Commit(batch).ok());
    absl::StatusOr<std::string> digest = store->Digest();
    ASSERT_TRUE(digest.ok());
    digests[run] = *digest;
  }
  EXPECT_EQ(digests[0], digests[1]);
  EXPECT_EQ(applied[0], applied[1]);
  EXPECT_LT(applied[0], 3000);
}

}  // namespace
}  // namespace tongka::state_store
