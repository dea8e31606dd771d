#!/usr/bin/env python3
"""Writes tests/fixtures/quant/: blocks of every ggml quantized type that kernels::DType supports and
the floats that the `gguf` package (PyPI, gguf.quants.dequantize) decodes them to.

For each type NAME (q8_0, q4_0, q4_1, q5_0, q5_1, q4_k, q5_k, q6_k):
  NAME.blocks  raw blocks, as they sit in a GGUF tensor
  NAME.f32     little-endian float32, one per element, gguf's dequantization of NAME.blocks

Half of the blocks are random bytes with their f16 scale fields replaced by finite random halves
(so every bit pattern of the quantized fields shows up), half are gguf.quants.quantize of random
floats where the package can quantize that type.

    .venv/bin/pip install gguf numpy
    .venv/bin/python tools/make_quant_fixtures.py
"""
import pathlib

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf.constants import GGML_QUANT_SIZES
from gguf.quants import dequantize, quantize

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "quant"

# name → (type, byte offsets of the f16 fields inside a block)
TYPES = {
    "q8_0": (T.Q8_0, [0]),
    "q4_0": (T.Q4_0, [0]),
    "q4_1": (T.Q4_1, [0, 2]),
    "q5_0": (T.Q5_0, [0]),
    "q5_1": (T.Q5_1, [0, 2]),
    "q4_k": (T.Q4_K, [0, 2]),
    "q5_k": (T.Q5_K, [0, 2]),
    "q6_k": (T.Q6_K, [208]),
}
ELEMENTS = 4096  # per type: 128 blocks of 32 or 16 super-blocks of 256


def random_blocks(rng, qtype, half_offsets, n_blocks):
    block_size, type_size = GGML_QUANT_SIZES[qtype]
    raw = rng.integers(0, 256, size=(n_blocks, type_size), dtype=np.uint8)
    for off in half_offsets:
        # Magnitudes over several binades, both signs, a few exact zeros and a subnormal.
        h = (rng.standard_normal(n_blocks) * np.exp2(rng.integers(-12, 1, n_blocks))).astype(np.float16)
        h[::17] = 0
        h[5::19] = np.float16(3e-7)
        raw[:, off : off + 2] = h.view(np.uint8).reshape(n_blocks, 2)
    return raw


def main():
    rng = np.random.default_rng(20240521)
    OUT.mkdir(parents=True, exist_ok=True)
    for name, (qtype, half_offsets) in TYPES.items():
        block_size, type_size = GGML_QUANT_SIZES[qtype]
        n_blocks = ELEMENTS // block_size
        parts = [random_blocks(rng, qtype, half_offsets, n_blocks // 2)]
        floats = (rng.standard_normal((n_blocks - n_blocks // 2) * block_size) * 0.05).astype(np.float32)
        try:
            q = quantize(floats.reshape(1, -1), qtype)
            parts.append(np.asarray(q, dtype=np.uint8).reshape(-1, type_size))
        except NotImplementedError:
            parts.append(random_blocks(rng, qtype, half_offsets, n_blocks - n_blocks // 2))
        blocks = np.concatenate(parts).reshape(-1)
        assert blocks.size == n_blocks * type_size
        values = dequantize(blocks, qtype).astype("<f4").reshape(-1)
        assert values.size == ELEMENTS and np.all(np.isfinite(values)), name
        (OUT / f"{name}.blocks").write_bytes(blocks.tobytes())
        (OUT / f"{name}.f32").write_bytes(values.tobytes())
        print(f"{name}: {n_blocks} blocks, {blocks.size} bytes, max |x| {np.abs(values).max():.4g}")


if __name__ == "__main__":
    main()
