"""gemini/ (Google AI Studio's OpenAI-compatible endpoint, key as Bearer) and
vertex_ai/ (a service account's RS256-signed JWT exchanged at the token URI for
an access token, which the gateway caches and refreshes ahead of expiry off the
request path). The mock serves the token endpoint, verifies each JWT with the
service account's public key, and refuses Vertex calls without a token it issued
and that is still valid."""
from __future__ import annotations

import base64
import json
import subprocess
import time

import openai
import pytest

from conftest import USER_HI, assert_openai_error_shape, deployment, make_config, mock_words, wait_for

TOOLS = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}}]


def rsa_keypair(tmp_path, name):
    key, pub = tmp_path / f"{name}.pem", tmp_path / f"{name}.pub.pem"
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", str(key)],
                   check=True, capture_output=True)
    subprocess.run(["openssl", "pkey", "-in", str(key), "-pubout", "-out", str(pub)], check=True, capture_output=True)
    return key.read_text(), pub


def service_account(tmp_path, name, private_key, token_uri):
    path = tmp_path / f"{name}-sa.json"
    path.write_text(json.dumps({
        "type": "service_account", "project_id": "proj-from-key", "private_key_id": "kid-1",
        "private_key": private_key, "client_email": f"{name}@proj.iam.gserviceaccount.com",
        "token_uri": token_uri}))
    return path


def jwt_claims(token_request):
    form = dict(kv.split("=", 1) for kv in token_request["body"].split("&"))
    assert form["grant_type"] == "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer"
    header, claims, _ = form["assertion"].split(".")
    assert json.loads(base64.urlsafe_b64decode(header + "==")) == {"alg": "RS256", "typ": "JWT", "kid": "kid-1"}
    return json.loads(base64.urlsafe_b64decode(claims + "=="))


def last_auth(mock):
    """The Authorization header of the last API call (token fetches run in the background)."""
    return [r for r in mock.api_requests() if r["path"] != "/token"][-1]["headers"]["authorization"]


def token_requests(mock, account="good"):
    """The token fetches of one service account."""
    return [r for r in mock.api_requests()
            if r["path"] == "/token" and jwt_claims(r)["iss"] == f"{account}@proj.iam.gserviceaccount.com"]


@pytest.fixture(scope="module")
def env(module_stack, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("vertex")
    private_key, public_key = rsa_keypair(tmp, "good")
    other_key, _ = rsa_keypair(tmp, "other")
    m = module_stack.mock("gv", "--ttft", "1ms", "--chunk-delay", "1ms", "--chunks", "3",
                          "--google-public-key", str(public_key), "--token-ttl", "4")
    good = service_account(tmp, "good", private_key, m.url + "/token")
    bad = service_account(tmp, "intruder", other_key, m.url + "/token")
    vertex_base = m.url + "/v1/projects/p1/locations/europe-west4/endpoints/openapi"
    cfg = make_config([
        {"model_name": "flash", "litellm_params": {
            "model": "vertex_ai/gemini-2.0-flash", "api_base": vertex_base, "vertex_credentials": str(good),
            "vertex_project": "p1", "vertex_location": "europe-west4", "num_retries": 0}},
        {"model_name": "flash-inline", "litellm_params": {
            "model": "vertex_ai/gemini-2.0-flash", "api_base": vertex_base, "vertex_credentials": good.read_text(),
            "num_retries": 0}},
        {"model_name": "intruder", "litellm_params": {
            "model": "vertex_ai/gemini-2.0-flash", "api_base": vertex_base, "vertex_credentials": str(bad),
            "num_retries": 0}},
        deployment("studio", m, model="gemini/gemini-2.0-flash", api_key="os.environ/GEMINI_API_KEY",
                   num_retries=0),
    ])
    gw = module_stack.gateway(cfg, env={"GEMINI_API_KEY": "gemini-SECRET-key"})
    return gw, m, private_key


@pytest.fixture(autouse=True)
def _check(env):
    yield
    env[0].assert_healthy()


@pytest.mark.parametrize("group", ["flash", "studio"])
def test_chat_stream_tools_and_errors(env, group):
    gw, m, _ = env
    client = gw.client()
    before = len(m.api_requests())
    assert client.chat.completions.create(model=group, messages=USER_HI).choices[0].message.content == \
        mock_words("gv", 3)
    s = client.chat.completions.create(model=group, messages=USER_HI, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in s if c.choices) == mock_words("gv", 3)
    tool = client.chat.completions.create(model=group, messages=USER_HI, tools=TOOLS)
    assert tool.choices[0].message.tool_calls[0].function.name == "lookup"
    calls = [r for r in m.api_requests()[before:] if r["path"] != "/token"]
    assert len(calls) == 3
    for r in calls:
        body = json.loads(r["body"])
        if group == "flash":
            assert r["path"] == "/v1/projects/p1/locations/europe-west4/endpoints/openapi/chat/completions"
            assert r["headers"]["authorization"].startswith("Bearer ya29.mock-")
            assert body["model"] == "google/gemini-2.0-flash"
        else:
            assert r["path"] == "/v1/chat/completions"
            assert r["headers"]["authorization"] == "Bearer gemini-SECRET-key"
            assert body["model"] == "gemini-2.0-flash"
    m.configure(fail_rate=1, fail_status=429)
    try:
        with pytest.raises(openai.RateLimitError) as ei:
            client.chat.completions.create(model=group, messages=USER_HI)
        assert_openai_error_shape(ei.value.response, 429)
    finally:
        m.configure(fail_rate=0)


def test_token_is_fetched_at_start_cached_and_refreshed_ahead_of_expiry(env):
    gw, m, private_key = env
    client = gw.client()
    # The config's publication started the fetch: the token exists before any request.
    first = wait_for(lambda: token_requests(m), what="the first token fetch")[0]
    claims = jwt_claims(first)
    assert claims["aud"] == m.url + "/token" and claims["exp"] - claims["iat"] == 3600
    assert "cloud-platform" in claims["scope"]
    # Tokens live 4 s here, so each is refreshed about 2 s after it was issued, by
    # the background thread: requests never fetch, and every one carries a valid
    # token (the mock answers 401 otherwise).
    seen_tokens = set()
    start_fetches = len(token_requests(m))
    deadline = time.monotonic() + 15
    while len(seen_tokens) < 3 and time.monotonic() < deadline:
        r = client.chat.completions.create(model="flash", messages=USER_HI)
        assert r.choices[0].message.content == mock_words("gv", 3)
        seen_tokens.add(last_auth(m))
        time.sleep(0.1)
    assert len(seen_tokens) >= 3, f"the token was not refreshed ahead of its expiry: {seen_tokens}"
    fetches = len(token_requests(m)) - start_fetches
    assert fetches <= len(seen_tokens) + 1, "one fetch per token lifetime, not one per request"
    # Deployments of the same service account share the cached token.
    for _ in range(20):
        n = len(token_requests(m))
        client.chat.completions.create(model="flash", messages=USER_HI)
        a = last_auth(m)
        client.chat.completions.create(model="flash-inline", messages=USER_HI)
        b = last_auth(m)
        if len(token_requests(m)) == n:  # no refresh in between
            break
    assert a == b
    assert private_key.split("\n")[1] not in gw.log_text()


def test_a_key_the_token_endpoint_refuses_fails_fast_without_secrets(env):
    gw, m, private_key = env
    t0 = time.monotonic()
    with pytest.raises(openai.APIStatusError) as ei:
        gw.client().chat.completions.create(model="intruder", messages=USER_HI)
    assert time.monotonic() - t0 < 10
    assert ei.value.status_code in (502, 503), ei.value.response.text
    err = assert_openai_error_shape(ei.value.response)
    assert "access token" in err["message"] and "Invalid JWT Signature" in err["message"]
    assert "PRIVATE KEY" not in ei.value.response.text
    assert not [r for r in m.api_requests() if r["path"].endswith("/chat/completions")
                and "intruder" in r["headers"].get("authorization", "")]
