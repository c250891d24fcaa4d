#include "libs/crypto/sm4_lanes.h"

#include <cpuid.h>
#include <glog/logging.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <numeric>
#include <vector>

#include "libs/crypto/sm4_lanes_kernels.h"

namespace tongka::crypto {
namespace {

uint64_t Xcr0() {
  uint32_t low = 0, high = 0;
  __asm__("xgetbv" : "=a"(low), "=d"(high) : "c"(0));
  return (uint64_t{high} << 32) | low;
}

// What this CPU and OS can run. Each kernel is built for a fixed set of instructions
// (sm4_lanes_kernels.h); a CPU or VM missing any of them, or an OS not saving their registers
// (XCR0: SSE and AVX state for both, plus the opmask and upper ZMM state for AVX-512), runs the
// next kernel, or OpenSSL.
struct Support {
  bool aesni_avx = false;
  bool gfni_avx512 = false;
};

Support Detect() {
  Support support;
  unsigned int eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid(1, &eax, &ebx, &ecx, &edx) == 0) return support;
  // The AES-NI kernel is built for "aes,avx" (AVX's three-operand forms of the SSE instructions).
  constexpr unsigned int kAesNiNeeded = bit_AES | bit_SSSE3 | bit_AVX | bit_OSXSAVE;
  if ((ecx & kAesNiNeeded) != kAesNiNeeded) return support;
  const uint64_t xcr0 = Xcr0();
  support.aesni_avx = (xcr0 & 0x6) == 0x6;
  if (__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) == 0) return support;
  constexpr unsigned int kAvx512Needed = bit_AVX512F | bit_AVX512BW | bit_AVX2;
  support.gfni_avx512 =
      (ebx & kAvx512Needed) == kAvx512Needed && (ecx & bit_GFNI) != 0 && (xcr0 & 0xe6) == 0xe6;
  return support;
}

const Support& CpuSupport() {
  static const Support support = Detect();
  return support;
}

// The kernel Sm4CmacLanes uses; Sm4LanesSupported() must hold.
internal::Sm4LanesIsa BestIsa() {
  if (internal::Sm4LanesIsaSupported(internal::Sm4LanesIsa::kGfniAvx512) &&
      !internal::sm4_gfni_disabled_for_testing.load(std::memory_order_relaxed)) {
    return internal::Sm4LanesIsa::kGfniAvx512;
  }
  return internal::Sm4LanesIsa::kAesNiAvx;
}

}  // namespace

bool Sm4LanesSupported() {
  return CpuSupport().aesni_avx &&
         !internal::sm4_lanes_disabled_for_testing.load(std::memory_order_relaxed);
}

absl::string_view Sm4LanesIsaName() {
  if (!Sm4LanesSupported()) return "none";
  return BestIsa() == internal::Sm4LanesIsa::kGfniAvx512 ? "gfni-avx512" : "aesni-avx";
}

void Sm4CmacLanes(absl::Span<const Sm4Key* const> keys,
                  absl::Span<const absl::string_view> messages, absl::Span<Sm4Mac> tags) {
  CHECK(Sm4LanesSupported()) << "Sm4CmacLanes needs AES-NI and AVX";
  internal::Sm4CmacLanesWith(BestIsa(), keys, messages, tags);
}

namespace internal {
std::atomic<bool> sm4_lanes_disabled_for_testing{false};
std::atomic<bool> sm4_gfni_disabled_for_testing{false};

bool Sm4LanesIsaSupported(Sm4LanesIsa isa) {
  const Support& support = CpuSupport();
  // The GFNI kernel also needs the AES-NI one's state (SSE, AVX) saved, which its check implies.
  return isa == Sm4LanesIsa::kGfniAvx512 ? support.aesni_avx && support.gfni_avx512
                                         : support.aesni_avx;
}

void Sm4CmacLanesWith(Sm4LanesIsa isa, absl::Span<const Sm4Key* const> keys,
                      absl::Span<const absl::string_view> messages, absl::Span<Sm4Mac> tags) {
  CHECK(Sm4LanesIsaSupported(isa)) << "this CPU cannot run SM4 lanes kernel " << int(isa);
  CHECK_EQ(keys.size(), messages.size());
  CHECK_EQ(keys.size(), tags.size());
  const bool gfni = isa == Sm4LanesIsa::kGfniAvx512;
  const int width = gfni ? kSm4GfniLanes : kSm4AesNiLanes;
  const auto group = gfni ? &Sm4MacGroupGfni : &Sm4MacGroupAesNi;
  const size_t n = keys.size();
  // Messages of the same block count share a group, so no lane idles (ingest's are nearly all
  // the same length anyway).
  std::vector<uint32_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&messages](uint32_t a, uint32_t b) {
    return internal::Sm4CmacBlockCount(messages[a].size()) <
           internal::Sm4CmacBlockCount(messages[b].size());
  });
  constexpr int kLanesMax = std::max(kSm4GfniLanes, kSm4AesNiLanes);
  const uint8_t* group_keys[kLanesMax];
  const uint8_t* group_messages[kLanesMax];
  size_t group_lengths[kLanesMax];
  uint8_t group_tags[kLanesMax][16];
  for (size_t first = 0; first < n; first += width) {
    const int count = static_cast<int>(std::min<size_t>(width, n - first));
    for (int j = 0; j < count; ++j) {
      const uint32_t i = order[first + j];
      group_keys[j] = keys[i]->data();
      group_messages[j] = reinterpret_cast<const uint8_t*>(messages[i].data());
      group_lengths[j] = messages[i].size();
    }
    group(group_keys, group_messages, group_lengths, count, group_tags);
    for (int j = 0; j < count; ++j) {
      std::copy(std::begin(group_tags[j]), std::end(group_tags[j]), tags[order[first + j]].begin());
    }
  }
}

void Sm4SubBytesLanes(Sm4LanesIsa isa, const uint8_t in[16], uint8_t out[16]) {
  CHECK(Sm4LanesIsaSupported(isa));
  if (isa == Sm4LanesIsa::kGfniAvx512) {
    Sm4SubBytesGfni(in, out);
  } else {
    Sm4SubBytesAesNi(in, out);
  }
}
}  // namespace internal

}  // namespace tongka::crypto
