#!/usr/bin/env python3
"""Writes the GGUF test fixtures with the `gguf` package (GGUFWriter) and records reference values
from independent implementations (`gguf.quants` for dequantization, `tokenizers` and `transformers`
for tokenizers and model logits).

Writes tests/fixtures/gguf/:
  types.gguf / types.json      metadata of every value type (scalars, arrays of each, nested arrays of
                               strings and of ints), general.alignment = 64, and tensors of every
                               dequantizable type; the JSON holds every value as written and every
                               tensor dequantized by gguf.quants
  v2.gguf                      a small file with the version field set to 2 (v2 and v3 share a layout)
  tok_bpe.gguf                 byte-level BPE ("gpt2") tokenizer metadata, vocabulary and merges of
                               tests/fixtures/tokenizers/gpt2, no tensors
  tok_bpe_<pre>.jsonl          for pre in smollm gpt2 llama-bpe qwen2 default: expected ids on every 13th
                               corpus line from a `tokenizers` Tokenizer built from the same vocabulary
                               with llama.cpp's pre-tokenizer regexes for that name
  tok_spm.gguf / tok_spm.jsonl SentencePiece-style ("llama") metadata from tests/fixtures/tokenizers/llama2
                               (tokens, scores, token types); expected ids from transformers' own GGUF
                               tokenizer conversion (AutoTokenizer.from_pretrained(gguf_file=...))
  tiny_llama.gguf              a 2-layer llama with quantized weights (Q8_0 embedding, Q4_0/Q4_1/Q5_0/
                               Q5_1/Q8_0 projections, tied output) and q/k rows permuted the way
                               llama.cpp's converter does
  tiny_llama.json              transformers' logits and greedy tokens for it (transformers dequantizes
                               to f32 and undoes the q/k permutation itself)
  smollm2_tokenizer.jsonl      (when the SmolLM2 GGUF is present) expected ids of its tokenizer on the
                               whole corpus
  smollm2_reference.json       (same) greedy tokens and logits of transformers on the SmolLM2 GGUF

and tests/fuzz/seeds/gguf/ (valid files plus malformed variants).

Run: /work/venv-tools/bin/python tools/make_gguf_fixtures.py [--skip-smollm2]
"""
import argparse
import json
import os
import pathlib
import shutil
import struct
import sys

os.environ["TOKENIZERS_PARALLELISM"] = "false"

import numpy as np  # noqa: E402
import gguf  # noqa: E402
from gguf import GGMLQuantizationType as QT  # noqa: E402
from gguf import GGUFValueType as VT  # noqa: E402
from gguf.quants import dequantize, quantize  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "tests/fixtures/gguf"
SEEDS = ROOT / "tests/fuzz/seeds/gguf"
TOKDIR = ROOT / "tests/fixtures/tokenizers"
SMOLLM2 = pathlib.Path(os.environ.get("TESSERA_MODEL_CACHE", os.path.expanduser("~/.cache/tessera/models"))) / \
    "smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf"

# llama.cpp's pre-tokenizer splits (llama-vocab.cpp), applied in order, each keeping matches and gaps
# as separate pieces (tokenizers' Split(behavior="isolated")).
GPT2_SPLIT = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"
LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                r"|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
               r"|\s*[\r\n]+|\s+(?!\S)|\s+")
PRE_SPLITS = {
    "gpt2": [GPT2_SPLIT],
    "smollm": [r"\p{N}", GPT2_SPLIT],
    "llama-bpe": [LLAMA3_SPLIT],
    "qwen2": [QWEN2_SPLIT],
    "default": [r"[\p{P}\$\+<=>\^~\|]+", GPT2_SPLIT, r"\p{N}+", r"[0-9][0-9][0-9]"],
}
IGNORE_MERGES = {"llama-bpe"}


def f32(x):
    return float(np.float32(x))


# ---- types.gguf ----------------------------------------------------------------------------------

SCALARS = [
    ("test.u8", VT.UINT8, 200), ("test.i8", VT.INT8, -100), ("test.u16", VT.UINT16, 60000),
    ("test.i16", VT.INT16, -30000), ("test.u32", VT.UINT32, 4000000000), ("test.i32", VT.INT32, -2000000000),
    ("test.f32", VT.FLOAT32, 1.5e-3), ("test.u64", VT.UINT64, 2**63 + 5), ("test.i64", VT.INT64, -(2**62) - 3),
    ("test.f64", VT.FLOAT64, 3.141592653589793), ("test.bool_true", VT.BOOL, True),
    ("test.bool_false", VT.BOOL, False), ("test.string", VT.STRING, "h\u00e9llo w\u00f6rld \u2713"),
    ("test.empty_string", VT.STRING, ""),
]
ARRAYS = [
    ("test.arr_u8", VT.UINT8, [0, 1, 255]), ("test.arr_i8", VT.INT8, [-128, 0, 127]),
    ("test.arr_u16", VT.UINT16, [0, 65535]), ("test.arr_i16", VT.INT16, [-32768, 32767]),
    ("test.arr_u32", VT.UINT32, [1, 4294967295]), ("test.arr_i32", VT.INT32, [-5, 0, 7]),
    ("test.arr_f32", VT.FLOAT32, [0.5, -2.25, 1e-8]), ("test.arr_u64", VT.UINT64, [0, 2**64 - 1]),
    ("test.arr_i64", VT.INT64, [-(2**63), 2**63 - 1]), ("test.arr_f64", VT.FLOAT64, [1.0 / 3.0, -1e300]),
    ("test.arr_bool", VT.BOOL, [True, False, True]), ("test.arr_str", VT.STRING, ["a", "", "\u00fc\u2581x"]),
]
NESTED = [
    ("test.arr_nested_str", [["x", "yy"], ["z"], ["", "\u00e9"]]),
    ("test.arr_nested_i32", [[1, 2, 3], [-4]]),
]
VT_NAME = {VT.UINT8: "uint8", VT.INT8: "int8", VT.UINT16: "uint16", VT.INT16: "int16", VT.UINT32: "uint32",
           VT.INT32: "int32", VT.FLOAT32: "float32", VT.BOOL: "bool", VT.STRING: "string", VT.ARRAY: "array",
           VT.UINT64: "uint64", VT.INT64: "int64", VT.FLOAT64: "float64"}


def random_kquant_blocks(rng, qtype, n_blocks):
    """Random K-quant blocks with finite, moderate f16 scales (gguf has no K-quant quantizer)."""
    size = gguf.GGML_QUANT_SIZES[qtype][1]
    raw = rng.integers(0, 256, size=(n_blocks, size), dtype=np.uint8)
    scale = np.frombuffer(np.float16(0.01).tobytes() * 1, dtype=np.uint8)
    scale2 = np.frombuffer(np.float16(-0.02).tobytes(), dtype=np.uint8)
    if qtype in (QT.Q4_K, QT.Q5_K):  # d, dmin at the start
        raw[:, 0:2] = scale
        raw[:, 2:4] = scale2
    else:  # Q6_K: d at the end
        raw[:, size - 2:size] = scale
    return raw


def make_types(rng):
    path = OUT / "types.gguf"
    w = gguf.GGUFWriter(str(path), "testarch")
    w.add_custom_alignment(64)
    expected = {"version": 3, "alignment": 64, "metadata": {}, "tensors": []}
    md = expected["metadata"]
    md["general.architecture"] = {"type": "string", "value": "testarch"}
    md["general.alignment"] = {"type": "uint32", "value": 64}
    for key, vt, val in SCALARS:
        w.add_key_value(key, val, vt)
        md[key] = {"type": VT_NAME[vt], "value": f32(val) if vt == VT.FLOAT32 else val}
    for key, vt, val in ARRAYS:
        w.add_key_value(key, val, VT.ARRAY, sub_type=vt)
        md[key] = {"type": "array", "elem_type": VT_NAME[vt],
                   "value": [f32(v) for v in val] if vt == VT.FLOAT32 else val}
    for key, val in NESTED:
        w.add_key_value(key, val, VT.ARRAY, sub_type=VT.ARRAY)
        inner = "string" if isinstance(val[0][0], str) else "int32"
        md[key] = {"type": "array", "elem_type": "array", "inner_type": inner, "value": val}

    def add(name, arr_f32, qtype):
        if qtype == QT.F32:
            data = arr_f32.astype(np.float32)
            w.add_tensor(name, data)
        elif qtype == QT.F16:
            data = arr_f32.astype(np.float16)
            w.add_tensor(name, data)
        else:
            data = quantize(arr_f32.astype(np.float32), qtype)
            w.add_tensor(name, data, raw_dtype=qtype)
        shape = list(arr_f32.shape)
        values = dequantize(data if qtype not in (QT.F32, QT.F16) else data.view(np.uint8), qtype) \
            if qtype not in (QT.F32, QT.F16) else data.astype(np.float32)
        expected["tensors"].append({"name": name, "type": int(qtype), "dims": shape[::-1],
                                    "values": [float(v) for v in np.asarray(values, np.float32).reshape(-1)]})

    add("f32_1d", rng.standard_normal(5), QT.F32)
    add("f32_2d", rng.standard_normal((3, 4)), QT.F32)
    add("f32_3d", rng.standard_normal((2, 3, 4)), QT.F32)
    add("f16", rng.standard_normal((2, 8)), QT.F16)
    add("bf16", rng.standard_normal((2, 8)), QT.BF16)
    for qt in (QT.Q8_0, QT.Q4_0, QT.Q4_1, QT.Q5_0, QT.Q5_1):
        add(qt.name.lower(), rng.standard_normal((2, 64)), qt)
    for qt in (QT.Q4_K, QT.Q5_K, QT.Q6_K):
        raw = random_kquant_blocks(rng, qt, 2).reshape(2, -1)
        w.add_tensor(qt.name.lower(), raw, raw_dtype=qt)
        values = dequantize(raw, qt)
        expected["tensors"].append({"name": qt.name.lower(), "type": int(qt), "dims": [256, 2],
                                    "values": [float(v) for v in values.reshape(-1)]})
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    (OUT / "types.json").write_text(json.dumps(expected, indent=None) + "\n")
    return path


def make_v2():
    path = OUT / "v2.gguf"
    w = gguf.GGUFWriter(str(path), "testarch")
    w.add_uint32("test.answer", 42)
    w.add_string("test.name", "version two")
    w.add_tensor("w", np.arange(8, dtype=np.float32).reshape(2, 4))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    data = bytearray(path.read_bytes())
    data[4:8] = struct.pack("<I", 2)
    path.write_bytes(bytes(data))
    return path


# ---- Tokenizers ----------------------------------------------------------------------------------

def load_corpus():
    with open(TOKDIR / "corpus.jsonl", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def bpe_reference(tokens, merges, token_types, pre, add_bos, bos_id):
    """A `tokenizers` Tokenizer equivalent to llama.cpp's byte-level BPE for this vocabulary."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, processors
    vocab = {t: i for i, t in enumerate(tokens)}
    model = models.BPE(vocab=vocab, merges=[tuple(m.split(" ", 1)) for m in merges],
                       ignore_merges=pre in IGNORE_MERGES)
    tok = Tokenizer(model)
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Split(Regex(r), behavior="isolated") for r in PRE_SPLITS[pre]] +
        [pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(t, normalized=False, special=True)
                            for t, tt in zip(tokens, token_types) if tt == 3])
    user = [AddedToken(t, normalized=False, special=False) for t, tt in zip(tokens, token_types) if tt == 4]
    if user:
        tok.add_tokens(user)
    if add_bos:
        b = tokens[bos_id]
        tok.post_processor = processors.TemplateProcessing(single=f"{b} $A", pair=f"{b} $A {b} $B",
                                                           special_tokens=[(b, bos_id)])
    return tok


def expected_lines(tok_encode, tok_decode, corpus, stride):
    lines = []
    for idx in range(0, len(corpus), stride):
        text = corpus[idx]
        ids = tok_encode(text, False)
        ids_sp = tok_encode(text, True)
        e = {"line": idx, "ids": ids}
        if ids_sp != ids:
            e["ids_sp"] = ids_sp
        for key, val in (("dec", tok_decode(ids, False)), ("dec_sp", tok_decode(ids_sp, False)),
                         ("dec_sk", tok_decode(ids_sp, True))):
            if val != text:
                e[key] = val
        lines.append(e)
    return lines


def write_jsonl(path, lines):
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for e in lines:
            f.write(json.dumps(e, ensure_ascii=False, separators=(",", ":")) + "\n")


def add_bpe_tokenizer_metadata(w, tokens, merges, token_types, pre, bos, eos, add_bos, chat_template=None):
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(pre)
    w.add_token_list(tokens)
    w.add_token_types(token_types)
    w.add_token_merges(merges)
    w.add_bos_token_id(bos)
    w.add_eos_token_id(eos)
    w.add_unk_token_id(eos)
    w.add_pad_token_id(eos)
    w.add_add_bos_token(add_bos)
    if chat_template:
        w.add_chat_template(chat_template)


def make_bpe_tokenizer(corpus):
    j = json.load(open(TOKDIR / "gpt2/tokenizer.json", encoding="utf-8"))
    vocab = j["model"]["vocab"]
    for a in j["added_tokens"]:
        vocab[a["content"]] = a["id"]
    tokens = [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
    assert [vocab[t] for t in tokens] == list(range(len(tokens)))
    merges = [m if isinstance(m, str) else " ".join(m) for m in j["model"]["merges"]]
    specials = {a["content"] for a in j["added_tokens"] if a["special"]}
    token_types = [3 if t in specials else 1 for t in tokens]
    eot = vocab["<|endoftext|>"]
    w = gguf.GGUFWriter(str(OUT / "tok_bpe.gguf"), "llama")
    add_bpe_tokenizer_metadata(w, tokens, merges, token_types, "smollm", eot, eot, True,
                               "{% for m in messages %}{{ m['content'] }}{% endfor %}")
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    for pre in PRE_SPLITS:
        ref = bpe_reference(tokens, merges, token_types, pre, True, eot)
        lines = expected_lines(lambda t, sp: ref.encode(t, add_special_tokens=sp).ids,
                               lambda ids, sk: ref.decode(ids, skip_special_tokens=sk), corpus, 13)
        write_jsonl(OUT / f"tok_bpe_{pre}.jsonl", lines)


def make_spm_tokenizer(corpus):
    """llama.cpp's "llama" vocabulary: tokens with scores and types (1 normal, 2 unknown, 3 control,
    6 byte). Scores follow the merge order (earlier merge = higher score), as sentencepiece's do."""
    j = json.load(open(TOKDIR / "llama2/tokenizer.json", encoding="utf-8"))
    vocab = j["model"]["vocab"]
    tokens = [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
    merges = [m if isinstance(m, str) else " ".join(m) for m in j["model"]["merges"]]
    rank = {m.replace(" ", ""): r for r, m in reversed(list(enumerate(merges)))}
    scores, types = [], []
    for t in tokens:
        if t == "<unk>":
            types.append(2)
        elif t in ("<s>", "</s>"):
            types.append(3)
        elif len(t) == 6 and t.startswith("<0x") and t.endswith(">"):
            types.append(6)
        else:
            types.append(1)
        scores.append(-float(rank.get(t, 0)) if t in rank else 0.0)
    path = OUT / "tok_spm.gguf"
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(vocab["<s>"])
    w.add_eos_token_id(vocab["</s>"])
    w.add_unk_token_id(vocab["<unk>"])
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    w.add_add_space_prefix(True)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    from transformers import AutoTokenizer
    ref = AutoTokenizer.from_pretrained(str(OUT), gguf_file="tok_spm.gguf")
    lines = expected_lines(lambda t, sp: ref.encode(t, add_special_tokens=sp),
                           lambda ids, sk: ref.decode(ids, skip_special_tokens=sk), corpus, 13)
    write_jsonl(OUT / "tok_spm.jsonl", lines)


# ---- tiny llama ----------------------------------------------------------------------------------

def permute(w, n_head):
    """llama.cpp convert_hf_to_gguf: rows of each head reordered to the interleaved-pair RoPE layout."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def make_tiny_llama(rng):
    j = json.load(open(TOKDIR / "gpt2/tokenizer.json", encoding="utf-8"))
    vocab = j["model"]["vocab"]
    keep = 509
    tokens = [t for t, i in sorted(vocab.items(), key=lambda kv: kv[1]) if i < keep]
    kept = set(tokens)
    merges = []
    for m in j["model"]["merges"]:
        a, b = m.split(" ", 1) if isinstance(m, str) else m
        if a in kept and b in kept and a + b in kept:
            merges.append(f"{a} {b}")
    tokens += ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    token_types = [1] * keep + [3, 3, 3]
    n_vocab, hidden, n_head, n_kv, ffn, n_layer = len(tokens), 64, 4, 2, 96, 2
    head_dim = hidden // n_head

    path = OUT / "tiny_llama.gguf"
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("tiny-llama")
    w.add_block_count(n_layer)
    w.add_context_length(256)
    w.add_embedding_length(hidden)
    w.add_feed_forward_length(ffn)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_kv)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_dimension_count(head_dim)
    w.add_vocab_size(n_vocab)
    add_bpe_tokenizer_metadata(w, tokens, merges, token_types, "smollm", keep + 1, keep + 2, False)

    def t(name, arr, qtype):
        arr = arr.astype(np.float32)
        if qtype == QT.F32:
            w.add_tensor(name, arr)
        else:
            w.add_tensor(name, quantize(arr, qtype), raw_dtype=qtype)

    def mat(out, inp, scale):
        return rng.standard_normal((out, inp)) * scale

    t("token_embd.weight", mat(n_vocab, hidden, 1.0), QT.Q8_0)
    t("output_norm.weight", 1.0 + 0.1 * rng.standard_normal(hidden), QT.F32)
    for layer in range(n_layer):
        p = f"blk.{layer}."
        t(p + "attn_norm.weight", 1.0 + 0.1 * rng.standard_normal(hidden), QT.F32)
        t(p + "ffn_norm.weight", 1.0 + 0.1 * rng.standard_normal(hidden), QT.F32)
        t(p + "attn_q.weight", permute(mat(hidden, hidden, 0.3), n_head), QT.Q4_1)
        t(p + "attn_k.weight", permute(mat(n_kv * head_dim, hidden, 0.3), n_kv), QT.Q4_0)
        t(p + "attn_v.weight", mat(n_kv * head_dim, hidden, 0.2), QT.Q5_0)
        t(p + "attn_output.weight", mat(hidden, hidden, 0.15), QT.Q5_1)
        t(p + "ffn_gate.weight", mat(ffn, hidden, 0.15), QT.Q8_0)
        t(p + "ffn_up.weight", mat(ffn, hidden, 0.15), QT.Q4_1)
        t(p + "ffn_down.weight", mat(hidden, ffn, 0.15), QT.Q4_1)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    import torch
    from transformers import AutoModelForCausalLM
    model = AutoModelForCausalLM.from_pretrained(str(OUT), gguf_file="tiny_llama.gguf", dtype=torch.float32)
    model.eval()
    prompts = [[5, 17, 300, 42, 7, 99, 256, 400], [1, 2, 3], list(range(100, 140))]
    ref = {"prompts": [], "vocab_size": n_vocab}
    with torch.no_grad():
        for prompt in prompts:
            ids = torch.tensor([prompt])
            logits = model(ids).logits[0]
            out = model.generate(ids, max_new_tokens=12, do_sample=False, min_new_tokens=12,
                                 output_logits=True, return_dict_in_generate=True)
            # Gap between the best and second-best logit at each greedy step: a step whose gap is
            # within the test's tolerance may legitimately pick the other token.
            margins = [float(torch.topk(step[0], 2).values[0] - torch.topk(step[0], 2).values[1])
                       for step in out.logits]
            ref["prompts"].append({
                "ids": prompt,
                "logits_first": [float(v) for v in logits[0]],
                "logits_last": [float(v) for v in logits[-1]],
                "greedy": [int(v) for v in out.sequences[0, len(prompt):]],
                "margins": margins,
            })
    (OUT / "tiny_llama.json").write_text(json.dumps(ref) + "\n")
    return path


# ---- SmolLM2 (not committed; references recorded from it are) ------------------------------------

SMOL_PROMPTS = [
    "The capital of France is", "Once upon a time", "def fibonacci(n):", "The quick brown fox",
    "In 1492, Columbus", "Water boils at", "The meaning of life is", "import numpy as np\n",
    "Q: What is 2 + 2?\nA:", "My favourite food is", "The sun rises in the", "Paris is known for",
    "<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n", "A list of prime numbers: 2, 3, 5,",
    "Machine learning is", "The best way to learn a language is", "Dear Sir or Madam,",
    "The theory of relativity", "Hello, my name is", "To make a cup of tea,",
]


def smollm2_references(corpus):
    if not SMOLLM2.exists():
        print(f"skipping SmolLM2 references: {SMOLLM2} not found", file=sys.stderr)
        return
    from gguf import GGUFReader
    r = GGUFReader(str(SMOLLM2))

    def field(name):
        f = r.fields[name]
        return f.contents()

    tokens = field("tokenizer.ggml.tokens")
    merges = field("tokenizer.ggml.merges")
    token_types = field("tokenizer.ggml.token_type")
    pre = field("tokenizer.ggml.pre")
    add_bos = bool(field("tokenizer.ggml.add_bos_token"))
    bos = int(field("tokenizer.ggml.bos_token_id"))
    ref = bpe_reference(tokens, merges, token_types, pre, add_bos, bos)
    lines = expected_lines(lambda t, sp: ref.encode(t, add_special_tokens=sp).ids,
                           lambda ids, sk: ref.decode(ids, skip_special_tokens=sk), corpus, 1)
    write_jsonl(OUT / "smollm2_tokenizer.jsonl", lines)

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    hf_tok = AutoTokenizer.from_pretrained(str(SMOLLM2.parent), gguf_file=SMOLLM2.name)
    differ = sum(1 for e in lines if hf_tok.encode(corpus[e["line"]], add_special_tokens=False) != e["ids"])
    print(f"transformers' GGUF tokenizer differs from llama.cpp's '{pre}' pre-tokenizer on {differ} of "
          f"{len(lines)} corpus lines", file=sys.stderr)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(str(SMOLLM2.parent), gguf_file=SMOLLM2.name, dtype=torch.float32)
    model.eval()
    out = {"model": SMOLLM2.name, "steps": 64, "prompts": []}
    with torch.no_grad():
        for i, text in enumerate(SMOL_PROMPTS):
            ids = ref.encode(text, add_special_tokens=True).ids
            gen = model.generate(torch.tensor([ids]), max_new_tokens=64, min_new_tokens=64, do_sample=False,
                                 output_logits=True, return_dict_in_generate=True)
            greedy = [int(v) for v in gen.sequences[0, len(ids):]]
            entry = {"text": text, "ids": ids, "greedy": greedy}
            if i < 4:  # logits at a few positions (the prompt's last token, decode steps 1 and 8): the
                # log-sum-exp over the whole vocabulary and the 256 largest, enough for KL(ref || ours)
                # over the reference's top mass without committing 49152 floats per position
                entry["logits"] = {}
                for s in (0, 1, 8):
                    row = gen.logits[s][0].double()
                    top = torch.topk(row, 256)
                    entry["logits"][str(s)] = {"lse": round(float(torch.logsumexp(row, 0)), 5),
                                               "top_ids": [int(v) for v in top.indices],
                                               "top_logits": [round(float(v), 5) for v in top.values]}
            out["prompts"].append(entry)
    (OUT / "smollm2_reference.json").write_text(json.dumps(out, separators=(",", ":")) + "\n")


# ---- Fuzz seeds ----------------------------------------------------------------------------------

def make_seeds(types_path, v2_path):
    SEEDS.mkdir(parents=True, exist_ok=True)
    for p in SEEDS.glob("*"):
        p.unlink()
    shutil.copy(v2_path, SEEDS / "valid_v2.gguf")
    shutil.copy(types_path, SEEDS / "valid_types.gguf")
    good = v2_path.read_bytes()
    types = types_path.read_bytes()
    seeds = {
        "empty.gguf": b"",
        "magic_only.gguf": b"GGUF",
        "bad_magic.gguf": b"GGUX" + good[4:],
        "bad_version.gguf": good[:4] + struct.pack("<I", 7) + good[8:],
        "big_endian.gguf": good[:4] + struct.pack(">I", 3) + good[8:],
        "truncated_header.gguf": good[:20],
        "truncated_kv.gguf": good[:40],
        "truncated_data.gguf": good[:-8],
        "huge_kv_count.gguf": good[:16] + struct.pack("<Q", 2**60) + good[24:],
        "huge_tensor_count.gguf": good[:8] + struct.pack("<Q", 2**40) + good[16:],
        "truncated_types.gguf": types[: len(types) // 3],
    }
    # A string length past the end: the first key's length field sits at offset 24.
    seeds["string_past_end.gguf"] = good[:24] + struct.pack("<Q", 2**40) + good[32:]
    # Unknown value type for the first entry: after 24 + 8 + len(key).
    klen = struct.unpack_from("<Q", good, 24)[0]
    pos = 32 + klen
    seeds["unknown_value_type.gguf"] = good[:pos] + struct.pack("<I", 99) + good[pos + 4:]
    for name, data in seeds.items():
        (SEEDS / name).write_bytes(data)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--skip-smollm2", action="store_true")
    ap.add_argument("--only-smollm2", action="store_true")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(20240607)
    corpus = load_corpus()
    if args.only_smollm2:
        smollm2_references(corpus)
        return
    types_path = make_types(rng)
    v2_path = make_v2()
    make_bpe_tokenizer(corpus)
    make_spm_tokenizer(corpus)
    make_tiny_llama(rng)
    make_seeds(types_path, v2_path)
    if not args.skip_smollm2:
        smollm2_references(corpus)


if __name__ == "__main__":
    main()
