"""Hedging (`staggered-hedge`): fixed and quantile delays, hedges on fast
failures, straggler tails, the extra-load budget, the delay following the
latency window, and cancellations that never count against a deployment.

Which deployment is the primary matters everywhere here. The hedge plugin
takes the candidates in the order the chain left them: candidate 0 is the
primary, candidate 1 the hedge. Tests with a fixed delay use a chain without a
ranking strategy ([health, staggered-hedge]), so the config order is the
order. Tests with a quantile delay need the `latency` plugin (it publishes the
p95/p99 the hedge reads) but not its ranking: a deployment whose slow attempts
are always cancelled is never measured (cancellations are censored), and a
never-measured deployment is explored first. So those chains pin the order
with `simple-shuffle` after `latency`: only the primary has a `weight`, and an
unweighted candidate is never picked first while a weighted one is available.

Mock clocks: each mock's received_ms / finished_ms / cancel_ms count from its
own start. `MockClock` maps one mock's clock onto this process's monotonic
clock (offset measured around a /mock/stats call, good to ~1 ms on loopback),
so the launch of a hedge can be placed relative to the primary's.
"""
from __future__ import annotations

import asyncio
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import openai
import pytest

from conftest import USER_HI, deployment, make_config, mock_words, needs_plugins, quantile, wait_for

pytestmark = needs_plugins("staggered-hedge", "health", "latency", "simple-shuffle")

CHUNKS = 3
QUIET = ("--chunk-delay", "1ms", "--chunks", str(CHUNKS))


class MockClock:
    """Converts a mock's steady-clock ms into time.monotonic() seconds."""

    def __init__(self, mock, probes: int = 5):
        best = None
        for _ in range(probes):
            t0 = time.monotonic()
            now_ms = mock.stats()["now_ms"]
            t1 = time.monotonic()
            if best is None or t1 - t0 < best[0]:
                best = (t1 - t0, (t0 + t1) / 2 - now_ms / 1000)
        self.offset = best[1]

    def __call__(self, mock_ms: float) -> float:
        return mock_ms / 1000 + self.offset


def hedge_chain(**hedge_args):
    return ["health", {"name": "staggered-hedge", "args": hedge_args}]


def quantile_chain(latency_args: dict, hedge_args: dict | None):
    chain = [{"name": "latency", "args": latency_args}, "simple-shuffle"]
    if hedge_args is not None:
        chain.append({"name": "staggered-hedge", "args": hedge_args})
    return chain


def _sync_call(client, stream, **kw):
    """(text, seconds to the first content chunk / to the response, headers)."""
    t0 = time.monotonic()
    raw = client.chat.completions.with_raw_response.create(model="g", messages=USER_HI, stream=stream, **kw)
    resp = raw.parse()
    if not stream:
        return resp.choices[0].message.content, time.monotonic() - t0, raw.headers
    first, parts = None, []
    for c in resp:
        if c.choices and c.choices[0].delta.content:
            first = first if first is not None else time.monotonic() - t0
            parts.append(c.choices[0].delta.content)
    return "".join(parts), first, raw.headers


async def _async_call(client, stream, **kw):
    t0 = time.monotonic()
    raw = await client.chat.completions.with_raw_response.create(model="g", messages=USER_HI, stream=stream, **kw)
    resp = raw.parse()  # the legacy raw response parses synchronously
    if not stream:
        return resp.choices[0].message.content, time.monotonic() - t0, raw.headers
    first, parts = None, []
    async for c in resp:
        if c.choices and c.choices[0].delta.content:
            first = first if first is not None else time.monotonic() - t0
            parts.append(c.choices[0].delta.content)
    return "".join(parts), first, raw.headers


def call(gw, stream, mode, **kw):
    if mode == "sync":
        with gw.client() as client:
            client.models.list()
            return _sync_call(client, stream, **kw)

    async def run():
        async with gw.async_client() as client:
            await client.models.list()
            return await _async_call(client, stream, **kw)

    return asyncio.run(run())


# 5, 6: fixed delay ----------------------------------------------------------

@pytest.fixture(scope="module")
def fixed(module_stack):
    """primary `p` (first in config order), secondary `q` at 50 ms, hedge after 100 ms.
    A generous budget: these tests are about timing, test 8 about the budget."""
    p = module_stack.mock("p", "--ttft", "400ms", *QUIET)
    q = module_stack.mock("q", "--ttft", "50ms", *QUIET)
    deps = [deployment("g", p, model_info={"id": "p-dep"}), deployment("g", q, model_info={"id": "q-dep"})]
    gw, gw2s = (module_stack.gateway(make_config(deps, router_settings={
        "strategies": hedge_chain(delay=d, max_extra_load=1, min_hedges_per_second=100)}), name=f"fixed{d}")
        for d in ("100ms", "2s"))
    for stream in (False, True):  # warm both SDK clients
        call(gw, stream, "sync")
        call(gw, stream, "async")
    return gw, p, q, gw2s


@pytest.fixture
def fx(fixed):
    gw, p, q, _ = fixed
    for m in (p, q):
        wait_for(lambda: m.stats()["in_flight"] == 0, timeout=3, what=f"{m.name} idle")
        m.reset()
    yield fixed[:3]
    gw.assert_healthy()


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("stream", [True, False], ids=["stream", "nonstream"])
def test_fixed_delay_hedge_wins_primary_cancelled(fx, stream, mode):
    gw, p, q = fx
    text, latency, h = call(gw, stream, mode)
    assert text == mock_words("q", CHUNKS)
    assert h["x-tailgate-attempts"] == "2" and h["x-tailgate-deployment"] == "q-dep"
    # ~ delay + the secondary's TTFT (+ its 3 chunks when not streaming)
    assert 0.14 <= latency < 0.25, f"client latency {latency * 1000:.0f} ms"

    # The hedge was launched ~100 ms after the primary...
    pc, qc = MockClock(p), MockClock(q)
    (pr,), (qr,) = p.api_requests(), q.api_requests()
    gap = qc(qr["received_ms"]) - pc(pr["received_ms"])
    assert 0.09 <= gap <= 0.13, f"hedge launched {gap * 1000:.0f} ms after the primary"
    # ...and the primary was closed when the hedge committed, not before, not at its own TTFT.
    wait_for(lambda: p.stats()["cancelled_by_client"] == 1, timeout=2, what="the primary to be cancelled")
    pr = p.api_requests()[0]
    span = pr["finished_ms"] - pr["received_ms"]
    assert pr["outcome"] == "cancelled" and 140 <= span <= 210, pr
    assert p.stats()["completed"] == 0
    assert f"hedge after 100ms (fixed)" in gw.log_text()


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("stream", [True, False], ids=["stream", "nonstream"])
def test_fixed_delay_fast_primary_no_hedge(fx, stream, mode):
    gw, p, q = fx
    p.configure(ttft_ms=30)
    text, latency, h = call(gw, stream, mode)
    assert text == mock_words("p", CHUNKS)
    assert h["x-tailgate-attempts"] == "1" and h["x-tailgate-deployment"] == "p-dep"
    assert latency < 0.09, latency
    # The 100 ms mark passes with the request already answered: nothing is launched.
    time.sleep(0.15)
    assert q.received() == 0 and p.stats()["completed"] == 1


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("stream", [True, False], ids=["stream", "nonstream"])
@pytest.mark.parametrize("source", ["config", "request"])
def test_fast_failure_hedges_at_once(fixed, fx, stream, mode, source):
    gw, p, q = fx
    p.configure(fail_rate=1, fail_status=500, fail_delay_ms=20)
    # a delay far beyond the test: the hedge must not wait for it
    kw = {"extra_body": {"hedge": {"delay": "2s"}}} if source == "request" else {}
    if source == "config":
        gw = fixed[3]  # delay: 2s in the config
    text, latency, h = call(gw, stream, mode, **kw)
    assert text == mock_words("q", CHUNKS)
    assert h["x-tailgate-attempts"] == "2" and h["x-tailgate-deployment"] == "q-dep"
    assert latency < 0.2, f"client latency {latency * 1000:.0f} ms with a 2 s hedge delay"
    pc, qc = MockClock(p), MockClock(q)
    (pr,), (qr,) = p.api_requests(), q.api_requests()
    assert pr["outcome"] == "failed"
    gap = qc(qr["received_ms"]) - pc(pr["received_ms"])
    assert 0.015 <= gap <= 0.06, f"hedge launched {gap * 1000:.0f} ms after the primary (its 500 came at 20 ms)"

