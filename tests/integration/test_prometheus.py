"""/metrics as a real Prometheus server scrapes it, and `promtool check metrics`."""
import os
import shutil
import subprocess
import time

import pytest
import requests

from conftest import free_port, post, sum_metric

PROMETHEUS = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")


def test_promtool_check_metrics(shared_daemon):
    if PROMTOOL is None:
        pytest.fail("promtool is not installed (scripts/setup installs it)")
    post(shared_daemon, "/completions", {"prompt": "warm up", "max_tokens": 3})  # histograms get samples
    text = shared_daemon.metrics_text()
    r = subprocess.run([PROMTOOL, "check", "metrics"], input=text.encode(), capture_output=True, timeout=30)
    assert r.returncode == 0, (r.stdout + r.stderr).decode()
    # The anchors of the design's metric list, each labelled with the model name.
    for name in ("tessera_num_requests_running", "tessera_num_requests_waiting", "tessera_kv_cache_usage_perc",
                 "tessera_prompt_tokens_total", "tessera_generation_tokens_total", "tessera_request_success_total",
                 "tessera_admission_rejections_total", "tessera_num_preemptions_total",
                 "tessera_prefix_cache_queries_total", "tessera_prefix_cache_hits_total",
                 "tessera_time_to_first_token_seconds_bucket", "tessera_inter_token_latency_seconds_bucket",
                 "tessera_e2e_request_latency_seconds_bucket", "tessera_request_queue_time_seconds_bucket",
                 "tessera_worker_restarts_total", "tessera_build_info"):
        sum_metric(text, name, {"model_name": "tiny"})


def _query(base, expr):
    r = requests.get(base + "/api/v1/query", params={"query": expr}, timeout=10)
    r.raise_for_status()
    body = r.json()
    assert body["status"] == "success", body
    return body["data"]["result"]


@pytest.mark.time_limit(120)
def test_prometheus_scrape(start_daemon, tmp_path):
    if PROMETHEUS is None:
        pytest.fail("prometheus is not installed (scripts/setup installs it)")
    d = start_daemon(["--threads", "1"])
    port = free_port()
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n"
        "  - job_name: tessera\n"
        "    scrape_interval: 1s\n"
        f"    static_configs:\n      - targets: ['127.0.0.1:{d.http_port}']\n")
    log = open(tmp_path / "prometheus.log", "wb")
    prom = subprocess.Popen([PROMETHEUS, f"--config.file={cfg}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                             f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        # Requests of each finish reason the client can tell apart.
        made = {"length": 0, "stop": 0}
        completion_tokens = 0
        for i in range(7):
            r = post(d, "/completions", {"prompt": f"count {i}", "max_tokens": 4, "ignore_eos": True})
            assert r.status_code == 200 and r.json()["choices"][0]["finish_reason"] == "length"
            made["length"] += 1
            completion_tokens += r.json()["usage"]["completion_tokens"]
        ref = post(d, "/completions", {"prompt": "stop here", "max_tokens": 8, "temperature": 0,
                                       "ignore_eos": True}).json()
        made["length"] += 1
        completion_tokens += ref["usage"]["completion_tokens"]
        ref = ref["choices"][0]["text"]
        for _ in range(3):
            r = post(d, "/completions", {"prompt": "stop here", "max_tokens": 8, "temperature": 0,
                                         "ignore_eos": True, "stop": [ref[1:3]]})
            assert r.json()["choices"][0]["finish_reason"] == "stop"
            made["stop"] += 1
            completion_tokens += r.json()["usage"]["completion_tokens"]
        assert post(d, "/completions", {"prompt": "x", "temperature": 9}).status_code == 400  # not a success

        deadline = time.monotonic() + 60
        got = None
        while time.monotonic() < deadline:
            try:
                res = _query(base, "sum(tessera_request_success_total)")
                got = float(res[0]["value"][1]) if res else None
            except requests.RequestException:
                got = None
            if got == sum(made.values()):
                break
            time.sleep(0.5)
        if got != sum(made.values()):
            try:
                targets = requests.get(base + "/api/v1/targets", timeout=10).text
            except requests.RequestException as e:
                targets = repr(e)
            pytest.fail(f"prometheus saw {got}, the test made {made}; daemon alive: {d.proc.poll() is None}; "
                        f"targets: {targets}\ndaemon log:\n{d.log()}")
        for reason, n in made.items():
            res = _query(base, f'tessera_request_success_total{{finished_reason="{reason}",model_name="tiny"}}')
            assert len(res) == 1 and float(res[0]["value"][1]) == n, (reason, res)
        res = _query(base, 'up{job="tessera"}')
        assert float(res[0]["value"][1]) == 1
        # Generated tokens as the responses' usage reports them.
        res = _query(base, 'tessera_generation_tokens_total{model_name="tiny"}')
        assert float(res[0]["value"][1]) == completion_tokens
    finally:
        prom.terminate()
        try:
            prom.wait(timeout=20)
        except subprocess.TimeoutExpired:
            prom.kill()
            prom.wait(timeout=10)
        log.close()
        if os.environ.get("TESSERA_KEEP_PROMETHEUS_LOG"):
            print(open(tmp_path / "prometheus.log").read())


def _safetensors_weight_bytes(model_dir):
    """Bytes the CPU backend holds for this checkpoint: 2-D matrices read in place as stored (a tied
    embedding once), 1-D vectors as f32 copies. Computed from the file's own header."""
    import json
    import struct

    total = 0
    with open(os.path.join(model_dir, "model.safetensors"), "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    for name, t in header.items():
        if name == "__metadata__":
            continue
        begin, end = t["data_offsets"]
        total += (end - begin) if len(t["shape"]) == 2 else 4 * t["shape"][0]
    return total


@pytest.mark.time_limit(120)
def test_device_memory_bytes(start_daemon, tiny_model):
    import json

    kv_budget, block = 1_000_000, 16
    d = start_daemon(["--threads", "1", "--kv-cache-bytes", str(kv_budget), "--block-size", str(block)])
    post(d, "/completions", {"prompt": "warm up", "max_tokens": 3})
    cfg = json.load(open(os.path.join(tiny_model, "config.json")))
    head_dim = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
    block_bytes = 2 * cfg["num_hidden_layers"] * block * cfg["num_key_value_heads"] * head_dim * 4
    want = {"weights": _safetensors_weight_bytes(tiny_model), "kv": kv_budget // block_bytes * block_bytes}
    deadline = time.monotonic() + 10
    while True:
        text = d.metrics_text()
        try:
            got = {k: sum_metric(text, "tessera_device_memory_bytes", {"device": "cpu", "kind": k, "model_name": "tiny"})
                   for k in ("weights", "kv", "workspace")}
            break
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    assert got["weights"] == want["weights"], got
    assert got["kv"] == want["kv"], got
    assert got["workspace"] > 0, got
