"""LiteLLM fidelity (issue 14): a LiteLLM user's config and habits keep their meaning.

Each test drives the real binary with the official openai SDK against mocks and checks
both what the client sees and what each mock received.
"""
from __future__ import annotations

import json
import re
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest

from conftest import (TAILGATE, USER_HI, assert_openai_error_shape, deployment, make_config, mock_words,
                      needs_plugins, wait_for)

FAST = ("--ttft", "1ms", "--chunks", "1", "--chunk-delay", "1ms")
API = "/v1/chat/completions"


def api_calls(mock) -> int:
    return mock.stats()["by_path"].get(API, 0)


# --------------------------------------------------------------------------
# cooldowns under every routing strategy
# --------------------------------------------------------------------------

@pytest.mark.parametrize("strategy", ["simple-shuffle", "latency-based-routing", "cost-based-routing",
                                      "usage-based-routing-v2"])
def test_cooldowns_apply_under_every_routing_strategy(stack, strategy):
    good = stack.mock("good", *FAST)
    bad = stack.mock("bad", *FAST, "--fail-rate", "1", "--fail-status", "500")
    gw = stack.gateway(make_config(
        [deployment("g", good, model_info={"id": "good"}), deployment("g", bad, model_info={"id": "bad"})],
        router_settings={"routing_strategy": strategy, "num_retries": 0, "allowed_fails": 1,
                         "cooldown_time": 60}))
    client = gw.client()
    failures = 0
    for _ in range(30):
        try:
            client.chat.completions.create(model="g", messages=USER_HI)
        except openai.InternalServerError:
            failures += 1
    # allowed_fails 1: the second failure cools `bad` down for the rest of the run.
    assert api_calls(bad) <= 2, f"{strategy}: the broken deployment got {api_calls(bad)} of 30"
    assert failures == api_calls(bad)
    assert api_calls(good) == 30 - failures


# --------------------------------------------------------------------------
# no retry storm, no long client sleeps
# --------------------------------------------------------------------------

def test_default_sdk_against_a_down_group_gets_the_upstream_error_fast(stack):
    """The reproduction from the issue: one deployment, always 500; allowed_fails 1,
    cooldown_time 20, num_retries 0; OpenAI(...) with its default max_retries=2. Every call
    returns the upstream's 500 within a few seconds (it used to be a RateLimitError after
    21 s and 41 s of SDK sleeps), the cooldown never grows, and the first call after the
    upstream recovers succeeds."""
    bad = stack.mock("bad", *FAST, "--fail-rate", "1", "--fail-status", "500")
    gw = stack.gateway(make_config([deployment("g", bad, model_info={"id": "bad"})],
                                   router_settings={"allowed_fails": 1, "cooldown_time": 20, "num_retries": 0}))
    client = openai.OpenAI(base_url=gw.base_url, api_key="sk-anything")  # SDK defaults: max_retries=2
    for call in range(3):
        t0 = time.monotonic()
        with pytest.raises(openai.InternalServerError) as e:
            client.chat.completions.create(model="g", messages=USER_HI)
        took = time.monotonic() - t0
        assert took < 6, f"call {call + 1} took {took:.1f}s"
        assert e.value.status_code == 500
        assert "mock injected 500" in e.value.message, e.value.message
        if call > 0:  # the group is cooling: the answer is final, the SDK does not retry it
            assert e.value.response.headers.get("x-should-retry") == "false"
    assert "cooling for 20000ms" in gw.log_text()
    assert "40000ms" not in gw.log_text(), "a refusal-time attempt escalated the cooldown"

    bad.configure(fail_rate=0)
    r = client.chat.completions.with_raw_response.create(model="g", messages=USER_HI)
    assert r.status_code == 200 and r.headers["x-tailgate-deployment"] == "bad"
    assert "answered while cooling (panic routing)" in gw.log_text()
    # Healthy again: ordinary routing, no panic note.
    before = api_calls(bad)
    assert client.chat.completions.create(model="g", messages=USER_HI).choices[0].message.content == \
        mock_words("bad", 1)
    assert api_calls(bad) == before + 1


def test_panic_routing_picks_the_deployment_recovering_first(stack):
    """x (cheaper, tried first) and y both fail once: x cooled first, so x's cooldown ends
    first and the panic attempt goes there; y sees nothing more."""
    x = stack.mock("x", *FAST, "--fail-rate", "1", "--fail-status", "503")
    y = stack.mock("y", *FAST, "--fail-rate", "1", "--fail-status", "503")
    gw = stack.gateway(make_config(
        [deployment("g", x, model_info={"id": "x"}, input_cost_per_token=1e-7, output_cost_per_token=1e-7),
         deployment("g", y, model_info={"id": "y"}, input_cost_per_token=1e-5, output_cost_per_token=1e-5)],
        router_settings={"routing_strategy": "cost-based-routing", "allowed_fails": 0, "cooldown_time": 30,
                         "num_retries": 1}))
    client = gw.client()
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="g", messages=USER_HI)  # both fail once: both cooling
    assert [api_calls(x), api_calls(y)] == [1, 1]
    with pytest.raises(openai.InternalServerError) as e:
        client.chat.completions.create(model="g", messages=USER_HI)
    assert e.value.response.headers["x-tailgate-attempts"] == "1"
    assert [api_calls(x), api_calls(y)] == [2, 1]
    x.configure(fail_rate=0)
    r = client.chat.completions.with_raw_response.create(model="g", messages=USER_HI)
    assert r.status_code == 200 and r.headers["x-tailgate-deployment"] == "x"
    for _ in range(3):  # x healthy again: ordinary routing, y (still cooling) untouched
        assert client.chat.completions.with_raw_response.create(model="g", messages=USER_HI).status_code == 200
    assert api_calls(y) == 1


def test_upstream_retry_after_reaches_clients_capped(stack):
    rl = stack.mock("rl", *FAST, "--fail-rate", "1", "--fail-status", "429", "--retry-after", "60")
    gw = stack.gateway(make_config([deployment("g", rl)], router_settings={"num_retries": 0}))
    with pytest.raises(openai.RateLimitError) as e:
        gw.client().chat.completions.create(model="g", messages=USER_HI)
    assert e.value.response.headers["retry-after"] == "5"  # max_client_retry_after's default
    gw2 = stack.gateway(make_config([deployment("g", rl)],
                                    router_settings={"num_retries": 0, "max_client_retry_after": "2s"}))
    with pytest.raises(openai.RateLimitError) as e:
        gw2.client().chat.completions.create(model="g", messages=USER_HI)
    assert e.value.response.headers["retry-after"] == "2"


# --------------------------------------------------------------------------
# wildcard routing
# --------------------------------------------------------------------------

def test_wildcard_groups_route_any_matching_name_and_send_it_upstream(stack):
    anyone = stack.mock("anyone", *FAST)
    oai = stack.mock("oai", *FAST)
    exact = stack.mock("exact", *FAST)
    gw = stack.gateway(make_config([
        deployment("*", anyone, model="openai/*", model_info={"id": "star"}),
        deployment("openai/*", oai, model="openai/*", model_info={"id": "openai-star"}),
        deployment("gpt-4o", exact, model="openai/gpt-4o-2024-08-06", model_info={"id": "exact"}),
    ]))
    client = gw.client()

    def served(model: str, **kw) -> tuple[str, str]:
        r = client.chat.completions.with_raw_response.create(model=model, messages=USER_HI, **kw)
        assert r.status_code == 200
        return r.headers["x-tailgate-deployment"], r.headers["x-tailgate-model-group"]

    assert served("gpt-4o-mini") == ("star", "*")
    assert anyone.last_body()["model"] == "gpt-4o-mini"  # the client's name, not "*"
    assert served("openai/gpt-4.1") == ("openai-star", "openai/*")  # the more specific pattern
    assert oai.last_body()["model"] == "gpt-4.1"
    assert served("gpt-4o") == ("exact", "gpt-4o")  # exact names win over patterns
    assert exact.last_body()["model"] == "gpt-4o-2024-08-06"
    # Streams and model lists resolve the same way.
    chunks = list(client.chat.completions.create(model="my-local-model", messages=USER_HI, stream=True))
    assert chunks and anyone.last_body()["model"] == "my-local-model"
    r = client.chat.completions.with_raw_response.create(model="claude-x,openai/o3", messages=USER_HI,
                                                         extra_body={"fastest_response": True})
    assert r.status_code == 200
    assert {b["model"] for b in (anyone.last_body(), oai.last_body())} == {"claude-x", "o3"}

    listed = client.models.list()
    assert [m.id for m in listed.data] == ["gpt-4o"]
    assert listed.model_extra["wildcard_model_groups"] == ["openai/*", "*"]
    assert client.models.retrieve("some-new-model").id == "some-new-model"


def test_without_a_catch_all_unknown_names_are_404(stack):
    oai = stack.mock("oai", *FAST)
    gw = stack.gateway(make_config([deployment("openai/*", oai, model="openai/*")]))
    with pytest.raises(openai.NotFoundError) as e:
        gw.client().chat.completions.create(model="gpt-4o", messages=USER_HI)
    assert e.value.body["code"] == "model_not_found"
    with pytest.raises(openai.NotFoundError):
        gw.client().chat.completions.create(model="openai/", messages=USER_HI)  # '*' must stand for something
    assert api_calls(oai) == 0


# --------------------------------------------------------------------------
# client-side conventions
# --------------------------------------------------------------------------

def test_litellm_key_header_and_response_headers(stack):
    m = stack.mock("m", *FAST)
    gw = stack.gateway(make_config(
        [deployment("g", m, model_info={"id": "dep-g"}, input_cost_per_token=2e-6, output_cost_per_token=1e-5)],
        general_settings={"master_key": "sk-master-fid"}))
    # LiteLLM's own key header, with or without "Bearer ".
    for value in ("sk-master-fid", "Bearer sk-master-fid"):
        r = httpx.post(gw.base_url + "/chat/completions", json={"model": "g", "messages": USER_HI},
                       headers={"x-litellm-api-key": value})
        assert r.status_code == 200, r.text
    r = httpx.post(gw.base_url + "/chat/completions", json={"model": "g", "messages": USER_HI},
                   headers={"x-litellm-api-key": "sk-wrong"})
    assert r.status_code == 401

    client = gw.client(api_key="sk-master-fid")
    raw = client.chat.completions.with_raw_response.create(model="g", messages=USER_HI)
    h, body = raw.headers, raw.parse()
    assert h["x-litellm-model-id"] == "dep-g" and h["x-litellm-model-group"] == "g"
    assert h["x-litellm-call-id"].startswith("req_")
    assert h["x-litellm-attempted-retries"] == "0" and h["x-litellm-attempted-fallbacks"] == "0"
    expected = body.usage.prompt_tokens * 2e-6 + body.usage.completion_tokens * 1e-5
    assert float(h["x-litellm-response-cost"]) == pytest.approx(expected, rel=1e-9)
    for k, v in h.items():  # never an api_base or a key
        assert m.url not in v and "sk-master-fid" not in v and "sk-mock" not in v, (k, v)


def test_retries_and_fallbacks_are_counted_in_litellm_headers(stack):
    bad = stack.mock("bad", *FAST, "--fail-rate", "1", "--fail-status", "500")
    bad2 = stack.mock("bad2", *FAST, "--fail-rate", "1", "--fail-status", "503")
    good = stack.mock("good", *FAST)
    gw = stack.gateway(make_config(
        [deployment("a", bad), deployment("a", bad2), deployment("b", good)],
        router_settings={"num_retries": 1, "fallbacks": [{"a": ["b"]}], "allowed_fails": 10}))
    raw = gw.client().chat.completions.with_raw_response.create(model="a", messages=USER_HI)
    assert raw.status_code == 200
    assert raw.headers["x-litellm-attempted-retries"] == "1"
    assert raw.headers["x-litellm-attempted-fallbacks"] == "1"
    assert "x-litellm-response-cost" not in raw.headers  # no price configured


def test_forward_client_headers_allowlist(stack, tmp_path):
    m = stack.mock("m", *FAST)
    gw = stack.gateway(make_config([deployment("g", m)],
                                   general_settings={"forward_client_headers": ["OpenAI-Organization", "x-team"]}))
    gw.client().chat.completions.create(model="g", messages=USER_HI, extra_headers={
        "OpenAI-Organization": "org-123", "x-team": "search", "x-other": "dropped"})
    got = m.api_requests()[-1]["headers"]
    assert got.get("openai-organization") == "org-123" and got.get("x-team") == "search"
    assert "x-other" not in got
    # Without the allowlist nothing is forwarded.
    m2 = stack.mock("m2", *FAST)
    gw2 = stack.gateway(make_config([deployment("g", m2)]))
    gw2.client().chat.completions.create(model="g", messages=USER_HI, extra_headers={"OpenAI-Organization": "o"})
    assert "openai-organization" not in m2.api_requests()[-1]["headers"]


@pytest.mark.parametrize("name", ["Authorization", "connection", "x-litellm-api-key", "Transfer-Encoding"])
def test_forwarding_credentials_or_hop_by_hop_headers_is_a_config_error(tmp_path, name):
    import json
    import subprocess

    from conftest import TAILGATE
    path = tmp_path / "fwd.yaml"
    path.write_text(json.dumps(make_config([deployment("g", api_base="http://127.0.0.1:9/v1")],
                                           general_settings={"forward_client_headers": [name]}), indent=2))
    p = subprocess.run([str(TAILGATE), "--config", str(path), "--check"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 1 and "general_settings.forward_client_headers[0]" in p.stderr, p.stderr
    assert "never forwarded" in p.stderr


# --------------------------------------------------------------------------
# the Node SDK: one stream, one error
# --------------------------------------------------------------------------

NODE_DIR = __import__("pathlib").Path(__file__).parent / "node"


def node_call(base_url: str, model: str, mode: str, max_retries: int = 2) -> dict:
    import json
    import shutil
    import subprocess
    if not shutil.which("node") or not (NODE_DIR / "node_modules" / "openai").is_dir():
        pytest.skip("node or tests/e2e/node/node_modules missing (tools/scripts/test.sh runs npm ci)")
    p = subprocess.run(["node", str(NODE_DIR / "sdk_call.mjs"), base_url, model, mode, str(max_retries)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout.strip().splitlines()[-1])


def test_node_sdk_stream_and_error(stack):
    good = stack.mock("good", "--ttft", "1ms", "--chunks", "5", "--chunk-delay", "1ms")
    bad = stack.mock("bad", *FAST, "--fail-rate", "1", "--fail-status", "500")
    gw = stack.gateway(make_config([deployment("g", good), deployment("*", bad, model="openai/*")],
                                   router_settings={"allowed_fails": 1, "cooldown_time": 20}))
    out = node_call(gw.base_url, "g", "stream")
    assert out["ok"] and out["content"] == mock_words("good", 5) and out["chunks"] >= 5, out
    t0 = time.monotonic()
    err = node_call(gw.base_url, "some-model", "plain")  # SDK defaults: two retries
    assert not err["ok"] and err["status"] == 500 and "mock injected 500" in err["message"], err
    assert time.monotonic() - t0 < 10
    assert bad.last_body()["model"] == "some-model"


# --------------------------------------------------------------------------
# usage-based routing (rpm / tpm) and least-busy
# --------------------------------------------------------------------------

def tokens_counted(gw) -> int:
    """Tokens the gateway has seen in upstream usage (all deployments). The metrics
    observer runs right after the router's plugins observed the same event, so once a
    count shows here the usage plugin has it too."""
    text = httpx.get(gw.url + "/metrics", timeout=10).text
    return int(sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith("tailgate_tokens_total{")))


@needs_plugins("usage")
def test_usage_based_routing_v2_spreads_then_refuses_at_rpm(stack):
    a = stack.mock("a", *FAST)
    b = stack.mock("b", *FAST)
    gw = stack.gateway(make_config(
        [deployment("g", a, model_info={"id": "a"}, rpm=2), deployment("g", b, model_info={"id": "b"}, rpm=2)],
        router_settings={"routing_strategy": "usage-based-routing-v2", "num_retries": 0}))
    client = gw.client()
    served = []
    for _ in range(4):
        r = client.chat.completions.with_raw_response.create(model="g", messages=USER_HI)
        assert r.status_code == 200
        served.append(r.headers["x-tailgate-deployment"])
    assert sorted(served) == ["a", "a", "b", "b"], served
    assert served[:2] in (["a", "b"], ["b", "a"]), f"the second goes to the one with fewer tokens: {served}"

    with pytest.raises(openai.RateLimitError) as e:
        client.chat.completions.create(model="g", messages=USER_HI)
    retry_after = int(e.value.response.headers["retry-after"])
    assert 1 <= retry_after <= 5, retry_after  # ~60 s until a slot frees, capped by max_client_retry_after
    err = assert_openai_error_shape(e.value.response, 429)
    assert err["type"] == "rate_limit_error" and err["code"] == "all_deployments_at_limit", err
    assert "rpm 2/2" in err["message"], err
    assert [api_calls(a), api_calls(b)] == [2, 2], "the refused request reached no upstream"
    gw.assert_healthy()


@needs_plugins("usage")
def test_usage_based_routing_honours_tpm_from_upstream_usage(stack):
    # The mock reports prompt_tokens = words of the messages (2), completion_tokens = chunks (4): 6 a call.
    m = stack.mock("m", "--ttft", "1ms", "--chunks", "4", "--chunk-delay", "1ms")
    gw = stack.gateway(make_config([deployment("g", m, model_info={"id": "m"}, tpm=13)],
                                   router_settings={"routing_strategy": "usage-based-routing", "num_retries": 0}))
    client = gw.client()
    assert client.chat.completions.create(model="g", messages=USER_HI).usage.total_tokens == 6
    wait_for(lambda: tokens_counted(gw) == 6, what="6 tokens counted")
    # A stream's usage counts too (the upstream sends it when the client asks for it).
    chunks = list(client.chat.completions.create(model="g", messages=USER_HI, stream=True,
                                                 stream_options={"include_usage": True}))
    assert chunks[-1].usage.total_tokens == 6
    wait_for(lambda: tokens_counted(gw) == 12, what="12 tokens counted")
    client.chat.completions.create(model="g", messages=USER_HI)  # 12 < 13: still open
    wait_for(lambda: tokens_counted(gw) == 18, what="18 tokens counted")
    with pytest.raises(openai.RateLimitError) as e:
        client.chat.completions.create(model="g", messages=USER_HI)
    assert int(e.value.response.headers["retry-after"]) <= 5
    assert "tpm 18/13" in e.value.message, e.value.message
    assert api_calls(m) == 3


@needs_plugins("least-busy", "cost")
def test_least_busy_sends_a_burst_to_the_less_busy_deployment(stack):
    slow = stack.mock("slow", "--ttft", "5s", "--chunks", "1", "--chunk-delay", "1ms")
    fast = stack.mock("fast", *FAST)
    gw = stack.gateway(make_config(
        [deployment("g", slow, model_info={"id": "slow"}, input_cost_per_token=1e-9, output_cost_per_token=1e-9),
         deployment("g", fast, model_info={"id": "fast"}, input_cost_per_token=1e-5, output_cost_per_token=1e-5)],
        router_settings={"routing_strategy": "least-busy", "num_retries": 0,
                         "allow_request_strategy_override": True, "request_strategies": ["cost"]}))
    client = gw.client()
    # Three requests pinned to `slow` (cost picks the cheaper one) keep 3 attempts in flight there.
    with ThreadPoolExecutor(max_workers=6) as pool:
        pinned = [pool.submit(client.chat.completions.with_raw_response.create, model="g", messages=USER_HI,
                              extra_body={"strategies": ["cost"]}) for _ in range(3)]
        wait_for(lambda: slow.stats()["in_flight"] == 3, timeout=15, what="3 attempts in flight on slow")
        # A concurrent burst of 3 under least-busy: `fast` has fewer in flight (at most 2 < 3) every time.
        start = threading.Barrier(3)

        def burst_one():
            start.wait()
            return client.chat.completions.with_raw_response.create(model="g", messages=USER_HI)

        burst = [pool.submit(burst_one) for _ in range(3)]
        got = [f.result(timeout=20).headers["x-tailgate-deployment"] for f in burst]
        assert got == ["fast"] * 3, got
        assert slow.stats()["in_flight"] == 3, "the burst finished while slow was still busy"
        assert [f.result(timeout=20).headers["x-tailgate-deployment"] for f in pinned] == ["slow"] * 3
    assert [api_calls(slow), api_calls(fast)] == [3, 3]


def test_check_names_the_chain_it_runs(tmp_path):
    for strategy, chain in [("usage-based-routing-v2", "health usage"), ("usage-based-routing", "health usage"),
                            ("least-busy", "health least-busy"), ("simple-shuffle", "health simple-shuffle")]:
        cfg = tmp_path / f"{strategy}.yaml"
        cfg.write_text(json.dumps(make_config(
            [{"model_name": "g", "litellm_params": {"model": "openai/x", "api_base": "http://127.0.0.1:9/v1"}}],
            router_settings={"routing_strategy": strategy})))
        r = subprocess.run([str(TAILGATE), "--check", "--config", str(cfg)], capture_output=True, text=True,
                           timeout=30)
        assert r.returncode == 0, (r.stdout, r.stderr)
        assert f"strategy chain: {chain}  (from routing_strategy: {strategy})" in r.stdout, r.stdout
        assert "not implemented" not in r.stdout + r.stderr
# config fidelity: litellm_settings, environment_variables, include,
# model_group_alias, every config error at once
# --------------------------------------------------------------------------

def test_litellm_settings_num_retries_and_fallbacks_are_honoured(stack):
    """A LiteLLM config keeps retries and fallbacks in litellm_settings: a failing group is
    retried num_retries times, then its fallback group answers. router_settings wins."""
    bad = stack.mock("bad", *FAST, "--fail-rate", "1", "--fail-status", "500")
    good = stack.mock("good", *FAST)
    cfg = make_config([deployment("a", bad, model_info={"id": "bad"}), deployment("b", good, model_info={"id": "good"})],
                      router_settings={"allowed_fails": 100})
    cfg["litellm_settings"] = {"num_retries": 2, "fallbacks": [{"a": ["b"]}], "drop_params": True}
    gw = stack.gateway(cfg)
    raw = gw.client().chat.completions.with_raw_response.create(model="a", messages=USER_HI)
    assert raw.status_code == 200
    assert raw.parse().choices[0].message.content == mock_words("good", 1)
    assert raw.headers["x-tailgate-deployment"] == "good"
    assert raw.headers["x-litellm-attempted-retries"] == "2"
    assert raw.headers["x-litellm-attempted-fallbacks"] == "1"
    assert (api_calls(bad), api_calls(good)) == (3, 1)
    assert "litellm_settings" not in gw.log_text()  # nothing warned: every key was honoured

    # router_settings.num_retries wins over litellm_settings (LiteLLM's precedence).
    cfg["router_settings"]["num_retries"] = 0
    gw2 = stack.gateway(cfg)
    assert gw2.client().chat.completions.create(model="a", messages=USER_HI).choices[0].message.content == \
        mock_words("good", 1)
    assert (api_calls(bad), api_calls(good)) == (4, 2)
    assert "litellm_settings.num_retries: overridden by router_settings.num_retries" in gw2.log_text()


def test_environment_variables_feed_os_environ_api_key(stack):
    m = stack.mock("m", *FAST)
    cfg = make_config([deployment("g", m, api_key="os.environ/TG_E2E_FID_KEY")])
    cfg["environment_variables"] = {"TG_E2E_FID_KEY": "sk-from-environment-variables"}
    # The process has its own value: the config's environment_variables come first (as in LiteLLM,
    # which sets them before reading os.environ/).
    gw = stack.gateway(cfg, env={"TG_E2E_FID_KEY": "sk-from-process"})
    gw.client().chat.completions.create(model="g", messages=USER_HI)
    assert m.api_requests()[-1]["headers"].get("authorization") == "Bearer sk-from-environment-variables"
    assert "sk-from-environment-variables" not in gw.log_text()


def test_include_adds_a_group_the_sdk_uses(stack, tmp_path):
    main = stack.mock("main", *FAST)
    extra = stack.mock("extra", *FAST)
    (tmp_path / "teams").mkdir()
    (tmp_path / "teams" / "extra.yaml").write_text(json.dumps({
        "model_list": [deployment("extra-group", extra, model="openai/extra-upstream", model_info={"id": "extra"})],
        "router_settings": {"num_retries": 0},
    }, indent=2))
    cfg = make_config([deployment("main-group", main)])
    cfg["include"] = ["teams/extra.yaml"]  # relative to the including file (the gateway's config in tmp_path)
    gw = stack.gateway(cfg)
    client = gw.client()
    raw = client.chat.completions.with_raw_response.create(model="extra-group", messages=USER_HI)
    assert raw.status_code == 200 and raw.headers["x-tailgate-deployment"] == "extra"
    assert raw.parse().choices[0].message.content == mock_words("extra", 1)
    assert extra.last_body()["model"] == "extra-upstream"
    assert [m.id for m in client.models.list().data] == ["main-group", "extra-group"]
    assert api_calls(main) == 0


def test_model_group_alias_is_served_and_listed(stack):
    m = stack.mock("m", *FAST)
    anyone = stack.mock("anyone", *FAST)
    gw = stack.gateway(make_config(
        [deployment("gpt-4o", m, model="openai/gpt-4o-2024-08-06", model_info={"id": "real"}),
         deployment("*", anyone, model="openai/*", model_info={"id": "star"})],
        router_settings={"model_group_alias": {"gpt-4": "gpt-4o",
                                               "internal-4o": {"model": "gpt-4o", "hidden": True}}}))
    client = gw.client()
    for name in ("gpt-4", "internal-4o"):  # an alias wins over the catch-all "*"
        raw = client.chat.completions.with_raw_response.create(model=name, messages=USER_HI)
        assert raw.status_code == 200 and raw.headers["x-tailgate-deployment"] == "real", name
        assert m.last_body()["model"] == "gpt-4o-2024-08-06"  # the real group's upstream model
    chunks = list(client.chat.completions.create(model="gpt-4", messages=USER_HI, stream=True))
    assert chunks and api_calls(m) == 3 and api_calls(anyone) == 0
    listed = [x.id for x in client.models.list().data]
    assert listed == ["gpt-4o", "gpt-4"]  # the hidden alias routes but is not listed
    assert client.models.retrieve("gpt-4").id == "gpt-4"


def test_check_reports_every_config_error_with_file_and_line(tmp_path):
    cfg = tmp_path / "three.yaml"
    cfg.write_text(
        "model_list:\n"                                            # 1
        "  - model_name: a\n"                                      # 2
        "    litellm_params:\n"                                    # 3
        "      model: openai/a\n"                                  # 4
        "      api_base: http://127.0.0.1:9/v1\n"                  # 5
        "      rpm: lots\n"                                        # 6
        "router_settings:\n"                                       # 7
        "  fallbacks: [{a: [no-such-group]}]\n"                    # 8
        "litellm_settings:\n"                                      # 9
        "  request_timeout: forever\n")                            # 10
    for extra in (["--check"], []):
        p = subprocess.run([str(TAILGATE), *extra, "--config", str(cfg)], capture_output=True, text=True, timeout=30)
        assert p.returncode == 1, (extra, p.stdout, p.stderr)
        assert "listening on" not in p.stdout
        lines = [ln for ln in p.stderr.splitlines() if "three.yaml:" in ln]
        assert len(lines) == 3, p.stderr
        assert re.search(r"three\.yaml:6: model_list\[0\]\.litellm_params\.rpm: expected an integer", lines[0])
        assert re.search(r"three\.yaml:8: router_settings\.fallbacks\[0\]\.a\[0\]: unknown model group", lines[1])
        assert re.search(r"three\.yaml:10: litellm_settings\.request_timeout: expected a duration", lines[2])
        assert "3 errors" in p.stderr


# --------------------------------------------------------------------------
# drop_params
# --------------------------------------------------------------------------

def test_drop_params_removes_what_a_provider_rejects(stack):
    groq = stack.mock("groq", *FAST)
    oai = stack.mock("oai", *FAST)
    cfg = make_config([deployment("llama", groq, model="groq/llama-3.1-8b-instant"),
                       deployment("gpt", oai, model="openai/gpt-4o", additional_drop_params=["seed"])])
    cfg["litellm_settings"] = {"drop_params": True}
    gw = stack.gateway(cfg)
    client = gw.client()
    extra = dict(logprobs=True, top_logprobs=2, logit_bias={"50256": -100}, seed=7, temperature=0.3)
    client.chat.completions.create(model="llama", messages=USER_HI, **extra)
    sent = groq.last_body()
    assert not {"logprobs", "top_logprobs", "logit_bias"} & set(sent), sent  # Groq refuses these
    assert sent["seed"] == 7 and sent["temperature"] == 0.3 and sent["messages"] == USER_HI
    client.chat.completions.create(model="gpt", messages=USER_HI, **extra)
    sent = oai.last_body()
    assert "seed" not in sent  # the deployment's additional_drop_params
    assert sent["logprobs"] is True and sent["logit_bias"] == {"50256": -100}  # OpenAI takes them
    # Without drop_params only additional_drop_params apply.
    gw2 = stack.gateway(make_config([deployment("llama", groq, model="groq/llama-3.1-8b-instant")]))
    gw2.client().chat.completions.create(model="llama", messages=USER_HI, logprobs=True)
    assert groq.last_body()["logprobs"] is True
    # A deployment's own litellm_params.drop_params wins over litellm_settings.
    gw3 = stack.gateway(make_config([deployment("llama", groq, model="groq/llama-3.1-8b-instant", drop_params=True)]))
    gw3.client().chat.completions.create(model="llama", messages=USER_HI, logprobs=True)
    assert "logprobs" not in groq.last_body()
