"""Upstream fault matrix (issue 8): every upstream fault, stream and non-stream,
through the official `openai` SDK. For each case the test checks what the
client gets, what the faulty deployment's health does (/metrics), and that the
gateway holds no more descriptors afterwards than before (/proc/<pid>/fd).

Two groups point at the same faulty mock: `solo` (nothing else to try: the
client gets the error) and `fb` (falls back to the healthy `good` group, so a
fault before the commit point is invisible to the client). After the commit
point (the first content event of a stream) there is no retry: the client gets
an SSE error event, which the SDK raises as APIError. RELIABILITY.md lists the
matrix with the tests that verify each row; faults already covered elsewhere are
referenced there rather than repeated here.
"""
from __future__ import annotations

import re
import shutil
import ssl
import subprocess
import time
from dataclasses import dataclass, field

import httpx
import openai
import pytest

from conftest import USER_HI, assert_openai_error_shape, open_fds, deployment, free_port, make_config, mock_words, wait_for

CHUNKS = 6
FAST = ("--ttft", "1ms", "--chunk-delay", "1ms", "--chunks", str(CHUNKS))
TIMEOUT_S = 0.6          # solo/fb: total and idle timeout
STREAM_TIMEOUT_S = 0.3   # solo/fb: first byte/content of a stream
COOLDOWN_S = 0.2


@pytest.fixture(scope="module")
def env(module_stack):
    fault = module_stack.mock("fault", *FAST)
    good = module_stack.mock("good", *FAST)
    dead_port = free_port()  # nobody listens there: connection refused
    limits = {"timeout": TIMEOUT_S, "stream_timeout": STREAM_TIMEOUT_S}
    cfg = make_config([
        deployment("solo", fault, model_info={"id": "solo-dep"}, **limits),
        deployment("fb", fault, model_info={"id": "fb-dep"}, **limits),
        deployment("good", good, model_info={"id": "good-dep"}),
        deployment("dead", api_base=f"http://127.0.0.1:{dead_port}/v1", model_info={"id": "dead-dep"}),
        deployment("deadfb", api_base=f"http://127.0.0.1:{dead_port}/v1", model_info={"id": "deadfb-dep"}),
    ], router_settings={
        "strategies": ["health", "simple-shuffle"],
        "fallbacks": [{"fb": ["good"]}, {"deadfb": ["good"]}],
        # Only the faults that cool at once (401/404) change the state; the
        # allowed_fails threshold itself is tested in test_routing_health.py.
        "allowed_fails": 1000, "cooldown_time": COOLDOWN_S,
    })
    gw = module_stack.gateway(cfg)
    return gw, fault, good


# ---------------------------------------------------------------------------
# observation helpers

def fd_count(gw) -> int:
    return open_fds(gw.proc.p.pid)


def settled_fd_count(gw) -> int:
    """The fd count once closed client connections are gone (two equal reads in a row)."""
    last = fd_count(gw)
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        time.sleep(0.05)
        now = fd_count(gw)
        if now == last:
            return now
        last = now
    return last


def metrics(gw) -> dict[tuple, float]:
    """Samples of the failure counter and the state gauge, keyed by labels."""
    out = {}
    for line in gw.http.get("/metrics").text.splitlines():
        m = re.match(r'(tailgate_attempt_failures_total|tailgate_deployment_state)\{([^}]*)\} (\S+)$', line)
        if m:
            labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2)))
            key = (m.group(1), labels["deployment"], labels.get("error_class") or labels.get("state"))
            out[key] = float(m.group(3))
    return out


def failures(snap: dict, dep: str) -> dict[str, float]:
    return {k[2]: v for k, v in snap.items() if k[0] == "tailgate_attempt_failures_total" and k[1] == dep and v}


def state(snap: dict, dep: str) -> str:
    states = [k[2] for k, v in snap.items() if k[0] == "tailgate_deployment_state" and k[1] == dep and v == 1]
    assert len(states) == 1, (dep, states)
    return states[0]


def warm(gw):
    """One good exchange per origin, so the pools hold what they will hold after a case."""
    with gw.client() as c:
        for model in ("solo", "fb", "good"):
            c.chat.completions.create(model=model, messages=USER_HI)


@dataclass
class Outcome:
    text: str = ""
    headers: dict = field(default_factory=dict)
    error: Exception | None = None
    elapsed: float = 0.0


def call(gw, model: str, stream: bool, **kw) -> Outcome:
    """One chat call through the SDK; collects the text, the headers and the error raised."""
    out = Outcome()
    t0 = time.monotonic()
    with gw.client(timeout=15) as client:
        try:
            raw = client.chat.completions.with_raw_response.create(model=model, messages=USER_HI, stream=stream,
                                                                   **kw)
            out.headers = dict(raw.headers)
            resp = raw.parse()
            if stream:
                for chunk in resp:
                    for ch in chunk.choices:
                        out.text += ch.delta.content or ""
            else:
                out.text = resp.choices[0].message.content
        except openai.APIError as e:
            out.error = e
    out.elapsed = time.monotonic() - t0
    return out


# ---------------------------------------------------------------------------
# the matrix

@dataclass
class Fault:
    knobs: dict                  # /mock/config of the faulty mock
    status: int | None           # pre-commit: the status the client gets
    error_class: str             # what the faulty deployment's failure counts as
    post_commit: bool = False    # stream: fails after content was relayed
    needle: str = ""             # in the client's error message
    cools: bool = False          # the deployment cools down at once
    retryable: bool = True       # `fb` falls back
    extra: dict = field(default_factory=dict)  # request extras (extra_body)
    fallback_check: bool = True  # also run it on `fb` (off where it would only repeat a slow case)


SOLO = "deployment 'solo-dep'"  # transport errors name the deployment
# The head goes out at once; the reset follows 100 ms later, once the head was surely read.
RESET_AFTER_HEADERS = {"reset_after_headers": True, "ttft_ms": 100}


# 64 MiB through loopback can take longer than the short test timeouts on a loaded machine.
SLOW_OK = {"timeout": 30, "stream_timeout": 30}


def huge(after: int | None = None) -> dict:
    k = {"garbage": "huge_body"}
    if after is not None:
        k["garbage_after"] = after
    return k


# id -> (non-stream fault, stream fault); None: not a fault in that mode.
MATRIX: dict[str, tuple[Fault | None, Fault | None]] = {
    "reset_before_headers": (
        Fault({"reset_before": 1}, 502, "connect", needle=SOLO),
        Fault({"reset_before": 1}, 502, "connect", needle=SOLO)),
    "reset_after_headers": (
        Fault(RESET_AFTER_HEADERS, 502, "protocol", needle="mid-body"),
        Fault(RESET_AFTER_HEADERS, 502, "protocol", needle="mid-body")),
    "reset_mid_stream": (
        # Non-stream: the mock resets before any byte of the body would go out.
        Fault({"reset_mid_stream_after": 2}, 502, "connect", needle=SOLO),
        Fault({"reset_mid_stream_after": 2}, None, "protocol", post_commit=True, needle="lost mid-stream")),
    "stall_first_byte": (
        Fault({"stall": True}, 504, "timeout", needle="timed out"),
        Fault({"stall": True}, 504, "timeout", needle="timed out")),
    "stall_mid_stream": (
        Fault({"stall_mid_stream_after": 2}, 504, "timeout", needle="timed out"),
        Fault({"stall_mid_stream_after": 2}, None, "timeout", post_commit=True, needle="stalled")),
    "429_retry_after": (
        Fault({"fail_rate": 1, "fail_status": 429, "retry_after": 3}, 429, "rate_limit", needle="mock injected 429"),
        Fault({"fail_rate": 1, "fail_status": 429, "retry_after": 3}, 429, "rate_limit", needle="mock injected 429")),
    "503_retry_after_ms": (
        Fault({"fail_rate": 1, "fail_status": 503, "retry_after_ms": 1500}, 503, "server", needle="mock injected 503"),
        Fault({"fail_rate": 1, "fail_status": 503, "retry_after_ms": 1500}, 503, "server",
              needle="mock injected 503")),
    "500": (Fault({"fail_rate": 1, "fail_status": 500}, 500, "server", needle="mock injected 500"),
            Fault({"fail_rate": 1, "fail_status": 500}, 500, "server", needle="mock injected 500")),
    "502": (Fault({"fail_rate": 1, "fail_status": 502}, 502, "server", needle="mock injected 502"),
            Fault({"fail_rate": 1, "fail_status": 502}, 502, "server", needle="mock injected 502")),
    "400": (Fault({"fail_rate": 1, "fail_status": 400}, 400, "bad_request", needle="mock injected 400",
                  retryable=False),
            Fault({"fail_rate": 1, "fail_status": 400}, 400, "bad_request", needle="mock injected 400",
                  retryable=False)),
    "401": (Fault({"fail_rate": 1, "fail_status": 401}, 401, "auth", needle="mock injected 401", cools=True),
            Fault({"fail_rate": 1, "fail_status": 401}, 401, "auth", needle="mock injected 401", cools=True)),
    "404": (Fault({"fail_rate": 1, "fail_status": 404}, 404, "not_found", needle="mock injected 404", cools=True),
            Fault({"fail_rate": 1, "fail_status": 404}, 404, "not_found", needle="mock injected 404", cools=True)),
    "non_json": (Fault({"garbage": "non_json"}, 502, "protocol", needle="not a JSON object"),
                 Fault({"garbage": "non_json"}, 502, "protocol", needle="without [DONE]")),
    "html_error": (Fault({"garbage": "html_error"}, 502, "server", needle="non-JSON body (text/html)"),
                   Fault({"garbage": "html_error"}, 502, "server", needle="non-JSON body (text/html)")),
    "bad_sse_first": (None,
                      Fault({"garbage": "bad_sse", "garbage_after": 0}, 502, "protocol",
                            needle="malformed SSE event")),
    "bad_sse_mid_stream": (
        Fault({"garbage": "bad_sse"}, 502, "protocol", needle="not a JSON object"),
        Fault({"garbage": "bad_sse"}, None, "protocol", post_commit=True, needle="malformed SSE event")),
    "truncated_chunked": (
        Fault({"garbage": "truncated_chunked"}, 502, "protocol", needle="mid-body"),
        Fault({"garbage": "truncated_chunked"}, None, "protocol", post_commit=True, needle="lost mid-stream")),
    "huge_body": (
        Fault(huge(), 502, "protocol", needle="exceeds the body limit", extra=SLOW_OK),
        Fault(huge(0), 502, "protocol", needle="exceeds the body limit", extra=SLOW_OK, fallback_check=False)),
    "huge_event_mid_stream": (
        None,
        Fault(huge(2), None, "protocol", post_commit=True, needle="exceeds the body limit", extra=SLOW_OK,
              fallback_check=False)),
    "no_done": (None,
                Fault({"garbage": "no_done"}, None, "protocol", post_commit=True, needle="without [DONE]")),
}

CASES = [pytest.param(fid, stream, id=f"{fid}-{'stream' if stream else 'nonstream'}")
         for fid, pair in MATRIX.items() for stream, f in ((False, pair[0]), (True, pair[1])) if f is not None]


@pytest.fixture
def clean(env):
    """Healthy deployments, warm pools and the gateway's fd count before the case;
    afterwards no more fds than that (pools settle: failed connections are closed)."""
    gw, fault, good = env
    fault.reset()
    good.reset()

    def both_healthy():
        # A cooled deployment needs its half-open probe to succeed: ask until it did.
        try:
            warm(gw)
        except openai.APIError:
            return False
        snap = metrics(gw)
        return all(state(snap, d) == "healthy" for d in ("solo-dep", "fb-dep", "good-dep"))

    wait_for(both_healthy, timeout=5, interval=COOLDOWN_S / 2, what="healthy deployments")
    before = settled_fd_count(gw)
    yield gw, fault, good
    fault.reset()  # nothing stalls any more
    gw.assert_healthy()
    wait_for(lambda: fd_count(gw) <= before, timeout=5,
             what=f"the gateway's fds back to {before} (now {fd_count(gw)}): leaked descriptors")


def assert_pre_commit_error(out: Outcome, f: Fault):
    e = out.error
    assert isinstance(e, openai.APIStatusError), (out.text, e)
    assert e.status_code == f.status, (e.status_code, e.message)
    err = assert_openai_error_shape(e.response, f.status)
    assert f.needle in err["message"], err


@pytest.mark.parametrize("fid, stream", CASES)
def test_fault(clean, fid, stream):
    gw, fault, good = clean
    f = MATRIX[fid][1 if stream else 0]
    fault.configure(**f.knobs)
    extra = {"extra_body": f.extra} if f.extra else {}
    before = metrics(gw)

    # `solo`: nothing else to try.
    out = call(gw, "solo", stream, **extra)
    if f.post_commit:
        # After the commit point: the content so far, then an SSE error event
        # that the SDK raises as APIError (not a connection error, not a short stream).
        assert isinstance(out.error, openai.APIError), (out.text, out.error)
        assert not isinstance(out.error, (openai.APIStatusError, openai.APIConnectionError)), out.error
        assert isinstance(out.error.body, dict) and f.needle in out.error.body.get("message", ""), out.error.body
        assert out.headers.get("x-tailgate-deployment") == "solo-dep"
        if fid == "no_done":
            assert out.text == mock_words("fault", CHUNKS)
        else:
            assert out.text.startswith(mock_words("fault", 2)), out.text
            assert "broken" not in out.text
    else:
        assert_pre_commit_error(out, f)
        assert out.error.response.headers.get("x-tailgate-attempts") == "1"
        if f.status in (429, 503):
            # Retry-After is passed on (retry-after-ms rounded up to seconds).
            want = "3" if "retry_after" in f.knobs else "2"
            assert out.error.response.headers.get("retry-after") == want, out.error.response.headers
    # Timeouts fire at their configured time, not later (and nothing hangs).
    limit = STREAM_TIMEOUT_S if stream and fid == "stall_first_byte" else TIMEOUT_S
    if f.error_class == "timeout":
        assert limit * 0.8 <= out.elapsed < limit + 2.0, out.elapsed
    else:
        assert out.elapsed < 10, out.elapsed

    after = metrics(gw)
    got = failures(after, "solo-dep")
    was = failures(before, "solo-dep")
    assert got.get(f.error_class, 0) == was.get(f.error_class, 0) + 1, (f.error_class, was, got)
    assert state(after, "solo-dep") == ("cooling" if f.cools else "healthy")

    # `fb`: before the commit point a retryable fault falls back to `good`.
    if not f.fallback_check:
        return
    good_before = good.received()
    out = call(gw, "fb", stream, **extra)
    if f.post_commit:
        assert isinstance(out.error, openai.APIError) and not isinstance(out.error, openai.APIStatusError)
        assert out.headers.get("x-tailgate-deployment") == "fb-dep"
        assert good.received() == good_before, "no fallback after the commit point"
    elif f.retryable:
        assert out.error is None, out.error
        assert out.text == mock_words("good", CHUNKS)
        assert out.headers.get("x-tailgate-deployment") == "good-dep"
        assert out.headers.get("x-tailgate-fallback") == "good"
        assert out.headers.get("x-tailgate-attempts") == "2"
    else:
        assert_pre_commit_error(out, f)
        assert out.error.response.headers.get("x-tailgate-attempts") == "1", "a 400 is not retried elsewhere"
    assert state(metrics(gw), "fb-dep") == ("cooling" if f.cools else "healthy")


@pytest.mark.parametrize("stream", [False, True], ids=["nonstream", "stream"])
def test_connection_refused(clean, stream):
    gw, _, _ = clean
    before = metrics(gw)
    out = call(gw, "dead", stream)
    assert_pre_commit_error(out, Fault({}, 502, "connect", needle="deployment 'dead-dep'"))
    assert "failed" in out.error.message
    assert out.elapsed < 3
    assert failures(metrics(gw), "dead-dep").get("connect", 0) == failures(before, "dead-dep").get("connect", 0) + 1
    out = call(gw, "deadfb", stream)
    assert out.error is None and out.headers.get("x-tailgate-deployment") == "good-dep", out.error


# ---------------------------------------------------------------------------
# TLS

@pytest.fixture(scope="module")
def tls_mock(module_stack, tmp_path_factory):
    if not shutil.which("openssl"):
        pytest.skip("openssl command not installed")
    d = tmp_path_factory.mktemp("tls")
    # A CA and a server certificate for 127.0.0.1 signed by it.
    run = lambda *a: subprocess.run(a, check=True, capture_output=True, cwd=d)  # noqa: E731
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=tailgate test CA",
        "-keyout", "ca.key", "-out", "ca.pem")
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "server.key",
        "-out", "server.csr")
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    run("openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-days", "2", "-extfile", "ext.cnf", "-out", "server.pem")
    m = module_stack.mock("tls", *FAST, "--tls-cert", str(d / "server.pem"), "--tls-key", str(d / "server.key"))
    return m, d / "ca.pem"


def tls_config(m) -> dict:
    https = f"https://127.0.0.1:{m.port}/v1"
    return make_config([
        deployment("verify", api_base=https, model_info={"id": "tls-verify"}),
        deployment("noverify", api_base=https, ssl_verify=False, model_info={"id": "tls-noverify"}),
    ])


@pytest.mark.parametrize("stream", [False, True], ids=["nonstream", "stream"])
def test_tls_self_signed_refused_unless_trusted(module_stack, tls_mock, stream):
    m, ca = tls_mock
    def received() -> int:  # the control API is HTTPS too
        ctx = ssl.create_default_context(cafile=str(ca))
        return httpx.get(f"https://127.0.0.1:{m.port}/mock/stats", verify=ctx, timeout=10).json()["received"]

    gw = module_stack.gateway(tls_config(m), name=f"gw-tls-{stream}")
    try:
        before = received()
        out = call(gw, "verify", stream)
        err = assert_openai_error_shape(out.error.response, 502)
        assert "deployment 'tls-verify'" in err["message"], err
        assert "certificate verif" in err["message"], err
        assert received() == before, "the request must not reach an unverified upstream"
        # ssl_verify: false per deployment accepts it.
        out = call(gw, "noverify", stream)
        assert out.error is None and out.text == mock_words("tls", CHUNKS), out.error
    finally:
        gw.stop()
    # With the CA trusted (OpenSSL's SSL_CERT_FILE, as LiteLLM reads it) the verified deployment works.
    gw = module_stack.gateway(tls_config(m), env={"SSL_CERT_FILE": str(ca)}, name=f"gw-tls-ca-{stream}")
    try:
        out = call(gw, "verify", stream)
        assert out.error is None and out.text == mock_words("tls", CHUNKS), out.error
        assert out.headers.get("x-tailgate-deployment") == "tls-verify"
    finally:
        gw.stop()
