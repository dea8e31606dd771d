"""Checks the recorded outputs of the OpenAI response formatter (golden/, written and kept in sync by
openai_golden_test.cc) with the `openai` Python SDK, independently of our own parser:

- every JSON object validates against the SDK's pydantic models (Completion, ChatCompletion,
  ChatCompletionChunk, Model);
- the SSE files decode with the SDK's own SSE decoder, end with [DONE], and the whole exchange
  works through a real `openai.OpenAI` client over a mock HTTP transport (including the error
  event, which the SDK must raise as APIError).

Run: .venv/bin/python -m pytest tests/unit/server/http/openai_sdk_golden_test.py
"""

import json
import pathlib
from typing import List, Literal, Optional

import httpx2
import openai
import pytest
from openai._streaming import SSEDecoder
from openai.types import Completion, CompletionChoice, Model
from openai.types.chat import ChatCompletion, ChatCompletionChunk

GOLDEN = pathlib.Path(__file__).parent / "golden"


class _StreamCompletionChoice(CompletionChoice):
    # The SDK types finish_reason as required, but streamed completion chunks carry null until the
    # last one (OpenAI and vLLM alike); the SDK's client parses them without validation.
    finish_reason: Optional[Literal["stop", "length", "content_filter"]] = None


class _StreamCompletion(Completion):
    choices: List[_StreamCompletionChoice]


def _golden(name: str) -> bytes:
    path = GOLDEN / name
    assert path.exists(), f"{path} missing: run openai_protocol_test with TESSERA_UPDATE_GOLDENS=1"
    return path.read_bytes()


def _sse_payloads(raw: bytes) -> List[str]:
    events = list(SSEDecoder().iter_bytes(iter([raw])))
    assert events, "no events"
    for e in events:
        assert e.event is None, "we send data-only events"
    return [e.data for e in events]


def _client(raw: bytes, content_type: str, status: int = 200, strict: bool = True) -> openai.OpenAI:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(status, headers={"content-type": content_type}, content=raw)

    return openai.OpenAI(
        api_key="test",
        base_url="http://tessera.invalid/v1",
        http_client=httpx2.Client(transport=httpx2.MockTransport(handler)),
        max_retries=0,
        _strict_response_validation=strict,
    )


def _check_usage(usage, choices: int) -> None:
    assert usage.prompt_tokens == 7
    assert usage.completion_tokens == 6 * choices
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.prompt_tokens_details.cached_tokens == 3


# ---- Non-streaming ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name,choices", [("completion_basic.json", 1), ("completion_logprobs_n2.json", 2)])
def test_completion_body(name: str, choices: int) -> None:
    raw = _golden(name)
    c = Completion.model_validate(json.loads(raw))
    assert c.object == "text_completion" and c.id == "cmpl-golden" and c.created == 1700000000
    assert [ch.index for ch in c.choices] == list(range(choices))
    assert c.choices[0].text == "The café is open"
    assert c.choices[0].finish_reason == "stop"
    _check_usage(c.usage, choices)
    # The same body through the SDK client, with strict validation.
    via_client = _client(raw, "application/json").completions.create(model="m", prompt="x")
    assert via_client == c
    if "logprobs" in name:
        lp = c.choices[0].logprobs
        assert lp.tokens == ["The", " caf", "bytes:\\xc3", "bytes:\\xa9", " is", " open"]
        assert lp.token_logprobs[-1] == -9999.0
        assert len(lp.text_offset) == len(lp.tokens) == len(lp.top_logprobs)
        # Each whole-text token sits at its offset in the text (offsets count characters).
        for token, offset in zip(lp.tokens, lp.text_offset):
            if not token.startswith("bytes:"):
                assert c.choices[0].text[offset : offset + len(token)] == token
        assert lp.top_logprobs[0] == {"The": -0.25, "A": -1.75}
        assert c.choices[1].finish_reason == "length"
    else:
        assert c.choices[0].logprobs is None


@pytest.mark.parametrize("name,choices", [("chat_basic.json", 1), ("chat_logprobs_n2.json", 2)])
def test_chat_body(name: str, choices: int) -> None:
    raw = _golden(name)
    c = ChatCompletion.model_validate(json.loads(raw))
    assert c.object == "chat.completion" and c.id == "chatcmpl-golden"
    assert len(c.choices) == choices
    msg = c.choices[0].message
    assert msg.role == "assistant" and msg.content == "The café is open"
    _check_usage(c.usage, choices)
    via_client = _client(raw, "application/json").chat.completions.create(
        model="m", messages=[{"role": "user", "content": "x"}]
    )
    assert via_client == c
    if "logprobs" in name:
        content = c.choices[0].logprobs.content
        assert [t.token for t in content] == ["The", " caf", "bytes:\\xc3", "bytes:\\xa9", " is", " open"]
        # The bytes of the tokens rebuild the text exactly (OpenAI's contract for `bytes`).
        assert bytes(b for t in content for b in t.bytes).decode("utf-8") == msg.content
        assert content[-1].logprob == -9999.0
        assert [t.token for t in content[0].top_logprobs] == ["The", "A"]
    else:
        assert c.choices[0].logprobs is None


def test_models_list() -> None:
    raw = _golden("models.json")
    body = json.loads(raw)
    assert body["object"] == "list"
    models = [Model.model_validate(m) for m in body["data"]]
    assert models[0].id == "SmolLM2-135M-Instruct" and models[0].owned_by == "tessera"
    listed = list(_client(raw, "application/json").models.list())
    assert [m.id for m in listed] == ["SmolLM2-135M-Instruct"]


def test_error_body_raises_bad_request() -> None:
    raw = _golden("error_invalid_param.json")
    err = json.loads(raw)["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert err["param"] == "temperature"
    with pytest.raises(openai.BadRequestError) as info:
        _client(raw, "application/json", status=400).chat.completions.create(
            model="m", messages=[{"role": "user", "content": "x"}]
        )
    assert "temperature" in str(info.value)


# ---- Streaming -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,choices,usage", [("completion_stream.sse", 1, False), ("completion_stream_usage_logprobs.sse", 2, True)]
)
def test_completion_stream(name: str, choices: int, usage: bool) -> None:
    raw = _golden(name)
    payloads = _sse_payloads(raw)
    assert payloads[-1] == "[DONE]"
    chunks = [_StreamCompletion.model_validate(json.loads(p)) for p in payloads[:-1]]
    text = {i: "" for i in range(choices)}
    finish = {}
    for ch in chunks:
        assert ch.object == "text_completion" and ch.id == "cmpl-golden"
        for choice in ch.choices:
            assert choice.index not in finish, "text after finish_reason"
            text[choice.index] += choice.text
            if choice.finish_reason is not None:
                finish[choice.index] = choice.finish_reason
    assert text[0] == "The café is open"
    assert set(finish) == set(range(choices))
    if usage:
        assert chunks[-1].choices == []
        _check_usage(chunks[-1].usage, choices)
    else:
        assert all(ch.usage is None for ch in chunks)
    # Through the SDK client (its stream parser does not validate, like for real OpenAI streams).
    streamed = list(_client(raw, "text/event-stream", strict=False).completions.create(model="m", prompt="x", stream=True))
    assert len(streamed) == len(chunks)
    assert "".join(c.choices[0].text for c in streamed if c.choices and c.choices[0].index == 0) == text[0]


@pytest.mark.parametrize(
    "name,choices,usage,logprobs",
    [("chat_stream_usage_n2.sse", 2, True, False), ("chat_stream_logprobs_continuous_usage.sse", 1, True, True)],
)
def test_chat_stream(name: str, choices: int, usage: bool, logprobs: bool) -> None:
    raw = _golden(name)
    payloads = _sse_payloads(raw)
    assert payloads[-1] == "[DONE]"
    chunks = [ChatCompletionChunk.model_validate(json.loads(p)) for p in payloads[:-1]]
    content = {i: "" for i in range(choices)}
    roles = {}
    finish = {}
    token_bytes = b""
    for ch in chunks:
        assert ch.object == "chat.completion.chunk" and ch.id == "chatcmpl-golden"
        for choice in ch.choices:
            i = choice.index
            assert i not in finish, "delta after finish_reason"
            if choice.delta.role is not None:
                assert i not in roles and content[i] == "", "role must come first, once"
                roles[i] = choice.delta.role
            assert i in roles, "content before the role"
            content[i] += choice.delta.content or ""
            if choice.finish_reason is not None:
                finish[i] = choice.finish_reason
            if choice.logprobs is not None and i == 0:
                token_bytes += bytes(b for t in choice.logprobs.content for b in t.bytes)
    assert roles == {i: "assistant" for i in range(choices)}
    assert content[0] == "The café is open"
    assert finish[0] == "stop"
    if usage:
        assert chunks[-1].choices == []
        _check_usage(chunks[-1].usage, choices)
    if logprobs:
        assert token_bytes.decode("utf-8") == content[0]
    # Strict validation through the SDK client's stream parser.
    streamed = list(
        _client(raw, "text/event-stream").chat.completions.create(
            model="m", messages=[{"role": "user", "content": "x"}], stream=True
        )
    )
    assert streamed == chunks


def test_chat_stream_error_raises_api_error() -> None:
    raw = _golden("chat_stream_error.sse")
    payloads = _sse_payloads(raw)
    assert payloads[-1] == "[DONE]"
    assert json.loads(payloads[-2])["error"]["message"] == "the worker group went down"
    stream = _client(raw, "text/event-stream").chat.completions.create(
        model="m", messages=[{"role": "user", "content": "x"}], stream=True
    )
    received = []
    with pytest.raises(openai.APIError) as info:
        for chunk in stream:
            received.append(chunk)
    assert "worker group went down" in str(info.value)
    assert received and received[0].choices[0].delta.role == "assistant"
