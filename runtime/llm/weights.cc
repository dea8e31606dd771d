#include "runtime/llm/weights.h"

#include <set>

#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"
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
  kernels::DequantizeRow(dtype, t->data, n, v.data());
  return v;
}

void ApplyLinear(const Exec& exec, const float* x, int64_t tokens, const LinearWeight& w, float* y) {
  const kernels::PreparedWeight* pw = w.prepared.get();
  exec.backend->Linear(*exec.ctx, {.x = x, .m = tokens, .weights = {&pw, 1}, .outputs = {&y, 1}});
}

void ApplyLinears(const Exec& exec, const float* x, int64_t tokens, std::span<const LinearWeight* const> ws,
                  std::span<float* const> ys) {
  absl::InlinedVector<const kernels::PreparedWeight*, 4> prepared;
  for (const LinearWeight* w : ws) prepared.push_back(w->prepared.get());
  exec.backend->Linear(*exec.ctx, {.x = x, .m = tokens, .weights = prepared, .outputs = ys});
}

namespace {

// `linear`: multiplied by Linear; `gather`: rows gathered by Embedding.
absl::Status Prepare(LinearWeight& l, std::string_view role, kernels::Backend& backend, kernels::Activations act,
                     bool linear, bool gather) {
  for (const kernels::OpKind op : {kernels::OpKind::kLinear, kernels::OpKind::kEmbedding}) {
    if (op == kernels::OpKind::kLinear ? !linear : !gather) continue;
    if (!backend.Supports({.op = op, .dtype = l.dtype, .rows = l.out, .cols = l.in})) {
      return absl::InvalidArgumentError(absl::StrCat(
          std::string(role), ": the ", std::string(backend.name()), " backend cannot run a [", l.out, ", ", l.in, "] ",
          std::string(kernels::DTypeName(l.dtype)), " ", std::string(kernels::OpKindName(op))));
    }
  }
  absl::StatusOr<std::unique_ptr<kernels::PreparedWeight>> p = backend.PrepareWeight(
      {.data = l.data, .dtype = l.dtype, .rows = l.out, .cols = l.in},
      {.linear = linear, .gather = gather, .activations = act, .bias = l.bias.empty() ? nullptr : l.bias.data()});
  if (!p.ok()) return absl::Status(p.status().code(), absl::StrCat(std::string(role), ": ", p.status().message()));
  l.prepared = std::move(*p);
  return absl::OkStatus();
}

absl::Status Upload(VectorWeight& v, kernels::Backend& backend, kernels::ExecContext& ctx) {
  if (v.empty()) return absl::OkStatus();
  TS_ASSIGN_OR_RETURN(v.device, backend.UploadF32(ctx, v.host));
  return absl::OkStatus();
}

}  // namespace

absl::Status PrepareWeights(ModelWeights& w, kernels::Backend& backend, kernels::ExecContext& ctx,
                            kernels::Activations act) {
  std::vector<const LinearWeight*> all;
  auto linear = [&](LinearWeight& l, std::string_view role) -> absl::Status {
    TS_RETURN_IF_ERROR(Prepare(l, role, backend, act, /*linear=*/true, /*gather=*/false));
    all.push_back(&l);
    return absl::OkStatus();
  };
  auto mlp = [&](MlpWeights& m, std::string_view role) -> absl::Status {
    TS_RETURN_IF_ERROR(linear(m.gate, absl::StrCat(std::string(role), ".gate")));
    TS_RETURN_IF_ERROR(linear(m.up, absl::StrCat(std::string(role), ".up")));
    return linear(m.down, absl::StrCat(std::string(role), ".down"));
  };
  const bool tied = w.embed.data == w.lm_head.data;
  if (tied) {
    // One prepared matrix serves both: multiplied as lm_head and gathered as the embedding.
    TS_RETURN_IF_ERROR(Prepare(w.lm_head, "lm_head (tied embedding)", backend, act, /*linear=*/true, /*gather=*/true));
    w.embed.prepared = w.lm_head.prepared;
    all.push_back(&w.lm_head);
  } else {
    TS_RETURN_IF_ERROR(Prepare(w.embed, "embedding", backend, act, /*linear=*/false, /*gather=*/true));
    all.push_back(&w.embed);
    TS_RETURN_IF_ERROR(linear(w.lm_head, "lm_head"));
  }
  TS_RETURN_IF_ERROR(Upload(w.final_norm, backend, ctx));
  for (size_t i = 0; i < w.layers.size(); ++i) {
    LayerWeights& l = w.layers[i];
    const std::string p = absl::StrCat("layer ", i, " ");
    TS_RETURN_IF_ERROR(linear(l.attn.q, p + "q_proj"));
    TS_RETURN_IF_ERROR(linear(l.attn.k, p + "k_proj"));
    TS_RETURN_IF_ERROR(linear(l.attn.v, p + "v_proj"));
    TS_RETURN_IF_ERROR(linear(l.attn.o, p + "o_proj"));
    for (VectorWeight* v : {&l.input_norm, &l.post_attention_norm, &l.attn.q_norm, &l.attn.k_norm}) {
      TS_RETURN_IF_ERROR(Upload(*v, backend, ctx));
    }
    if (l.mlp) TS_RETURN_IF_ERROR(mlp(*l.mlp, p + "mlp"));
    if (l.moe) {
      TS_RETURN_IF_ERROR(linear(l.moe->router, p + "router"));
      for (size_t e = 0; e < l.moe->experts.size(); ++e) {
        TS_RETURN_IF_ERROR(mlp(l.moe->experts[e], absl::StrCat(p, "expert ", e)));
      }
      if (l.moe->shared) TS_RETURN_IF_ERROR(mlp(*l.moe->shared, p + "shared_expert"));
      if (l.moe->shared_gate) TS_RETURN_IF_ERROR(linear(*l.moe->shared_gate, p + "shared_expert_gate"));
    }
  }
  TS_RETURN_IF_ERROR(backend.Synchronize(ctx));
  // Originals that nothing reads any more give their resident pages back (the mapping stays).
  for (const LinearWeight* l : all) {
    if (!l->prepared->reads_original()) {
      loader::DropResidentPages(l->data, kernels::DTypeRowBytes(l->dtype, l->in) * l->out);
    }
  }
  return absl::OkStatus();
}

int64_t PreparedWeightBytes(const ModelWeights& w) {
  std::set<const kernels::PreparedWeight*> seen;
  int64_t bytes = 0;
  auto linear = [&](const LinearWeight& l) {
    if (l.prepared == nullptr || !seen.insert(l.prepared.get()).second) return;
    bytes += l.prepared->resident_bytes();
    if (l.prepared->reads_original()) bytes += kernels::DTypeRowBytes(l.dtype, l.in) * l.out;
  };
  auto vec = [&](const VectorWeight& v) { bytes += static_cast<int64_t>(v.device.bytes()); };
  auto mlp = [&](const MlpWeights& m) {
    for (const LinearWeight* l : {&m.gate, &m.up, &m.down}) linear(*l);
  };
  linear(w.embed);
  linear(w.lm_head);
  vec(w.final_norm);
  for (const LayerWeights& l : w.layers) {
    for (const LinearWeight* x : {&l.attn.q, &l.attn.k, &l.attn.v, &l.attn.o}) linear(*x);
    for (const VectorWeight* v : {&l.input_norm, &l.post_attention_norm, &l.attn.q_norm, &l.attn.k_norm}) vec(*v);
    if (l.mlp) mlp(*l.mlp);
    if (l.moe) {
      linear(l.moe->router);
      for (const MlpWeights& e : l.moe->experts) mlp(e);
      if (l.moe->shared) mlp(*l.moe->shared);
      if (l.moe->shared_gate) linear(*l.moe->shared_gate);
    }
  }
  return bytes;
}

}  // namespace tessera::llm
