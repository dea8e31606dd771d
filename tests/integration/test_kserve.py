"""KServe v2 (Open Inference Protocol) through NVIDIA's `tritonclient.grpc`."""
import queue

import numpy as np
import pytest
import tritonclient.grpc as tc
from tritonclient.utils import InferenceServerException

from conftest import post

PROMPT = "The quick brown fox"
PARAMS = {"max_tokens": 24, "temperature": 0, "ignore_eos": True}
TIMEOUT = 30


@pytest.fixture(scope="module")
def client(shared_daemon):
    c = tc.InferenceServerClient(url=shared_daemon.grpc_target)
    yield c
    c.close()


@pytest.fixture(scope="module")
def reference(shared_daemon):
    r = post(shared_daemon, "/completions", {"prompt": PROMPT, **PARAMS}).json()
    assert r["choices"][0]["finish_reason"] == "length"
    return r["choices"][0]["text"]


def text_input(prompt):
    i = tc.InferInput("text_input", [1], "BYTES")
    i.set_data_from_numpy(np.array([prompt.encode()], dtype=np.object_))
    return i


def test_liveness_and_metadata(client):
    assert client.is_server_live(client_timeout=TIMEOUT)
    assert client.is_server_ready(client_timeout=TIMEOUT)
    assert client.is_model_ready("tiny", client_timeout=TIMEOUT)
    with pytest.raises(InferenceServerException):
        client.is_model_ready("no-such-model", client_timeout=TIMEOUT)
    md = client.get_model_metadata("tiny", as_json=True, client_timeout=TIMEOUT)
    assert md["name"] == "tiny"
    assert [(i["name"], i["datatype"]) for i in md["inputs"]] == [("text_input", "BYTES")]
    assert [(o["name"], o["datatype"]) for o in md["outputs"]] == [("text_output", "BYTES")]
    smd = client.get_server_metadata(as_json=True, client_timeout=TIMEOUT)
    assert smd["name"] == "tessera"


def test_infer_matches_rest(client, reference):
    r = client.infer("tiny", [text_input(PROMPT)], outputs=[tc.InferRequestedOutput("text_output")],
                     parameters=PARAMS, client_timeout=TIMEOUT)
    out = r.as_numpy("text_output")
    assert out.shape == (1,)
    assert out[0].decode() == reference
    assert r.get_response().model_name == "tiny"


def scalar_input(name, value, datatype, dtype):
    i = tc.InferInput(name, [1], datatype)
    i.set_data_from_numpy(np.array([value], dtype=dtype))  # sent as raw_input_contents
    return i


def test_scalar_tensor_inputs_match_rest(client, reference):
    # TensorRT-LLM-style clients send the settings as scalar tensors (raw little-endian bytes).
    inputs = [text_input(PROMPT), scalar_input("max_tokens", 24, "INT32", np.int32),
              scalar_input("temperature", 0.0, "FP32", np.float32), scalar_input("seed", 7, "UINT64", np.uint64),
              scalar_input("top_k", 0, "INT64", np.int64)]
    r = client.infer("tiny", inputs, outputs=[tc.InferRequestedOutput("text_output")],
                     parameters={"ignore_eos": True}, client_timeout=TIMEOUT)
    assert r.as_numpy("text_output")[0].decode() == reference
    with pytest.raises(InferenceServerException) as e:
        client.infer("tiny", [text_input(PROMPT), scalar_input("max_tokens", 24, "INT16", np.int16)],
                     parameters=PARAMS, client_timeout=TIMEOUT)
    assert e.value.status() == "StatusCode.INVALID_ARGUMENT", e.value
    assert "max_tokens" in e.value.message()


def test_infer_errors(client):
    with pytest.raises(InferenceServerException) as e:
        client.infer("no-such-model", [text_input(PROMPT)], parameters=PARAMS, client_timeout=TIMEOUT)
    assert e.value.status() == "StatusCode.NOT_FOUND", e.value
    with pytest.raises(InferenceServerException) as e:
        client.infer("tiny", [text_input(PROMPT)], parameters={**PARAMS, "temperature": -3}, client_timeout=TIMEOUT)
    assert e.value.status() == "StatusCode.INVALID_ARGUMENT", e.value
    assert "temperature" in e.value.message()


def test_stream_infer_matches_rest(client, reference):
    results = queue.Queue()
    client.start_stream(callback=lambda result, error: results.put((result, error)), stream_timeout=TIMEOUT)
    try:
        client.async_stream_infer("tiny", [text_input(PROMPT)], request_id="s1",
                                  parameters={**PARAMS, "stream": True})
        pieces, finals = [], []
        while True:
            result, error = results.get(timeout=TIMEOUT)
            assert error is None, error
            resp = result.get_response()
            assert resp.id == "s1"
            final = resp.parameters["triton_final_response"].bool_param
            finals.append(final)
            pieces.append(result.as_numpy("text_output")[0].decode())
            if final:
                break
    finally:
        client.stop_stream()
    assert len(pieces) > 1, "expected one response per delta"
    assert finals == [False] * (len(finals) - 1) + [True]
    assert "".join(pieces) == reference


def test_stream_infer_non_streaming_mode(client, reference):
    """With `stream` false ModelStreamInfer sends one final response per request (the default is true)."""
    results = queue.Queue()
    client.start_stream(callback=lambda result, error: results.put((result, error)), stream_timeout=TIMEOUT)
    try:
        for k in range(2):
            client.async_stream_infer("tiny", [text_input(PROMPT)], request_id=f"r{k}",
                                      parameters={**PARAMS, "stream": False})
        got = {}
        for _ in range(2):
            result, error = results.get(timeout=TIMEOUT)
            assert error is None, error
            resp = result.get_response()
            assert resp.parameters["triton_final_response"].bool_param
            got[resp.id] = result.as_numpy("text_output")[0].decode()
    finally:
        client.stop_stream()
    assert got == {"r0": reference, "r1": reference}
