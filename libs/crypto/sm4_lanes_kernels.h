// The SIMD kernels behind Sm4CmacLanes (sm4_lanes.h): one group of SM4-CMACs side by side, per
// instruction set. Internal to libs/crypto; callers use Sm4CmacLanes, which picks the kernel the
// CPU can run.
//
// Each kernel lives in a translation unit of its own, compiled for its instruction set
// (sm4_lanes_aesni.cc with -maes -mavx, sm4_lanes_gfni.cc with -mavx512f -mavx512bw -mgfni), and
// holds only the code of sm4_lanes_kernel.inc, all of it with internal linkage, plus the entry
// point below. That keeps instructions of one set out of code another CPU runs: nothing in those
// files is an inline function or template the linker could merge with another file's copy. Call
// a kernel only after sm4_lanes.cc's CPU check for it.
//
// A group: `count` (1..kLanes) messages, message j of lengths[j] bytes under the 16-byte key
// keys[j]; tags[j] receives its SM4-CMAC. Inputs are borrowed; key schedules, subkeys and padded
// blocks are wiped before returning. Thread-safety: pure functions.
#ifndef TONGKA_LIBS_CRYPTO_SM4_LANES_KERNELS_H_
#define TONGKA_LIBS_CRYPTO_SM4_LANES_KERNELS_H_

#include <stddef.h>
#include <stdint.h>

namespace tongka::crypto::internal {

// The CMAC blocks of a message of `length` bytes (an empty message is one padded block): what a
// kernel's lanes step through, and what the dispatcher groups messages by. Internal linkage, as
// everything the kernel files hold.
static constexpr size_t Sm4CmacBlockCount(size_t length) {
  return length == 0 ? 1 : (length + 15) / 16;
}

// AES-NI and AVX: SM4's S-box through AESENCLAST, 4 lanes to a 128-bit register, two registers.
inline constexpr int kSm4AesNiLanes = 8;
void Sm4MacGroupAesNi(const uint8_t* const* keys, const uint8_t* const* messages,
                      const size_t* lengths, int count, uint8_t (*tags)[16]);
// SM4's S-box on the 16 bytes in[0..15], as this kernel computes it.
void Sm4SubBytesAesNi(const uint8_t* in, uint8_t* out);

// AVX-512 (F, BW) and GFNI: the S-box as two GF(2^8) affine instructions, 16 lanes to a 512-bit
// register, two registers.
inline constexpr int kSm4GfniLanes = 32;
void Sm4MacGroupGfni(const uint8_t* const* keys, const uint8_t* const* messages,
                     const size_t* lengths, int count, uint8_t (*tags)[16]);
void Sm4SubBytesGfni(const uint8_t* in, uint8_t* out);

}  // namespace tongka::crypto::internal

#endif  // TONGKA_LIBS_CRYPTO_SM4_LANES_KERNELS_H_
