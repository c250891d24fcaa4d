#include "services/card_registry/holder_keys.h"

#include <openssl/crypto.h>

#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "libs/crypto/sm3.h"
#include "libs/txn/cities.h"

namespace tongka::card_registry {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void Wipe(std::string* secret) {
  if (!secret->empty()) OPENSSL_cleanse(secret->data(), secret->size());
  secret->clear();
}

}  // namespace

HolderKeys::~HolderKeys() {
  for (auto& [city, key] : keys_) Wipe(&key.secret);
}

std::shared_ptr<const HolderKeys> HolderKeys::Empty() {
  return std::shared_ptr<const HolderKeys>(new HolderKeys());
}

absl::StatusOr<std::shared_ptr<const HolderKeys>> HolderKeys::FromFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("holder key file ", path, ": cannot open"));
  std::stringstream text;
  text << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat("holder key file ", path, ": read failed"));
  std::string contents = text.str();
  absl::StatusOr<std::shared_ptr<const HolderKeys>> keys = FromText(contents, path);
  Wipe(&contents);
  return keys;
}

absl::StatusOr<std::shared_ptr<const HolderKeys>> HolderKeys::FromText(absl::string_view text,
                                                                       absl::string_view source) {
  std::shared_ptr<HolderKeys> keys(new HolderKeys());
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    auto error = [&](absl::string_view what) {
      return absl::InvalidArgumentError(
          absl::StrCat("holder key file ", source, ":", line_number, ": ", what));
    };
    const size_t comment = line.find('#');
    if (comment != absl::string_view::npos) line = line.substr(0, comment);
    line = absl::StripAsciiWhitespace(line);
    if (line.empty()) continue;
    std::pair<absl::string_view, absl::string_view> fields =
        absl::StrSplit(line, absl::MaxSplits(':', 1));
    const absl::string_view code = absl::StripAsciiWhitespace(fields.first);
    const absl::string_view hex = absl::StripAsciiWhitespace(fields.second);
    uint32_t city = 0;
    if (code.size() != 6 || !absl::SimpleAtoi(code, &city)) {
      return error("expected \"<six-digit city code>:<hex secret>\"");
    }
    if (txn::FindCity(city) == nullptr) return error(absl::StrCat(city, " is not a member city"));
    if (hex.size() % 2 != 0 || hex.size() < 2 * crypto::HmacSm3Tokenizer::kSecretSizeMin) {
      return error(absl::StrCat("the secret of ", city, " must be an even number of at least ",
                                2 * crypto::HmacSm3Tokenizer::kSecretSizeMin, " hex digits"));
    }
    std::string secret(hex.size() / 2, '\0');
    for (size_t i = 0; i < secret.size(); ++i) {
      const int high = HexValue(hex[2 * i]);
      const int low = HexValue(hex[2 * i + 1]);
      if (high < 0 || low < 0) {
        Wipe(&secret);
        return error(absl::StrCat("the secret of ", city, " is not hexadecimal"));
      }
      secret[i] = static_cast<char>(high << 4 | low);
    }
    if (keys->keys_.count(city) != 0) {
      Wipe(&secret);
      return error(absl::StrCat("a second secret for ", city));
    }
    absl::StatusOr<crypto::HmacSm3Tokenizer> tokenizer = crypto::HmacSm3Tokenizer::Create(secret);
    if (!tokenizer.ok()) {
      Wipe(&secret);
      return error(tokenizer.status().message());
    }
    keys->keys_.emplace(city, Key{*std::move(tokenizer), std::move(secret)});
  }
  if (keys->keys_.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("holder key file ", source, ": holds no keys"));
  }
  return std::shared_ptr<const HolderKeys>(std::move(keys));
}

std::vector<uint32_t> HolderKeys::Cities() const {
  std::vector<uint32_t> cities;
  for (const auto& [city, key] : keys_) cities.push_back(city);
  return cities;
}

absl::StatusOr<const HolderKeys::Key*> HolderKeys::KeyOf(uint32_t city) const {
  auto it = keys_.find(city);
  if (it == keys_.end()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "no_holder_key: the registry holds no holder key for city ", city,
        " (--holder_keys); holder identity and device ids of its cards cannot be tokenized"));
  }
  return &it->second;
}

absl::StatusOr<std::string> HolderKeys::Tokenize(uint32_t city, crypto::IdentifierDomain domain,
                                                 absl::string_view value) const {
  absl::StatusOr<const Key*> key = KeyOf(city);
  if (!key.ok()) return key.status();
  absl::StatusOr<crypto::Sm3Digest> token = (*key)->tokenizer.Tokenize(domain, value);
  if (!token.ok()) return token.status();
  return std::string(crypto::AsStringView(*token));
}

absl::StatusOr<std::string> HolderKeys::DeviceToken(uint32_t city,
                                                    absl::string_view device_id) const {
  if (device_id.empty() || device_id.size() > kDeviceIdSizeMax) {
    return absl::InvalidArgumentError(
        absl::StrCat("device_id_format: a device id is 1..", kDeviceIdSizeMax, " characters"));
  }
  for (char c : device_id) {
    if (c < 0x21 || c > 0x7e) {
      return absl::InvalidArgumentError(
          "device_id_format: a device id is printable ASCII without spaces");
    }
  }
  absl::StatusOr<const Key*> key = KeyOf(city);
  if (!key.ok()) return key.status();
  std::string message(crypto::HmacSm3Tokenizer::kTokenPrefix);
  message.push_back('\0');
  message.append(kDeviceIdLabel.data(), kDeviceIdLabel.size());
  message.push_back('\0');
  message.append(device_id.data(), device_id.size());
  const crypto::Sm3Digest token = crypto::HmacSm3((*key)->secret, message);
  OPENSSL_cleanse(message.data(), message.size());
  return std::string(crypto::AsStringView(token));
}

}  // namespace tongka::card_registry
