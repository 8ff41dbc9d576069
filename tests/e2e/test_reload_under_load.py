"""Hot reload under load (issue 16): a steady non-stream mix plus 20 long streams
while the config file is reloaded 20 times, alternating deployments and chains,
with one invalid file in the middle. Zero client errors, every stream complete,
an added deployment serves within 1 s, a removed one gets nothing once its
in-flight requests ended, the invalid file changes nothing. Bounded: ~20 s."""
from __future__ import annotations

import json
import os
import shutil
import threading
import time

import httpx

from conftest import BUILD_DIR, USER_HI, deployment, make_config, needs_plugins, wait_for

MASTER = "sk-master-reload-load-1234"
H = {"Authorization": f"Bearer {MASTER}"}
STREAMS = 20
RELOADS = 20


def config(fast_mocks, slow, strategy):
    deps = [deployment("fast", m, model_info={"id": m.name}) for m in fast_mocks]
    deps.append(deployment("slow", slow, model_info={"id": "slow"}))
    return make_config(deps, router_settings={"routing_strategy": strategy},
                       general_settings={"master_key": MASTER})


@needs_plugins("latency", "health", "simple-shuffle")
def test_reload_under_load(stack):
    a = stack.mock("fA", "--ttft", "1ms", "--chunks", "2")
    b = stack.mock("fB", "--ttft", "1ms", "--chunks", "2")
    c = stack.mock("fC", "--ttft", "1ms", "--chunks", "2")
    slow = stack.mock("slow", "--ttft", "5ms", "--chunks", "40", "--chunk-delay", "100ms")  # ~4 s streams
    configs = [config([a, b], slow, "simple-shuffle"), config([a, c], slow, "latency-based-routing")]
    gw = stack.gateway(configs[0])
    path = gw.config_path

    stop = threading.Event()
    errors: list[str] = []
    done = {"requests": 0, "streams": 0}
    lock = threading.Lock()

    def non_stream_worker():
        with httpx.Client(base_url=gw.url, headers=H, timeout=30) as http:
            while not stop.is_set():
                r = http.post("/v1/chat/completions", json={"model": "fast", "messages": USER_HI})
                with lock:
                    if r.status_code != 200:
                        errors.append(f"{r.status_code} {r.text[:200]}")
                    done["requests"] += 1

    def stream_worker():
        client = gw.client(api_key=MASTER, timeout=60)
        while not stop.is_set():
            try:
                chunks = [ch for ch in client.chat.completions.create(model="slow", messages=USER_HI, stream=True)]
                text = "".join((ch.choices[0].delta.content or "") for ch in chunks if ch.choices)
                finished = [ch.choices[0].finish_reason for ch in chunks if ch.choices and ch.choices[0].finish_reason]
                with lock:
                    if text.count("slow-") != 40 or finished != ["stop"]:
                        errors.append(f"incomplete stream: {len(text.split())} words, finish {finished}")
                    done["streams"] += 1
            except Exception as e:  # noqa: BLE001 - every failure is a test failure
                with lock:
                    errors.append(f"stream: {e!r}")

    threads = [threading.Thread(target=non_stream_worker) for _ in range(6)]
    threads += [threading.Thread(target=stream_worker) for _ in range(STREAMS)]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: done["requests"] > 50, timeout=10, what="load running")
        t0, n0 = time.monotonic(), done["requests"]
        for i in range(1, RELOADS + 1):
            if i == RELOADS // 2:  # an invalid file: refused, nothing changes
                path.write_text(json.dumps(configs[i % 2]).replace('"routing_strategy"', '"routing_strategy": 7, "x"'))
                r = httpx.post(gw.url + "/admin/reload", headers=H, timeout=30)
                assert r.status_code == 400, r.text
                assert str(path) in r.json()["error"]["message"]
            cfg = configs[i % 2]
            path.write_text(json.dumps(cfg))
            added = c if i % 2 else b
            removed = b if i % 2 else c
            before = added.received()
            r = httpx.post(gw.url + "/admin/reload", headers=H, timeout=30)
            reloaded = time.monotonic()
            assert r.status_code == 200, r.text
            # The added deployment serves within 1 s.
            wait_for(lambda: added.received() > before, timeout=1.0, interval=0.01, what=f"{added.name} traffic")
            assert time.monotonic() - reloaded < 1.0
            # The removed one: nothing new once its in-flight requests (ms each) ended.
            time.sleep(0.2)
            settled = removed.received()
            time.sleep(0.3)
            assert removed.received() == settled, f"{removed.name} still receives after reload {i}"
        rps = (done["requests"] - n0) / (time.monotonic() - t0)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert not errors, errors[:10]
    assert done["streams"] >= STREAMS
    print(f"reload under load: {rps:.0f} non-stream requests/s, {done['streams']} streams, {RELOADS} reloads")
    assert rps > 100, f"only {rps:.0f} requests/s"
    status = httpx.get(gw.url + "/admin/status", headers=H).json()
    assert status["reloads_ok"] == RELOADS and status["reloads_failed"] == 1
    gw.assert_healthy()


SWAP_BUILDS = BUILD_DIR / "lib" / "tailgate" / "test-plugins"


def test_plugin_swap_under_load(stack, tmp_path):
    """A rebuilt plugin (same name, other behaviour) replaces the old file on disk:
    after a reload new requests run the new code, requests in flight finish on the
    old one, nothing fails."""
    first, last = SWAP_BUILDS / "swap-first" / "swap.so", SWAP_BUILDS / "swap-last" / "swap.so"
    assert first.exists() and last.exists(), "build the test-plugin-swap-* targets"
    plugins = tmp_path / "plugins"
    plugins.mkdir(mode=0o755)
    shutil.copy(first, plugins / "swap.so")
    a = stack.mock("swA", "--ttft", "1ms", "--chunks", "2")
    b = stack.mock("swB", "--ttft", "1ms", "--chunks", "2")
    slow = stack.mock("swS", "--ttft", "5ms", "--chunks", "20", "--chunk-delay", "100ms")
    cfg = make_config([deployment("fast", a), deployment("fast", b), deployment("slow", slow)],
                      router_settings={"strategies": ["swap"], "plugin_paths": [str(plugins)]},
                      general_settings={"master_key": MASTER})
    del cfg["router_settings"]["routing_strategy"]
    gw = stack.gateway(cfg)

    stop = threading.Event()
    errors: list[str] = []

    def non_stream():
        with httpx.Client(base_url=gw.url, headers=H, timeout=30) as http:
            while not stop.is_set():
                r = http.post("/v1/chat/completions", json={"model": "fast", "messages": USER_HI})
                if r.status_code != 200:
                    errors.append(f"{r.status_code} {r.text[:200]}")

    def stream():
        client = gw.client(api_key=MASTER, timeout=60)
        chunks = list(client.chat.completions.create(model="slow", messages=USER_HI, stream=True))
        text = "".join((ch.choices[0].delta.content or "") for ch in chunks if ch.choices)
        if text.count("swS-") != 20:
            errors.append(f"incomplete stream: {text!r}")

    threads = [threading.Thread(target=non_stream) for _ in range(4)]
    threads += [threading.Thread(target=stream) for _ in range(10)]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: a.received() > 50, timeout=10, what="load on swA")
        assert b.received() == 0, "the first build sends everything to the first deployment"
        staged = plugins / "swap.so.new"
        shutil.copy(last, staged)
        os.replace(staged, plugins / "swap.so")  # a new file at the old path, as an install does
        r = httpx.post(gw.url + "/admin/reload", headers=H, timeout=30)
        assert r.status_code == 200, r.text
        wait_for(lambda: b.received() > 0, timeout=1.0, interval=0.01, what="the new build routing to swB")
        time.sleep(0.2)
        settled = a.received()
        time.sleep(0.3)
        assert a.received() == settled, "the old build still routes after the reload"
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert not errors, errors[:10]
    gw.assert_healthy()
