"""Race and hedge across a translated provider (bedrock/, binary event stream)
and an OpenAI-wire one: the commit point is the first content event of either
wire, never a response head, a role chunk or Bedrock's bare messageStart, and the
loser is cancelled for real (its mock sees the disconnect).

The Bedrock mock sends its head and messageStart at t=0 and content at its TTFT;
the OpenAI mock holds even its head until its TTFT (--headers-at-ttft). So a
gateway that committed on anything but content would pick Bedrock every time."""
from __future__ import annotations

import json

import pytest

from conftest import USER_HI, MockClock, deployment, make_config, mock_words, needs_plugins, wait_for

CHUNKS = 3
AKID, SECRET = "AKIDRACE", "race-secret"


def bedrock(group, mock, dep_id):
    return {"model_name": group, "model_info": {"id": dep_id}, "litellm_params": {
        "model": "bedrock/amazon.nova-lite-v1:0", "api_base": mock.url, "aws_access_key_id": AKID,
        "aws_secret_access_key": SECRET, "aws_region_name": "us-west-2"}}


@pytest.fixture(scope="module")
def env(module_stack):
    br = module_stack.mock("brr", "--chunk-delay", "5ms", "--chunks", str(CHUNKS), "--ttft", "600ms",
                           "--aws-access-key-id", AKID, "--aws-secret-access-key", SECRET)
    oa = module_stack.mock("oar", "--chunk-delay", "5ms", "--chunks", str(CHUNKS), "--ttft", "100ms",
                           "--headers-at-ttft")
    cfg = make_config([bedrock("br", br, "br-dep"), deployment("oa", oa, model_info={"id": "oa-dep"}),
                       bedrock("hedged", br, "hedge-br"), deployment("hedged", oa, model_info={"id": "hedge-oa"})],
                      router_settings={"disable_cooldowns": True, "strategies": [
                          "health", {"name": "staggered-hedge",
                                     "args": {"delay": "50ms", "max_extra_load": 1, "min_hedges_per_second": 100}}]})
    gw = module_stack.gateway(cfg)
    return gw, br, oa


@pytest.fixture(autouse=True)
def _idle(env):
    gw, br, oa = env
    for m in (br, oa):
        wait_for(lambda: m.stats()["in_flight"] == 0, timeout=3, what=f"{m.name} idle")
        m.reset()
    yield
    gw.assert_healthy()


def race(gw, stream, model="br,oa", **kw):
    raw = gw.client().chat.completions.with_raw_response.create(
        model=model, messages=USER_HI, stream=stream, extra_body={"fastest_response": True}, **kw)
    resp = raw.parse()
    if stream:
        text = "".join(c.choices[0].delta.content or "" for c in resp if c.choices)
    else:
        text = resp.choices[0].message.content
    return text, raw.headers


def loser_span_ms(mock):
    """How long the gateway kept the loser's request open (received -> cancelled)."""
    [r] = mock.api_requests()
    wait_for(lambda: mock.api_requests()[0]["outcome"] == "cancelled", timeout=3, what="the loser cancelled")
    r = mock.api_requests()[0]
    return r["finished_ms"] - r["received_ms"]


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "nonstream"])
def test_openai_wins_over_an_earlier_bedrock_message_start(env, stream):
    gw, br, oa = env
    text, h = race(gw, stream)
    assert text == mock_words("oar", CHUNKS) and h["x-tailgate-deployment"] == "oa-dep"
    # Bedrock's head and messageStart came at ~0 ms, its content would at 600 ms:
    # it was cancelled when the OpenAI side committed (~100 ms), not kept to its end.
    assert loser_span_ms(br) < 450


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "nonstream"])
def test_bedrock_wins_at_its_first_content_delta(env, stream):
    gw, br, oa = env
    br.configure(ttft_ms=100)
    oa.configure(ttft_ms=600)
    text, h = race(gw, stream)
    assert text == mock_words("brr", CHUNKS) and h["x-tailgate-deployment"] == "br-dep"
    assert loser_span_ms(oa) < 450
    assert json.loads(br.api_requests()[0]["body"])["messages"][0]["content"] == [{"text": "hello there"}]


@needs_plugins("staggered-hedge", "health")
def test_hedge_from_a_slow_bedrock_primary(env):
    gw, br, oa = env
    # Primary bedrock (config order), hedge to the OpenAI deployment after 50 ms:
    # the hedge's first content (~150 ms) beats Bedrock's (600 ms) though Bedrock's
    # stream started (head + messageStart) at once.
    chunks = list(gw.client().chat.completions.with_raw_response.create(
        model="hedged", messages=USER_HI, stream=True).parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == mock_words("oar", CHUNKS)
    assert loser_span_ms(br) < 450
    clock_b, clock_o = MockClock(br), MockClock(oa)
    launch_gap = clock_o(oa.api_requests()[0]["received_ms"]) - clock_b(br.api_requests()[0]["received_ms"])
    assert 0.03 <= launch_gap < 0.4, f"hedge launched {launch_gap * 1000:.0f} ms after the primary"
