#!/usr/bin/env python3
"""Builds tiny random-weight Hugging Face models and records reference outputs from `transformers`.

For every model in MODELS this writes tests/fixtures/models/<name>/:
  config.json, generation_config.json, model.safetensors (or shards + model.safetensors.index.json)
  reference.json   prompts, greedy continuations, the smallest top-1/top-2 logit gap on each greedy
                   path, and the rotary inv_freq buffer transformers computed
  logits.f32       little-endian float32; for each prompt p in order, the logits of one forward pass
                   over prompt_p + greedy_p[:-1], shape [len(prompt_p) + steps - 1, vocab]
                   (row len(prompt_p)-1+i is the distribution greedy_p[i] was taken from)
  logits_bf16.f32  the same logits computed by torch in bfloat16 (bf16 weights and activations),
                   only for models with "bf16_reference": True

The C++ tests (tests/unit/runtime/llm/model_reference_test.cc) compare against these files without
torch. Run with a Python that has torch and transformers (scripts/setup --tools):
  .venv/bin/python tools/make_reference_models.py [--out tests/fixtures/models]
"""
import argparse
import json
import os
import shutil

import numpy as np
import torch
import transformers
from transformers import (LlamaConfig, LlamaForCausalLM, MixtralConfig, MixtralForCausalLM, Qwen2MoeConfig,
                          Qwen2MoeForCausalLM, Qwen3MoeConfig, Qwen3MoeForCausalLM)

STEPS = 32
VOCAB = 320
PROMPT_LENGTHS = (5, 12, 23)

COMMON = dict(vocab_size=VOCAB, hidden_size=64, num_hidden_layers=2, max_position_embeddings=512,
              rms_norm_eps=1e-5, bos_token_id=1, eos_token_id=2, pad_token_id=0, initializer_range=0.12)

MODELS = [
    # Llama, f32 weights, GQA 4:1, head_dim 64 (explicit: q_proj is [256, 128]).
    dict(name="llama_gqa4_hd64_f32", cls=(LlamaConfig, LlamaForCausalLM), dtype=torch.float32,
         cfg=dict(num_attention_heads=4, num_key_value_heads=1, head_dim=64, intermediate_size=256,
                  rope_theta=10000.0, tie_word_embeddings=False)),
    # Llama, bf16 weights, MHA, head_dim 128, tied embeddings, linear rope scaling.
    dict(name="llama_mha_hd128_tied_linrope_bf16", cls=(LlamaConfig, LlamaForCausalLM), dtype=torch.bfloat16,
         bf16_reference=True,
         cfg=dict(num_attention_heads=2, num_key_value_heads=2, head_dim=128, intermediate_size=256,
                  rope_theta=50000.0, tie_word_embeddings=True,
                  rope_scaling={"rope_type": "linear", "factor": 2.0})),
    # Llama-3 style: GQA 2:1, llama3 rope scaling that changes frequencies at these lengths,
    # attention bias, sharded checkpoint.
    dict(name="llama3rope_gqa2_bias_sharded_f32", cls=(LlamaConfig, LlamaForCausalLM), dtype=torch.float32,
         shard="100KB",
         cfg=dict(num_attention_heads=4, num_key_value_heads=2, head_dim=32, intermediate_size=192,
                  rope_theta=500000.0, attention_bias=True, tie_word_embeddings=False,
                  rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                "high_freq_factor": 4.0, "original_max_position_embeddings": 64})),
    # Mixtral, top-2 of 4 experts, bf16 weights.
    dict(name="mixtral_top2_bf16", cls=(MixtralConfig, MixtralForCausalLM), dtype=torch.bfloat16,
         cfg=dict(num_attention_heads=2, num_key_value_heads=1, intermediate_size=128, num_local_experts=4,
                  num_experts_per_tok=2, rope_theta=1e6, tie_word_embeddings=False)),
    # Mixtral, top-1 of 4 experts, bf16.
    dict(name="mixtral_top1_bf16", cls=(MixtralConfig, MixtralForCausalLM), dtype=torch.bfloat16,
         cfg=dict(num_attention_heads=4, num_key_value_heads=4, intermediate_size=96, num_local_experts=4,
                  num_experts_per_tok=1, rope_theta=1e6, tie_word_embeddings=False)),
    # Qwen2-MoE: q/k/v bias, shared expert with sigmoid gate, top-2 of 6 without renormalization,
    # layer 1 dense (mlp_only_layers), bf16 weights.
    dict(name="qwen2moe_shared_top2_bf16", cls=(Qwen2MoeConfig, Qwen2MoeForCausalLM), dtype=torch.bfloat16,
         cfg=dict(num_attention_heads=4, num_key_value_heads=2, intermediate_size=192, num_experts=6,
                  num_experts_per_tok=2, moe_intermediate_size=64, shared_expert_intermediate_size=128,
                  norm_topk_prob=False, mlp_only_layers=[1], rope_theta=1e6, tie_word_embeddings=False)),
    # Qwen3-MoE: q/k RMSNorm, explicit head_dim 64 (≠ hidden/heads), top-2 of 4 renormalized, bf16.
    dict(name="qwen3moe_qknorm_hd64_bf16", cls=(Qwen3MoeConfig, Qwen3MoeForCausalLM), dtype=torch.bfloat16,
         cfg=dict(num_attention_heads=4, num_key_value_heads=2, head_dim=64, intermediate_size=192,
                  num_experts=4, num_experts_per_tok=2, moe_intermediate_size=64, norm_topk_prob=True,
                  rope_theta=1e6, tie_word_embeddings=False)),
]


def make_prompts(seed):
    g = np.random.default_rng(seed)
    return [[1] + g.integers(3, VOCAB, size=n - 1).tolist() for n in PROMPT_LENGTHS]


@torch.no_grad()
def greedy(model, prompt):
    ids = list(prompt)
    gaps = []
    for _ in range(STEPS):
        logits = model(torch.tensor([ids])).logits[0, -1].float()
        top2 = torch.topk(logits, 2)
        gaps.append(float(top2.values[0] - top2.values[1]))
        ids.append(int(top2.indices[0]))
    return ids[len(prompt):], gaps


@torch.no_grad()
def all_logits(model, seq):
    return model(torch.tensor([seq])).logits[0].float().numpy()


def build(spec, out_dir):
    config_cls, model_cls = spec["cls"]
    torch.manual_seed(sum(map(ord, spec["name"])))
    cfg = config_cls(**COMMON, **spec["cfg"])
    cfg._attn_implementation = "eager"
    model = model_cls(cfg).eval()
    # Round the parameters (not the buffers: the rotary inv_freq stays f32, as in a real bf16 run of
    # transformers) to the storage dtype, then compute in float32 on exactly those values.
    with torch.no_grad():
        for param in model.parameters():
            param.copy_(param.to(spec["dtype"]).to(torch.float32))
    d = os.path.join(out_dir, spec["name"])
    shutil.rmtree(d, ignore_errors=True)
    save_kw = dict(max_shard_size=spec["shard"]) if "shard" in spec else {}
    model.config.dtype = spec["dtype"]
    stored = {k: v.to(spec["dtype"]) for k, v in model.state_dict().items()}
    model.save_pretrained(d, state_dict=stored, **save_kw)

    prompts = make_prompts(len(spec["name"]))
    ref = dict(model=spec["name"], transformers=transformers.__version__, torch=torch.__version__,
               steps=STEPS, vocab=VOCAB, prompts=[], greedy=[], min_gap=[],
               inv_freq=model.model.rotary_emb.inv_freq.float().tolist())
    chunks, chunks_bf16 = [], []
    bf16_model = None
    if spec.get("bf16_reference"):
        # As a user would run it: from_pretrained in bfloat16.
        bf16_model = model_cls.from_pretrained(d, dtype=torch.bfloat16, attn_implementation="eager").eval()
    for p in prompts:
        cont, gaps = greedy(model, p)
        seq = p + cont[:-1]
        chunks.append(all_logits(model, seq).astype("<f4"))
        if bf16_model is not None:
            chunks_bf16.append(all_logits(bf16_model, seq).astype("<f4"))
        ref["prompts"].append(p)
        ref["greedy"].append(cont)
        ref["min_gap"].append(min(gaps))
    np.concatenate(chunks).tofile(os.path.join(d, "logits.f32"))
    if chunks_bf16:
        np.concatenate(chunks_bf16).tofile(os.path.join(d, "logits_bf16.f32"))
    with open(os.path.join(d, "reference.json"), "w") as f:
        json.dump(ref, f, indent=1)
    print(f"{spec['name']}: min top-2 gap along greedy paths {min(ref['min_gap']):.2e}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "models"))
    args = ap.parse_args()
    torch.set_num_threads(2)
    os.makedirs(args.out, exist_ok=True)
    for spec in MODELS:
        build(spec, args.out)


if __name__ == "__main__":
    main()
