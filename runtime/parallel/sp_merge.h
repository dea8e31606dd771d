// Merging partial attention results computed over disjoint key sets.
//
// A partial (O_b, L_b) is softmax-normalized over its own keys, with L_b the log-sum-exp of its
// scaled scores. Folding it into the running (O, L), all f32:
//   L' = log(exp(L) + exp(L_b)) = L − logsigmoid(L − L_b)
//   O' = exp(L − L')·O + exp(L_b − L')·O_b = O − sigmoid(L_b − L)·(O − O_b)
// The sigmoid / log-sigmoid form never exponentiates a large positive number, so it cannot
// overflow for any finite L, L_b. A partial with L_b = −inf (no visible key) leaves (O, L) as is;
// an accumulator with L = −inf takes the partial unchanged. The merge is commutative and
// associative up to rounding, so partials may arrive in any order.
#pragma once

#include <cstdint>

namespace tessera::parallel {

// Numerically stable scalar helpers (exposed for tests).
float StableSigmoid(float x);
float StableLogSigmoid(float x);

// o, ob: [rows, heads, head_dim]; l, lb: [rows, heads]. Updates (o, l) in place.
void MergePartial(float* o, float* l, const float* ob, const float* lb, int64_t rows, int64_t heads, int64_t head_dim);

}  // namespace tessera::parallel
