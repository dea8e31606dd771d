// Rotary-embedding frequencies for a model, with the scaling schemes Hugging Face implements.
//
//   std::vector<float> inv_freq = RopeInvFreq(config);   // [rot_dim / 2]
//   kernels::RopeNeox(q, tokens, heads, head_dim, rot_dim, positions, inv_freq.data());
#pragma once

#include <cstdint>
#include <vector>

#include "runtime/llm/model_config.h"

namespace tessera::llm {

// Number of leading dimensions of each head that rotate (head_dim × partial_rotary_factor, even).
int64_t RopeDim(const ModelConfig& config);

// inv_freq[i] = 1 / theta^(2i / rot_dim), then:
//  linear: inv_freq / factor
//  llama3: wavelengths longer than original_max / low_freq_factor are divided by factor, shorter than
//          original_max / high_freq_factor kept, and those between interpolated with
//          smooth = (original_max / wavelen − low_freq_factor) / (high_freq_factor − low_freq_factor):
//          (1 − smooth) · inv_freq / factor + smooth · inv_freq
// Computed in double, then rounded to f32 as torch stores the buffer.
std::vector<float> RopeInvFreq(const ModelConfig& config);

}  // namespace tessera::llm
