#include "kernels/cpu/isa.h"
#include "kernels/cpu/ref/ref_ops.h"

namespace tessera::kernels {

const OpTable& RefOpTable() {
  static constexpr OpTable kTable{
      .isa = Isa::kScalar,
      .linear = ref::Linear,
      .rms_norm = ref::RmsNorm,
      .rope_neox = ref::RopeNeox,
      .silu_mul = ref::SiluMul,
      .softmax = ref::Softmax,
      .top_k = ref::TopK,
      .attention_with_lse = ref::AttentionWithLse,
  };
  return kTable;
}

}  // namespace tessera::kernels
