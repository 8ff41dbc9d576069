"""Client-side errors in OpenAI's error shape, paths, methods, health, body
limits (test 7) and malformed bodies (test 16). One gateway for the module."""
from __future__ import annotations

import json
import random

import httpx
import openai
import pytest

from conftest import USER_HI, assert_openai_error_shape, deployment, make_config, mock_words

BODY_LIMIT = 4096


@pytest.fixture(scope="module")
def env(module_stack):
    m = module_stack.mock("errs", "--ttft", "1ms", "--chunk-delay", "1ms", "--chunks", "3")
    cfg = make_config(
        [deployment("chat", m), deployment("other-group", m), deployment("emb", m, model="openai/emb-up")],
        general_settings={"max_request_body_bytes": BODY_LIMIT})
    return module_stack.gateway(cfg), m


@pytest.fixture(autouse=True)
def _reset(env):
    env[1].reset()
    yield
    env[0].assert_healthy()


def post(gw, path, content, headers=None):
    h = {"content-type": "application/json"}
    h.update(headers or {})
    return gw.http.post(path, content=content, headers=h)


def test_unknown_model_not_found_lists_groups(env):
    gw, m = env
    with pytest.raises(openai.NotFoundError) as ei:
        gw.client().chat.completions.create(model="gpt-nope", messages=USER_HI)
    e = ei.value
    assert e.status_code == 404
    msg = str(e.body.get("message") if isinstance(e.body, dict) else e.message)
    assert "gpt-nope" in msg
    for g in ("chat", "other-group", "emb"):
        assert g in msg, msg
    assert_openai_error_shape(e.response, 404)
    assert m.api_requests() == []


@pytest.mark.parametrize("content, needle", [
    (b'{"model": "chat", "messages": [', "json"),
    (b'not json at all', "json"),
    (b'{"model": "chat", "messages": "hello"}', "messages"),
    (b'{"model": "chat", "messages": {"role": "user"}}', "messages"),
    (b'{"messages": [{"role": "user", "content": "x"}]}', "model"),
    (b'{"model": "chat"}', "messages"),
    (b'{"model": 42, "messages": []}', "model"),
    (b'[1, 2, 3]', "object"),
    (b'', "empty"),
])
def test_bad_body_400(env, content, needle):
    gw, m = env
    r = post(gw, "/v1/chat/completions", content)
    err = assert_openai_error_shape(r, 400)
    assert needle in err["message"].lower(), err
    assert m.api_requests() == []


def test_bad_body_via_sdk_is_bad_request(env):
    gw, _ = env
    with pytest.raises(openai.BadRequestError) as ei:
        gw.client().chat.completions.create(model="chat", messages="not-a-list")  # type: ignore[arg-type]
    assert ei.value.status_code == 400


def test_body_over_limit_413(env):
    gw, m = env
    big = json.dumps({"model": "chat", "messages": [{"role": "user", "content": "x" * (BODY_LIMIT + 10)}]})
    r = post(gw, "/v1/chat/completions", big.encode())
    err = assert_openai_error_shape(r, 413)
    assert str(BODY_LIMIT) in err["message"]
    # Chunked upload (no Content-Length) is limited too.
    def gen():
        yield big[:1000].encode()
        yield big[1000:].encode()
    r2 = gw.http.post("/v1/chat/completions", content=gen(), headers={"content-type": "application/json"})
    assert_openai_error_shape(r2, 413)
    # Just under the limit still works.
    ok = json.dumps({"model": "chat", "messages": [{"role": "user", "content": "y" * (BODY_LIMIT - 200)}]})
    assert len(ok) <= BODY_LIMIT
    r3 = post(gw, "/v1/chat/completions", ok.encode())
    assert r3.status_code == 200, r3.text
    assert len(m.api_requests()) == 1


def test_body_over_limit_via_sdk(env):
    gw, _ = env
    with pytest.raises(openai.APIStatusError) as ei:
        gw.client().chat.completions.create(model="chat", messages=[{"role": "user", "content": "z" * 10000}])
    assert ei.value.status_code == 413


@pytest.mark.parametrize("method, path, status", [
    ("GET", "/v1/chat/completions", 405),
    ("PUT", "/v1/chat/completions", 405),
    ("DELETE", "/v1/embeddings", 405),
    ("POST", "/v1/models", 405),
    ("GET", "/v1/nope", 404),
    ("POST", "/v2/chat/completions", 404),
    ("GET", "/", 404),
])
def test_method_and_path_errors(env, method, path, status):
    gw, _ = env
    r = gw.http.request(method, path)
    err = assert_openai_error_shape(r, status)
    if status == 405:
        assert r.headers.get("allow"), r.headers
    if status == 404:
        assert err["message"]


def test_paths_without_v1_prefix(env):
    gw, m = env
    r = gw.http.post("/chat/completions", json={"model": "chat", "messages": USER_HI})
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["message"]["content"] == mock_words("errs", 3)
    r = gw.http.post("/embeddings", json={"model": "emb", "input": "abc"})
    assert r.status_code == 200, r.text
    assert r.json()["data"][0]["object"] == "embedding"
    r = gw.http.get("/models")
    assert r.status_code == 200
    assert {d["id"] for d in r.json()["data"]} == {"chat", "other-group", "emb"}
    # And the SDK pointed at the bare origin.
    c = openai.OpenAI(base_url=gw.url, api_key="x", max_retries=0)
    assert c.chat.completions.create(model="chat", messages=USER_HI).choices[0].message.content
    assert len(m.api_requests()) == 3


def test_health_endpoints(env):
    gw, m = env
    for p in ("/health/liveliness", "/health/readiness"):
        r = gw.http.get(p)
        assert r.status_code == 200, (p, r.text)
        assert r.json().get("status")
    assert m.api_requests() == []


# 16 -------------------------------------------------------------------------

def junk_bodies() -> list[bytes]:
    good = {"model": "chat", "messages": USER_HI}
    good_text = json.dumps(good).encode()
    out: list[bytes] = [
        b"", b" ", b"\n\t", b"{", b"}", b"[", b"null", b"true", b"0", b"\"str\"", b"{}",
        b"{\"model\":}", b"{\"model\" \"chat\"}", b"{'model': 'chat'}", b"{\"model\":\"chat\",}",
        b"{\"model\":\"chat\",\"messages\":[]}}", b"\xef\xbb\xbf" + good_text[:10],
        b"{\"model\":\"ch\xffat\",\"messages\":[]}",            # invalid UTF-8
        b"{\"model\":\"chat\",\"messages\":[{\"role\":\"user\",\"content\":\"\xc3\x28\"}]}",
        b"{\"model\":\"\\ud800\",\"messages\":[]}",            # lone surrogate escape
        b"{\"model\":\"chat\",\"messages\":[],\"temperature\":1e99999}",
        b"{\"model\":\"chat\",\"messages\":[],\"n\":-99999999999999999999999999999}",
        b"{\"model\":\"chat\",\"messages\":" + b"[" * 600 + b"]" * 600 + b"}",   # deep nesting
        b"{\"a\":" * 500 + b"1" + b"}" * 500,
        b"[" * 3000,
        b"{\"model\":[\"chat\"],\"messages\":[]}",
        b"{\"model\":null,\"messages\":[]}",
        b"{\"model\":\"\",\"messages\":[]}",
        b"{\"model\":\"chat\",\"messages\":null}",
        b"{\"model\":\"chat\",\"messages\":[],\"stream\":\"yes\"}",
        b"{\"model\":\"chat\",\"messages\":[],\"num_retries\":1e300}",
        b"{\"model\":\"chat\",\"messages\":[],\"num_retries\":-1}",
        b"{\"model\":\"chat\",\"messages\":[],\"timeout\":-5}",
        b"{\"model\":\"chat\",\"messages\":[],\"timeout\":\"soon\"}",
        b"{\"model\":\"chat\",\"messages\":[],\"metadata\":[1,2]}",
        b"{\"model\":\"chat\",\"messages\":[],\"fallbacks\":\"other\"}",
        b"{\"model\":\"chat\",\"messages\":[],\"fallbacks\":[1,2]}",
        b"{\"model\":\"chat\",\"messages\":[],\"fastest_response\":\"true\"}",
        b"{\"model\":\"nope,chat\",\"messages\":[]}",
        b"\x00\x01\x02\x03",
        bytes(range(256)),
        good_text[:-1],
        good_text[: len(good_text) // 2],
        good_text + b"garbage",
        good_text.replace(b"\"", b"", 1),
    ]
    rng = random.Random(1234)
    while len(out) < 50:
        cut = rng.randrange(1, len(good_text) - 1)
        b = bytearray(good_text[:cut])
        if rng.random() < 0.5:
            b[rng.randrange(len(b))] = rng.choice(b"{}[]:,\"\\\xff")
        out.append(bytes(b))
    return out


def test_junk_bodies_get_4xx_json(env):
    gw, m = env
    bodies = junk_bodies()
    assert len(bodies) >= 50
    for i, body in enumerate(bodies):
        for path in ("/v1/chat/completions", "/v1/embeddings"):
            try:
                r = post(gw, path, body)
            except httpx.HTTPError as e:  # pragma: no cover - reported as a failure
                pytest.fail(f"body #{i} {body[:80]!r} on {path}: transport error {e!r}; "
                            f"gateway alive={gw.alive()}")
            assert 400 <= r.status_code < 500, (i, body[:80], r.status_code, r.text[:300])
            assert_openai_error_shape(r)
    assert gw.alive()
    r = gw.http.post("/v1/chat/completions", json={"model": "chat", "messages": USER_HI})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("method, path", [("POST", "/v1/models"), ("POST", "/v1/nope"),
                                          ("PUT", "/v1/chat/completions")])
def test_connection_reusable_after_early_error(env, method, path):
    gw, _ = env
    with httpx.Client(base_url=gw.url, timeout=1, limits=httpx.Limits(max_connections=1)) as h:
        r = h.request(method, path, json={"model": "chat", "messages": USER_HI})
        assert r.status_code in (404, 405)
        r = h.get("/health/liveliness")
        assert r.status_code == 200, (r.status_code, r.text)


def test_connection_reusable_after_400(env):
    gw, _ = env
    with httpx.Client(base_url=gw.url, timeout=5, limits=httpx.Limits(max_connections=1)) as h:
        for body in (b"{bad json", b'{"model": "nope", "messages": []}', b'{"model": "chat", "messages": [1]}'):
            r = h.post("/v1/chat/completions", content=body, headers={"content-type": "application/json"})
            assert 400 <= r.status_code < 500
        r = h.post("/v1/chat/completions", json={"model": "chat", "messages": USER_HI})
        assert r.status_code == 200, r.text


def test_error_status_line_reason_phrase(env):
    gw, _ = env
    r = httpx.get(gw.url + "/v1/nope")
    assert r.status_code == 404
    assert r.reason_phrase != "OK", r.reason_phrase
