"""LiteLLM fidelity (issue 14): a LiteLLM user's config and habits keep their meaning.

Each test drives the real binary with the official openai SDK against mocks and checks
both what the client sees and what each mock received.
"""
from __future__ import annotations

import time

import httpx

import openai
import pytest

from conftest import USER_HI, deployment, make_config, mock_words, wait_for

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
