"""Failure handling: backpressure, deadlines, client disconnects, drain, worker crashes and hangs,
start-up failures. Requests that must stay in flight for seconds run on the slower model."""
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time

import grpc
import pytest
import requests
from grpc_health.v1 import health_pb2, health_pb2_grpc

from conftest import Daemon, health_status, post, sse_events, sum_metric, wait_until

LONG = {"prompt": "Once upon a time", "max_tokens": 3000, "temperature": 0, "ignore_eos": True}


@pytest.fixture(scope="module")
def slow_daemon(tesserad, slow_model, tmp_path_factory):
    d = Daemon(tesserad, slow_model, str(tmp_path_factory.mktemp("slow")))
    d.start()
    yield d
    try:
        d.stop_and_check()
    finally:
        d.kill()


def idle(d, timeout=2.0):
    """Waits until the engines report no running sequence and an empty KV cache; returns the last
    (running, kv_usage) seen."""
    deadline = time.monotonic() + timeout
    while True:
        text = d.metrics_text()
        state = (sum_metric(text, "tessera_num_requests_running"), sum_metric(text, "tessera_kv_cache_usage_perc"))
        if state == (0, 0) or time.monotonic() > deadline:
            return state
        time.sleep(0.05)


def wait_running(d, timeout=5.0):
    v = d.wait_metric("tessera_num_requests_running", lambda v: v >= 1, timeout)
    assert v >= 1, "the long request never showed up as running"


def raw_request(port, path, body, extra_headers=""):
    """Sends a POST on a fresh socket and returns the socket (the caller reads or closes it)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    data = json.dumps(body).encode()
    s.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              f"Content-Length: {len(data)}\r\n{extra_headers}\r\n".encode() + data)
    return s


def grpc_stub(d, stubs):
    ch = grpc.insecure_channel(d.grpc_target)
    grpc.channel_ready_future(ch).result(timeout=30)
    return ch, stubs.grpc.InferenceStub(ch)


def long_grpc_request(pb, max_tokens=3000):
    return pb.GenerateRequest(text="Once upon a time",
                              sampling=pb.SamplingParams(temperature=0, max_tokens=max_tokens, ignore_eos=True))


# ---- backpressure ----------------------------------------------------------------------------------


@pytest.mark.time_limit(150)
def test_backpressure_queue_full(start_daemon, slow_model, stubs):
    # At most two requests may wait for their first token; long prompts keep them waiting (prefill
    # in 512-token chunks) while the burst arrives.
    d = start_daemon(["--max-queued-requests", "2", "--max-num-seqs", "1"], model=slow_model)
    try:
        _backpressure(d, stubs)
    except AssertionError:
        if d.proc.poll() is None:
            raise
    if d.proc.poll() is not None:
        d.expect_exit = d.proc.returncode  # reported here, not again at teardown
        pytest.fail(f"tesserad died during the burst (exit {d.proc.returncode}):\n{d.log()}")


def _backpressure(d, stubs):
    ch, stub = grpc_stub(d, stubs)
    pb = stubs.pb
    long_prompt = "hello " * 200  # 601 tokens: seconds of prefill on this model
    blocker = requests.post(d.v1 + "/completions", json={**LONG, "stream": True}, stream=True, timeout=60)
    assert blocker.status_code == 200
    assert next(sse_events(blocker))["choices"]

    rest, grpc_codes = [], []
    lock = threading.Lock()
    go = threading.Event()

    def rest_one():
        go.wait()
        try:
            r = post(d, "/completions", {"prompt": f"{len(rest)} {long_prompt}", "max_tokens": 2}, timeout=90)
            item = (r.status_code, r.json())
        except requests.RequestException as e:
            item = (repr(e), None)
        with lock:
            rest.append(item)

    def grpc_one():
        go.wait()
        try:
            list(stub.Generate(pb.GenerateRequest(text=f"g {long_prompt}", sampling=pb.SamplingParams(max_tokens=2)),
                               timeout=90))
            code = grpc.StatusCode.OK
        except grpc.RpcError as e:
            code = e.code()
        with lock:
            grpc_codes.append(code)

    threads = [threading.Thread(target=f) for f in [rest_one, grpc_one] * 8]
    for t in threads:
        t.start()
    go.set()
    for t in threads:
        t.join(timeout=100)
    blocker.close()
    ch.close()
    assert not any(t.is_alive() for t in threads)

    rest_codes = [c for c, _ in rest]
    n_ok = rest_codes.count(200) + grpc_codes.count(grpc.StatusCode.OK)
    n429 = rest_codes.count(429)
    nexh = grpc_codes.count(grpc.StatusCode.RESOURCE_EXHAUSTED)
    assert set(rest_codes) <= {200, 429}, rest_codes
    assert set(grpc_codes) <= {grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED}, grpc_codes
    assert n429 >= 1 and nexh >= 1, (rest_codes, grpc_codes)
    assert n_ok >= 2 and n_ok + n429 + nexh == 16
    for code, body in rest:
        if code == 429:
            err = body["error"]
            assert err["type"] == "rate_limit_error" and err["code"] == 429 and err["message"]
    assert d.metric("tessera_admission_rejections_total", {"reason": "queue_full"}) == n429 + nexh


# ---- deadlines -------------------------------------------------------------------------------------


def test_rest_timeout_gives_504(slow_daemon):
    t0 = time.monotonic()
    r = post(slow_daemon, "/completions", {**LONG, "timeout": 0.05}, timeout=30)
    elapsed = time.monotonic() - t0
    assert r.status_code == 504, r.text
    assert r.json()["error"]["type"] == "timeout_error"
    assert elapsed < 5
    assert idle(slow_daemon, 3.0) == (0, 0)


def test_rest_stream_timeout_sends_error_event(slow_daemon):
    r = requests.post(slow_daemon.v1 + "/completions", json={**LONG, "stream": True, "timeout": 0.5}, stream=True,
                      timeout=30)
    assert r.status_code == 200
    events = list(sse_events(r))
    assert events and "error" in events[-1], events[-1:]
    assert events[-1]["error"]["code"] == 504
    assert idle(slow_daemon, 3.0) == (0, 0)


def test_grpc_deadline(slow_daemon, stubs):
    ch, stub = grpc_stub(slow_daemon, stubs)
    with pytest.raises(grpc.RpcError) as e:
        list(stub.Generate(long_grpc_request(stubs.pb), timeout=0.5))
    assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    ch.close()
    # The server must give up on it too: the engine's running count returns to 0.
    assert idle(slow_daemon, 3.0) == (0, 0)


# ---- client disconnects -----------------------------------------------------------------------------


def test_grpc_cancel_aborts(slow_daemon, stubs):
    ch, stub = grpc_stub(slow_daemon, stubs)
    call = stub.Generate(long_grpc_request(stubs.pb), timeout=60)
    next(call)
    wait_running(slow_daemon)
    call.cancel()
    ch.close()
    assert idle(slow_daemon) == (0, 0)


def test_sse_client_close_aborts(slow_daemon):
    s = raw_request(slow_daemon.http_port, "/v1/completions", {**LONG, "stream": True})
    buf = b""
    while b"data: " not in buf:
        chunk = s.recv(4096)
        assert chunk, "connection closed before the first event"
        buf += chunk
    assert b" 200 " in buf.split(b"\r\n")[0]
    wait_running(slow_daemon)
    s.close()
    assert idle(slow_daemon) == (0, 0)


def test_non_streaming_client_close_aborts(slow_daemon):
    s = raw_request(slow_daemon.http_port, "/v1/completions", LONG)
    wait_running(slow_daemon)
    s.close()
    assert idle(slow_daemon) == (0, 0)
    # The daemon is still fine.
    assert post(slow_daemon, "/completions", {"prompt": "after", "max_tokens": 2}).status_code == 200


# ---- drain -----------------------------------------------------------------------------------------


@pytest.mark.time_limit(120)
def test_drain_on_sigterm(start_daemon, slow_model, stubs):
    d = start_daemon(model=slow_model)
    ch, stub = grpc_stub(d, stubs)
    health = health_pb2_grpc.HealthStub(ch)
    n_tokens = 300
    r = requests.post(d.v1 + "/completions", json={**LONG, "max_tokens": n_tokens, "stream": True,
                                                  "stream_options": {"include_usage": True}},
                      stream=True, timeout=60)
    events = sse_events(r)
    got = [next(events)]
    d.proc.send_signal(signal.SIGTERM)
    t0 = time.monotonic()
    # Not ready at once, on both protocols.
    assert wait_until(lambda: health_status(d) == 503, 0.5), health_status(d)
    assert health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5).status == \
        health_pb2.HealthCheckResponse.NOT_SERVING
    assert health.Check(health_pb2.HealthCheckRequest(service="tessera.v1.Inference"), timeout=5).status == \
        health_pb2.HealthCheckResponse.NOT_SERVING
    assert requests.get(d.url + "/v2/health/ready", timeout=5).status_code == 503
    # New work is refused.
    new = post(d, "/completions", {"prompt": "late", "max_tokens": 2}, timeout=10)
    assert new.status_code == 503 and new.json()["error"]["code"] == 503
    with pytest.raises(grpc.RpcError) as e:
        list(stub.Generate(stubs.pb.GenerateRequest(text="late"), timeout=10))
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE
    assert time.monotonic() - t0 < 3, "drain checks took too long; the stream may have ended first"
    assert d.proc.poll() is None, "tesserad exited before its in-flight stream finished"
    # The in-flight stream runs to its end.
    got.extend(events)
    ch.close()
    assert not any("error" in e for e in got), got[-2:]
    finishes = [c["finish_reason"] for e in got for c in e.get("choices", []) if c.get("finish_reason")]
    assert finishes == ["length"]
    assert got[-1]["usage"]["completion_tokens"] == n_tokens
    code = d.proc.wait(timeout=30)
    assert code == 0, d.log()
    d.expect_exit = 0


# ---- worker failures ----------------------------------------------------------------------------------


def _stream_both_then(d, stubs, action):
    """Starts a long SSE stream and a long gRPC stream, runs action() once both have output, and
    returns (seconds until both clients saw their error, sse_error, grpc_code)."""
    ch, stub = grpc_stub(d, stubs)
    call = stub.Generate(long_grpc_request(stubs.pb), timeout=60)
    next(call)
    r = requests.post(d.v1 + "/completions", json={**LONG, "stream": True}, stream=True, timeout=60)
    events = sse_events(r)
    next(events)
    result = {}

    def read_grpc():
        try:
            for _ in call:
                pass
            result["grpc"] = grpc.StatusCode.OK
        except grpc.RpcError as e:
            result["grpc"] = e.code()
        result["grpc_t"] = time.monotonic()

    def read_sse():
        last = None
        for e in events:
            last = e
        result["sse"] = last
        result["sse_t"] = time.monotonic()

    threads = [threading.Thread(target=read_grpc), threading.Thread(target=read_sse)]
    for t in threads:
        t.start()
    t0 = time.monotonic()
    action()
    for t in threads:
        t.join(timeout=30)
    ch.close()
    assert not any(t.is_alive() for t in threads), "a client never got an answer"
    return max(result["grpc_t"], result["sse_t"]) - t0, result["sse"], result["grpc"]


def _check_recovery(d, saw_503):
    assert saw_503, "/health never answered 503 while the worker was down"
    assert wait_until(lambda: health_status(d) == 200, 30), "/health did not come back to 200"
    assert d.metric("tessera_worker_restarts_total") >= 1
    r = post(d, "/completions", {"prompt": "after the crash", "max_tokens": 4, "ignore_eos": True})
    assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] == 4


def _watch_health(d, stop, seen):
    while not stop.is_set():
        seen.add(health_status(d))
        time.sleep(0.02)


@pytest.mark.time_limit(120)
def test_worker_sigkill(start_daemon, slow_model, stubs):
    d = start_daemon(model=slow_model)
    workers = d.worker_pids()
    assert len(workers) == 1, workers
    stop, seen = threading.Event(), set()
    watcher = threading.Thread(target=_watch_health, args=(d, stop, seen))
    watcher.start()
    try:
        took, sse_last, grpc_code = _stream_both_then(d, stubs, lambda: os.kill(workers[0], signal.SIGKILL))
        assert wait_until(lambda: 503 in seen, 3)
    finally:
        stop.set()
        watcher.join(timeout=10)
    assert grpc_code == grpc.StatusCode.UNAVAILABLE
    assert sse_last is not None and "error" in sse_last and sse_last["error"]["code"] == 503, sse_last
    assert took < 3, f"clients learned of the crash after {took:.2f} s"
    _check_recovery(d, 503 in seen)
    assert d.worker_pids() and d.worker_pids() != workers


@pytest.mark.time_limit(120)
def test_worker_sigstop(start_daemon, slow_model, stubs):
    d = start_daemon(["--heartbeat-timeout", "1"], model=slow_model)
    workers = d.worker_pids()
    assert len(workers) == 1, workers
    stop, seen = threading.Event(), set()
    watcher = threading.Thread(target=_watch_health, args=(d, stop, seen))
    watcher.start()
    try:
        took, sse_last, grpc_code = _stream_both_then(d, stubs, lambda: os.kill(workers[0], signal.SIGSTOP))
        assert wait_until(lambda: 503 in seen, 3)
    finally:
        stop.set()
        watcher.join(timeout=10)
        try:
            os.kill(workers[0], signal.SIGCONT)
        except ProcessLookupError:
            pass
    assert grpc_code == grpc.StatusCode.UNAVAILABLE
    assert sse_last is not None and "error" in sse_last and sse_last["error"]["code"] == 503, sse_last
    assert took < 3, f"clients learned of the hang after {took:.2f} s"
    _check_recovery(d, 503 in seen)
    assert d.worker_pids() and d.worker_pids() != workers


# ---- start-up failures ----------------------------------------------------------------------------------


def _run_to_exit(tesserad, model, cwd):
    t0 = time.monotonic()
    try:
        r = subprocess.run([tesserad, "--model", model, "--host", "127.0.0.1", "--port", "0", "--grpc-port", "0"],
                           capture_output=True, timeout=10, cwd=cwd)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"tesserad still running after 10 s with a bad model; output: {e.stderr!r}")
    return r.returncode, r.stderr.decode(errors="replace"), time.monotonic() - t0


def test_startup_missing_model(tesserad, tmp_path):
    code, err, _ = _run_to_exit(tesserad, "/nonexistent", str(tmp_path))
    assert code != 0
    assert "/nonexistent" in err, err


@pytest.mark.parametrize("damage", ["garbage_header", "truncated"])
def test_startup_corrupt_safetensors(tesserad, tiny_model, tmp_path, damage):
    model = tmp_path / "broken"
    shutil.copytree(tiny_model, model)
    st = model / "model.safetensors"
    data = st.read_bytes()
    if damage == "garbage_header":
        st.write_bytes((10 ** 6).to_bytes(8, "little") + b"{not json" + data[17:])
    else:
        st.write_bytes(data[: len(data) // 2])
    code, err, _ = _run_to_exit(tesserad, str(model), str(tmp_path))
    assert code != 0
    assert "safetensors" in err.lower(), err


@pytest.mark.time_limit(120)
def test_crash_loop_exits_non_zero(start_daemon):
    # Five worker deaths within 60 s: the daemon gives up and exits non-zero (a supervisor that
    # relaunched forever would hide a broken deployment).
    d = start_daemon()
    d.expect_exit = "non-zero"
    killed = set()
    deadline = time.monotonic() + 60
    while d.proc.poll() is None and time.monotonic() < deadline:
        for pid in d.worker_pids():
            if pid not in killed:
                killed.add(pid)
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        time.sleep(0.05)
    assert d.proc.poll() is not None, f"tesserad still running after {len(killed)} worker kills:\n{d.log()}"
    assert d.proc.returncode != 0
    assert len(killed) == 5, f"gave up after {len(killed)} kills, expected 5"
    assert "worker crashes within 60 s" in d.log()
