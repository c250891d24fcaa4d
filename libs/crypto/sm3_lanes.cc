#include "libs/crypto/sm3_lanes.h"

#include <glog/logging.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <cstring>

#include "libs/crypto/sm3.h"

namespace tongka::crypto {
namespace {

// Lanes of kWidth 32-bit words, one per message (GCC vector extension: one register of the
// width the function is built for, or several).
template <int kWidth>
struct LanesOf {
  typedef uint32_t Type __attribute__((vector_size(kWidth * sizeof(uint32_t))));
};

// Sixteen lanes where the CPU has AVX-512 (x86-64-v4: one 512-bit register, rotations and
// three-way boolean functions as single instructions), else eight (AVX2's 256-bit registers;
// sixteen there would spill).
constexpr int kWideLanes = 16;
constexpr int kLanes = 8;
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
template <typename Lanes>
__attribute__((always_inline)) inline Lanes Rotl(Lanes x, int n) {
  return (x << n) | (x >> (32 - n));
}
template <typename Lanes>
__attribute__((always_inline)) inline Lanes P0(Lanes x) {
  return x ^ Rotl(x, 9) ^ Rotl(x, 17);
}
template <typename Lanes>
__attribute__((always_inline)) inline Lanes P1(Lanes x) {
  return x ^ Rotl(x, 15) ^ Rotl(x, 23);
}

// One SM3 compression (GB/T 32905 5.3) in every lane: v = CF(v, block), the block's sixteen
// big-endian words in w[0..15].
template <typename Lanes>
__attribute__((always_inline)) inline void Compress(const Lanes* block_words, Lanes* v) {
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

// The compressions as built: eight lanes for AVX2 where the CPU has it, picked at load time.
// TONGKA_SM3_LANES_BASELINE builds only the baseline (SSE2, eight lanes), so
// sm3_lanes_baseline_test checks that path on any machine. Under ThreadSanitizer the clones'
// resolver would run while the dynamic linker relocates the binary, before TSan's runtime is up,
// and its instrumentation crashes there; TSan gets the baseline (these are single-threaded
// arithmetic, which it has nothing to check in).
#if defined(TONGKA_SM3_LANES_BASELINE) || defined(__SANITIZE_THREAD__)
#define TONGKA_SM3_LANES_TARGETS
#else
#define TONGKA_SM3_LANES_TARGETS __attribute__((target_clones("avx2", "default")))
#endif

using Lanes8 = LanesOf<kLanes>::Type;
TONGKA_SM3_LANES_TARGETS void CompressLanes(const Lanes8* block_words, Lanes8* v) {
  Compress(block_words, v);
}

#ifndef TONGKA_SM3_LANES_BASELINE
using Lanes16 = LanesOf<kWideLanes>::Type;
// Called only where WideLanesSupported().
__attribute__((target("arch=x86-64-v4"))) void CompressWideLanes(const Lanes16* block_words,
                                                                 Lanes16* v) {
  Compress(block_words, v);
}
#endif

bool WideLanesSupported() {
#ifdef TONGKA_SM3_LANES_BASELINE
  return false;
#else
  // libgcc's check includes the OS saving the AVX-512 state (XCR0).
  static const bool supported = __builtin_cpu_supports("x86-64-v4");
  return supported &&
         !internal::sm3_wide_lanes_disabled_for_testing.load(std::memory_order_relaxed);
#endif
}

uint32_t LoadBigEndian(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | uint32_t{p[3]};
}

// Hashes up to kWidth messages of `blocks` padded blocks each (the unused lanes hash nothing
// and are dropped).
template <int kWidth>
void HashGroup(const absl::string_view* messages, Sm3Digest* const* digests, int count,
               int blocks) {
  using Lanes = typename LanesOf<kWidth>::Type;
  DCHECK(blocks >= 1 && blocks <= kSm3LaneBlocksMax);
  const size_t padded = static_cast<size_t>(blocks) * 64;
  uint8_t buffers[kWidth][kSm3LaneBlocksMax * 64] = {};
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
    for (int lane = 0; lane < kWidth; ++lane) v[i][lane] = kInitialValue[i];
  }
  for (int block = 0; block < blocks; ++block) {
    Lanes words[16];
    for (int i = 0; i < 16; ++i) {
      for (int lane = 0; lane < kWidth; ++lane) {
        words[i][lane] = LoadBigEndian(buffers[lane] + 64 * block + 4 * i);
      }
    }
    if constexpr (kWidth == kWideLanes) {
#ifndef TONGKA_SM3_LANES_BASELINE
      CompressWideLanes(words, v);
#else
      LOG(FATAL) << "no wide lanes in the baseline build";
#endif
    } else {
      CompressLanes(words, v);
    }
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

namespace {

template <int kWidth>
void HashMany(absl::Span<const absl::string_view> messages, absl::Span<Sm3Digest> digests) {
  // One group in filling per block count: lanes compress in step, so a group's messages must
  // have the same number of blocks.
  struct Group {
    absl::string_view messages[kWidth];
    Sm3Digest* digests[kWidth];
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
    if (++group.count == kWidth) {
      HashGroup<kWidth>(group.messages, group.digests, group.count, blocks);
      group.count = 0;
    }
  }
  for (int blocks = 1; blocks <= kSm3LaneBlocksMax; ++blocks) {
    Group& group = groups[blocks - 1];
    if (group.count > 0) HashGroup<kWidth>(group.messages, group.digests, group.count, blocks);
  }
}

}  // namespace

void Sm3Many(absl::Span<const absl::string_view> messages, absl::Span<Sm3Digest> digests) {
  CHECK_EQ(messages.size(), digests.size());
  if (WideLanesSupported()) {
    HashMany<kWideLanes>(messages, digests);
  } else {
    HashMany<kLanes>(messages, digests);
  }
}

int Sm3LanesWidth() { return WideLanesSupported() ? kWideLanes : kLanes; }

namespace internal {
std::atomic<bool> sm3_wide_lanes_disabled_for_testing{false};
}  // namespace internal

}  // namespace tongka::crypto
