// Built without ISA flags: it only takes the addresses of the avx512 functions.
#include "kernels/cpu/avx512/avx512_ops.h"
#include "kernels/cpu/isa.h"
#include "kernels/cpu/ref/ref_ops.h"

namespace tessera::kernels {

// RoPE and top-k are bound by sin/cos and by comparisons; they share the scalar code.
const OpTable& Avx512OpTable() {
  static constexpr OpTable kTable{
      .isa = Isa::kAvx512,
      .linear = avx512::Linear,
      .rms_norm = avx512::RmsNorm,
      .rope_neox = ref::RopeNeox,
      .rope_interleaved = ref::RopeInterleaved,
      .silu_mul = avx512::SiluMul,
      .add = ref::Add,
      .softmax = avx512::Softmax,
      .top_k = ref::TopK,
      .attention_with_lse = avx512::AttentionWithLse,
  };
  return kTable;
}

}  // namespace tessera::kernels
