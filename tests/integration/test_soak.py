"""Soak: 64 concurrent streams (half gRPC Generate, half SSE chat completions) for
$TESSERA_SOAK_SECONDS (default 120). Every stream must finish with a finish_reason, greedy outputs
must equal a reference made one request at a time (no token lost, duplicated or mixed between
sequences), the success counter must equal the client's count, and tesserad's RSS must stay flat."""
import json
import threading
import time

import grpc
import pytest
import requests

from conftest import Daemon, post, soak_seconds

STREAMS = 64
PROMPTS = [f"Soak prompt {i}: the quick brown fox number {i * 7}" for i in range(8)]
MAX_TOKENS = [12 + 6 * i for i in range(8)]


@pytest.mark.time_limit(int(soak_seconds()) + 240)
def test_soak(tesserad, tiny_model, tmp_path, stubs):
    duration = soak_seconds()
    d = Daemon(tesserad, tiny_model, str(tmp_path), ["--max-num-seqs", "64"]).start()
    try:
        _soak(d, stubs, duration)
    finally:
        try:
            d.stop_and_check()
        finally:
            d.kill()


def _chat_body(i, stream):
    body = {"messages": [{"role": "user", "content": PROMPTS[i]}], "max_tokens": MAX_TOKENS[i], "temperature": 0,
            "ignore_eos": True}
    if stream:
        body.update(stream=True, stream_options={"include_usage": True})
    return body


def _soak(d, stubs, duration):
    pb = stubs.pb
    # References, one request at a time.
    ref_gen, ref_chat = [], []
    for i, p in enumerate(PROMPTS):
        r = post(d, "/completions", {"prompt": p, "max_tokens": MAX_TOKENS[i], "temperature": 0,
                                     "ignore_eos": True}).json()
        ref_gen.append(r["choices"][0]["text"])
        c = post(d, "/chat/completions", _chat_body(i, False)).json()
        ref_chat.append(c["choices"][0]["message"]["content"])
        assert r["usage"]["completion_tokens"] == c["usage"]["completion_tokens"] == MAX_TOKENS[i]
    base_success = d.metric("tessera_request_success_total")

    lock = threading.Lock()
    stats = {"grpc": 0, "sse": 0}
    failures = []
    stop_at = time.monotonic() + duration
    channel = grpc.insecure_channel(d.grpc_target)
    grpc.channel_ready_future(channel).result(timeout=30)
    stub = stubs.grpc.InferenceStub(channel)

    def fail(msg):
        with lock:
            failures.append(msg)

    def grpc_worker(k):
        it = 0
        while time.monotonic() < stop_at:
            i = (k + it) % len(PROMPTS)
            it += 1
            try:
                resps = list(stub.Generate(pb.GenerateRequest(text=PROMPTS[i], sampling=pb.SamplingParams(
                    temperature=0, max_tokens=MAX_TOKENS[i], ignore_eos=True)), timeout=60))
            except grpc.RpcError as e:
                fail(f"grpc {i}: {e.code()} {e.details()}")
                continue
            text = "".join(r.text for r in resps)
            ntok = sum(len(r.tokens) for r in resps)
            finish = resps[-1].finish_reason if resps else ""
            if finish != "length" or ntok != MAX_TOKENS[i] or text != ref_gen[i]:
                fail(f"grpc {i}: finish={finish!r} tokens={ntok}/{MAX_TOKENS[i]} text={text!r} ref={ref_gen[i]!r}")
                continue
            with lock:
                stats["grpc"] += 1

    def sse_worker(k):
        session = requests.Session()
        it = 0
        while time.monotonic() < stop_at:
            i = (k + it) % len(PROMPTS)
            it += 1
            try:
                with session.post(d.v1 + "/chat/completions", json=_chat_body(i, True), stream=True,
                                  timeout=60) as r:
                    if r.status_code != 200:
                        fail(f"sse {i}: HTTP {r.status_code} {r.text[:200]}")
                        continue
                    text, finish, usage, done = "", [], None, False
                    for line in r.iter_lines():
                        if not line:
                            continue
                        data = line[len(b"data: "):]
                        if data == b"[DONE]":
                            done = True
                            break
                        ev = json.loads(data)
                        if "error" in ev:
                            fail(f"sse {i}: error event {ev}")
                            break
                        for ch in ev.get("choices", []):
                            text += ch["delta"].get("content") or ""
                            if ch.get("finish_reason"):
                                finish.append(ch["finish_reason"])
                        if ev.get("usage"):
                            usage = ev["usage"]
            except requests.RequestException as e:
                fail(f"sse {i}: {e!r}")
                continue
            ntok = usage["completion_tokens"] if usage else None
            if not done or finish != ["length"] or ntok != MAX_TOKENS[i] or text != ref_chat[i]:
                fail(f"sse {i}: done={done} finish={finish} tokens={ntok}/{MAX_TOKENS[i]} text={text!r} "
                     f"ref={ref_chat[i]!r}")
                continue
            with lock:
                stats["sse"] += 1
        session.close()

    threads = [threading.Thread(target=grpc_worker, args=(k,), daemon=True) for k in range(STREAMS // 2)]
    threads += [threading.Thread(target=sse_worker, args=(k,), daemon=True) for k in range(STREAMS // 2)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    # RSS after warm-up (a quarter of the run, at least 20 s: the allocator fills its arenas for 64
    # concurrent streams), then at the end while still loaded.
    warmup = max(20.0, duration / 4)
    time.sleep(min(warmup, duration))
    rss_warm = d.rss_kb()
    running_seen = d.metric("tessera_num_requests_running")
    samples = [rss_warm]
    while time.monotonic() < stop_at - 1:
        time.sleep(0.5)
        samples.append(d.rss_kb())
    rss_end = d.rss_kb()
    for t in threads:
        t.join(timeout=90)
    elapsed = time.monotonic() - t0
    channel.close()
    assert not any(t.is_alive() for t in threads), "a client stream never ended"

    done = stats["grpc"] + stats["sse"]
    print(f"soak: {duration:.0f} s, {done} streams ({stats}), {done / elapsed:.1f}/s, "
          f"RSS {rss_warm} -> {rss_end} kB (every 5 s: {samples[::10]}), running at warm-up {running_seen:.0f}")
    assert not failures, f"{len(failures)} bad streams, first: {failures[:5]}"
    assert stats["grpc"] > 0 and stats["sse"] > 0
    assert d.wait_metric("tessera_request_success_total", lambda v: v - base_success == done, 5) - base_success \
        == done
    assert rss_end < rss_warm * 1.05, f"tesserad RSS grew from {rss_warm} kB to {rss_end} kB"
