#include "kernels/cpu/isa.h"
#include "kernels/cpu/ref/ref_ops.h"

namespace tessera::kernels {

const OpTable& RefOpTable() {
  static constexpr OpTable kTable{
      .isa = Isa::kScalar,
      .linear = ref::Linear,
      .rms_norm = ref::RmsNorm,
      .rope_neox = ref::RopeNeox,
      .rope_interleaved = ref::RopeInterleaved,
      .silu_mul = ref::SiluMul,
      .add = ref::Add,
      .softmax = ref::Softmax,
      .top_k = ref::TopK,
      .attention_with_lse = ref::AttentionWithLse,
  };
  return kTable;
}

}  // namespace tessera::kernels
