"""Routing and health (issue 3): lowest-latency routing, cost-based routing and
the health strategy's cooldowns, probes and Retry-After, observed at the mocks.

Every test starts its own gateway and mocks (`stack`), with short latencies and
cooldowns; waits are polls with deadlines, never fixed sleeps that hope.
"""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest

from conftest import USER_HI, assert_openai_error_shape, deployment, make_config, mock_words, wait_for

FAST = ("--chunks", "1", "--chunk-delay", "1ms")  # non-stream total ~= TTFT


def ask(client: openai.OpenAI, model: str, stream: bool = False, **kw):
    """One chat call; returns (text, response headers)."""
    raw = client.chat.completions.with_raw_response.create(model=model, messages=USER_HI, stream=stream, **kw)
    resp = raw.parse()
    if stream:
        text = "".join(c.choices[0].delta.content or "" for c in resp if c.choices)
    else:
        text = resp.choices[0].message.content
    return text, raw.headers


def fan_out(fn, n: int, workers: int = 16) -> list:
    with ThreadPoolExecutor(workers) as ex:
        return list(ex.map(lambda i: fn(i), range(n)))


def counts(*mocks) -> list[int]:
    return [m.received() for m in mocks]


class Load:
    """Background traffic: `workers` threads send requests until stopped and
    record who answered (x-tailgate-deployment) or the exception."""

    def __init__(self, client: openai.OpenAI, model: str, workers: int = 4, pause: float = 0.01, **kw):
        self.client, self.model, self.kw, self.pause = client, model, kw, pause
        self.stop_ev = threading.Event()
        self.lock = threading.Lock()
        self.served: list[tuple[float, str]] = []  # (monotonic time, deployment id)
        self.errors: list[BaseException] = []
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(workers)]

    def _run(self):
        while not self.stop_ev.is_set():
            try:
                _, h = ask(self.client, self.model, **self.kw)
                with self.lock:
                    self.served.append((time.monotonic(), h.get("x-tailgate-deployment")))
            except Exception as e:  # recorded, asserted by the test
                with self.lock:
                    self.errors.append(e)
            self.stop_ev.wait(self.pause)

    def done_since(self, t: float) -> int:
        with self.lock:
            return sum(1 for ts, _ in self.served if ts >= t)

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop_ev.set()
        for t in self.threads:
            t.join(timeout=10)


# ---------------------------------------------------------------------------
# latency
# ---------------------------------------------------------------------------

def test_latency_routes_to_fastest_after_warmup(stack):
    fast = stack.mock("fast", "--ttft", "50ms", *FAST)
    mid = stack.mock("mid", "--ttft", "150ms", *FAST)
    slow = stack.mock("slow", "--ttft", "400ms", *FAST)
    gw = stack.gateway(make_config(
        [deployment("g", m, model_info={"id": m.name}) for m in (fast, mid, slow)],
        router_settings={"routing_strategy": "latency-based-routing", "routing_strategy_args": {"ttl": "30s"}}))
    client = gw.client()

    # Warm-up: cold deployments are explored first, so a few sequential
    # requests reach every one of them.
    served = set()
    for _ in range(6):
        served.add(ask(client, "g")[1]["x-tailgate-deployment"])
        if served == {"fast", "mid", "slow"}:
            break
    assert served == {"fast", "mid", "slow"}, f"explore did not visit every deployment: {served}"

    before = counts(fast, mid, slow)
    results = fan_out(lambda i: ask(client, "g"), 300, workers=16)
    assert all(text == mock_words(h["x-tailgate-deployment"], 1) for text, h in results)
    d_fast, d_mid, d_slow = (a - b for a, b in zip(counts(fast, mid, slow), before))
    assert d_fast + d_mid + d_slow == 300
    assert d_fast >= 270, f"fast={d_fast} mid={d_mid} slow={d_slow}"


def test_latency_streams_follow_ttft_non_streams_follow_total(stack):
    # X: first content after 20 ms but 20 chunks x 30 ms (total ~620 ms);
    # Y: first content after 150 ms, one chunk (total ~150 ms).
    x = stack.mock("x", "--ttft", "20ms", "--chunks", "20", "--chunk-delay", "30ms")
    y = stack.mock("y", "--ttft", "150ms", "--chunks", "1", "--chunk-delay", "1ms")
    gw = stack.gateway(make_config(
        [deployment("g", m, model_info={"id": m.name}) for m in (x, y)],
        router_settings={"strategies": ["health", {"name": "latency", "args": {"ttl": "30s"}}]}))
    client = gw.client()

    for stream, want in ((True, x), (False, y)):
        # Warm-up per metric (stream TTFT and non-stream total are separate windows).
        served = set()
        for _ in range(4):
            served.add(ask(client, "g", stream=stream)[1]["x-tailgate-deployment"])
            if served == {"x", "y"}:
                break
        assert served == {"x", "y"}, (stream, served)
        before = counts(x, y)
        results = fan_out(lambda i: ask(client, "g", stream=stream), 40, workers=16)
        assert all(text == mock_words(h["x-tailgate-deployment"], 20 if h["x-tailgate-deployment"] == "x" else 1)
                   for text, h in results)
        dx, dy = (a - b for a, b in zip(counts(x, y), before))
        got = dx if want is x else dy
        assert got >= 36, f"stream={stream}: x={dx} y={dy}, expected >= 90% on {want.name}"


def test_latency_abandons_deployment_that_turns_slow(stack):
    fast = stack.mock("fast", "--ttft", "50ms", *FAST)
    mid = stack.mock("mid", "--ttft", "150ms", *FAST)
    # A short window (5 s in 10 slices) judged on its newest samples
    # (min_samples 3) reacts within about a slice.
    gw = stack.gateway(make_config(
        [deployment("g", m, model_info={"id": m.name}) for m in (fast, mid)],
        router_settings={"strategies": ["health", {"name": "latency",
                                                   "args": {"ttl": "5s", "slices": 10, "min_samples": 3}}]}))
    client = gw.client()
    for _ in range(4):
        ask(client, "g")
        if fast.received() and mid.received():
            break
    assert fast.received() and mid.received(), "explore did not visit both deployments"

    before = counts(fast, mid)
    fan_out(lambda i: ask(client, "g"), 40, workers=8)
    d_fast, d_mid = (a - b for a, b in zip(counts(fast, mid), before))
    assert d_fast >= 36, (d_fast, d_mid)

    fast.configure(ttft_ms=500)
    t_slow = time.monotonic()
    # Keep sending batches until (nearly) a whole batch goes to `mid`.
    shifted_at = None
    while time.monotonic() - t_slow < 5.0:
        heads = [h for _, h in fan_out(lambda i: ask(client, "g"), 8, workers=8)]
        if sum(h["x-tailgate-deployment"] == "mid" for h in heads) >= 7:
            shifted_at = time.monotonic() - t_slow
            break
    assert shifted_at is not None, "traffic did not leave the deployment that turned slow within the 5 s window"

    before = counts(fast, mid)
    fan_out(lambda i: ask(client, "g"), 40, workers=8)
    d_fast, d_mid = (a - b for a, b in zip(counts(fast, mid), before))
    assert d_mid >= 36, f"after the slowdown: fast={d_fast} mid={d_mid} (shifted after {shifted_at:.2f}s)"


# ---------------------------------------------------------------------------
# cost
# ---------------------------------------------------------------------------

def priced(group, mock, price):
    return deployment(group, mock, model_info={"id": mock.name},
                      input_cost_per_token=price, output_cost_per_token=price)


def test_cost_cheapest_gets_traffic_then_next_cheapest_after_cooldown(stack):
    cheap = stack.mock("cheap", "--ttft", "1ms", *FAST)
    mid = stack.mock("mid", "--ttft", "1ms", *FAST)
    pricey = stack.mock("pricey", "--ttft", "1ms", *FAST)
    gw = stack.gateway(make_config(
        # Listed most expensive first, so the order is the strategy's doing.
        [priced("g", pricey, 1e-5), priced("g", mid, 1e-6), priced("g", cheap, 1e-7)],
        router_settings={"routing_strategy": "cost-based-routing", "num_retries": 1,
                         "allowed_fails": 2, "cooldown_time": 30}))
    client = gw.client()

    fan_out(lambda i: ask(client, "g", stream=bool(i % 2)), 20, workers=4)
    assert counts(cheap, mid, pricey) == [20, 0, 0]

    cheap.configure(fail_rate=1, fail_status=500)
    attempts = []
    for _ in range(6):  # sequential: every outcome is seen before the next route
        text, h = ask(client, "g")
        assert text == mock_words("mid", 1)
        attempts.append(int(h["x-tailgate-attempts"]))
    # allowed_fails 2: the 3rd failure (> 2) cools `cheap` down; then `mid` directly.
    assert attempts == [2, 2, 2, 1, 1, 1], attempts
    assert counts(cheap, mid, pricey) == [23, 6, 0]

    fan_out(lambda i: ask(client, "g"), 20, workers=4)
    assert counts(cheap, mid, pricey) == [23, 26, 0]


# ---------------------------------------------------------------------------
# health
# ---------------------------------------------------------------------------

def health_cost_config(good, bad, **router):
    """[health, cost] with `bad` the cheaper one: it is first whenever routable,
    which makes its traffic deterministic."""
    rs = {"strategies": ["health", "cost"], "num_retries": 1}
    rs.update(router)
    return make_config([priced("g", good, 1e-5), priced("g", bad, 1e-7)], router_settings=rs)


def test_health_cooldown_single_probe_and_recovery(stack):
    good = stack.mock("good", "--ttft", "1ms", *FAST)
    # Failures take 150 ms, so the probe is in flight while other requests route.
    bad = stack.mock("bad", "--ttft", "1ms", *FAST, "--fail-rate", "1", "--fail-status", "500",
                     "--fail-delay", "150ms")
    gw = stack.gateway(health_cost_config(good, bad, allowed_fails=1, cooldown_time=1))
    client = gw.client()

    # LiteLLM semantics: fails > allowed_fails cools down, i.e. on the 2nd failure.
    for expected_bad in (1, 2):
        text, h = ask(client, "g")
        assert text == mock_words("good", 1) and h["x-tailgate-attempts"] == "2"
        assert bad.received() == expected_bad
    t_cool = time.monotonic()
    text, h = ask(client, "g")
    assert h["x-tailgate-attempts"] == "1" and bad.received() == 2, "not cooled after allowed_fails + 1 failures"

    with Load(client, "g", workers=4) as load:
        # No traffic at all while cooling, while other requests flow.
        while time.monotonic() - t_cool < 0.8:
            assert bad.received() == 2, f"cooling deployment got traffic after {time.monotonic() - t_cool:.2f}s"
            time.sleep(0.02)
        assert load.done_since(t_cool) >= 10, "the load did not flow"

        # Exactly one probe after the cooldown (concurrent requests included).
        wait_for(lambda: bad.received() >= 3, timeout=3.0, what="the probe after the cooldown")
        t_probe = time.monotonic()
        assert t_probe - t_cool >= 0.8, f"probed {t_probe - t_cool:.2f}s after the cooldown started (cooldown 1 s)"
        # The probe failed: cooling again (2 s with the backoff); nothing else gets through.
        while time.monotonic() - t_probe < 0.7:
            assert bad.received() == 3, "more than one probe"
            time.sleep(0.02)

        # Fixed: the next probe succeeds and traffic returns.
        bad.configure(fail_rate=0)
        wait_for(lambda: bad.received() >= 20, timeout=4.0, what="traffic to return to the recovered deployment")
        t_back = time.monotonic()
        wait_for(lambda: load.done_since(t_back) >= 10, timeout=3.0, what="more load")
    assert not load.errors, f"{len(load.errors)} client errors, first: {load.errors[:1]!r}"
    # Once healthy, the cheaper deployment takes the traffic again.
    recent = [d for ts, d in load.served if ts >= t_back]
    assert recent and sum(d == "bad" for d in recent) >= 0.9 * len(recent), recent[:20]
    logs = gw.log_text()
    assert "healthy -> cooling" in logs and "half-open -> healthy" in logs


@pytest.mark.parametrize("header", [("--retry-after", "2"), ("--retry-after-ms", "2000")],
                         ids=["retry-after", "retry-after-ms"])
def test_retry_after_longer_than_cooldown_is_honoured(stack, header):
    good = stack.mock("good", "--ttft", "1ms", *FAST)
    bad = stack.mock("bad", "--ttft", "1ms", *FAST, "--fail-rate", "1", "--fail-status", "429", *header)
    gw = stack.gateway(health_cost_config(good, bad, allowed_fails=0, cooldown_time="500ms"))
    client = gw.client()

    text, h = ask(client, "g")
    assert text == mock_words("good", 1) and h["x-tailgate-attempts"] == "2"
    t_cool = time.monotonic()
    assert bad.received() == 1
    with Load(client, "g", workers=4) as load:
        # cooldown_time alone would end after 0.5 s; Retry-After says 2 s.
        while time.monotonic() - t_cool < 1.7:
            assert bad.received() == 1, f"traffic {time.monotonic() - t_cool:.2f}s after a 429 with Retry-After: 2"
            time.sleep(0.02)
        assert load.done_since(t_cool) >= 10
        wait_for(lambda: bad.received() >= 2, timeout=3.0, what="the probe after Retry-After")
        t_probe = time.monotonic() - t_cool
    assert not load.errors, load.errors[:1]
    assert t_probe >= 1.8, t_probe


def test_all_deployments_cooling_fast_429_with_retry_after(stack):
    """With panic_routing off: the fast 429, Retry-After capped (max_client_retry_after)."""
    x = stack.mock("x", "--fail-rate", "1", "--fail-status", "500")
    y = stack.mock("y", "--fail-rate", "1", "--fail-status", "500")
    gw = stack.gateway(make_config(
        [deployment("g", x, model_info={"id": "x"}), deployment("g", y, model_info={"id": "y"})],
        router_settings={"routing_strategy": "cost-based-routing", "num_retries": 1,
                         "allowed_fails": 0, "cooldown_time": 30, "panic_routing": False,
                         "max_client_retry_after": "3s"}))
    http = httpx.Client(base_url=gw.base_url, timeout=10)
    try:
        body = {"model": "g", "messages": USER_HI}
        r = http.post("/chat/completions", json=body)
        assert r.status_code == 500, r.text
        assert r.headers["x-tailgate-attempts"] == "2" and r.headers.get("x-should-retry") == "false"
        assert counts(x, y) == [1, 1]

        for stream in (False, True, False, False, False):
            t0 = time.monotonic()
            r = http.post("/chat/completions", json={**body, "stream": stream})
            elapsed = time.monotonic() - t0
            err = assert_openai_error_shape(r, 429)
            assert elapsed < 0.1, f"all-cooling answer took {elapsed * 1000:.0f} ms"
            assert err["code"] == "all_deployments_cooling_down", err
            assert r.headers["retry-after"] == "3", r.headers  # 30 s of cooldown, capped
        assert counts(x, y) == [1, 1], "no upstream traffic while everything cools"
    finally:
        http.close()

    with pytest.raises(openai.RateLimitError) as ei:
        gw.client().chat.completions.create(model="g", messages=USER_HI)
    assert ei.value.response.headers.get("retry-after")
    assert counts(x, y) == [1, 1]


def test_disable_cooldowns_keeps_sending_to_failing_deployment(stack):
    bad = stack.mock("bad", "--fail-rate", "1", "--fail-status", "500")
    gw = stack.gateway(make_config(
        [deployment("g", bad)],
        router_settings={"routing_strategy": "cost-based-routing", "allowed_fails": 0, "cooldown_time": 5,
                         "disable_cooldowns": True}))
    client = gw.client()
    for i in range(6):
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(model="g", messages=USER_HI)
        assert bad.received() == i + 1
    bad.configure(fail_rate=0)
    assert ask(client, "g")[0] == mock_words("bad", 8)


def test_bad_request_and_cancellation_never_cool_down(stack):
    m = stack.mock("m", "--ttft", "1ms", *FAST, "--fail-rate", "1", "--fail-status", "400")
    gw = stack.gateway(make_config(
        [deployment("g", m)],
        router_settings={"routing_strategy": "cost-based-routing", "allowed_fails": 0, "cooldown_time": 5}))
    client = gw.client()
    for i in range(4):
        with pytest.raises(openai.BadRequestError) as ei:
            client.chat.completions.create(model="g", messages=USER_HI, stream=bool(i % 2))
        assert ei.value.status_code == 400
        assert m.received() == i + 1, "a 400 must not cool the deployment down"

    # Client cancellations (the SDK gives up and closes its connection).
    m.configure(fail_rate=0, ttft_ms=3000)
    for i in range(3):
        with pytest.raises(openai.APITimeoutError):
            gw.client(timeout=0.2).chat.completions.create(model="g", messages=USER_HI)
    wait_for(lambda: m.stats()["cancelled_by_client"] >= 3, timeout=2, what="the mock to see 3 cancellations")

    m.configure(ttft_ms=1)
    text, h = ask(client, "g")
    assert text == mock_words("m", 1)
    assert m.received() == 8


def test_gateway_timeouts_count_toward_cooldown(stack):
    m = stack.mock("stall", "--stall")
    gw = stack.gateway(make_config(
        [deployment("g", m, timeout=0.2)],
        router_settings={"routing_strategy": "cost-based-routing", "allowed_fails": 1, "cooldown_time": 5,
                         "panic_routing": False}))
    client = gw.client(timeout=10)
    for i in range(2):
        with pytest.raises(openai.APIStatusError) as ei:
            client.chat.completions.create(model="g", messages=USER_HI)
        assert ei.value.status_code == 504
    wait_for(lambda: m.stats()["cancelled_by_client"] == 2, timeout=1, what="both timed-out attempts closed")
    with pytest.raises(openai.RateLimitError) as ei:
        client.chat.completions.create(model="g", messages=USER_HI)
    assert ei.value.response.headers.get("retry-after")
    assert m.received() == 2


def fallback_cooling_setup(stack):
    a = stack.mock("a", "--ttft", "1ms", *FAST, "--fail-rate", "1", "--fail-status", "500")
    b = stack.mock("b", "--ttft", "1ms", *FAST)
    gw = stack.gateway(make_config(
        [deployment("a", a, model_info={"id": "a"}), deployment("b", b, model_info={"id": "b"})],
        router_settings={"routing_strategy": "cost-based-routing", "allowed_fails": 0, "cooldown_time": 5,
                         "fallbacks": [{"a": ["b"]}], "panic_routing": False}))
    client = gw.client()
    text, h = ask(client, "a")  # `a` fails once (> allowed_fails 0): cooling for 5 s
    assert text == mock_words("b", 1) and h["x-tailgate-fallback"] == "b" and h["x-tailgate-attempts"] == "2"
    assert [a.received(), b.received()] == [1, 1]
    return gw, client, a, b


def test_fallback_group_serves_while_primary_cools(stack):
    gw, client, a, b = fallback_cooling_setup(stack)
    # `a` is cooling: its fallback answers directly, `a` sees nothing.
    for _ in range(5):
        text, h = ask(client, "a")
        assert text == mock_words("b", 1) and h["x-tailgate-deployment"] == "b"
        assert h["x-tailgate-attempts"] == "1"
    assert [a.received(), b.received()] == [1, 6]

    # Fallback cooling too: the fast 429 with Retry-After.
    b.configure(fail_rate=1, fail_status=503)
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="b", messages=USER_HI)
    with pytest.raises(openai.RateLimitError) as ei:
        client.chat.completions.create(model="a", messages=USER_HI)
    assert 1 <= int(ei.value.response.headers["retry-after"]) <= 5
    assert [a.received(), b.received()] == [1, 7]


def test_fallback_header_while_primary_cools(stack):
    gw, client, a, b = fallback_cooling_setup(stack)
    text, h = ask(client, "a")
    assert text == mock_words("b", 1) and a.received() == 1
    assert h.get("x-tailgate-fallback") == "b", dict(h)
