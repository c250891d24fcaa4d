#include "libs/crypto/sm4_lanes.h"

#include <cpuid.h>
#include <glog/logging.h>
#include <immintrin.h>
#include <openssl/crypto.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <vector>

namespace tongka::crypto {
namespace {

// Eight lanes: two registers of four lanes each, interleaved so that one register's AESENCLAST
// and shuffles overlap the other's.
constexpr int kSets = 2;
constexpr int kLanes = 4 * kSets;

// The affine maps around AES's S-box, as nibble tables: f(x) = lo[x & 15] ^ hi[x >> 4].
// Derivation (GF(2^8) elements as bytes, bit i the coefficient of x^i):
//   SM4's S-box is S(x) = A * inv(A * x + 0xd3) + 0xd3, inversion modulo
//   x^8+x^7+x^6+x^5+x^4+x^2+1, A the circulant bit matrix of SM4's affine map. T, the field
//   isomorphism sending x to a root of that polynomial in AES's field (modulo
//   x^8+x^4+x^3+x+1), turns SM4's inversion into AES's: inv_sm4(z) = T^-1 inv_aes(T z). AES's
//   S-box is S_aes(y) = B * inv_aes(y) + 0x63. Hence
//     Pre(x)  = T (A x + 0xd3)
//     Post(z) = A T^-1 B^-1 (z + 0x63) + 0xd3
//   and S(x) = Post(S_aes(Pre(x))). sm4_lanes_test checks all 256 outputs of this against the
//   S-box of GB/T 32907 computed from its definition.
alignas(16) constexpr uint8_t kPreLo[16] = {0x3e, 0xb2, 0x0e, 0x82, 0xbb, 0x37, 0x8b, 0x07,
                                            0xa1, 0x2d, 0x91, 0x1d, 0x24, 0xa8, 0x14, 0x98};
alignas(16) constexpr uint8_t kPreHi[16] = {0x00, 0xdc, 0x2e, 0xf2, 0xc5, 0x19, 0xeb, 0x37,
                                            0x08, 0xd4, 0x26, 0xfa, 0xcd, 0x11, 0xe3, 0x3f};
alignas(16) constexpr uint8_t kPostLo[16] = {0x6c, 0xd4, 0xa6, 0x1e, 0x52, 0xea, 0x98, 0x20,
                                             0x0b, 0xb3, 0xc1, 0x79, 0x35, 0x8d, 0xff, 0x47};
alignas(16) constexpr uint8_t kPostHi[16] = {0x00, 0xe0, 0x50, 0xb0, 0x9d, 0x7d, 0xcd, 0x2d,
                                             0xc0, 0x20, 0x90, 0x70, 0x5d, 0xbd, 0x0d, 0xed};
// AESENCLAST applies ShiftRows before SubBytes; shuffling by InvShiftRows first leaves every
// byte where it was.
alignas(16) constexpr uint8_t kInvShiftRows[16] = {0, 13, 10, 7,  4,  1, 14, 11,
                                                   8, 5,  2,  15, 12, 9, 6,  3};
// Byte shuffles of each 32-bit lane: rotations left by 8, 16 and 24 bits, and the byte swap
// between SM4's big-endian words and the lanes' native ones.
alignas(16) constexpr uint8_t kRotl8[16] = {3, 0, 1, 2, 7, 4, 5, 6, 11, 8, 9, 10, 15, 12, 13, 14};
alignas(16) constexpr uint8_t kRotl16[16] = {2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13};
alignas(16) constexpr uint8_t kRotl24[16] = {1, 2, 3, 0, 5, 6, 7, 4, 9, 10, 11, 8, 13, 14, 15, 12};
alignas(16) constexpr uint8_t kByteSwap[16] = {3,  2,  1, 0, 7,  6,  5,  4,
                                               11, 10, 9, 8, 15, 14, 13, 12};

// GB/T 32907 7.3: the system parameter FK and the fixed parameters CK (byte j of CK_i is
// (4i + j) * 7 mod 256, big-endian).
constexpr uint32_t kFk[4] = {0xa3b1bac6, 0x56aa3350, 0x677d9197, 0xb27022dc};
constexpr std::array<uint32_t, 32> kCk = [] {
  std::array<uint32_t, 32> ck{};
  for (int i = 0; i < 32; ++i) {
    for (int j = 0; j < 4; ++j) ck[i] = (ck[i] << 8) | (((4 * i + j) * 7) & 0xff);
  }
  return ck;
}();

#define TONGKA_SM4_TARGET __attribute__((target("aes,avx")))
#define TONGKA_SM4_INLINE TONGKA_SM4_TARGET __attribute__((always_inline)) inline

TONGKA_SM4_INLINE __m128i Load(const uint8_t* table) {
  return _mm_load_si128(reinterpret_cast<const __m128i*>(table));
}

TONGKA_SM4_INLINE __m128i Rotl(__m128i x, int n) {
  return _mm_or_si128(_mm_slli_epi32(x, n), _mm_srli_epi32(x, 32 - n));
}

TONGKA_SM4_INLINE __m128i Affine(__m128i x, __m128i lo_table, __m128i hi_table) {
  const __m128i nibble = _mm_set1_epi8(0x0f);
  const __m128i lo = _mm_and_si128(x, nibble);
  const __m128i hi = _mm_and_si128(_mm_srli_epi32(x, 4), nibble);
  return _mm_xor_si128(_mm_shuffle_epi8(lo_table, lo), _mm_shuffle_epi8(hi_table, hi));
}

// SM4's S-box on each of the 16 bytes.
TONGKA_SM4_INLINE __m128i SubBytes(__m128i x) {
  x = Affine(x, Load(kPreLo), Load(kPreHi));
  x = _mm_shuffle_epi8(x, Load(kInvShiftRows));
  x = _mm_aesenclast_si128(x, _mm_setzero_si128());
  return Affine(x, Load(kPostLo), Load(kPostHi));
}

// The round's T = L(S(.)): L(B) = B ^ (B <<< 2) ^ (B <<< 10) ^ (B <<< 18) ^ (B <<< 24), written
// as B ^ (B <<< 24) ^ ((B ^ (B <<< 8) ^ (B <<< 16)) <<< 2).
TONGKA_SM4_INLINE __m128i RoundT(__m128i x) {
  const __m128i b = SubBytes(x);
  const __m128i r = _mm_xor_si128(_mm_xor_si128(b, _mm_shuffle_epi8(b, Load(kRotl8))),
                                  _mm_shuffle_epi8(b, Load(kRotl16)));
  return _mm_xor_si128(_mm_xor_si128(b, _mm_shuffle_epi8(b, Load(kRotl24))), Rotl(r, 2));
}

// The key schedule's T' = L'(S(.)): L'(B) = B ^ (B <<< 13) ^ (B <<< 23).
TONGKA_SM4_INLINE __m128i KeyT(__m128i x) {
  const __m128i b = SubBytes(x);
  return _mm_xor_si128(_mm_xor_si128(b, Rotl(b, 13)), Rotl(b, 23));
}

// rows[j] holds the four words of lane j; afterwards rows[w] holds word w of the four lanes.
// Its own inverse.
TONGKA_SM4_INLINE void Transpose(__m128i* rows) {
  const __m128i t0 = _mm_unpacklo_epi32(rows[0], rows[1]);
  const __m128i t1 = _mm_unpacklo_epi32(rows[2], rows[3]);
  const __m128i t2 = _mm_unpackhi_epi32(rows[0], rows[1]);
  const __m128i t3 = _mm_unpackhi_epi32(rows[2], rows[3]);
  rows[0] = _mm_unpacklo_epi64(t0, t1);
  rows[1] = _mm_unpackhi_epi64(t0, t1);
  rows[2] = _mm_unpacklo_epi64(t2, t3);
  rows[3] = _mm_unpackhi_epi64(t2, t3);
}

// Four 16-byte blocks (one per lane) into word-sliced form: x[w] = word w of each lane.
TONGKA_SM4_INLINE void LoadSliced(const uint8_t* const* blocks, __m128i* x) {
  for (int j = 0; j < 4; ++j) {
    x[j] = _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blocks[j])),
                            Load(kByteSwap));
  }
  Transpose(x);
}

// The inverse of LoadSliced: block j = lane j's words x[0..3].
TONGKA_SM4_INLINE void StoreSliced(const __m128i* x, uint8_t (*blocks)[16]) {
  __m128i rows[4] = {x[0], x[1], x[2], x[3]};
  Transpose(rows);
  for (int j = 0; j < 4; ++j) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(blocks[j]),
                     _mm_shuffle_epi8(rows[j], Load(kByteSwap)));
  }
}

// Rounds i of every set, word W updated from the other three (W, W+1, W+2, W+3 mod 4 are the
// round's X0..X3): compile-time word indices keep the state in registers.
template <int W>
TONGKA_SM4_INLINE void KeyRound(__m128i (&k)[kSets][4], __m128i (*rk)[32], int i) {
  const __m128i ck = _mm_set1_epi32(static_cast<int>(kCk[i]));
#pragma GCC unroll 4
  for (int s = 0; s < kSets; ++s) {
    const __m128i t = _mm_xor_si128(_mm_xor_si128(k[s][(W + 1) % 4], k[s][(W + 2) % 4]),
                                    _mm_xor_si128(k[s][(W + 3) % 4], ck));
    k[s][W] = _mm_xor_si128(k[s][W], KeyT(t));
    rk[s][i] = k[s][W];
  }
}

template <int W>
TONGKA_SM4_INLINE void CipherRound(__m128i (&x)[kSets][4], const __m128i (*rk)[32], int i) {
#pragma GCC unroll 4
  for (int s = 0; s < kSets; ++s) {
    const __m128i t = _mm_xor_si128(_mm_xor_si128(x[s][(W + 1) % 4], x[s][(W + 2) % 4]),
                                    _mm_xor_si128(x[s][(W + 3) % 4], rk[s][i]));
    x[s][W] = _mm_xor_si128(x[s][W], RoundT(t));
  }
}

// The round keys of each set's four lanes: rk[s][i] = round key i of those lanes (GB/T 32907
// 7.3), from their sliced keys.
TONGKA_SM4_INLINE void ExpandKeys(const __m128i (*key)[4], __m128i (*rk)[32]) {
  __m128i k[kSets][4];
#pragma GCC unroll 4
  for (int s = 0; s < kSets; ++s) {
#pragma GCC unroll 4
    for (int w = 0; w < 4; ++w) k[s][w] = _mm_xor_si128(key[s][w], _mm_set1_epi32(kFk[w]));
  }
  for (int i = 0; i < 32; i += 4) {
    KeyRound<0>(k, rk, i);
    KeyRound<1>(k, rk, i + 1);
    KeyRound<2>(k, rk, i + 2);
    KeyRound<3>(k, rk, i + 3);
  }
  OPENSSL_cleanse(k, sizeof(k));
}

// One SM4 encryption in every lane: x = E(x), sliced words in and out.
TONGKA_SM4_INLINE void Encrypt(const __m128i (*rk)[32], __m128i (*state)[4]) {
  __m128i x[kSets][4];
#pragma GCC unroll 4
  for (int s = 0; s < kSets; ++s) {
#pragma GCC unroll 4
    for (int w = 0; w < 4; ++w) x[s][w] = state[s][w];
  }
  for (int i = 0; i < 32; i += 4) {
    CipherRound<0>(x, rk, i);
    CipherRound<1>(x, rk, i + 1);
    CipherRound<2>(x, rk, i + 2);
    CipherRound<3>(x, rk, i + 3);
  }
  // The output is (X35, X34, X33, X32): the four words in reverse order.
#pragma GCC unroll 4
  for (int s = 0; s < kSets; ++s) {
#pragma GCC unroll 4
    for (int w = 0; w < 4; ++w) state[s][w] = x[s][3 - w];
  }
}

// CMAC's subkey doubling: the block as a 128-bit big-endian number, times x in GF(2^128).
void Double(const uint8_t in[16], uint8_t out[16]) {
  const uint8_t carry = in[0] >> 7;
  for (int i = 0; i < 15; ++i) out[i] = static_cast<uint8_t>((in[i] << 1) | (in[i + 1] >> 7));
  // L is secret: the carry masks the constant instead of choosing it by a branch.
  out[15] = static_cast<uint8_t>((in[15] << 1) ^ (0x87 & (0 - carry)));
}

size_t BlockCount(size_t length) { return length == 0 ? 1 : (length + 15) / 16; }

// What one lane works on, wiped when the group is done.
struct Lane {
  const uint8_t* key = nullptr;
  const uint8_t* message = nullptr;
  size_t blocks = 1;
  uint8_t last[16] = {};       // the final block, padded and masked with its subkey
  uint8_t subkey[3][16] = {};  // L = E(0), K1, K2
};

// The MACs of up to kLanes messages (lanes beyond `count` run on a zero key and are dropped).
TONGKA_SM4_TARGET void MacGroup(const Sm4Key* const* keys, const absl::string_view* messages,
                                int count, Sm4Mac* tags) {
  static const uint8_t kZero[16] = {};
  Lane lanes[kLanes];
  size_t blocks_max = 1;
  for (int j = 0; j < kLanes; ++j) {
    if (j >= count) {
      lanes[j].key = kZero;
      lanes[j].message = kZero;
      continue;
    }
    lanes[j].key = keys[j]->data();
    lanes[j].message = reinterpret_cast<const uint8_t*>(messages[j].data());
    lanes[j].blocks = BlockCount(messages[j].size());
    blocks_max = std::max(blocks_max, lanes[j].blocks);
  }

  __m128i key[kSets][4];
  __m128i rk[kSets][32];
  __m128i x[kSets][4];
  for (int s = 0; s < kSets; ++s) {
    const uint8_t* key_blocks[4];
    for (int j = 0; j < 4; ++j) key_blocks[j] = lanes[4 * s + j].key;
    LoadSliced(key_blocks, key[s]);
  }
  ExpandKeys(key, rk);

  // The subkeys: L = E_K(0), K1 = 2L, K2 = 4L (SP 800-38B 6.1).
  for (int s = 0; s < kSets; ++s) {
    for (int w = 0; w < 4; ++w) x[s][w] = _mm_setzero_si128();
  }
  Encrypt(rk, x);
  for (int s = 0; s < kSets; ++s) {
    uint8_t l[4][16];
    StoreSliced(x[s], l);
    for (int j = 0; j < 4; ++j) {
      Lane& lane = lanes[4 * s + j];
      std::memcpy(lane.subkey[0], l[j], 16);
      Double(lane.subkey[0], lane.subkey[1]);
      Double(lane.subkey[1], lane.subkey[2]);
    }
    OPENSSL_cleanse(l, sizeof(l));
  }
  // The final blocks: a complete one masked with K1, else padded with 0x80 0x00... and masked
  // with K2 (SP 800-38B 6.2).
  for (int j = 0; j < count; ++j) {
    Lane& lane = lanes[j];
    const size_t length = messages[j].size();
    const size_t tail = length - (lane.blocks - 1) * 16;
    if (tail > 0) std::memcpy(lane.last, lane.message + (lane.blocks - 1) * 16, tail);
    const uint8_t* mask = lane.subkey[1];
    if (tail < 16) {
      lane.last[tail] = 0x80;
      mask = lane.subkey[2];
    }
    for (int b = 0; b < 16; ++b) lane.last[b] ^= mask[b];
  }

  // The CBC chain, every lane one block per step; a lane whose message is done idles on zeros
  // and its tag is taken after its own last block.
  for (int s = 0; s < kSets; ++s) {
    for (int w = 0; w < 4; ++w) x[s][w] = _mm_setzero_si128();
  }
  for (size_t b = 0; b < blocks_max; ++b) {
    bool finishing = false;
    for (int s = 0; s < kSets; ++s) {
      const uint8_t* in[4];
      for (int j = 0; j < 4; ++j) {
        const Lane& lane = lanes[4 * s + j];
        in[j] = b + 1 < lane.blocks    ? lane.message + 16 * b
                : b + 1 == lane.blocks ? lane.last
                                       : kZero;
        finishing |= b + 1 == lane.blocks && 4 * s + j < count;
      }
      __m128i m[4];
      LoadSliced(in, m);
      for (int w = 0; w < 4; ++w) x[s][w] = _mm_xor_si128(x[s][w], m[w]);
    }
    Encrypt(rk, x);
    if (!finishing) continue;
    for (int s = 0; s < kSets; ++s) {
      uint8_t out[4][16];
      StoreSliced(x[s], out);
      for (int j = 0; j < 4; ++j) {
        const int lane = 4 * s + j;
        if (lane < count && b + 1 == lanes[lane].blocks) std::memcpy(tags[lane].data(), out[j], 16);
      }
    }
  }

  OPENSSL_cleanse(lanes, sizeof(lanes));
  OPENSSL_cleanse(key, sizeof(key));
  OPENSSL_cleanse(rk, sizeof(rk));
  OPENSSL_cleanse(x, sizeof(x));
}

TONGKA_SM4_TARGET void SubBytesOnce(const uint8_t in[16], uint8_t out[16]) {
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out),
                   SubBytes(_mm_loadu_si128(reinterpret_cast<const __m128i*>(in))));
}

// AES-NI and AVX (the lanes are built for "aes,avx": AVX's three-operand forms of the SSE
// instructions), with the OS saving the AVX registers (OSXSAVE, and XCR0 enabling the SSE and AVX
// state): a CPU or VM without any of these runs OpenSSL instead.
bool DetectSupport() {
  unsigned int eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid(1, &eax, &ebx, &ecx, &edx) == 0) return false;
  constexpr unsigned int kNeeded = bit_AES | bit_SSSE3 | bit_AVX | bit_OSXSAVE;
  if ((ecx & kNeeded) != kNeeded) return false;
  uint32_t xcr0_low = 0, xcr0_high = 0;
  __asm__("xgetbv" : "=a"(xcr0_low), "=d"(xcr0_high) : "c"(0));
  return (xcr0_low & 0x6) == 0x6;
}

}  // namespace

bool Sm4LanesSupported() {
  static const bool supported = DetectSupport();
  return supported && !internal::sm4_lanes_disabled_for_testing.load(std::memory_order_relaxed);
}

void Sm4CmacLanes(absl::Span<const Sm4Key* const> keys,
                  absl::Span<const absl::string_view> messages, absl::Span<Sm4Mac> tags) {
  CHECK(Sm4LanesSupported()) << "Sm4CmacLanes needs AES-NI and AVX";
  CHECK_EQ(keys.size(), messages.size());
  CHECK_EQ(keys.size(), tags.size());
  const size_t n = keys.size();
  // Messages of the same block count share a group, so no lane idles (ingest's are nearly all
  // the same length anyway).
  std::vector<uint32_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&messages](uint32_t a, uint32_t b) {
    return BlockCount(messages[a].size()) < BlockCount(messages[b].size());
  });
  for (size_t first = 0; first < n; first += kLanes) {
    const int count = static_cast<int>(std::min<size_t>(kLanes, n - first));
    const Sm4Key* group_keys[kLanes];
    absl::string_view group_messages[kLanes];
    Sm4Mac group_tags[kLanes];
    for (int j = 0; j < count; ++j) {
      group_keys[j] = keys[order[first + j]];
      group_messages[j] = messages[order[first + j]];
    }
    MacGroup(group_keys, group_messages, count, group_tags);
    for (int j = 0; j < count; ++j) tags[order[first + j]] = group_tags[j];
  }
}

namespace internal {
std::atomic<bool> sm4_lanes_disabled_for_testing{false};

void Sm4SubBytesLanes(const uint8_t in[16], uint8_t out[16]) {
  CHECK(Sm4LanesSupported());
  SubBytesOnce(in, out);
}
}  // namespace internal

}  // namespace tongka::crypto
