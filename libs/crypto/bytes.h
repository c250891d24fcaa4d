// Fixed-size byte strings used across libs/crypto, and views of them as absl::string_view.
//
// What it is: the array types for digests, keys and MACs, so sizes are checked by the compiler
// instead of at run time, plus helpers to move between them and the std::string / string_view
// bytes that protobuf `bytes` fields and RocksDB keys use.
// Ownership: plain values; a view returned by AsStringView borrows the array it was made from.
// Thread-safety: values; no shared state.
// Failure behaviour: ArrayFromBytes returns INVALID_ARGUMENT when the length is wrong.
//
// Example:
//   tongka::crypto::Sm3Digest digest = tongka::crypto::Sm3("abc");
//   event.set_holder_token(std::string(tongka::crypto::AsStringView(digest)));
//   absl::StatusOr<tongka::crypto::Sm4Key> key =
//       tongka::crypto::ArrayFromBytes<tongka::crypto::kSm4KeySize>(raw_key_bytes, "city key");
#ifndef TONGKA_LIBS_CRYPTO_BYTES_H_
#define TONGKA_LIBS_CRYPTO_BYTES_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace tongka::crypto {

inline constexpr size_t kSm3DigestSize = 32;
inline constexpr size_t kSm4KeySize = 16;
inline constexpr size_t kSm4BlockSize = 16;

// An SM3 digest or HMAC-SM3 output (256 bits).
using Sm3Digest = std::array<uint8_t, kSm3DigestSize>;
// An SM4 key (128 bits).
using Sm4Key = std::array<uint8_t, kSm4KeySize>;
// An SM4-CMAC tag (one 128-bit block, untruncated).
using Sm4Mac = std::array<uint8_t, kSm4BlockSize>;

// A view of `bytes`; valid as long as `bytes` is.
template <size_t N>
absl::string_view AsStringView(const std::array<uint8_t, N>& bytes) {
  return absl::string_view(reinterpret_cast<const char*>(bytes.data()), N);
}

// Copies `bytes` into an array of exactly N bytes; `what` names the value in the error.
template <size_t N>
absl::StatusOr<std::array<uint8_t, N>> ArrayFromBytes(absl::string_view bytes,
                                                      absl::string_view what) {
  if (bytes.size() != N) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " must be ", N, " bytes, got ", bytes.size()));
  }
  std::array<uint8_t, N> out;
  std::memcpy(out.data(), bytes.data(), N);
  return out;
}

}  // namespace tongka::crypto

#endif  // TONGKA_LIBS_CRYPTO_BYTES_H_
