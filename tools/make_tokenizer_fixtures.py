#!/usr/bin/env python3
"""Trains small tokenizers in the exact tokenizer.json style of real model families and records what
the Hugging Face `tokenizers` library produces for a shared test corpus.

Writes tests/fixtures/tokenizers/:
  corpus.jsonl             one JSON string per line: the test inputs (single lines first, then a few
                           multi-line documents; embedded newlines are JSON-escaped)
  <name>/tokenizer.json    the trained tokenizer, shaped like the family's published file
  <name>/tokenizer_config.json  (some families) bos/eos/add_bos_token/chat_template
  <name>/expected.jsonl    one JSON object per corpus line, same order:
                             "ids"    encode(text, add_special_tokens=False)
                             "ids_sp" encode(text, add_special_tokens=True), omitted when equal to "ids"
                             "dec"    decode(ids, skip_special_tokens=False)
                             "dec_sp" decode(ids_sp, skip_special_tokens=False)
                             "dec_sk" decode(ids_sp, skip_special_tokens=True)
                           a decode field is omitted when it equals the corpus text.

Families:
  gpt2     ByteLevel pre-tokenizer/decoder/post-processor, <|endoftext|>, merges as "a b" strings
  llama3   Split(Llama-3 regex) + ByteLevel(use_regex=false), ignore_merges, TemplateProcessing
           with <|begin_of_text|>, reserved/header/eot special tokens appended after the vocab
  qwen2    NFC normalizer, Split(Qwen2 regex) + ByteLevel, <|endoftext|> <|im_start|> <|im_end|>,
           non-special added tokens <tool_call> </tool_call>
  llama2   SentencePiece-style BPE: Prepend("▁") + Replace(" ", "▁") normalizer, no pre-tokenizer,
           byte_fallback with <0x00>..<0xFF>, fuse_unk, decoder Replace/ByteFallback/Fuse/Strip,
           <unk> <s> </s>, TemplateProcessing adding <s>, merges as "a b" strings
  mistral  Metaspace pre-tokenizer (prepend_scheme "first", split false) + Metaspace decoder,
           byte_fallback, [INST] [/INST] control tokens
  misc     components the families above do not use: NFKC, Replace(Regex), Lowercase, Digits,
           Split behaviours (Removed, MergedWithPrevious, MergedWithNext, Contiguous, invert),
           added tokens with lstrip/rstrip/single_word/normalized, Strip decoder

Deterministic: fixed seeds, single-threaded training. Run:
  /work/venv-tools/bin/python tools/make_tokenizer_fixtures.py [--out tests/fixtures/tokenizers]
"""
import argparse
import json
import os
import random

os.environ["RAYON_NUM_THREADS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers  # noqa: E402

LLAMA3_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                r"|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
               r"|\s*[\r\n]+|\s+(?!\S)|\s+")

# ---- Corpus ------------------------------------------------------------------------------------

WORDS = ("the of and to in is was for that with as on by at from his her it an were are which this be "
         "or has had not but what all when there can more if no out so said who will about up one time "
         "people year way day man thing woman life child world school state family student group country "
         "problem hand part place case week company system program question work government number night "
         "point home water room mother area money story fact month lot right study book eye job word "
         "business issue side kind head house service friend father power hour game line end member law "
         "car city community name president team minute idea kid body information back parent face others "
         "level office door health person art war history party result change morning reason research girl "
         "guy moment air teacher force education tokenizer inference server streaming latency throughput "
         "kernel tensor attention batch sequence prefill decode cache quantization gradient").split()
CONTRACTIONS = ["don't", "I'm", "we'll", "they've", "she'd", "it's", "can't", "won't", "you're", "I'M",
                "WE'LL", "It'S", "they'RE", "y'all", "o'clock", "rock'n'roll", "'s", "'t", "''"]
CJK = ["我们今天讨论分词器的实现。", "北京是中国的首都，人口超过两千万。", "机器学习模型需要大量的数据。",
       "日本語のテキストも正しく処理する必要があります。", "東京タワーは高さ333メートルです。",
       "ひらがなとカタカナと漢字が混ざっています。", "한국어 문장도 포함되어 있습니다.", "서울의 날씨는 맑습니다!",
       "繁體中文與简体中文並存。", "「引用」『二重引用』【括弧】〈山括弧〉", "全角ＡＢＣ１２３と半角ABC123。",
       "龘靐齉爩鱻麤", "𠀀𠀁𠀂𪚥𰻞", "中文English混合Text文本。"]
EMOJI = ["😀", "😂", "🥲", "👍", "👍🏽", "👍🏿", "👋🏻", "👨‍👩‍👧‍👦", "👩🏾‍💻", "🏳️‍🌈", "🏴‍☠️", "🇺🇸", "🇯🇵",
         "🇩🇪", "❤️", "❤", "1️⃣", "#️⃣", "🧑🏻‍🤝‍🧑🏿", "🫠", "🦀", "🐍", "✨", "🔥", "💯", "🤷‍♀️", "🙇🏼‍♂️",
         "©️", "™", "☃", "♥︎"]
SCRIPTS = ["مرحبا بالعالم، كيف حالك اليوم؟", "اللغة العربية جميلة جداً ٢٠٢٤", "שלום עולם, מה שלומך?",
           "עברית נכתבת מימין לשמאל.", "नमस्ते दुनिया, आप कैसे हैं?", "हिन्दी में संख्याएँ १२३४ भी होती हैं।",
           "สวัสดีครับ ยินดีต้อนรับ", "ภาษาไทยไม่มีช่องว่างระหว่างคำ", "Привет, мир! Как дела?",
           "Ελληνικά: Γειά σου Κόσμε", "Tiếng Việt có nhiều dấu: Xin chào thế giới", "Ἐν ἀρχῇ ἦν ὁ λόγος",
           "ქართული ენა", "Հայերեն լեզու", "தமிழ் மொழி", "বাংলা ভাষা", "ኢትዮጵያ", "ᚠᚢᚦᚨᚱᚲ"]
COMBINING = ["e\u0301", "a\u0308", "n\u0303", "o\u0302\u0323", "Z\u0351\u036b\u0343\u036a\u0302\u036b",
             "A\u030a", "\u00c5", "\u212b", "\u1e9b\u0323", "ﬁ", "ﬀ", "Ⅻ", "①", "㎏", "ｶﾀｶﾅ", "x\u0336y\u0336",
             "\u0915\u094d\u0937", "\u1100\u1161\u11a8", "\uac01", "i\u0307", "\u0130stanbul", "Straße",
             "ΣΊΣΥΦΟΣ", "ǅ", "ǈ", "\u0041\u030a\u0301"]
SPACES = [" ", "  ", "   ", "\t", "\t\t", "\n", "\n\n", "\r\n", "\r", " \n", "\n ", " \t ", "\u00a0", "\u3000",
          "\u2009", "\u200b", "\u2028", "\u0085", "\u000b", "\u000c", "    ", "        "]
SPECIALS = ["<|endoftext|>", "<|begin_of_text|>", "<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>",
            "<|im_start|>", "<|im_end|>", "<s>", "</s>", "<unk>", "[INST]", "[/INST]", "<tool_call>",
            "</tool_call>", "<|reserved_special_token_0|>", "<mask>", "<sep>", "<0x41>", "<|endoftext|",
            "<s", "▁", "▁▁", "Ġ", "Ċ"]
CODE = ["def encode(self, text: str) -> list[int]:", "    return [self.vocab[t] for t in tokens]",
        "for (int i = 0; i < n; ++i) { sum += a[i] * b[i]; }", "#include <vector>", "std::vector<int32_t> ids;",
        "if (x != nullptr && *x >= 0x7F) return -1;", "const auto [it, ok] = map.try_emplace(key, 42);",
        "SELECT id, name FROM users WHERE age >= 18 ORDER BY name;", "{\"key\": [1, 2.5, null, true], \"s\": \"\\n\"}",
        "<div class=\"box\"><p>Hello &amp; welcome</p></div>", "x = lambda a, b: a ** 2 + b // 3 % 7",
        "fn main() { println!(\"{:?}\", vec![1u8, 2, 3]); }", "$ grep -rn 'TODO' src/ | wc -l",
        "matrix[i][j] += alpha * (x[i] - mu) / sigma;", "   \tindented_with_mixed_whitespace()",
        "// comment with trailing spaces   ", "/* block */ int main(void) { return 0; }",
        "a=b&&c||!d^e|f<<2>>1", "https://example.com/path?q=token%20izer&lang=en#frag", "user@example.org",
        "C:\\Users\\name\\file.txt", "print(f\"{value:>10.3f}\")", "@decorator\nclass Foo(Bar):\n    pass"]
NUMBERS = ["0", "7", "42", "123", "1234", "12345", "123456789", "3.14159265358979", "1,000,000", "1.000.000,50",
           "-273.15", "+1 (555) 010-9999", "2024-05-17T12:34:56Z", "0xDEADBEEF", "1e-9", "99.9%", "$1,299.99",
           "€50", "¥10000", "١٢٣٤٥", "１２３４５", "٣.١٤", "²³", "½", "12:00", "v1.2.3-rc4",
           "31415926535897932384626433832795028841971"]


def random_prose(rng, n_words):
    out = []
    for i in range(n_words):
        r = rng.random()
        if r < 0.08:
            w = rng.choice(CONTRACTIONS)
        elif r < 0.12:
            w = rng.choice(NUMBERS)
        else:
            w = rng.choice(WORDS)
        if i == 0 or rng.random() < 0.1:
            w = w.capitalize()
        if rng.random() < 0.03:
            w = w.upper()
        out.append(w)
        if rng.random() < 0.12:
            out[-1] += rng.choice([",", ".", ";", ":", "!", "?", "...", " -", "\u2014", ")", "\""])
    return " ".join(out)


def mixed_line(rng):
    parts = []
    for _ in range(rng.randint(1, 6)):
        kind = rng.random()
        if kind < 0.3:
            parts.append(random_prose(rng, rng.randint(1, 8)))
        elif kind < 0.42:
            parts.append(rng.choice(CJK))
        elif kind < 0.52:
            parts.append("".join(rng.choice(EMOJI) for _ in range(rng.randint(1, 4))))
        elif kind < 0.62:
            parts.append(rng.choice(SCRIPTS))
        elif kind < 0.70:
            parts.append(rng.choice(COMBINING) + rng.choice(WORDS))
        elif kind < 0.78:
            parts.append(rng.choice(SPECIALS))
        elif kind < 0.86:
            parts.append(rng.choice(CODE))
        elif kind < 0.93:
            parts.append(rng.choice(NUMBERS))
        else:
            parts.append(rng.choice(SPACES))
    seps = ["", " ", " ", " ", "  ", "\t", "\n", "\r\n"]
    line = parts[0]
    for p in parts[1:]:
        line += rng.choice(seps) + p
    return line


def random_codepoints(rng):
    ranges = [(0x20, 0x7E), (0xA0, 0x24F), (0x370, 0x3FF), (0x400, 0x4FF), (0x590, 0x5FF), (0x600, 0x6FF),
              (0x900, 0x97F), (0xE00, 0xE7F), (0x3040, 0x30FF), (0x4E00, 0x9FFF), (0xAC00, 0xD7A3),
              (0x1F300, 0x1F5FF), (0x1F900, 0x1F9FF), (0x300, 0x36F), (0x2000, 0x206F), (0xFF00, 0xFFEF)]
    s = []
    for _ in range(rng.randint(1, 24)):
        lo, hi = rng.choice(ranges)
        s.append(chr(rng.randint(lo, hi)))
    return "".join(s)


def build_test_corpus():
    rng = random.Random(20240517)
    lines = ["", " ", "  ", "\t", "\n", "\r\n", "a", "A", "hello", " hello", "hello ", "  hello  world  ",
             "Hello world", "Hello, world!", "\ufffd", "abc\ufffddef", "\ufffd\ufffd", "\u0000", "a\u0000b",
             "\u007f", "\u00ad", "\ufeffBOM at start", "trailing newline\n", "\n\nleading newlines",
             "x\u200dy", "\u202eRTL override\u202c"]
    lines += SPECIALS
    lines += [a + b for a in SPECIALS[:8] for b in ["hello", " hello", "\n"]]
    lines += ["<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi there!<|eot_id|>",
              "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n你好<|im_end|>\n",
              "<s>[INST] What is 2+2? [/INST] 4</s>", "<s> <s>  </s>", "text<|endoftext|>more text<|endoftext|>",
              "<|endoftext|><|endoftext|>", "<tool_call>{\"name\": \"f\"}</tool_call>", "a <mask> b", "a<mask>b",
              "word<sep>word", "<sep> spaced <sep>", "AUDIO<mask>", "  <mask>  "]
    lines += CJK + EMOJI + SCRIPTS + COMBINING + SPACES + CODE + NUMBERS + CONTRACTIONS
    lines += [" ".join(EMOJI), "".join(EMOJI), "👨‍👩‍👧‍👦👨‍👩‍👧‍👦👨‍👩‍👧‍👦", "🏻🏼🏽🏾🏿", "\u200d\u200d", "\ufe0f"]
    lines += ["a" * 300, "ab" * 200, " " * 100, "\n" * 50, "1" * 100, "lo" + "o" * 200 + "ng", "ABC" * 50,
              "-" * 80, "=" * 40 + ">", "😀" * 60, "中" * 80]
    while len(lines) < 1400:
        lines.append(mixed_line(rng))
    while len(lines) < 1700:
        lines.append(random_prose(rng, rng.randint(1, 40)))
    while len(lines) < 1900:
        lines.append(random_codepoints(rng))
    while len(lines) < 2100:
        ws = rng.choice(SPACES)
        lines.append(rng.choice(WORDS) + ws + rng.choice(NUMBERS) + ws * rng.randint(1, 3) + rng.choice(CODE))
    docs = []
    for _ in range(8):
        n = rng.randint(3, 12)
        nl = rng.choice(["\n", "\r\n", "\n\n"])
        docs.append(nl.join(mixed_line(rng) for _ in range(n)))
    docs.append("\n".join(CODE))
    docs.append("# Title\n\n- item one\n- item two\n\n```python\nprint('hi')\n```\n")
    return lines + docs


def build_training_corpus():
    rng = random.Random(7)
    out = []
    for _ in range(6000):
        out.append(random_prose(rng, rng.randint(5, 40)))
    for _ in range(3000):
        out.append(mixed_line(rng))
    out += CJK * 20 + SCRIPTS * 20 + CODE * 30 + EMOJI * 10 + NUMBERS * 10
    return out


# ---- Tokenizer families ------------------------------------------------------------------------


def to_legacy_merges(tok_json):
    merges = tok_json["model"]["merges"]
    assert all(" " not in a and " " not in b for a, b in merges)
    tok_json["model"]["merges"] = [f"{a} {b}" for a, b in merges]


def added(id_, content, special=True, lstrip=False, rstrip=False, single_word=False, normalized=None):
    return {"id": id_, "content": content, "single_word": single_word, "lstrip": lstrip, "rstrip": rstrip,
            "normalized": (not special) if normalized is None else normalized, "special": special}


def template(single, pair, specials):
    def pieces(spec):
        out = []
        for item in spec.split():
            if item.startswith("$"):
                name, _, type_id = item[1:].partition(":")
                out.append({"Sequence": {"id": name, "type_id": int(type_id or 0)}})
            else:
                name, _, type_id = item.partition(":")
                out.append({"SpecialToken": {"id": name, "type_id": int(type_id or 0)}})
        return out

    return {"type": "TemplateProcessing", "single": pieces(single), "pair": pieces(pair),
            "special_tokens": {t: {"id": t, "ids": [i], "tokens": [t]} for t, i in specials.items()}}


def train_byte_level(corpus, vocab_size, specials, split_regex=None, nfc=False):
    tok = Tokenizer(models.BPE())
    if nfc:
        tok.normalizer = normalizers.NFC()
    if split_regex:
        from tokenizers import Regex
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(split_regex), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    else:
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus, trainer)
    return json.loads(tok.to_str())


def make_gpt2(corpus):
    j = train_byte_level(corpus, 3000, [])
    n = len(j["model"]["vocab"])
    j["model"]["vocab"]["<|endoftext|>"] = n
    j["added_tokens"] = [added(n, "<|endoftext|>")]
    j["normalizer"] = None
    j["pre_tokenizer"] = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    j["post_processor"] = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True}
    j["decoder"] = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}
    j["model"].update({"continuing_subword_prefix": "", "end_of_word_suffix": "", "fuse_unk": False,
                       "byte_fallback": False, "ignore_merges": False})
    to_legacy_merges(j)
    config = {"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>",
              "add_bos_token": False, "model_max_length": 1024}
    return j, config


def make_llama3(corpus):
    j = train_byte_level(corpus, 3500, [], split_regex=LLAMA3_REGEX)
    n = len(j["model"]["vocab"])
    names = ["<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>",
             "<|reserved_special_token_1|>", "<|finetune_right_pad_id|>", "<|reserved_special_token_2|>",
             "<|start_header_id|>", "<|end_header_id|>", "<|eom_id|>", "<|eot_id|>", "<|python_tag|>"]
    j["added_tokens"] = [added(n + i, t) for i, t in enumerate(names)]
    j["normalizer"] = None
    j["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": LLAMA3_REGEX}, "behavior": "Isolated", "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]}
    j["post_processor"] = {"type": "Sequence", "processors": [
        {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
        template("<|begin_of_text|> $A", "<|begin_of_text|> $A <|begin_of_text|>:1 $B:1",
                 {"<|begin_of_text|>": n})]}
    j["decoder"] = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}
    j["model"]["ignore_merges"] = True
    chat = ("{{- bos_token }}{%- for message in messages %}{{- '<|start_header_id|>' + message['role'] + "
            "'<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}{%- endfor %}"
            "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}")
    config = {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>", "add_bos_token": True,
              "chat_template": chat, "model_max_length": 131072}
    return j, config


def make_qwen2(corpus):
    j = train_byte_level(corpus, 3000, [], split_regex=QWEN2_REGEX, nfc=True)
    n = len(j["model"]["vocab"])
    j["added_tokens"] = [added(n, "<|endoftext|>"), added(n + 1, "<|im_start|>"), added(n + 2, "<|im_end|>"),
                         added(n + 3, "<tool_call>", special=False, normalized=False),
                         added(n + 4, "</tool_call>", special=False, normalized=False)]
    j["normalizer"] = {"type": "NFC"}
    j["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": QWEN2_REGEX}, "behavior": "Isolated", "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}]}
    j["post_processor"] = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False,
                           "use_regex": False}
    j["decoder"] = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}
    j["model"].update({"byte_fallback": False, "ignore_merges": False})
    chat = ("{%- for message in messages %}{{- '<|im_start|>' + message.role + '\\n' + message.content + "
            "'<|im_end|>' + '\\n' }}{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}"
            "{%- endif %}")
    config = {"bos_token": None, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>", "add_bos_token": False,
              "chat_template": chat}
    return j, config


def restrict_alphabet(corpus, keep):
    """Drops all but the `keep` most frequent characters (ties by code point), so that rare
    characters stay out of the vocabulary deterministically and exercise byte fallback / unk."""
    counts = {}
    for line in corpus:
        for c in line:
            counts[c] = counts.get(c, 0) + 1
    allowed = set(sorted(counts, key=lambda c: (-counts[c], c))[:keep])
    return ["".join(c for c in line if c in allowed) for line in corpus]


def train_sentencepiece_style(corpus, vocab_size, extra_specials):
    """BPE over Metaspace-split words with a small alphabet, re-laid out the way SentencePiece
    conversions are: <unk> <s> </s>, then <0x00>..<0xFF>, then the learned pieces."""
    tok = Tokenizer(models.BPE(unk_token="<unk>", fuse_unk=True, byte_fallback=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<unk>", "<s>", "</s>"],
                                  show_progress=False)
    tok.train_from_iterator(restrict_alphabet(corpus, 180), trainer)
    trained = json.loads(tok.to_str())["model"]
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for b in range(256):
        vocab[f"<0x{b:02X}>"] = len(vocab)
    for t in extra_specials:
        vocab[t] = len(vocab)
    for t, _ in sorted(trained["vocab"].items(), key=lambda kv: kv[1]):
        if t not in vocab:
            vocab[t] = len(vocab)
    model = {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
             "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
             "vocab": vocab, "merges": trained["merges"]}
    return model


def make_llama2(corpus):
    model = train_sentencepiece_style(corpus, 3000, [])
    j = {"version": "1.0", "truncation": None, "padding": None,
         "added_tokens": [added(0, "<unk>"), added(1, "<s>"), added(2, "</s>")],
         "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "▁"},
                                                            {"type": "Replace", "pattern": {"String": " "},
                                                             "content": "▁"}]},
         "pre_tokenizer": None,
         "post_processor": template("<s> $A", "<s> $A <s>:1 $B:1", {"<s>": 1}),
         "decoder": {"type": "Sequence", "decoders": [
             {"type": "Replace", "pattern": {"String": "▁"}, "content": " "}, {"type": "ByteFallback"},
             {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
         "model": model}
    to_legacy_merges(j)
    config = {"bos_token": {"content": "<s>", "lstrip": False, "normalized": False, "rstrip": False,
                            "single_word": False},
              "eos_token": {"content": "</s>", "lstrip": False, "normalized": False, "rstrip": False,
                            "single_word": False},
              "unk_token": "<unk>", "add_bos_token": True, "add_eos_token": False, "legacy": False}
    return j, config


def make_mistral(corpus):
    model = train_sentencepiece_style(corpus, 2800, ["[INST]", "[/INST]"])
    j = {"version": "1.0", "truncation": None, "padding": None,
         "added_tokens": [added(0, "<unk>"), added(1, "<s>"), added(2, "</s>"), added(259, "[INST]"),
                          added(260, "[/INST]")],
         "normalizer": None,
         "pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": False},
         "post_processor": template("<s> $A", "<s> $A <s>:1 $B:1", {"<s>": 1}),
         "decoder": {"type": "Sequence", "decoders": [
             {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": False},
             {"type": "ByteFallback"}, {"type": "Fuse"}]},
         "model": model}
    config = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "add_bos_token": True}
    return j, config


def make_misc(corpus):
    from tokenizers import Regex
    tok = Tokenizer(models.BPE(unk_token="[UNK]"))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase(),
                                           normalizers.Replace(Regex(r"\s+"), " ")])
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Digits(True)])
    trainer = trainers.BpeTrainer(vocab_size=1500, special_tokens=["[UNK]", "[CLS]", "[SEP]"], show_progress=False)
    tok.train_from_iterator(restrict_alphabet(corpus, 200), trainer)
    j = json.loads(tok.to_str())
    j["normalizer"] = {"type": "Sequence", "normalizers": [
        {"type": "NFKC"}, {"type": "Lowercase"}, {"type": "Replace", "pattern": {"Regex": r"\s+"}, "content": " "}]}
    j["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"String": " "}, "behavior": "Removed", "invert": False},
        {"type": "Split", "pattern": {"String": "-"}, "behavior": "MergedWithPrevious", "invert": False},
        {"type": "Split", "pattern": {"String": "."}, "behavior": "MergedWithNext", "invert": False},
        {"type": "Split", "pattern": {"Regex": r"[,;:]"}, "behavior": "Contiguous", "invert": False},
        {"type": "Split", "pattern": {"Regex": r"\p{L}+"}, "behavior": "Isolated", "invert": True},
        {"type": "Digits", "individual_digits": False}]}
    n = len(j["model"]["vocab"])
    j["added_tokens"] = [added(0, "[UNK]"), added(1, "[CLS]"), added(2, "[SEP]"),
                         added(n, "<mask>", special=True, lstrip=True, rstrip=False),
                         added(n + 1, "<sep>", special=True, lstrip=True, rstrip=True),
                         added(n + 2, "audio", special=False, single_word=True, normalized=True),
                         added(n + 3, "Token", special=False, normalized=True),
                         added(n + 4, "tokenizer", special=False, normalized=False)]
    j["post_processor"] = template("[CLS] $A [SEP]", "[CLS] $A [SEP] $B:1 [SEP]:1", {"[CLS]": 1, "[SEP]": 2})
    j["decoder"] = {"type": "Sequence", "decoders": [
        {"type": "Replace", "pattern": {"String": "q"}, "content": "Q"},
        {"type": "Strip", "content": "x", "start": 1, "stop": 0}]}
    return j, None


FAMILIES = [("gpt2", make_gpt2), ("llama3", make_llama3), ("qwen2", make_qwen2), ("llama2", make_llama2),
            ("mistral", make_mistral), ("misc", make_misc)]


def dumps(obj):
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="tests/fixtures/tokenizers")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    test_corpus = build_test_corpus()
    train_corpus = build_training_corpus()
    with open(os.path.join(args.out, "corpus.jsonl"), "w", encoding="utf-8", newline="\n") as f:
        for line in test_corpus:
            f.write(dumps(line) + "\n")
    for name, make in FAMILIES:
        tok_json, config = make(train_corpus)
        text = json.dumps(tok_json, ensure_ascii=False, indent=None)
        tok = Tokenizer.from_str(text)  # validates the hand-shaped JSON
        out_dir = os.path.join(args.out, name)
        os.makedirs(out_dir, exist_ok=True)
        with open(os.path.join(out_dir, "tokenizer.json"), "w", encoding="utf-8") as f:
            f.write(text)
        if config is not None:
            with open(os.path.join(out_dir, "tokenizer_config.json"), "w", encoding="utf-8") as f:
                json.dump(config, f, ensure_ascii=False, indent=1)
        with open(os.path.join(out_dir, "expected.jsonl"), "w", encoding="utf-8", newline="\n") as f:
            for line in test_corpus:
                ids = tok.encode(line, add_special_tokens=False).ids
                ids_sp = tok.encode(line, add_special_tokens=True).ids
                rec = {"ids": ids}
                if ids_sp != ids:
                    rec["ids_sp"] = ids_sp
                for key, value in (("dec", tok.decode(ids, skip_special_tokens=False)),
                                   ("dec_sp", tok.decode(ids_sp, skip_special_tokens=False)),
                                   ("dec_sk", tok.decode(ids_sp, skip_special_tokens=True))):
                    if value != line:
                        rec[key] = value
                f.write(dumps(rec) + "\n")
        print(f"{name}: vocab {tok.get_vocab_size()}, {len(test_corpus)} lines")


if __name__ == "__main__":
    main()
