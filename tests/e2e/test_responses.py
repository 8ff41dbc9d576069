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

from conftest import assert_openai_error_shape, deployment, make_config, mock_words, wait_for

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


@pytest.mark.parametrize("model", ["openai/up", "hosted_vllm/up"])
def test_race_commits_at_first_output_delta(stack, model):
    """`early` sends its headers and response.created at once but its first delta
    only after 2 s; `late` sends everything from 150 ms on. The race must go to
    `late` (committed at its first output_text.delta), with `early` kept running
    until then and cancelled, not chosen for its early response.created."""
    early = stack.mock("early", "--ttft", "2000ms", "--chunk-delay", "1ms", "--chunks", "3")
    late = stack.mock("late", "--ttft", "150ms", "--headers-at-ttft", "--chunk-delay", "1ms", "--chunks", "3")
    gw = stack.gateway(make_config([
        deployment("early", early, model=model, model_info={"id": "early-dep"}),
        deployment("late", late, model=model, model_info={"id": "late-dep"}),
    ]))
    client = gw.client()
    raw = client.responses.with_raw_response.create(model="early,late", input="hi", stream=True,
                                                    extra_body={"fastest_response": True})
    events = list(raw.parse())
    assert raw.headers["x-tailgate-deployment"] == "late-dep"
    assert raw.headers["x-tailgate-attempts"] == "2"
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == mock_words("late", 3)
    assert events[-1].type == "response.completed"
    assert len({e.response.id for e in events if hasattr(e, "response")}) == 1
    # The loser ran until the winner's first delta (~150 ms), then its socket was closed.
    req = wait_for(lambda: [r for r in early.api_requests() if r["outcome"] == "cancelled"], timeout=5,
                   what="the losing attempt to be cancelled")[0]
    kept_ms = req["finished_ms"] - req["received_ms"]
    assert 100 <= kept_ms < 1500, kept_ms
    # The mock records "completed" when its last write returns, which may follow the client's read.
    wait_for(lambda: late.api_requests()[0]["outcome"] == "completed", timeout=5, what="the winner's record completed")


# --------------------------------------------------------------------------
# the Node SDK (tests/e2e/node/responses_call.mjs)
# --------------------------------------------------------------------------

NODE_DIR = __import__("pathlib").Path(__file__).parent / "node"


def node_responses(base_url: str, model: str, mode: str, *extra: str) -> dict:
    import shutil
    import subprocess
    if not shutil.which("node") or not (NODE_DIR / "node_modules" / "openai").is_dir():
        pytest.skip("node or tests/e2e/node/node_modules missing (tools/scripts/test.sh runs npm ci)")
    p = subprocess.run(["node", str(NODE_DIR / "responses_call.mjs"), base_url, model, mode, *extra],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("group", ["native", "translated"])
def test_node_sdk(rig, client, group):
    base = rig["gw"].base_url
    name = KINDS[group][0]
    out = node_responses(base, group, "stream")
    assert out["ok"], out
    assert out["text"] == mock_words(name, CHUNKS)
    assert out["types"][0] == "response.created" and out["types"][-1] == "response.completed"
    assert out["sequence"] == list(range(len(out["types"])))
    helper = node_responses(base, group, "helper")
    assert helper["ok"] and helper["text"] == helper["final"] == mock_words(name, CHUNKS), helper
    tools = node_responses(base, group, "tools")
    assert tools["ok"] and tools["calls"] == [{"name": "lookup", "arguments": json.dumps({"mock": name}, separators=(",", ":"))}]
    bad = node_responses(base, "no-such-group", "plain")
    assert not bad["ok"] and bad["status"] in (400, 404), bad


# --------------------------------------------------------------------------
# stored responses: store, previous_response_id, retrieve / delete / input_items
# --------------------------------------------------------------------------

@pytest.mark.parametrize("stream", [False, True])
def test_previous_response_id_across_native_and_translated(rig, client, stream):
    def create(model, **kw):
        if not stream:
            return client.responses.create(model=model, **kw)
        with client.responses.stream(model=model, **kw) as s:
            return s.get_final_response()

    r1 = create("translated", input="hello there", instructions="only for the first turn")
    # Chained at once (the store's writer may not have run yet) to the other kind of deployment.
    r2 = create("native", input="second", previous_response_id=r1.id)
    body = upstream(rig, "native")
    assert "previous_response_id" not in body and "instructions" not in body
    assert body["input"] == [
        {"type": "message", "role": "user", "content": "hello there"},
        {"type": "message", "role": "assistant",
         "content": [{"type": "output_text", "text": mock_words("chat", CHUNKS), "annotations": [], "logprobs": []}]},
        {"type": "message", "role": "user", "content": "second"}]
    # A native upstream never saw the id (it echoes null); the stored copy says it.
    assert client.responses.retrieve(r2.id).previous_response_id == r1.id
    r3 = create("translated", input=[{"role": "user", "content": "third"}], previous_response_id=r2.id)
    assert r3.output_text == mock_words("chat", CHUNKS)
    assert upstream(rig, "translated")["messages"] == [
        {"role": "user", "content": "hello there"},
        {"role": "assistant", "content": mock_words("chat", CHUNKS)},
        {"role": "user", "content": "second"},
        {"role": "assistant", "content": mock_words("nat", CHUNKS)},
        {"role": "user", "content": "third"}]


def test_retrieve_input_items_delete(rig, client):
    r = client.responses.create(model="native", input=[{"role": "user", "content": "hello there"},
                                                       {"role": "user", "content": "again"}], metadata={"k": "v"})
    got = wait_for(lambda: client.responses.retrieve(r.id), what="the stored response")
    assert got.id == r.id and got.output_text == r.output_text == mock_words("nat", CHUNKS)
    items = client.responses.input_items.list(r.id)
    assert [i.content[0].text for i in items.data] == ["again", "hello there"]  # newest first by default
    assert all(i.type == "message" and i.id for i in items.data)
    asc = client.responses.input_items.list(r.id, order="asc", limit=1)
    assert [i.content[0].text for i in asc.data] == ["hello there"] and asc.has_more
    rest = client.responses.input_items.list(r.id, order="asc", after=asc.data[0].id)
    assert [i.content[0].text for i in rest.data] == ["again"] and not rest.has_more
    d = client.responses.delete(r.id)
    assert d is None or getattr(d, "deleted", True)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(r.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.delete(r.id)
    with pytest.raises(openai.BadRequestError) as e:
        client.responses.create(model="native", input="x", previous_response_id=r.id)
    assert e.value.code == "previous_response_not_found" and e.value.param == "previous_response_id"


def test_store_false_keeps_nothing(rig, client):
    r = client.responses.create(model="translated", input="hello there", store=False)
    assert r.store is False
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(r.id)
    r = client.responses.create(model="native", input="hello there", store=True)
    assert client.responses.retrieve(r.id).id == r.id
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve("resp_unknown")


def test_mid_stream_failure_continues_numbering_and_is_not_stored(rig, client):
    rig["chat"].configure(reset_mid_stream_after=2, chunks=4)
    events = list(client.responses.create(model="translated", input="hello there", stream=True))
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert [e.type for e in events[-2:]] == ["error", "response.failed"]
    assert events[-1].response.id == events[0].response.id and events[-1].response.status == "failed"
    assert events[-1].response.error.code == "upstream_stream_interrupted"
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(events[0].response.id)


def test_state_dir_keeps_responses_across_restarts_and_retention(stack, tmp_path):
    m = stack.mock("keep", *FAST)
    state = tmp_path / "state"
    cfg = make_config([deployment("g", m, model="openai/up")], general_settings={"master_key": "sk-master"})
    gw = stack.gateway(cfg, env={"TAILGATE_STATE_DIR": str(state)})
    r = gw.client(api_key="sk-master").responses.create(model="g", input="hello there")
    assert gw.stop() == 0
    gw2 = stack.gateway(cfg, env={"TAILGATE_STATE_DIR": str(state)}, name="again")
    c2 = gw2.client(api_key="sk-master")
    assert c2.responses.retrieve(r.id).output_text == mock_words("keep", CHUNKS)
    c2.responses.create(model="g", input="next", previous_response_id=r.id)
    assert [i["content"] for i in m.last_body()["input"] if i.get("role") == "user"] == ["hello there", "next"]
    # retention: 0 keeps nothing
    cfg0 = make_config([deployment("g", m, model="openai/up")], general_settings={"response_retention": 0})
    c0 = stack.gateway(cfg0, name="none").client()
    r0 = c0.responses.create(model="g", input="hello there")
    with pytest.raises(openai.NotFoundError):
        c0.responses.retrieve(r0.id)


def test_azure_native_path_and_faults(stack):
    az = stack.mock("az", *FAST)
    gw = stack.gateway(make_config([
        deployment("az", model="azure/my-deploy", api_base=f"http://127.0.0.1:{az.port}", api_version="2024-02-01",
                   api_key="az-secret"),
    ], router_settings={"disable_cooldowns": True}))
    client = gw.client()
    assert client.responses.create(model="az", input="hello there").output_text == mock_words("az", CHUNKS)
    req = az.api_requests()[-1]
    assert req["path"] == "/openai/responses?api-version=2025-04-01-preview", req["path"]
    assert req["headers"].get("api-key") == "az-secret" and "authorization" not in req["headers"]
    assert json.loads(req["body"])["model"] == "my-deploy"
    # A native stream that ends without response.completed is an error, never a clean end.
    az.configure(garbage="no_done")
    events = list(client.responses.create(model="az", input="hello there", stream=True))
    assert events[-1].type == "response.failed" and events[-2].type == "error", [e.type for e in events]
    assert events[-2].message == "upstream stream ended without response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    # A 2xx body that is not a Response is a 502 before anything was sent.
    az.configure(garbage="non_json")
    with pytest.raises(openai.APIStatusError) as e:
        client.responses.create(model="az", input="hello there")
    assert e.value.status_code == 502


def test_odd_input_items_are_listed_safely(rig, client):
    gw = rig["gw"]
    r = gw.http.post("/v1/responses", json={"model": "native", "input": [{"role": "user", "content": "x", "id": 5}, 7]})
    assert r.status_code == 200, r.text
    rid = r.json()["id"]
    page = gw.http.get(f"/v1/responses/{rid}/input_items")
    assert page.status_code == 200, page.text
    data = page.json()["data"]
    assert len(data) == 1 and isinstance(data[0]["id"], str) and data[0]["content"][0]["text"] == "x"
    assert gw.http.get(f"/v1/responses/{rid}/input_items?limit=0").status_code == 400
    # Translated, the same input cannot be put as chat: a 400 naming why.
    r = gw.http.post("/v1/responses", json={"model": "translated", "input": [7]})
    assert assert_openai_error_shape(r, 400)["code"] == "unsupported_by_deployment"
