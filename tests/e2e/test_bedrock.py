"""bedrock/ deployments: chat completions translated to Bedrock's Converse and
ConverseStream APIs, signed with AWS SigV4 (the mock recomputes the signature
and answers 403 on a mismatch), the binary event stream decoded into OpenAI SSE
for the official openai client: stream, non-stream, tools, errors."""
from __future__ import annotations

import json

import openai
import pytest

from conftest import USER_HI, assert_openai_error_shape, make_config, mock_words

AKID = "AKIDEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
TOKEN = "session-token-SECRET-123"
MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "weather in a city",
                                           "parameters": {"type": "object",
                                                          "properties": {"city": {"type": "string"}}}}}]


def bedrock_deployment(group, mock, secret=SECRET, **extra):
    lp = {"model": f"bedrock/{MODEL}", "api_base": mock.url, "aws_access_key_id": AKID,
          "aws_secret_access_key": secret, "aws_session_token": TOKEN, "aws_region_name": "us-east-1",
          "num_retries": 0}
    lp.update(extra)
    return {"model_name": group, "litellm_params": lp}


@pytest.fixture(scope="module")
def env(module_stack):
    m = module_stack.mock("br", "--ttft", "1ms", "--chunk-delay", "1ms", "--chunks", "4",
                          "--aws-access-key-id", AKID, "--aws-secret-access-key", SECRET,
                          "--aws-session-token", TOKEN)
    cfg = make_config([bedrock_deployment("claude", m),
                       bedrock_deployment("wrong-secret", m, secret="not-the-secret"),
                       {"model_name": "claude-env", "litellm_params": {
                           "model": f"bedrock/converse/{MODEL}", "api_base": m.url, "num_retries": 0}}])
    env = {"AWS_ACCESS_KEY_ID": AKID, "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_SESSION_TOKEN": TOKEN,
           "AWS_REGION": "us-east-1"}
    return module_stack.gateway(cfg, env=env), m


@pytest.fixture(autouse=True)
def _reset(env):
    env[1].reset()
    yield
    env[0].assert_healthy()


def test_non_stream_translates_both_ways(env):
    gw, m = env
    resp = gw.client().chat.completions.create(
        model="claude", max_tokens=50, temperature=0.2, stop=["END"],
        messages=[{"role": "system", "content": "be brief"}, *USER_HI])
    assert resp.choices[0].message.content == mock_words("br", 4)
    assert resp.choices[0].finish_reason == "stop"
    assert resp.object == "chat.completion" and resp.id.startswith("chatcmpl-")
    assert resp.model == MODEL
    assert (resp.usage.prompt_tokens, resp.usage.completion_tokens) == (4, 4)  # "be brief" + "hello there"

    [req] = m.api_requests()
    assert req["path"] == "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse"
    assert req["headers"]["authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={AKID}/")
    assert "/us-east-1/bedrock/aws4_request" in req["headers"]["authorization"]
    assert req["headers"]["x-amz-security-token"] == TOKEN
    body = json.loads(req["body"])
    assert body["system"] == [{"text": "be brief"}]
    assert body["messages"] == [{"role": "user", "content": [{"text": "hello there"}]}]
    assert body["inferenceConfig"] == {"maxTokens": 50, "temperature": 0.2, "stopSequences": ["END"]}
    assert "model" not in body


def test_stream_is_decoded_into_openai_chunks(env):
    gw, m = env
    chunks = list(gw.client().chat.completions.create(model="claude", messages=USER_HI, stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == mock_words("br", 4)
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    usage = [c.usage for c in chunks if c.usage]
    assert usage and usage[-1].completion_tokens == 4
    [req] = m.api_requests()
    assert req["path"].endswith("/converse-stream")
    assert req["headers"]["accept"] == "application/vnd.amazon.eventstream"


@pytest.mark.parametrize("stream", [False, True])
def test_tools_round_trip(env, stream):
    gw, m = env
    client = gw.client()
    kwargs = dict(model="claude", tools=TOOLS, tool_choice={"type": "function", "function": {"name": "get_weather"}})
    msgs = [{"role": "user", "content": "weather in Paris?"}]
    if stream:
        calls = {}
        for c in client.chat.completions.create(messages=msgs, stream=True, **kwargs):
            for tc in (c.choices[0].delta.tool_calls or []) if c.choices else []:
                entry = calls.setdefault(tc.index, {"id": "", "name": "", "args": ""})
                entry["id"] += tc.id or ""
                entry["name"] += (tc.function.name or "") if tc.function else ""
                entry["args"] += (tc.function.arguments or "") if tc.function else ""
        [call] = calls.values()
        call_id, name, args = call["id"], call["name"], call["args"]
    else:
        resp = client.chat.completions.create(messages=msgs, **kwargs)
        assert resp.choices[0].finish_reason == "tool_calls"
        tc = resp.choices[0].message.tool_calls[0]
        call_id, name, args = tc.id, tc.function.name, tc.function.arguments
    assert name == "get_weather" and json.loads(args) == {"mock": "br"} and call_id.startswith("tooluse_")

    # The tool result goes back as a toolResult block in a user turn.
    follow = client.chat.completions.create(model="claude", tools=TOOLS, messages=msgs + [
        {"role": "assistant", "content": None,
         "tool_calls": [{"id": call_id, "type": "function", "function": {"name": name, "arguments": args}}]},
        {"role": "tool", "tool_call_id": call_id, "content": "sunny"}])
    assert follow.choices[0].message.content == mock_words("br", 4)
    body = json.loads(m.api_requests()[-1]["body"])
    assert body["toolConfig"]["tools"][0]["toolSpec"]["name"] == "get_weather"
    assert body["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"]["json"]["properties"] == {"city": {"type": "string"}}
    assert body["messages"][1] == {"role": "assistant", "content": [
        {"toolUse": {"toolUseId": call_id, "name": "get_weather", "input": {"mock": "br"}}}]}
    assert body["messages"][2] == {"role": "user", "content": [
        {"toolResult": {"toolUseId": call_id, "content": [{"text": "sunny"}]}}]}


def test_environment_credentials_and_converse_route_hint(env):
    gw, m = env
    resp = gw.client().chat.completions.create(model="claude-env", messages=USER_HI)
    assert resp.choices[0].message.content == mock_words("br", 4)
    assert m.api_requests()[-1]["path"] == "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse"


def test_bad_signature_is_403_and_secrets_stay_out(env):
    gw, m = env
    with pytest.raises(openai.PermissionDeniedError) as ei:
        gw.client().chat.completions.create(model="wrong-secret", messages=USER_HI)
    err = assert_openai_error_shape(ei.value.response, 403)
    assert "signature" in err["message"]
    text = ei.value.response.text + json.dumps(dict(ei.value.response.headers))
    for secret in ("not-the-secret", SECRET, TOKEN):
        assert secret not in text
    log = gw.log_text()
    for secret in ("not-the-secret", SECRET, TOKEN):
        assert secret not in log


@pytest.mark.parametrize("status, exc", [(429, openai.RateLimitError), (400, openai.BadRequestError),
                                         (503, openai.InternalServerError)])
def test_upstream_errors_map_to_openai(env, status, exc):
    gw, m = env
    m.configure(fail_rate=1, fail_status=status)
    with pytest.raises(exc) as ei:
        gw.client().chat.completions.create(model="claude", messages=USER_HI)
    err = assert_openai_error_shape(ei.value.response)
    assert "mock injected" in err["message"]


def test_failures_after_the_stream_started_are_sse_errors(env):
    gw, m = env
    client = gw.client()
    # An exception frame (throttlingException) after two content chunks.
    m.configure(error_event_after=2)
    got = []
    with pytest.raises(openai.APIError) as ei:
        for c in client.chat.completions.create(model="claude", messages=USER_HI, stream=True):
            got.extend(x.delta.content or "" for x in c.choices)
    assert "".join(got) == mock_words("br", 2)
    assert "throttlingException" in str(ei.value)
    # A corrupted frame (CRC mismatch) after two chunks.
    m.configure(error_event_after=None, garbage="bad_sse", garbage_after=2)
    with pytest.raises(openai.APIError):
        for _ in client.chat.completions.create(model="claude", messages=USER_HI, stream=True):
            pass
    # The connection reset mid-stream.
    m.configure(garbage=None, reset_mid_stream_after=1)
    with pytest.raises(openai.APIError):
        for _ in client.chat.completions.create(model="claude", messages=USER_HI, stream=True):
            pass


def test_what_converse_cannot_express_is_a_400_without_an_upstream_call(env):
    gw, m = env
    client = gw.client()
    with pytest.raises(openai.BadRequestError) as ei:
        client.chat.completions.create(model="claude", messages=USER_HI, n=2)
    assert "one choice" in ei.value.message
    with pytest.raises(openai.BadRequestError) as ei:
        client.chat.completions.create(model="claude", messages=[{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}])
    assert "data:" in ei.value.message
    with pytest.raises(openai.BadRequestError):
        client.embeddings.create(model="claude", input="x")
    assert m.api_requests() == []


def test_images_and_merged_turns(env):
    gw, m = env
    png = "iVBORw0KGgo="
    gw.client().chat.completions.create(model="claude", messages=[
        {"role": "user", "content": "first"},
        {"role": "user", "content": [{"type": "text", "text": "look"},
                                     {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}}]}])
    body = json.loads(m.api_requests()[-1]["body"])
    # Two user messages in a row become one turn: Converse wants roles alternating.
    assert body["messages"] == [{"role": "user", "content": [
        {"text": "first"}, {"text": "look"}, {"image": {"format": "png", "source": {"bytes": png}}}]}]
