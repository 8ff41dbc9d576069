"""The official AzureOpenAI client against Tailgate: /openai/deployments/{group}/...
with ?api-version=, the group taken from the path, auth by `api-key` or Bearer
(azure_ad_token); chat (stream, non-stream, tools), completions, embeddings and
errors, routed to plain OpenAI-compatible and Azure deployments alike."""
from __future__ import annotations

import json

import httpx
import openai
import pytest

from conftest import USER_HI, assert_openai_error_shape, deployment, make_config, mock_words

KEY = "sk-tailgate-master"
API_VERSION = "2024-10-21"
TOOLS = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}}]


@pytest.fixture(scope="module")
def env(module_stack):
    m = module_stack.mock("azc", "--ttft", "1ms", "--chunk-delay", "1ms", "--chunks", "3")
    cfg = make_config([
        deployment("gpt-4o", m, model="openai/up-chat", num_retries=0),
        deployment("via-azure", m, model="azure/up-az", api_base=m.url, api_version="2024-06-01",
                   api_key="az-upstream-key", num_retries=0),
        deployment("text-embedding-3-small", m, model="openai/up-emb"),
        deployment("instruct", m, model="openai/up-instruct"),
    ], general_settings={"master_key": KEY})
    return module_stack.gateway(cfg), m


@pytest.fixture(autouse=True)
def _reset(env):
    env[1].reset()
    yield
    env[0].assert_healthy()


def azure(gw, **kw) -> openai.AzureOpenAI:
    kw.setdefault("api_key", KEY)
    return openai.AzureOpenAI(azure_endpoint=gw.url, api_version=API_VERSION, max_retries=0, timeout=30, **kw)


@pytest.mark.parametrize("group, upstream_path", [
    ("gpt-4o", "/v1/chat/completions"),
    ("via-azure", "/openai/deployments/up-az/chat/completions?api-version=2024-06-01"),
])
def test_chat_stream_and_tools(env, group, upstream_path):
    gw, m = env
    client = azure(gw)
    resp = client.chat.completions.create(model=group, messages=USER_HI)
    assert resp.choices[0].message.content == mock_words("azc", 3)
    stream = client.chat.completions.create(model=group, messages=USER_HI, stream=True,
                                            stream_options={"include_usage": True})
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == mock_words("azc", 3)
    assert chunks[-1].usage.completion_tokens == 3
    tool = client.chat.completions.create(model=group, messages=USER_HI, tools=TOOLS, tool_choice="required")
    assert tool.choices[0].message.tool_calls[0].function.name == "lookup"

    reqs = m.api_requests()
    assert [r["path"] for r in reqs] == [upstream_path] * 3
    for r in reqs:
        assert KEY not in json.dumps(r), "the client's key never reaches the upstream"
        body = json.loads(r["body"])
        assert body["model"] in ("up-chat", "up-az")


def test_group_comes_from_the_path_not_the_body(env):
    gw, m = env
    # The path names the group; a body model (or none) does not matter.
    r = gw.http.post(f"/openai/deployments/gpt-4o/chat/completions?api-version={API_VERSION}",
                     headers={"api-key": KEY}, json={"messages": USER_HI})
    assert r.status_code == 200, r.text
    r = gw.http.post(f"/openai/deployments/gpt-4o/chat/completions?api-version={API_VERSION}",
                     headers={"api-key": KEY}, json={"model": "no-such-group", "messages": USER_HI})
    assert r.status_code == 200, r.text
    assert [json.loads(x["body"])["model"] for x in m.api_requests()] == ["up-chat", "up-chat"]


def test_embeddings_and_completions(env):
    gw, m = env
    client = azure(gw)
    e = client.embeddings.create(model="text-embedding-3-small", input=["a", "b"], encoding_format="float")
    assert len(e.data) == 2 and len(e.data[0].embedding) == 8
    c = client.completions.create(model="instruct", prompt="say hi")
    assert c.choices[0].text == mock_words("azc", 3)
    assert [r["path"] for r in m.api_requests()] == ["/v1/embeddings", "/v1/completions"]


def test_bearer_token_auth(env):
    gw, _ = env
    client = openai.AzureOpenAI(azure_endpoint=gw.url, api_version=API_VERSION, azure_ad_token=KEY, max_retries=0)
    assert client.chat.completions.create(model="gpt-4o", messages=USER_HI).choices[0].message.content


def test_errors_in_openai_shape(env):
    gw, m = env
    with pytest.raises(openai.AuthenticationError) as ei:
        azure(gw, api_key="wrong").chat.completions.create(model="gpt-4o", messages=USER_HI)
    assert_openai_error_shape(ei.value.response, 401)
    with pytest.raises(openai.NotFoundError) as ei:
        azure(gw).chat.completions.create(model="no-such-deployment", messages=USER_HI)
    assert "no-such-deployment" in ei.value.message
    assert_openai_error_shape(ei.value.response, 404)
    with pytest.raises(openai.BadRequestError) as ei:
        azure(gw).chat.completions.create(model="gpt-4o", messages="not a list")
    assert_openai_error_shape(ei.value.response, 400)
    assert m.api_requests() == []

    m.configure(fail_rate=1, fail_status=429)
    with pytest.raises(openai.RateLimitError) as ei:
        azure(gw).chat.completions.create(model="gpt-4o", messages=USER_HI)
    assert_openai_error_shape(ei.value.response, 429)
    # A failure after the stream started reaches the client as an SSE error event.
    m.configure(fail_rate=0, reset_mid_stream_after=1)
    with pytest.raises(openai.APIError):
        for _ in azure(gw).chat.completions.create(model="gpt-4o", messages=USER_HI, stream=True):
            pass


def test_bad_deployment_segment_is_400(env):
    gw, m = env
    r = gw.http.post("/openai/deployments/a%2Fb/chat/completions?api-version=x", headers={"api-key": KEY},
                     json={"messages": USER_HI})
    err = assert_openai_error_shape(r, 400)
    assert "deployment" in err["message"]
