#include "services/settlement/settlement_keys.h"

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/wire_format_lite.h"

namespace tongka::settlement {
namespace {

using google::protobuf::internal::WireFormatLite;
using google::protobuf::io::CodedInputStream;
using google::protobuf::io::CodedOutputStream;
using state_store::StateBatch;

std::string City(uint32_t city) { return absl::StrFormat("%06u", city); }

std::string Partition4(int32_t partition) {
  return absl::StrCat(absl::Dec(partition, absl::kZeroPad4));
}

}  // namespace

std::string WindowKey(absl::string_view window_id) { return absl::StrCat("wi/", window_id); }
std::string PairPrefix(absl::string_view window_id) { return absl::StrCat("wp/", window_id, "/"); }
std::string PairKey(absl::string_view window_id, uint32_t issuer, uint32_t acquirer) {
  return absl::StrCat("wp/", window_id, "/", City(issuer), "/", City(acquirer));
}
std::string CellPrefix(absl::string_view window_id, uint32_t issuer, uint32_t acquirer) {
  return absl::StrCat("wc/", window_id, "/", City(issuer), "/", City(acquirer), "/");
}
std::string CellKey(absl::string_view window_id, uint32_t issuer, uint32_t acquirer,
                    absl::string_view origin_window_id, int32_t hour) {
  return absl::StrCat(CellPrefix(window_id, issuer, acquirer), origin_window_id,
                      absl::StrFormat("/%02d", hour));
}
std::string IndexPrefix(absl::string_view origin_window_id, int32_t hour) {
  return absl::StrCat("t/", origin_window_id, absl::StrFormat("/%02d/", hour));
}
std::string IndexChunkKey(absl::string_view origin_window_id, int32_t hour, int32_t partition,
                          int64_t bucket) {
  return absl::StrCat(IndexPrefix(origin_window_id, hour), absl::Dec(partition, absl::kZeroPad4),
                      "/", absl::Dec(bucket, absl::kZeroPad20));
}
std::string ReportKey(absl::string_view window_id) { return absl::StrCat("wr/", window_id); }
std::string FloatKey(uint32_t city) { return absl::StrCat("f/", City(city)); }
std::string OutcomeKey(absl::string_view event_id) { return absl::StrCat("r/", event_id); }
std::string CoverageKey(absl::string_view window_id, int32_t partition) {
  return absl::StrCat("cov/", window_id, "/", partition);
}
std::string CoverageKeyOf(absl::string_view source_topic, absl::string_view window_id,
                          int32_t partition) {
  if (source_topic == kCardsTopic) return absl::StrCat("cvc/", window_id, "/", partition);
  return CoverageKey(window_id, partition);
}
std::string RulesKey(absl::string_view effective_window_id) {
  return absl::StrCat(kRulesPrefix,
                      effective_window_id.empty() ? "0000-00-00" : effective_window_id);
}
std::string ReserveEventKey(uint32_t city) { return absl::StrCat("float/", City(city)); }
std::string FloatEventKey(uint32_t city) { return ReserveEventKey(city); }
std::string SuccessionKey(uint32_t city) { return absl::StrCat(kSuccessionPrefix, City(city)); }
std::string RefundedTapKey(int32_t partition, absl::string_view original_id) {
  return absl::StrCat("rf/", Partition4(partition), "/", original_id);
}

namespace internal {

absl::Status AddToCounter(StateBatch& batch, absl::string_view key, int64_t delta) {
  if (delta == 0) return absl::OkStatus();
  absl::StatusOr<std::optional<std::string>> current = batch.Get(key);
  if (!current.ok()) return current.status();
  int64_t n = 0;
  if (current->has_value() && !absl::SimpleAtoi(**current, &n)) {
    return absl::InternalError(absl::StrCat("corrupt counter ", key));
  }
  batch.Put(key, absl::StrCat(n + delta));
  return absl::OkStatus();
}

std::string RefundDayPrefix(int32_t partition, absl::string_view window_id) {
  return absl::StrCat("rfd/", Partition4(partition), "/", window_id, "/");
}
std::string RefundHorizonKey(int32_t partition) {
  return absl::StrCat("rfh/", Partition4(partition));
}

std::string FreezeKey(absl::string_view window_id, int32_t partition) {
  return absl::StrCat("fz/", window_id, "/", Partition4(partition));
}
std::string LateRangePrefix(absl::string_view origin_window_id, int32_t partition) {
  return absl::StrCat("lt/", origin_window_id, "/", Partition4(partition), "/");
}
std::string MoveKey(absl::string_view window_id) { return absl::StrCat("mv/", window_id); }

bool ParseCoverage(absl::string_view text, int64_t* last, int32_t* chunk) {
  std::pair<absl::string_view, absl::string_view> parts = absl::StrSplit(text, ':');
  return absl::SimpleAtoi(parts.first, last) && absl::SimpleAtoi(parts.second, chunk);
}

void AppendIndexEntry(uint32_t issuer, uint32_t acquirer, absl::string_view id, int64_t amount_fen,
                      int64_t offset_in_bucket, std::string* entries) {
  uint8_t buffer[4 * 10];  // four varints at their longest
  uint8_t* end = CodedOutputStream::WriteVarint32ToArray(issuer, buffer);
  end = CodedOutputStream::WriteVarint32ToArray(acquirer, end);
  end = CodedOutputStream::WriteVarint32ToArray(static_cast<uint32_t>(id.size()), end);
  entries->append(reinterpret_cast<const char*>(buffer), end - buffer);
  entries->append(id.data(), id.size());
  end = CodedOutputStream::WriteVarint64ToArray(WireFormatLite::ZigZagEncode64(amount_fen), buffer);
  end = CodedOutputStream::WriteVarint64ToArray(static_cast<uint64_t>(offset_in_bucket), end);
  entries->append(reinterpret_cast<const char*>(buffer), end - buffer);
}

bool ReadIndexEntries(absl::string_view entries, uint32_t issuer, uint32_t acquirer,
                      std::vector<IndexEntry>* out) {
  CodedInputStream in(reinterpret_cast<const uint8_t*>(entries.data()),
                      static_cast<int>(entries.size()));
  while (in.CurrentPosition() < static_cast<int>(entries.size())) {
    uint32_t entry_issuer = 0;
    uint32_t entry_acquirer = 0;
    uint32_t size = 0;
    std::string id;
    uint64_t zigzag = 0;
    uint64_t offset_in_bucket = 0;
    if (!in.ReadVarint32(&entry_issuer) || !in.ReadVarint32(&entry_acquirer) ||
        !in.ReadVarint32(&size) || size == 0 || !in.ReadString(&id, static_cast<int>(size)) ||
        !in.ReadVarint64(&zigzag) || !in.ReadVarint64(&offset_in_bucket) ||
        offset_in_bucket >= static_cast<uint64_t>(kIndexBucketOffsets)) {
      return false;
    }
    if (entry_issuer == issuer && entry_acquirer == acquirer) {
      out->push_back(IndexEntry{std::move(id), WireFormatLite::ZigZagDecode64(zigzag),
                                static_cast<int64_t>(offset_in_bucket)});
    }
  }
  return true;
}

}  // namespace internal
}  // namespace tongka::settlement
