"""OpenAI-compatible providers by prefix (mistral/, xai/, fireworks_ai/, openrouter/,
perplexity/, cerebras/, deepinfra/, azure_ai/): each starts, routes to a mock given
as its api_base, and carries chat stream / non-stream / tools / errors through.
Their default bases (no api_base) are checked in the unit test
tests/unit/server/provider_prefixes_test.cpp; here a config that relies on them
must start and list its groups."""
from __future__ import annotations

import json

import httpx
import openai
import pytest

from conftest import USER_HI, assert_openai_error_shape, deployment, make_config, mock_words

PREFIXES = ["mistral", "xai", "fireworks_ai", "openrouter", "perplexity", "cerebras", "deepinfra", "azure_ai"]
TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "weather",
                                           "parameters": {"type": "object", "properties": {}}}}]


@pytest.fixture(scope="module")
def env(module_stack):
    m = module_stack.mock("compat", "--ttft", "1ms", "--chunk-delay", "1ms", "--chunks", "3")
    deps = [deployment(p, m, model=f"{p}/org/model-{p}", api_key=f"key-{p}", num_retries=0) for p in PREFIXES]
    return module_stack.gateway(make_config(deps)), m


@pytest.fixture(autouse=True)
def _reset(env):
    env[1].reset()
    yield
    env[0].assert_healthy()


@pytest.mark.parametrize("prefix", PREFIXES)
def test_chat_stream_tools_and_errors(env, prefix):
    gw, m = env
    client = gw.client()
    resp = client.chat.completions.create(model=prefix, messages=USER_HI)
    assert resp.choices[0].message.content == mock_words("compat", 3)
    assert resp.usage.completion_tokens == 3

    stream = client.chat.completions.create(model=prefix, messages=USER_HI, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == mock_words("compat", 3)

    tool = client.chat.completions.create(model=prefix, messages=USER_HI, tools=TOOLS)
    call = tool.choices[0].message.tool_calls[0]
    assert (call.function.name, json.loads(call.function.arguments)) == ("get_weather", {"mock": "compat"})
    assert tool.choices[0].finish_reason == "tool_calls"

    reqs = m.api_requests()
    assert len(reqs) == 3
    for r in reqs:
        assert r["path"] == "/v1/chat/completions", r["path"]
        assert r["headers"]["authorization"] == f"Bearer key-{prefix}"
        assert json.loads(r["body"])["model"] == f"org/model-{prefix}", "the prefix is the gateway's, not the upstream's"

    m.configure(fail_rate=1, fail_status=429, retry_after=3)
    with pytest.raises(openai.RateLimitError) as ei:
        client.chat.completions.create(model=prefix, messages=USER_HI)
    assert_openai_error_shape(ei.value.response, 429)
    m.configure(fail_rate=1, fail_status=400)
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=prefix, messages=USER_HI, stream=True)


def test_default_bases_start_without_an_api_base(stack):
    # No api_base: each row's default base. Nothing is called (no internet): the
    # config loads, the groups are listed, and the keys come from the environment.
    deps = [{"model_name": p, "litellm_params": {"model": f"{p}/m"}} for p in PREFIXES if p != "azure_ai"]
    env = {"MISTRAL_API_KEY": "k1", "XAI_API_KEY": "k2", "FIREWORKS_AI_API_KEY": "k3", "OPENROUTER_API_KEY": "k4",
           "PERPLEXITYAI_API_KEY": "k5", "CEREBRAS_API_KEY": "k6", "DEEPINFRA_API_KEY": "k7"}
    gw = stack.gateway(make_config(deps), env=env)
    ids = {m.id for m in gw.client().models.list()}
    assert ids == {p for p in PREFIXES if p != "azure_ai"}


def test_azure_ai_without_api_base_is_a_config_error(stack, tmp_path):
    with pytest.raises(RuntimeError) as ei:
        stack.gateway(make_config([{"model_name": "a", "litellm_params": {"model": "azure_ai/phi-4"}}]))
    assert "api_base" in str(ei.value) and "azure_ai" in str(ei.value)
