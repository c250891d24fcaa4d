#include "libs/txn/keys.h"

#include <openssl/crypto.h>

#include <array>
#include <fstream>
#include <sstream>
#include <unordered_map>
#include <utility>

#include "absl/hash/hash.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "libs/crypto/sm3.h"
#include "libs/crypto/terminal_key.h"
#include "libs/txn/cities.h"

namespace tongka::txn {
namespace {

constexpr size_t kCacheShards = 16;
constexpr size_t kCacheShardSizeMax = kTerminalKeyCacheSizeMax / kCacheShards;

// The cache key: the city code's four bytes followed by the terminal id, so one string hashes and
// compares both.
std::string CacheKey(uint32_t city, absl::string_view terminal_id) {
  std::string key(sizeof(city), '\0');
  for (size_t i = 0; i < sizeof(city); ++i) key[i] = static_cast<char>(city >> (8 * i));
  key.append(terminal_id.data(), terminal_id.size());
  return key;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

struct CityKeyring::Shared {
  struct Shard {
    absl::Mutex mu;
    std::unordered_map<std::string, crypto::Sm4Key> keys ABSL_GUARDED_BY(mu);
  };

  explicit Shared(std::map<uint32_t, crypto::Sm4Key> masters) : master_keys(std::move(masters)) {}
  ~Shared() {
    for (auto& [city, key] : master_keys) OPENSSL_cleanse(key.data(), key.size());
    for (Shard& shard : shards) {
      absl::MutexLock lock(&shard.mu);
      for (auto& [id, key] : shard.keys) OPENSSL_cleanse(key.data(), key.size());
    }
  }

  // Never changed after construction (not const only so the destructor can wipe it).
  std::map<uint32_t, crypto::Sm4Key> master_keys;
  std::array<Shard, kCacheShards> shards;
};

absl::StatusOr<crypto::Sm4Key> DevCityMasterKey(uint32_t city) {
  if (FindCity(city) == nullptr) {
    return absl::NotFoundError(absl::StrCat("dev master key: ", city, " is not a member city"));
  }
  crypto::Sm3Digest digest = crypto::Sm3(absl::StrCat(kDevCityMasterKeyPrefix, city));
  crypto::Sm4Key key;
  std::copy(digest.begin(), digest.begin() + key.size(), key.begin());
  OPENSSL_cleanse(digest.data(), digest.size());
  return key;
}

CityKeyring::CityKeyring(std::map<uint32_t, crypto::Sm4Key> master_keys)
    : shared_(std::make_shared<Shared>(std::move(master_keys))) {}

absl::StatusOr<CityKeyring> CityKeyring::Dev() {
  std::map<uint32_t, crypto::Sm4Key> keys;
  for (const City& city : MemberCities()) {
    absl::StatusOr<crypto::Sm4Key> key = DevCityMasterKey(city.code);
    if (!key.ok()) return key.status();
    keys.emplace(city.code, *key);
  }
  return CityKeyring(std::move(keys));
}

absl::StatusOr<CityKeyring> CityKeyring::FromFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("city key file ", path, ": cannot open"));
  std::stringstream text;
  text << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat("city key file ", path, ": read failed"));
  return FromText(text.str(), path);
}

absl::StatusOr<CityKeyring> CityKeyring::FromText(absl::string_view text,
                                                  absl::string_view source) {
  std::map<uint32_t, crypto::Sm4Key> keys;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    auto error = [&](absl::string_view what) {
      return absl::InvalidArgumentError(
          absl::StrCat("city key file ", source, ":", line_number, ": ", what));
    };
    size_t comment = line.find('#');
    if (comment != absl::string_view::npos) line = line.substr(0, comment);
    line = absl::StripAsciiWhitespace(line);
    if (line.empty()) continue;
    std::vector<absl::string_view> fields =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (fields.size() != 2) {
      return error("expected \"<city code> <32 hex digits>\"");
    }
    uint32_t city = 0;
    if (fields[0].size() != 6 || !absl::SimpleAtoi(fields[0], &city)) {
      return error("the city code must be six decimal digits");
    }
    if (FindCity(city) == nullptr) {
      return error(absl::StrCat(city, " is not a member city"));
    }
    if (fields[1].size() != 2 * crypto::kSm4KeySize) {
      return error(absl::StrCat("the key of ", city, " must be ", 2 * crypto::kSm4KeySize,
                                " hex digits, got ", fields[1].size()));
    }
    crypto::Sm4Key key;
    for (size_t i = 0; i < key.size(); ++i) {
      int high = HexValue(fields[1][2 * i]);
      int low = HexValue(fields[1][2 * i + 1]);
      if (high < 0 || low < 0) {
        OPENSSL_cleanse(key.data(), key.size());
        return error(absl::StrCat("the key of ", city, " is not hexadecimal"));
      }
      key[i] = static_cast<uint8_t>(high << 4 | low);
    }
    if (!keys.emplace(city, key).second) {
      OPENSSL_cleanse(key.data(), key.size());
      return error(absl::StrCat("a second key for ", city));
    }
    OPENSSL_cleanse(key.data(), key.size());
  }
  if (keys.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("city key file ", source, ": holds no keys"));
  }
  return CityKeyring(std::move(keys));
}

absl::StatusOr<crypto::Sm4Key> CityKeyring::MasterKey(uint32_t city) const {
  auto it = shared_->master_keys.find(city);
  if (it == shared_->master_keys.end()) {
    return absl::NotFoundError(absl::StrCat("no master key for city ", city));
  }
  return it->second;
}

absl::StatusOr<crypto::Sm4Key> CityKeyring::TerminalKey(uint32_t city,
                                                        absl::string_view terminal_id) const {
  auto master = shared_->master_keys.find(city);
  if (master == shared_->master_keys.end()) {
    return absl::NotFoundError(absl::StrCat("no master key for city ", city));
  }
  std::string cache_key = CacheKey(city, terminal_id);
  Shared::Shard& shard = shared_->shards[absl::Hash<std::string>()(cache_key) % kCacheShards];
  {
    absl::MutexLock lock(&shard.mu);
    auto it = shard.keys.find(cache_key);
    if (it != shard.keys.end()) return it->second;
  }
  // Derive outside the lock: two threads may derive the same key at once, which is harmless.
  absl::StatusOr<crypto::Sm4Key> key = crypto::DeriveTerminalKey(master->second, terminal_id);
  if (!key.ok()) return key.status();
  absl::MutexLock lock(&shard.mu);
  if (shard.keys.size() >= kCacheShardSizeMax) {
    // A full shard starts over: simpler than LRU, and a live working set refills it at once.
    for (auto& [id, cached] : shard.keys) OPENSSL_cleanse(cached.data(), cached.size());
    shard.keys.clear();
  }
  shard.keys.emplace(std::move(cache_key), *key);
  return key;
}

std::vector<uint32_t> CityKeyring::Cities() const {
  std::vector<uint32_t> cities;
  cities.reserve(shared_->master_keys.size());
  for (const auto& [city, key] : shared_->master_keys) cities.push_back(city);
  return cities;
}

std::vector<uint32_t> CityKeyring::CitiesWithDevKeys() const {
  std::vector<uint32_t> cities;
  for (const auto& [city, key] : shared_->master_keys) {
    absl::StatusOr<crypto::Sm4Key> dev = DevCityMasterKey(city);
    // Constant time: the key compared is a secret (the dev key is public).
    if (dev.ok() && CRYPTO_memcmp(dev->data(), key.data(), key.size()) == 0) {
      cities.push_back(city);
    }
  }
  return cities;
}

}  // namespace tongka::txn
