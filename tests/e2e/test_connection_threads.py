"""Server threads are for reading requests, not for waiting (issue 6).

A pool thread reads and routes a request; the response is then written from
the Asio side (ClientRelay) and an idle keep-alive connection is watched there
too, so neither an open stream nor an idle connection holds one of the
`max_threads` threads. With `max_threads: 2`, these tests hold more streams
and more idle connections than there are threads; each would time out if a
stream or an idle connection kept its thread (the old thread-per-connection
design). Timing checks compare with the mock's stream length (seconds), with
wide margins.
"""
from __future__ import annotations

import asyncio
import http.client
import json
import socket
import time

import pytest

from conftest import USER_HI, deployment, make_config, wait_for

THREADS = 2
STREAM_CHUNKS, CHUNK_DELAY_MS = 20, 100  # a 2 s stream


@pytest.fixture(scope="module")
def narrow(module_stack):
    slow = module_stack.mock("slow", "--ttft", "1ms", "--chunks", str(STREAM_CHUNKS),
                             "--chunk-delay", f"{CHUNK_DELAY_MS}ms")
    fast = module_stack.mock("fast", "--ttft", "1ms", "--chunks", "2", "--chunk-delay", "1ms")
    cfg = make_config([deployment("slow", slow), deployment("fast", fast)],
                      general_settings={"max_threads": THREADS, "keep_alive_timeout": 30})
    return module_stack.gateway(cfg, name="narrow")


async def _streams(gw, n: int):
    client = gw.async_client()
    t0 = time.monotonic()

    async def one():
        first = None
        text = ""
        stream = await client.chat.completions.create(model="slow", messages=USER_HI, stream=True)
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                first = first if first is not None else time.monotonic() - t0
                text += chunk.choices[0].delta.content
        return first, text, time.monotonic() - t0

    try:
        return await asyncio.gather(*(one() for _ in range(n)))
    finally:
        await client.close()


def test_open_streams_hold_no_server_thread(narrow):
    n = 4 * THREADS
    stream_s = STREAM_CHUNKS * CHUNK_DELAY_MS / 1000
    results = asyncio.run(_streams(narrow, n))
    firsts = [r[0] for r in results]
    # All streams run at once: each got its first content long before any
    # stream could have ended (one thread per stream would start only THREADS).
    assert max(firsts) < stream_s * 0.6, firsts
    for first, text, total in results:
        assert text.count(" ") >= STREAM_CHUNKS - 1, text  # every chunk arrived
        assert total < stream_s * 2.5, results
    narrow.assert_healthy()


def _ask(conn: http.client.HTTPConnection, model: str = "fast") -> dict:
    body = json.dumps({"model": model, "messages": USER_HI})
    conn.request("POST", "/v1/chat/completions", body=body,
                 headers={"Content-Type": "application/json", "Authorization": "Bearer sk-x"})
    r = conn.getresponse()
    data = r.read()
    assert r.status == 200, (r.status, data[:300])
    assert r.getheader("Connection", "").lower() != "close"
    return json.loads(data)


def test_idle_keep_alive_connections_hold_no_server_thread(narrow):
    # Three times as many idle keep-alive connections as threads; each one's
    # next request is still answered, on the same socket, well within the 5 s
    # socket timeout (a thread kept per idle connection would take 30 s to free).
    conns = [http.client.HTTPConnection("127.0.0.1", narrow.port, timeout=5) for _ in range(3 * THREADS)]
    try:
        for c in conns:
            _ask(c)
        socks = [c.sock for c in conns]
        time.sleep(0.6)  # idle past the pool's short hold: the connections are parked
        for c in reversed(conns):
            t0 = time.monotonic()
            assert _ask(c)["choices"][0]["message"]["content"]
            assert time.monotonic() - t0 < 3
        assert [c.sock for c in conns] == socks  # kept alive, not reconnected
    finally:
        for c in conns:
            c.close()
    narrow.assert_healthy()


def test_parked_connection_closes_at_keep_alive_timeout(module_stack):
    fast = module_stack.mock("fast2", "--ttft", "1ms")
    gw = module_stack.gateway(make_config([deployment("fast", fast)],
                                          general_settings={"max_threads": THREADS, "keep_alive_timeout": 1}),
                              name="short_keepalive")
    s = socket.create_connection(("127.0.0.1", gw.port), timeout=10)
    try:
        body = json.dumps({"model": "fast", "messages": USER_HI}).encode()
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(body) + body)
        got = b""
        while b"\r\n\r\n" not in got:
            got += s.recv(65536)
        head, _, rest = got.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head
        length = int([ln.split(b":")[1] for ln in head.split(b"\r\n") if ln.lower().startswith(b"content-length")][0])
        while len(rest) < length:
            rest += s.recv(65536)
        t0 = time.monotonic()
        # Idle: the server closes the connection about keep_alive_timeout (1 s) later.
        assert s.recv(1) == b""
        waited = time.monotonic() - t0
        assert 0.5 < waited < 5, waited
    finally:
        s.close()
    wait_for(gw.alive, what="gateway still up")
