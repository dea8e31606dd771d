#!/usr/bin/env python3
"""Tessera vs llama.cpp on the same GGUF file, same prompts, same thread count (run by hand).

    python3 -m venv /tmp/llamacpp && /tmp/llamacpp/bin/pip install llama-cpp-python numpy
    /tmp/llamacpp/bin/python bench/llamacpp/side_by_side.py \
        --model ~/.cache/tessera/models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf \
        --generate build/release/worker/cli/tessera-generate --threads 1,2 --runs 5 \
        --reference tests/fixtures/gguf/smollm2_reference.json

Parity: for each of 20 prompts, greedy decode of 64 new tokens by both engines from the same token
ids (llama.cpp's tokenization, passed to tessera-generate with --prompt-ids). At the first position
where they differ the script reports both engines' top-2 logprob gap: a gap under 1e-3 is a near
tie, where either choice is right. As a control it runs the same comparison between llama.cpp with
and without flash attention: with int8-quantized activations (both engines, see kernels/cpu/ops.h)
a rounding difference anywhere flips some activation's int8 value a few layers later, so greedy
outputs part at gaps far above 1e-3 even between two llama.cpp configurations; a count of identical
prompts near the control's is parity. Speed: prefill tokens/s of a 512-token prompt and decode
tokens/s of 128 tokens, medians of --runs runs, ours ÷ llama.cpp.
"""
import argparse
import json
import re
import statistics
import subprocess
import time

import numpy as np
from llama_cpp import Llama

PROMPTS = [
    "The capital of France is",
    "Write a short poem about the sea.",
    "def fibonacci(n):",
    "Explain why the sky is blue in one paragraph.",
    "List three fruits that are red:",
    "Translate to French: The cat sleeps on the sofa.",
    "Once upon a time, in a small village,",
    "The three laws of thermodynamics are",
    "Q: What is 12 times 7?\nA:",
    "import numpy as np\n# compute the mean of an array\n",
    "The best way to learn a new language is",
    "Summarize the plot of Romeo and Juliet.",
    "A haiku about autumn leaves:",
    "SELECT name FROM users WHERE",
    "The largest planet in the solar system is",
    "How do vaccines work?",
    "Dear hiring manager,",
    "The recipe for pancakes needs",
    "In 1969, humans first",
    "Rust and C++ differ in that",
]

TOKEN_RE = re.compile(r"\[token (-?\d+) logprob (\S+)((?: \| -?\d+:\S+)*)\]")
SPEED_RE = re.compile(r"prefill: (\d+) tokens in \S+ s \((\S+) tok/s\); decode: (\d+) tokens in \S+ s \((\S+) tok/s\)")


def run_tessera(binary, model, ids, new_tokens, threads, activations):
    cmd = [binary, "--model", model, "--prompt_ids", ",".join(map(str, ids)), "--max_tokens", str(new_tokens),
           "--temperature", "0", "--ignore_eos", "--logprobs", "2", "--threads", str(threads),
           "--activations", activations]
    p = subprocess.run(cmd, capture_output=True, text=True, check=True)
    tokens, gaps = [], []
    for m in TOKEN_RE.finditer(p.stderr):
        tokens.append(int(m.group(1)))
        alts = [float(a.split(":")[1]) for a in m.group(3).split(" | ")[1:]]
        gaps.append(alts[0] - alts[1] if len(alts) >= 2 else float("inf"))
    speed = SPEED_RE.search(p.stderr)
    return tokens, gaps, (float(speed.group(2)), float(speed.group(4))) if speed else None


def log_softmax(x):
    x = np.asarray(x, dtype=np.float64)
    m = x.max()
    return x - m - np.log(np.exp(x - m).sum())


def llama_greedy(llm, ids, new_tokens):
    llm.reset()
    llm.eval(ids)
    out, gaps = [], []
    for _ in range(new_tokens):
        lp = log_softmax(llm.scores[llm.n_tokens - 1])
        top2 = np.argsort(-lp)[:2]
        out.append(int(top2[0]))
        gaps.append(float(lp[top2[0]] - lp[top2[1]]))
        llm.eval([int(top2[0])])
    return out, gaps


def parity(args, threads):
    llm = Llama(model_path=args.model, n_ctx=2048, n_threads=threads, n_batch=512, logits_all=True, verbose=False)
    identical, ties, real = 0, [], []
    for prompt in PROMPTS:
        ids = llm.tokenize(prompt.encode(), add_bos=True, special=True)
        ref, ref_gaps = llama_greedy(llm, ids, args.new_tokens)
        ours, our_gaps, _ = run_tessera(args.generate, args.model, ids, args.new_tokens, threads, args.activations)
        if ours == ref:
            identical += 1
            continue
        i = next(k for k in range(min(len(ours), len(ref))) if ours[k] != ref[k])
        case = (prompt, i, ref_gaps[i], our_gaps[i] if i < len(our_gaps) else float("nan"))
        (ties if min(case[2], case[3]) < 1e-3 else real).append(case)
    print(f"greedy parity, {len(PROMPTS)} prompts x {args.new_tokens} tokens: {identical} identical, "
          f"{len(ties)} diverge at a near tie (top-2 gap < 1e-3), {len(real)} diverge otherwise")
    for label, cases in (("near tie", ties), ("DIVERGES", real)):
        for prompt, i, g_ref, g_ours in cases:
            print(f"  {label}: {prompt!r} at step {i}: top-2 gap llama.cpp {g_ref:.2e}, ours {g_ours:.2e}")
    if args.skip_control:
        return
    fa = Llama(model_path=args.model, n_ctx=2048, n_threads=threads, n_batch=512, logits_all=True, verbose=False,
               flash_attn=True)
    same, gaps = 0, []
    for prompt in PROMPTS:
        ids = llm.tokenize(prompt.encode(), add_bos=True, special=True)
        ref, ref_gaps = llama_greedy(llm, ids, args.new_tokens)
        alt, alt_gaps = llama_greedy(fa, ids, args.new_tokens)
        if alt == ref:
            same += 1
            continue
        i = next(k for k in range(len(ref)) if alt[k] != ref[k])
        gaps.append(min(ref_gaps[i], alt_gaps[i]))
    print(f"control, llama.cpp flash attention off vs on: {same} identical"
          + (f", the others part at top-2 gaps {min(gaps):.1e}..{max(gaps):.1e}" if gaps else ""))


def reference(args, threads):
    """llama.cpp's teacher-forced agreement with the transformers reference that
    tests/unit/runtime/llm/gguf_llama_test.cc (SmolLm2MatchesTransformers) scores us on."""
    ref = json.load(open(args.reference))
    llm = Llama(model_path=args.model, n_ctx=2048, n_threads=threads, n_batch=512, logits_all=True, verbose=False)
    agree = total = 0
    kls = []
    for p in ref["prompts"]:
        ids, want = p["ids"], p["greedy"]
        llm.reset()
        llm.eval(ids)
        rows = []
        for s in range(len(want)):
            rows.append(np.asarray(llm.scores[llm.n_tokens - 1], dtype=np.float64))
            if s + 1 < len(want):
                llm.eval([want[s]])
        agree += sum(int(r.argmax() == w) for r, w in zip(rows, want))
        total += len(want)
        for step, r in p.get("logits", {}).items():
            lq = log_softmax(rows[int(step)])[r["top_ids"]]
            lp = np.asarray(r["top_logits"]) - r["lse"]
            kls.append(float((np.exp(lp) * (lp - lq)).sum()))
    print(f"llama.cpp vs {args.reference}: teacher-forced top-1 agreement {agree / total:.4f} ({agree}/{total}), "
          f"KL(ref||llama.cpp) mean {np.mean(kls):.3g} over {len(kls)} positions (top-256 entries)")


def speed(args, threads):
    llm = Llama(model_path=args.model, n_ctx=2048, n_threads=threads, n_threads_batch=threads, n_batch=512,
                verbose=False)
    rng = np.random.default_rng(0)
    prompt = [int(t) for t in rng.integers(100, llm.n_vocab() - 100, size=args.prompt_len)]
    ours_p, ours_d, ref_p, ref_d = [], [], [], []
    for _ in range(args.runs):
        llm.reset()
        t0 = time.perf_counter()
        llm.eval(prompt)
        ref_p.append(args.prompt_len / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        # Decode cost does not depend on which tokens are fed: feed the prompt's tokens again.
        for i in range(args.decode_len):
            llm.eval([prompt[i % len(prompt)]])
        ref_d.append(args.decode_len / (time.perf_counter() - t0))
        _, _, s = run_tessera(args.generate, args.model, prompt, args.decode_len, threads, args.activations)
        ours_p.append(s[0])
        ours_d.append(s[1])
    med = statistics.median
    print(f"threads {threads}, {args.activations} activations: prefill ({args.prompt_len} tok) ours {med(ours_p):.1f} tok/s, llama.cpp "
          f"{med(ref_p):.1f} tok/s, ratio {med(ours_p) / med(ref_p):.2f}; decode ({args.decode_len} tok) ours "
          f"{med(ours_d):.1f} tok/s, llama.cpp {med(ref_d):.1f} tok/s, ratio {med(ours_d) / med(ref_d):.2f} "
          f"(medians of {args.runs})")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="GGUF file")
    ap.add_argument("--generate", default="build/release/worker/cli/tessera-generate")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--prompt-len", type=int, default=512)
    ap.add_argument("--decode-len", type=int, default=128)
    ap.add_argument("--reference", help="also score llama.cpp on this transformers reference "
                    "(tests/fixtures/gguf/smollm2_reference.json)")
    ap.add_argument("--skip-parity", action="store_true")
    ap.add_argument("--skip-control", action="store_true", help="no llama.cpp flash-attention control run")
    ap.add_argument("--activations", default="int8", choices=["int8", "f32"],
                    help="how tessera multiplies quantized weights: int8 as llama.cpp, or f32 (x·dequant(w))")
    args = ap.parse_args()
    threads = [int(t) for t in args.threads.split(",")]
    if args.reference:
        reference(args, threads[0])
    if not args.skip_parity:
        parity(args, threads[0])
    for t in threads:
        speed(args, t)


if __name__ == "__main__":
    main()
