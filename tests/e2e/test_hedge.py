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
own start. `MockClock` (conftest) maps one mock's clock onto this process's
monotonic clock, so the launch of a hedge can be placed relative to the primary's.
"""
from __future__ import annotations

import asyncio
import re
import time
from concurrent.futures import ThreadPoolExecutor

import openai
import pytest

from conftest import USER_HI, MockClock, deployment, make_config, mock_words, needs_plugins, quantile, wait_for

pytestmark = needs_plugins("staggered-hedge", "health", "latency", "simple-shuffle")

CHUNKS = 3
QUIET = ("--chunk-delay", "1ms", "--chunks", str(CHUNKS))


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



# 7: stragglers --------------------------------------------------------------

def _load(gw, n: int, workers: int = 16, stream: bool = False) -> list[tuple[float, str, str]]:
    """n requests at `workers` concurrency: (seconds to the answer / first content, deployment, attempts) each."""
    client = gw.client()

    def one(_):
        _, t, h = _sync_call(client, stream)
        return t, h["x-tailgate-deployment"], h["x-tailgate-attempts"]

    with ThreadPoolExecutor(workers) as ex:
        return list(ex.map(one, range(n)))


def test_stragglers_p95_hedge_cuts_the_tail(stack):
    """Primary: lognormal TTFT, median 40 ms (sigma 0.25) with 3 % stragglers x20
    (~800 ms); secondary: median 45 ms, no stragglers. The primary is pinned
    (weight) so the hedge always goes primary -> secondary, 400 requests at
    concurrency 16.

    Expected hedge share: a straggler loses to its hedge and is cancelled; since
    dddf314 `latency` records such a lost attempt as a lower bound (its elapsed
    time at the cancel, ~delay + the secondary's latency) instead of dropping it,
    so the window holds ~3 % of those high values and its p95 is about the body's
    p98: ~2 % of the body plus every straggler get hedged, ~5 % (measured 4-7 %).
    Before that fix the stragglers were censored out of the window entirely and
    the share was ~8 % (5 % of the body + 3 %).

    The reference p50 is this client's p50 in the hedged run itself (95 % of those
    requests are the primary alone), so a loaded machine inflates both sides."""
    p = stack.mock("p", "--ttft", "40ms", "--ttft-dist", "lognormal", "--ttft-sigma", "0.25",
                   "--straggler-prob", "0.03", "--straggler-mult", "20", *QUIET)
    q = stack.mock("q", "--ttft", "45ms", "--ttft-dist", "lognormal", "--ttft-sigma", "0.25", *QUIET)
    deps = [deployment("g", p, model_info={"id": "p-dep"}, weight=1), deployment("g", q, model_info={"id": "q-dep"})]
    latency_args = {"min_samples": 10, "ttl": "60s"}
    results = {}
    # The budget is set out of the way: this test measures the delay's effect; test 8 the budget.
    for name, hedge_args in (("unhedged", None),
                             ("hedged", {"delay": "p95", "min_samples": 10, "max_extra_load": 0.5})):
        gw = stack.gateway(make_config(deps, router_settings={"strategies": quantile_chain(latency_args, hedge_args)}),
                           name=name)
        _load(gw, 40)  # fill the window (until then the hedge uses its fallback delay)
        wait_for(lambda: p.stats()["in_flight"] + q.stats()["in_flight"] == 0, timeout=3)
        p.reset()
        q.reset()
        n = 400 if hedge_args else 300
        res = _load(gw, n)
        wait_for(lambda: p.stats()["in_flight"] + q.stats()["in_flight"] == 0, timeout=3)
        lat = [r[0] * 1000 for r in res]
        results[name] = dict(n=n, p50=quantile(lat, .5), p95=quantile(lat, .95), p99=quantile(lat, .99),
                             max=max(lat), primary=p.received(), secondary=q.received(),
                             stragglers=sum(1 for r in p.api_requests() if r["straggler"]),
                             unhedged_stragglers=sum(1 for r in p.api_requests()
                                                     if r["straggler"] and r["outcome"] == "completed"),
                             delays=re.findall(r"hedge after (\d+)ms \(p95\)", gw.log_text())[-3:])
        gw.stop()
        stack.gateways.remove(gw)
    for name, r in results.items():
        print(f"{name:9} " + " ".join(f"{k}={v:.0f}" if isinstance(v, float) else f"{k}={v}" for k, v in r.items()))

    u, h = results["unhedged"], results["hedged"]
    assert u["primary"] == u["n"] and u["secondary"] == 0, u  # pinned primary, no hedging
    assert h["primary"] == h["n"], h
    assert h["p99"] < 4 * h["p50"], f"hedged p99 {h['p99']:.0f} ms >= 4 x p50 {h['p50']:.0f} ms: {h}"
    # Every straggler but at most one was hedged away. One may be served unhedged when
    # the hedge budget is probably still spent by the warm-up's hedges (fallback delay until the
    # window holds min_samples): seen in 2 of ~25 full-suite runs on a loaded 2-core VM;
    # the tail claim itself is the p99 check above.
    assert h["stragglers"] > 0 and h["unhedged_stragglers"] <= 1, h
    extra = h["secondary"] / h["n"]
    assert extra <= 0.10, f"{extra:.1%} of requests hedged: {h}"
    # The unhedged run is printed for comparison only (its p99 is a straggler, ~20 x p50,
    # whenever at least 1 % of its requests straggled).


# 8: budget ------------------------------------------------------------------

def test_budget_caps_extra_load_then_unhedged(stack):
    """A stalled primary (its attempts time out after 0.5 s) and a healthy
    secondary: every request wants a hedge. Budget: 5 % of the requests in the
    10 s window plus a floor of 0.5/s (5 per window). Hedged requests complete
    via the secondary; once the budget is spent the rest go unhedged and time out."""
    p = stack.mock("p", "--stall", *QUIET)
    q = stack.mock("q", "--ttft", "20ms", *QUIET)
    deps = [deployment("g", p, model_info={"id": "p-dep"}, timeout=0.5), deployment("g", q, model_info={"id": "q-dep"})]
    # no health in this chain: the primary must stay primary while it times out
    gw = stack.gateway(make_config(deps, router_settings={"strategies": [
        {"name": "staggered-hedge", "args": {"delay": "50ms", "max_extra_load": 0.05, "min_hedges_per_second": 0.5}}]}))
    client = gw.client()
    n = 100

    def one(_):
        t0 = time.monotonic()
        try:
            raw = client.chat.completions.with_raw_response.create(model="g", messages=USER_HI)
            raw.parse()
            return "ok", time.monotonic() - t0, raw.headers["x-tailgate-attempts"]
        except openai.APIStatusError as e:
            return e.status_code, time.monotonic() - t0, e.response.headers.get("x-tailgate-attempts")

    with ThreadPoolExecutor(16) as ex:
        res = list(ex.map(one, range(n)))
    ok = [r for r in res if r[0] == "ok"]
    failed = [r for r in res if r[0] != "ok"]
    hedges = q.received()
    assert p.received() == n
    limit = 0.05 * n + 0.5 * 10
    assert 5 <= hedges <= limit, f"{hedges} hedges for {n} requests (budget {limit:.0f})"
    assert len(ok) == hedges and all(a == "2" and t < 0.3 for _, t, a in ok), ok
    assert all(s == 504 and a == "1" and 0.45 <= t < 1.5 for s, t, a in failed), failed


# 9: the delay follows the window ----------------------------------------------

def test_quantile_delay_follows_the_window(stack):
    """Primary `p` at 40 ms, shifted to 150 ms, then back; the secondary (1 s)
    never wins, so every primary attempt completes and is measured. The window
    (ttl 2 s, whole-window quantiles for hedging) follows: the logged delay
    `hedge after NNNms (p95)` moves up, then down once the slow samples expire."""
    p = stack.mock("p", "--ttft", "40ms", *QUIET)
    q = stack.mock("q", "--ttft", "1s", *QUIET)
    deps = [deployment("g", p, model_info={"id": "p-dep"}, weight=1), deployment("g", q, model_info={"id": "q-dep"})]
    gw = stack.gateway(make_config(deps, router_settings={"strategies": quantile_chain(
        {"ttl": "2s", "slices": 4, "min_samples": 5},
        {"delay": "p95", "min_samples": 5, "max_extra_load": 1, "min_hedges_per_second": 100})}))
    client = gw.client()
    pat = re.compile(r"hedge after (\d+)ms \((p95|p99)\)")

    def drive_until(cond, what, timeout=6.0, **kw):
        """Sends requests one by one until the last logged delay satisfies `cond`."""
        deadline = time.monotonic() + timeout
        seen = []
        while time.monotonic() < deadline:
            client.chat.completions.create(model="g", messages=USER_HI, **kw)
            delays = [(int(d), k) for d, k in pat.findall(gw.log_text())]
            if delays:
                seen.append(delays[-1])
                if cond(*delays[-1]):
                    return delays[-1][0]
        raise AssertionError(f"logged delay never {what} within {timeout}s; last seen {seen[-5:]}")

    d1 = drive_until(lambda d, k: k == "p95" and 35 <= d <= 70, "settled near 40 ms")
    p99 = drive_until(lambda d, k: k == "p99", "p99 on request", timeout=2, extra_body={"hedge": {"delay": "p99"}})
    assert 35 <= p99 <= 80, p99
    p.configure(ttft_ms=150)
    d2 = drive_until(lambda d, k: k == "p95" and d >= 140, "rose to ~150 ms")
    assert d2 <= 200, d2
    p.configure(ttft_ms=40)
    d3 = drive_until(lambda d, k: k == "p95" and d <= 70, "fell back after the slow samples expired")
    print(f"logged hedge delays: {d1} ms -> {d2} ms -> {d3} ms")
    assert q.stats()["completed"] == 0  # the secondary never won: every primary attempt was measured


# 10: cancellations are not failures -------------------------------------------

@pytest.mark.parametrize("stream", [True, False], ids=["stream", "nonstream"])
def test_hedge_cancellations_never_cool_down(stack, stream):
    """[health (allowed_fails 0: the first counted failure cools for 60 s),
    staggered-hedge 30 ms]: the 200 ms primary loses every request to the 20 ms
    secondary and is cancelled each time; it must stay primary throughout."""
    p = stack.mock("p", "--ttft", "200ms", *QUIET)
    q = stack.mock("q", "--ttft", "20ms", *QUIET)
    deps = [deployment("g", p, model_info={"id": "p-dep"}), deployment("g", q, model_info={"id": "q-dep"})]
    gw = stack.gateway(make_config(deps, router_settings={
        "strategies": hedge_chain(delay="30ms", max_extra_load=1, min_hedges_per_second=100),
        "allowed_fails": 0, "cooldown_time": 60}))
    n = 40
    res = _load(gw, n, workers=8, stream=stream)
    assert all(d == "q-dep" and a == "2" for _, d, a in res), res
    wait_for(lambda: p.stats()["cancelled_by_client"] == n, timeout=3, what="every primary attempt cancelled")
    assert p.received() == n and q.received() == n and p.stats()["completed"] == 0
    log = gw.log_text()
    assert not re.search(r"health: deployment '\S+' \S+ -> cooling", log), log[-3000:]
    assert "health: skipped" not in log


# A deployment whose attempts are always cancelled is never measured ----------

def test_never_winning_deployment_is_not_primary_forever(stack):
    """[health, latency, staggered-hedge] with a 600 ms and a 20 ms deployment. Until
    dddf314 the slow one lost every hedge, was censored, never got a sample, and
    stayed 'explore' -- first whenever idle: every request waited fallback_delay."""
    p = stack.mock("p", "--ttft", "600ms", *QUIET)
    q = stack.mock("q", "--ttft", "20ms", *QUIET)
    deps = [deployment("g", p, model_info={"id": "p-dep"}), deployment("g", q, model_info={"id": "q-dep"})]
    gw = stack.gateway(make_config(deps, router_settings={"strategies": [
        "health", "latency", {"name": "staggered-hedge", "args": {"delay": "p95", "fallback_delay": "200ms"}}]}))
    client = gw.client()
    res = [_sync_call(client, False) for _ in range(10)]
    # after a couple of explorations the 20 ms deployment should go first
    slow = [round(t * 1000) for _, t, h in res[3:] if h["x-tailgate-attempts"] != "1" or t > 0.15]
    assert len(slow) <= 1, f"{len(slow)} of the last 7 requests went to the slow deployment first: {slow} ms"
