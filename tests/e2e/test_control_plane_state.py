"""Control plane (issue 16), what a reload keeps and what the admin API shows of
live state: plugin state carried by deployment identity (latency windows, the
hedge delay they give, cooldowns), Prometheus series that never go backwards
across generations, the hedge budget in the routing state, previews without
side effects, and general_settings applied live or reported as needing a restart.
Real binary, real mocks, httpx for the admin API, the openai SDK for traffic."""
from __future__ import annotations

import json
import re

import httpx
import openai
import pytest

from conftest import USER_HI, assert_openai_error_shape, deployment, make_config, needs_plugins, wait_for

MASTER = "sk-master-state-5678"
H = {"Authorization": f"Bearer {MASTER}"}


def admin(gw, method: str, path: str, body=None, headers=H) -> httpx.Response:
    r = gw.http.request(method, path, json=body, headers=headers)
    assert MASTER not in r.text
    return r


def state(gw) -> dict:
    r = admin(gw, "GET", "/admin/routing/state")
    assert r.status_code == 200, r.text
    return r.json()


def group_of(st: dict, name: str) -> dict:
    return next(g for g in st["groups"] if g["model_group"] == name)


def candidates(st: dict, name: str) -> dict:
    return {c["id"]: c for c in group_of(st, name)["candidates"]}


def reload_with(gw, cfg: dict) -> dict:
    gw.config_path.write_text(json.dumps(cfg))
    r = admin(gw, "POST", "/admin/reload")
    assert r.status_code == 200, r.text
    return r.json()


def chat(gw, model: str):
    return gw.client(api_key=MASTER).chat.completions.with_raw_response.create(model=model, messages=USER_HI)


CHAIN = [{"name": "health"},
         {"name": "latency", "args": {"min_samples": 3, "statistic": "p95"}},
         {"name": "staggered-hedge", "args": {"delay": "p95", "min_samples": 3, "min_delay": "1ms"}}]


def cp_config(a, b, x, first: str | None, last: str | None) -> dict:
    deps = []
    if first:  # listed first: removing it shifts every index after it
        deps.append(deployment("other", a, model_info={"id": first}))
    deps += [deployment("chat", a, model_info={"id": "fast"}),
             deployment("chat", b, model_info={"id": "slow"}),
             deployment("cool", x, model_info={"id": "broken"}),
             deployment("cool", a, model_info={"id": "steady"})]
    if last:
        deps.append(deployment("other2", b, model_info={"id": last}))
    return make_config(deps, router_settings={"strategies": CHAIN, "allowed_fails": 0, "cooldown_time": 120,
                                              "num_retries": 1},
                       general_settings={"master_key": MASTER})


@needs_plugins("health", "latency", "staggered-hedge")
def test_reload_keeps_latency_windows_hedge_delay_and_cooldowns_by_identity(stack):
    a = stack.mock("stA", "--ttft", "3ms", "--chunks", "2", "--chunk-delay", "1ms")
    b = stack.mock("stB", "--ttft", "40ms", "--chunks", "2", "--chunk-delay", "1ms")
    x = stack.mock("stX", "--ttft", "1ms", "--fail-rate", "1", "--fail-status", "500")
    gw = stack.gateway(cp_config(a, b, x, first="gone", last=None))

    for _ in range(20):  # explores both, then learns: "fast" first, its p95 the hedge delay
        assert chat(gw, "chat").status_code == 200
    wait_for(lambda: all(c["latency_total"] for c in candidates(state(gw), "chat").values()), what="both measured")
    for _ in range(20):  # the broken one fails once (the retry answers), then cools for 120 s
        chat(gw, "cool")
        if x.received():
            break
    assert x.received() == 1
    before = state(gw)
    chat_before, cool_before = candidates(before, "chat"), candidates(before, "cool")
    delay = group_of(before, "chat")["hedge_delay_ms"]
    assert [c["id"] for c in group_of(before, "chat")["candidates"]] == ["fast", "slow"]
    assert abs(delay - chat_before["fast"]["latency_total"]["p95_ms"]) <= 1, (delay, chat_before["fast"])
    assert cool_before["broken"]["health"] == "cooling" and cool_before["broken"]["cooldown_remaining_ms"] > 100_000

    # The reload removes the first deployment (every index shifts) and adds one at the end.
    out = reload_with(gw, cp_config(a, b, x, first=None, last="new"))
    assert out["deployments"] == 5
    for _ in range(5):  # each read is a dry run: the same answer every time
        after = state(gw)
        chat_after = candidates(after, "chat")
        assert [c["id"] for c in group_of(after, "chat")["candidates"]] == ["fast", "slow"]
        assert group_of(after, "chat")["hedge_delay_ms"] == delay
        for dep in ("fast", "slow"):
            assert chat_after[dep]["latency_total"] == chat_before[dep]["latency_total"], dep
        broken = candidates(after, "cool")["broken"]
        assert broken["health"] == "cooling", broken
        assert 60_000 < broken["cooldown_remaining_ms"] <= cool_before["broken"]["cooldown_remaining_ms"]
    assert candidates(after, "other2")["new"]["latency_total"] is None  # added: starts fresh

    # Still cooled: no request reaches the broken deployment.
    for _ in range(10):
        r = chat(gw, "cool")
        assert r.status_code == 200 and r.headers["x-tailgate-deployment"] == "steady"
    assert x.received() == 1
    # The windows themselves carried (not just the last summary): new samples add to the old ones.
    for _ in range(3):
        assert chat(gw, "chat").status_code == 200
    chat_now = candidates(state(gw), "chat")
    total = lambda cs: sum(c["latency_total"]["samples"] for c in cs.values())
    assert total(chat_now) >= total(chat_before) + 3
    for dep in ("fast", "slow"):
        assert chat_now[dep]["latency_total"]["samples"] >= chat_before[dep]["latency_total"]["samples"]
    assert "kept the windows of 4 of 5 deployment(s)" in gw.log_text()


# ---------------------------------------------------------------------------
# metrics across generations

def series(gw) -> dict[tuple, float]:
    """Every counter-like sample of /metrics (counters, histogram buckets, sums, counts) by (name, labels)."""
    r = admin(gw, "GET", "/metrics")
    assert r.status_code == 200, r.text
    counters = {line.split(" ", 3)[2] for line in r.text.splitlines()
                if line.startswith("# TYPE ") and line.split(" ")[3] in ("counter", "histogram")}
    out = {}
    for line in r.text.splitlines():
        if not line or line.startswith("#"):
            continue
        head, value = line.rsplit(" ", 1)
        name = head.split("{", 1)[0]
        family = re.sub(r"_(bucket|sum|count)$", "", name)
        if name in counters or family in counters:
            out[head] = float(value)
    return out


def assert_never_decreased(before: dict, after: dict, keep=lambda head: True):
    for head, v in before.items():
        if not keep(head):
            continue
        assert head in after, f"{head} disappeared"
        assert after[head] >= v, f"{head} went backwards: {v} -> {after[head]}"


def test_prometheus_counters_never_go_backwards_across_reloads(stack):
    a, b = stack.mock("mA", "--ttft", "1ms"), stack.mock("mB", "--ttft", "1ms")

    def cfg(with_gone: bool, with_new: bool) -> dict:
        deps = [deployment("other", b, model_info={"id": "gone"})] if with_gone else []
        deps += [deployment("m", a, model_info={"id": "m1"}), deployment("m", b, model_info={"id": "m2"})]
        if with_new:
            deps.append(deployment("m", a, model="openai/other-model", model_info={"id": "m3"}))
        return make_config(deps, router_settings={"fallbacks": [{"m": ["other"]}] if with_gone else []},
                           general_settings={"master_key": MASTER})

    gw = stack.gateway(cfg(with_gone=True, with_new=False))
    for model in ["m"] * 8 + ["other"] * 3:
        assert chat(gw, model).status_code == 200
    s0 = series(gw)
    assert s0['tailgate_attempts_total{model_group="m",deployment="m1",provider="openai",outcome="success"}'] + \
        s0['tailgate_attempts_total{model_group="m",deployment="m2",provider="openai",outcome="success"}'] == 8
    assert s0['tailgate_requests_total{model_group="m",status_class="2xx"}'] == 8

    reload_with(gw, cfg(with_gone=True, with_new=False))  # the same file: a new generation all the same
    s1 = series(gw)
    assert_never_decreased(s0, s1)
    traffic = lambda s: {h: v for h, v in s.items() if not h.startswith("tailgate_config_")}
    assert traffic(s1) == traffic(s0), "no traffic in between: every series exactly as before"

    for _ in range(4):
        assert chat(gw, "m").status_code == 200
    s2 = series(gw)
    assert_never_decreased(s1, s2)
    assert s2['tailgate_requests_total{model_group="m",status_class="2xx"}'] == 12

    # Changed: "gone" (listed first: every index shifts) and its group removed, "m3" added.
    reload_with(gw, cfg(with_gone=False, with_new=True))
    # A removed deployment's series go once no generation that has it runs any
    # more (its last requests ended; a connection keeps its last one a moment).
    s3 = wait_for(lambda: (s := series(gw)) and not any("gone" in head for head in s) and s,
                  what="the removed deployment's series gone")
    assert_never_decreased(s2, s3, keep=lambda head: "gone" not in head and '"other"' not in head)
    assert s3['tailgate_attempts_total{model_group="m",deployment="m3",provider="openai",outcome="success"}'] == 0

    # Re-added with the same identity: its counters continue where they stopped.
    gone_success = 'tailgate_attempts_total{model_group="other",deployment="gone",provider="openai",outcome="success"}'
    reload_with(gw, cfg(with_gone=True, with_new=True))
    s4 = series(gw)
    assert s4[gone_success] == s0[gone_success] == 3
    assert_never_decreased(s3, s4)


# ---------------------------------------------------------------------------
# routing state and previews

@needs_plugins("health", "usage", "staggered-hedge")
def test_previews_and_routing_state_reads_change_nothing(stack):
    p = stack.mock("pvP", "--ttft", "1ms", "--chunk-delay", "1ms")  # well under the hedge delay
    q = stack.mock("pvQ", "--ttft", "1ms", "--chunk-delay", "1ms", "--fail-rate", "1")
    chain = [{"name": "health"}, {"name": "usage"},
             {"name": "staggered-hedge", "args": {"delay": "50ms", "budget_window": "60s"}}]
    gw = stack.gateway(make_config(
        [deployment("g", p, model_info={"id": "p"}), deployment("solo", q, model_info={"id": "q"})],
        router_settings={"strategies": chain, "allowed_fails": 0, "cooldown_time": 1, "num_retries": 0,
                         "panic_routing": False},
        general_settings={"master_key": MASTER}))
    for _ in range(5):
        assert chat(gw, "g").status_code == 200
    with pytest.raises(openai.APIStatusError):
        chat(gw, "solo")  # q fails once: cooling for 1 s, then half-open (one probe at a time)
    q.configure(fail_rate=0)
    wait_for(lambda: candidates(state(gw), "solo")["q"]["health"] == "half_open", what="q half-open")

    before = state(gw)
    strategies = {s["name"]: s["state"] for s in before["strategies"]}
    assert strategies["health"] is None  # no state_json: shown as null
    assert before["budget_left"] == strategies["staggered-hedge"]["budget_left"] == 60  # 1/s floor x 60 s
    assert group_of(before, "g")["budget_left"] == 60 and group_of(before, "solo")["budget_left"] is None
    received = (p.received(), q.received())
    for _ in range(40):
        r = admin(gw, "POST", "/admin/routing/preview", {"model": "solo"})
        assert r.status_code == 200 and r.json()["plan"]["attempts"][0]["deployment"] == "q", r.text
        r = admin(gw, "POST", "/admin/routing/preview", {"model": "g", "stream": True})
        assert r.status_code == 200 and [x["launch"] for x in r.json()["plan"]["attempts"]] == ["at_start",
                                                                                              "after_delay"], r.text
        state(gw)
    after = state(gw)
    assert (p.received(), q.received()) == received, "a preview sends nothing"
    assert after["strategies"] == before["strategies"], "no request, hedge or usage counted"
    assert after["budget_left"] == before["budget_left"]
    # The probe is still free: the next real request is the one that probes (and heals) q.
    r = chat(gw, "solo")
    assert r.status_code == 200 and r.headers["x-tailgate-deployment"] == "q"
    assert candidates(state(gw), "solo")["q"]["health"] == "healthy"


# ---------------------------------------------------------------------------
# general_settings on reload

def test_general_settings_apply_live_or_say_they_need_a_restart(stack):
    a = stack.mock("gsA", "--ttft", "1ms")
    new_key = "sk-master-rotated-9999"
    base = make_config([deployment("chat", a, model_info={"id": "a1"})],
                       general_settings={"master_key": MASTER, "log_level": "info", "metrics_auth": False})
    gw = stack.gateway(base)
    assert gw.http.get("/metrics").status_code == 200
    reload_with(gw, base)
    assert " debug " not in gw.log_text()  # at info, the reload's debug lines are not written

    changed = json.loads(json.dumps(base))
    changed["general_settings"].update({"master_key": new_key, "metrics_auth": True, "log_level": "debug",
                                        "max_concurrent_requests": 1, "port": gw.port + 1, "max_threads": 7,
                                        "max_request_body_bytes": 1000})
    out = reload_with(gw, changed)
    assert new_key not in json.dumps(out)
    assert set(out["general_settings"]["applied"]) == {
        "general_settings.master_key", "general_settings.metrics_auth", "general_settings.log_level",
        "general_settings.max_concurrent_requests"}, out
    assert set(out["general_settings"]["requires_restart"]) == {
        "general_settings.port", "general_settings.max_threads", "general_settings.max_request_body_bytes"}, out
    assert "requires restart: general_settings.port" in out["warnings"]
    log = gw.log_text()
    for key in ("port", "max_threads", "max_request_body_bytes"):
        assert f"requires restart: general_settings.{key}" in log
    assert new_key not in log and MASTER not in log

    # Live: the rotated key (the old one no longer works), metrics behind it, debug logging.
    assert_openai_error_shape(admin(gw, "GET", "/admin/config"), 401)
    new_h = {"Authorization": f"Bearer {new_key}"}
    cfg = gw.http.get("/admin/config", headers=new_h).json()
    assert cfg["general_settings"]["master_key"] == "***" and cfg["general_settings"]["log_level"] == "debug"
    assert cfg["general_settings"]["port"] == base.get("general_settings", {}).get("port", 4000), \
        "a restart-only key keeps its running value"
    assert_openai_error_shape(gw.http.get("/metrics"), 401)
    assert gw.http.get("/metrics", headers=new_h).status_code == 200
    client = gw.client(api_key=new_key)
    assert client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "x" * 2000}])
    # The body limit stayed (a restart-only key): a 2 KB prompt still passed above.

    # Turning authentication off needs a restart: the key stays.
    off = json.loads(json.dumps(changed))
    del off["general_settings"]["master_key"]
    gw.config_path.write_text(json.dumps(off))
    r = gw.http.post("/admin/reload", headers=new_h)
    assert r.status_code == 200 and "general_settings.master_key" in r.json()["general_settings"]["requires_restart"]
    assert_openai_error_shape(gw.http.get("/admin/config"), 401)
    assert " debug reload: strategy 'simple-shuffle' starts fresh" in gw.log_text(), "log_level debug applied"
