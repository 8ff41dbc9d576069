"""Upstream failures (test 8), failures after the commit point (test 9) and
client disconnects (test 10)."""
from __future__ import annotations

import json
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest

from conftest import (USER_HI, assert_openai_error_shape, deployment, free_port, make_config, mock_words,
                      wait_for)


@pytest.fixture(scope="module")
def env(module_stack):
    solo = module_stack.mock("solo", "--ttft", "1ms", "--chunk-delay", "1ms", "--chunks", "4")
    slow = module_stack.mock("slow", "--ttft", "2s", "--chunk-delay", "10ms", "--chunks", "4")
    dead_port = free_port()  # nobody listens there: connection refused
    cfg = make_config([
        deployment("solo", solo, timeout=0.5, model_info={"id": "solo-dep"}),
        deployment("slow", slow),
        deployment("dead", api_base=f"http://127.0.0.1:{dead_port}/v1"),
    ])
    gw = module_stack.gateway(cfg)
    return gw, solo, slow


@pytest.fixture(autouse=True)
def _reset(env):
    gw, solo, slow = env
    solo.reset()
    slow.reset()
    yield
    gw.assert_healthy()


# 8 --------------------------------------------------------------------------

def test_upstream_500(env):
    gw, solo, _ = env
    solo.configure(fail_rate=1, fail_status=500)
    with pytest.raises(openai.InternalServerError) as ei:
        gw.client().chat.completions.create(model="solo", messages=USER_HI)
    assert ei.value.status_code == 500
    assert_openai_error_shape(ei.value.response, 500)
    assert solo.received() == 1  # no retries configured
    # Streams fail the same way before anything was committed.
    with pytest.raises(openai.InternalServerError):
        gw.client().chat.completions.create(model="solo", messages=USER_HI, stream=True)


def test_upstream_429_retry_after(env):
    gw, solo, _ = env
    solo.configure(fail_rate=1, fail_status=429, retry_after=3)
    with pytest.raises(openai.RateLimitError) as ei:
        gw.client().chat.completions.create(model="solo", messages=USER_HI)
    e = ei.value
    assert e.status_code == 429
    assert e.response.headers.get("retry-after") == "3"
    assert_openai_error_shape(e.response, 429)


@pytest.mark.parametrize("stream", [False, True])
def test_stalled_upstream_times_out_504(env, stream):
    gw, solo, _ = env
    solo.configure(stall=True)
    t0 = time.monotonic()
    with pytest.raises(openai.APIStatusError) as ei:
        gw.client(timeout=10).chat.completions.create(model="solo", messages=USER_HI, stream=stream)
    elapsed = time.monotonic() - t0
    assert ei.value.status_code == 504, ei.value
    assert_openai_error_shape(ei.value.response, 504)
    assert 0.4 <= elapsed < 3.0, elapsed
    # The stalled upstream connection was closed by the gateway.
    wait_for(lambda: solo.stats()["in_flight"] == 0, timeout=2, what="stalled request to be closed")


def test_connection_refused_502(env):
    gw, _, _ = env
    t0 = time.monotonic()
    with pytest.raises(openai.APIStatusError) as ei:
        gw.client().chat.completions.create(model="dead", messages=USER_HI)
    assert ei.value.status_code == 502
    assert_openai_error_shape(ei.value.response, 502)
    assert time.monotonic() - t0 < 3
    with pytest.raises(openai.APIStatusError) as ei:
        gw.client().chat.completions.create(model="dead", messages=USER_HI, stream=True)
    assert ei.value.status_code == 502


def test_retry_to_other_deployment(stack):
    good = stack.mock("good", "--ttft", "1ms", "--chunk-delay", "1ms", "--chunks", "3")
    bad = stack.mock("bad", "--fail-rate", "1", "--fail-status", "500")
    gw = stack.gateway(make_config(
        [deployment("g", good, model_info={"id": "good-dep"}), deployment("g", bad, model_info={"id": "bad-dep"})],
        router_settings={"num_retries": 1}))
    client = gw.client()
    n = 24

    def one(i):
        raw = client.chat.completions.with_raw_response.create(model="g", messages=USER_HI, stream=(i % 2 == 1))
        resp = raw.parse()
        if i % 2:
            text = "".join(c.choices[0].delta.content or "" for c in resp if c.choices)
        else:
            text = resp.choices[0].message.content
        return text, raw.headers.get("x-tailgate-deployment"), int(raw.headers.get("x-tailgate-attempts", "0"))

    with ThreadPoolExecutor(6) as ex:
        results = list(ex.map(one, range(n)))
    assert all(text == mock_words("good", 3) for text, _, _ in results)
    assert all(dep == "good-dep" for _, dep, _ in results)
    attempts = [a for _, _, a in results]
    assert set(attempts) <= {1, 2}, attempts
    bad_received = bad.received()
    assert bad_received > 0, "the failing deployment was never tried"
    assert sum(a - 1 for a in attempts) == bad_received
    assert good.received() == n


# 9 --------------------------------------------------------------------------

def test_stream_reset_after_first_chunks_raises(env):
    gw, solo, _ = env
    solo.configure(reset_mid_stream_after=2, chunks=6, chunk_delay_ms=5)
    stream = gw.client().chat.completions.create(model="solo", messages=USER_HI, stream=True)
    got = []
    with pytest.raises(openai.APIError) as ei:
        for chunk in stream:
            for ch in chunk.choices:
                if ch.delta.content:
                    got.append(ch.delta.content)
    # Raised from the SSE error event (not a transport error): it carries the error body.
    assert not isinstance(ei.value, openai.APIConnectionError), ei.value
    assert isinstance(ei.value.body, dict) and ei.value.body.get("message"), ei.value.body
    assert got, "the chunks before the failure should have been delivered"
    assert "".join(got) != mock_words("solo", 6)
    # The gateway survives and serves the next request.
    solo.configure(reset_mid_stream_after=-1)
    s = gw.client().chat.completions.create(model="solo", messages=USER_HI, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in s if c.choices) == mock_words("solo", 6)


async def test_stream_reset_async_raises(env):
    gw, solo, _ = env
    solo.configure(reset_mid_stream_after=1, chunks=5)
    client = gw.async_client()
    try:
        stream = await client.chat.completions.create(model="solo", messages=USER_HI, stream=True)
        with pytest.raises(openai.APIError):
            async for _ in stream:
                pass
    finally:
        await client.close()


def test_stream_error_event_is_openai_shaped(env):
    gw, solo, _ = env
    solo.configure(reset_mid_stream_after=2, chunks=6)
    with httpx.stream("POST", gw.base_url + "/chat/completions",
                      json={"model": "solo", "messages": USER_HI, "stream": True}, timeout=10) as r:
        assert r.status_code == 200
        events = [line[6:] for line in r.iter_lines() if line.startswith("data: ")]
    assert events, "no SSE events"
    assert events[-1] != "[DONE]", "a failed stream must not end with [DONE]"
    err = json.loads(events[-1])
    assert set(err) == {"error"} and {"message", "type", "param", "code"} <= set(err["error"]), err


# 10 -------------------------------------------------------------------------

def raw_request(port: int, body: dict) -> socket.socket:
    data = json.dumps(body).encode()
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
              b"Authorization: Bearer x\r\nContent-Length: %d\r\n\r\n" % len(data) + data)
    return s


@pytest.mark.parametrize("stream", [True, False])
def test_client_disconnect_cancels_upstream(env, stream):
    gw, _, slow = env
    before = slow.stats()["cancelled_by_client"]
    s = raw_request(gw.port, {"model": "slow", "messages": USER_HI, "stream": stream})
    wait_for(lambda: slow.stats()["in_flight"] >= 1, timeout=2, what="the request to reach the mock")
    time.sleep(0.2)
    s.close()
    t_close = time.monotonic()
    wait_for(lambda: slow.stats()["cancelled_by_client"] > before, timeout=1.0,
             what="the mock to see the upstream connection closed")
    assert time.monotonic() - t_close < 1.0
    assert slow.stats()["completed"] == 0
    wait_for(lambda: "client disconnected" in gw.log_text(), timeout=2, what="gateway to log the disconnect")


async def test_client_disconnect_async_task_cancel(env):
    gw, _, slow = env
    # The gateway sends headers only with the first content (2 s away), so the
    # client gives up while waiting for them: asyncio cancellation closes the
    # SDK's connection.
    import asyncio
    client = gw.async_client()
    try:
        with pytest.raises((asyncio.TimeoutError, TimeoutError)):
            await asyncio.wait_for(
                client.chat.completions.create(model="slow", messages=USER_HI, stream=True), timeout=0.2)
        t_close = time.monotonic()
        while slow.stats()["cancelled_by_client"] < 1:
            assert time.monotonic() - t_close < 1.0, "upstream not cancelled within 1 s"
            await asyncio.sleep(0.02)
    finally:
        await client.close()
    assert slow.stats()["completed"] == 0


def test_client_timeout_cancels_upstream(env):
    gw, _, slow = env
    with pytest.raises(openai.APITimeoutError):
        gw.client(timeout=0.2).chat.completions.create(model="slow", messages=USER_HI)
    t_close = time.monotonic()
    wait_for(lambda: slow.stats()["cancelled_by_client"] >= 1, timeout=1.0,
             what="the mock to see the upstream connection closed")
    assert time.monotonic() - t_close < 1.0


def test_client_disconnect_mid_stream_cancels_upstream(env):
    gw, _, slow = env
    slow.configure(ttft_ms=1, chunks=100, chunk_delay_ms=50)
    client = gw.client()
    stream = client.chat.completions.create(model="slow", messages=USER_HI, stream=True)
    got = 0
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            got += 1
            if got == 3:
                break
    stream.close()  # closes the HTTP response (and its connection)
    t_close = time.monotonic()
    wait_for(lambda: slow.stats()["cancelled_by_client"] >= 1, timeout=1.0,
             what="the mock to see the upstream connection closed mid-stream")
    assert time.monotonic() - t_close < 1.0
    assert slow.stats()["completed"] == 0


def test_per_request_fallbacks(env):
    gw, solo, _ = env
    raw = gw.client().chat.completions.with_raw_response.create(
        model="dead", messages=USER_HI, extra_body={"fallbacks": ["solo"]})
    assert raw.parse().choices[0].message.content == mock_words("solo", 4)
    assert raw.headers.get("x-tailgate-fallback") == "solo"
    assert raw.headers.get("x-tailgate-deployment") == "solo-dep"
    assert solo.received() == 1
    assert "fallbacks" not in solo.last_body()


def test_sigterm_with_stream_in_flight(stack):
    m = stack.mock("term", "--ttft", "1ms", "--chunk-delay", "100ms", "--chunks", "100")
    # A 10 s stream outlives the drain period: cut at drain_timeout (see test_drain.py).
    gw = stack.gateway(make_config([deployment("g", m)], general_settings={"drain_timeout": "1s"}))
    stream = gw.client().chat.completions.create(model="g", messages=USER_HI, stream=True)
    it = iter(stream)
    next(it)
    t0 = time.monotonic()
    rc = gw.proc.stop(timeout=10)
    assert rc == 0, f"exit code {rc}; log:\n{gw.log_text()[-2000:]}"
    assert time.monotonic() - t0 < 5, "shutdown took too long"
    # The client's stream ends with an error, never silently short.
    with pytest.raises(openai.APIError):
        for _ in it:
            pass
    # And the upstream was closed, not left generating.
    wait_for(lambda: m.stats()["in_flight"] == 0, timeout=2, what="upstream closed after shutdown")
    assert m.stats()["completed"] == 0
