"""tessera.v1.Inference through stubs generated with grpcio-tools, plus health and reflection."""
import json
import os

import grpc
import jinja2
import pytest
import requests
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from conftest import REPO, TOKENIZER_DIR, post

TIMEOUT = 30


@pytest.fixture(scope="module")
def channel(shared_daemon):
    ch = grpc.insecure_channel(shared_daemon.grpc_target)
    grpc.channel_ready_future(ch).result(timeout=TIMEOUT)
    yield ch
    ch.close()


@pytest.fixture(scope="module")
def stub(channel, stubs):
    return stubs.grpc.InferenceStub(channel)


def greedy(pb, max_tokens, **kw):
    return pb.SamplingParams(temperature=0, max_tokens=max_tokens, ignore_eos=True, **kw)


def collect(responses):
    out = list(responses)
    assert out, "empty stream"
    return out


def test_list_models(stub, stubs):
    r = stub.ListModels(stubs.pb.ListModelsRequest(), timeout=TIMEOUT)
    assert [m.id for m in r.models] == ["tiny"]
    with open(os.path.join(TOKENIZER_DIR, "tokenizer.json")) as f:
        tok = json.load(f)
    vocab = len(tok["model"]["vocab"]) + len([t for t in tok["added_tokens"] if t["content"] not in tok["model"]["vocab"]])
    assert r.models[0].vocab_size >= vocab
    assert r.models[0].max_model_len == 1024


def test_generate_text_matches_rest(stub, stubs, shared_daemon):
    pb = stubs.pb
    resp = collect(stub.Generate(pb.GenerateRequest(text="Hello world", sampling=greedy(pb, 12)), timeout=TIMEOUT))
    text = "".join(r.text for r in resp)
    ids = [t.token_id for r in resp for t in r.tokens]
    assert len(ids) == 12
    assert [r.finish_reason for r in resp[:-1]] == [""] * (len(resp) - 1)
    assert resp[-1].finish_reason == "length"
    assert resp[-1].usage.completion_tokens == 12
    assert len({r.request_id for r in resp}) == 1 and resp[0].request_id
    rest = post(shared_daemon, "/completions",
                {"prompt": "Hello world", "max_tokens": 12, "temperature": 0, "ignore_eos": True}).json()
    assert text == rest["choices"][0]["text"]
    assert resp[-1].usage.prompt_tokens == rest["usage"]["prompt_tokens"]


def test_generate_token_ids_equals_text_prompt(stub, stubs):
    pb = stubs.pb
    tok = stub.Tokenize(pb.TokenizeRequest(text="Hello world"), timeout=TIMEOUT)
    a = collect(stub.Generate(pb.GenerateRequest(text="Hello world", sampling=greedy(pb, 10)), timeout=TIMEOUT))
    b = collect(stub.Generate(pb.GenerateRequest(token_ids=pb.TokenIds(ids=list(tok.token_ids)),
                                                 sampling=greedy(pb, 10), request_id="my-id-1"), timeout=TIMEOUT))
    assert [t.token_id for r in a for t in r.tokens] == [t.token_id for r in b for t in r.tokens]
    assert "".join(r.text for r in a) == "".join(r.text for r in b)
    assert all(r.request_id == "my-id-1" for r in b)
    assert b[-1].usage.prompt_tokens == len(tok.token_ids)


def test_generate_logprobs_and_stop(stub, stubs):
    pb = stubs.pb
    resp = collect(stub.Generate(pb.GenerateRequest(text="Hello world", sampling=greedy(pb, 6, logprobs=2)),
                                 timeout=TIMEOUT))
    toks = [t for r in resp for t in r.tokens]
    assert len(toks) == 6
    for t in toks:
        assert len(t.top_logprobs) == 2
        assert t.logprob == pytest.approx(t.top_logprobs[0].logprob, abs=1e-5)
        assert t.top_logprobs[0].token_id == t.token_id
    text = "".join(r.text for r in resp)
    stop = text[2:4]
    cut = collect(stub.Generate(pb.GenerateRequest(text="Hello world", sampling=greedy(pb, 6, stop=[stop])),
                                timeout=TIMEOUT))
    assert "".join(r.text for r in cut) == text[:text.find(stop)]
    assert cut[-1].finish_reason == "stop" and cut[-1].stop_reason == stop


def test_generate_errors(stub, stubs):
    pb = stubs.pb
    with pytest.raises(grpc.RpcError) as e:
        list(stub.Generate(pb.GenerateRequest(model="nope", text="x", sampling=greedy(pb, 2)), timeout=TIMEOUT))
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as e:
        list(stub.Generate(pb.GenerateRequest(text="x", sampling=pb.SamplingParams(temperature=-1)), timeout=TIMEOUT))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "temperature" in e.value.details()
    with pytest.raises(grpc.RpcError) as e:
        list(stub.Generate(pb.GenerateRequest(token_ids=pb.TokenIds(ids=[10 ** 8]), sampling=greedy(pb, 2)),
                           timeout=TIMEOUT))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def render_chat(messages):
    with open(os.path.join(TOKENIZER_DIR, "tokenizer_config.json")) as f:
        template = json.load(f)["chat_template"]
    return jinja2.Environment().from_string(template).render(messages=messages, add_generation_prompt=True)


def test_chat_matches_rest_and_template(stub, stubs, shared_daemon):
    pb = stubs.pb
    msgs = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hello there"}]
    resp = collect(stub.Chat(pb.ChatRequest(messages=[pb.ChatMessage(**m) for m in msgs], sampling=greedy(pb, 9)),
                             timeout=TIMEOUT))
    text = "".join(r.text for r in resp)
    rest = post(shared_daemon, "/chat/completions",
                {"messages": msgs, "max_tokens": 9, "temperature": 0, "ignore_eos": True}).json()
    assert text == rest["choices"][0]["message"]["content"]
    assert resp[-1].finish_reason == "length"
    # The prompt is the chat template rendered by jinja2 (independently of the daemon's renderer),
    # then tokenized without adding special tokens.
    rendered = render_chat(msgs)
    tok = stub.Tokenize(pb.TokenizeRequest(text=rendered, add_special_tokens=False), timeout=TIMEOUT)
    assert resp[-1].usage.prompt_tokens == len(tok.token_ids) == rest["usage"]["prompt_tokens"]
    # Generating from the rendered text gives the same tokens as Chat.
    same = collect(stub.Generate(pb.GenerateRequest(token_ids=pb.TokenIds(ids=list(tok.token_ids)),
                                                    sampling=greedy(pb, 9)), timeout=TIMEOUT))
    assert "".join(r.text for r in same) == text


def _corpus_cases():
    root = os.path.join(REPO, "tests", "fixtures", "tokenizers")
    with open(os.path.join(root, "corpus.jsonl"), encoding="utf-8") as c, \
            open(os.path.join(root, "qwen2", "expected.jsonl"), encoding="utf-8") as e:
        for text_line, exp_line in zip(c, e):
            text = json.loads(text_line)
            try:
                text.encode("utf-8")  # proto3 strings must be valid UTF-8
            except UnicodeEncodeError:
                continue
            exp = json.loads(exp_line)
            yield text, exp["ids"], exp.get("ids_sp", exp["ids"])


def test_tokenize_matches_hf_fixture(stub, stubs):
    """Tokenize against ids recorded from the Hugging Face `tokenizers` library (tools/make_tokenizer_fixtures.py)."""
    pb = stubs.pb
    cases = list(_corpus_cases())
    assert len(cases) > 1000
    bad = []
    for text, ids, ids_sp in cases:
        got = stub.Tokenize(pb.TokenizeRequest(text=text), timeout=TIMEOUT)
        if list(got.token_ids) != ids:
            bad.append((text, ids, list(got.token_ids)))
        elif len(got.tokens) != len(ids):
            bad.append((text, "tokens", list(got.tokens)))
    assert not bad, f"{len(bad)} of {len(cases)} differ, first: {bad[:3]}"
    got = stub.Tokenize(pb.TokenizeRequest(text="hello", add_special_tokens=True), timeout=TIMEOUT)
    assert got.max_model_len == 1024


def test_tokenize_agrees_with_rest_prompt_tokens(stub, stubs, shared_daemon):
    pb = stubs.pb
    for text in ["a", "Hello, world!", "  multiple   spaces\nand lines\n", "numbers 1234567 and ünïcödé"]:
        tok = stub.Tokenize(pb.TokenizeRequest(text=text), timeout=TIMEOUT)
        rest = post(shared_daemon, "/completions", {"prompt": text, "max_tokens": 1}).json()
        assert rest["usage"]["prompt_tokens"] == len(tok.token_ids), text
        # And the ids themselves: a completion from the ids gives the same prompt count.
        rest_ids = post(shared_daemon, "/completions", {"prompt": list(tok.token_ids), "max_tokens": 1}).json()
        assert rest_ids["usage"]["prompt_tokens"] == len(tok.token_ids)
    with pytest.raises(grpc.RpcError) as e:
        stub.Tokenize(pb.TokenizeRequest(model="other", text="x"), timeout=TIMEOUT)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND


def test_health(channel, shared_daemon):
    h = health_pb2_grpc.HealthStub(channel)
    for service in ("", "tessera.v1.Inference"):
        r = h.Check(health_pb2.HealthCheckRequest(service=service), timeout=TIMEOUT)
        assert r.status == health_pb2.HealthCheckResponse.SERVING, service
    with pytest.raises(grpc.RpcError) as e:
        h.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=TIMEOUT)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    assert requests.get(shared_daemon.url + "/health", timeout=10).status_code == 200
    assert requests.get(shared_daemon.url + "/v2/health/ready", timeout=10).status_code == 200
    assert requests.get(shared_daemon.url + "/v2/health/live", timeout=10).status_code == 200


def test_reflection(channel):
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    reqs = [reflection_pb2.ServerReflectionRequest(list_services="")]
    resps = list(stub.ServerReflectionInfo(iter(reqs), timeout=TIMEOUT))
    names = {s.name for s in resps[0].list_services_response.service}
    for want in ("tessera.v1.Inference", "inference.GRPCInferenceService", "grpc.health.v1.Health"):
        assert want in names, names
    # The descriptor of the public service can be fetched and names its methods.
    from google.protobuf import descriptor_pb2
    reqs = [reflection_pb2.ServerReflectionRequest(file_containing_symbol="tessera.v1.Inference")]
    resps = list(stub.ServerReflectionInfo(iter(reqs), timeout=TIMEOUT))
    fd = descriptor_pb2.FileDescriptorProto.FromString(resps[0].file_descriptor_response.file_descriptor_proto[0])
    methods = {m.name for s in fd.service for m in s.method}
    assert {"Generate", "Chat", "ListModels", "Tokenize"} <= methods
