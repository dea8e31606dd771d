"""Input limits and validation: every bad request gets a clear error naming the field, never a crash."""
import grpc
import pytest
import requests

from conftest import Daemon, post


@pytest.fixture(scope="module")
def limited(tesserad, tiny_model, tmp_path_factory):
    d = Daemon(tesserad, tiny_model, str(tmp_path_factory.mktemp("limited")),
               ["--max-body-bytes", "65536", "--max-tokens-cap", "64", "--threads", "1"])
    d.start()
    yield d
    try:
        d.stop_and_check()
    finally:
        d.kill()


def error_of(r, status):
    assert r.status_code == status, (r.status_code, r.text[:500])
    err = r.json()["error"]
    assert set(err) >= {"message", "type", "param", "code"} and err["code"] == status and err["message"]
    return err


def test_body_too_large(limited):
    r = post(limited, "/completions", {"prompt": "x" * 70000, "max_tokens": 1})
    error_of(r, 413)
    # Just under the limit is fine (the prompt is then too long for the context, a 400, not a 413).
    r = post(limited, "/completions", {"prompt": "a" * 60000, "max_tokens": 1})
    assert r.status_code in (200, 400)
    assert r.status_code != 413


def test_prompt_longer_than_context(limited):
    r = post(limited, "/completions", {"prompt": "hello " * 400, "max_tokens": 1})  # 1201 tokens > 1024
    err = error_of(r, 400)
    assert err["param"] == "prompt" and "1024" in err["message"]
    r = post(limited, "/chat/completions", {"messages": [{"role": "user", "content": "hello " * 400}]})
    assert error_of(r, 400)["param"] == "messages"
    # Prompt fits, prompt + max_tokens does not.
    r = post(limited, "/completions", {"prompt": "hello " * 330, "max_tokens": 60})  # 991 + 60 > 1024
    assert error_of(r, 400)["param"] == "max_tokens"


def test_max_tokens_over_cap(limited):
    r = post(limited, "/completions", {"prompt": "hi", "max_tokens": 65})
    err = error_of(r, 400)
    assert err["param"] == "max_tokens" and "64" in err["message"]
    r = post(limited, "/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 1000})
    assert error_of(r, 400)["param"] == "max_tokens"
    r = post(limited, "/completions", {"prompt": "hi", "max_tokens": 64, "ignore_eos": True})
    assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] == 64


@pytest.mark.parametrize("body", [b"{", b"not json", b"[1, 2]", b"", b'{"prompt": "x",}', b"\xff\xfe"])
def test_bad_json(limited, body):
    r = requests.post(limited.v1 + "/completions", data=body, headers={"Content-Type": "application/json"},
                      timeout=30)
    error_of(r, 400)


@pytest.mark.parametrize("field,value,path", [
    ("temperature", "hot", "/completions"),
    ("max_tokens", "ten", "/completions"),
    ("max_tokens", 2.5, "/completions"),
    ("n", [2], "/completions"),
    ("stop", 5, "/completions"),
    ("stream", "yes", "/completions"),
    ("top_p", 0, "/completions"),
    ("logprobs", "many", "/completions"),
    ("seed", "s", "/chat/completions"),
    ("messages", "hi", "/chat/completions"),
    ("prompt", {"a": 1}, "/completions"),
])
def test_wrong_types_name_the_field(limited, field, value, path):
    body = {"prompt": "hi"} if path == "/completions" else {"messages": [{"role": "user", "content": "hi"}]}
    body[field] = value
    err = error_of(post(limited, path, body), 400)
    assert err["param"] == field, err
    assert err["type"] == "invalid_request_error"


def test_nested_field_named(limited):
    r = post(limited, "/chat/completions", {"messages": [{"role": "user", "content": "hi"}, {"content": "x"}]})
    err = error_of(r, 400)
    assert err["param"].startswith("messages[1]"), err


def test_unknown_model(limited):
    r = post(limited, "/completions", {"model": "gpt-17", "prompt": "hi"})
    err = error_of(r, 404)
    assert "gpt-17" in err["message"]
    r = post(limited, "/chat/completions", {"model": "gpt-17", "messages": [{"role": "user", "content": "hi"}]})
    error_of(r, 404)


def test_unknown_route(limited):
    r = requests.get(limited.v1 + "/nothing-here", timeout=10)
    error_of(r, 404)


def test_grpc_limits(limited, stubs):
    pb = stubs.pb
    ch = grpc.insecure_channel(limited.grpc_target)
    stub = stubs.grpc.InferenceStub(ch)
    try:
        with pytest.raises(grpc.RpcError) as e:
            list(stub.Generate(pb.GenerateRequest(text="x" * 70000), timeout=30))
        assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        with pytest.raises(grpc.RpcError) as e:
            list(stub.Generate(pb.GenerateRequest(text="hello " * 400), timeout=30))
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "prompt" in e.value.details()
        with pytest.raises(grpc.RpcError) as e:
            list(stub.Generate(pb.GenerateRequest(text="hi", sampling=pb.SamplingParams(max_tokens=65)), timeout=30))
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "max_tokens" in e.value.details()
        with pytest.raises(grpc.RpcError) as e:
            list(stub.Chat(pb.ChatRequest(messages=[pb.ChatMessage(content="no role")]), timeout=30))
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "role" in e.value.details()
    finally:
        ch.close()


def test_still_healthy_after_bad_input(limited):
    assert requests.get(limited.url + "/health", timeout=10).status_code == 200
    r = post(limited, "/completions", {"prompt": "fine", "max_tokens": 3, "ignore_eos": True})
    assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] == 3
