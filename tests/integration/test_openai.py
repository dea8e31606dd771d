"""OpenAI REST through the official `openai` SDK (and raw HTTP where the SDK hides the detail)."""
import math

import openai
import pytest
import requests

from conftest import post

PROMPT = "Hello world"
GREEDY = {"temperature": 0}
NO_EOS = {"ignore_eos": True}


@pytest.fixture(scope="module")
def client(shared_daemon):
    with openai.OpenAI(base_url=shared_daemon.v1, api_key="unused", max_retries=0, timeout=60) as c:
        yield c


@pytest.fixture(scope="module")
def model(shared_daemon):
    return requests.get(shared_daemon.v1 + "/models", timeout=10).json()["data"][0]["id"]


def test_models(client, shared_daemon, tiny_model):
    models = client.models.list()
    ids = [m.id for m in models.data]
    # The served name defaults to the model directory's last component.
    assert ids == ["tiny"]
    assert client.models.retrieve("tiny").id == "tiny"
    raw = requests.get(shared_daemon.v1 + "/models", timeout=10).json()
    assert raw["object"] == "list" and raw["data"][0]["max_model_len"] == 1024  # config.json max_position
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("no-such-model")


def test_completion_basic(client, model):
    r = client.completions.create(model=model, prompt=PROMPT, max_tokens=7, extra_body=NO_EOS, **GREEDY)
    assert r.object == "text_completion" and r.model == model
    assert len(r.choices) == 1
    c = r.choices[0]
    assert c.finish_reason == "length" and c.index == 0
    assert len(c.text) > 0
    assert r.usage.completion_tokens == 7
    assert r.usage.total_tokens == r.usage.prompt_tokens + 7
    assert r.usage.prompt_tokens > 0


def test_max_tokens_counts_tokens(client, model):
    for n in (1, 3, 12):
        r = client.completions.create(model=model, prompt=PROMPT, max_tokens=n, logprobs=0, extra_body=NO_EOS,
                                      **GREEDY)
        assert r.usage.completion_tokens == n
        assert len(r.choices[0].logprobs.tokens) == n
        assert "".join(r.choices[0].logprobs.tokens) == r.choices[0].text
        assert r.choices[0].finish_reason == "length"


def test_completion_stream_matches_non_stream(client, model):
    ref = client.completions.create(model=model, prompt=PROMPT, max_tokens=20, extra_body=NO_EOS, **GREEDY)
    chunks = list(client.completions.create(model=model, prompt=PROMPT, max_tokens=20, stream=True,
                                            stream_options={"include_usage": True}, extra_body=NO_EOS, **GREEDY))
    text = "".join(c.choices[0].text for c in chunks if c.choices)
    assert text == ref.choices[0].text
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["length"]
    # include_usage: one last chunk with no choices and the usage; the others carry none.
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert all(c.usage is None for c in chunks[:-1])
    assert chunks[-1].usage.completion_tokens == 20
    assert chunks[-1].usage.prompt_tokens == ref.usage.prompt_tokens
    assert len({c.id for c in chunks}) == 1


def test_stream_without_include_usage_has_no_usage(client, model):
    chunks = list(client.completions.create(model=model, prompt=PROMPT, max_tokens=5, stream=True, **GREEDY))
    assert all(c.usage is None for c in chunks)
    assert chunks[-1].choices[0].finish_reason in ("length", "stop")


def test_chat_non_stream_and_stream(client, model):
    msgs = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "Say hi"}]
    ref = client.chat.completions.create(model=model, messages=msgs, max_tokens=16, extra_body=NO_EOS, **GREEDY)
    assert ref.object == "chat.completion"
    m = ref.choices[0].message
    assert m.role == "assistant" and len(m.content) > 0
    assert ref.choices[0].finish_reason == "length" and ref.usage.completion_tokens == 16
    chunks = list(client.chat.completions.create(model=model, messages=msgs, max_tokens=16, stream=True,
                                                 stream_options={"include_usage": True}, extra_body=NO_EOS,
                                                 **GREEDY))
    assert chunks[0].object == "chat.completion.chunk"
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == m.content
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["length"]
    assert chunks[-1].usage.completion_tokens == 16
    assert chunks[-1].usage.prompt_tokens == ref.usage.prompt_tokens


def test_n2_greedy_and_sampled(client, model):
    one = client.completions.create(model=model, prompt=PROMPT, max_tokens=10, extra_body=NO_EOS, **GREEDY)
    two = client.completions.create(model=model, prompt=PROMPT, max_tokens=10, n=2, extra_body=NO_EOS, **GREEDY)
    assert sorted(c.index for c in two.choices) == [0, 1]
    for c in two.choices:
        assert c.text == one.choices[0].text
    assert two.usage.completion_tokens == 20
    assert two.usage.prompt_tokens == one.usage.prompt_tokens
    # Sampled with a seed: the two choices use different streams of random numbers.
    s = client.completions.create(model=model, prompt=PROMPT, max_tokens=16, n=2, temperature=1, seed=7,
                                  extra_body=NO_EOS)
    texts = {c.index: c.text for c in s.choices}
    assert set(texts) == {0, 1} and texts[0] != texts[1]
    # Streaming n=2: each index gets its own finish.
    chunks = list(client.chat.completions.create(model=model, messages=[{"role": "user", "content": "x"}],
                                                 max_tokens=6, n=2, stream=True, extra_body=NO_EOS, **GREEDY))
    per = {0: "", 1: ""}
    fin = {}
    for c in chunks:
        for ch in c.choices:
            per[ch.index] += ch.delta.content or ""
            if ch.finish_reason:
                fin[ch.index] = ch.finish_reason
    assert fin == {0: "length", 1: "length"}
    assert per[0] == per[1] and per[0]


def test_seed_determinism(client, model):
    kw = dict(model=model, prompt=PROMPT, max_tokens=24, temperature=1, extra_body=NO_EOS)
    a = client.completions.create(seed=1234, **kw).choices[0].text
    b = client.completions.create(seed=1234, **kw).choices[0].text
    c = client.completions.create(seed=4321, **kw).choices[0].text
    assert a == b
    assert a != c  # 24 draws from a near-uniform distribution over ~3000 tokens
    chat_kw = dict(model=model, messages=[{"role": "user", "content": "hi"}], max_tokens=24, temperature=1,
                   extra_body=NO_EOS)
    x = client.chat.completions.create(seed=99, **chat_kw).choices[0].message.content
    y = client.chat.completions.create(seed=99, **chat_kw).choices[0].message.content
    assert x == y


def _pick_spanning_stop(tokens, text):
    """A string whose first occurrence in `text` straddles a token boundary (2 chars each side)."""
    offset = 0
    for k in range(1, len(tokens)):
        offset += len(tokens[k - 1])
        left, right = tokens[k - 1][-2:], tokens[k][:2]
        if len(left) < 2 or len(right) < 2 or not left.strip() or not right.strip():
            continue
        stop = left + right
        if text.find(stop) == offset - 2:
            return stop, offset - 2
    return None, None


def test_stop_string_across_token_boundary(client, model):
    ref = client.completions.create(model=model, prompt=PROMPT, max_tokens=30, logprobs=0, extra_body=NO_EOS,
                                    **GREEDY)
    tokens = ref.choices[0].logprobs.tokens
    text = ref.choices[0].text
    assert "".join(tokens) == text
    stop, at = _pick_spanning_stop(tokens, text)
    assert stop is not None, f"no token boundary to test in {tokens!r}"
    r = client.completions.create(model=model, prompt=PROMPT, max_tokens=30, stop=[stop], extra_body=NO_EOS,
                                  **GREEDY)
    assert r.choices[0].text == text[:at]
    assert r.choices[0].finish_reason == "stop"
    raw = r.model_dump()["choices"][0]
    assert raw.get("stop_reason") == stop
    # Streaming: the held-back characters must not leak out before the match is known.
    chunks = list(client.completions.create(model=model, prompt=PROMPT, max_tokens=30, stop=stop, stream=True,
                                            extra_body=NO_EOS, **GREEDY))
    assert "".join(c.choices[0].text for c in chunks if c.choices) == text[:at]
    assert chunks[-1].choices[0].finish_reason == "stop"
    # include_stop_str_in_output keeps the stop string.
    r2 = client.completions.create(model=model, prompt=PROMPT, max_tokens=30, stop=[stop],
                                   extra_body={**NO_EOS, "include_stop_str_in_output": True}, **GREEDY)
    assert r2.choices[0].text == text[:at] + stop


def test_stop_string_in_chat(client, model):
    msgs = [{"role": "user", "content": "Hello"}]
    ref = client.chat.completions.create(model=model, messages=msgs, max_tokens=20, extra_body=NO_EOS, **GREEDY)
    content = ref.choices[0].message.content
    stop = content[3:5]
    assert len(stop) == 2
    r = client.chat.completions.create(model=model, messages=msgs, max_tokens=20, stop=stop, extra_body=NO_EOS,
                                       **GREEDY)
    assert r.choices[0].message.content == content[:content.find(stop)]
    assert r.choices[0].finish_reason == "stop"


def test_completion_logprobs(client, model):
    r = client.completions.create(model=model, prompt=PROMPT, max_tokens=8, logprobs=3, extra_body=NO_EOS,
                                  **GREEDY)
    lp = r.choices[0].logprobs
    assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs) == len(lp.text_offset) == 8
    assert lp.text_offset[0] == 0
    for i in range(1, 8):
        assert lp.text_offset[i] == lp.text_offset[i - 1] + len(lp.tokens[i - 1])
    for tok, chosen, top in zip(lp.tokens, lp.token_logprobs, lp.top_logprobs):
        assert chosen <= 0.0
        assert 1 <= len(top) <= 3
        assert all(v <= 0.0 for v in top.values())
        assert sum(math.exp(v) for v in top.values()) <= 1.0 + 1e-5
        # Greedy picks the most likely token: its logprob is the largest of the alternatives.
        assert chosen == pytest.approx(max(top.values()), abs=1e-5)
        assert tok in top


def test_chat_logprobs(client, model):
    r = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}], max_tokens=6,
                                       logprobs=True, top_logprobs=2, extra_body=NO_EOS, **GREEDY)
    content = r.choices[0].logprobs.content
    assert len(content) == 6
    assert "".join(t.token for t in content) == r.choices[0].message.content
    for t in content:
        assert len(t.top_logprobs) == 2
        assert t.top_logprobs[0].logprob >= t.top_logprobs[1].logprob
        assert t.logprob == pytest.approx(t.top_logprobs[0].logprob, abs=1e-5)
        assert bytes(t.bytes) == t.token.encode()
    # Sampled: the chosen token's logprob is ≤ the best alternative and the distribution sums ≤ 1.
    s = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}], max_tokens=6,
                                       logprobs=True, top_logprobs=5, temperature=1, seed=3, extra_body=NO_EOS)
    for t in s.choices[0].logprobs.content:
        assert t.logprob <= t.top_logprobs[0].logprob + 1e-5
        assert sum(math.exp(a.logprob) for a in t.top_logprobs) <= 1.0 + 1e-5


def test_errors_have_openai_shape(shared_daemon, client, model):
    r = post(shared_daemon, "/completions", {"model": model, "prompt": PROMPT, "temperature": 5})
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["param"] == "temperature" and err["type"] == "invalid_request_error"
    with pytest.raises(openai.BadRequestError):
        client.completions.create(model=model, prompt=PROMPT, max_tokens=-1)
