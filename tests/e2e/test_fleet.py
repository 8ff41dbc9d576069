"""Many replicas, one router (issue 18): three Tailgate replicas started by
tools/scripts/fleet.sh share state through a real redis-server. Health,
half-open probes, config revisions, and what happens when Redis dies or
stalls. Latency windows, hedge budgets and rpm limits: test_fleet_limits.py.
"""
from __future__ import annotations

import threading
import time

import httpx
import pytest

from conftest import USER_HI, deployment, needs_plugins, wait_for
from fleet_util import Fleet, fleet_config

pytestmark = needs_plugins("health", "simple-shuffle")


def chat(replica, model="g"):
    return replica.client().chat.completions.create(model=model, messages=USER_HI)


@pytest.fixture
def health_fleet(stack, tmp_path):
    bad = stack.mock("bad", "--fail-rate", "1", "--fail-status", "500", "--ttft", "5ms", "--chunks", "2")
    good = stack.mock("good", "--ttft", "5ms", "--chunks", "2")
    cfg = fleet_config(
        [deployment("g", bad, model_info={"id": "bad"}), deployment("g", good, model_info={"id": "good"})],
        router_settings={"allowed_fails": 0, "cooldown_time": "3s", "num_retries": 1})
    f = Fleet(cfg, tmp_path)
    yield f, bad, good
    f.close()


def test_a_cooldown_on_one_replica_reaches_the_others_within_a_second(health_fleet):
    f, bad, good = health_fleet
    a, b, c = f[0], f[1], f[2]
    # Through A only, until A has seen `bad` fail (allowed_fails 0: the first failure cools).
    wait_for(lambda: chat(a) and a.health("bad") == "cooling", timeout=10, interval=0.01, what="A cools bad")
    t_cool = time.monotonic()
    for r in (b, c):
        wait_for(lambda: r.health("bad") == "cooling", timeout=2, interval=0.01, what=f"{r.name} cools bad")
    spread = time.monotonic() - t_cool
    assert spread < 1.0, f"B and C cooled bad {spread:.3f}s after A"
    # B and C no longer send it anything, and their clients see no error.
    before = bad.received()
    for r in (b, c):
        for _ in range(10):
            assert chat(r).choices[0].message.content.startswith("good-")
    assert bad.received() == before
    assert "on another replica" in b.log_text()


def test_one_probe_for_the_fleet_and_recovery_seen_by_all(health_fleet):
    f, bad, good = health_fleet
    a = f[0]
    wait_for(lambda: chat(a) and a.health("bad") == "cooling", timeout=10, interval=0.01, what="A cools bad")
    for r in f.replicas:
        wait_for(lambda: r.health("bad") == "cooling", timeout=2, what=f"{r.name} cools bad")
    # It recovers, slowly: the probe takes 400 ms, while every replica keeps sending.
    bad.reset()  # counters and log (and the startup settings: changed after)
    bad.configure(fail_rate=0, ttft_ms=400)
    stop = threading.Event()
    errors: list[str] = []

    def load(r):
        while not stop.is_set():
            try:
                chat(r)
            except Exception as e:  # noqa: BLE001 - any client error fails the test
                errors.append(f"{r.name}: {e!r}")

    threads = [threading.Thread(target=load, args=(r,)) for r in f.replicas for _ in range(2)]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: all(r.health("bad") == "healthy" for r in f.replicas), timeout=10, interval=0.05,
                 what="every replica sees bad recovered")
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors, errors[:3]
    reqs = sorted(bad.api_requests(), key=lambda r: r["received_ms"])
    assert reqs, "no probe reached bad"
    probe = reqs[0]
    during = [r for r in reqs if r["received_ms"] < probe["finished_ms"]]
    assert len(during) == 1, f"{len(during)} requests reached bad while its probe ran (one probe per fleet)"
    probers = [r.name for r in f.replicas if "healthy: probe succeeded" in r.log_text()]
    assert len(probers) == 1, probers
    others = [r for r in f.replicas if r.name not in probers]
    assert all("another replica's probe succeeded" in r.log_text() for r in others)


def _models(r) -> set[str]:
    return {m["id"] for m in r.http.get("/v1/models", headers={"Authorization": "Bearer sk-fleet-master"}).json()["data"]}


def test_admin_changes_reach_every_replica_and_a_late_one_catches_up(stack, tmp_path):
    m = stack.mock("m", "--ttft", "1ms", "--chunks", "2")
    f = Fleet(fleet_config([deployment("g", m, model_info={"id": "g-1"})]), tmp_path)
    try:
        a, b, c = f[0], f[1], f[2]
        t0 = time.monotonic()
        r = a.admin("POST", "/admin/deployments", {"model_name": "g2", "litellm_params": {
            "model": "openai/x", "api_base": m.base_url, "api_key": "sk-SECRET-g2"}})
        assert r.status_code == 201, r.text
        rev = r.json()["revision"]
        for rep in (b, c):
            wait_for(lambda: "g2" in _models(rep), timeout=2, interval=0.01, what=f"{rep.name} has g2")
        assert time.monotonic() - t0 < 1.0
        assert chat(b, "g2").choices[0].message.content.startswith("m-")
        # A second change on another replica gets the next revision, applied everywhere in order.
        r2 = b.admin("PATCH", "/admin/router/settings", {"num_retries": 4})
        assert r2.status_code == 200, r2.text
        assert r2.json()["revision"] > rev
        for rep in (a, c):
            wait_for(lambda: rep.admin("GET", "/admin/router/settings").json()["num_retries"] == 4,
                     timeout=2, interval=0.02, what=f"{rep.name} has num_retries 4")
        # Started later: catches up from the fleet's log.
        d = f.start_replica("replica-late")
        wait_for(lambda: "g2" in _models(d), timeout=3, interval=0.02, what="the late replica has g2")
        assert d.admin("GET", "/admin/router/settings").json()["num_retries"] == 4
        assert d.admin("GET", "/admin/config").json()["revision"] == r2.json()["revision"]
        # The deployment's key went through Redis as the admin gave it, never into a log line.
        for rep in f.replicas:
            assert "sk-SECRET-g2" not in rep.log_text()
    finally:
        f.close()


def _load(replicas, stop, latencies, errors):
    def run(r):
        cl = r.client()
        while not stop.is_set():
            t = time.monotonic()
            try:
                cl.chat.completions.create(model="g", messages=USER_HI)
                latencies.append(time.monotonic() - t)
            except Exception as e:  # noqa: BLE001
                errors.append(f"{r.name}: {e!r}")
    threads = [threading.Thread(target=run, args=(r,)) for r in replicas]
    for t in threads:
        t.start()
    return threads


def test_redis_killed_mid_load_and_restarted(stack, tmp_path):
    m = stack.mock("m", "--ttft", "2ms", "--chunks", "2")
    f = Fleet(fleet_config([deployment("g", m, model_info={"id": "g-1"})],
                           shared_state={"command_timeout": "300ms"}), tmp_path)
    try:
        a, b = f[0], f[1]
        r = a.admin("POST", "/admin/deployments", {"model_name": "before", "litellm_params": {
            "model": "openai/x", "api_base": m.base_url}})
        assert r.status_code == 201
        rev_before = r.json()["revision"]
        stop, lat, errors = threading.Event(), [], []
        threads = _load(f.replicas, stop, lat, errors)
        try:
            time.sleep(0.5)
            f.kill_redis()
            for rep in f.replicas:
                wait_for(lambda: rep.metric("tailgate_shared_state_up") == 0, timeout=3, what=f"{rep.name} down")
            # Alone, an admin change is refused (it would reach one replica only).
            refused = a.admin("POST", "/admin/deployments", {"model_name": "x", "litellm_params": {
                "model": "openai/x", "api_base": m.base_url}})
            assert refused.status_code == 503, refused.text
            assert refused.json()["error"]["message"].startswith("shared state (Redis) is unavailable")
            time.sleep(0.5)
            f.restart_redis()
            f.wait_all_up(timeout=10)
        finally:
            stop.set()
            for t in threads:
                t.join()
        assert not errors, errors[:3]
        assert len(lat) > 50
        # Resynchronised: the empty Redis got the revision log back, and the next
        # change is numbered after it and reaches the others.
        wait_for(lambda: int(f.redis("GET", "tailgate:rev:seq") or 0) >= rev_before, timeout=3,
                 what="rev:seq re-seeded")
        assert f.redis("ZRANGEBYSCORE", "tailgate:revisions", str(rev_before), str(rev_before))
        r3 = b.admin("POST", "/admin/deployments", {"model_name": "after", "litellm_params": {
            "model": "openai/x", "api_base": m.base_url}})
        assert r3.status_code == 201, r3.text
        assert r3.json()["revision"] > rev_before
        wait_for(lambda: "after" in _models(a), timeout=2, what="A has the change made after the restart")
        for rep in f.replicas:
            assert rep.log_text().count("shared state: Redis at") == 1, "the outage is logged once per replica"
    finally:
        f.close()


def test_a_paused_redis_slows_no_request(stack, tmp_path):
    m = stack.mock("m", "--ttft", "20ms", "--chunks", "2")
    f = Fleet(fleet_config([deployment("g", m, model_info={"id": "g-1"})],
                           shared_state={"command_timeout": "500ms"}), tmp_path, replicas=2)
    try:
        def measure(seconds):
            stop, lat, errors = threading.Event(), [], []
            threads = _load(f.replicas, stop, lat, errors)
            time.sleep(seconds)
            stop.set()
            for t in threads:
                t.join()
            assert not errors, errors[:3]
            return sorted(lat)

        base = measure(1.0)
        f.pause_redis()
        try:
            paused = measure(2.0)  # covers the reply deadline, the drop and reconnect attempts
            assert all(r.metric("tailgate_shared_state_up") == 0 for r in f.replicas)
        finally:
            f.resume_redis()
        f.wait_all_up(timeout=10)
        # Nothing waits for Redis: a request that did would take the 500 ms reply
        # deadline (or hang); the slowest one while Redis was stalled is far below,
        # and the typical one is as fast as before.
        assert paused[-1] < 0.4, (base[-1], paused[-1])
        assert paused[len(paused) // 2] < base[len(base) // 2] * 2 + 0.02, (base[len(base) // 2], paused[len(paused) // 2])
    finally:
        f.close()
