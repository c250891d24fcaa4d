// The GFNI kernel of Sm4CmacLanes: sixteen lanes to a 512-bit register, SM4's S-box as two
// GF(2^8) affine instructions, rotations and three-way XORs as single instructions. Compiled with
// -mavx512f -mavx512bw -mgfni; called only where sm4_lanes.cc found all three and the OS saving
// the AVX-512 state (see sm4_lanes_kernels.h).
//
// The S-box: SM4's is S(x) = A * inv_sm4(A * x + 0xd3) + 0xd3 (sm4_lanes_aesni.cc has the
// notation), and inv_sm4(z) = T^-1 inv_aes(T z) for the field isomorphism T. GF2P8AFFINEQB
// computes M x + c for an 8x8 bit matrix M; GF2P8AFFINEINVQB computes M inv_aes(x) + c. So
//   S(x) = GF2P8AFFINEINVQB(GF2P8AFFINEQB(x, T A, T 0xd3), A T^-1, 0xd3),
// with the matrices in the instructions' layout (byte 7 - i of the quadword is the row giving
// output bit i) below. sm4_lanes_test checks all 256 outputs against the S-box of GB/T 32907
// computed from its definition.
#include <immintrin.h>

#include "libs/crypto/sm4_lanes_kernel.inc"
#include "libs/crypto/sm4_lanes_kernels.h"

namespace tongka::crypto::internal {
namespace {

constexpr long long kPreMatrix = 0x4c287db91a22505d;                           // T A
constexpr int kPreConstant = 0x3e;                                             // T 0xd3
constexpr long long kPostMatrix = static_cast<long long>(0xf3ab34a974a6b589);  // A T^-1
constexpr int kPostConstant = 0xd3;

// The byte swap between SM4's big-endian words and the lanes' native ones, per 128-bit lane.
alignas(16) constexpr uint8_t kByteSwap[16] = {3,  2,  1, 0, 7,  6,  5,  4,
                                               11, 10, 9, 8, 15, 14, 13, 12};

struct Gfni {
  using V = __m512i;
  static constexpr int kWidth = 16;

  static TONGKA_SM4_INLINE V Zero() { return _mm512_setzero_si512(); }
  static TONGKA_SM4_INLINE V Set1(uint32_t word) {
    return _mm512_set1_epi32(static_cast<int>(word));
  }
  static TONGKA_SM4_INLINE V Xor(V a, V b) { return _mm512_xor_si512(a, b); }
  // 0x96 is the truth table of a ^ b ^ c.
  static TONGKA_SM4_INLINE V Xor3(V a, V b, V c) {
    return _mm512_ternarylogic_epi32(a, b, c, 0x96);
  }
  static TONGKA_SM4_INLINE V Xor4(V a, V b, V c, V d) { return Xor(Xor3(a, b, c), d); }

  static TONGKA_SM4_INLINE V SubBytes(V x) {
    x = _mm512_gf2p8affine_epi64_epi8(x, _mm512_set1_epi64(kPreMatrix), kPreConstant);
    return _mm512_gf2p8affineinv_epi64_epi8(x, _mm512_set1_epi64(kPostMatrix), kPostConstant);
  }

  // L(B) = B ^ (B <<< 2) ^ (B <<< 10) ^ (B <<< 18) ^ (B <<< 24).
  static TONGKA_SM4_INLINE V RoundT(V x) {
    const V b = SubBytes(x);
    return Xor3(Xor3(b, _mm512_rol_epi32(b, 2), _mm512_rol_epi32(b, 10)), _mm512_rol_epi32(b, 18),
                _mm512_rol_epi32(b, 24));
  }

  // L'(B) = B ^ (B <<< 13) ^ (B <<< 23).
  static TONGKA_SM4_INLINE V KeyT(V x) {
    const V b = SubBytes(x);
    return Xor3(b, _mm512_rol_epi32(b, 13), _mm512_rol_epi32(b, 23));
  }

  // Within each 128-bit lane q: rows[j] holds the four words of lane 4q + j; afterwards rows[w]
  // holds word w of lanes 4q..4q+3. Its own inverse.
  static TONGKA_SM4_INLINE void Transpose(V* rows) {
    const V t0 = _mm512_unpacklo_epi32(rows[0], rows[1]);
    const V t1 = _mm512_unpacklo_epi32(rows[2], rows[3]);
    const V t2 = _mm512_unpackhi_epi32(rows[0], rows[1]);
    const V t3 = _mm512_unpackhi_epi32(rows[2], rows[3]);
    rows[0] = _mm512_unpacklo_epi64(t0, t1);
    rows[1] = _mm512_unpackhi_epi64(t0, t1);
    rows[2] = _mm512_unpacklo_epi64(t2, t3);
    rows[3] = _mm512_unpackhi_epi64(t2, t3);
  }

  static TONGKA_SM4_INLINE __m128i LoadBlock(const uint8_t* block) {
    return _mm_loadu_si128(reinterpret_cast<const __m128i*>(block));
  }

  // Lane 4q + j's block goes to 128-bit lane q of rows[j].
  static TONGKA_SM4_INLINE void LoadSliced(const uint8_t* const* blocks, V* x) {
    const V swap = _mm512_broadcast_i32x4(LoadBlock(kByteSwap));
    for (int j = 0; j < 4; ++j) {
      V row = _mm512_castsi128_si512(LoadBlock(blocks[j]));
      row = _mm512_inserti32x4(row, LoadBlock(blocks[4 + j]), 1);
      row = _mm512_inserti32x4(row, LoadBlock(blocks[8 + j]), 2);
      row = _mm512_inserti32x4(row, LoadBlock(blocks[12 + j]), 3);
      x[j] = _mm512_shuffle_epi8(row, swap);
    }
    Transpose(x);
  }

  static TONGKA_SM4_INLINE void StoreBlock(__m128i block, uint8_t* out) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out), block);
  }

  static TONGKA_SM4_INLINE void StoreSliced(const V* x, uint8_t (*blocks)[16]) {
    const V swap = _mm512_broadcast_i32x4(LoadBlock(kByteSwap));
    V rows[4] = {x[0], x[1], x[2], x[3]};
    Transpose(rows);
    for (int j = 0; j < 4; ++j) {
      const V row = _mm512_shuffle_epi8(rows[j], swap);
      StoreBlock(_mm512_castsi512_si128(row), blocks[j]);
      StoreBlock(_mm512_extracti32x4_epi32(row, 1), blocks[4 + j]);
      StoreBlock(_mm512_extracti32x4_epi32(row, 2), blocks[8 + j]);
      StoreBlock(_mm512_extracti32x4_epi32(row, 3), blocks[12 + j]);
    }
  }
};

}  // namespace

static_assert(Sm4Group<Gfni, 2>::kLanes == kSm4GfniLanes);

void Sm4MacGroupGfni(const uint8_t* const* keys, const uint8_t* const* messages,
                     const size_t* lengths, int count, uint8_t (*tags)[16]) {
  Sm4Group<Gfni, 2>::MacGroup(keys, messages, lengths, count, tags);
}

void Sm4SubBytesGfni(const uint8_t* in, uint8_t* out) {
  const __m512i x = _mm512_castsi128_si512(Gfni::LoadBlock(in));
  Gfni::StoreBlock(_mm512_castsi512_si128(Gfni::SubBytes(x)), out);
}

}  // namespace tongka::crypto::internal
