// Instruction-set selection for the CPU kernels, and the per-ISA table of ops.
//
// Each ISA has its own table of the ops in ops.h, built from files compiled with that ISA's flags
// (ref/ for scalar, avx2/, avx512/). The best ISA the CPU supports is detected once; the
// environment variable TESSERA_CPU_ISA=scalar|avx2|avx512 lowers (or, if the CPU allows, raises)
// the choice. ops.h functions dispatch through ActiveOps(); tests call OpsFor(isa) directly.
//
//   if (IsaSupported(Isa::kAvx2)) OpsFor(Isa::kAvx2).silu_mul(gate, up, n, out);
//   std::printf("kernels: %s\n", IsaName(ActiveIsa()).data());
#pragma once

#include <cstdint>
#include <string_view>

#include "kernels/cpu/ops.h"

namespace tessera::kernels {

enum class Isa : uint8_t { kScalar, kAvx2, kAvx512 };
inline constexpr Isa kAllIsas[] = {Isa::kScalar, Isa::kAvx2, Isa::kAvx512};

std::string_view IsaName(Isa isa);

// Whether this CPU (and OS) can run `isa`'s table.
bool IsaSupported(Isa isa);

// The ISA ops.h dispatches to: the best supported one, or TESSERA_CPU_ISA if set and supported.
// An override the CPU cannot run falls back to the best supported ISA with a warning on stderr.
Isa ActiveIsa();

// Every slot is required and has the signature of the ops.h function of the same name.
// An ISA without a faster version of an op points the slot at the scalar reference.
struct OpTable {
  Isa isa;
  void (*linear)(ThreadPool* pool, const float* x, int64_t M, int64_t K, const void* w, DType w_dtype, int64_t N,
                 float* y, Activations act, CpuWorkspace* ws);
  void (*rms_norm)(const float* x, const float* weight, int64_t rows, int64_t dim, float eps, float* y);
  void (*rope_neox)(float* x, int64_t tokens, int64_t heads, int64_t head_dim, int64_t rot_dim,
                    const int32_t* positions, const float* inv_freq);
  void (*rope_interleaved)(float* x, int64_t tokens, int64_t heads, int64_t head_dim, int64_t rot_dim,
                           const int32_t* positions, const float* inv_freq);
  void (*silu_mul)(const float* gate, const float* up, int64_t n, float* out);
  void (*add)(float* x, const float* y, int64_t n);
  void (*softmax)(float* x, int64_t rows, int64_t n);
  void (*top_k)(const float* x, int64_t n, int64_t k, int32_t* idx, float* val);
  void (*attention_with_lse)(ThreadPool* pool, const AttentionParams& p);
};

// The table of `isa`, whether or not the CPU supports it (calling an unsupported one faults).
const OpTable& OpsFor(Isa isa);
// OpsFor(ActiveIsa()).
const OpTable& ActiveOps();

// Tables defined by each ISA directory.
const OpTable& RefOpTable();
const OpTable& Avx2OpTable();
const OpTable& Avx512OpTable();

}  // namespace tessera::kernels
