"""Shared fixtures for the integration tests: the daemon under test, tiny models, Python gRPC stubs.

  .venv/bin/python -m pytest -x -q -p no:cacheprovider tests/integration     (or: ctest -L integration)

The daemon's binaries come from $TESSERA_BUILD_DIR (default build/release): server/tesserad and
worker/tessera-worker. $TESSERA_SOAK_SECONDS sets the soak's length (default 120). Every test runs
under a watchdog (see `_watchdog`) so a hang fails the run instead of stalling it; every daemon
started here dies with the test process (PR_SET_PDEATHSIG), and its workers die with it.
"""
import ctypes
import faulthandler
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import requests

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PYTHON = sys.executable
TOKENIZER_DIR = os.path.join(REPO, "tests", "fixtures", "tokenizers", "qwen2")

# Seconds a test may run before the watchdog dumps every thread's stack and ends the run.
DEFAULT_TIME_LIMIT = 90


def soak_seconds():
    return float(os.environ.get("TESSERA_SOAK_SECONDS", "120"))


def pytest_configure(config):
    config.addinivalue_line("markers", "time_limit(seconds): watchdog limit for one test (default 90 s)")


@pytest.fixture(autouse=True)
def _watchdog(request):
    marker = request.node.get_closest_marker("time_limit")
    limit = marker.args[0] if marker else DEFAULT_TIME_LIMIT
    faulthandler.dump_traceback_later(limit, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


# ---- binaries, models, stubs ---------------------------------------------------------------------


@pytest.fixture(scope="session")
def build_dir():
    d = os.environ.get("TESSERA_BUILD_DIR", os.path.join(REPO, "build", "release"))
    d = os.path.abspath(os.path.join(REPO, d))
    for rel in ("server/tesserad", "worker/tessera-worker"):
        path = os.path.join(d, rel)
        if not os.access(path, os.X_OK):
            pytest.fail(f"{path} is missing: build the tesserad and tessera-worker targets, or set TESSERA_BUILD_DIR")
    return d


@pytest.fixture(scope="session")
def tesserad(build_dir):
    return os.path.join(build_dir, "server", "tesserad")


def make_model(out_dir, hidden, layers, intermediate, max_position, heads=4, kv_heads=2):
    subprocess.run(
        [PYTHON, os.path.join(REPO, "tools", "make_random_llama.py"), str(out_dir),
         "--hidden", str(hidden), "--layers", str(layers), "--heads", str(heads), "--kv-heads", str(kv_heads),
         "--intermediate", str(intermediate),
         "--tokenizer", os.path.join(TOKENIZER_DIR, "tokenizer.json"),
         "--tokenizer-config", os.path.join(TOKENIZER_DIR, "tokenizer_config.json"),
         "--max-position", str(max_position)],
        check=True, capture_output=True, timeout=120)
    return str(out_dir)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """The test model: random Llama, hidden 64, 2 layers, qwen2 tokenizer, context 1024. Fast."""
    return make_model(tmp_path_factory.mktemp("models") / "tiny", 64, 2, 128, 1024)


@pytest.fixture(scope="session")
def slow_model(tmp_path_factory):
    """A larger random Llama (about 10 ms a token on 2 cores) with a long context, for tests that
    need a request to stay in flight for seconds (drain, disconnects, deadlines, worker crashes)."""
    return make_model(tmp_path_factory.mktemp("models") / "slow", 256, 4, 512, 8192)


@pytest.fixture(scope="session")
def stubs(tmp_path_factory):
    """Python modules generated from proto/tessera/v1/inference.proto (KServe is tested through
    tritonclient, which carries its own copy of that protocol)."""
    out = tmp_path_factory.mktemp("stubs")
    subprocess.run(
        [PYTHON, "-m", "grpc_tools.protoc", "-I", os.path.join(REPO, "proto"), f"--python_out={out}",
         f"--grpc_python_out={out}", os.path.join(REPO, "proto", "tessera", "v1", "inference.proto")],
        check=True, capture_output=True, timeout=120)
    sys.path.insert(0, str(out))
    from tessera.v1 import inference_pb2, inference_pb2_grpc  # noqa: E402

    class Stubs:
        pb = inference_pb2
        grpc = inference_pb2_grpc

    return Stubs


# ---- the daemon ------------------------------------------------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1


def _die_with_parent():
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def child_pids(pid):
    r = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, timeout=10)
    return [int(x) for x in r.stdout.split()]


class Daemon:
    """One tesserad process on free ports. `start` waits for --port-file (written once ready)."""

    def __init__(self, binary, model, workdir, args=(), scheme="http"):
        self.binary = binary
        self.model = model
        self.workdir = workdir
        self.args = list(args)
        self.scheme = scheme
        self.proc = None
        self.http_port = None
        self.grpc_port = None
        self.log_path = os.path.join(workdir, "tesserad.log")
        self.expect_exit = None  # set by a test that expects a different end than "SIGTERM → 0"

    # -- lifecycle
    def start(self, timeout=60):
        port_file = os.path.join(self.workdir, "ports")
        if os.path.exists(port_file):
            os.remove(port_file)
        cmd = [self.binary, "--model", self.model, "--host", "127.0.0.1", "--port", "0", "--grpc-port", "0",
               "--port-file", port_file] + self.args
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, cwd=self.workdir,
                                     preexec_fn=_die_with_parent)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if os.path.exists(port_file):
                fields = dict(kv.split("=") for kv in open(port_file).read().split())
                self.http_port, self.grpc_port = int(fields["http"]), int(fields["grpc"])
                return self
            if self.proc.poll() is not None:
                pytest.fail(f"tesserad exited with {self.proc.returncode} during start-up:\n{self.log()}")
            time.sleep(0.05)
        self.kill()
        pytest.fail(f"tesserad did not write its port file within {timeout} s:\n{self.log()}")

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")[-6000:]
        except OSError:
            return ""

    @property
    def pid(self):
        return self.proc.pid

    def worker_pids(self):
        return child_pids(self.proc.pid)

    def terminate(self, timeout=45):
        """SIGTERM, wait; returns the exit code (SIGKILLs and fails the test if it does not end)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"tesserad did not exit within {timeout} s of SIGTERM:\n{self.log()}")

    def kill(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        kids = child_pids(self.proc.pid)
        self.proc.kill()
        self.proc.wait(timeout=10)
        for k in kids:
            try:
                os.kill(k, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def stop_and_check(self):
        """Teardown: SIGTERM and, unless the test said otherwise, require exit code 0."""
        if self.proc is None:
            return
        if self.proc.poll() is not None and self.expect_exit is None:
            code = self.proc.returncode
            self._log.close()
            pytest.fail(f"tesserad had already exited with {code}:\n{self.log()}")
        code = self.terminate()
        self._log.close()
        if self.expect_exit is None:
            assert code == 0, f"tesserad exited with {code} after SIGTERM:\n{self.log()}"

    # -- addresses
    @property
    def url(self):
        return f"{self.scheme}://127.0.0.1:{self.http_port}"

    @property
    def v1(self):
        return self.url + "/v1"

    @property
    def grpc_target(self):
        return f"127.0.0.1:{self.grpc_port}"

    # -- helpers
    def metrics_text(self, **kw):
        r = requests.get(self.url + "/metrics", timeout=10, **kw)
        r.raise_for_status()
        return r.text

    def metric(self, name, labels=None, **kw):
        """Sum of the samples named `name` whose labels include `labels`."""
        return sum_metric(self.metrics_text(**kw), name, labels)

    def wait_metric(self, name, pred, timeout, labels=None):
        """Polls /metrics until pred(value) holds; returns the last value (caller asserts)."""
        deadline = time.monotonic() + timeout
        while True:
            v = self.metric(name, labels)
            if pred(v) or time.monotonic() > deadline:
                return v
            time.sleep(0.05)

    def rss_kb(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError("no VmRSS")


def parse_metrics(text):
    """[(name, {label: value}, float)] from a Prometheus text exposition."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        labels = {}
        if "{" in head:
            name, _, rest = head.partition("{")
            rest = rest.rstrip("}")
            # label values here never hold '",' sequences; split on the quotes.
            i = 0
            while i < len(rest):
                eq = rest.index("=", i)
                key = rest[i:eq].strip().lstrip(",").strip()
                j = eq + 2
                val = []
                while rest[j] != '"':
                    if rest[j] == "\\":
                        j += 1
                    val.append(rest[j])
                    j += 1
                labels[key] = "".join(val)
                i = j + 1
        else:
            name = head
        out.append((name, labels, float(value)))
    return out


def sum_metric(text, name, labels=None):
    total = 0.0
    found = False
    for n, l, v in parse_metrics(text):
        if n == name and all(l.get(k) == val for k, val in (labels or {}).items()):
            total += v
            found = True
    assert found, f"metric {name}{labels or ''} not in the exposition"
    return total


@pytest.fixture
def start_daemon(tesserad, tiny_model, tmp_path):
    """Factory: start_daemon(args=[...], model=None) → started Daemon; all stopped at teardown."""
    started = []

    def start(args=(), model=None, scheme="http", timeout=60):
        workdir = tmp_path / f"d{len(started)}"
        workdir.mkdir()
        d = Daemon(tesserad, model or tiny_model, str(workdir), args, scheme)
        started.append(d)
        return d.start(timeout=timeout)

    yield start
    errors = []
    for d in started:
        try:
            d.stop_and_check()
        except BaseException as e:  # noqa: BLE001 - report every daemon's failure
            errors.append(e)
        finally:
            d.kill()
    if errors:
        raise errors[0]


@pytest.fixture(scope="session")
def shared_daemon(tesserad, tiny_model, tmp_path_factory):
    """One daemon over the tiny model for the API tests that need no special flags."""
    d = Daemon(tesserad, tiny_model, str(tmp_path_factory.mktemp("shared")), ["--threads", "1"])
    d.start()
    yield d
    try:
        d.stop_and_check()
    finally:
        d.kill()


# ---- HTTP helpers ------------------------------------------------------------------------------------


def post(d, path, body, timeout=60, **kw):
    return requests.post(d.v1 + path, json=body, timeout=timeout, **kw)


def sse_events(resp):
    """Yields the JSON of each `data:` event of a streaming response until [DONE]."""
    for line in resp.iter_lines(decode_unicode=False):
        if not line:
            continue
        assert line.startswith(b"data: "), line
        data = line[len(b"data: "):]
        if data == b"[DONE]":
            return
        yield json.loads(data)


def wait_until(pred, timeout, interval=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(interval)
    return pred()


def health_status(d):
    try:
        return requests.get(d.url + "/health", timeout=5).status_code
    except requests.RequestException:
        return None

