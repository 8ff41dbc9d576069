"""Retries, fallbacks and timeouts (issue 3), each observed at the mocks.

The default chain (simple-shuffle) has no health strategy, so nothing cools
down here: every attempt the router plans reaches a mock.
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest

from conftest import USER_HI, assert_openai_error_shape, deployment, make_config, mock_words, wait_for

QUICK = ("--ttft", "1ms", "--chunk-delay", "1ms", "--chunks", "3")


def ask(client: openai.OpenAI, model: str, stream: bool = False, **kw):
    """One chat call; returns (text, response headers)."""
    raw = client.chat.completions.with_raw_response.create(model=model, messages=USER_HI, stream=stream, **kw)
    resp = raw.parse()
    if stream:
        text = "".join(c.choices[0].delta.content or "" for c in resp if c.choices)
    else:
        text = resp.choices[0].message.content
    return text, raw.headers


def fan_out(fn, n: int, workers: int = 8) -> list:
    with ThreadPoolExecutor(workers) as ex:
        return list(ex.map(lambda i: fn(i), range(n)))


def dep(group, mock, **kw):
    return deployment(group, mock, model_info={"id": mock.name}, **kw)


# ---------------------------------------------------------------------------
# retries
# ---------------------------------------------------------------------------

@pytest.fixture
def good_bad(stack):
    good = stack.mock("good", *QUICK)
    bad = stack.mock("bad", *QUICK, "--fail-rate", "1", "--fail-status", "500")
    gw = stack.gateway(make_config([dep("g", good), dep("g", bad), deployment("solo", bad, model_info={"id": "solo"})],
                                   # retries alone: health would cool `bad` (tested in test_routing_health)
                                   router_settings={"num_retries": 2, "disable_cooldowns": True}))
    return gw, good, bad


def test_num_retries_every_request_succeeds(good_bad):
    gw, good, bad = good_bad
    client = gw.client()
    n = 30
    results = fan_out(lambda i: ask(client, "g", stream=bool(i % 2)), n)
    assert all(text == mock_words("good", 3) for text, _ in results)
    assert all(h["x-tailgate-deployment"] == "good" for _, h in results)
    attempts = [int(h["x-tailgate-attempts"]) for _, h in results]
    assert set(attempts) <= {1, 2}, attempts
    assert bad.received() > 0, "the failing deployment was never tried"
    assert bad.received() == sum(a - 1 for a in attempts), "the failing mock saw every failed attempt"
    assert good.received() == n


def test_request_num_retries_zero_overrides_router(good_bad):
    gw, good, bad = good_bad
    client = gw.client()

    def one(i):
        try:
            return ask(client, "g", extra_body={"num_retries": 0})
        except openai.InternalServerError as e:
            return e

    results = fan_out(one, 30)
    failures = [r for r in results if isinstance(r, openai.InternalServerError)]
    assert failures, "with num_retries 0 the failing deployment's errors must reach the client"
    assert len(failures) == bad.received()
    assert len(results) - len(failures) == good.received()
    for e in failures:
        assert e.response.headers["x-tailgate-attempts"] == "1"
        assert e.response.headers.get("x-should-retry") != "false"
        assert_openai_error_shape(e.response, 500)
    last = bad.last_body()
    assert "num_retries" not in last, last


def test_retries_exhausted_error_has_should_retry_false(good_bad):
    gw, _, bad = good_bad
    t0 = time.monotonic()
    with pytest.raises(openai.InternalServerError) as ei:
        gw.client().chat.completions.create(model="solo", messages=USER_HI)
    # Coming back to the same deployment waits a jittered backoff: >= 125 ms + 250 ms.
    assert time.monotonic() - t0 >= 0.35
    h = ei.value.response.headers
    assert h["x-tailgate-attempts"] == "3" and h.get("x-should-retry") == "false", dict(h)
    assert bad.received() == 3

    # The SDK honours it: no retries of its own on top of the gateway's.
    with pytest.raises(openai.InternalServerError):
        gw.client(max_retries=2).chat.completions.create(model="solo", messages=USER_HI)
    assert bad.received() == 6

    # Without gateway retries the header is absent and the SDK retries by itself.
    with pytest.raises(openai.InternalServerError) as ei:
        gw.client(max_retries=1).chat.completions.create(model="solo", messages=USER_HI,
                                                         extra_body={"num_retries": 0})
    assert "x-should-retry" not in ei.value.response.headers
    assert bad.received() == 8


def test_no_retry_after_stream_started(stack):
    args = (*QUICK[:2], "--chunks", "6", "--chunk-delay", "5ms", "--reset-mid-stream-after", "2")
    m1, m2 = stack.mock("m1", *args), stack.mock("m2", *args)
    gw = stack.gateway(make_config([dep("g", m1), dep("g", m2)], router_settings={"num_retries": 2}))
    stream = gw.client().chat.completions.create(model="g", messages=USER_HI, stream=True)
    got = []
    with pytest.raises(openai.APIError) as ei:
        for chunk in stream:
            got += [c.delta.content for c in chunk.choices if c.delta.content]
    assert not isinstance(ei.value, openai.APIConnectionError), ei.value
    assert len(got) == 2, got
    assert m1.received() + m2.received() == 1, "a stream that delivered content must not be retried"


# ---------------------------------------------------------------------------
# fallbacks
# ---------------------------------------------------------------------------

def test_router_fallbacks(stack):
    a1 = stack.mock("a1", *QUICK, "--fail-rate", "1", "--fail-status", "500")
    a2 = stack.mock("a2", *QUICK, "--fail-rate", "1", "--fail-status", "503")
    b = stack.mock("b", *QUICK)
    gw = stack.gateway(make_config([dep("a", a1), dep("a", a2), dep("b", b)],
                                   router_settings={"num_retries": 1, "fallbacks": [{"a": ["b"]}],
                                                    "disable_cooldowns": True}))
    client = gw.client()
    results = fan_out(lambda i: ask(client, "a", stream=bool(i % 2)), 10, workers=4)
    for text, h in results:
        assert text == mock_words("b", 3)
        assert h["x-tailgate-fallback"] == "b" and h["x-tailgate-deployment"] == "b"
        assert h["x-tailgate-attempts"] == "3"
    # Every request tried both deployments of `a` once, then `b`.
    assert [a1.received(), a2.received(), b.received()] == [10, 10, 10]

    # Fallback failing too: the error says the gateway already retried.
    b.configure(fail_rate=1, fail_status=500)
    with pytest.raises(openai.InternalServerError) as ei:
        client.chat.completions.create(model="a", messages=USER_HI, extra_body={"num_retries": 0})
    h = ei.value.response.headers
    assert h["x-tailgate-attempts"] == "2" and h.get("x-should-retry") == "false", dict(h)
    assert b.received() == 11
    b.configure(fail_rate=0)

    # Group `a` healthy again: no fallback, no header.
    a1.configure(fail_rate=0)
    a2.configure(fail_rate=0)
    text, h = ask(client, "a")
    assert text in (mock_words("a1", 3), mock_words("a2", 3))
    assert "x-tailgate-fallback" not in h
    assert b.received() == 11


def test_per_request_fallbacks_override_config(stack):
    a = stack.mock("a", *QUICK, "--fail-rate", "1", "--fail-status", "500")
    b = stack.mock("b", *QUICK)
    c = stack.mock("c", *QUICK)
    gw = stack.gateway(make_config([dep("a", a), dep("b", b), dep("c", c)],
                                   router_settings={"fallbacks": [{"a": ["c"]}]}))
    client = gw.client()
    text, h = ask(client, "a", extra_body={"fallbacks": ["b"]})
    assert text == mock_words("b", 3) and h["x-tailgate-fallback"] == "b"
    assert [a.received(), b.received(), c.received()] == [1, 1, 0]
    assert "fallbacks" not in b.last_body()
    text, h = ask(client, "a")  # the config's fallbacks otherwise
    assert text == mock_words("c", 3) and h["x-tailgate-fallback"] == "c"
    assert [a.received(), b.received(), c.received()] == [2, 1, 1]


def test_context_window_fallbacks(stack):
    # The mock's injected error message is "mock injected 400 (NAME)": naming the
    # mock after OpenAI's error code gives a context-length 400 body.
    small = stack.mock("small-context_length_exceeded", *QUICK, "--fail-rate", "1", "--fail-status", "400")
    plain = stack.mock("plain", *QUICK, "--fail-rate", "1", "--fail-status", "400")
    big = stack.mock("big", *QUICK)
    gw = stack.gateway(make_config(
        [dep("small", small), dep("plain", plain), dep("big", big)],
        router_settings={"num_retries": 2,
                         "context_window_fallbacks": [{"small": ["big"]}, {"plain": ["big"]}]}))
    client = gw.client()

    for stream in (False, True):
        text, h = ask(client, "small", stream=stream)
        assert text == mock_words("big", 3)
        assert h["x-tailgate-fallback"] == "big" and h["x-tailgate-attempts"] == "2"
    assert [small.received(), big.received()] == [2, 2], "a context-length 400 is not retried in its group"

    # An ordinary 400 is the client's: no retry, no context-window fallback.
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="plain", messages=USER_HI)
    assert [plain.received(), big.received()] == [1, 2]

    # Other failures do not use context_window_fallbacks (no `fallbacks` set).
    small.configure(fail_status=500)
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="small", messages=USER_HI, extra_body={"num_retries": 0})
    assert [small.received(), big.received()] == [3, 2]


# ---------------------------------------------------------------------------
# timeouts
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("level,group,extra,lo,hi", [
    ("router", "r", {}, 0.28, 0.8),                  # router_settings.timeout 0.3
    ("deployment", "d", {}, 0.95, 1.6),              # litellm_params.timeout 1.0 beats the router's
    ("request", "d", {"timeout": 0.5}, 0.45, 0.95),  # extra_body timeout beats both...
    ("request-longer", "r", {"timeout": 0.7}, 0.65, 1.2),  # ...also when longer than the router's
])
def test_timeout_levels_504_and_upstream_closed(stack, level, group, extra, lo, hi):
    m = stack.mock("stall", "--stall")
    gw = stack.gateway(make_config([dep("r", m), deployment("d", m, model_info={"id": "d"}, timeout=1.0)],
                                   router_settings={"timeout": 0.3}))
    t0 = time.monotonic()
    with pytest.raises(openai.APIStatusError) as ei:
        gw.client(timeout=10).chat.completions.create(model=group, messages=USER_HI, extra_body=extra)
    elapsed = time.monotonic() - t0
    assert ei.value.status_code == 504, ei.value
    assert_openai_error_shape(ei.value.response, 504)
    assert lo <= elapsed < hi, f"{level} timeout answered after {elapsed:.2f}s"
    t_resp = time.monotonic()
    wait_for(lambda: m.stats()["cancelled_by_client"] == 1, timeout=1.0,
             what="the mock to see the timed-out attempt's connection closed")
    assert time.monotonic() - t_resp < 1.0
    assert m.received() == 1


def test_stream_timeout_is_for_first_content(stack):
    # Headers and the role chunk at t=0, first content at 800 ms.
    m = stack.mock("late", "--ttft", "800ms", "--chunks", "2", "--chunk-delay", "1ms")
    gw = stack.gateway(make_config([dep("g", m)], router_settings={"stream_timeout": 0.3}))
    client = gw.client(timeout=10)

    t0 = time.monotonic()
    with pytest.raises(openai.APIStatusError) as ei:
        client.chat.completions.create(model="g", messages=USER_HI, stream=True)
    elapsed = time.monotonic() - t0
    assert ei.value.status_code == 504 and 0.28 <= elapsed < 0.75, (ei.value.status_code, elapsed)
    assert_openai_error_shape(ei.value.response, 504)
    wait_for(lambda: m.stats()["cancelled_by_client"] == 1, timeout=1.0, what="the upstream stream to be closed")

    # Non-stream requests are not bound by stream_timeout.
    text, _ = ask(client, "g")
    assert text == mock_words("late", 2)
    # A per-request stream_timeout overrides the router's.
    text, _ = ask(client, "g", stream=True, extra_body={"stream_timeout": 3})
    assert text == mock_words("late", 2)
    assert m.received() == 3 and m.stats()["cancelled_by_client"] == 1


def test_timed_out_attempt_is_retried_elsewhere(stack):
    stall = stack.mock("stall", "--stall")
    good = stack.mock("good", *QUICK)
    # Only the cost strategy (no health): `stall` is cheaper, so always tried first.
    gw = stack.gateway(make_config(
        [deployment("g", good, model_info={"id": "good"}, input_cost_per_token=1e-5, output_cost_per_token=1e-5),
         deployment("g", stall, model_info={"id": "stall"}, timeout=0.3,
                    input_cost_per_token=1e-7, output_cost_per_token=1e-7)],
        router_settings={"strategies": ["cost"], "num_retries": 1}))
    t0 = time.monotonic()
    text, h = ask(gw.client(timeout=10), "g")
    elapsed = time.monotonic() - t0
    assert text == mock_words("good", 3) and h["x-tailgate-attempts"] == "2"
    assert 0.28 <= elapsed < 1.0, elapsed
    wait_for(lambda: stall.stats()["cancelled_by_client"] == 1, timeout=1.0, what="the timed-out attempt closed")
    assert [stall.received(), good.received()] == [1, 1]
