"""POST /v1/responses with the official `openai` SDK: passed through to a
deployment that serves the Responses API (`openai/`) and translated to chat
completions for one that does not (`hosted_vllm/`), stream and non-stream,
tools and tool results, structured output, errors."""
from __future__ import annotations

import json

import httpx
import openai
import pydantic
import pytest

from conftest import assert_openai_error_shape, deployment, make_config, mock_words

CHUNKS = 4
FAST = ("--ttft", "0ms", "--chunk-delay", "0ms", "--chunks", str(CHUNKS))
WEATHER = [{
    "type": "function",
    "name": "get_weather",
    "description": "Weather of a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}]
# group -> (mock name, path the upstream sees)
KINDS = {"native": ("nat", "/v1/responses"), "translated": ("chat", "/v1/chat/completions")}


@pytest.fixture(scope="module")
def rig(module_stack):
    nat = module_stack.mock("nat", *FAST)
    chat = module_stack.mock("chat", *FAST)
    gw = module_stack.gateway(make_config([
        deployment("native", nat, model="openai/up-native"),
        deployment("translated", chat, model="hosted_vllm/up-chat"),
    ]))
    return {"gw": gw, "nat": nat, "chat": chat}


@pytest.fixture
def client(rig):
    for m in (rig["nat"], rig["chat"]):
        m.reset()
    return rig["gw"].client()


def upstream(rig, group):
    name, path = KINDS[group]
    reqs = rig[name].api_requests()
    assert reqs, f"{name} got nothing"
    assert reqs[-1]["path"] == path, reqs[-1]["path"]
    return json.loads(reqs[-1]["body"])


@pytest.mark.parametrize("group", ["native", "translated"])
def test_create(rig, client, group):
    r = client.responses.create(model=group, input="hello there", instructions="Be brief.")
    name = KINDS[group][0]
    assert r.object == "response" and r.status == "completed"
    assert r.id.startswith("resp_")
    assert r.output_text == mock_words(name, CHUNKS)
    assert r.output[0].type == "message" and r.output[0].role == "assistant"
    assert r.usage.input_tokens >= 1 and r.usage.output_tokens == CHUNKS
    body = upstream(rig, group)
    if group == "native":
        assert body["model"] == "up-native" and body["input"] == "hello there"
        assert body["instructions"] == "Be brief."
    else:
        assert body["model"] == "up-chat"
        assert body["messages"] == [{"role": "system", "content": "Be brief."},
                                    {"role": "user", "content": "hello there"}]
        assert "input" not in body and "instructions" not in body


@pytest.mark.parametrize("group", ["native", "translated"])
def test_stream(rig, client, group):
    events = list(client.responses.create(model=group, input="hello there", stream=True))
    types = [e.type for e in events]
    assert types[0] == "response.created" and types[1] == "response.in_progress", types
    assert types[-1] == "response.completed", types
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert len({e.response.id for e in events if hasattr(e, "response")}) == 1
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == mock_words(KINDS[group][0], CHUNKS)
    assert events[-1].response.output_text == text
    assert events[-1].response.usage.output_tokens == CHUNKS
    body = upstream(rig, group)
    assert body["stream"] is True
    if group == "translated":
        assert body["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize("group", ["native", "translated"])
def test_stream_helper(client, group):
    with client.responses.stream(model=group, input="hello there") as s:
        deltas = [e.delta for e in s if e.type == "response.output_text.delta"]
        final = s.get_final_response()
    assert "".join(deltas) == final.output_text == mock_words(KINDS[group][0], CHUNKS)


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("group", ["native", "translated"])
def test_tool_round_trip(rig, client, group, stream):
    name = KINDS[group][0]
    first_input = [{"role": "user", "content": "weather in Paris?"}]
    if stream:
        with client.responses.stream(model=group, input=first_input, tools=WEATHER) as s:
            args = "".join(e.delta for e in s if e.type == "response.function_call_arguments.delta")
            r1 = s.get_final_response()
        assert args == json.dumps({"mock": name}, separators=(",", ":"))
    else:
        r1 = client.responses.create(model=group, input=first_input, tools=WEATHER)
    calls = [o for o in r1.output if o.type == "function_call"]
    assert len(calls) == 1, r1.output
    call = calls[0]
    assert call.name == "get_weather" and json.loads(call.arguments) == {"mock": name}
    assert call.call_id

    follow = first_input + [
        {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},
        {"type": "function_call_output", "call_id": call.call_id, "output": "sunny, 21C"},
    ]
    r2 = client.responses.create(model=group, input=follow, tools=WEATHER)
    assert r2.output_text == mock_words(name, CHUNKS)
    body = upstream(rig, group)
    if group == "translated":
        assert body["tools"] == [{"type": "function", "function": {
            "name": "get_weather", "description": "Weather of a city", "parameters": WEATHER[0]["parameters"]}}]
        assert body["messages"][1] == {"role": "assistant", "content": None, "tool_calls": [{
            "id": call.call_id, "type": "function",
            "function": {"name": "get_weather", "arguments": call.arguments}}]}
        assert body["messages"][2] == {"role": "tool", "tool_call_id": call.call_id, "content": "sunny, 21C"}
    else:
        assert body["input"][-1]["type"] == "function_call_output"
        assert body["tools"] == WEATHER


class Answer(pydantic.BaseModel):
    mock: str
    words: str


@pytest.mark.parametrize("group", ["native", "translated"])
def test_structured_output(rig, client, group):
    r = client.responses.parse(model=group, input="hello there", text_format=Answer)
    name = KINDS[group][0]
    assert r.output_parsed == Answer(mock=name, words=mock_words(name, CHUNKS))
    body = upstream(rig, group)
    if group == "translated":
        rf = body["response_format"]
        assert rf["type"] == "json_schema" and rf["json_schema"]["name"] == "Answer"
        assert rf["json_schema"]["schema"]["properties"]["mock"] == {"title": "Mock", "type": "string"}
    else:
        assert body["text"]["format"]["type"] == "json_schema"


def test_options_translated(rig, client):
    client.responses.create(model="translated", input=[{"role": "developer", "content": "dev says"},
                                                        {"role": "user", "content": [
                                                            {"type": "input_text", "text": "what is this?"},
                                                            {"type": "input_image", "image_url": "https://x/y.png",
                                                             "detail": "low"}]}],
                            max_output_tokens=50, temperature=0.2, reasoning={"effort": "low"})
    body = upstream(rig, "translated")
    assert body["messages"] == [
        {"role": "system", "content": "dev says"},
        {"role": "user", "content": [{"type": "text", "text": "what is this?"},
                                     {"type": "image_url", "image_url": {"url": "https://x/y.png", "detail": "low"}}]}]
    assert body["max_tokens"] == 50 and body["temperature"] == 0.2 and body["reasoning_effort"] == "low"


def test_request_errors(rig, client):
    gw = rig["gw"]
    r = gw.http.post("/v1/responses", json={"model": "native"})
    assert assert_openai_error_shape(r, 400)["param"] == "input"
    r = gw.http.post("/v1/responses", json={"model": "native", "input": "x", "background": True})
    assert assert_openai_error_shape(r, 400)["param"] == "background"
    r = gw.http.post("/v1/responses", json={"model": "native", "input": 3})
    assert assert_openai_error_shape(r, 400)["param"] == "input"
    with pytest.raises(openai.BadRequestError) as e:
        client.responses.create(model="translated", input="x", tools=[{"type": "web_search"}])
    assert "web_search" in str(e.value) and "translated" in str(e.value)
    assert rig["chat"].api_requests() == []
    # A native deployment gets the built-in tool as it is.
    client.responses.create(model="native", input="x", tools=[{"type": "web_search"}])
    assert upstream(rig, "native")["tools"] == [{"type": "web_search"}]


@pytest.mark.parametrize("group", ["native", "translated"])
def test_upstream_error_status(rig, client, group):
    rig[KINDS[group][0]].configure(fail_rate=1, fail_status=400)
    with pytest.raises(openai.BadRequestError) as e:
        client.responses.create(model=group, input="x")
    assert "mock injected 400" in str(e.value)


@pytest.mark.parametrize("group", ["native", "translated"])
def test_mid_stream_failure_is_an_error_event(rig, client, group):
    rig[KINDS[group][0]].configure(reset_mid_stream_after=2, chunks=4)
    events = list(client.responses.create(model=group, input="hello there", stream=True))
    types = [e.type for e in events]
    assert types[0] == "response.created"
    assert "response.output_text.delta" in types
    assert "response.completed" not in types
    assert types[-1] in ("error", "response.failed"), types
    errors = [e for e in events if e.type == "error"]
    assert errors and "mid-stream" in errors[0].message


def test_raw_http_stream_framing(rig):
    """Each event is `event: <type>` + one JSON `data:` line whose type matches."""
    with httpx.stream("POST", rig["gw"].base_url + "/responses", timeout=10,
                      json={"model": "translated", "input": "hi", "stream": True}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        raw = r.read().decode()
    frames = [f for f in raw.split("\n\n") if f.strip()]
    for f in frames:
        lines = f.split("\n")
        assert lines[0].startswith("event: ") and lines[1].startswith("data: "), f
        assert json.loads(lines[1][6:])["type"] == lines[0][7:]
