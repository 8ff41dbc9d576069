"""Security review of main 3a7f9e7 (issue 13): each finding reproduced against the real
binary, with raw sockets where the HTTP framing matters and the official openai SDK elsewhere.

- CL.0 smuggling: a body on GET/HEAD/DELETE is refused and the connection closed; a
  body a handler did not read is never parsed as the next request.
- model lists are counted and capped before they are built.
- per-request timeout / stream_timeout are clamped to [1 ms, max_request_timeout].
- a model list without fastest_response holds no server thread.
- client-side credential fields go by prefix (aws_*, vertex_*, ...) plus user_config.
- an empty master key refuses to start; no key beyond loopback is announced.
- a client that hangs up at once never leaves an attempt running.
- text logs escape control bytes from client data.
- the client's x-request-id is echoed, never used as the internal id.
"""
from __future__ import annotations

import concurrent.futures
import json
import socket
import subprocess
import time

import httpx
import openai
import pytest

from conftest import TAILGATE, USER_HI, Proc, assert_openai_error_shape, deployment, make_config, wait_for
from test_client_faults import Reader, chat_body, connect, post

AUTH = {"Authorization": "Bearer sk-anything"}


def api_calls(mock) -> int:
    """Chat requests the mock received (its `received` also counts control calls)."""
    return mock.stats()["by_path"].get("/v1/chat/completions", 0)


@pytest.fixture(scope="module")
def env(module_stack):
    fast = module_stack.mock("fast", "--ttft", "1ms", "--chunks", "4")
    slow = module_stack.mock("slow", "--ttft", "1500ms", "--chunks", "2")
    cfg = make_config([deployment("fast", fast), deployment("slow", slow), deployment("slow2", slow)],
                      router_settings={"max_request_timeout": "2s"},
                      general_settings={"max_threads": 2})
    gw = module_stack.gateway(cfg)
    return {"gw": gw, "fast": fast, "slow": slow}


# --------------------------------------------------------------------------
# CL.0 request smuggling
# --------------------------------------------------------------------------

SMUGGLED = b"GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.mark.parametrize("method", ["GET", "HEAD", "DELETE"])
def test_body_on_a_bodiless_method_is_refused_and_never_parsed_as_a_request(env, method):
    s = connect(env["gw"])
    s.sendall(f"{method} /health/liveliness HTTP/1.1\r\nHost: x\r\nContent-Length: {len(SMUGGLED)}\r\n\r\n".encode()
              + SMUGGLED)
    r = Reader(s)
    version, status, headers, body = r.response()
    assert status == 400, (status, body)
    if method != "HEAD":
        err = json.loads(body)["error"]
        assert err["code"] == "invalid_http_request" and method in err["message"]
    assert r.closed(2.0), "a second response (the smuggled request's) or a kept-alive connection"
    s.close()


def test_chunked_body_on_get_is_refused(env):
    s = connect(env["gw"])
    chunk = f"{len(SMUGGLED):x}\r\n".encode() + SMUGGLED + b"\r\n0\r\n\r\n"
    s.sendall(b"GET /v1/models HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk)
    r = Reader(s)
    assert r.response()[1] == 400
    assert r.closed(2.0)
    s.close()


def test_get_with_an_empty_body_keeps_the_connection(env):
    s = connect(env["gw"])
    s.sendall(b"GET /health/liveliness HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n" + SMUGGLED)
    r = Reader(s)
    assert r.response()[1] == 200
    _, status, _, body = r.response()  # a real second request, sent as one
    assert status == 200 and json.loads(body)["object"] == "list"
    s.close()


def test_unread_body_of_a_refused_post_is_not_a_next_request(env):
    """A POST on a GET-only path is answered 405; its body (here a whole request) is read
    and dropped, or the connection closes: it never yields a second response."""
    s = connect(env["gw"])
    s.sendall(b"POST /health/liveliness HTTP/1.1\r\nHost: x\r\nContent-Length: " + str(len(SMUGGLED)).encode()
              + b"\r\n\r\n" + SMUGGLED)
    r = Reader(s)
    assert r.response()[1] == 405
    s.sendall(b"GET /health/readiness HTTP/1.1\r\nHost: x\r\n\r\n")
    try:
        _, status, _, body = r.response()
    except (EOFError, ConnectionResetError):
        return  # closed instead: also safe
    assert status == 200 and json.loads(body)["status"] == "healthy", body  # readiness, not /v1/models


# --------------------------------------------------------------------------
# model lists, timeouts
# --------------------------------------------------------------------------

def test_long_model_list_is_refused_before_it_is_built(env):
    client = env["gw"].client()
    for model in [",".join(["fast"] * 17), " ," * 200_000, "fast," + " " * 1_000_000 + ","]:
        with pytest.raises(openai.BadRequestError) as e:
            client.chat.completions.create(model=model, messages=USER_HI)
        assert e.value.body["param"] == "model"
    # Many spaces around a name cost one pass, and the list still works.
    r = client.chat.completions.with_raw_response.create(model="fast," + " " * 100_000 + "fast",
                                                         messages=USER_HI, extra_body={"fastest_response": True})
    assert r.status_code == 200 and r.headers["x-tailgate-model-group"] == "fast"


@pytest.mark.parametrize("value", [0, -1, "1", None])
def test_invalid_request_timeout_is_400(env, value):
    with pytest.raises(openai.BadRequestError) as e:
        env["gw"].client().chat.completions.create(model="fast", messages=USER_HI, extra_body={"timeout": value})
    assert e.value.body["param"] == "timeout"


def test_huge_request_timeout_is_clamped_to_the_configured_maximum(env):
    """1e300 s used to overflow the conversion (undefined behaviour) or mean "no
    deadline"; now it is max_request_timeout (2 s here) against a 1.5 s upstream... that
    still answers, and 0.5 s would not."""
    client = env["gw"].client(timeout=20)
    ok = client.chat.completions.create(model="slow", messages=USER_HI, extra_body={"timeout": 1e300})
    assert ok.choices[0].message.content.startswith("slow-0")
    # Sub-millisecond: 1 ms, never 0 ("no deadline").
    t0 = time.monotonic()
    with pytest.raises(openai.APIStatusError) as e:
        client.chat.completions.create(model="slow", messages=USER_HI, extra_body={"timeout": 1e-9})
    assert e.value.status_code == 504
    assert time.monotonic() - t0 < 1.2, "the 1.5 s upstream was waited for"


def test_request_timeout_above_the_maximum_is_cut_to_it(stack):
    slow = stack.mock("slow", "--ttft", "3s", "--chunks", "2")
    gw = stack.gateway(make_config([deployment("slow", slow)], router_settings={"max_request_timeout": "300ms"}))
    t0 = time.monotonic()
    with pytest.raises(openai.APIStatusError) as e:
        gw.client(timeout=20).chat.completions.create(model="slow", messages=USER_HI, extra_body={"timeout": 3600})
    assert e.value.status_code == 504
    assert time.monotonic() - t0 < 2.5, "waited for the 3 s upstream: the clamp did not apply"


# --------------------------------------------------------------------------
# model list without fastest_response: on the relay, not on a server thread
# --------------------------------------------------------------------------

def test_all_results_requests_hold_no_server_thread(env):
    """max_threads is 2: four model-list requests against a 1.5 s upstream are all in
    flight while /health/liveliness answers at once (they used to hold a pool thread each)."""
    gw = env["gw"]
    client = gw.client(timeout=30)

    def all_results():
        return client.chat.completions.with_raw_response.create(model="slow,slow2", messages=USER_HI)

    slow_before = api_calls(env["slow"])
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        futs = [pool.submit(all_results) for _ in range(4)]
        wait_for(lambda: api_calls(env["slow"]) - slow_before >= 8, timeout=10, what="8 upstream requests")
        r = httpx.get(gw.url + "/health/liveliness", timeout=10)
        pending = sum(not f.done() for f in futs)
        assert r.status_code == 200
        assert pending == 4, "liveliness waited for the model-list requests"
        results = [f.result() for f in futs]
    for raw in results:
        body = json.loads(raw.content)
        assert raw.status_code == 200
        assert [x["model_group"] for x in body["results"]] == ["slow", "slow2"]
        assert all(x["status"] == 200 for x in body["results"])
        assert raw.headers["x-tailgate-attempts"] == "2"


def test_all_results_client_gone_cancels_every_group(env):
    gw, slow = env["gw"], env["slow"]
    before, calls = slow.stats(), api_calls(slow)
    s = connect(gw)
    s.sendall(post(chat_body(model="slow, slow2")))
    wait_for(lambda: api_calls(slow) - calls >= 2, timeout=10, what="both groups asked")
    s.close()
    wait_for(lambda: slow.stats()["cancelled_by_client"] - before["cancelled_by_client"] >= 2, timeout=5,
             what="both upstream requests cancelled")
    gw.assert_healthy()


# --------------------------------------------------------------------------
# client-side credentials
# --------------------------------------------------------------------------

@pytest.mark.parametrize("field", ["user_config", "aws_bedrock_runtime_endpoint", "vertex_ai_project",
                                   "azure_ad_token_provider", "api_type", "litellm_params"])
@pytest.mark.parametrize("where", ["top", "extra_body"])
def test_credential_fields_are_refused_by_prefix(env, field, where):
    value = {"model_list": []} if field == "user_config" else "https://attacker.example"
    body = {"model": "fast", "messages": USER_HI}
    if where == "top":
        body[field] = value
    else:
        body["extra_body"] = {field: value}
    r = httpx.post(env["gw"].base_url + "/chat/completions", json=body, headers=AUTH)
    err = assert_openai_error_shape(r, 400)
    assert err["code"] == "client_side_credentials_not_allowed" and field in err["param"]


# --------------------------------------------------------------------------
# master key
# --------------------------------------------------------------------------

def test_empty_master_key_refuses_to_start(tmp_path):
    cfg = make_config([deployment("g", api_base="http://127.0.0.1:9/v1")],
                      general_settings={"master_key": "os.environ/TG_EMPTY_KEY"})
    path = tmp_path / "empty-key.yaml"
    path.write_text(json.dumps(cfg, indent=2))
    for extra in ([], ["--check"]):
        p = subprocess.run([str(TAILGATE), "--config", str(path), "--port", "0", *extra],
                           env={"TG_EMPTY_KEY": "", "PATH": "/usr/bin:/bin"}, capture_output=True, text=True,
                           timeout=30)
        assert p.returncode == 1, (p.stdout, p.stderr)
        assert "general_settings.master_key" in p.stderr and "empty" in p.stderr
        assert str(path) in p.stderr  # file:line


def test_no_master_key_beyond_loopback_is_announced(tmp_path, env):
    cfg = make_config([deployment("fast", env["fast"])])
    path = tmp_path / "open.yaml"
    path.write_text(json.dumps(cfg))
    gw = Proc([TAILGATE, "--config", path, "--host", "0.0.0.0", "--port", "0"], tmp_path / "open.log")
    try:
        ready = httpx.get(f"http://127.0.0.1:{gw.port}/health/readiness", timeout=5).json()
        assert ready["auth"] == "disabled" and "master_key" in ready["warning"]
        assert "authentication is OFF" in gw.log_text()
    finally:
        gw.stop()
    # On loopback: said in readiness, no warning.
    local = Proc([TAILGATE, "--config", path, "--host", "127.0.0.1", "--port", "0"], tmp_path / "local.log")
    try:
        ready = httpx.get(f"http://127.0.0.1:{local.port}/health/readiness", timeout=5).json()
        assert ready["auth"] == "disabled" and "warning" not in ready
        assert "authentication is OFF" not in local.log_text()
    finally:
        local.stop()


# --------------------------------------------------------------------------
# a client that hangs up at once
# --------------------------------------------------------------------------

def test_immediate_hang_up_leaves_no_attempt_running(env):
    """Request then shutdown(SHUT_WR) at once, many times: whatever reached the upstream
    was cancelled; nothing ran to completion for a client that was gone."""
    gw, slow = env["gw"], env["slow"]
    before = slow.stats()
    for _ in range(30):
        s = connect(gw)
        s.sendall(post(chat_body(model="slow")))
        s.shutdown(socket.SHUT_WR)
        s.close()
    api = "/v1/chat/completions"

    def settled():
        st = slow.stats()
        received = st["by_path"].get(api, 0) - before["by_path"].get(api, 0)
        # Each one that got there was cut off (cancelled, or reset while the mock read it).
        ended = sum(st[k] - before[k] for k in ("cancelled_by_client", "reset", "failed", "completed"))
        return st if st["in_flight"] == 0 and ended == received else None

    after = wait_for(settled, timeout=10, what="every request that reached the mock to have ended")
    assert after["completed"] - before["completed"] == 0, "an attempt ran for a client that had gone"
    gw.assert_healthy()


# --------------------------------------------------------------------------
# logs and request ids
# --------------------------------------------------------------------------

def test_text_log_escapes_control_bytes_from_client_data(env):
    gw = env["gw"]
    forged = "nope\n2026-01-01 00:00:00.000 error FORGED LINE \x1b[31m"
    with pytest.raises(openai.NotFoundError):
        gw.client().chat.completions.create(model=forged, messages=USER_HI)
    line = wait_for(lambda: next((l for l in gw.log_text().splitlines() if "model=nope" in l), None),
                    what="the request's log line")
    assert "\\x0a2026-01-01" in line and "\\x1b[31m" in line
    assert not any(l.startswith("2026-01-01 00:00:00.000") for l in gw.log_text().splitlines())
    assert "\x1b" not in gw.log_text()


def test_client_request_id_is_echoed_but_not_the_internal_id(stack):
    m = stack.mock("m", "--ttft", "1ms")
    gw = stack.gateway(make_config([deployment("g", m)], general_settings={"log_format": "json"}))
    client = gw.client()
    for _ in range(2):
        raw = client.chat.completions.with_raw_response.create(model="g", messages=USER_HI,
                                                               extra_headers={"x-request-id": "same-id"})
        assert raw.headers["x-request-id"] == "same-id"

    def records():
        return [r for r in (json.loads(l) for l in gw.log_text().splitlines()) if r.get("msg") == "request"]

    recs = wait_for(lambda: (lambda r: r if len(r) >= 2 else None)(records()), what="two request records")
    assert all(r["client_request_id"] == "same-id" for r in recs)
    ids = {r["request_id"] for r in recs}
    assert len(ids) == 2 and all(i.startswith("req_") for i in ids)
