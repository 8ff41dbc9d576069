"""Master key from the environment (test 6)."""
from __future__ import annotations

import json
import subprocess

import httpx
import openai
import pytest

from conftest import TAILGATE, USER_HI, assert_openai_error_shape, deployment, make_config, mock_words

MASTER = "sk-e2e-master-Zq81x0VtY3"


@pytest.fixture(scope="module")
def env(module_stack):
    m = module_stack.mock("authm", "--ttft", "1ms", "--chunk-delay", "1ms", "--chunks", "2")
    cfg = make_config([deployment("chat", m, api_key="sk-upstream-auth")],
                      general_settings={"master_key": "os.environ/TG_TEST_MASTER_KEY"})
    gw = module_stack.gateway(cfg, env={"TG_TEST_MASTER_KEY": MASTER})
    return gw, m


@pytest.fixture(autouse=True)
def _reset(env):
    env[1].reset()
    yield
    env[0].assert_healthy()


@pytest.mark.parametrize("key", ["wrong-key", MASTER[:-1], MASTER + "x", MASTER.upper()])
def test_wrong_key_is_401(env, key):
    gw, m = env
    with pytest.raises(openai.AuthenticationError) as ei:
        gw.client(api_key=key).chat.completions.create(model="chat", messages=USER_HI)
    assert ei.value.status_code == 401
    err = assert_openai_error_shape(ei.value.response, 401)
    assert MASTER not in ei.value.response.text
    assert err["message"]
    assert m.api_requests() == []


def test_missing_key_is_401(env):
    gw, m = env
    # A fresh connection per request: see test_connection_reusable_after_401.
    r = httpx.post(gw.base_url + "/chat/completions", json={"model": "chat", "messages": USER_HI})
    assert_openai_error_shape(r, 401)
    r = httpx.get(gw.base_url + "/models")
    assert_openai_error_shape(r, 401)
    r = httpx.post(gw.base_url + "/chat/completions", json={"model": "chat", "messages": USER_HI},
                   headers={"Authorization": "Basic " + MASTER})
    assert_openai_error_shape(r, 401)
    # LiteLLM clients may send the key as api-key (Azure style).
    r = httpx.post(gw.base_url + "/chat/completions", json={"model": "chat", "messages": USER_HI},
                   headers={"api-key": MASTER})
    assert r.status_code == 200, r.text
    assert len(m.api_requests()) == 1


def test_connection_reusable_after_401(env):
    gw, _ = env
    # One pooled connection, as the SDK would reuse it: 401 first, then a good request.
    with httpx.Client(base_url=gw.base_url, timeout=3, limits=httpx.Limits(max_connections=1)) as h:
        r = h.post("/chat/completions", json={"model": "chat", "messages": USER_HI},
                   headers={"Authorization": "Bearer wrong"})
        assert r.status_code == 401
        r = h.post("/chat/completions", json={"model": "chat", "messages": USER_HI},
                   headers={"Authorization": "Bearer " + MASTER})
        assert r.status_code == 200, (r.status_code, r.text)


def test_right_key_works(env):
    gw, m = env
    client = gw.client(api_key=MASTER)
    resp = client.chat.completions.create(model="chat", messages=USER_HI)
    assert resp.choices[0].message.content == mock_words("authm", 2)
    assert [x.id for x in client.models.list()] == ["chat"]
    s = client.chat.completions.create(model="chat", messages=USER_HI, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in s if c.choices) == mock_words("authm", 2)
    # The master key is the client's credential only: upstream gets the deployment key.
    for r in m.api_requests():
        assert r["headers"].get("authorization") == "Bearer sk-upstream-auth"
        assert MASTER not in json.dumps(r)


def test_health_needs_no_key(env):
    gw, _ = env
    assert gw.http.get("/health/liveliness").status_code == 200
    assert gw.http.get("/health/readiness").status_code == 200


def test_key_never_logged(env):
    gw, _ = env
    # Requests with the right key, a wrong one containing it, and an error path.
    url = gw.base_url + "/chat/completions"
    r = httpx.post(url, json={"model": "chat", "messages": USER_HI},
                   headers={"Authorization": "Bearer " + MASTER})
    assert r.status_code == 200, r.text
    r = httpx.post(url, json={"model": "nope", "messages": USER_HI},
                   headers={"Authorization": "Bearer " + MASTER})
    assert r.status_code == 404
    r = httpx.post(url, json={"model": "chat", "messages": USER_HI},
                   headers={"Authorization": "Bearer wrong" + MASTER})
    assert r.status_code == 401
    log = gw.log_text()
    assert "listening on" in log  # the log is really being captured
    assert MASTER not in log


def test_unset_env_var_fails_to_start(tmp_path, env):
    gw, m = env
    cfg_path = tmp_path / "c.yaml"
    cfg_path.write_text(gw.config_path.read_text())
    r = subprocess.run([str(TAILGATE), "--config", str(cfg_path), "--check"], capture_output=True, text=True,
                       timeout=30, env={"PATH": "/usr/bin:/bin"})
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "TG_TEST_MASTER_KEY" in r.stderr

