"""Many replicas, one router (issue 18): what strategies learn and spend is
the fleet's. Latency learned on one replica sets the hedge delay of another;
the hedge budget's extra-load ratio holds for the fleet; rpm holds for the
fleet. Three replicas from tools/scripts/fleet.sh and a real redis-server.
"""
from __future__ import annotations

import threading
import time

import openai
import pytest

from conftest import USER_HI, deployment, needs_plugins, wait_for
from fleet_util import Fleet, fleet_config


def _hedge_plan(r, model="g"):
    resp = r.admin("POST", "/admin/routing/preview", {"model": model})
    assert resp.status_code == 200, resp.text
    plan = resp.json()["plan"]
    delays = [a["delay_ms"] for a in plan["attempts"] if a["launch"] == "after_delay"]
    return (delays[0] if delays else None), plan["note"]


@needs_plugins("latency", "cost", "staggered-hedge")
def test_a_hedge_delay_learned_on_one_replica_is_used_by_another(stack, tmp_path):
    a_mock = stack.mock("a", "--ttft", "150ms", "--chunks", "2", "--chunk-delay", "1ms")
    b_mock = stack.mock("b", "--ttft", "150ms", "--chunks", "2", "--chunk-delay", "1ms")
    # `latency` keeps the windows the hedge delay is read from; `cost` after it makes `a` the
    # primary on both replicas, since the delay is the primary's p95 and two equal mocks ranked by
    # latency alone split A's traffic so that B's primary could have too few samples.
    cfg = fleet_config(
        [deployment("g", a_mock, model_info={"id": "a"}, input_cost_per_token=1e-7, output_cost_per_token=1e-7),
         deployment("g", b_mock, model_info={"id": "b"}, input_cost_per_token=1e-5, output_cost_per_token=1e-5)],
        router_settings={"strategies": ["latency", "cost", {"name": "staggered-hedge", "args": {
            "delay": "p95", "min_samples": 10, "fallback_delay": "5s", "max_delay": "10s"}}]})
    f = Fleet(cfg, tmp_path, replicas=2)
    try:
        a, b = f[0], f[1]
        delay, note = _hedge_plan(b)
        assert delay == 5000 and "fallback" in note, (delay, note)  # nothing learned yet
        cl = a.client()
        for _ in range(24):  # traffic on A only
            cl.chat.completions.create(model="g", messages=USER_HI)

        def learned():
            d, n = _hedge_plan(b)
            return (d, n) if d is not None and d < 1000 else None
        delay, note = wait_for(learned, timeout=3, interval=0.05, what="B's hedge delay from A's samples")
        assert "p95" in note and "cost: a" in note, note
        assert 140 <= delay <= 600, (delay, note)  # the mocks' ~150 ms, as A measured it
        assert b.metric("tailgate_attempts_total") == 0, "B learned it without sending anything"
    finally:
        f.close()


@needs_plugins("staggered-hedge")
def test_the_hedge_budget_holds_for_the_fleet(stack, tmp_path):
    stall = stack.mock("stall", "--stall")
    fast = stack.mock("fast", "--ttft", "2ms", "--chunks", "2")
    load, floor_per_s, window_s = 0.05, 0.3, 10
    cfg = fleet_config(
        [deployment("g", stall, model_info={"id": "stall"}, timeout=0.5),
         deployment("g", fast, model_info={"id": "fast"})],
        router_settings={"strategies": [{"name": "staggered-hedge", "args": {
            "delay": "30ms", "max_attempts": 2, "max_extra_load": load,
            "min_hedges_per_second": floor_per_s, "budget_window": f"{window_s}s"}}]})
    f = Fleet(cfg, tmp_path)
    try:
        total, errors = [0], []
        lock = threading.Lock()
        deadline = time.monotonic() + 12
        target = 120

        def run(r):
            cl = r.client()
            while time.monotonic() < deadline:
                with lock:
                    if total[0] >= target:
                        return
                    total[0] += 1
                try:
                    cl.chat.completions.create(model="g", messages=USER_HI)
                except openai.APIStatusError as e:
                    if e.status_code != 504:  # an unhedged request times out on the stalled primary
                        errors.append(repr(e))
                except Exception as e:  # noqa: BLE001
                    errors.append(repr(e))

        threads = [threading.Thread(target=run, args=(r,)) for r in f.replicas for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors[:3]
        n = total[0]
        assert n >= 60, f"only {n} requests in the time given"
        hedges = sum(r.metric("tailgate_hedges_launched_total") for r in f.replicas)
        budget = load * n + floor_per_s * window_s
        per_replica = len(f.replicas) * (load * n / len(f.replicas) + floor_per_s * window_s)
        assert hedges >= 1
        # The fleet's budget, plus a little for what replicas admit within one sync
        # interval of each other; budgets counted per replica would allow `per_replica`.
        assert hedges <= budget + 2 < per_replica, (hedges, budget, per_replica, n)
    finally:
        f.close()


@needs_plugins("usage")
def test_rpm_is_counted_across_the_fleet(stack, tmp_path):
    """rpm: 60 behind three replicas, strictly: quota leases (README, "Running
    a fleet") admit a request only against the replica's allowance that Redis
    granted, so no more than 60 reach the deployment in the minute, and about
    60 do (what replicas hold unused is given back or used)."""
    m = stack.mock("m", "--ttft", "1ms", "--chunks", "2")
    cfg = fleet_config([deployment("g", m, model_info={"id": "limited"}, rpm=60)],
                       router_settings={"strategies": ["usage"]})
    f = Fleet(cfg, tmp_path)
    try:
        served, limited, errors = [0], [0], []
        rate_s, total = 48.0, 120  # 120 requests over 2.5 s, round robin over the replicas
        t0 = time.monotonic()
        for i in range(total):
            time.sleep(max(0.0, t0 + i / rate_s - time.monotonic()))
            r = f[i % 3]
            try:
                r.client().chat.completions.create(model="g", messages=USER_HI)
                served[0] += 1
            except openai.RateLimitError as e:
                assert e.response.headers.get("retry-after"), e.response.headers
                limited[0] += 1
            except Exception as e:  # noqa: BLE001
                errors.append(repr(e))
        assert not errors, errors[:3]
        got = m.received()
        assert got == served[0]
        assert got <= 60, f"{got} requests reached the rpm-60 deployment within {time.monotonic() - t0:.1f} s"
        assert got >= 50, f"only {got} of the 60 allowed got through"
        assert limited[0] == total - got
        # Every replica admitted against leases Redis granted (not only alone).
        for r in f.replicas:
            assert r.metric("tailgate_shared_state_quota_answers_total", answer="granted") > 0, r.name
            assert r.metric("tailgate_shared_state_quota_answers_total", answer="exhausted") > 0, r.name
        members = f.redis("ZRANGE", "tailgate:quota:rpm:limited", "0", "-1")
        assert members and sum(int(x.rsplit(":", 1)[1]) for x in members) <= 60, members
    finally:
        f.close()


@needs_plugins("usage")
def test_redis_killed_under_rpm_limits_leaves_no_client_error(stack, tmp_path):
    """Quota leases with Redis killed mid-run and restarted empty: requests go
    on, counted by each replica alone (said in the log and the metrics), and the
    usage of the outage is told to the new Redis on return."""
    m = stack.mock("m", "--ttft", "2ms", "--chunks", "2")
    cfg = fleet_config([deployment("g", m, model_info={"id": "big"}, rpm=100000)],
                       router_settings={"strategies": ["usage"]}, shared_state={"command_timeout": "300ms"})
    f = Fleet(cfg, tmp_path)
    try:
        stop, errors, done = threading.Event(), [], [0]
        lock = threading.Lock()

        def run(r):
            cl = r.client()
            while not stop.is_set():
                try:
                    cl.chat.completions.create(model="g", messages=USER_HI)
                    with lock:
                        done[0] += 1
                except Exception as e:  # noqa: BLE001 - any client error fails the test
                    errors.append(f"{r.name}: {e!r}")

        threads = [threading.Thread(target=run, args=(r,)) for r in f.replicas]
        for t in threads:
            t.start()
        try:
            wait_for(lambda: all(r.metric("tailgate_shared_state_quota_answers_total", answer="granted") > 0
                                 for r in f.replicas), timeout=5, what="every replica admits against leases")
            f.kill_redis()
            for r in f.replicas:
                wait_for(lambda: r.metric("tailgate_shared_state_up") == 0, timeout=3, what=f"{r.name} down")
            local0 = {r.name: r.metric("tailgate_shared_state_quota_answers_total", answer="local") for r in f.replicas}
            n0 = done[0]
            wait_for(lambda: done[0] >= n0 + 30, timeout=10, what="requests served while Redis is down")
            for r in f.replicas:
                assert r.metric("tailgate_shared_state_quota_answers_total", answer="local") > local0[r.name], r.name
            f.restart_redis()
            f.wait_all_up(timeout=10)
            # Reconciled: the outage's usage reached the new Redis as debt.
            wait_for(lambda: any(":d:" in x for x in (f.redis("ZRANGE", "tailgate:quota:rpm:big", "0", "-1") or [])),
                     timeout=3, what="the outage's usage told to the restarted Redis")
            granted = {r.name: r.metric("tailgate_shared_state_quota_answers_total", answer="granted") for r in f.replicas}
            for r in f.replicas:
                wait_for(lambda: r.metric("tailgate_shared_state_quota_answers_total", answer="granted") > granted[r.name],
                         timeout=5, what=f"{r.name} admits against leases again")
        finally:
            stop.set()
            for t in threads:
                t.join()
        assert not errors, errors[:3]
        for r in f.replicas:
            assert r.log_text().count("rpm/tpm counted by this replica alone") == 1, "said once per outage"
    finally:
        f.close()
