"""Worker groups of several ranks (tesserad --sp N: mpirun -np N tessera-worker) end to end.

Greedy generation of a prompt of more than 2,000 tokens must be identical with the sequence split
over 4 ranks (TokenRing or Ring prefill, pass-Q decode over a KV cache spread across the ranks) and
on one rank; the group's sequence-parallel traffic shows in /metrics; a rank killed mid-request
brings the group down, the client gets UNAVAILABLE, and the relaunched group serves again.
"""
import os
import random
import shutil
import signal
import subprocess

import grpc
import pytest
import requests

from conftest import child_pids, health_status, make_model, post, sum_metric, wait_until
from test_reliability import _stream_both_then

pytestmark = pytest.mark.skipif(shutil.which("mpirun") is None, reason="mpirun (Open MPI) is not installed")

PROMPT_TOKENS = 2100
NEW_TOKENS = 12


@pytest.fixture(scope="module")
def long_model(tmp_path_factory):
    """Tiny random Llama (GQA 4:2) with a 4,096-token context."""
    return make_model(tmp_path_factory.mktemp("models") / "long", 64, 2, 128, 4096)


def group_args(n, policy="auto"):
    # Groups take a whole prompt in one step by default, so that its prefill is split across the ranks.
    return ["--threads", "1", "--sp", str(n), "--sp-policy", policy, "--max-model-len", "4096"]


def long_prompt_ids(seed=3):
    rng = random.Random(seed)
    return [rng.randrange(10, 3000) for _ in range(PROMPT_TOKENS)]


def complete(d, ids):
    r = post(d, "/completions", {"prompt": ids, "max_tokens": NEW_TOKENS, "temperature": 0, "ignore_eos": True,
                                 "logprobs": 1}, timeout=300)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["usage"]["prompt_tokens"] == PROMPT_TOKENS
    assert body["usage"]["completion_tokens"] == NEW_TOKENS
    choice = body["choices"][0]
    return choice["text"], choice["logprobs"]["tokens"], choice["logprobs"]["token_logprobs"]


@pytest.mark.time_limit(400)
def test_sp4_greedy_equals_sp1(start_daemon, long_model):
    ids = long_prompt_ids()
    one = start_daemon(group_args(1), model=long_model, timeout=120)
    want_text, want_tokens, want_lp = complete(one, ids)
    one.stop_and_check()
    one.expect_exit = 0  # stopped here already (exit 0 checked)
    for n, policy in ((4, "token_ring"), (4, "ring"), (2, "auto")):
        d = start_daemon(group_args(n, policy), model=long_model, timeout=120)
        assert f"worker group of {n} ranks" in d.log()
        text, tokens, lp = complete(d, ids)
        assert tokens == want_tokens, f"--sp {n} --sp-policy {policy}: {tokens} vs {want_tokens}"
        assert text == want_text
        # f32 attention split differently: log-probabilities agree closely, not bit for bit.
        for a, b in zip(lp, want_lp):
            assert abs(a - b) < 1e-3, (lp, want_lp)
        # The group's traffic is in the metrics (the poller copies it from the engine).
        algo = "ring" if policy == "ring" else None
        def sp_bytes(direction, algo=algo):
            labels = {"direction": direction}
            if algo:
                labels["algo"] = algo
            return sum_metric(requests.get(d.url + "/metrics", timeout=10).text, "tessera_sp_bytes_total", labels)
        assert wait_until(lambda: sp_bytes("out", "token_ring") > 0, 5), "no pass-Q output traffic in /metrics"
        if policy == "ring":
            assert sp_bytes("kv", "ring") > 0
        elif policy == "token_ring":
            assert sp_bytes("q", "token_ring") > 0
        text_metrics = requests.get(d.url + "/metrics", timeout=10).text
        assert sum_metric(text_metrics, "tessera_sp_step_seconds_count", {"phase": "compute"}) > 0
        assert sum_metric(text_metrics, "tessera_sp_exposed_comm_seconds_total") > 0
        if shutil.which("promtool"):
            p = subprocess.run(["promtool", "check", "metrics"], input=text_metrics, capture_output=True, text=True,
                               timeout=30)
            assert p.returncode == 0, p.stdout + p.stderr
        d.stop_and_check()
        d.expect_exit = 0


def _ranks(d):
    """tessera-worker processes of the daemon's one group (children of its mpirun)."""
    launchers = d.worker_pids()
    assert len(launchers) == 1, launchers
    return launchers[0], child_pids(launchers[0])


@pytest.mark.time_limit(200)
def test_rank_killed_mid_request(start_daemon, slow_model, stubs):
    d = start_daemon(["--threads", "1", "--sp", "2", "--heartbeat-timeout", "1"], model=slow_model, timeout=120)
    mpirun, ranks = _ranks(d)
    assert len(ranks) == 2, ranks
    # A follower (the rank started last) dies while an SSE and a gRPC stream are running.
    took, sse_last, grpc_code = _stream_both_then(d, stubs, lambda: os.kill(ranks[-1], signal.SIGKILL))
    assert grpc_code == grpc.StatusCode.UNAVAILABLE
    assert sse_last is not None and "error" in sse_last and sse_last["error"]["code"] == 503, sse_last
    assert took < 3, f"clients learned of the failure after {took:.2f} s"
    # The whole group went down and a new one came up.
    assert wait_until(lambda: health_status(d) == 200, 60), "/health did not come back to 200:\n" + d.log()
    new_mpirun, new_ranks = _ranks(d)
    assert new_mpirun != mpirun and len(new_ranks) == 2 and not set(new_ranks) & set(ranks)
    assert d.metric("tessera_worker_restarts_total") >= 1
    r = post(d, "/completions", {"prompt": "after the crash", "max_tokens": 4, "ignore_eos": True}, timeout=60)
    assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] == 4


@pytest.mark.time_limit(200)
def test_frontend_attaches_to_a_group_started_by_hand(start_daemon, build_dir, long_model, tmp_path):
    """A user's own mpirun: the frontend connects to rank 0 with --engine."""
    port_file = tmp_path / "rank0.port"
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_btl_vader_single_copy_mechanism="none")
    log = open(tmp_path / "mpirun.log", "wb")
    group = subprocess.Popen(
        ["mpirun", "-np", "3", "--oversubscribe", os.path.join(build_dir, "worker", "tessera-worker"),
         "--model", long_model, "--port", "0", "--port_file", str(port_file), "--threads", "1",
         "--sp_policy", "token_ring"],
        stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        assert wait_until(lambda: port_file.exists() or group.poll() is not None, 120)
        assert group.poll() is None, open(tmp_path / "mpirun.log").read()
        port = int(port_file.read_text())
        d = start_daemon(["--engine", f"127.0.0.1:{port}"], model=long_model, timeout=120)
        ids = long_prompt_ids(seed=9)[:700]
        r = post(d, "/completions", {"prompt": ids, "max_tokens": 4, "temperature": 0, "ignore_eos": True},
                 timeout=120)
        assert r.status_code == 200, r.text
        assert r.json()["usage"]["completion_tokens"] == 4
        assert wait_until(lambda: d.metric("tessera_sp_bytes_total", {"algo": "token_ring", "direction": "q"}) > 0,
                          5)
    finally:
        os.killpg(group.pid, signal.SIGTERM)
        try:
            group.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(group.pid, signal.SIGKILL)
            group.wait(timeout=10)
        log.close()
