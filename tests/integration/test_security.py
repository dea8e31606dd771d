"""API keys, TLS and mutual TLS. Certificates are made per test session with the `openssl` CLI."""
import shutil
import subprocess

import grpc
import openai
import pytest
import requests
from grpc_health.v1 import health_pb2, health_pb2_grpc

TIMEOUT = 30


def grpc_generate(target, stubs, credentials=None, metadata=None):
    ch = grpc.secure_channel(target, credentials) if credentials else grpc.insecure_channel(target)
    try:
        stub = stubs.grpc.InferenceStub(ch)
        resp = list(stub.Generate(stubs.pb.GenerateRequest(text="hi", sampling=stubs.pb.SamplingParams(max_tokens=2)),
                                  timeout=TIMEOUT, metadata=metadata))
        return "".join(r.text for r in resp), resp[-1].finish_reason
    finally:
        ch.close()


def grpc_code(fn):
    try:
        fn()
    except grpc.RpcError as e:
        return e.code()
    return grpc.StatusCode.OK


# ---- API keys ---------------------------------------------------------------------------------------


def _check_keys(d, stubs, good, bad):
    models = d.v1 + "/models"
    r = requests.get(models, timeout=TIMEOUT)
    assert r.status_code == 401
    err = r.json()["error"]
    assert err["type"] == "authentication_error" and err["code"] == 401
    assert requests.post(d.v1 + "/completions", json={"prompt": "hi"}, timeout=TIMEOUT).status_code == 401
    for k in bad:
        assert requests.get(models, headers={"Authorization": f"Bearer {k}"}, timeout=TIMEOUT).status_code == 401
    for k in good:
        assert requests.get(models, headers={"Authorization": f"Bearer {k}"}, timeout=TIMEOUT).status_code == 200
        with openai.OpenAI(base_url=d.v1, api_key=k, max_retries=0, timeout=TIMEOUT) as c:
            assert c.completions.create(model="tiny", prompt="hi", max_tokens=2).choices[0].finish_reason
        text, finish = grpc_generate(d.grpc_target, stubs, metadata=(("authorization", f"Bearer {k}"),))
        assert finish in ("length", "stop")
    with openai.OpenAI(base_url=d.v1, api_key=bad[0], max_retries=0, timeout=TIMEOUT) as c:
        with pytest.raises(openai.AuthenticationError):
            c.models.list()
    # gRPC: no key, wrong key.
    assert grpc_code(lambda: grpc_generate(d.grpc_target, stubs)) == grpc.StatusCode.UNAUTHENTICATED
    assert grpc_code(lambda: grpc_generate(d.grpc_target, stubs, metadata=(("authorization", f"Bearer {bad[0]}"),))) \
        == grpc.StatusCode.UNAUTHENTICATED
    # Health and metrics stay open (probes and scrapers carry no key).
    assert requests.get(d.url + "/health", timeout=TIMEOUT).status_code == 200
    assert requests.get(d.url + "/metrics", timeout=TIMEOUT).status_code == 200
    ch = grpc.insecure_channel(d.grpc_target)
    try:
        st = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=TIMEOUT).status
        assert st == health_pb2.HealthCheckResponse.SERVING
    finally:
        ch.close()


def test_api_key(start_daemon, stubs):
    d = start_daemon(["--api-key", "sk-test-1", "--threads", "1"])
    _check_keys(d, stubs, good=["sk-test-1"], bad=["sk-test-2", "sk-test-1x", ""])


def test_api_key_file(start_daemon, stubs, tmp_path):
    keys = tmp_path / "keys.txt"
    keys.write_text("# team keys\nkey-alpha\n\n  key-beta  \n")
    d = start_daemon(["--api-key-file", str(keys), "--threads", "1"])
    _check_keys(d, stubs, good=["key-alpha", "key-beta"], bad=["key-gamma", "# team keys"])


# ---- TLS ---------------------------------------------------------------------------------------------


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    if shutil.which("openssl") is None:
        pytest.fail("the openssl CLI is not installed")
    d = tmp_path_factory.mktemp("pki")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=Tessera Test CA",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    for name, usage in (("server", "serverAuth"), ("client", "clientAuth")):
        (d / f"{name}.ext").write_text(
            f"subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage={usage}\nbasicConstraints=CA:FALSE\n")
        _openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=d)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                 "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext", cwd=d)
    # A second CA the server does not trust, and a client certificate it signed.
    _openssl("req", "-x509", *ec, "-keyout", "other.key", "-out", "other.pem", "-days", "2", "-subj", "/CN=Other CA",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    _openssl("req", *ec, "-keyout", "rogue.key", "-out", "rogue.csr", "-subj", "/CN=rogue", cwd=d)
    _openssl("x509", "-req", "-in", "rogue.csr", "-CA", "other.pem", "-CAkey", "other.key", "-CAcreateserial",
             "-out", "rogue.pem", "-days", "2", "-extfile", "client.ext", cwd=d)
    return {k: str(d / f"{k}") for k in ("ca.pem", "server.pem", "server.key", "client.pem", "client.key",
                                          "other.pem", "rogue.pem", "rogue.key")}


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def test_tls(start_daemon, pki, stubs):
    d = start_daemon(["--tls-cert", pki["server.pem"], "--tls-key", pki["server.key"], "--threads", "1"],
                     scheme="https")
    r = requests.get(d.url + "/health", verify=pki["ca.pem"], timeout=TIMEOUT)
    assert r.status_code == 200
    r = requests.post(d.v1 + "/completions", json={"prompt": "hi", "max_tokens": 3, "ignore_eos": True},
                      verify=pki["ca.pem"], timeout=TIMEOUT)
    assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] == 3
    # A client that does not trust the CA refuses the server; plain HTTP gets nothing useful.
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(d.url + "/health", verify=pki["other.pem"], timeout=TIMEOUT)
    with pytest.raises(requests.RequestException):
        r = requests.get(f"http://127.0.0.1:{d.http_port}/health", timeout=5)
        assert r.status_code == 200 and False, "plain HTTP answered on the TLS port"
    creds = grpc.ssl_channel_credentials(root_certificates=_read(pki["ca.pem"]))
    text, finish = grpc_generate(d.grpc_target, stubs, creds)
    assert finish in ("length", "stop")
    wrong = grpc.ssl_channel_credentials(root_certificates=_read(pki["other.pem"]))
    assert grpc_code(lambda: grpc_generate(d.grpc_target, stubs, wrong)) == grpc.StatusCode.UNAVAILABLE
    assert grpc_code(lambda: grpc_generate(d.grpc_target, stubs)) == grpc.StatusCode.UNAVAILABLE


def test_mtls(start_daemon, pki, stubs):
    d = start_daemon(["--tls-cert", pki["server.pem"], "--tls-key", pki["server.key"],
                      "--tls-client-ca", pki["ca.pem"], "--threads", "1"], scheme="https")
    client = (pki["client.pem"], pki["client.key"])
    r = requests.get(d.v1 + "/models", verify=pki["ca.pem"], cert=client, timeout=TIMEOUT)
    assert r.status_code == 200 and r.json()["data"][0]["id"] == "tiny"
    with pytest.raises(requests.exceptions.RequestException):
        requests.get(d.v1 + "/models", verify=pki["ca.pem"], timeout=TIMEOUT)
    # A certificate from a CA the server does not trust is refused too.
    with pytest.raises(requests.exceptions.RequestException):
        requests.get(d.v1 + "/models", verify=pki["ca.pem"], cert=(pki["rogue.pem"], pki["rogue.key"]),
                     timeout=TIMEOUT)
    creds = grpc.ssl_channel_credentials(root_certificates=_read(pki["ca.pem"]),
                                         private_key=_read(pki["client.key"]),
                                         certificate_chain=_read(pki["client.pem"]))
    text, finish = grpc_generate(d.grpc_target, stubs, creds)
    assert finish in ("length", "stop")
    no_cert = grpc.ssl_channel_credentials(root_certificates=_read(pki["ca.pem"]))
    assert grpc_code(lambda: grpc_generate(d.grpc_target, stubs, no_cert)) == grpc.StatusCode.UNAVAILABLE
    rogue = grpc.ssl_channel_credentials(root_certificates=_read(pki["ca.pem"]),
                                         private_key=_read(pki["rogue.key"]),
                                         certificate_chain=_read(pki["rogue.pem"]))
    assert grpc_code(lambda: grpc_generate(d.grpc_target, stubs, rogue)) == grpc.StatusCode.UNAVAILABLE
