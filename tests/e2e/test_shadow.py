"""shadow_sample_rate: a hedged request's losing primary keeps running, off the
client's path, so /stats/strategies can report what the primary alone would
have given (its censored latency becomes a true one) while the client still
gets the hedge's faster answer."""
from __future__ import annotations

import time

import httpx

from conftest import USER_HI, deployment, make_config, needs_plugins, wait_for

QUIET = ("--chunks", "3", "--chunk-delay", "1ms")


@needs_plugins("staggered-hedge")
def test_shadow_sampled_primaries_give_the_true_counterfactual(stack):
    n = 8
    p = stack.mock("p", "--ttft", "300ms", *QUIET)
    q = stack.mock("q", "--ttft", "20ms", *QUIET)
    cfg = make_config(
        [deployment("g", p, model_info={"id": "p-dep"}), deployment("g", q, model_info={"id": "q-dep"})],
        router_settings={"shadow_sample_rate": 1.0, "strategies": [{"name": "staggered-hedge", "args": {
            "delay": "100ms", "max_extra_load": 1, "min_hedges_per_second": 100}}]})
    gw = stack.gateway(cfg)
    client = gw.client()
    for stream in (False, True):
        for _ in range(n // 2):
            t0 = time.monotonic()
            if stream:
                text = "".join(c.choices[0].delta.content or "" for c in client.chat.completions.create(
                    model="g", messages=USER_HI, stream=True) if c.choices)
            else:
                text = client.chat.completions.create(model="g", messages=USER_HI).choices[0].message.content
            took = time.monotonic() - t0
            assert text.startswith("q-"), text          # the hedge answered
            assert took < 0.28, took                      # without waiting for the primary

    def done():
        d = httpx.get(gw.url + "/stats/strategies", timeout=10).json()
        prim = d["windows"]["5m"]["model_groups"]["g"]["primary_on_hedged_or_raced"]
        return prim if prim["shadow_sampled"] == n else None
    prim = wait_for(done, timeout=5, what="every shadowed primary finished")
    # The primaries ran to completion: the mock saw no disconnects.
    assert p.stats()["completed"] == n and p.stats()["cancelled_by_client"] == 0, p.stats()
    lat = prim["shadow_primary_latency_ms"]
    assert lat["count"] == n
    assert 240 <= lat["p50"] <= 420, lat                  # ~300 ms, in ~26 % wide bins
    assert prim["censored"] == n                          # as seen by the client: the primary lost
    gw.assert_healthy()
