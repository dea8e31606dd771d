#include "runtime/llm/weights.h"

#include <cstring>

#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"
#include "kernels/cpu/ops.h"
#include "runtime/base/status_macros.h"
#include "runtime/loader/mapped_file.h"

namespace tessera::llm {

absl::StatusOr<LinearWeight> LoadLinear(loader::Checkpoint& ckpt, const std::string& name, int64_t out, int64_t in,
                                        bool bias) {
  LinearWeight w;
  TS_ASSIGN_OR_RETURN(const loader::TensorView* t, ckpt.Get(name + ".weight", {out, in}));
  TS_ASSIGN_OR_RETURN(w.dtype, t->WeightDType());
  w.data = t->data;
  w.out = out;
  w.in = in;
  if (bias) {
    TS_ASSIGN_OR_RETURN(w.bias, LoadVector(ckpt, name + ".bias", out));
  }
  return w;
}

absl::StatusOr<std::vector<float>> LoadVector(loader::Checkpoint& ckpt, const std::string& name, int64_t n) {
  TS_ASSIGN_OR_RETURN(const loader::TensorView* t, ckpt.Get(name, {n}));
  TS_ASSIGN_OR_RETURN(kernels::DType dtype, t->WeightDType());
  std::vector<float> v(n);
  LinearWeight as_row;
  as_row.data = t->data;
  as_row.dtype = dtype;
  as_row.out = 1;
  as_row.in = n;
  GatherRow(as_row, 0, v.data());
  return v;
}

namespace {

void AddBias(const LinearWeight& w, int64_t tokens, float* y) {
  if (w.bias.empty()) return;
  for (int64_t t = 0; t < tokens; ++t) {
    float* row = y + t * w.out;
    for (int64_t j = 0; j < w.out; ++j) row[j] += w.bias[j];
  }
}

}  // namespace

void ApplyLinear(kernels::ThreadPool* pool, const float* x, int64_t tokens, const LinearWeight& w, float* y) {
  if (w.packed != nullptr) {
    kernels::LinearPacked(pool, x, tokens, *w.packed, y, w.activations);
  } else {
    kernels::Linear(pool, x, tokens, w.in, w.data, w.dtype, w.out, y, w.activations);
  }
  AddBias(w, tokens, y);
}

void ApplyLinears(kernels::ThreadPool* pool, const float* x, int64_t tokens, std::span<const LinearWeight* const> ws,
                  std::span<float* const> ys) {
  bool together = !ws.empty();
  for (const LinearWeight* w : ws) {
    together = together && w->packed != nullptr && kernels::PackedAlike(*w->packed, *ws[0]->packed) &&
               w->activations == ws[0]->activations;
  }
  if (!together) {
    for (size_t i = 0; i < ws.size(); ++i) ApplyLinear(pool, x, tokens, *ws[i], ys[i]);
    return;
  }
  absl::InlinedVector<const kernels::PackedLinear*, 4> packed;
  for (const LinearWeight* w : ws) packed.push_back(w->packed.get());
  kernels::LinearPackedMany(pool, x, tokens, packed, ys, ws[0]->activations);
  for (size_t i = 0; i < ws.size(); ++i) AddBias(*ws[i], tokens, ys[i]);
}

void GatherRow(const LinearWeight& table, int64_t id, float* out) {
  const int64_t dim = table.in;
  switch (table.dtype) {
    case kernels::DType::kF32:
      std::memcpy(out, static_cast<const float*>(table.data) + id * dim, dim * sizeof(float));
      break;
    case kernels::DType::kBF16: {
      const uint16_t* row = static_cast<const uint16_t*>(table.data) + id * dim;
      for (int64_t i = 0; i < dim; ++i) out[i] = kernels::Bf16ToF32(row[i]);
      break;
    }
    case kernels::DType::kF16: {
      const uint16_t* row = static_cast<const uint16_t*>(table.data) + id * dim;
      for (int64_t i = 0; i < dim; ++i) out[i] = kernels::F16ToF32(row[i]);
      break;
    }
    default:  // block-quantized rows
      kernels::DequantizeRow(table.dtype,
                             static_cast<const uint8_t*>(table.data) + id * kernels::DTypeRowBytes(table.dtype, dim),
                             dim, out);
      break;
  }
}

void PrepareLinears(ModelWeights& w, kernels::Activations act) {
  const void* gathered = w.embed.data;  // read in place by GatherRow, whatever else happens
  auto prepare = [&](LinearWeight& l) {
    l.activations = act;
    l.packed = kernels::PackForLinear(l.data, l.dtype, l.out, l.in);
    // With int8 activations the mapping's copy is not read again (f32 prompt rows still go to the
    // GEMM on it): let the kernel reclaim its pages.
    if (l.packed != nullptr && act == kernels::Activations::kInt8 && l.data != gathered) {
      loader::DropResidentPages(l.data, kernels::DTypeRowBytes(l.dtype, l.in) * l.out);
    }
  };
  auto mlp = [&](MlpWeights& m) {
    prepare(m.gate);
    prepare(m.up);
    prepare(m.down);
  };
  prepare(w.lm_head);
  for (LayerWeights& l : w.layers) {
    for (LinearWeight* p : {&l.attn.q, &l.attn.k, &l.attn.v, &l.attn.o}) prepare(*p);
    if (l.mlp) mlp(*l.mlp);
    if (l.moe) {
      prepare(l.moe->router);
      for (MlpWeights& e : l.moe->experts) mlp(e);
      if (l.moe->shared) mlp(*l.moe->shared);
      if (l.moe->shared_gate) prepare(*l.moe->shared_gate);
    }
  }
}

}  // namespace tessera::llm
