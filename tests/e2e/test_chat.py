"""Chat, streaming, tools, body forwarding, embeddings and models through the
official openai SDK (tests 1-5 of the e2e brief). One gateway and one mock are
shared by the module; the mock is reset before every test."""
from __future__ import annotations

import asyncio
import json
import re
import time

import pytest

from conftest import USER_HI, deployment, make_config, mock_words, wait_for

DEP_ID = "alpha-chat"


@pytest.fixture(scope="module")
def env(module_stack):
    alpha = module_stack.mock("alpha", "--ttft", "5ms", "--chunk-delay", "2ms")
    cfg = make_config([
        deployment("chat", alpha, model="openai/upstream-chat", api_key="sk-upstream-alpha",
                   model_info={"id": DEP_ID}),
        deployment("emb", alpha, model="openai/text-embedding-3-small"),
    ])
    gw = module_stack.gateway(cfg)
    return gw, alpha


@pytest.fixture(autouse=True)
def _reset(env):
    env[1].reset()
    yield
    env[0].assert_healthy()


# 1 --------------------------------------------------------------------------

def test_chat_non_stream_headers_and_usage(env):
    gw, alpha = env
    client = gw.client()
    raw = client.chat.completions.with_raw_response.create(
        model="chat", messages=USER_HI, extra_headers={"x-request-id": "e2e-req-0001"})
    resp = raw.parse()
    assert resp.choices[0].message.content == mock_words("alpha")
    assert resp.choices[0].finish_reason == "stop"
    assert raw.headers.get("x-tailgate-deployment") == DEP_ID
    assert raw.headers.get("x-request-id") == "e2e-req-0001"
    assert resp.usage is not None
    assert resp.usage.completion_tokens == 8
    assert resp.usage.prompt_tokens >= 1
    assert resp.usage.total_tokens == resp.usage.prompt_tokens + resp.usage.completion_tokens
    # The mock got exactly one request, with the deployment's key, not the client's.
    reqs = alpha.api_requests()
    assert len(reqs) == 1
    assert reqs[0]["path"] == "/v1/chat/completions"
    assert reqs[0]["headers"].get("authorization") == "Bearer sk-upstream-alpha"


def test_request_id_generated_when_absent(env):
    gw, _ = env
    raw = gw.client().chat.completions.with_raw_response.create(model="chat", messages=USER_HI)
    rid = raw.headers.get("x-request-id")
    assert rid and re.fullmatch(r"[\x21-\x7e]{8,128}", rid), rid
    raw2 = gw.client().chat.completions.with_raw_response.create(model="chat", messages=USER_HI)
    assert raw2.headers.get("x-request-id") != rid


# 2 --------------------------------------------------------------------------

def test_chat_stream_sync_incremental_with_usage(env):
    gw, alpha = env
    alpha.configure(chunks=5, chunk_delay_ms=50)
    client = gw.client()
    stream = client.chat.completions.create(model="chat", messages=USER_HI, stream=True,
                                            stream_options={"include_usage": True})
    parts, times, usage_chunks = [], [], []
    for chunk in stream:
        if chunk.usage is not None:
            usage_chunks.append(chunk)
        for ch in chunk.choices:
            if ch.delta.content:
                parts.append(ch.delta.content)
                times.append(time.monotonic())
    assert "".join(parts) == mock_words("alpha", 5)
    assert len(times) == 5
    spread = times[-1] - times[0]
    assert spread >= 0.15, f"chunks arrived within {spread:.3f}s: the stream was buffered"
    assert len(usage_chunks) == 1
    assert usage_chunks[0].usage.completion_tokens == 5
    assert usage_chunks[0].choices == []
    body = alpha.last_body()
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}


def test_chat_stream_without_usage_has_no_usage_chunk(env):
    gw, alpha = env
    stream = gw.client().chat.completions.create(model="chat", messages=USER_HI, stream=True)
    chunks = list(stream)
    assert all(c.usage is None for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == mock_words("alpha")
    assert chunks[-1].choices[0].finish_reason == "stop"


async def test_chat_stream_async_incremental(env):
    gw, alpha = env
    alpha.configure(chunks=5, chunk_delay_ms=50)
    client = gw.async_client()
    try:
        stream = await client.chat.completions.create(model="chat", messages=USER_HI, stream=True,
                                                      stream_options={"include_usage": True})
        parts, times, usage = [], [], None
        async for chunk in stream:
            if chunk.usage is not None:
                usage = chunk.usage
            for ch in chunk.choices:
                if ch.delta.content:
                    parts.append(ch.delta.content)
                    times.append(time.monotonic())
        assert "".join(parts) == mock_words("alpha", 5)
        assert times[-1] - times[0] >= 0.15
        assert usage is not None and usage.completion_tokens == 5
    finally:
        await client.close()


async def test_async_concurrent_streams(env):
    gw, alpha = env
    alpha.configure(chunks=4, chunk_delay_ms=20)
    client = gw.async_client()

    async def one(i):
        s = await client.chat.completions.create(model="chat", messages=USER_HI, stream=True)
        return "".join([c.choices[0].delta.content or "" async for c in s if c.choices])

    try:
        results = await asyncio.gather(*(one(i) for i in range(10)))
    finally:
        await client.close()
    assert results == [mock_words("alpha", 4)] * 10
    # The mock books a stream as completed just after its last write: the client may be first.
    wait_for(lambda: alpha.stats()["completed"] == 10, timeout=5, what="the mock to book 10 completed streams")


# 3 --------------------------------------------------------------------------

TOOLS = [{
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city. Unicode: é✓",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
            "required": ["city"],
            "additionalProperties": False,
        },
        "strict": True,
    },
}]


def test_tools_round_trip_non_stream(env):
    gw, alpha = env
    client = gw.client()
    resp = client.chat.completions.create(model="chat", messages=USER_HI, tools=TOOLS, tool_choice="auto")
    choice = resp.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls
    assert calls and len(calls) == 1
    assert calls[0].function.name == "get_weather"
    assert json.loads(calls[0].function.arguments) == {"mock": "alpha"}
    sent = alpha.last_body()
    assert sent["tools"] == TOOLS
    assert sent["tool_choice"] == "auto"

    messages = USER_HI + [
        {"role": "assistant", "content": None,
         "tool_calls": [{"id": calls[0].id, "type": "function",
                         "function": {"name": "get_weather", "arguments": calls[0].function.arguments}}]},
        {"role": "tool", "tool_call_id": calls[0].id, "content": "{\"temp\": 21}"},
    ]
    resp2 = client.chat.completions.create(model="chat", messages=messages, tools=TOOLS)
    assert resp2.choices[0].finish_reason == "stop"
    assert resp2.choices[0].message.content == mock_words("alpha")
    assert not resp2.choices[0].message.tool_calls
    sent2 = alpha.last_body()
    assert sent2["messages"] == messages
    assert sent2["tools"] == TOOLS


def test_tools_stream(env):
    gw, alpha = env
    stream = gw.client().chat.completions.create(model="chat", messages=USER_HI, tools=TOOLS, stream=True)
    name, args, ids, finish = "", "", set(), None
    for chunk in stream:
        if not chunk.choices:
            continue
        ch = chunk.choices[0]
        for tc in ch.delta.tool_calls or []:
            if tc.id:
                ids.add(tc.id)
            if tc.function and tc.function.name:
                name += tc.function.name
            if tc.function and tc.function.arguments:
                args += tc.function.arguments
        finish = ch.finish_reason or finish
    assert finish == "tool_calls"
    assert name == "get_weather"
    assert json.loads(args) == {"mock": "alpha"}
    assert len(ids) == 1
    assert alpha.last_body()["tools"] == TOOLS


# 4 --------------------------------------------------------------------------

def test_forwarded_body(env):
    gw, alpha = env
    custom = {"a": [1, 2.5, "x", None, True], "nested": {"k": "v\u00e9"}}
    resp = gw.client().chat.completions.create(
        model="chat", messages=USER_HI, temperature=0.3, n=2,
        response_format={"type": "json_object"},
        extra_body={
            "fastest_response": True,
            "num_retries": 1,
            "timeout": 30,
            "metadata": {"user_id": "u-1", "request_id": "r-1"},
            "fallbacks": ["chat"],
            "my_custom_field": custom,
            "top_k": 7,
        })
    assert len(resp.choices) == 2
    body = alpha.last_body()
    assert body["model"] == "upstream-chat"
    for gone in ("fastest_response", "num_retries", "timeout", "metadata", "fallbacks"):
        assert gone not in body, (gone, body)
    assert body["temperature"] == 0.3
    assert body["n"] == 2
    assert body["response_format"] == {"type": "json_object"}
    assert body["my_custom_field"] == custom
    assert body["top_k"] == 7
    assert body["messages"] == USER_HI


# 5 --------------------------------------------------------------------------

def test_embeddings_string_and_list(env):
    gw, alpha = env
    client = gw.client()
    r1 = client.embeddings.create(model="emb", input="hello world")
    assert len(r1.data) == 1
    assert len(r1.data[0].embedding) > 0 and all(isinstance(x, float) for x in r1.data[0].embedding)
    assert alpha.last_body()["model"] == "text-embedding-3-small"
    assert alpha.last_body()["input"] == "hello world"

    r2 = client.embeddings.create(model="emb", input=["a", "b c", "d e f"], encoding_format="float")
    assert [d.index for d in r2.data] == [0, 1, 2]
    assert r2.usage.prompt_tokens == 6
    assert alpha.last_body()["input"] == ["a", "b c", "d e f"]
    assert alpha.api_requests()[-1]["path"] == "/v1/embeddings"


def test_models_list_and_retrieve(env):
    gw, alpha = env
    client = gw.client()
    ids = sorted(m.id for m in client.models.list())
    assert ids == ["chat", "emb"]
    m = client.models.retrieve("chat")
    assert m.id == "chat"
    import openai
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("no-such-group")
    assert alpha.api_requests() == []  # served by the gateway itself


def test_unacceptable_request_id_is_replaced(env):
    gw, _ = env
    for bad in ("has space", "x" * 200):
        r = gw.http.post("/v1/chat/completions", json={"model": "chat", "messages": USER_HI},
                         headers={"x-request-id": bad})
        assert r.status_code == 200
        rid = r.headers.get("x-request-id")
        assert rid and rid != bad and re.fullmatch(r"[\x21-\x7e]{8,128}", rid), rid
