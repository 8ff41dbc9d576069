"""Shared state over TLS (rediss://): a redis-server with only a TLS port, a
throwaway CA and server certificate made by the openssl CLI, replicas that
verify it. Asio's ssl::stream carries the bytes; hiredis only parses.

- two replicas with the right CA share state (an admin change on A reaches B);
- a replica given another CA, or a name the certificate does not hold, never
  gets up, says why once in its log, and serves its clients without an error.
"""
from __future__ import annotations

import json
import re
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest

from conftest import USER_HI, Proc, deployment, free_port, needs_plugins, wait_for
from fleet_util import Replica, fleet_config, start_replica_process

pytestmark = needs_plugins("simple-shuffle")


def _openssl(*args: str, cwd: Path):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _make_ca(d: Path, name: str):
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2", "-subj", f"/CN={name}", cwd=d)


def _make_certs(d: Path) -> dict[str, Path]:
    d.mkdir(parents=True, exist_ok=True)
    _make_ca(d, "ca")
    _make_ca(d, "other-ca")
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=redis.test", cwd=d)
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:redis.test\nbasicConstraints=CA:FALSE\n"
                               "keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf", cwd=d)
    return {"ca": d / "ca.pem", "other_ca": d / "other-ca.pem", "cert": d / "server.pem", "key": d / "server.key"}


def _tls_ping(port: int, ca: Path) -> bool:
    ctx = ssl.create_default_context(cafile=str(ca))
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as raw:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
                s.sendall(b"*1\r\n$4\r\nPING\r\n")
                return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@pytest.fixture
def tls_redis(tmp_path):
    certs = _make_certs(tmp_path / "pki")
    port = free_port()
    p = subprocess.Popen(["redis-server", "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
                          "--tls-cert-file", str(certs["cert"]), "--tls-key-file", str(certs["key"]),
                          "--tls-ca-cert-file", str(certs["ca"]), "--tls-auth-clients", "no",
                          "--save", "", "--appendonly", "no", "--dir", str(tmp_path),
                          "--logfile", str(tmp_path / "redis.log")], start_new_session=True)
    try:
        wait_for(lambda: _tls_ping(port, certs["ca"]), timeout=10, what="redis-server answering over TLS")
        yield port, certs
    finally:
        p.terminate()
        p.wait(timeout=10)


class _Replicas:
    def __init__(self, workdir: Path, model_list: list[dict], port: int):
        self.workdir, self.model_list, self.port = workdir, model_list, port
        self.procs: list[Proc] = []
        self.replicas: list[Replica] = []

    def start(self, name: str, **shared_state) -> Replica:
        cfg = fleet_config(self.model_list, shared_state={k: str(v) for k, v in shared_state.items()})
        path = self.workdir / f"{name}.yaml"
        path.write_text(json.dumps(cfg, indent=2))
        p, r = start_replica_process(name, path, self.workdir, f"rediss://127.0.0.1:{self.port}")
        self.procs.append(p)
        self.replicas.append(r)
        return r

    def close(self):
        for r in self.replicas:
            r.close()
        for p in self.procs:
            p.stop()


def _models(r) -> set[str]:
    return {m["id"] for m in r.http.get("/v1/models", headers={"Authorization": "Bearer sk-fleet-master"}).json()["data"]}


def test_shared_state_over_tls_with_a_verified_certificate(stack, tmp_path, tls_redis):
    port, certs = tls_redis
    m = stack.mock("m", "--ttft", "1ms", "--chunks", "2")
    rs = _Replicas(tmp_path, [deployment("g", m, model_info={"id": "g-1"})], port)
    try:
        a = rs.start("replica-a", tls_ca_file=certs["ca"])
        b = rs.start("replica-b", tls_ca_file=certs["ca"], tls_server_name="redis.test")
        for r in (a, b):
            wait_for(lambda: r.metric("tailgate_shared_state_up") == 1, timeout=10,
                     what=f"{r.name} connected to Redis over TLS")
            assert "over TLS (certificate verified)" in r.log_text()
        t0 = time.monotonic()
        resp = a.admin("POST", "/admin/deployments", {"model_name": "g2", "litellm_params": {
            "model": "openai/x", "api_base": m.base_url, "api_key": "sk-SECRET-g2"}})
        assert resp.status_code == 201, resp.text
        wait_for(lambda: "g2" in _models(b), timeout=2, interval=0.01, what="B has g2")
        assert time.monotonic() - t0 < 1.0
        assert b.client().chat.completions.create(model="g2", messages=USER_HI).choices[0].message.content
        # The revision really went through this (TLS-only) Redis.
        assert b.admin("GET", "/admin/config").json()["revision"] == resp.json()["revision"]
    finally:
        rs.close()


def test_a_certificate_that_does_not_verify_is_redis_down_not_an_error(stack, tmp_path, tls_redis):
    port, certs = tls_redis
    m = stack.mock("m", "--ttft", "1ms", "--chunks", "2")
    rs = _Replicas(tmp_path, [deployment("g", m, model_info={"id": "g-1"})], port)
    try:
        wrong_ca = rs.start("replica-wrong-ca", tls_ca_file=certs["other_ca"])
        wrong_name = rs.start("replica-wrong-name", tls_ca_file=certs["ca"], tls_server_name="not-redis.test")
        for r in (wrong_ca, wrong_name):
            wait_for(lambda: "certificate verification failed" in r.log_text(), timeout=5,
                     what=f"{r.name} logs the verification failure")
        # OpenSSL's reason, after the server sent its chain (CA included): not ours.
        assert re.search(r"certificate verification failed \((self-signed certificate in certificate chain|"
                         r"unable to get local issuer certificate)\)", wrong_ca.log_text())
        assert "mismatch" in wrong_name.log_text()
        time.sleep(1.0)  # several reconnect attempts (backoff from 0.1 s)
        for r in (wrong_ca, wrong_name):
            assert r.metric("tailgate_shared_state_up") == 0
            assert "connected to Redis" not in r.log_text()
            # Said once per outage, not once per attempt.
            assert r.log_text().count("certificate verification failed") == 1
            cl = r.client()
            for _ in range(10):
                assert cl.chat.completions.create(model="g", messages=USER_HI).choices[0].message.content
            assert r.http.get("/health/readiness").status_code == 200
    finally:
        rs.close()
