#!/usr/bin/env python3
"""Writes a Llama-shaped model with random bf16 weights (numpy only, no torch).

Used by benchmarks (a ~100M-parameter model by default) and as the demo model that the README's run
command generates from when no real model is installed. The weights are random, so the text is
too; the shapes, file format and cost per token are those of a real Llama checkpoint.

  python3 tools/make_random_llama.py OUT_DIR [--hidden 768 --layers 12 --heads 12 --kv-heads 4
                                              --intermediate 2048 --vocab 32000 --tokenizer FILE
                                              --tokenizer-config FILE --max-position 4096]
"""
import argparse
import json
import os
import shutil
import struct

import numpy as np


def to_bf16(a):
    """float32 → bfloat16 bits (round to nearest even), as uint16."""
    bits = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)
    rounded = bits + 0x7FFF + ((bits >> 16) & 1)
    return (rounded >> 16).astype(np.uint16)


def write_safetensors(path, tensors):
    header, offset, blobs = {}, 0, []
    for name, (dtype, shape, data) in tensors.items():
        raw = data.tobytes()
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        blobs.append(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--hidden", type=int, default=768)
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--heads", type=int, default=12)
    ap.add_argument("--kv-heads", type=int, default=4)
    ap.add_argument("--intermediate", type=int, default=2048)
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--tokenizer", help="tokenizer.json to ship with the model (its size sets the vocab)")
    ap.add_argument("--tokenizer-config", help="tokenizer_config.json (chat template, special tokens) to ship too")
    ap.add_argument("--max-position", type=int, default=4096, help="max_position_embeddings (context length)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    vocab = args.vocab
    if args.tokenizer:
        tok = json.load(open(args.tokenizer, encoding="utf-8"))
        ids = list(tok["model"]["vocab"].values()) + [t["id"] for t in tok.get("added_tokens", [])]
        vocab = max(ids) + 1
    head_dim = args.hidden // args.heads
    rng = np.random.default_rng(args.seed)
    tensors = {}

    def mat(name, rows, cols, std=0.02):
        tensors[name] = ("BF16", (rows, cols), to_bf16(rng.standard_normal((rows, cols), dtype=np.float32) * std))

    def ones(name, n):
        tensors[name] = ("BF16", (n,), to_bf16(np.ones(n, dtype=np.float32)))

    mat("model.embed_tokens.weight", vocab, args.hidden)
    ones("model.norm.weight", args.hidden)
    for i in range(args.layers):
        p = f"model.layers.{i}."
        ones(p + "input_layernorm.weight", args.hidden)
        ones(p + "post_attention_layernorm.weight", args.hidden)
        mat(p + "self_attn.q_proj.weight", args.heads * head_dim, args.hidden)
        mat(p + "self_attn.k_proj.weight", args.kv_heads * head_dim, args.hidden)
        mat(p + "self_attn.v_proj.weight", args.kv_heads * head_dim, args.hidden)
        mat(p + "self_attn.o_proj.weight", args.hidden, args.heads * head_dim)
        mat(p + "mlp.gate_proj.weight", args.intermediate, args.hidden)
        mat(p + "mlp.up_proj.weight", args.intermediate, args.hidden)
        mat(p + "mlp.down_proj.weight", args.hidden, args.intermediate)

    os.makedirs(args.out, exist_ok=True)
    write_safetensors(os.path.join(args.out, "model.safetensors"), tensors)
    config = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_act": "silu",
        "vocab_size": vocab, "hidden_size": args.hidden, "intermediate_size": args.intermediate,
        "num_hidden_layers": args.layers, "num_attention_heads": args.heads, "num_key_value_heads": args.kv_heads,
        "max_position_embeddings": args.max_position, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
        "tie_word_embeddings": True, "bos_token_id": 1, "eos_token_id": 2, "torch_dtype": "bfloat16",
    }
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    if args.tokenizer:
        shutil.copy(args.tokenizer, os.path.join(args.out, "tokenizer.json"))
    if args.tokenizer_config:
        shutil.copy(args.tokenizer_config, os.path.join(args.out, "tokenizer_config.json"))
    n = sum(int(np.prod(s)) for _, s, _ in tensors.values())
    print(f"wrote {args.out}: {n / 1e6:.1f}M parameters, vocab {vocab}")


if __name__ == "__main__":
    main()
