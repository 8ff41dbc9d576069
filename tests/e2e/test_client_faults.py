"""Client faults (issue 8): disconnects cancel every upstream attempt at once;
slow, oversized, malformed and old-fashioned clients get a clear answer and
hold no thread or socket past the configured limits.

The requests here are raw bytes on raw sockets: the SDK cannot dribble headers,
pipeline or speak HTTP/1.0. "Holds nothing" is checked on the gateway process:
its open descriptors (/proc/PID/fd) return to the idle count, and its threads
blocked in a socket wait (/proc/PID/task/*/syscall) return to the idle number.

Disconnect-to-cancel is measured at the mocks: each mock's cancel_ms is mapped
onto this process's clock (MockClock, ~1 ms on loopback) and compared with the
instant just before the client's close().
"""
from __future__ import annotations

import json
import os
import socket
import statistics
import time
from pathlib import Path

import httpx
import pytest

from conftest import (USER_HI, MockClock, open_fds, assert_openai_error_shape, deployment, make_config, needs_plugins,
                      wait_for)

HEADER_TIMEOUT = 1.0  # s, general_settings.client_header_timeout here
BODY_TIMEOUT = 1.0
MAX_HEADER_BYTES = 16 * 1024
MAX_BODY_BYTES = 256 * 1024  # room for 100k nested brackets
DISCONNECTS = 20

pytestmark = needs_plugins("race", "staggered-hedge", "health")


@pytest.fixture(scope="module")
def env(module_stack):
    s = module_stack
    fast = s.mock("fast", "--ttft", "1ms", "--chunk-delay", "1ms", "--chunks", "4")
    # Streams for ~10 s, so a disconnect always lands mid-stream.
    streamer = s.mock("streamer", "--ttft", "1ms", "--chunk-delay", "20ms", "--chunks", "500")
    # Never answer in time: every attempt is still in flight when the client leaves.
    waiters = [s.mock(f"wait{i}", "--ttft", "30s", "--chunks", "2") for i in range(3)]
    race = {"name": "race", "args": {"max_parallel": 3}}
    hedge = {"name": "staggered-hedge", "args": {"delay": "20ms", "max_attempts": 2, "max_extra_load": 16}}
    gw = s.gateway(make_config(
        [deployment("fast", fast), deployment("stream", streamer)],
        general_settings={"client_header_timeout": HEADER_TIMEOUT, "client_body_timeout": BODY_TIMEOUT,
                          "max_header_bytes": MAX_HEADER_BYTES, "max_request_body_bytes": MAX_BODY_BYTES}),
        name="faults")
    # The chain is global, so the race and the hedge each get a gateway (same mocks).
    gw_race = s.gateway(make_config([deployment("race3", m) for m in waiters],
                                    router_settings={"strategies": ["health", race]}), name="race")
    gw_hedge = s.gateway(make_config([deployment("hedge2", m) for m in waiters[:2]],
                                     router_settings={"strategies": ["health", hedge]}), name="hedge")
    return {"gw": gw, "gw_race": gw_race, "gw_hedge": gw_hedge, "fast": fast, "streamer": streamer,
            "waiters": waiters}


@pytest.fixture(autouse=True)
def _check(env):
    for m in [env["fast"], env["streamer"], *env["waiters"]]:
        m.reset()
    yield
    for g in ("gw", "gw_race", "gw_hedge"):
        env[g].assert_healthy()


# --------------------------------------------------------------------------
# raw HTTP helpers
# --------------------------------------------------------------------------

def chat_body(model: str = "fast", stream: bool = False, **extra) -> bytes:
    return json.dumps({"model": model, "messages": USER_HI, "stream": stream, **extra}).encode()


def post(body: bytes, path: str = "/v1/chat/completions", version: str = "HTTP/1.1", headers: str = "") -> bytes:
    return (f"POST {path} {version}\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n{headers}\r\n").encode() + body


def connect(gw, timeout: float = 10.0) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", gw.port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


class Reader:
    """Reads HTTP/1.x responses off one socket, in order."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buf = b""

    def _fill(self) -> bool:
        chunk = self.sock.recv(65536)
        self.buf += chunk
        return bool(chunk)

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            if not self._fill():
                raise EOFError(f"connection closed mid-line: {self.buf[:200]!r}")
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self._fill():
                raise EOFError("connection closed mid-body")
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def response(self) -> tuple[str, int, dict, bytes]:
        """(version, status, headers lower-cased, body); a body without length runs to EOF."""
        version, status, _ = self._line().decode().split(" ", 2)
        headers = {}
        while (line := self._line()):
            k, v = line.decode().split(":", 1)
            headers[k.strip().lower()] = v.strip()
        if status.startswith("1"):  # interim (100 Continue): no body
            body = b""
        elif "content-length" in headers:
            body = self._exact(int(headers["content-length"]))
        elif headers.get("transfer-encoding") == "chunked":
            body = b""
            while (size := int(self._line().split(b";")[0], 16)):
                body += self._exact(size)
                self._line()
            self._line()
        else:
            while self._fill():
                pass
            body, self.buf = self.buf, b""
        return version, int(status), headers, body

    def closed(self, timeout: float) -> bool:
        """True when the peer closes (EOF or reset) within `timeout` with nothing more sent."""
        self.sock.settimeout(timeout)
        try:
            return not self._fill()
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False


def error_of(status: int, headers: dict, body: bytes, expected: int) -> dict:
    assert status == expected, (status, body)
    assert headers.get("content-type", "").startswith("application/json"), headers
    return assert_openai_error_shape(httpx.Response(status, headers=headers, content=body), expected)


# --------------------------------------------------------------------------
# the gateway process: descriptors and threads waiting on a socket
# --------------------------------------------------------------------------

SOCKET_WAITS = {"7", "45", "271"}  # poll, recvfrom, ppoll (x86_64)


def proc_counts(gw) -> tuple[int, int]:
    """(open fds other than eventfds, threads blocked in poll/recv) of the gateway."""
    pid = gw.proc.p.pid
    fds = open_fds(pid)
    waiting = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            nr = Path(f"/proc/{pid}/task/{tid}/syscall").read_text().split()[0]
        except (OSError, IndexError):
            continue
        waiting += nr in SOCKET_WAITS
    return fds, waiting


def settle(gw) -> tuple[int, int]:
    """The idle counts: stable over a few reads (keep-alive clients of the fixtures closed)."""
    gw.http.close()
    gw.http = httpx.Client(base_url=gw.url, timeout=30)
    last = None
    for _ in range(50):
        now = proc_counts(gw)
        if now == last:
            return now
        last = now
        time.sleep(0.05)
    return last


def assert_released(gw, baseline: tuple[int, int], timeout: float):
    # Fewer waiting threads than at the baseline is fine: an idle keep-alive
    # connection stops holding its thread once parked on the Asio side.
    def back():
        fds, waiting = proc_counts(gw)
        return fds == baseline[0] and waiting <= baseline[1]
    wait_for(back, timeout=timeout,
             what=f"gateway fds/socket-waiting threads back to {baseline} (now {proc_counts(gw)})")


# --------------------------------------------------------------------------
# disconnects: every upstream attempt closed at once
# --------------------------------------------------------------------------

def _disconnect_latencies(gw, mocks, body: bytes, ready) -> list[float]:
    """Closes the client DISCONNECTS times once `ready(sock, reader)` holds; per
    close, ms from close() to the last of the mocks' cancels."""
    clocks = {m.name: MockClock(m) for m in mocks}
    out = []
    for _ in range(DISCONNECTS):
        before = {m.name: m.stats()["cancelled_by_client"] for m in mocks}
        s = connect(gw)
        s.sendall(post(body))
        ready(s, Reader(s))
        t_close = time.monotonic()
        s.close()
        cancels = []
        for m in mocks:
            st = wait_for(lambda: (x := m.stats())["cancelled_by_client"] > before[m.name] and x,
                          timeout=2.0, what=f"{m.name} to see its attempt cancelled")
            assert st["cancelled_by_client"] == before[m.name] + 1, st
            cancels.append(clocks[m.name](st["last_cancel_ms"]))
        out.append((max(cancels) - t_close) * 1000)
        wait_for(lambda: all(m.stats()["in_flight"] == 0 for m in mocks), timeout=2.0)
    return out


def _report(name: str, ms: list[float]):
    line = (f"{name}: disconnect->last upstream cancel over {len(ms)} closes: "
            f"median {statistics.median(ms):.2f} ms, max {max(ms):.2f} ms")
    print(line)
    # Generous for a loaded 2-core CI box; the design target is 10 ms (RELIABILITY.md).
    assert statistics.median(ms) < 25, line
    assert max(ms) < 150, line


def test_disconnect_mid_stream_cancels_at_once(env):
    gw, streamer = env["gw"], env["streamer"]

    def first_content(s, r):
        while b'"content":"streamer' not in r.buf:
            assert r._fill(), r.buf

    _report("mid-stream", _disconnect_latencies(gw, [streamer], chat_body("stream", stream=True), first_content))


@pytest.mark.parametrize("stream", [True, False])
def test_disconnect_during_race_cancels_all_three(env, stream):
    waiters = env["waiters"]

    def all_in_flight(s, r):
        wait_for(lambda: all(m.stats()["in_flight"] == 1 for m in waiters), timeout=2.0,
                 what="three raced attempts in flight")

    _report(f"race of 3 (stream={stream})",
            _disconnect_latencies(env["gw_race"], waiters, chat_body("race3", stream=stream), all_in_flight))


def test_disconnect_with_hedge_in_flight_cancels_both(env):
    pair = env["waiters"][:2]

    def both_in_flight(s, r):
        wait_for(lambda: all(m.stats()["in_flight"] == 1 for m in pair), timeout=2.0,
                 what="the primary and its hedge in flight")

    _report("primary + hedge", _disconnect_latencies(env["gw_hedge"], pair, chat_body("hedge2", stream=True),
                                                     both_in_flight))


# --------------------------------------------------------------------------
# slow clients
# --------------------------------------------------------------------------

def test_slowloris_headers_get_408_and_release_everything(env):
    gw = env["gw"]
    baseline = settle(gw)
    socks = []
    t0 = time.monotonic()
    for _ in range(3):
        s = connect(gw)
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        socks.append(s)
    # Keep dribbling a header byte every 100 ms: each recv is quick, only the
    # whole-head deadline can stop this client.
    answered = {}
    while len(answered) < len(socks) and time.monotonic() - t0 < HEADER_TIMEOUT + 4:
        for i, s in enumerate(socks):
            if i in answered:
                continue
            try:
                s.sendall(b"x")
            except OSError:
                pass
            s.settimeout(0.1)
            try:
                data = s.recv(65536)
            except socket.timeout:
                continue
            except ConnectionResetError:
                data = b""
            answered[i] = (time.monotonic() - t0, data)
    assert len(answered) == len(socks), answered
    for elapsed, data in answered.values():
        assert HEADER_TIMEOUT * 0.9 <= elapsed < HEADER_TIMEOUT + 2, elapsed
        head, _, body = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 408"), data
        err = json.loads(body)["error"]
        assert err["code"] == "request_timeout" and "client_header_timeout" in err["message"], err
    for s in socks:
        assert Reader(s).closed(2.0)
        s.close()
    assert_released(gw, baseline, timeout=2.0)


def test_silent_connection_is_closed_after_header_timeout(env):
    gw = env["gw"]
    baseline = settle(gw)
    s = connect(gw)
    t0 = time.monotonic()
    assert Reader(s).closed(HEADER_TIMEOUT + 3)
    assert HEADER_TIMEOUT * 0.9 <= time.monotonic() - t0 < HEADER_TIMEOUT + 2
    s.close()
    assert_released(gw, baseline, timeout=2.0)


def test_slow_body_gets_408(env):
    gw = env["gw"]
    baseline = settle(gw)
    body = chat_body()
    s = connect(gw)
    s.sendall(post(body)[:-10])  # all but the last 10 body bytes, then nothing
    t0 = time.monotonic()
    r = Reader(s)
    _, status, headers, payload = r.response()
    assert BODY_TIMEOUT * 0.9 <= time.monotonic() - t0 < BODY_TIMEOUT + 2
    err = error_of(status, headers, payload, 408)
    assert err["code"] == "request_timeout", err
    assert headers.get("connection", "").lower() == "close", headers
    assert r.closed(2.0)
    s.close()
    assert_released(gw, baseline, timeout=2.0)


def test_many_slowloris_clients_delay_others_by_at_most_the_header_timeout(stack):
    # 4 worker threads, 8 slowloris connections: the first 4 take every thread,
    # the next 4 queue behind them. A normal client queued after all 8 is served
    # once two rounds of header timeouts have freed the threads — bounded, not never.
    mock = stack.mock("m", "--ttft", "1ms", "--chunk-delay", "1ms", "--chunks", "2")
    gw = stack.gateway(make_config([deployment("fast", mock)],
                                   general_settings={"max_threads": 4, "client_header_timeout": HEADER_TIMEOUT}))
    gw.client().chat.completions.create(model="fast", messages=USER_HI)
    baseline = settle(gw)
    slow = []
    for _ in range(8):
        s = connect(gw)
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n")
        slow.append(s)
    # All 8 accepted (queued or served) before the normal client connects.
    wait_for(lambda: proc_counts(gw)[0] >= baseline[0] + 8, timeout=2.0, what="8 slow connections accepted")
    t0 = time.monotonic()
    resp = httpx.post(gw.base_url + "/chat/completions", json={"model": "fast", "messages": USER_HI}, timeout=15)
    elapsed = time.monotonic() - t0
    print(f"normal client behind 8 slowloris / 4 threads: {elapsed:.2f} s")
    assert resp.status_code == 200, resp.text
    assert 2 * HEADER_TIMEOUT * 0.9 <= elapsed < 2 * HEADER_TIMEOUT + 3, elapsed
    for s in slow:
        r = Reader(s)
        _, status, headers, body = r.response()
        error_of(status, headers, body, 408)
        s.close()
    assert_released(gw, baseline, timeout=2.0)


# --------------------------------------------------------------------------
# oversized and malformed requests
# --------------------------------------------------------------------------

@pytest.mark.parametrize("shape", ["many_fields", "one_huge_field", "over_100_fields", "huge_uri"])
def test_oversized_headers_get_431(env, shape):
    gw = env["gw"]
    body = chat_body()
    if shape == "many_fields":  # 20 x 1 KiB: each field fine, the head over max_header_bytes
        req = post(body, headers="".join(f"x-pad-{i}: {'a' * 1024}\r\n" for i in range(20)))
    elif shape == "one_huge_field":  # over Poco's 8 KiB per field, under max_header_bytes
        req = post(body, headers=f"x-pad: {'a' * 10000}\r\n")
    elif shape == "over_100_fields":  # Poco's field count limit, well under max_header_bytes
        req = post(body, headers="".join(f"x-{i}: 1\r\n" for i in range(150)))
    else:
        req = post(body, path="/v1/chat/completions?" + "a" * 20000)
    s = connect(gw)
    s.sendall(req)
    r = Reader(s)
    _, status, headers, payload = r.response()
    err = error_of(status, headers, payload, 431)
    assert err["code"] == "request_header_fields_too_large", err
    assert r.closed(2.0)
    s.close()


def test_oversized_body_gets_413(env):
    gw = env["gw"]
    big = json.dumps({"model": "fast", "messages": [{"role": "user", "content": "x" * MAX_BODY_BYTES}]}).encode()
    # Declared length over the limit: refused from the headers.
    resp = httpx.post(gw.base_url + "/chat/completions", content=big, headers={"content-type": "application/json"})
    assert_openai_error_shape(resp, 413)
    # Chunked (no length): refused once the limit is crossed.
    resp = httpx.post(gw.base_url + "/chat/completions", content=iter([big[:40000], big[40000:]]),
                      headers={"content-type": "application/json"})
    assert_openai_error_shape(resp, 413)


@pytest.mark.parametrize("size", [MAX_BODY_BYTES + 1, 100])
def test_expect_100_continue(env, size):
    gw = env["gw"]
    s = connect(gw)
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % size)
    r = Reader(s)
    version, status, headers, body = r.response()
    if size > MAX_BODY_BYTES:  # refused from the headers: no 100, no body sent
        err = error_of(status, headers, body, 413)
        assert err["code"] == "request_too_large", err
        assert r.closed(2.0)
    else:
        assert status == 100, (status, body)
        payload = chat_body()[:-1] + b" " * (size - len(chat_body())) + b"}"
        s.sendall(payload)
        assert r.response()[1] == 200
    s.close()


@pytest.mark.parametrize("bad", [b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe2\x82", b"\xf8\x88\x80\x80\x80"],
                         ids=["ff", "overlong", "surrogate", "truncated", "5-byte"])
def test_invalid_utf8_in_json_string_is_400(env, bad):
    gw = env["gw"]
    body = b'{"model":"fast","messages":[{"role":"user","content":"a' + bad + b'b"}]}'
    resp = httpx.post(gw.base_url + "/chat/completions", content=body, headers={"content-type": "application/json"})
    err = assert_openai_error_shape(resp, 400)
    assert err["type"] == "invalid_request_error" and err["code"] == "invalid_utf8", err
    assert env["fast"].stats()["received"] == 0  # never forwarded


HEAD = '{"model":"fast","messages":[{"role":"user","content":"hi"}],'


@pytest.mark.parametrize("shape", ["arrays_closed", "arrays_open", "objects_in_metadata", "fallbacks", "at_limit"])
def test_deeply_nested_json_is_400_not_a_crash(env, shape):
    gw = env["gw"]
    n = 100_000
    body = {"arrays_closed": HEAD + '"x":' + "[" * n + "]" * n + "}",
            "arrays_open": HEAD + '"x":' + "[" * n,
            "objects_in_metadata": HEAD + '"metadata":' + '{"a":' * 20_000 + "1" + "}" * 20_000 + "}",
            "fallbacks": HEAD + '"fallbacks":' + "[" * 2000 + "]" * 2000 + "}",
            "at_limit": HEAD + '"x":' + "[" * 128 + "]" * 128 + "}"}[shape].encode()
    assert len(body) <= MAX_BODY_BYTES
    resp = httpx.post(gw.base_url + "/chat/completions", content=body, headers={"content-type": "application/json"})
    err = assert_openai_error_shape(resp, 400)
    assert err["type"] == "invalid_request_error" and err["code"] == "json_too_deep", err
    assert "128 levels" in err["message"], err
    assert env["fast"].stats()["received"] == 0


def test_nesting_within_the_limit_is_forwarded(env):
    gw = env["gw"]
    body = HEAD + '"x":' + "[" * 127 + "]" * 127 + "}"  # 128 levels with the body itself
    resp = httpx.post(gw.base_url + "/chat/completions", content=body.encode(),
                      headers={"content-type": "application/json"})
    assert resp.status_code == 200, resp.text
    assert env["fast"].last_body()["x"] is not None


@pytest.mark.parametrize("raw,status", [(b"BLAH\r\n\r\n", 400), (b"GET\r\n\r\n", 400),
                                        (b"GET /health HTTP/9.9\r\n\r\n", 505)])
def test_malformed_request_line_is_a_json_error(env, raw, status):
    gw = env["gw"]
    s = connect(gw)
    s.sendall(raw)
    r = Reader(s)
    version, got, headers, body = r.response()
    assert version == "HTTP/1.1"
    error_of(got, headers, body, status)
    assert r.closed(2.0)
    s.close()


@pytest.mark.parametrize("framing,status", [
    ("Content-Length: -1\r\n", 400),
    ("Content-Length: abc\r\n", 400),
    ("Content-Length: 99999999999999999999\r\n", 400),
    ("Content-Length: 5\r\nContent-Length: 7\r\n", 400),
    ("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", 400),
    ("Transfer-Encoding: gzip\r\n", 501),
    ("", 411),  # a POST with no length at all
], ids=["negative", "not_a_number", "huge", "conflicting", "te_and_cl", "gzip", "no_length"])
def test_ambiguous_body_framing_is_refused_at_once(env, framing, status):
    gw = env["gw"]
    s = connect(gw)
    t0 = time.monotonic()
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n" + framing.encode() + b"\r\n" + chat_body())
    r = Reader(s)
    _, got, headers, body = r.response()
    assert time.monotonic() - t0 < 0.5 * BODY_TIMEOUT  # not after a body read timed out
    error_of(got, headers, body, status)
    assert r.closed(2.0)
    s.close()
    assert env["fast"].stats()["received"] == 0


# --------------------------------------------------------------------------
# pipelining and HTTP/1.0
# --------------------------------------------------------------------------

def test_pipelined_requests_answered_in_order(env):
    gw = env["gw"]
    s = connect(gw)
    reqs = [post(chat_body(), headers="x-request-id: first\r\n"),
            post(chat_body(stream=True), headers="x-request-id: second\r\n"),
            b"GET /v1/models HTTP/1.1\r\nHost: x\r\nx-request-id: third\r\n\r\n"]
    s.sendall(b"".join(reqs))  # one write
    r = Reader(s)
    got = [r.response() for _ in reqs]
    assert [h["x-request-id"] for _, _, h, _ in got] == ["first", "second", "third"]
    assert all(v == "HTTP/1.1" and st == 200 for v, st, _, _ in got), got
    assert json.loads(got[0][3])["choices"][0]["message"]["content"].startswith("fast-0")
    assert got[1][2]["transfer-encoding"] == "chunked" and got[1][3].rstrip().endswith(b"data: [DONE]")
    assert json.loads(got[2][3])["object"] == "list"
    # Still usable afterwards.
    s.sendall(post(chat_body()))
    assert r.response()[1] == 200
    s.close()


@pytest.mark.parametrize("stream", [False, True])
def test_http10_client_gets_a_close_delimited_answer(env, stream):
    gw = env["gw"]
    s = connect(gw)
    s.sendall(post(chat_body(stream=stream), version="HTTP/1.0"))
    r = Reader(s)
    version, status, headers, body = r.response()  # without a length, reads to EOF
    assert (version, status) == ("HTTP/1.0", 200), (version, status, body)
    assert "chunked" not in headers.get("transfer-encoding", ""), headers
    if stream:
        assert "content-length" not in headers
        events = [ln for ln in body.decode().split("\n") if ln.startswith("data: ")]
        assert events[-1] == "data: [DONE]" and len(events) >= 4, body
    else:
        assert json.loads(body)["choices"][0]["message"]["content"].startswith("fast-0")
        assert r.closed(2.0)  # no keep-alive asked: closed after the answer
    s.close()


def test_http10_keep_alive_is_honoured(env):
    gw = env["gw"]
    s = connect(gw)
    r = Reader(s)
    for _ in range(2):
        s.sendall(post(chat_body(), version="HTTP/1.0", headers="Connection: keep-alive\r\n"))
        version, status, headers, _ = r.response()
        assert (version, status) == ("HTTP/1.0", 200)
        assert headers.get("connection", "").lower() == "keep-alive", headers
    s.close()
