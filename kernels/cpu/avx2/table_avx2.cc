// Built without ISA flags: it only takes the addresses of the avx2 functions.
#include "kernels/cpu/avx2/avx2_ops.h"
#include "kernels/cpu/isa.h"
#include "kernels/cpu/ref/ref_ops.h"

namespace tessera::kernels {

// RoPE and top-k are bound by sin/cos and by comparisons; they share the scalar code.
const OpTable& Avx2OpTable() {
  static constexpr OpTable kTable{
      .isa = Isa::kAvx2,
      .linear = avx2::Linear,
      .rms_norm = avx2::RmsNorm,
      .rope_neox = ref::RopeNeox,
      .rope_interleaved = ref::RopeInterleaved,
      .silu_mul = avx2::SiluMul,
      .add = ref::Add,
      .softmax = avx2::Softmax,
      .top_k = ref::TopK,
      .attention_with_lse = avx2::AttentionWithLse,
  };
  return kTable;
}

}  // namespace tessera::kernels
