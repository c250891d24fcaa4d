// The AES-NI kernel of Sm4CmacLanes: SM4's S-box through AESENCLAST, four lanes to a 128-bit
// register. Compiled with -maes -mavx; called only where sm4_lanes.cc found both (see
// sm4_lanes_kernels.h).
//
// The S-box is affine-equivalent to AES's: S_sm4(x) = Post(S_aes(Pre(x))), where Pre and Post
// are affine maps over GF(2) (the isomorphism between SM4's and AES's GF(2^8) composed with SM4's
// own affine maps). Pre and Post are applied with two 16-entry nibble table shuffles each
// (PSHUFB), S_aes with AESENCLAST under a zero round key after undoing its ShiftRows.
#include <immintrin.h>

#include "libs/crypto/sm4_lanes_kernel.inc"
#include "libs/crypto/sm4_lanes_kernels.h"

namespace tongka::crypto::internal {
namespace {

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

struct AesNi {
  using V = __m128i;
  static constexpr int kWidth = 4;

  static TONGKA_SM4_INLINE V Load(const uint8_t* table) {
    return _mm_load_si128(reinterpret_cast<const __m128i*>(table));
  }
  static TONGKA_SM4_INLINE V Zero() { return _mm_setzero_si128(); }
  static TONGKA_SM4_INLINE V Set1(uint32_t word) { return _mm_set1_epi32(static_cast<int>(word)); }
  static TONGKA_SM4_INLINE V Xor(V a, V b) { return _mm_xor_si128(a, b); }
  static TONGKA_SM4_INLINE V Xor4(V a, V b, V c, V d) { return Xor(Xor(a, b), Xor(c, d)); }
  static TONGKA_SM4_INLINE V Rotl(V x, int n) {
    return _mm_or_si128(_mm_slli_epi32(x, n), _mm_srli_epi32(x, 32 - n));
  }

  static TONGKA_SM4_INLINE V Affine(V x, V lo_table, V hi_table) {
    const V nibble = _mm_set1_epi8(0x0f);
    const V lo = _mm_and_si128(x, nibble);
    const V hi = _mm_and_si128(_mm_srli_epi32(x, 4), nibble);
    return Xor(_mm_shuffle_epi8(lo_table, lo), _mm_shuffle_epi8(hi_table, hi));
  }

  // SM4's S-box on each of the 16 bytes.
  static TONGKA_SM4_INLINE V SubBytes(V x) {
    x = Affine(x, Load(kPreLo), Load(kPreHi));
    x = _mm_shuffle_epi8(x, Load(kInvShiftRows));
    x = _mm_aesenclast_si128(x, _mm_setzero_si128());
    return Affine(x, Load(kPostLo), Load(kPostHi));
  }

  // L(B) = B ^ (B <<< 2) ^ (B <<< 10) ^ (B <<< 18) ^ (B <<< 24), written as
  // B ^ (B <<< 24) ^ ((B ^ (B <<< 8) ^ (B <<< 16)) <<< 2).
  static TONGKA_SM4_INLINE V RoundT(V x) {
    const V b = SubBytes(x);
    const V r = Xor(Xor(b, _mm_shuffle_epi8(b, Load(kRotl8))), _mm_shuffle_epi8(b, Load(kRotl16)));
    return Xor(Xor(b, _mm_shuffle_epi8(b, Load(kRotl24))), Rotl(r, 2));
  }

  // L'(B) = B ^ (B <<< 13) ^ (B <<< 23).
  static TONGKA_SM4_INLINE V KeyT(V x) {
    const V b = SubBytes(x);
    return Xor(Xor(b, Rotl(b, 13)), Rotl(b, 23));
  }

  // rows[j] holds the four words of lane j; afterwards rows[w] holds word w of the four lanes.
  // Its own inverse.
  static TONGKA_SM4_INLINE void Transpose(V* rows) {
    const V t0 = _mm_unpacklo_epi32(rows[0], rows[1]);
    const V t1 = _mm_unpacklo_epi32(rows[2], rows[3]);
    const V t2 = _mm_unpackhi_epi32(rows[0], rows[1]);
    const V t3 = _mm_unpackhi_epi32(rows[2], rows[3]);
    rows[0] = _mm_unpacklo_epi64(t0, t1);
    rows[1] = _mm_unpackhi_epi64(t0, t1);
    rows[2] = _mm_unpacklo_epi64(t2, t3);
    rows[3] = _mm_unpackhi_epi64(t2, t3);
  }

  static TONGKA_SM4_INLINE void LoadSliced(const uint8_t* const* blocks, V* x) {
    for (int j = 0; j < 4; ++j) {
      x[j] = _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blocks[j])),
                              Load(kByteSwap));
    }
    Transpose(x);
  }

  static TONGKA_SM4_INLINE void StoreSliced(const V* x, uint8_t (*blocks)[16]) {
    V rows[4] = {x[0], x[1], x[2], x[3]};
    Transpose(rows);
    for (int j = 0; j < 4; ++j) {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(blocks[j]),
                       _mm_shuffle_epi8(rows[j], Load(kByteSwap)));
    }
  }
};

}  // namespace

static_assert(Sm4Group<AesNi, 2>::kLanes == kSm4AesNiLanes);

void Sm4MacGroupAesNi(const uint8_t* const* keys, const uint8_t* const* messages,
                      const size_t* lengths, int count, uint8_t (*tags)[16]) {
  Sm4Group<AesNi, 2>::MacGroup(keys, messages, lengths, count, tags);
}

void Sm4SubBytesAesNi(const uint8_t* in, uint8_t* out) {
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out),
                   AesNi::SubBytes(_mm_loadu_si128(reinterpret_cast<const __m128i*>(in))));
}

}  // namespace tongka::crypto::internal
