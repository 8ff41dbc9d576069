"""The seed user's flow (test 14): configs/seed.yaml as shipped (latency-based
routing, allowed_fails, cooldown_time) and the calls of the seed's
test_openai_sdk.py. The mocks get the config's ports 18001-18003 when those
are free; otherwise a copy of seed.yaml with the ports rewritten is used."""
from __future__ import annotations

import re

import openai
import pytest

from conftest import REPO, USER_HI, mock_words

SEED = REPO / "configs" / "seed.yaml"
HI = [{"role": "user", "content": "Hi"}]


@pytest.fixture(scope="module")
def seed(module_stack):
    text = SEED.read_text()
    fixed = [int(p) for p in re.findall(r"127\.0\.0\.1:(\d+)", text)]
    assert sorted(set(fixed)) == [18001, 18002, 18003], fixed
    mocks = {}
    for port, name in zip((18001, 18002, 18003), ("mockA", "mockB", "mockC")):
        args = ("--ttft", "2ms", "--chunk-delay", "1ms", "--chunks", "3")
        try:
            m = module_stack.mock(name, *args, port=port)
        except RuntimeError:  # port taken (e.g. a running demo): any free port
            m = module_stack.mock(name, *args)
        mocks[port] = m
    if all(m.port == p for p, m in mocks.items()):
        cfg = text  # the file as shipped
    else:
        cfg = re.sub(r"127\.0\.0\.1:(1800[123])", lambda mt: f"127.0.0.1:{mocks[int(mt.group(1))].port}", text)
    gw = module_stack.gateway(cfg, name="seed")
    return gw, mocks[18001], mocks[18002], mocks[18003]


@pytest.fixture(autouse=True)
def _reset(seed):
    for m in seed[1:]:
        m.reset()
    yield
    seed[0].assert_healthy()


def words_of_any(text, mocks):
    return any(text == mock_words(m.name, 3) for m in mocks)


def test_seed_standard_call(seed):
    gw, a, b, c = seed
    # client = openai.OpenAI(api_key="anything", base_url="http://localhost:4000")
    client = openai.OpenAI(api_key="anything", base_url=gw.url, max_retries=0)
    raw = client.chat.completions.with_raw_response.create(model="gpt-3.5-turbo", messages=HI)
    response = raw.parse()
    assert words_of_any(response.choices[0].message.content, (a, b)), response.choices[0].message.content
    assert raw.headers.get("x-tailgate-deployment")
    assert raw.headers.get("x-tailgate-model-group") == "gpt-3.5-turbo"
    assert a.received() + b.received() == 1 and c.received() == 0
    # The groq deployment of the group gets its upstream model name.
    for m, want in ((a, "gpt-3.5-turbo"), (b, "llama-3.1-8b-instant")):
        if m.received():
            assert m.last_body()["model"] == want


def test_seed_model_id_header(seed):
    gw = seed[0]
    raw = gw.client().chat.completions.with_raw_response.create(model="gpt-3.5-turbo", messages=HI)
    assert raw.headers.get("x-litellm-model-id") == raw.headers.get("x-tailgate-deployment")


def test_seed_many_calls_all_served(seed):
    gw, a, b, c = seed
    client = gw.client()
    for i in range(20):
        r = client.chat.completions.create(model="gpt-3.5-turbo", messages=HI, stream=bool(i % 2))
        if i % 2:
            text = "".join(ch.choices[0].delta.content or "" for ch in r if ch.choices)
        else:
            text = r.choices[0].message.content
        assert words_of_any(text, (a, b)), text
    assert a.received() + b.received() == 20 and c.received() == 0
    r = client.chat.completions.create(model="groq-llama", messages=HI)
    assert r.choices[0].message.content == mock_words(c.name, 3)


@pytest.mark.parametrize("models", ["gpt-3.5-turbo,gpt-3.5-turbo", "gpt-3.5-turbo,groq-llama"])
def test_seed_race_fastest_response(seed, models):
    # The seed's call: every listed group is asked at once, one answer comes back.
    gw, a, b, c = seed
    before = (a.received(), b.received(), c.received())
    client = gw.client()
    raw = client.chat.completions.with_raw_response.create(
        model=models, messages=HI, extra_body={"fastest_response": True})
    r = raw.parse()
    assert words_of_any(r.choices[0].message.content, (a, b, c)), r.choices[0].message.content
    assert raw.headers["x-tailgate-attempts"] == "2"
    after = (a.received(), b.received(), c.received())
    delta = [x - y for x, y in zip(after, before)]
    if models == "gpt-3.5-turbo,gpt-3.5-turbo":
        # the same group listed twice races two different deployments of it
        assert delta == [1, 1, 0], delta
    else:
        assert delta[0] + delta[1] == 1 and delta[2] == 1, delta


def test_seed_model_list_without_fastest_returns_every_result(seed):
    gw, a, b, c = seed
    client = gw.client()
    r = client.chat.completions.create(model="gpt-3.5-turbo,groq-llama", messages=HI)
    results = r.model_extra["results"]
    assert [x["model_group"] for x in results] == ["gpt-3.5-turbo", "groq-llama"]
    assert all(x["status"] == 200 for x in results), results
    assert results[1]["response"]["choices"][0]["message"]["content"] == mock_words(c.name, 3)
    # the top level is the first successful result, so plain SDK code keeps working
    assert r.choices[0].message.content == results[0]["response"]["choices"][0]["message"]["content"]


def test_seed_extra_body_overrides(seed):
    gw, a, b, c = seed
    client = gw.client()
    r = client.chat.completions.create(
        model="gpt-3.5-turbo", messages=USER_HI,
        extra_body={"fallbacks": ["groq-llama"], "num_retries": 5, "timeout": 60,
                    "metadata": {"user_id": "user-123", "request_id": "req-456"}})
    assert r.choices[0].message.content
    sent = (a if a.received() else b).last_body()
    for k in ("fallbacks", "num_retries", "timeout", "metadata"):
        assert k not in sent
    assert "user-123" in gw.log_text()  # metadata reaches the request log
