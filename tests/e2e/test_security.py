"""Security (issue 8): secrets stay secret, requests cannot steer traffic,
request fields cannot inject upstream headers, observability can be locked,
and a request's `strategies` can only pick among the plugins the config loaded.

One gateway per log format is configured with distinctive secrets (master key
from the environment, upstream keys as a literal and via os.environ/), driven
through successes and every kind of error (no key, wrong key, upstream 401, an
upstream that quotes the key it was sent back in its error and in a stream
error event, client-side credentials in the body, CR/LF in request fields), and
then every output is searched for the secrets: the gateway's stdout and log
file, /metrics, /stats/strategies, /ui, `--check`, and all response headers and
bodies. Only the upstreams may see their own key (checked, so the search is not
vacuous).
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import openai
import pytest

from conftest import (BUILD_DIR, PLUGIN_DIR, TAILGATE, USER_HI, assert_openai_error_shape, deployment,
                      make_config, needs_plugins)

MASTER = "sk-master-S3CRET-7f3a9c2e"
UPSTREAM_LITERAL = "sk-upstream-literal-S3CRET-51d2"
UPSTREAM_ENV = "sk-upstream-env-S3CRET-88e0"
ECHO_KEY = "sk-echoed-by-upstream-S3CRET-a61f"
WRONG_KEY = "sk-wrong-client-S3CRET-0c1d"
CLIENT_BODY_KEY = "sk-client-body-S3CRET-9e27"
SECRETS = [MASTER, UPSTREAM_LITERAL, UPSTREAM_ENV, ECHO_KEY, WRONG_KEY, CLIENT_BODY_KEY]
ENV = {"TG_SEC_MASTER": MASTER, "TG_SEC_UPSTREAM": UPSTREAM_ENV}
AUTH = {"Authorization": f"Bearer {MASTER}"}


class EchoUpstream(BaseHTTPRequestHandler):
    """An upstream that quotes the key it received: a 401 for plain requests, a
    stream that starts and then fails with an error event for streams."""

    protocol_version = "HTTP/1.1"

    def do_POST(self):  # noqa: N802 - http.server API
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        key = self.headers.get("Authorization", "").removeprefix("Bearer ")
        if body.get("stream"):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            chunk = {"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": "m",
                     "choices": [{"index": 0, "delta": {"content": "partial"}, "finish_reason": None}]}
            err = {"error": {"message": f"key {key} was revoked mid-stream", "type": "invalid_request_error"}}
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.flush()
            time.sleep(0.2)  # the content commits the stream before the error arrives
            self.wfile.write(f"data: {json.dumps(err)}\n\n".encode())
            self.close_connection = True
            return
        out = json.dumps({"error": {"message": f"Incorrect API key provided: {key}", "type": "invalid_request_error",
                                    "param": None, "code": "invalid_api_key"}}).encode()
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def echo_upstream():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), EchoUpstream)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/v1"
    srv.shutdown()
    srv.server_close()


def config(ok, unauth, echo_base: str, log_format: str) -> dict:
    return make_config(
        [deployment("good", ok, api_key=UPSTREAM_LITERAL),
         deployment("env", ok, api_key="os.environ/TG_SEC_UPSTREAM"),
         deployment("unauth", unauth, api_key="os.environ/TG_SEC_UPSTREAM"),
         deployment("echo", api_base=echo_base, api_key=ECHO_KEY)],
        router_settings={"num_retries": 0},
        general_settings={"master_key": "os.environ/TG_SEC_MASTER", "log_format": log_format,
                          "log_level": "debug", "metrics_auth": True})


class Seen:
    """Everything the outside world got from the gateway."""

    def __init__(self):
        self.parts: list[str] = []

    def add(self, r: httpx.Response) -> httpx.Response:
        self.parts.append(f"{r.status_code} {dict(r.headers)}\n{r.text}")
        return r

    def text(self) -> str:
        return "\n".join(self.parts)


def raw_exchange(port: int, head: bytes, body: bytes) -> bytes:
    """One HTTP/1.1 request written byte for byte (httpx refuses CR/LF in headers)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(head + b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    return out


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_secrets_never_leave_the_gateway(stack, echo_upstream, log_format):
    ok = stack.mock("ok", "--ttft", "1ms", "--chunks", "3", "--chunk-delay", "1ms")
    unauth = stack.mock("unauth", "--fail-rate", "1", "--fail-status", "401")
    cfg = config(ok, unauth, echo_upstream, log_format)
    gw = stack.gateway(cfg, env=ENV)
    seen = Seen()
    api = httpx.Client(base_url=gw.base_url, timeout=30)

    def chat(model, headers=AUTH, **extra):
        return seen.add(api.post("/chat/completions", headers=headers,
                                 json={"model": model, "messages": USER_HI, **extra}))

    # Client authentication: none, wrong (both header forms), right.
    assert_openai_error_shape(chat("good", headers={}), 401)
    assert_openai_error_shape(chat("good", headers={"Authorization": f"Bearer {WRONG_KEY}"}), 401)
    assert_openai_error_shape(chat("good", headers={"api-key": WRONG_KEY}), 401)
    assert chat("good").status_code == 200
    assert chat("env").status_code == 200
    assert "data: [DONE]" in chat("env", stream=True).text
    # The upstreams got their keys (the one place they may appear).
    seen_keys = {r["headers"].get("authorization") for r in ok.api_requests()}
    assert seen_keys == {f"Bearer {UPSTREAM_LITERAL}", f"Bearer {UPSTREAM_ENV}"}, seen_keys

    # Upstream errors: a plain 401, and one quoting our key (scrubbed to ***).
    assert_openai_error_shape(chat("unauth"), 401)
    err = assert_openai_error_shape(chat("echo"), 401)
    assert err["message"] == "Incorrect API key provided: ***", err
    streamed = chat("echo", stream=True)
    assert streamed.status_code == 200 and "partial" in streamed.text
    assert "key *** was revoked mid-stream" in streamed.text, streamed.text

    # Client-side credentials in the body are refused, naming the field, never echoing the value.
    for extra, param in [({"api_key": CLIENT_BODY_KEY}, "api_key"),
                         ({"api_base": "http://127.0.0.1:9/v1"}, "api_base"),
                         ({"extra_body": {"base_url": "http://127.0.0.1:9"}}, "extra_body.base_url")]:
        err = assert_openai_error_shape(chat("good", **extra), 400)
        assert err["param"] == param and err["code"] == "client_side_credentials_not_allowed", err
    # Other errors: unknown model, invalid JSON.
    assert_openai_error_shape(chat("nope"), 404)
    assert_openai_error_shape(seen.add(api.post("/chat/completions", headers=AUTH, content=b"{bad")), 400)

    # Observability is locked by metrics_auth (/stats/* by the master key itself), then read with the key.
    for path in ("/metrics", "/stats/strategies"):
        assert_openai_error_shape(seen.add(httpx.get(gw.url + path)), 401)
        assert_openai_error_shape(seen.add(httpx.get(gw.url + path, headers={"Authorization": f"Bearer {WRONG_KEY}"})), 401)
        assert seen.add(httpx.get(gw.url + path, headers=AUTH)).status_code == 200
    # The dashboard page is a login form without data; what it fetches needs the key.
    assert seen.add(httpx.get(gw.url + "/ui")).status_code == 200

    check = subprocess.run([TAILGATE, "--config", gw.config_path, "--check"], capture_output=True, text=True,
                           timeout=30, env={**os.environ, **ENV})
    assert check.returncode == 0, check.stderr
    assert "master_key: ***" in check.stdout and "api_key=***" in check.stdout, check.stdout

    api.close()
    assert gw.stop() == 0
    outputs = {"gateway log (stderr)": gw.log_text(), "gateway stdout": "\n".join(gw.proc.stdout_lines),
               "responses": seen.text(), "--check": check.stdout + check.stderr}
    assert outputs["gateway log (stderr)"].count("\n") >= 10  # it did log the traffic (debug level)
    for where, text in outputs.items():
        for secret in SECRETS:
            assert secret not in text, f"{secret} found in {where}"
        assert "S3CRET" not in text, f"a secret fragment found in {where}"


def test_request_fields_cannot_inject_upstream_headers(stack):
    ok = stack.mock("ok", "--ttft", "1ms", "--chunks", "2", "--chunk-delay", "1ms")
    gw = stack.gateway(make_config([deployment("good", ok)]))
    # CR/LF inside JSON strings (user, metadata, a message) stay inside the JSON body.
    injected = "x\r\nX-Injected: body\r\n\r\n"
    r = httpx.post(gw.base_url + "/chat/completions", timeout=30,
                   json={"model": "good", "messages": [{"role": "user", "content": injected}],
                         "user": injected, "metadata": {"note": injected}})
    assert r.status_code == 200, r.text
    assert "x-injected" not in r.headers
    # A bare CR in a header value, and a folded header line: neither becomes a header
    # of the response or of the upstream request, and the request id is not echoed.
    for head in (b"X-Request-Id: abc\rX-Injected: cr\r\n", b"X-Request-Id: abc\r\n X-Injected: fold\r\n"):
        body = json.dumps({"model": "good", "messages": USER_HI}).encode()
        out = raw_exchange(gw.port, b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                                    b"Content-Type: application/json\r\n" + head, body)
        status_line, _, rest = out.partition(b"\r\n")
        headers = rest.split(b"\r\n\r\n", 1)[0].lower()
        assert status_line.split()[1] in (b"200", b"400", b"431"), out[:300]  # refused or harmless
        assert b"x-injected" not in headers, out[:600]
        assert b"x-request-id: abc" not in headers, out[:600]
    for rec in ok.api_requests():
        assert not any("injected" in k.lower() or "injected" in str(v).lower() for k, v in rec["headers"].items()), rec
        assert "x-request-id" not in rec["headers"], rec  # nothing of the client's headers is forwarded
    assert gw.alive()


def test_client_side_credentials_opt_in(stack):
    """With allow_client_side_credentials the fields pass through in the body; the
    destination is still the configured deployment."""
    ok = stack.mock("ok", "--ttft", "1ms", "--chunks", "2", "--chunk-delay", "1ms")
    gw = stack.gateway(make_config([deployment("good", ok)],
                                   general_settings={"allow_client_side_credentials": True}))
    r = httpx.post(gw.base_url + "/chat/completions", timeout=30,
                   json={"model": "good", "messages": USER_HI, "api_base": "http://127.0.0.1:9/v1"})
    assert r.status_code == 200, r.text
    assert ok.last_body()["api_base"] == "http://127.0.0.1:9/v1"


# --------------------------------------------------------------------------
# Strict request framing: what Poco 1.11 would read leniently is refused
# before it is parsed (host/server/frontend/http_head_validator.hpp), so a front proxy
# and the gateway cannot disagree on where a request ends.
# --------------------------------------------------------------------------

# Pipelined after each request below: answered only when the gateway read the
# framing the lenient way and went on to a "next" request (a smuggled one).
SMUGGLED = b"GET /health/liveliness HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
CHAT = json.dumps({"model": "good", "messages": USER_HI}).encode()


def chunked(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n0\r\n\r\n" % (len(data), data)


def post_head(*fields: bytes, eol: bytes = b"\r\n") -> bytes:
    lines = [b"POST /v1/chat/completions HTTP/1.1", b"Host: x", b"Content-Type: application/json", *fields]
    return eol.join(lines) + eol + eol


# A 9-hex-digit chunk size: Poco reads 8 digits, ends the body there and takes
# the chunk's data for the next request.
NINE_HEX = b"%09x\r\n%s\r\n0\r\n\r\n" % (len(SMUGGLED), SMUGGLED)

LENIENT = {
    "space_before_colon": post_head(b"Content-Length: %d" % len(CHAT), b"Transfer-Encoding : chunked") + CHAT,
    "no_colon_line": post_head(b"X-No-Colon-Here", b"Content-Length: %d" % len(CHAT)) + CHAT,
    "bare_lf": post_head(b"Content-Length: %d" % len(CHAT), eol=b"\n") + CHAT,
    "obs_fold": post_head(b"X-Folded: a", b" b", b"Content-Length: %d" % len(CHAT)) + CHAT,
    "content_length_1_0": post_head(b"Content-Length: 1,0") + b"0123456789",
    "two_transfer_encodings": post_head(b"Transfer-Encoding: chunked", b"Transfer-Encoding: gzip") + chunked(CHAT),
    "chunk_size_9_hex_digits": post_head(b"Transfer-Encoding: chunked") + NINE_HEX,
    # Not lenient but a Poco 1.11 quirk: a field line of exactly 4092 bytes ends
    # one of its reads just before the CRLF, which it then takes for the end of
    # the head; what follows (here Content-Length) is lost.
    "head_ended_early_by_poco": b"GET /health/liveliness HTTP/1.1\r\nX-Pad: " + b"a" * 4085 +
                                b"\r\nContent-Length: %d\r\n\r\n" % len(SMUGGLED) + SMUGGLED,
}


@pytest.fixture(scope="module")
def strict(module_stack):
    ok = module_stack.mock("strict-ok", "--ttft", "1ms", "--chunks", "2", "--chunk-delay", "1ms")
    gw = module_stack.gateway(make_config([deployment("good", ok)]), name="strict")
    return gw, ok


def read_to_close(s: socket.socket) -> tuple[bytes, bool]:
    """Everything the gateway sends until it closes; (bytes, closed) - closed is
    False when it kept the connection open for 10 s."""
    out = b""
    s.settimeout(10)
    try:
        while chunk := s.recv(65536):
            out += chunk
    except ConnectionResetError:
        pass
    except socket.timeout:
        return out, False
    return out, True


def responses(raw: bytes) -> list[tuple[int, dict, bytes]]:
    """Splits the bytes into HTTP/1.1 responses (Content-Length or chunked bodies)."""
    out = []
    while raw:
        head, sep, raw = raw.partition(b"\r\n\r\n")
        assert sep, f"truncated response head: {head[:200]!r}"
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines)}
        status = int(status_line.split()[1])
        if "content-length" in headers:
            n = int(headers["content-length"])
            body, raw = raw[:n], raw[n:]
        elif headers.get("transfer-encoding") == "chunked":
            body = b""
            while True:
                size_line, _, raw = raw.partition(b"\r\n")
                size = int(size_line.split(b";")[0], 16)
                body, raw = body + raw[:size], raw[size + 2:]
                if size == 0:
                    break
        else:
            body, raw = raw, b""
        out.append((status, headers, body))
    return out


def assert_refused_alone(out: bytes, closed: bool) -> dict:
    got = responses(out)
    assert [st for st, _, _ in got] == [400], [(st, b[:200]) for st, _, b in got]
    status, headers, body = got[0]
    err = assert_openai_error_shape(httpx.Response(status, headers=headers, content=body), 400)
    assert err["code"] == "invalid_http_request", err
    assert err["message"].startswith("Malformed HTTP request: "), err
    assert closed, "the connection stayed open after the 400"
    return err


@pytest.mark.parametrize("case", list(LENIENT))
def test_lenient_framing_is_refused_and_nothing_is_smuggled(strict, case):
    gw, ok = strict
    ok.reset()
    with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as s:
        s.sendall(LENIENT[case] + SMUGGLED)  # one write: the smuggled request is read along
        out, closed = read_to_close(s)
    assert_refused_alone(out, closed)
    assert ok.received() == 0  # nothing went upstream
    gw.assert_healthy()


def test_broken_chunk_size_read_by_the_handler_is_refused(strict):
    """The same 9-digit chunk size, sent only after the head was parsed and
    answered with 100 Continue: the handler's body read stops there."""
    gw, ok = strict
    ok.reset()
    with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as s:
        s.sendall(post_head(b"Transfer-Encoding: chunked", b"Expect: 100-continue"))
        interim = b""
        while b"\r\n\r\n" not in interim:
            chunk = s.recv(4096)
            assert chunk, interim
            interim += chunk
        assert interim.startswith(b"HTTP/1.1 100"), interim
        rest = interim.partition(b"\r\n\r\n")[2]
        s.sendall(b"5\r\nhello\r\n" + NINE_HEX + SMUGGLED)
        out, closed = read_to_close(s)
    err = assert_refused_alone(rest + out, closed)
    assert "8 hex digits" in err["message"], err
    assert ok.received() == 0
    gw.assert_healthy()


def test_strict_framing_control_pipelined_requests_are_all_answered(strict):
    """The harness sees a second response when there is one: the same shapes,
    well framed, are forwarded and the pipelined request is answered."""
    gw, ok = strict
    ok.reset()
    valid = [post_head(b"Content-Length: %d" % len(CHAT)) + CHAT,
             post_head(b"Transfer-Encoding: chunked", b"X-Trailer-Follows: yes") +
             b"%x\r\n%s\r\n0\r\nX-Checksum: 1\r\n\r\n" % (len(CHAT), CHAT)]
    with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as s:
        s.sendall(b"".join(valid) + SMUGGLED)
        out, closed = read_to_close(s)
    assert closed
    assert [st for st, _, _ in responses(out)] == [200, 200, 200], out[:600]
    assert ok.received() == 2


@needs_plugins("health", "simple-shuffle", "latency", "race")
def test_request_strategies_name_only_configured_plugins(stack, tmp_path):
    """A request's `strategies` (extra_body) is matched against the names of the chain
    and of request_strategies; nothing else is ever loaded. ctor-marker.so creates
    the file named by TAILGATE_TEST_CTOR_MARKER_FILE as soon as it is dlopen'ed."""
    marker_so = BUILD_DIR / "lib" / "tailgate" / "test-plugins" / "ctor-marker.so"
    assert marker_so.exists(), "build the test plugins (tests/plugins/ctor-marker)"
    plugins = tmp_path / "plugins"
    plugins.mkdir(mode=0o755)
    shutil.copy2(marker_so, plugins / "ctor-marker.so")
    marker = tmp_path / "ctor-marker-ran"

    ok = stack.mock("ok", "--ttft", "1ms", "--chunks", "2", "--chunk-delay", "1ms")
    gw = stack.gateway(make_config([deployment("good", ok)], router_settings={
        "plugin_paths": [str(plugins)],
        "allow_request_strategy_override": True,
        "strategies": ["health", "simple-shuffle"],
        "request_strategies": ["latency", {"name": "simple-shuffle", "args": {"seed": 7}}],
    }), env={"TAILGATE_TEST_CTOR_MARKER_FILE": str(marker)})
    client = gw.client()

    def refused(strategies) -> dict:
        with pytest.raises(openai.BadRequestError) as info:
            client.chat.completions.create(model="good", messages=USER_HI, extra_body={"strategies": strategies})
        err = assert_openai_error_shape(info.value.response, 400)
        assert err["param"] == "strategies", err
        return err

    allowed = "allowed: health, simple-shuffle, latency"
    for name in ["/tmp/evil", str(plugins / "ctor-marker.so"), str(PLUGIN_DIR / "race.so"),
                 "../lib/tailgate/plugins/race", "ctor-marker",  # in plugin_paths, not configured
                 "race", "cost"]:                                # built in, not configured
        err = refused(["health", name])
        assert err["code"] == "unknown_strategy", (name, err)
        assert err["message"].startswith(f"strategies[1] is not an allowed strategy; {allowed} "), (name, err)
        assert "/" not in err["message"], f"a path in the error: {err}"
        assert str(tmp_path.name) not in err["message"] and "plugins" not in err["message"], err
    assert not marker.exists(), "a request made the gateway load a library"
    maps = (open(f"/proc/{gw.proc.p.pid}/maps").read())
    assert "ctor-marker" not in maps and "race.so" not in maps and "cost.so" not in maps

    assert refused(["health"] * 9)["code"] == "too_many_strategies"
    assert refused(["health", "latency", "health"])["code"] == "duplicate_strategy"
    assert refused(["x" * 129])["code"] == "invalid_value"

    # The configured names work, in any order, and route to the deployment.
    for chain in (["latency"], ["health", "latency"], ["simple-shuffle", "health"], ["health", "simple-shuffle"]):
        r = client.chat.completions.create(model="good", messages=USER_HI, extra_body={"strategies": chain})
        assert r.choices[0].message.content, chain
    assert not marker.exists()
    gw.assert_healthy()

    # Each plugin's file is logged at start, symlinks resolved.
    log = gw.log_text()
    for name in ("health", "simple-shuffle", "latency"):
        assert f"strategy '{name}' loaded from {(PLUGIN_DIR / (name + '.so')).resolve()}" in log, log[-3000:]


def test_request_strategies_need_the_override(stack):
    ok = stack.mock("ok", "--ttft", "1ms", "--chunks", "2", "--chunk-delay", "1ms")
    gw = stack.gateway(make_config([deployment("good", ok)], router_settings={"request_strategies": ["latency"]}))
    with pytest.raises(openai.BadRequestError) as info:
        gw.client().chat.completions.create(model="good", messages=USER_HI, extra_body={"strategies": ["latency"]})
    err = assert_openai_error_shape(info.value.response, 400)
    assert err["code"] == "strategy_override_disabled" and err["param"] == "strategies", err
