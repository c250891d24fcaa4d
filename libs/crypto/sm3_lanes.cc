#include "libs/crypto/sm3_lanes.h"

#include <glog/logging.h>

#include <array>
#include <cstdint>
#include <cstring>

#include "libs/crypto/sm3.h"

namespace tongka::crypto {
namespace {

constexpr int kLanes = 8;

// Eight 32-bit words, one per lane (GCC vector extension: AVX2 registers where built for it).
typedef uint32_t Lanes __attribute__((vector_size(kLanes * sizeof(uint32_t))));

constexpr uint32_t RotlWord(uint32_t x, int n) { return n == 0 ? x : (x << n) | (x >> (32 - n)); }

// T_j <<< (j mod 32), the round constants as the rounds use them (GB/T 32905 5.3.3).
constexpr std::array<uint32_t, 64> kRoundConstants = [] {
  std::array<uint32_t, 64> t{};
  for (int j = 0; j < 64; ++j) t[j] = RotlWord(j < 16 ? 0x79cc4519u : 0x7a879d8au, j % 32);
  return t;
}();

constexpr std::array<uint32_t, 8> kInitialValue = {0x7380166f, 0x4914b2b9, 0x172442d7, 0xda8a0600,
                                                   0xa96f30bc, 0x163138aa, 0xe38dee4d, 0xb0fb0e4e};

// Every rotation below is by 1..31 bits.
__attribute__((always_inline)) inline Lanes Rotl(Lanes x, int n) {
  return (x << n) | (x >> (32 - n));
}
__attribute__((always_inline)) inline Lanes P0(Lanes x) { return x ^ Rotl(x, 9) ^ Rotl(x, 17); }
__attribute__((always_inline)) inline Lanes P1(Lanes x) { return x ^ Rotl(x, 15) ^ Rotl(x, 23); }

// One SM3 compression (GB/T 32905 5.3) in every lane: v = CF(v, block), the block's sixteen
// big-endian words in w[0..15].
// The AVX2 build where the CPU has it, picked at load time. TONGKA_SM3_LANES_BASELINE builds only
// the baseline (SSE2), so sm3_lanes_baseline_test checks that path on AVX2 machines too.
#ifdef TONGKA_SM3_LANES_BASELINE
#define TONGKA_SM3_LANES_TARGETS
#else
#define TONGKA_SM3_LANES_TARGETS __attribute__((target_clones("avx2", "default")))
#endif

TONGKA_SM3_LANES_TARGETS void CompressLanes(const Lanes* block_words, Lanes* v) {
  Lanes w[68];
  for (int i = 0; i < 16; ++i) w[i] = block_words[i];
  for (int i = 16; i < 68; ++i) {
    w[i] = P1(w[i - 16] ^ w[i - 9] ^ Rotl(w[i - 3], 15)) ^ Rotl(w[i - 13], 7) ^ w[i - 6];
  }
  Lanes a = v[0], b = v[1], c = v[2], d = v[3], e = v[4], f = v[5], g = v[6], h = v[7];
  for (int j = 0; j < 64; ++j) {
    const Lanes a12 = Rotl(a, 12);
    const Lanes ss1 = Rotl(a12 + e + kRoundConstants[j], 7);
    const Lanes ss2 = ss1 ^ a12;
    const Lanes ff = j < 16 ? (a ^ b ^ c) : ((a & b) | (a & c) | (b & c));
    const Lanes gg = j < 16 ? (e ^ f ^ g) : ((e & f) | (~e & g));
    const Lanes tt1 = ff + d + ss2 + (w[j] ^ w[j + 4]);
    const Lanes tt2 = gg + h + ss1 + w[j];
    d = c;
    c = Rotl(b, 9);
    b = a;
    a = tt1;
    h = g;
    g = Rotl(f, 19);
    f = e;
    e = P0(tt2);
  }
  v[0] ^= a;
  v[1] ^= b;
  v[2] ^= c;
  v[3] ^= d;
  v[4] ^= e;
  v[5] ^= f;
  v[6] ^= g;
  v[7] ^= h;
}

uint32_t LoadBigEndian(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | uint32_t{p[3]};
}

// Hashes up to kLanes messages of `blocks` padded blocks each (the unused lanes hash nothing
// and are dropped).
void HashGroup(const absl::string_view* messages, Sm3Digest* const* digests, int count,
               int blocks) {
  DCHECK(blocks >= 1 && blocks <= kSm3LaneBlocksMax);
  const size_t padded = static_cast<size_t>(blocks) * 64;
  uint8_t buffers[kLanes][kSm3LaneBlocksMax * 64] = {};
  for (int lane = 0; lane < count; ++lane) {
    const absl::string_view message = messages[lane];
    DCHECK_LE(message.size() + 9, padded);
    uint8_t* buffer = buffers[lane];
    if (!message.empty()) std::memcpy(buffer, message.data(), message.size());
    buffer[message.size()] = 0x80;
    const uint64_t bits = uint64_t{message.size()} * 8;
    for (int i = 0; i < 8; ++i) buffer[padded - 1 - i] = static_cast<uint8_t>(bits >> (8 * i));
  }
  Lanes v[8];
  for (int i = 0; i < 8; ++i) {
    for (int lane = 0; lane < kLanes; ++lane) v[i][lane] = kInitialValue[i];
  }
  for (int block = 0; block < blocks; ++block) {
    Lanes words[16];
    for (int i = 0; i < 16; ++i) {
      for (int lane = 0; lane < kLanes; ++lane) {
        words[i][lane] = LoadBigEndian(buffers[lane] + 64 * block + 4 * i);
      }
    }
    CompressLanes(words, v);
  }
  for (int lane = 0; lane < count; ++lane) {
    Sm3Digest& digest = *digests[lane];
    for (int i = 0; i < 8; ++i) {
      const uint32_t word = v[i][lane];
      digest[4 * i] = static_cast<uint8_t>(word >> 24);
      digest[4 * i + 1] = static_cast<uint8_t>(word >> 16);
      digest[4 * i + 2] = static_cast<uint8_t>(word >> 8);
      digest[4 * i + 3] = static_cast<uint8_t>(word);
    }
  }
}

// The padded blocks of a message: its bytes, 0x80 and the 64-bit length.
int PaddedBlocks(size_t size) { return static_cast<int>((size + 9 + 63) / 64); }

}  // namespace

void Sm3Many(absl::Span<const absl::string_view> messages, absl::Span<Sm3Digest> digests) {
  CHECK_EQ(messages.size(), digests.size());
  // One group in filling per block count: lanes compress in step, so a group's messages must
  // have the same number of blocks.
  struct Group {
    absl::string_view messages[kLanes];
    Sm3Digest* digests[kLanes];
    int count = 0;
  };
  Group groups[kSm3LaneBlocksMax];
  for (size_t i = 0; i < messages.size(); ++i) {
    if (messages[i].size() > kSm3LaneMessageMax) {
      digests[i] = Sm3(messages[i]);
      continue;
    }
    const int blocks = PaddedBlocks(messages[i].size());
    Group& group = groups[blocks - 1];
    group.messages[group.count] = messages[i];
    group.digests[group.count] = &digests[i];
    if (++group.count == kLanes) {
      HashGroup(group.messages, group.digests, group.count, blocks);
      group.count = 0;
    }
  }
  for (int blocks = 1; blocks <= kSm3LaneBlocksMax; ++blocks) {
    Group& group = groups[blocks - 1];
    if (group.count > 0) HashGroup(group.messages, group.digests, group.count, blocks);
  }
}

}  // namespace tongka::crypto
