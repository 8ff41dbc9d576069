"""GET /stats/strategies: per model group / deployment strategy statistics
over sliding windows (5 min, 1 h), JSON, behind the same auth rule as /metrics.

With a fixed 100 ms hedge in front of a slow primary (TTFT 300 ms) and a fast
secondary (TTFT 20 ms), every request is hedged, the hedge wins, and the
primary is cancelled as the loser: its latency is only a lower bound, so the
stats must count it as censored and report no latency for it.
"""
from __future__ import annotations

import statistics
import time

import httpx

from conftest import USER_HI, deployment, make_config, needs_plugins, wait_for

MASTER_KEY = "sk-master-stats-31"
QUIET = ("--chunks", "3", "--chunk-delay", "1ms")


def stats(gw, **headers) -> dict:
    r = httpx.get(gw.url + "/stats/strategies", headers=headers, timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json"), r.headers
    return r.json()


@needs_plugins("staggered-hedge", "health")
def test_hedged_requests_censored_primary(stack):
    n = 20
    p = stack.mock("p", "--ttft", "300ms", *QUIET)
    q = stack.mock("q", "--ttft", "20ms", *QUIET)
    cfg = make_config(
        [deployment("g", p, model_info={"id": "p-dep"}), deployment("g", q, model_info={"id": "q-dep"})],
        router_settings={"strategies": ["health", {"name": "staggered-hedge", "args": {
            "delay": "100ms", "max_extra_load": 1, "min_hedges_per_second": 100}}]})
    gw = stack.gateway(cfg)
    client = gw.client()
    totals, ttfts = [], []
    for _ in range(n):
        t0 = time.monotonic()
        first = None
        for c in client.chat.completions.create(model="g", messages=USER_HI, stream=True):
            if first is None and c.choices and c.choices[0].delta.content:
                first = time.monotonic() - t0
        totals.append((time.monotonic() - t0) * 1000)
        ttfts.append(first * 1000)

    doc = wait_for(lambda: (lambda d: d if d["windows"]["5m"]["model_groups"]["g"]["requests"] == n else None)(
        stats(gw)), timeout=5, what=f"{n} requests in the stats")
    for window in ("5m", "1h"):
        g = doc["windows"][window]["model_groups"]["g"]
        assert g["requests"] == n, g
        h = g["hedging"]
        assert h["hedged"] == n and abs(h["trigger_rate"] - 1) < 1e-9, h
        assert h["hedge_wins"] == n and abs(h["win_rate"] - 1) < 1e-9, h
        assert g["wasted_attempts"] == n and g["extra_attempts"] == n and abs(g["extra_load"] - 1) < 1e-9, g
        prim = g["primary_on_hedged_or_raced"]
        assert prim["requests"] == n and prim["censored"] == n and prim["uncensored"] == 0, prim
        # The primary's latency is unknown: nothing is invented for it.
        assert prim["uncensored_latency_ms"] == {"count": 0, "p50": None, "p95": None, "p99": None}, prim
        assert prim["client_latency_ms"]["count"] == n
        # Client-seen latency: ~100 ms delay + 20 ms TTFT; bins are ~26 % wide.
        measured = statistics.median(totals)
        reported = g["latency_ms"]["p50"]
        assert abs(reported - measured) <= 0.35 * measured + 30, (reported, measured, totals)
        assert abs(g["ttft_ms"]["p50"] - statistics.median(ttfts)) <= 0.35 * statistics.median(ttfts) + 30, g
        assert 80 <= reported <= 400, reported
        deps = {d["deployment"]: d for d in doc["windows"][window]["deployments"]}
        assert deps["p-dep"]["attempts"] == n and deps["p-dep"]["success_rate"] == 0, deps
        assert deps["p-dep"]["total_ms"]["count"] == 0  # lower bounds never enter it
        assert deps["q-dep"]["attempts"] == n and deps["q-dep"]["success_rate"] == 1, deps
        assert deps["q-dep"]["ttft_ms"]["count"] == n
        assert deps["q-dep"]["ttft_ms"]["p50"] < 100, deps["q-dep"]
    gw.assert_healthy()


def test_stats_auth_and_switch(stack):
    m = stack.mock("m", "--ttft", "2ms", *QUIET)
    dep = [deployment("g", m)]
    locked = stack.gateway(make_config(dep, general_settings={"master_key": MASTER_KEY, "metrics_auth": True}))
    assert httpx.get(locked.url + "/stats/strategies").status_code == 401
    assert httpx.get(locked.url + "/stats/strategies", headers={"Authorization": "Bearer wrong"}).status_code == 401
    d = stats(locked, Authorization=f"Bearer {MASTER_KEY}")
    assert d["windows"]["5m"]["model_groups"]["g"]["requests"] == 0
    assert d["windows"]["1h"]["seconds"] == 3600
    assert httpx.post(locked.url + "/stats/strategies",
                      headers={"Authorization": f"Bearer {MASTER_KEY}"}).status_code == 405

    # metrics_auth off: /metrics is open, /stats/* still need the master key (an admin surface).
    open_ = stack.gateway(make_config(dep, general_settings={"master_key": MASTER_KEY}))
    assert httpx.get(open_.url + "/stats/strategies").status_code == 401
    assert httpx.get(open_.url + "/metrics").status_code == 200
    open_.client(api_key=MASTER_KEY).chat.completions.create(model="g", messages=USER_HI)
    g = wait_for(lambda: (lambda g: g if g["requests"] == 1 else None)(
        stats(open_, Authorization=f"Bearer {MASTER_KEY}")["windows"]["5m"]["model_groups"]["g"]), timeout=5,
        what="one request")
    assert g["hedging"]["hedged"] == 0 and g["hedging"]["trigger_rate"] == 0 and g["hedging"]["win_rate"] is None

    off = stack.gateway(make_config(dep, general_settings={"metrics": False}))
    assert httpx.get(off.url + "/stats/strategies").status_code == 404
