#include "libs/state_store/state_store.h"

#include <glog/logging.h>
#include <openssl/evp.h>

#include <algorithm>
#include <filesystem>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "libs/state_store/outbox.pb.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/merge_operator.h"
#include "rocksdb/perf_level.h"
#include "rocksdb/slice_transform.h"
#include "rocksdb/table.h"
#include "rocksdb/utilities/checkpoint.h"
#include "rocksdb/write_batch.h"

namespace tongka::state_store {
namespace {

constexpr int kDefault = 0;
constexpr int kState = 1;
constexpr int kOffsets = 2;
constexpr int kOutbox = 3;
const char* const kColumnFamilies[] = {rocksdb::kDefaultColumnFamilyName.c_str(), "state",
                                       "offsets", "outbox"};
constexpr absl::string_view kOutboxAckedKey = "outbox_acked";
constexpr absl::string_view kLayoutKey = "layout";
// Keys under this prefix in the state column family belong to the runtime (seen event ids).
constexpr absl::string_view kSeenPrefix = "~seen/";

// Debian's abseil has its own string_view type, distinct from std::string_view (RocksDB's).
rocksdb::Slice ToSlice(absl::string_view v) { return rocksdb::Slice(v.data(), v.size()); }
absl::string_view ToView(const rocksdb::Slice& s) { return absl::string_view(s.data(), s.size()); }

absl::Status ToStatus(const rocksdb::Status& s, absl::string_view context) {
  if (s.ok()) return absl::OkStatus();
  std::string message = absl::StrCat(context, ": ", s.ToString());
  if (s.IsIOError() || s.IsBusy() || s.IsTimedOut() || s.IsTryAgain()) {
    return absl::UnavailableError(message);
  }
  return absl::InternalError(message);
}

std::string EncodeU64(uint64_t v) {
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i) {
    out[i] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
  return out;
}

uint64_t DecodeU64(absl::string_view bytes) {
  CHECK_EQ(bytes.size(), 8u) << "corrupt fixed64 in state store";
  uint64_t v = 0;
  for (unsigned char c : bytes) v = (v << 8) | c;
  return v;
}

std::string OffsetKey(const TopicPartition& tp) {
  std::string key = tp.topic;
  key.push_back('\0');
  key += EncodeU64(static_cast<uint32_t>(tp.partition)).substr(4);
  return key;
}

// The state column family's merge: StateBatch::Append's pieces joined in the order they were
// written (a RocksDB merge operand per commit that appended to the key).
class AppendOperator : public rocksdb::MergeOperator {
 public:
  bool FullMergeV2(const MergeOperationInput& in, MergeOperationOutput* out) const override {
    size_t size = in.existing_value != nullptr ? in.existing_value->size() : 0;
    for (const rocksdb::Slice& operand : in.operand_list) size += operand.size();
    // Not necessarily empty: an iterator hands in the buffer that held the previous key's value.
    out->new_value.clear();
    out->new_value.reserve(size);
    if (in.existing_value != nullptr) {
      out->new_value.append(in.existing_value->data(), in.existing_value->size());
    }
    for (const rocksdb::Slice& operand : in.operand_list) {
      out->new_value.append(operand.data(), operand.size());
    }
    return true;
  }
  bool PartialMerge(const rocksdb::Slice& key, const rocksdb::Slice& left,
                    const rocksdb::Slice& right, std::string* new_value,
                    rocksdb::Logger* logger) const override {
    new_value->reserve(left.size() + right.size());
    new_value->assign(left.data(), left.size());
    new_value->append(right.data(), right.size());
    return true;
  }
  const char* Name() const override { return "tongka.Append"; }
};

TopicPartition DecodeOffsetKey(absl::string_view key) {
  size_t zero = key.find('\0');
  CHECK(zero != absl::string_view::npos && key.size() == zero + 5) << "corrupt offset key";
  uint32_t partition =
      static_cast<uint32_t>(DecodeU64(absl::StrCat(std::string(4, '\0'), key.substr(zero + 1))));
  return TopicPartition{std::string(key.substr(0, zero)), static_cast<int32_t>(partition)};
}

}  // namespace

absl::StatusOr<std::unique_ptr<StateStore>> StateStore::Open(const StateStoreOptions& options) {
  if (options.path.empty()) return absl::InvalidArgumentError("state store path: required");
  if (options.wal_bytes_max != 0 && options.wal_bytes_max < 2 * options.state_memtable_bytes) {
    // RocksDB would flush the state family on every new log file.
    return absl::InvalidArgumentError(absl::StrCat(
        "state store wal_bytes_max: ", options.wal_bytes_max,
        " is below two state memtables (state_memtable_bytes ", options.state_memtable_bytes, ")"));
  }
  const int64_t wal_bytes_max =
      options.wal_bytes_max != 0 ? options.wal_bytes_max : 8 * options.state_memtable_bytes;
  std::error_code ec;
  std::filesystem::create_directories(options.path, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("state store path ", options.path, ": ", ec.message()));
  }
  rocksdb::DBOptions db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  // After a crash, recover the WAL to the last consistent batch: a torn tail is dropped whole.
  db_options.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
  db_options.IncreaseParallelism(2);
  // Commits are serialized (commit_mu_) anyway; a concurrent memtable insert would also ignore
  // the insert hint below.
  db_options.allow_concurrent_memtable_write = false;
  db_options.max_total_wal_size = static_cast<uint64_t>(wal_bytes_max);

  rocksdb::ColumnFamilyOptions state_options;
  if (options.compaction == StateStoreOptions::Compaction::kUniversal) {
    state_options.OptimizeUniversalStyleCompaction();
    // The indexes this is for hold digests, which do not compress: compressing every merge's
    // output would only cost CPU.
    state_options.compression = rocksdb::kNoCompression;
    state_options.compression_per_level.clear();
  } else {
    state_options.OptimizeLevelStyleCompaction();
  }
  // Apply logic rewrites the same hot keys (a card's totals, a window's cell) batch after batch.
  // A small memtable keeps the skiplist those versions go into cache-resident, and a flush
  // collapses the versions to one per key, so small SSTs and cheap compactions follow.
  state_options.write_buffer_size = options.state_memtable_bytes;
  // Batches write their keys in sorted order (Commit): each insert starts from where the last
  // one went (one hint for the whole key space), not from the top of the skiplist.
  state_options.memtable_insert_with_hint_prefix_extractor.reset(
      rocksdb::NewFixedPrefixTransform(0));
  state_options.merge_operator = std::make_shared<AppendOperator>();
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(options.block_cache_bytes);
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  state_options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));

  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (int i = 0; i < 4; ++i) {
    descriptors.emplace_back(kColumnFamilies[i],
                             i == kState ? state_options : rocksdb::ColumnFamilyOptions());
  }
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(db_options, options.path, descriptors, &handles, &raw);
  if (!s.ok()) return ToStatus(s, absl::StrCat("open state store ", options.path));
  std::unique_ptr<StateStore> store(
      new StateStore(std::unique_ptr<rocksdb::DB>(raw), std::move(handles), options));
  absl::Status bounds = store->LoadOutboxBounds();
  if (!bounds.ok()) return bounds;
  if (!options.layout.empty()) {
    absl::Status layout = store->CheckLayout(options);
    if (!layout.ok()) return layout;
  }
  return store;
}

absl::StatusOr<std::string> StateStore::Layout() const {
  std::string layout;
  rocksdb::Status s =
      db_->Get(rocksdb::ReadOptions(), handles_[kDefault], ToSlice(kLayoutKey), &layout);
  if (s.IsNotFound()) return std::string();
  if (!s.ok()) return ToStatus(s, "read layout");
  return layout;
}

absl::StatusOr<bool> StateStore::Empty() const {
  for (int family : {kState, kOffsets}) {
    std::unique_ptr<rocksdb::Iterator> it(
        db_->NewIterator(rocksdb::ReadOptions(), handles_[family]));
    it->SeekToFirst();
    if (!it->status().ok()) return ToStatus(it->status(), "scan store");
    if (it->Valid()) return false;
  }
  return true;
}

absl::Status StateStore::CheckLayout(const StateStoreOptions& options) {
  const std::string& layout = options.layout;
  absl::StatusOr<std::string> recorded = Layout();
  if (!recorded.ok()) return recorded.status();
  if (*recorded == layout) return absl::OkStatus();
  std::string source = *recorded;
  if (source.empty()) {
    absl::StatusOr<bool> empty = Empty();
    if (!empty.ok()) return empty.status();
    if (*empty) return RecordLayout(layout);
    if (options.unrecorded_layout.empty()) {
      LOG(WARNING) << "state store " << db_->GetName()
                   << " has state but no recorded key layout (written before layouts were "
                      "recorded): taking it as \""
                   << layout << "\"";
      return RecordLayout(layout);
    }
    LOG(WARNING) << "state store " << db_->GetName()
                 << " has state but no recorded key layout (written before layouts were "
                    "recorded): it was written under \""
                 << options.unrecorded_layout << "\"";
    source = options.unrecorded_layout;
    if (source == layout) return RecordLayout(layout);
  }
  // "<from>><layout>": an upgrade to this layout that did not finish.
  const std::string unfinished_suffix = absl::StrCat(">", layout);
  const std::string from = absl::EndsWith(source, unfinished_suffix)
                               ? source.substr(0, source.size() - unfinished_suffix.size())
                               : source;
  for (const StateStoreOptions::Upgrade& upgrade : options.upgrades) {
    if (upgrade.from != from) continue;
    CHECK(upgrade.upgrade != nullptr) << "the upgrade from \"" << from << "\" has no function";
    const std::string marker = absl::StrCat(from, unfinished_suffix);
    LOG(INFO) << "state store " << db_->GetName() << ": upgrading key layout \"" << from
              << "\" to \"" << layout << "\"" << (source == marker ? " (resuming)" : "");
    if (source != marker) {
      if (absl::Status marked = RecordLayout(marker); !marked.ok()) return marked;
    }
    if (absl::Status upgraded = upgrade.upgrade(*this); !upgraded.ok()) {
      return absl::Status(
          upgraded.code(),
          absl::StrCat("upgrading state store ", db_->GetName(), " from \"", from, "\" to \"",
                       layout, "\" (opening it again resumes): ", upgraded.message()));
    }
    return RecordLayout(layout);
  }
  if (absl::StrContains(source, '>')) {
    return absl::FailedPreconditionError(absl::StrCat(
        "state store ", db_->GetName(), " is halfway through the key layout upgrade \"", source,
        "\", and this binary uses \"", layout,
        "\": run the binary of the upgrade's target layout, which finishes it"));
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "state store ", db_->GetName(), " was built under key layout \"", source,
      "\", this binary uses \"", layout,
      "\": rebuild it from an empty directory (the service replays the log), or run the "
      "binary that built it"));
}

absl::Status StateStore::RecordLayout(const std::string& layout) {
  rocksdb::WriteOptions write = write_options_;
  write.sync = true;
  return ToStatus(db_->Put(write, handles_[kDefault], ToSlice(kLayoutKey), ToSlice(layout)),
                  "record layout");
}

StateStore::StateStore(std::unique_ptr<rocksdb::DB> db,
                       std::vector<rocksdb::ColumnFamilyHandle*> handles,
                       const StateStoreOptions& options)
    : db_(std::move(db)),
      handles_(std::move(handles)),
      value_cache_entries_(options.value_cache_entries) {
  write_options_.sync = options.sync_writes;
}

StateStore::~StateStore() {
  for (rocksdb::ColumnFamilyHandle* handle : handles_) {
    rocksdb::Status s = db_->DestroyColumnFamilyHandle(handle);
    if (!s.ok()) LOG(WARNING) << "closing column family: " << s.ToString();
  }
  rocksdb::Status s = db_->Close();
  if (!s.ok()) LOG(WARNING) << "closing state store: " << s.ToString();
}

absl::Status StateStore::LoadOutboxBounds() {
  std::string acked;
  rocksdb::Status s =
      db_->Get(rocksdb::ReadOptions(), handles_[kDefault], ToSlice(kOutboxAckedKey), &acked);
  if (!s.ok() && !s.IsNotFound()) return ToStatus(s, "read outbox cursor");
  outbox_acked_ = s.ok() ? DecodeU64(acked) : 0;
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions(), handles_[kOutbox]));
  it->SeekToLast();
  uint64_t last = it->Valid() ? DecodeU64(ToView(it->key())) : 0;
  if (!it->status().ok()) return ToStatus(it->status(), "scan outbox");
  // Sequences are never reused, even after every entry was acknowledged and deleted.
  outbox_next_ = std::max(last, outbox_acked_.load()) + 1;
  return absl::OkStatus();
}

namespace {

// RocksDB counts every key comparison and block read into a thread-local perf context unless the
// thread's perf level says not to (its default, kEnableCount, counts). Nothing here reads those
// counters, and in a memtable insert the counting (a dynamic TLS lookup per comparison) is a
// noticeable share of the work, so each thread that reads or commits turns it off once.
void DisablePerfCounters() {
  thread_local bool disabled = false;
  if (disabled) return;
  rocksdb::SetPerfLevel(rocksdb::PerfLevel::kDisable);
  disabled = true;
}

}  // namespace

absl::StatusOr<std::optional<std::string>> StateStore::Get(absl::string_view key) const {
  DisablePerfCounters();
  uint64_t generation = 0;
  if (value_cache_entries_ > 0) {
    absl::MutexLock lock(&cache_mu_);
    auto it = value_cache_.find(key);
    if (it != value_cache_.end()) return it->second;
    generation = cache_generation_;
  }
  std::string bytes;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), handles_[kState], ToSlice(key), &bytes);
  if (!s.ok() && !s.IsNotFound()) return ToStatus(s, "state get");
  std::optional<std::string> value;
  if (s.ok()) value = std::move(bytes);
  if (value_cache_entries_ > 0) {
    absl::MutexLock lock(&cache_mu_);
    if (generation == cache_generation_) {
      if (static_cast<int64_t>(value_cache_.size()) >= value_cache_entries_) value_cache_.clear();
      value_cache_.emplace(key, value);
    }
  }
  return value;
}

absl::Status StateStore::ScanPrefix(
    absl::string_view prefix,
    const std::function<bool(absl::string_view, absl::string_view)>& visit) const {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), handles_[kState]));
  for (it->Seek(ToSlice(prefix)); it->Valid() && it->key().starts_with(ToSlice(prefix));
       it->Next()) {
    if (!visit(ToView(it->key()), ToView(it->value()))) break;
  }
  return ToStatus(it->status(), "state scan");
}

absl::StatusOr<std::map<TopicPartition, int64_t>> StateStore::Offsets() const {
  std::map<TopicPartition, int64_t> offsets;
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions(), handles_[kOffsets]));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    offsets[DecodeOffsetKey(ToView(it->key()))] =
        static_cast<int64_t>(DecodeU64(ToView(it->value())));
  }
  if (!it->status().ok()) return ToStatus(it->status(), "read offsets");
  return offsets;
}

absl::Status StateStore::Commit(StateBatch& batch) {
  CHECK(batch.store_ == this) << "a StateBatch must be committed to the store it reads from";
  DisablePerfCounters();
  // Keys go into the WriteBatch in sorted order: the memtable then inserts each one next to the
  // previous (its skiplist splice is reused) instead of searching from the top for every key.
  std::vector<const std::pair<const std::string, StateBatch::Write>*> sorted;
  sorted.reserve(batch.writes_.size());
  for (const auto& write : batch.writes_) sorted.push_back(&write);
  std::sort(sorted.begin(), sorted.end(),
            [](const auto* a, const auto* b) { return a->first < b->first; });
  // The WriteBatch's buffer is sized once: grown by doubling, the buffer of a commit holding an
  // appended index (megabytes under a backlog) would be copied about twice more, into freshly
  // faulted pages. 16 bytes per write cover its tag, column family and lengths.
  size_t reserved_bytes = 64;
  for (const auto* entry : sorted) {
    reserved_bytes += entry->first.size() + entry->second.bytes.size() + 16;
  }
  reserved_bytes += batch.offsets_.size() * 48;
  for (const OutboxRecord& record : batch.outbox_) {
    reserved_bytes += record.topic.size() + record.key.size() + record.value.size() + 48;
  }
  rocksdb::WriteBatch write(reserved_bytes);
  for (const auto* entry : sorted) {
    const auto& [key, change] = *entry;
    rocksdb::Status s;
    switch (change.kind) {
      case StateBatch::Write::Kind::kPut:
        s = write.Put(handles_[kState], key, change.bytes);
        break;
      case StateBatch::Write::Kind::kDelete:
        s = write.Delete(handles_[kState], key);
        break;
      case StateBatch::Write::Kind::kAppend:
        s = write.Merge(handles_[kState], key, change.bytes);
        break;
    }
    if (!s.ok()) return ToStatus(s, "build write batch");
  }
  absl::MutexLock lock(&commit_mu_);
  for (const auto& [tp, next_offset] : batch.offsets_) {
    // Offsets only move forward: going back would apply events twice. Checked against what is
    // stored, right before it is overwritten.
    std::string stored;
    rocksdb::Status s =
        db_->Get(rocksdb::ReadOptions(), handles_[kOffsets], OffsetKey(tp), &stored);
    if (s.ok()) {
      CHECK_GE(next_offset, static_cast<int64_t>(DecodeU64(stored)))
          << "offset of " << tp.topic << "/" << tp.partition << " would move backwards";
    } else if (!s.IsNotFound()) {
      return ToStatus(s, "read offset");
    }
    write.Put(handles_[kOffsets], OffsetKey(tp), EncodeU64(static_cast<uint64_t>(next_offset)));
  }
  uint64_t sequence = outbox_next_.load();
  OutboxEntry entry;
  std::string encoded;
  for (OutboxRecord& record : batch.outbox_) {
    record.sequence = sequence++;
    entry.set_topic(record.topic);
    entry.set_key(record.key);
    entry.set_value(record.value);
    encoded.clear();
    entry.AppendToString(&encoded);
    write.Put(handles_[kOutbox], EncodeU64(record.sequence), encoded);
  }
  rocksdb::Status s = db_->Write(write_options_, &write);
  if (!s.ok()) return ToStatus(s, "commit");
  outbox_next_.store(sequence);
  if (value_cache_entries_ > 0 && !batch.writes_.empty()) {
    absl::MutexLock cache_lock(&cache_mu_);
    ++cache_generation_;
    if (static_cast<int64_t>(value_cache_.size() + batch.writes_.size()) > value_cache_entries_) {
      value_cache_.clear();
    }
    for (auto& [key, change] : batch.writes_) {
      switch (change.kind) {
        case StateBatch::Write::Kind::kPut:
          value_cache_[key] = std::move(change.bytes);
          break;
        case StateBatch::Write::Kind::kDelete:
          value_cache_[key] = std::nullopt;
          break;
        case StateBatch::Write::Kind::kAppend:
          // Dropped, never appended to: a read racing this commit (after the write, before this
          // update) may have cached the value with these bytes already. Appended keys are indexes
          // read by scans, which bypass the cache anyway.
          value_cache_.erase(key);
          break;
      }
    }
  }
  batch.Clear();
  return absl::OkStatus();
}

absl::StatusOr<std::vector<OutboxRecord>> StateStore::ReadOutbox(size_t max) const {
  std::vector<OutboxRecord> records;
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions(), handles_[kOutbox]));
  for (it->Seek(EncodeU64(outbox_acked_.load() + 1)); it->Valid() && records.size() < max;
       it->Next()) {
    OutboxEntry entry;
    CHECK(entry.ParseFromArray(it->value().data(), static_cast<int>(it->value().size())))
        << "corrupt outbox entry";
    OutboxRecord& record = records.emplace_back();
    record.sequence = DecodeU64(ToView(it->key()));
    record.topic = entry.topic();
    record.key = entry.key();
    record.value = entry.value();
  }
  if (!it->status().ok()) return ToStatus(it->status(), "read outbox");
  return records;
}

absl::Status StateStore::AckOutbox(uint64_t sequence) {
  CHECK_LT(sequence, outbox_next_.load()) << "acknowledging an outbox entry never committed";
  if (sequence <= outbox_acked_.load()) return absl::OkStatus();
  rocksdb::WriteBatch write;
  write.DeleteRange(handles_[kOutbox], EncodeU64(0), EncodeU64(sequence + 1));
  write.Put(handles_[kDefault], ToSlice(kOutboxAckedKey), EncodeU64(sequence));
  rocksdb::Status s = db_->Write(write_options_, &write);
  if (!s.ok()) return ToStatus(s, "ack outbox");
  outbox_acked_.store(sequence);
  return absl::OkStatus();
}

absl::StatusOr<std::string> StateStore::Digest() const {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  CHECK(EVP_DigestInit_ex(ctx.get(), EVP_sm3(), nullptr) == 1) << "OpenSSL lacks SM3";
  auto update = [&](const rocksdb::Slice& bytes) {
    std::string length = EncodeU64(bytes.size());
    EVP_DigestUpdate(ctx.get(), length.data(), length.size());
    EVP_DigestUpdate(ctx.get(), bytes.data(), bytes.size());
  };
  const rocksdb::Snapshot* snapshot = db_->GetSnapshot();
  rocksdb::ReadOptions read;
  read.snapshot = snapshot;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read, handles_[kState]));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    update(it->key());
    update(it->value());
  }
  rocksdb::Status s = it->status();
  it.reset();
  db_->ReleaseSnapshot(snapshot);
  if (!s.ok()) return ToStatus(s, "digest scan");
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_DigestFinal_ex(ctx.get(), digest, &length);
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(digest), length));
}

absl::Status StateStore::Checkpoint(const std::string& dir) const {
  rocksdb::Checkpoint* raw = nullptr;
  rocksdb::Status s = rocksdb::Checkpoint::Create(db_.get(), &raw);
  if (!s.ok()) return ToStatus(s, "checkpoint");
  std::unique_ptr<rocksdb::Checkpoint> checkpoint(raw);
  return ToStatus(checkpoint->CreateCheckpoint(dir), absl::StrCat("checkpoint to ", dir));
}

int64_t StateStore::ApproximateSizeBytes() const {
  uint64_t total = 0;
  for (rocksdb::ColumnFamilyHandle* handle : handles_) {
    uint64_t size = 0;
    if (db_->GetIntProperty(handle, rocksdb::DB::Properties::kTotalSstFilesSize, &size)) {
      total += size;
    }
    if (db_->GetIntProperty(handle, rocksdb::DB::Properties::kCurSizeAllMemTables, &size)) {
      total += size;
    }
  }
  return static_cast<int64_t>(total);
}

absl::StatusOr<std::optional<std::string>> StateBatch::Get(absl::string_view key) const {
  auto it = writes_.find(key);
  if (it == writes_.end()) return store_->Get(key);
  const Write& change = it->second;
  switch (change.kind) {
    case Write::Kind::kPut:
      return std::optional<std::string>(change.bytes);
    case Write::Kind::kDelete:
      return std::optional<std::string>();
    case Write::Kind::kAppend:
      break;
  }
  absl::StatusOr<std::optional<std::string>> stored = store_->Get(key);
  if (!stored.ok()) return stored.status();
  std::string value = stored->has_value() ? std::move(**stored) : std::string();
  value.append(change.bytes);
  return std::optional<std::string>(std::move(value));
}

void StateBatch::Put(absl::string_view key, absl::string_view value) {
  Write& change = writes_[key];
  change.kind = Write::Kind::kPut;
  change.bytes.assign(value.data(), value.size());
}

void StateBatch::Delete(absl::string_view key) {
  Write& change = writes_[key];
  change.kind = Write::Kind::kDelete;
  change.bytes.clear();
}

void StateBatch::Append(absl::string_view key, absl::string_view bytes) {
  auto [it, inserted] = writes_.try_emplace(key);
  Write& change = it->second;
  if (inserted) {
    change.kind = Write::Kind::kAppend;
  } else if (change.kind == Write::Kind::kDelete) {
    change.kind = Write::Kind::kPut;  // deleted, then appended to: the appended bytes alone
  }
  change.bytes.append(bytes.data(), bytes.size());
}

absl::StatusOr<std::string*> StateBatch::Mutable(absl::string_view key, bool* present) {
  auto [it, inserted] = writes_.try_emplace(key);
  Write& change = it->second;
  if (inserted || change.kind == Write::Kind::kAppend) {
    absl::StatusOr<std::optional<std::string>> stored = store_->Get(key);
    if (!stored.ok()) {
      if (inserted) writes_.erase(it);
      return stored.status();
    }
    if (present != nullptr) *present = stored->has_value();
    std::string value = stored->has_value() ? std::move(**stored) : std::string();
    if (!inserted) value.append(change.bytes);  // the store's value, then the pending appends
    change.kind = Write::Kind::kPut;
    change.bytes = std::move(value);
    return &change.bytes;
  }
  if (present != nullptr) *present = change.kind == Write::Kind::kPut;
  if (change.kind == Write::Kind::kDelete) {
    change.kind = Write::Kind::kPut;
    change.bytes.clear();
  }
  return &change.bytes;
}

absl::Status StateBatch::ScanPrefix(
    absl::string_view prefix,
    const std::function<bool(absl::string_view, absl::string_view)>& visit) const {
  std::map<std::string, std::optional<std::string>, std::less<>> merged;
  absl::Status scanned =
      store_->ScanPrefix(prefix, [&](absl::string_view key, absl::string_view value) {
        merged.emplace(std::string(key), std::string(value));
        return true;
      });
  if (!scanned.ok()) return scanned;
  for (const auto& [key, change] : writes_) {
    if (!absl::StartsWith(key, prefix)) continue;
    std::optional<std::string>& value = merged[key];
    switch (change.kind) {
      case Write::Kind::kPut:
        value = change.bytes;
        break;
      case Write::Kind::kDelete:
        value = std::nullopt;
        break;
      case Write::Kind::kAppend:
        if (!value.has_value()) value.emplace();
        value->append(change.bytes);
        break;
    }
  }
  for (const auto& [key, value] : merged) {
    if (value.has_value() && !visit(key, *value)) break;
  }
  return absl::OkStatus();
}

void StateBatch::AppendOutbox(std::string topic, std::string key, std::string value) {
  outbox_.push_back(OutboxRecord{0, std::move(topic), std::move(key), std::move(value)});
}

void StateBatch::SetNextOffset(const TopicPartition& tp, int64_t next_offset) {
  int64_t& stored = offsets_[tp];
  CHECK_GE(next_offset, stored) << "offset of " << tp.topic << "/" << tp.partition
                                << " would move backwards within a batch";
  stored = next_offset;
}

absl::StatusOr<bool> StateBatch::MarkSeen(absl::string_view event_id) {
  CHECK(!event_id.empty()) << "events must carry an event_id";
  std::string key = absl::StrCat(kSeenPrefix, event_id);
  absl::StatusOr<std::optional<std::string>> seen = Get(key);
  if (!seen.ok()) return seen.status();
  if (seen->has_value()) return false;
  Put(key, "");
  return true;
}

void StateBatch::Clear() {
  writes_.clear();
  outbox_.clear();
  offsets_.clear();
}

std::string DerivedEventId(absl::string_view service, const event_log::Record& source,
                           absl::string_view suffix) {
  return absl::StrCat(service, "/", source.topic, "/", source.partition, "/", source.offset, "/",
                      suffix);
}

}  // namespace tongka::state_store
