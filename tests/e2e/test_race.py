"""Racing: model lists with `fastest_response` (LiteLLM's shape), all-results
mode without it, and the `race` strategy plugin configured in the chain.

Timing is measured on the client (time to the first content chunk, or to the
parsed response) and at the mocks: a mock's `received_ms` / `finished_ms` /
`cancel_ms` share one per-process steady clock, so the loser's
`cancel_ms - received_ms` is how long the gateway kept it running. Both
attempts of a race launch at t=0, so that span must be about the winner's
commit time (its TTFT for streams, its full answer otherwise) — not ~0 (that
would mean the gateway committed on the loser's headers or role chunk, which
the mocks send at t=0) and not the loser's own TTFT.
"""
from __future__ import annotations

import asyncio
import re
import time
from concurrent.futures import ThreadPoolExecutor

import openai
import pytest

from conftest import (USER_HI, MockClock, assert_openai_error_shape, deployment, free_port, make_config, mock_words,
                      needs_plugins, wait_for)

CHUNKS = 4
CHUNK_DELAY = 5  # ms
FAST_TTFT, MID_TTFT, SLOW_TTFT = 100, 300, 600
FAST_TOTAL = FAST_TTFT + CHUNKS * CHUNK_DELAY  # non-stream answer of `fast`
RACE = {"fastest_response": True}


def _m(stack, name, ttft, *extra):
    return stack.mock(name, "--ttft", f"{ttft}ms", "--chunk-delay", f"{CHUNK_DELAY}ms", "--chunks", str(CHUNKS),
                      *extra)


@pytest.fixture(scope="module")
def env(module_stack):
    s = module_stack
    fast = _m(s, "fast", FAST_TTFT)
    slow = _m(s, "slow", SLOW_TTFT)
    mid = _m(s, "mid", MID_TTFT)
    bad = _m(s, "bad", 1, "--fail-rate", "1", "--fail-status", "500")
    rl = _m(s, "rl", 1, "--fail-rate", "1", "--fail-status", "429", "--retry-after", "7")
    dead_port = free_port()  # connection refused
    cfg = make_config([
        deployment("fast", fast, model_info={"id": "fast-dep"}),
        deployment("slow", slow, model_info={"id": "slow-dep"}),
        deployment("mid", mid, model_info={"id": "mid-dep"}),
        deployment("bad", bad, model_info={"id": "bad-dep"}),
        deployment("rl", rl, model_info={"id": "rl-dep"}),
        deployment("dead", api_base=f"http://127.0.0.1:{dead_port}/v1", model_info={"id": "dead-dep"}),
        # one group, two deployments: "pair,pair" races both
        deployment("pair", fast, model_info={"id": "pair-fast"}),
        deployment("pair", slow, model_info={"id": "pair-slow"}),
    ], router_settings={"disable_cooldowns": True})  # failing groups fail the same way in every test
    gw = s.gateway(cfg, name="race")
    # Warm both SDK clients' code paths (first-call imports cost ~100 ms) and the gateway.
    for stream in (False, True):
        call(gw, "fast", stream, "sync")
        call(gw, "fast", stream, "async")
    return gw, {m.name: m for m in (fast, slow, mid, bad, rl)}


@pytest.fixture(autouse=True)
def _reset(env):
    gw, mocks = env
    for m in mocks.values():
        m.reset()
    yield
    gw.assert_healthy()


def _content_chunks(chunks):
    return [c for c in chunks if c.choices and c.choices[0].delta.content]


def _sync_call(client, model, stream, **kw):
    """Returns (text, seconds to first content / to the response, chunk ids, headers)."""
    t0 = time.monotonic()
    raw = client.chat.completions.with_raw_response.create(model=model, messages=USER_HI, stream=stream, **kw)
    resp = raw.parse()
    if not stream:
        return resp.choices[0].message.content, time.monotonic() - t0, [resp.id], raw.headers
    first, parts, ids = None, [], []
    for c in resp:
        ids.append(c.id)
        if c.choices and c.choices[0].delta.content:
            if first is None:
                first = time.monotonic() - t0
            parts.append(c.choices[0].delta.content)
    return "".join(parts), first, ids, raw.headers


async def _async_call(client, model, stream, **kw):
    t0 = time.monotonic()
    raw = await client.chat.completions.with_raw_response.create(model=model, messages=USER_HI, stream=stream, **kw)
    resp = raw.parse()  # the legacy raw response parses synchronously
    if not stream:
        return resp.choices[0].message.content, time.monotonic() - t0, [resp.id], raw.headers
    first, parts, ids = None, [], []
    async for c in resp:
        ids.append(c.id)
        if c.choices and c.choices[0].delta.content:
            if first is None:
                first = time.monotonic() - t0
            parts.append(c.choices[0].delta.content)
    return "".join(parts), first, ids, raw.headers


def call(gw, model, stream, mode, **kw):
    """One chat call with the sync or the async client (a warm connection)."""
    if mode == "sync":
        with gw.client() as client:
            client.models.list()  # warm: connection and SDK code paths
            return _sync_call(client, model, stream, **kw)

    async def run():
        async with gw.async_client() as client:
            await client.models.list()
            return await _async_call(client, model, stream, **kw)

    return asyncio.run(run())


def loser_cancel_span(loser, before_cancelled: int) -> float:
    """Waits for the loser's cancellation; returns cancel_ms - received_ms of it (mock clock)."""
    wait_for(lambda: loser.stats()["cancelled_by_client"] > before_cancelled, timeout=3,
             what=f"{loser.name} to see the gateway close the losing attempt")
    st = loser.stats()
    reqs = loser.api_requests()
    assert st["cancelled_by_client"] == before_cancelled + 1 and len(reqs) == 1, (st, reqs)
    r = reqs[0]
    assert r["outcome"] == "cancelled", r
    assert st["completed"] == 0, st
    cancel_ms = st["cancel_ms"][-1]
    assert abs(cancel_ms - r["finished_ms"]) < 1.0, (st, r)
    return cancel_ms - r["received_ms"]


# 1 --------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("stream", [True, False], ids=["stream", "nonstream"])
@pytest.mark.parametrize("model", ["fast,slow", "pair,pair"], ids=["two-groups", "one-group-twice"])
def test_race_fastest_wins_loser_cancelled(env, model, stream, mode):
    gw, mocks = env
    fast, slow = mocks["fast"], mocks["slow"]
    text, latency, ids, headers = call(gw, model, stream, mode, extra_body=RACE)

    # Only the fast mock's words and chunks reach the client.
    assert text == mock_words("fast", CHUNKS), text
    assert all(i.startswith("chatcmpl-fast-") for i in ids), ids
    assert headers["x-tailgate-attempts"] == "2"
    assert headers["x-tailgate-deployment"] == ("fast-dep" if model == "fast,slow" else "pair-fast")

    commit_ms = FAST_TTFT if stream else FAST_TOTAL
    assert latency is not None and latency < (commit_ms + 100) / 1000, f"client latency {latency * 1000:.0f} ms"

    # The slow attempt was launched at t=0 and closed when the fast one committed.
    span = loser_cancel_span(slow, 0)
    assert commit_ms - 10 <= span <= min(latency * 1000 + 50, commit_ms + 50), \
        f"loser cancelled {span:.0f} ms after it started (winner committed at ~{commit_ms} ms, " \
        f"client saw it at {latency * 1000:.0f} ms)"
    f = fast.api_requests()
    assert len(f) == 1 and wait_for(lambda: fast.stats()["completed"] == 1, timeout=2)
    assert slow.stats()["completed"] == 0


# 2 --------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("stream", [True, False], ids=["stream", "nonstream"])
@pytest.mark.parametrize("model", ["bad,mid", "mid,bad"])
def test_race_failing_one_slow_one_wins(env, model, stream, mode):
    gw, mocks = env
    text, latency, ids, headers = call(gw, model, stream, mode, extra_body=RACE)
    assert text == mock_words("mid", CHUNKS)
    assert headers["x-tailgate-deployment"] == "mid-dep"
    assert headers["x-tailgate-attempts"] == "2"
    # the failure did not hold anything up, and nothing waited for more than mid itself
    assert (MID_TTFT - 10) / 1000 <= latency < (MID_TTFT + 200) / 1000, latency
    assert mocks["bad"].received() == 1 and mocks["mid"].received() == 1


# Every attempt failed: the error with the most to tell wins. An upstream's HTTP
# answer beats a connection failure, and a 429 with Retry-After beats a bare 500
# whatever the order of the list (a race has no "last" attempt).
# (ties went to the attempt listed last until e505faa: 'rl,bad' answered the bare 500)


@pytest.mark.parametrize("stream", [False, True], ids=["nonstream", "stream"])
# (the upstream says Retry-After: 7; clients see it capped at max_client_retry_after, 5 s by default)
@pytest.mark.parametrize("model,status,retry_after", [
    ("rl,dead", 429, "5"), ("dead,rl", 429, "5"),
    ("bad,rl", 429, "5"), ("rl,bad", 429, "5"),
    ("bad,dead", 500, None), ("dead,bad", 500, None),
    ("dead,dead", 502, None),
])
def test_race_all_failing_most_informative_error(env, model, stream, status, retry_after):
    gw, _ = env
    t0 = time.monotonic()
    with pytest.raises(openai.APIStatusError) as ei:
        gw.client().chat.completions.create(model=model, messages=USER_HI, stream=stream, extra_body=RACE)
    e = ei.value
    assert time.monotonic() - t0 < 2
    assert e.status_code == status, (e.status_code, e.body)
    assert e.response.headers.get("retry-after") == retry_after
    assert e.response.headers.get("x-tailgate-attempts") == "2"
    assert e.response.headers.get("x-should-retry") == "false"
    assert_openai_error_shape(e.response, status)


async def test_race_all_failing_async(env):
    gw, _ = env
    async with gw.async_client() as client:
        with pytest.raises(openai.RateLimitError) as ei:
            await client.chat.completions.create(model="dead,rl", messages=USER_HI, extra_body=RACE)
    assert ei.value.response.headers.get("retry-after") == "5"


# 3 --------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["sync", "async"])
def test_model_list_without_fastest_returns_all_results(env, mode):
    gw, mocks = env

    def check(r):
        results = r.model_extra["results"]
        assert [x["model_group"] for x in results] == ["bad", "mid", "fast"]
        assert results[0]["status"] == 500 and results[0]["error"]["message"], results[0]
        assert "response" not in results[0]
        for x, name, dep in ((results[1], "mid", "mid-dep"), (results[2], "fast", "fast-dep")):
            assert x["status"] == 200 and x["deployment"] == dep, x
            assert x["response"]["choices"][0]["message"]["content"] == mock_words(name, CHUNKS)
        # the top level is the first successful result in list order
        assert r.choices[0].message.content == mock_words("mid", CHUNKS)

    if mode == "sync":
        t0 = time.monotonic()
        r = gw.client().chat.completions.create(model="bad,mid,fast", messages=USER_HI)
        elapsed = time.monotonic() - t0
    else:
        async def run():
            async with gw.async_client() as client:
                t0 = time.monotonic()
                r = await client.chat.completions.create(model="bad,mid,fast", messages=USER_HI)
                return r, time.monotonic() - t0
        r, elapsed = asyncio.run(run())
    check(r)
    # every group asked at once (received within a few ms of each other, on one clock),
    # so the answer takes as long as the slowest, not the sum
    assert MID_TTFT / 1000 <= elapsed < 1.0, elapsed
    assert [mocks[n].received() for n in ("bad", "mid", "fast")] == [1, 1, 1]
    arrivals = [MockClock(mocks[n])(mocks[n].api_requests()[0]["received_ms"]) for n in ("bad", "mid", "fast")]
    assert max(arrivals) - min(arrivals) < 0.05, [round((a - min(arrivals)) * 1000) for a in arrivals]
    assert mocks["mid"].stats()["completed"] == 1 and mocks["fast"].stats()["completed"] == 1


async def test_model_list_stream_without_fastest_is_400(env):
    gw, mocks = env
    with pytest.raises(openai.BadRequestError) as ei:
        gw.client().chat.completions.create(model="fast,mid", messages=USER_HI, stream=True)
    assert_openai_error_shape(ei.value.response, 400)
    async with gw.async_client() as client:
        with pytest.raises(openai.BadRequestError):
            await client.chat.completions.create(model="fast,mid", messages=USER_HI, stream=True)
    assert mocks["fast"].received() == 0 and mocks["mid"].received() == 0


# 4 --------------------------------------------------------------------------
# The `race` strategy in the chain: every request of one group launches its top
# `max_parallel` candidates at t=0.

def _race_chain(ranker, **race_args):
    return ["health", ranker, {"name": "race", "args": {"max_parallel": 2, **race_args}}]


@needs_plugins("race", "health")
def test_race_plugin_two_of_three(stack):
    # Fixed TTFTs, far apart: whichever pair simple-shuffle picks, its faster member
    # wins. So `a` is never cancelled, `c` never completes, and `b` completes
    # exactly when raced against `c`.
    ttft = {"a": 20, "b": 90, "c": 300}
    mocks = {n: stack.mock(n, "--ttft", f"{t}ms", "--chunk-delay", "2ms", "--chunks", "3") for n, t in ttft.items()}
    gw = stack.gateway(make_config([deployment("g", m, model_info={"id": f"dep-{n}"}) for n, m in mocks.items()],
                                   router_settings={"strategies": _race_chain("simple-shuffle")}))
    client = gw.client()
    client.chat.completions.create(model="g", messages=USER_HI)  # warm the client, then start counting
    wait_for(lambda: sum(m.stats()["in_flight"] for m in mocks.values()) == 0, timeout=3)
    for m in mocks.values():
        m.reset()
    n = 24
    won = {k: 0 for k in ttft}
    for i in range(n):
        t0 = time.monotonic()
        raw = client.chat.completions.with_raw_response.create(model="g", messages=USER_HI, stream=bool(i % 2))
        resp = raw.parse()
        text = ("".join(c.choices[0].delta.content or "" for c in resp if c.choices) if i % 2
                else resp.choices[0].message.content)
        elapsed = time.monotonic() - t0
        w = raw.headers["x-tailgate-deployment"].removeprefix("dep-")
        won[w] += 1
        assert text == mock_words(w, 3)
        assert raw.headers["x-tailgate-attempts"] == "2"
        assert elapsed < (ttft[w] + 150) / 1000, (w, elapsed)
        # every request launched exactly two: one completes, the other is cancelled
        wait_for(lambda: sum(m.stats()["in_flight"] for m in mocks.values()) == 0, timeout=3,
                 what="the losing attempt to be closed")
        st = {k: m.stats() for k, m in mocks.items()}
        assert sum(s["received"] for s in st.values()) == 2 * (i + 1), st
        assert sum(s["cancelled_by_client"] for s in st.values()) == i + 1, st
    st = {k: m.stats() for k, m in mocks.items()}
    assert st["a"]["cancelled_by_client"] == 0 and st["a"]["completed"] == st["a"]["received"] == won["a"], st
    assert st["c"]["completed"] == 0 and won["c"] == 0, st
    assert st["b"]["completed"] == won["b"], st
    # uniform pairs: every deployment took part (P(miss) over 24 requests ~ 1e-4 each)
    assert all(s["received"] > 0 for s in st.values()), st
    assert "race x2" in gw.log_text()


@needs_plugins("race", "health", "latency")
@pytest.mark.parametrize("ranker", ["simple-shuffle", "latency"])
def test_race_plugin_cancellations_never_cool_down(stack, ranker):
    # allowed_fails 0: a single counted failure would cool `slow` down for 60 s
    # and the race would then leave it out. It is raced and cancelled 50 times.
    # fast at 30 ms, not less: the losing attempt must reach its mock before the
    # winner commits, or it is cancelled while connecting and the mock never counts it
    fast = stack.mock("fast", "--ttft", "30ms", "--chunk-delay", "1ms", "--chunks", "2")
    slow = stack.mock("slow", "--ttft", "150ms", "--chunk-delay", "1ms", "--chunks", "2")
    gw = stack.gateway(make_config(
        [deployment("g", fast, model_info={"id": "fast-dep"}), deployment("g", slow, model_info={"id": "slow-dep"})],
        router_settings={"strategies": _race_chain(ranker), "allowed_fails": 0, "cooldown_time": 60}))
    client = gw.client()
    n = 50

    def one(i):
        text, _, _, h = _sync_call(client, "g", stream=bool(i % 2))
        return text, h["x-tailgate-deployment"], h["x-tailgate-attempts"]

    with ThreadPoolExecutor(8) as ex:
        for half in (1, 2):  # still raced after the first 25 cancellations
            for text, dep, attempts in ex.map(one, range(n // 2)):
                assert (text, dep, attempts) == (mock_words("fast", 2), "fast-dep", "2")
            assert slow.received() == half * n // 2, f"slow stopped receiving raced requests ({slow.stats()})"
    wait_for(lambda: slow.stats()["cancelled_by_client"] == n, timeout=3, what="every losing attempt closed")
    assert slow.received() == n and fast.received() == n
    assert slow.stats()["completed"] == 0
    log = gw.log_text()
    assert not re.search(r"health: deployment '\S+' \S+ -> cooling", log), log[-3000:]


@needs_plugins("race", "health")
def test_race_plugin_failover_and_per_request_overrides(stack):
    bad1 = stack.mock("bad1", "--fail-rate", "1", "--fail-status", "500", *("--chunks", "2"))
    bad2 = stack.mock("bad2", "--fail-rate", "1", "--fail-status", "503", *("--chunks", "2"))
    good = stack.mock("good", "--ttft", "30ms", "--chunk-delay", "1ms", "--chunks", "2")
    mocks = (bad1, bad2, good)
    gw = stack.gateway(make_config([deployment("g", m, model_info={"id": m.name}) for m in mocks],
                                   router_settings={"strategies": _race_chain("simple-shuffle"),
                                                    "disable_cooldowns": True}))  # keep the failing ones routable
    client = gw.client()
    # Two racers of three; when both are the failing ones the third follows as failover.
    attempts = set()
    for _ in range(12):
        raw = client.chat.completions.with_raw_response.create(model="g", messages=USER_HI)
        assert raw.parse().choices[0].message.content == mock_words("good", 2)
        attempts.add(raw.headers["x-tailgate-attempts"])
    assert attempts <= {"2", "3"}, attempts
    assert good.received() == 12
    # race.max_parallel: 3 launches all three at t=0 (not one after another)
    for m in mocks:
        m.reset()
    t0 = time.monotonic()
    raw = client.chat.completions.with_raw_response.create(model="g", messages=USER_HI,
                                                           extra_body={"race": {"max_parallel": 3}})
    assert raw.headers["x-tailgate-attempts"] == "3" and time.monotonic() - t0 < 0.5
    assert [m.received() for m in mocks] == [1, 1, 1]
    assert "race x3" in gw.log_text()
    # race: false leaves the request to the host's default plan: one attempt, no retry configured
    for m in mocks:
        m.reset()
    good_only = 0
    for _ in range(6):
        try:
            raw = client.chat.completions.with_raw_response.create(model="g", messages=USER_HI,
                                                                   extra_body={"race": False})
            good_only += 1
            assert raw.headers["x-tailgate-attempts"] == "1"
        except openai.APIStatusError as e:
            assert e.status_code in (500, 503) and e.response.headers["x-tailgate-attempts"] == "1"
    assert sum(m.received() for m in mocks) == 6 and good.received() == good_only
    assert "race off (request)" in gw.log_text()


def test_model_list_without_fastest_honours_per_request_options(env):
    """Every path builds its routing info the same way: a model list without
    fastest_response used to drop the request's fallbacks, strategies and overrides."""
    gw, mocks = env
    r = gw.client().chat.completions.create(model="bad,fast", messages=USER_HI,
                                            extra_body={"fallbacks": ["mid"], "num_retries": 0})
    results = r.model_extra["results"]
    assert [x["model_group"] for x in results] == ["bad", "fast"]
    assert results[0]["status"] == 200 and results[0]["deployment"] == "mid-dep", results[0]  # bad fell back
    assert mocks["bad"].received() == 1 and mocks["mid"].received() == 1
