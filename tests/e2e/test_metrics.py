"""Observability (issue 5): Prometheus `/metrics` and JSON log lines.

After real traffic through the gateway (streams, non-streams, upstream errors,
unknown models, a race, a hedge, a retry, a cooldown, a client that hangs up),
`/metrics` must pass `promtool check metrics` and its counters must have moved
by exactly the traffic sent; with `log_format: json` every line the gateway
writes must be one JSON object, and the per-request record must carry the
request's fields (never a key, never message content).
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import time

import httpx
import openai
import pytest

from conftest import USER_HI, deployment, make_config, needs_plugins, wait_for

FAST = ("--ttft", "2ms", "--chunks", "3", "--chunk-delay", "1ms")
UPSTREAM_KEY = "sk-upstream-secret-4f1c"
MASTER_KEY = "sk-master-9b2e"
SECRET_PROMPT = "the-user-prompt-never-logged"

_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text: str) -> list[tuple[str, dict, float]]:
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        head, value = line.rsplit(" ", 1)
        if "{" in head:
            name, rest = head.split("{", 1)
            labels = {k: v for k, v in _LABEL.findall(rest[:-1])}
        else:
            name, labels = head, {}
        out.append((name, labels, float(value)))
    return out


class Scrape:
    def __init__(self, text: str):
        self.text = text
        self.samples = parse_metrics(text)

    def value(self, name: str, **labels) -> float:
        found = [v for n, l, v in self.samples if n == name and l == labels]
        assert len(found) == 1, f"{name}{labels}: {len(found)} series"
        return found[0]

    def sum(self, name: str, **labels) -> float:
        return sum(v for n, l, v in self.samples
                   if n == name and all(l.get(k) == v2 for k, v2 in labels.items()))


def scrape(gw, **headers) -> Scrape:
    r = httpx.get(gw.url + "/metrics", headers=headers, timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4"), r.headers
    return Scrape(r.text)


def promtool_check(text: str):
    if shutil.which("promtool") is None:
        pytest.skip("promtool not found: install Debian's `prometheus` package (tools/scripts/test.sh does)")
    p = subprocess.run(["promtool", "check", "metrics"], input=text.encode(), capture_output=True, timeout=30)
    assert p.returncode == 0, f"promtool check metrics failed:\n{p.stdout.decode()}{p.stderr.decode()}"


def delta(after: Scrape, before: Scrape, name: str, **labels) -> float:
    return after.sum(name, **labels) - before.sum(name, **labels)


def chat(client, model="gpt", stream=False, **kw):
    raw = client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": SECRET_PROMPT}], stream=stream, **kw)
    resp = raw.parse()
    if not stream:
        return resp, raw.headers
    usage = None
    text = ""
    for c in resp:
        if c.usage:
            usage = c.usage
        if c.choices and c.choices[0].delta.content:
            text += c.choices[0].delta.content
    return (text, usage), raw.headers


# --------------------------------------------------------------------------
# one gateway with mixed traffic
# --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def mixed(module_stack):
    a = module_stack.mock("a", *FAST)
    b = module_stack.mock("b", *FAST)
    bad = module_stack.mock("bad", "--fail-rate", "1", "--fail-status", "500")
    slow = module_stack.mock("slow", "--ttft", "5s")
    cfg = make_config(
        [deployment("gpt", a, api_key=UPSTREAM_KEY, model_info={"id": "gpt-a"},
                    input_cost_per_token=0.001, output_cost_per_token=0.002),
         deployment("gpt", b, api_key=UPSTREAM_KEY, model_info={"id": "gpt-b"},
                    input_cost_per_token=0.001, output_cost_per_token=0.002),
         deployment("broken", bad, api_key=UPSTREAM_KEY, model_info={"id": "broken-1"}),
         deployment("slow", slow, api_key=UPSTREAM_KEY, model_info={"id": "slow-1"})],
        router_settings={"routing_strategy": "simple-shuffle", "num_retries": 0},
        general_settings={"log_format": "json"})
    gw = module_stack.gateway(cfg, name="mixed")
    return gw, a, b, bad, slow


def test_mixed_traffic_counts_exactly_and_passes_promtool(mixed):
    gw, a, b, bad, slow = mixed
    before = scrape(gw)
    client = gw.client()
    prompt_tokens = completion_tokens = 0
    for _ in range(10):
        resp, h = chat(client)
        prompt_tokens += resp.usage.prompt_tokens
        completion_tokens += resp.usage.completion_tokens
    for _ in range(10):
        (text, usage), h = chat(client, stream=True, stream_options={"include_usage": True})
        assert text and usage is not None
        prompt_tokens += usage.prompt_tokens
        completion_tokens += usage.completion_tokens
    for _ in range(3):
        with pytest.raises(openai.InternalServerError):
            chat(client, model="broken")
    for _ in range(2):
        with pytest.raises(openai.NotFoundError):
            chat(client, model="no-such-model")
    r = gw.http.post("/v1/chat/completions", content=b'{"model": "gpt", "messages": 5}',
                     headers={"content-type": "application/json"})
    assert r.status_code == 400
    after = scrape(gw)
    promtool_check(after.text)

    d = lambda name, **l: delta(after, before, name, **l)  # noqa: E731
    assert d("tailgate_requests_total", model_group="gpt", status_class="2xx") == 20
    assert d("tailgate_requests_total", model_group="broken", status_class="5xx") == 3
    assert d("tailgate_requests_total", model_group="_other", status_class="4xx") == 3  # 2 unknown + 1 bad body
    assert d("tailgate_requests_total") == 26
    assert d("tailgate_attempts_total", model_group="gpt", outcome="success") == 20
    assert d("tailgate_attempts_total", model_group="gpt") == 20
    assert d("tailgate_attempts_total", deployment="broken-1", outcome="failure") == 3
    assert d("tailgate_attempt_failures_total", deployment="broken-1", error_class="server") == 3
    assert d("tailgate_attempt_failures_total") == 3
    assert d("tailgate_request_duration_seconds_count", model_group="gpt", stream="true") == 10
    assert d("tailgate_request_duration_seconds_count", model_group="gpt", stream="false") == 10
    assert d("tailgate_request_ttft_seconds_count", model_group="gpt") == 10
    assert d("tailgate_deployment_ttft_seconds_count", model_group="gpt") == 10
    assert d("tailgate_deployment_latency_seconds_count", model_group="gpt") == 20
    assert d("tailgate_gateway_overhead_seconds_count") == 20  # requests that had a winner
    assert d("tailgate_tokens_total", direction="in") == prompt_tokens
    assert d("tailgate_tokens_total", direction="out") == completion_tokens
    cost = d("tailgate_cost_usd_total")
    assert cost == pytest.approx(prompt_tokens * 0.001 + completion_tokens * 0.002, rel=1e-9)
    assert d("tailgate_retries_total") == 0
    assert after.value("tailgate_in_flight_requests") == 0
    assert after.value("tailgate_in_flight_streams") == 0
    assert after.sum("tailgate_deployment_in_flight") == 0
    # Latency buckets: upstream answers in a few ms, so nothing is above 1 s.
    for name in ("tailgate_deployment_latency_seconds_bucket",):
        assert after.sum(name, model_group="gpt", le="1") == after.sum(name, model_group="gpt", le="+Inf")
    # Labels are bounded: no request id, no unknown model name, no key anywhere.
    assert "no-such-model" not in after.text and "req_" not in after.text
    assert UPSTREAM_KEY not in after.text


def test_fifty_requests_move_counters_by_fifty(mixed):
    gw, *_ = mixed
    before = scrape(gw)
    client = gw.client()
    for i in range(50):
        chat(client, stream=i % 2 == 1)
    after = scrape(gw)
    assert delta(after, before, "tailgate_requests_total", model_group="gpt", status_class="2xx") == 50
    assert delta(after, before, "tailgate_requests_total") == 50
    assert delta(after, before, "tailgate_attempts_total", model_group="gpt", outcome="success") == 50
    assert delta(after, before, "tailgate_request_duration_seconds_count", model_group="gpt") == 50
    assert delta(after, before, "tailgate_request_ttft_seconds_count", model_group="gpt") == 25
    # Every bucket series is cumulative and ends at the count.
    for labels in ({"model_group": "gpt", "stream": "true"}, {"model_group": "gpt", "stream": "false"}):
        buckets = [v for n, l, v in after.samples if n == "tailgate_request_duration_seconds_bucket"
                   and all(l.get(k) == x for k, x in labels.items())]
        assert buckets == sorted(buckets)
        assert buckets[-1] == after.value("tailgate_request_duration_seconds_count", **labels)


def test_client_disconnect_is_counted(mixed):
    gw, _, _, _, slow = mixed
    before = scrape(gw)
    with httpx.Client(timeout=0.3) as c:
        with pytest.raises(httpx.ReadTimeout):
            c.post(gw.base_url + "/chat/completions",
                   json={"model": "slow", "stream": True, "messages": USER_HI})
    wait_for(lambda: delta(scrape(gw), before, "tailgate_client_disconnects_total") == 1, timeout=5,
             what="the disconnect counted")
    after = scrape(gw)
    assert delta(after, before, "tailgate_requests_total", model_group="slow", status_class="error") == 1
    assert delta(after, before, "tailgate_attempts_total", deployment="slow-1", outcome="cancelled") == 1
    assert after.value("tailgate_in_flight_streams") == 0


def test_race_by_model_list(mixed):
    gw, *_ = mixed
    before = scrape(gw)
    resp, h = chat(gw.client(), model="gpt,slow", extra_body={"fastest_response": True})
    assert h["x-tailgate-model-group"] == "gpt"
    after = scrape(gw)
    assert delta(after, before, "tailgate_race_fanouts_total", model_group="gpt") == 1
    assert delta(after, before, "tailgate_race_wins_total", deployment=h["x-tailgate-deployment"]) == 1
    assert delta(after, before, "tailgate_race_wins_total") == 1
    wait_for(lambda: delta(scrape(gw), before, "tailgate_attempts_total", deployment="slow-1",
                           outcome="cancelled") == 1, timeout=3, what="the loser cancelled")


def test_json_log_lines_parse_and_carry_request_fields(mixed):
    gw, *_ = mixed
    client = gw.client()
    raw = client.chat.completions.with_raw_response.create(
        model="gpt", messages=[{"role": "user", "content": SECRET_PROMPT}],
        extra_headers={"x-request-id": "req-json-1"},
        extra_body={"metadata": {"team": "search \"beta\"", "tags": ["a", "b"], "n": 3}})
    resp = raw.parse()
    (text, usage), _ = chat(client, stream=True, stream_options={"include_usage": True},
                            extra_headers={"x-request-id": "req-json-2"})
    with pytest.raises(openai.InternalServerError):
        chat(client, model="broken", extra_headers={"x-request-id": "req-json-3"})

    def records():
        out = {}
        for line in gw.log_text().splitlines():
            rec = json.loads(line)  # every line, not just request records
            assert isinstance(rec, dict) and {"ts", "level"} <= set(rec) and "msg" in rec, line
            if rec.get("msg") == "request":
                out[rec.get("client_request_id", rec["request_id"])] = rec
        return out

    recs = wait_for(lambda: (lambda r: r if {"req-json-1", "req-json-2", "req-json-3"} <= set(r) else None)(records()),
                    timeout=5, what="the request records")
    r1 = recs["req-json-1"]
    assert r1["model_group"] == "gpt" and r1["status"] == 200 and r1["stream"] is False
    assert r1["winner"] == raw.headers["x-tailgate-deployment"]
    assert r1["attempts"] == 1 and r1["deployments"] == [
        {**r1["deployments"][0], "attempt": 0, "deployment": r1["winner"], "outcome": "won"}]
    assert r1["tokens"] == {"prompt": resp.usage.prompt_tokens, "completion": resp.usage.completion_tokens}
    assert r1["metadata"] == {"team": "search \"beta\"", "tags": ["a", "b"], "n": 3}
    assert r1["ttft_ms"] >= 0 and r1["total_ms"] >= r1["ttft_ms"] - 0.1
    assert "simple-shuffle" in r1["note"]
    r2 = recs["req-json-2"]
    assert r2["stream"] is True and r2["status"] == 200 and r2["outcome"] == "ok"
    assert r2["tokens"] == {"prompt": usage.prompt_tokens, "completion": usage.completion_tokens}
    assert r2["deployments"][0]["ttft_ms"] >= 0
    assert "metadata" not in r2
    r3 = recs["req-json-3"]
    assert r3["status"] == 500 and r3["winner"] is None
    assert r3["deployments"][0]["outcome"] == "failed"
    assert r3["deployments"][0]["error_class"] == "server" and r3["deployments"][0]["http_status"] == 500
    log = gw.log_text()
    assert UPSTREAM_KEY not in log and SECRET_PROMPT not in log


# --------------------------------------------------------------------------
# retries, cooldowns, hedges
# --------------------------------------------------------------------------

def test_retry_and_cooldown_counted(stack):
    good = stack.mock("good", *FAST)
    bad = stack.mock("bad", "--fail-rate", "1", "--fail-status", "500")
    cfg = make_config(
        [deployment("g", good, model_info={"id": "good"}, input_cost_per_token=1e-5, output_cost_per_token=1e-5),
         deployment("g", bad, model_info={"id": "bad"}, input_cost_per_token=1e-7,
                    output_cost_per_token=1e-7)],  # cheaper: tried first
        router_settings={"routing_strategy": "cost-based-routing", "num_retries": 1,
                         "allowed_fails": 0, "cooldown_time": 30},
        general_settings={"log_format": "json"})
    gw = stack.gateway(cfg)
    before = scrape(gw)
    _, h = chat(gw.client(), model="g", extra_headers={"x-request-id": "req-retry"})
    assert h["x-tailgate-deployment"] == "good" and h["x-tailgate-attempts"] == "2"
    after = scrape(gw)
    assert delta(after, before, "tailgate_retries_total", model_group="g") == 1
    assert delta(after, before, "tailgate_cooldowns_total", deployment="bad") == 1
    assert delta(after, before, "tailgate_cooldowns_total", deployment="good") == 0
    assert after.value("tailgate_deployment_state", deployment="bad", state="cooling") == 1
    assert after.value("tailgate_deployment_state", deployment="bad", state="healthy") == 0
    assert after.value("tailgate_deployment_state", deployment="good", state="healthy") == 1
    assert delta(after, before, "tailgate_requests_total", model_group="g", status_class="2xx") == 1
    promtool_check(after.text)

    rec = wait_for(lambda: next((json.loads(l) for l in gw.log_text().splitlines()
                                 if '"req-retry"' in l and '"msg":"request"' in l), None), what="the record")
    assert [(d["deployment"], d["outcome"]) for d in rec["deployments"]] == [("bad", "failed"), ("good", "won")]
    assert rec["attempts"] == 2 and rec["retries"] == 1 and rec["winner"] == "good"
    # The cooldown itself is a log line too (from the health plugin), valid JSON.
    cool = [json.loads(l) for l in gw.log_text().splitlines() if "cooling" in l]
    assert cool and all(c["level"] in ("warning", "info") for c in cool)


@needs_plugins("staggered-hedge", "health")
def test_hedge_launched_and_won(stack):
    p = stack.mock("p", "--ttft", "400ms", "--chunks", "2", "--chunk-delay", "1ms")
    q = stack.mock("q", *FAST)
    cfg = make_config(
        [deployment("g", p, model_info={"id": "p-dep"}), deployment("g", q, model_info={"id": "q-dep"})],
        router_settings={"strategies": ["health", {"name": "staggered-hedge", "args": {
            "delay": "100ms", "max_extra_load": 1, "min_hedges_per_second": 100}}]},
        general_settings={"log_format": "json"})
    gw = stack.gateway(cfg)
    before = scrape(gw)
    _, h = chat(gw.client(), model="g", extra_headers={"x-request-id": "req-hedge"})
    assert h["x-tailgate-deployment"] == "q-dep"
    after = scrape(gw)
    assert delta(after, before, "tailgate_hedge_eligible_requests_total", model_group="g") == 1
    assert delta(after, before, "tailgate_hedges_launched_total", model_group="g") == 1
    assert delta(after, before, "tailgate_hedges_won_total", model_group="g") == 1
    assert delta(after, before, "tailgate_attempts_total", deployment="p-dep", outcome="cancelled") == 1
    assert delta(after, before, "tailgate_retries_total") == 0
    rec = wait_for(lambda: next((json.loads(l) for l in gw.log_text().splitlines()
                                 if '"req-hedge"' in l and '"msg":"request"' in l), None), what="the record")
    assert rec["hedges"] == 1 and rec["winner"] == "q-dep"
    assert "hedge" in rec["note"], rec


# --------------------------------------------------------------------------
# switches and auth
# --------------------------------------------------------------------------

def test_metrics_auth_and_switch(stack):
    m = stack.mock("m", *FAST)
    dep = [deployment("g", m)]
    locked = stack.gateway(make_config(dep, general_settings={"master_key": MASTER_KEY, "metrics_auth": True}))
    r = httpx.get(locked.url + "/metrics")
    assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
    assert httpx.get(locked.url + "/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    r = httpx.get(locked.url + "/metrics", headers={"Authorization": f"Bearer {MASTER_KEY}"})
    assert r.status_code == 200 and "tailgate_requests_total" in r.text
    assert httpx.post(locked.url + "/metrics", headers={"Authorization": f"Bearer {MASTER_KEY}"}).status_code == 405

    # A master key alone does not lock /metrics (Prometheus scrapers rarely carry one).
    open_ = stack.gateway(make_config(dep, general_settings={"master_key": MASTER_KEY}))
    assert httpx.get(open_.url + "/metrics").status_code == 200
    # 401s on the API are counted (under _other: the body was never read).
    with pytest.raises(openai.AuthenticationError):
        open_.client(api_key="wrong").chat.completions.create(model="g", messages=USER_HI)
    s = scrape(open_)
    assert s.value("tailgate_requests_total", model_group="_other", status_class="4xx") == 1

    off = stack.gateway(make_config(dep, general_settings={"metrics": False}))
    assert httpx.get(off.url + "/metrics").status_code == 404
    off.client().chat.completions.create(model="g", messages=USER_HI)
    off.assert_healthy()


def test_text_logs_stay_the_default(stack):
    m = stack.mock("m", *FAST)
    gw = stack.gateway(make_config([deployment("g", m)]))
    gw.client().chat.completions.create(model="g", messages=USER_HI, extra_headers={"x-request-id": "req-text"})
    line = wait_for(lambda: next((l for l in gw.log_text().splitlines() if "req-text" in l), None), what="the line")
    assert not line.lstrip().startswith("{") and "status=200" in line
