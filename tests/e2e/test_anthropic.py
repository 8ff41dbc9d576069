"""Anthropic in and out (issue 19): the `anthropic/` provider behind OpenAI's
chat, and the Messages surface (`POST /v1/messages`) in front of both an
`anthropic/` deployment (native: bytes pass through) and an OpenAI one
(translated). The official `anthropic` and `openai` SDKs drive the real
gateway; the mock provider speaks both APIs (and checks x-api-key and
anthropic-version on the Messages one).

Races across the two wires: the Anthropic mock sends its headers and
message_start at t=0 and its first content_block_delta at TTFT, so a race that
committed on message_start would let a slower Anthropic deployment win.
"""
from __future__ import annotations

import json

import anthropic
import httpx
import openai
import pytest

from conftest import USER_HI, MockClock, assert_openai_error_shape, deployment, make_config, mock_words, wait_for

KEY = "sk-gw-master"          # the gateway's key, for both SDKs
ANT_KEY = "sk-ant-upstream"   # what the Anthropic mock accepts
CHUNKS = 4
FAST = ("--ttft", "5ms", "--chunk-delay", "1ms", "--chunks", str(CHUNKS))
HI = [{"role": "user", "content": "hello there"}]
WEATHER = {"name": "get_weather", "description": "Weather in a city",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
OPENAI_WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
                                                   "parameters": WEATHER["input_schema"]}}


@pytest.fixture(scope="module")
def env(module_stack):
    s = module_stack
    claude = s.mock("claude", *FAST, "--api-key", ANT_KEY)
    gpt = s.mock("gpt", *FAST)
    cfg = make_config([
        deployment("claude", claude, model="anthropic/claude-x", api_base=claude.url, api_key=ANT_KEY,
                   model_info={"id": "claude-dep"}),
        deployment("gpt", gpt, model="openai/gpt-x", model_info={"id": "gpt-dep"}),
        # no api_key: ANTHROPIC_API_KEY from the gateway's environment
        {"model_name": "claude-env", "litellm_params": {"model": "anthropic/claude-env",
                                                        "api_base": claude.url + "/v1"}},
        deployment("claude-badkey", claude, model="anthropic/claude-x", api_base=claude.url, api_key="sk-wrong"),
    ], router_settings={"disable_cooldowns": True, "num_retries": 0},
        general_settings={"master_key": KEY})
    gw = s.gateway(cfg, env={"ANTHROPIC_API_KEY": ANT_KEY}, name="anthropic")
    return gw, claude, gpt


@pytest.fixture(autouse=True)
def _reset(env):
    gw, claude, gpt = env
    claude.reset()
    gpt.reset()
    yield
    gw.assert_healthy()


def ant(gw, **kw) -> anthropic.Anthropic:
    kw.setdefault("api_key", KEY)
    return anthropic.Anthropic(base_url=gw.url, max_retries=0, timeout=30, **kw)


def oai(gw) -> openai.OpenAI:
    return gw.client(api_key=KEY)


def last_request(mock) -> dict:
    reqs = mock.api_requests()
    assert reqs, f"{mock.name} got no request"
    return reqs[-1]


def assert_anthropic_error(resp: httpx.Response, status: int, etype: str) -> str:
    assert resp.status_code == status, (resp.status_code, resp.text)
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert body["type"] == "error" and set(body) == {"type", "error"}, body
    assert body["error"]["type"] == etype, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"], body
    return body["error"]["message"]


# ---- the Messages surface, native (anthropic/ deployment) ---------------------

def test_messages_native_non_stream(env):
    gw, claude, _ = env
    msg = ant(gw).messages.create(model="claude", max_tokens=100, system="Be brief.", messages=HI,
                                  metadata={"user_id": "u-42"})
    assert msg.type == "message" and msg.role == "assistant"
    assert msg.content[0].type == "text" and msg.content[0].text == mock_words("claude", CHUNKS)
    assert msg.stop_reason == "end_turn"
    assert msg.usage.output_tokens == CHUNKS and msg.usage.input_tokens == 4
    assert msg.id.startswith("msg_claude_")
    r = last_request(claude)
    assert r["path"] == "/v1/messages"
    assert r["headers"]["x-api-key"] == ANT_KEY, "the deployment's key, never the client's"
    assert r["headers"]["anthropic-version"] == "2023-06-01"
    assert "authorization" not in r["headers"]
    assert KEY not in json.dumps(r)
    body = json.loads(r["body"])
    assert body == {"model": "claude-x", "max_tokens": 100, "system": "Be brief.", "messages": HI,
                    "metadata": {"user_id": "u-42"}}, "forwarded as sent, model rewritten"


def test_messages_native_stream(env):
    gw, claude, _ = env
    with ant(gw).messages.stream(model="claude", max_tokens=100, messages=HI) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == mock_words("claude", CHUNKS)
    assert final.stop_reason == "end_turn" and final.usage.output_tokens == CHUNKS
    assert json.loads(last_request(claude)["body"])["stream"] is True


def test_messages_native_tools_round_trip(env):
    gw, claude, _ = env
    c = ant(gw)
    first = c.messages.create(model="claude", max_tokens=100, tools=[WEATHER], messages=HI)
    assert first.stop_reason == "tool_use"
    call = first.content[0]
    assert call.type == "tool_use" and call.name == "get_weather" and call.input == {"mock": "claude"}
    with c.messages.stream(model="claude", max_tokens=100, tools=[WEATHER], messages=HI) as s:
        streamed = s.get_final_message()
    assert streamed.content[0].input == {"mock": "claude"}, "input_json_delta pieces reassembled"
    follow = c.messages.create(model="claude", max_tokens=100, tools=[WEATHER], messages=[
        *HI, {"role": "assistant", "content": first.content},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "sunny"}]}])
    assert follow.stop_reason == "end_turn" and follow.content[0].text == mock_words("claude", CHUNKS)


def test_messages_key_from_environment(env):
    gw, claude, _ = env
    msg = ant(gw).messages.create(model="claude-env", max_tokens=10, messages=HI)
    assert msg.content[0].text == mock_words("claude", CHUNKS)
    r = last_request(claude)
    assert r["headers"]["x-api-key"] == ANT_KEY and json.loads(r["body"])["model"] == "claude-env"


# ---- the Messages surface, translated (OpenAI deployment) ---------------------

def test_messages_translated_non_stream(env):
    gw, _, gpt = env
    msg = ant(gw).messages.create(model="gpt", max_tokens=50, system="Be brief.", messages=HI,
                                  stop_sequences=["STOP"], metadata={"user_id": "u-1"},
                                  extra_body={"temperature": 0.3})
    assert msg.type == "message"
    assert [b.type for b in msg.content] == ["text"]
    assert msg.content[0].text == mock_words("gpt", CHUNKS)
    assert msg.stop_reason == "end_turn"
    assert msg.usage.output_tokens == CHUNKS and msg.usage.input_tokens > 0
    r = last_request(gpt)
    assert r["path"] == "/v1/chat/completions"
    body = json.loads(r["body"])
    assert body == {"model": "gpt-x", "messages": [{"role": "system", "content": "Be brief."}, *HI],
                    "max_tokens": 50, "temperature": 0.3, "stop": ["STOP"], "user": "u-1"}


def test_messages_translated_stream_events(env):
    gw, _, gpt = env
    events = list(ant(gw).messages.create(model="gpt", max_tokens=50, messages=HI, stream=True))
    types = [e.type for e in events]
    assert types[:2] == ["message_start", "content_block_start"]
    assert types[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    deltas = [e for e in events if e.type == "content_block_delta"]
    assert "".join(d.delta.text for d in deltas) == mock_words("gpt", CHUNKS)
    assert all(d.delta.type == "text_delta" and d.index == 0 for d in deltas)
    md = events[-2]
    assert md.delta.stop_reason == "end_turn" and md.usage.output_tokens == CHUNKS
    body = json.loads(last_request(gpt)["body"])
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}


def test_messages_translated_tools_round_trip(env):
    gw, _, gpt = env
    c = ant(gw)
    first = c.messages.create(model="gpt", max_tokens=50, tools=[WEATHER], tool_choice={"type": "any"},
                              messages=HI)
    assert first.stop_reason == "tool_use"
    call = [b for b in first.content if b.type == "tool_use"][0]
    assert call.name == "get_weather" and call.input == {"mock": "gpt"}
    body = json.loads(last_request(gpt)["body"])
    assert body["tools"] == [OPENAI_WEATHER] and body["tool_choice"] == "required"

    with c.messages.stream(model="gpt", max_tokens=50, tools=[WEATHER], messages=HI) as s:
        streamed = s.get_final_message()
    tool = [b for b in streamed.content if b.type == "tool_use"][0]
    assert tool.input == {"mock": "gpt"} and streamed.stop_reason == "tool_use"

    follow = c.messages.create(model="gpt", max_tokens=50, tools=[WEATHER], messages=[
        *HI, {"role": "assistant", "content": first.content},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "sunny"}]}])
    assert follow.content[0].text == mock_words("gpt", CHUNKS)
    sent = json.loads(last_request(gpt)["body"])["messages"]
    assert sent[1]["role"] == "assistant" and sent[1]["tool_calls"][0]["id"] == call.id
    assert json.loads(sent[1]["tool_calls"][0]["function"]["arguments"]) == {"mock": "gpt"}
    assert sent[2] == {"role": "tool", "tool_call_id": call.id, "content": "sunny"}


# ---- auth and errors on the Messages surface ----------------------------------

def test_messages_auth_by_x_api_key_or_bearer(env):
    gw, _, _ = env
    by_header = anthropic.Anthropic(base_url=gw.url, api_key=None, default_headers={"x-api-key": KEY},
                                    max_retries=0)
    assert by_header.messages.create(model="claude", max_tokens=5, messages=HI).content
    assert ant(gw).messages.create(model="claude", max_tokens=5, messages=HI).content  # Bearer
    with pytest.raises(anthropic.AuthenticationError) as e:
        ant(gw, api_key="sk-wrong").messages.create(model="claude", max_tokens=5, messages=HI)
    assert e.value.status_code == 401
    assert e.value.body["type"] == "error" and e.value.body["error"]["type"] == "authentication_error"
    r = gw.http.post("/v1/messages", json={"model": "claude", "max_tokens": 5, "messages": HI},
                     headers={"x-api-key": "nope"})
    assert_anthropic_error(r, 401, "authentication_error")
    assert "nope" not in r.text


def test_messages_request_errors_have_anthropic_shape(env):
    gw, _, _ = env
    h = {"x-api-key": KEY}
    msg = assert_anthropic_error(gw.http.post("/v1/messages", json={"model": "claude", "messages": HI}, headers=h),
                                 400, "invalid_request_error")
    assert "max_tokens" in msg
    assert_anthropic_error(gw.http.post("/v1/messages", content=b"{not json", headers=h), 400, "invalid_request_error")
    with pytest.raises(anthropic.NotFoundError) as e:
        ant(gw).messages.create(model="no-such-group", max_tokens=5, messages=HI)
    assert e.value.body["error"]["type"] == "not_found_error"


@pytest.mark.parametrize("status,retry_after,exc,etype", [
    (529, None, anthropic.OverloadedError, "overloaded_error"),
    (429, "2", anthropic.RateLimitError, "rate_limit_error"),
    (400, None, anthropic.BadRequestError, "invalid_request_error"),
    (500, None, anthropic.InternalServerError, "api_error"),
])
def test_messages_upstream_errors_map_to_anthropic_classes(env, status, retry_after, exc, etype):
    gw, claude, gpt = env
    for mock, group in ((claude, "claude"), (gpt, "gpt")):  # native, then translated
        knobs = {"fail_rate": 1, "fail_status": status}
        if retry_after:
            knobs["retry_after"] = int(retry_after)
        mock.configure(**knobs)
        with pytest.raises(exc) as e:
            ant(gw).messages.create(model=group, max_tokens=5, messages=HI)
        assert e.value.status_code == status, (group, e.value.status_code)
        assert e.value.body["type"] == "error" and e.value.body["error"]["type"] == etype, (group, e.value.body)
        if retry_after:
            assert e.value.response.headers["retry-after"] == retry_after
        mock.reset()


@pytest.mark.parametrize("group", ["claude", "gpt"])
@pytest.mark.parametrize("knob", ["reset_mid_stream_after", "error_event_after"])
def test_messages_mid_stream_failure_is_an_error_event(env, group, knob):
    gw, claude, gpt = env
    (claude if group == "claude" else gpt).configure(**{knob: 2})
    got = []
    with pytest.raises(anthropic.APIStatusError) as e:
        for event in ant(gw).messages.create(model=group, max_tokens=50, messages=HI, stream=True):
            if event.type == "content_block_delta":
                got.append(event.delta.text)
    assert "".join(got) == mock_words(group, 2), "the content before the failure arrived"
    assert e.value.body["type"] == "error" and e.value.body["error"]["type"] in ("api_error", "overloaded_error")


def test_messages_fallback_from_anthropic_to_openai(env):
    gw, claude, gpt = env
    claude.configure(fail_rate=1, fail_status=529)
    msg = ant(gw).messages.create(model="claude", max_tokens=20, messages=HI, extra_body={"fallbacks": ["gpt"]})
    assert msg.content[0].text == mock_words("gpt", CHUNKS)
    assert claude.received() == 1 and gpt.received() == 1
    assert "fallbacks" not in json.loads(last_request(gpt)["body"])


# ---- OpenAI's chat against an anthropic/ deployment ---------------------------

def test_chat_to_anthropic_non_stream(env):
    gw, claude, _ = env
    resp = oai(gw).chat.completions.create(
        model="claude", messages=[{"role": "system", "content": "Be brief."}, *USER_HI], temperature=0.5,
        stop=["END"], user="u-7")
    assert resp.object == "chat.completion"
    assert resp.choices[0].message.content == mock_words("claude", CHUNKS)
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage.completion_tokens == CHUNKS and resp.usage.prompt_tokens == 4
    assert resp.id.startswith("msg_claude_")
    r = last_request(claude)
    assert r["path"] == "/v1/messages" and r["headers"]["x-api-key"] == ANT_KEY
    assert "authorization" not in r["headers"]
    assert json.loads(r["body"]) == {"model": "claude-x", "max_tokens": 4096, "system": "Be brief.",
                                     "messages": USER_HI, "stop_sequences": ["END"], "temperature": 0.5,
                                     "metadata": {"user_id": "u-7"}}


def test_chat_to_anthropic_stream_with_usage_and_length(env):
    gw, claude, _ = env
    chunks = list(oai(gw).chat.completions.create(model="claude", messages=USER_HI, max_tokens=2, stream=True,
                                                  stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == mock_words("claude", 2)
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["length"]
    usage = [c.usage for c in chunks if c.usage]
    assert usage and usage[-1].completion_tokens == 2
    assert all(c.choices for c in chunks), "usage rides on the finish chunk: every chunk has a choice"


def test_chat_to_anthropic_cache_tokens(env):
    gw, _, _ = env
    resp = oai(gw).chat.completions.create(model="claude", messages=[
        {"role": "system", "content": [{"type": "text", "text": "long cached preamble words",
                                        "cache_control": {"type": "ephemeral"}}]},
        *USER_HI])
    assert resp.usage.prompt_tokens_details.cached_tokens == 4
    assert resp.usage.prompt_tokens == 6, "input plus cache reads"


def test_chat_to_anthropic_tools(env):
    gw, claude, _ = env
    c = oai(gw)
    resp = c.chat.completions.create(model="claude", messages=USER_HI, tools=[OPENAI_WEATHER],
                                     tool_choice={"type": "function", "function": {"name": "get_weather"}})
    msg = resp.choices[0].message
    assert resp.choices[0].finish_reason == "tool_calls"
    assert msg.tool_calls[0].function.name == "get_weather"
    assert json.loads(msg.tool_calls[0].function.arguments) == {"mock": "claude"}
    sent = json.loads(last_request(claude)["body"])
    assert sent["tools"] == [WEATHER] and sent["tool_choice"] == {"type": "tool", "name": "get_weather"}

    args, ids = "", set()
    for ch in c.chat.completions.create(model="claude", messages=USER_HI, tools=[OPENAI_WEATHER], stream=True):
        for tc in (ch.choices[0].delta.tool_calls or []) if ch.choices else []:
            args += tc.function.arguments or ""
            ids |= {tc.id} if tc.id else set()
    assert json.loads(args) == {"mock": "claude"} and len(ids) == 1

    follow = c.chat.completions.create(model="claude", tools=[OPENAI_WEATHER], messages=[
        *USER_HI, msg.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": msg.tool_calls[0].id, "content": "sunny"}])
    assert follow.choices[0].message.content == mock_words("claude", CHUNKS), "the mock checked the tool_use_id"


@pytest.mark.parametrize("status,retry_after,exc,client_status", [
    (529, None, openai.InternalServerError, 503),
    (429, "3", openai.RateLimitError, 429),
    (400, None, openai.BadRequestError, 400),
])
def test_chat_to_anthropic_errors_map_to_openai(env, status, retry_after, exc, client_status):
    gw, claude, _ = env
    knobs = {"fail_rate": 1, "fail_status": status}
    if retry_after:
        knobs["retry_after"] = int(retry_after)
    claude.configure(**knobs)
    with pytest.raises(exc) as e:
        oai(gw).chat.completions.create(model="claude", messages=USER_HI)
    assert e.value.status_code == client_status
    r = gw.http.post("/v1/chat/completions", json={"model": "claude", "messages": USER_HI},
                     headers={"Authorization": f"Bearer {KEY}"})
    err = assert_openai_error_shape(r, client_status)
    assert "mock injected" in err["message"]
    if retry_after:
        assert r.headers["retry-after"] == retry_after


def test_legacy_completions_to_anthropic(env):
    gw, claude, _ = env
    c = oai(gw)
    r = c.completions.create(model="claude", prompt="Once upon a time", max_tokens=20)
    assert r.object == "text_completion" and r.choices[0].text == mock_words("claude", CHUNKS)
    assert json.loads(last_request(claude)["body"])["messages"] == [{"role": "user", "content": "Once upon a time"}]
    streamed = "".join(ch.choices[0].text for ch in c.completions.create(model="claude", prompt="x", stream=True)
                       if ch.choices)
    assert streamed == mock_words("claude", CHUNKS)


def test_chat_to_anthropic_upstream_auth_error_hides_keys(env):
    gw, _, _ = env
    with pytest.raises(openai.AuthenticationError) as e:
        oai(gw).chat.completions.create(model="claude-badkey", messages=USER_HI)
    assert "sk-wrong" not in str(e.value.body) and ANT_KEY not in str(e.value.body)


def test_chat_to_anthropic_mid_stream_error_event(env):
    gw, claude, _ = env
    claude.configure(error_event_after=1)
    got = []
    with pytest.raises(openai.APIError) as e:
        for ch in oai(gw).chat.completions.create(model="claude", messages=USER_HI, stream=True):
            got += [ch.choices[0].delta.content or ""] if ch.choices else []
    assert "".join(got) == mock_words("claude", 1)
    assert "upstream stream error: mock injected stream error (claude)" in str(e.value)


def test_chat_to_anthropic_stream_without_message_stop_is_an_error(env):
    gw, claude, _ = env
    claude.configure(garbage="no_done")
    got = []
    with pytest.raises(openai.APIError) as e:
        for ch in oai(gw).chat.completions.create(model="claude", messages=USER_HI, stream=True):
            got += [ch.choices[0].delta.content or ""] if ch.choices else []
    assert "".join(got) == mock_words("claude", CHUNKS), "every word arrived, then no message_stop"
    assert "upstream stream ended without message_stop" in str(e.value)


def test_thinking_passes_through_and_becomes_reasoning_content(env):
    gw, claude, _ = env
    thinking = {"type": "enabled", "budget_tokens": 1024}
    with ant(gw).messages.stream(model="claude", max_tokens=50, messages=HI, thinking=thinking) as s:
        final = s.get_final_message()
    assert [b.type for b in final.content] == ["thinking", "text"]
    assert final.content[0].thinking == "claude thinks" and final.content[0].signature == "sig-claude"
    assert final.content[1].text == mock_words("claude", CHUNKS)

    reasoning, text = "", ""
    for ch in oai(gw).chat.completions.create(model="claude", messages=USER_HI, stream=True,
                                              extra_body={"thinking": thinking}):
        delta = ch.choices[0].delta if ch.choices else None
        reasoning += (delta.model_extra or {}).get("reasoning_content") or "" if delta else ""
        text += delta.content or "" if delta else ""
    assert reasoning == "claude thinks" and text == mock_words("claude", CHUNKS)
    assert json.loads(last_request(claude)["body"])["thinking"] == thinking
    whole = oai(gw).chat.completions.create(model="claude", messages=USER_HI, extra_body={"thinking": thinking})
    assert whole.choices[0].message.model_extra["reasoning_content"] == "claude thinks"


def test_anthropic_beta_reaches_only_deployments_that_speak_messages(env):
    gw, claude, gpt = env
    beta = {"anthropic-beta": "fine-grained-tool-streaming-2025-05-14"}
    ant(gw).messages.create(model="claude", max_tokens=5, messages=HI, extra_headers=beta)
    assert last_request(claude)["headers"]["anthropic-beta"] == beta["anthropic-beta"]
    ant(gw).messages.create(model="gpt", max_tokens=5, messages=HI, extra_headers=beta)
    assert "anthropic-beta" not in last_request(gpt)["headers"]


def test_embeddings_to_an_anthropic_deployment_are_refused_before_sending(env):
    gw, claude, _ = env
    with pytest.raises(openai.BadRequestError) as e:
        oai(gw).embeddings.create(model="claude", input="hello")
    assert e.value.code == "unsupported_by_deployment"
    assert "anthropic/" in e.value.message and "/v1/embeddings" in e.value.message
    assert claude.received() == 0


# ---- races across the two wires ---------------------------------------------

@pytest.fixture
def race(stack):
    """claude-slow: headers and message_start at t=0, content at 1.5 s; gpt-fast: content at 60 ms.
    The losers are cancelled at the winner's first content, so the slow TTFTs cost no test time."""
    slow = stack.mock("claude-slow", "--ttft", "1500ms", "--chunk-delay", "2ms", "--chunks", "3", "--api-key", ANT_KEY)
    fast = stack.mock("gpt-fast", "--ttft", "60ms", "--chunk-delay", "2ms", "--chunks", "3")
    claude_fast = stack.mock("claude-fast", "--ttft", "60ms", "--chunk-delay", "2ms", "--chunks", "3",
                             "--api-key", ANT_KEY)
    gpt_slow = stack.mock("gpt-slow", "--ttft", "1500ms", "--chunk-delay", "2ms", "--chunks", "3")
    gw = stack.gateway(make_config([
        deployment("claude-slow", slow, model="anthropic/c", api_base=slow.url, api_key=ANT_KEY),
        deployment("gpt-fast", fast, model="openai/g"),
        deployment("claude-fast", claude_fast, model="anthropic/c", api_base=claude_fast.url, api_key=ANT_KEY),
        deployment("gpt-slow", gpt_slow, model="openai/g"),
    ], general_settings={"master_key": KEY}))
    return gw, {m.name: m for m in (slow, fast, claude_fast, gpt_slow)}


def _finished_record(mock):
    """The mock's last API request once it has an outcome: the mock records a close when it reads
    EOF and a completion when its last write returns, either of which may follow the client's
    last chunk."""
    return wait_for(lambda: next((r for r in mock.api_requests()[-1:] if r["outcome"] != "in_flight"), None),
                    timeout=5, what=f"{mock.name}'s attempt to finish")


def _assert_loser_cancelled(winner, loser):
    """The loser was closed at about the winner's first content, long before its own."""
    clock = MockClock(loser)
    rec = _finished_record(loser)
    assert rec["outcome"] == "cancelled", rec
    held = clock(rec["finished_ms"]) - clock(rec["received_ms"])
    assert held < rec["ttft_ms"] / 1000, ("closed before its own first content", held, rec["ttft_ms"])
    win = _finished_record(winner)
    assert win["outcome"] == "completed", win


@pytest.mark.parametrize("surface", ["chat", "messages"])
def test_race_is_decided_by_first_content_not_message_start(race, surface):
    gw, m = race
    for winner, loser, group_list in (("gpt-fast", "claude-slow", "claude-slow,gpt-fast"),
                                      ("claude-fast", "gpt-slow", "gpt-slow,claude-fast")):
        if surface == "chat":
            stream = oai(gw).chat.completions.create(model=group_list, messages=USER_HI, stream=True,
                                                     extra_body={"fastest_response": True})
            text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        else:
            with ant(gw).messages.stream(model=group_list, max_tokens=20, messages=HI,
                                         extra_body={"fastest_response": True}) as s:
                text = "".join(s.text_stream)
        assert text == mock_words(winner, 3), (surface, winner, text)
        _assert_loser_cancelled(m[winner], m[loser])


# ---- OpenAI's Responses API against an anthropic/ deployment ------------------

def test_responses_to_anthropic(env):
    gw, claude, _ = env
    c = oai(gw)
    r = c.responses.create(model="claude", input="hello there", instructions="Be brief.")
    assert r.status == "completed" and r.output_text == mock_words("claude", CHUNKS)
    sent = json.loads(last_request(claude)["body"])
    assert sent["system"] == "Be brief." and sent["messages"] == HI and sent["model"] == "claude-x"

    events = list(c.responses.create(model="claude", input="hello there", stream=True))
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == mock_words("claude", CHUNKS)
    assert events[-1].type == "response.completed"

    tools = [{"type": "function", "name": "get_weather", "parameters": WEATHER["input_schema"]}]
    first = c.responses.create(model="claude", input="weather?", tools=tools)
    call = [o for o in first.output if o.type == "function_call"][0]
    assert json.loads(call.arguments) == {"mock": "claude"}
    follow = c.responses.create(model="claude", tools=tools, input=[
        {"role": "user", "content": "weather?"},
        {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},
        {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}])
    assert follow.output_text == mock_words("claude", CHUNKS), "the mock matched the tool_result to its tool_use"


# ---- health and metrics across the wires ------------------------------------

def test_overloaded_anthropic_deployment_is_cooled_down_and_counted(stack):
    """[health, cost] with the Anthropic deployment cheaper, so first while routable: its 529s
    are retried on the OpenAI one, and once past allowed_fails it is cooled down and skipped."""
    claude = stack.mock("claude", *FAST, "--api-key", ANT_KEY, "--fail-rate", "1", "--fail-status", "529")
    gpt = stack.mock("gpt", *FAST)
    gw = stack.gateway(make_config([
        deployment("g", claude, model="anthropic/c", api_base=claude.url, api_key=ANT_KEY,
                   model_info={"id": "claude-g"}, input_cost_per_token=1e-7, output_cost_per_token=1e-7),
        deployment("g", gpt, model="openai/g", model_info={"id": "gpt-g"},
                   input_cost_per_token=1e-5, output_cost_per_token=1e-5),
    ], router_settings={"strategies": ["health", "cost"], "num_retries": 1, "allowed_fails": 2,
                        "cooldown_time": 30}, general_settings={"master_key": KEY}))
    attempts = []
    for i in range(6):  # sequential: every outcome is seen before the next route
        raw = ant(gw).messages.with_raw_response.create(model="g", max_tokens=10, messages=HI, stream=bool(i % 2))
        msg = raw.parse()
        text = ("".join(e.delta.text for e in msg if e.type == "content_block_delta") if i % 2
                else msg.content[0].text)
        assert text == mock_words("gpt", CHUNKS)
        attempts.append(int(raw.headers["x-tailgate-attempts"]))
    assert attempts == [2, 2, 2, 1, 1, 1], attempts
    assert claude.received() == 3
    metrics = gw.http.get("/metrics", headers={"Authorization": f"Bearer {KEY}"}).text
    assert 'tailgate_cooldowns_total{deployment="claude-g"} 1' in metrics
    assert 'tailgate_attempt_failures_total{deployment="claude-g",error_class="server"} 3' in metrics
    assert 'tailgate_tokens_total{deployment="gpt-g",direction="out"} 24' in metrics
