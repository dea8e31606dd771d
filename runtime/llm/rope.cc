#include "runtime/llm/rope.h"

#include <cmath>

namespace tessera::llm {

int64_t RopeDim(const ModelConfig& config) {
  int64_t rot = static_cast<int64_t>(static_cast<double>(config.head_dim) * config.rope.partial_rotary_factor);
  return rot - rot % 2;
}

std::vector<float> RopeInvFreq(const ModelConfig& config) {
  const int64_t rot_dim = RopeDim(config);
  const RopeConfig& r = config.rope;
  std::vector<float> out(rot_dim / 2);
  const double pi = std::acos(-1.0);
  for (int64_t i = 0; i < rot_dim / 2; ++i) {
    // torch: 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim)), in f32.
    const float exponent = static_cast<float>(2 * i) / static_cast<float>(rot_dim);
    double inv = 1.0 / std::pow(r.theta, static_cast<double>(exponent));
    inv = static_cast<float>(inv);
    switch (r.scaling) {
      case RopeScaling::kNone:
        break;
      case RopeScaling::kLinear:
        inv /= r.factor;
        break;
      case RopeScaling::kLlama3: {
        const double old_ctx = static_cast<double>(r.original_max_position_embeddings);
        const double low_freq_wavelen = old_ctx / r.low_freq_factor;
        const double high_freq_wavelen = old_ctx / r.high_freq_factor;
        const double wavelen = 2 * pi / inv;
        if (wavelen > low_freq_wavelen) {
          inv /= r.factor;
        } else if (wavelen >= high_freq_wavelen) {
          const double smooth = (old_ctx / wavelen - r.low_freq_factor) / (r.high_freq_factor - r.low_freq_factor);
          inv = (1 - smooth) * inv / r.factor + smooth * inv;
        }
        break;
      }
    }
    out[i] = static_cast<float>(inv);
  }
  return out;
}

}  // namespace tessera::llm
