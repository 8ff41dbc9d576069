"""Control plane (issue 16): admin API, LiteLLM model management, hot reload, persistence.

Every admin endpoint is driven against the real binary with real mock providers:
success, validation error, 401 without and with a wrong key, and no secret in any
response."""
from __future__ import annotations

import json
import os
import signal
import time

import httpx
import pytest

from conftest import (USER_HI, Gateway, assert_openai_error_shape, deployment, make_config, needs_plugins,
                      wait_for)

MASTER = "sk-master-control-plane-1234"
SECRET_A = "sk-upstream-secret-aaaa-1111"
SECRET_B = "sk-upstream-secret-bbbb-2222"
SECRET_NEW = "sk-upstream-secret-new-3333"
SECRETS = (MASTER, SECRET_A, SECRET_B, SECRET_NEW)
H = {"Authorization": f"Bearer {MASTER}"}

# (method, path, body) of every admin route: each must refuse a missing or wrong key.
ADMIN_ROUTES = [
    ("POST", "/admin/reload", None),
    ("GET", "/admin/config", None),
    ("GET", "/admin/status", None),
    ("GET", "/admin/deployments", None),
    ("POST", "/admin/deployments", {"model_name": "x", "litellm_params": {"model": "openai/x"}}),
    ("PATCH", "/admin/deployments/a1", {"litellm_params": {"rpm": 5}}),
    ("DELETE", "/admin/deployments/a1", None),
    ("POST", "/admin/deployments/a1/drain", None),
    ("POST", "/admin/deployments/a1/undrain", None),
    ("GET", "/admin/router/settings", None),
    ("PATCH", "/admin/router/settings", {"num_retries": 1}),
    ("GET", "/admin/routing/state", None),
    ("POST", "/admin/routing/preview", {"model": "chat"}),
    ("POST", "/model/new", {"model_name": "x", "litellm_params": {"model": "openai/x"}}),
    ("POST", "/model/update", {"model_info": {"id": "a1"}, "litellm_params": {"rpm": 5}}),
    ("POST", "/model/delete", {"id": "a1"}),
    ("GET", "/model/info", None),
    ("GET", "/v1/model/info", None),
]


def no_secret(resp: httpx.Response):
    text = resp.text + json.dumps(dict(resp.headers))
    for s in SECRETS:
        assert s not in text, (s, resp.request.url, text[:500])


def call(gw: Gateway, method: str, path: str, body=None, headers=H) -> httpx.Response:
    r = gw.http.request(method, path, json=body, headers=headers)
    no_secret(r)
    return r


@pytest.fixture
def cp(stack):
    """Two mocks, group 'chat' with one deployment on mock A; a master key."""
    a, b = stack.mock("cpA", "--ttft", "1ms", "--chunks", "2"), stack.mock("cpB", "--ttft", "1ms", "--chunks", "2")
    cfg = make_config([deployment("chat", a, api_key=SECRET_A, model_info={"id": "a1"})],
                      general_settings={"master_key": MASTER})
    gw = stack.gateway(cfg, env={"TAILGATE_STATE_DIR": str(stack.workdir / "state")})
    return stack, gw, a, b


def chat(gw: Gateway, model: str = "chat"):
    return gw.client(api_key=MASTER).chat.completions.create(model=model, messages=USER_HI)


def served_by(gw: Gateway, n: int = 6) -> set[str]:
    return {chat(gw).choices[0].message.content.split("-")[0] for _ in range(n)}


@pytest.mark.parametrize("method,path,body", ADMIN_ROUTES)
def test_admin_route_needs_the_master_key(cp, method, path, body):
    _, gw, _, _ = cp
    for headers in ({}, {"Authorization": "Bearer sk-wrong-key-0000000000"}):
        r = call(gw, method, path, body, headers=headers)
        assert_openai_error_shape(r, 401)


def test_admin_api_refused_without_a_master_key(stack):
    a = stack.mock("nokey", "--ttft", "1ms")
    gw = stack.gateway(make_config([deployment("chat", a)]))
    r = gw.http.get("/admin/config", headers={"Authorization": "Bearer anything"})
    err = assert_openai_error_shape(r, 401)
    assert "master_key" in err["message"]


def test_deployment_add_patch_drain_delete(cp):
    _, gw, a, b = cp
    r = call(gw, "GET", "/admin/deployments")
    assert r.status_code == 200, r.text
    listed = r.json()["data"]
    assert [d["id"] for d in listed] == ["a1"]
    assert listed[0]["litellm_params"]["api_key"] == "***"

    # Added: traffic at once (shuffle over both).
    r = call(gw, "POST", "/admin/deployments",
             deployment("chat", b, api_key=SECRET_B, model_info={"id": "b1"}))
    assert r.status_code == 201, r.text
    assert r.json()["id"] == "b1" and r.json()["source"].startswith("admin revision")
    rev_after_add = r.json()["revision"]
    wait_for(lambda: served_by(gw, 12) == {"cpA", "cpB"}, timeout=5, what="both mocks serving")

    # Drained: no new requests; undrained: back.
    r = call(gw, "POST", "/admin/deployments/a1/drain")
    assert r.status_code == 200 and r.json()["drained"] is True, r.text
    assert served_by(gw, 10) == {"cpB"}
    states = {c["id"]: c for g in call(gw, "GET", "/admin/routing/state").json()["groups"] for c in g["candidates"]}
    assert states["a1"]["drained"] is True
    r = call(gw, "POST", "/admin/deployments/a1/undrain")
    assert r.status_code == 200 and r.json()["drained"] is False
    wait_for(lambda: "cpA" in served_by(gw, 12), timeout=5, what="a1 serving again")

    # Patched: b1 moves to mock A (same id: its state carries over).
    r = call(gw, "PATCH", "/admin/deployments/b1", {"litellm_params": {"api_base": a.base_url, "rpm": 1000}})
    assert r.status_code == 200, r.text
    assert r.json()["litellm_params"]["rpm"] == 1000 and r.json()["revision"] > rev_after_add
    b.reset()
    assert served_by(gw, 8) == {"cpA"} and b.received() == 0

    # Validation errors: the loader's messages, nothing changes.
    r = call(gw, "POST", "/admin/deployments", {"litellm_params": {"model": "openai/x"}})
    err = assert_openai_error_shape(r, 400)
    assert "model_name" in err["message"], err
    r = call(gw, "POST", "/admin/deployments", deployment("chat", a, model_info={"id": "a1"}))
    assert "exists" in assert_openai_error_shape(r, 400)["message"]
    assert_openai_error_shape(call(gw, "PATCH", "/admin/deployments/nope", {"litellm_params": {}}), 404)
    assert_openai_error_shape(call(gw, "PATCH", "/admin/deployments/a1", {"litellm_params": {"rpm": -3}}), 400)
    assert_openai_error_shape(call(gw, "POST", "/admin/deployments/a1/explode"), 404)
    assert_openai_error_shape(call(gw, "POST", "/admin/deployments", None), 400)

    # Deleted: gone from the list and from routing.
    r = call(gw, "DELETE", "/admin/deployments/b1")
    assert r.status_code == 200 and r.json()["deleted"] is True, r.text
    assert [d["id"] for d in call(gw, "GET", "/admin/deployments").json()["data"]] == ["a1"]
    assert_openai_error_shape(call(gw, "DELETE", "/admin/deployments/b1"), 404)
    assert_openai_error_shape(call(gw, "DELETE", "/admin/deployments/a1"), 400)  # the last one


def test_router_settings_get_and_patch(cp):
    _, gw, _, _ = cp
    r = call(gw, "GET", "/admin/router/settings")
    assert r.status_code == 200 and r.json()["num_retries"] == 0, r.text
    r = call(gw, "PATCH", "/admin/router/settings", {"num_retries": 2, "cooldown_time": 7})
    assert r.status_code == 200, r.text
    assert r.json()["num_retries"] == 2 and r.json()["cooldown_time_ms"] == 7000
    plan = call(gw, "POST", "/admin/routing/preview", {"model": "chat"}).json()["plan"]
    assert len(plan["attempts"]) == 3  # 1 + num_retries
    sources = call(gw, "GET", "/admin/config").json()["router_settings_sources"]
    assert sources["num_retries"].startswith("admin revision") and sources["timeout"].startswith("file")

    err = assert_openai_error_shape(call(gw, "PATCH", "/admin/router/settings", {"num_retries": -1}), 400)
    assert "router_settings.num_retries" in err["message"], err
    err = assert_openai_error_shape(call(gw, "PATCH", "/admin/router/settings", {"plugin_paths": ["/tmp"]}), 400)
    assert "plugin_paths" in err["message"]
    err = assert_openai_error_shape(call(gw, "PATCH", "/admin/router/settings", {"strategies": ["no-such-plugin"]}),
                                    400)
    assert "no-such-plugin" in err["message"]
    assert call(gw, "GET", "/admin/router/settings").json()["num_retries"] == 2  # unchanged by the refusals


def test_routing_state_preview_and_config(cp):
    _, gw, a, _ = cp
    chat(gw)
    r = call(gw, "GET", "/admin/routing/state")
    assert r.status_code == 200, r.text
    [group] = r.json()["groups"]
    assert group["model_group"] == "chat" and group["routable"] is True
    [cand] = group["candidates"]
    assert cand["id"] == "a1" and cand["health"] == "healthy" and cand["attempts"] >= 1
    assert cand["latency_total"] is None or cand["latency_total"]["p50_ms"] >= 0

    r = call(gw, "POST", "/admin/routing/preview", {"model": "chat", "stream": True})
    assert r.status_code == 200, r.text
    attempts = r.json()["plan"]["attempts"]
    assert attempts[0]["deployment"] == "a1" and attempts[0]["launch"] == "at_start"
    before = a.received()
    assert a.received() == before  # nothing was sent
    assert_openai_error_shape(call(gw, "POST", "/admin/routing/preview", {"model": "nope"}), 404)
    assert_openai_error_shape(call(gw, "POST", "/admin/routing/preview", {"stream": True}), 400)
    assert_openai_error_shape(call(gw, "POST", "/admin/routing/preview", "not json"), 400)

    r = call(gw, "GET", "/admin/config")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["general_settings"]["master_key"] == "***"
    assert body["model_list"][0]["litellm_params"]["api_key"] == "***"
    assert body["model_list"][0]["source"].endswith(":" + str(body["model_list"][0]["source"].split(":")[-1]))
    assert "tailgate-state.db" in body["store"]


def test_litellm_model_management_aliases(cp):
    _, gw, a, b = cp
    r = call(gw, "POST", "/model/new", {"model_name": "chat2",
                                        "litellm_params": {"model": "openai/m", "api_base": b.base_url,
                                                           "api_key": SECRET_NEW},
                                        "model_info": {"id": "n1"}})
    assert r.status_code == 200, r.text
    assert r.json()["model_id"] == "n1" and r.json()["litellm_params"]["api_key"] == "***"
    assert chat(gw, "chat2").choices[0].message.content.startswith("cpB")
    for path in ("/model/info", "/v1/model/info"):
        r = call(gw, "GET", path)
        assert r.status_code == 200, r.text
        infos = {m["model_info"]["id"]: m for m in r.json()["data"]}
        assert set(infos) == {"a1", "n1"}
        assert infos["n1"]["model_info"]["db_model"] is True and infos["a1"]["model_info"]["db_model"] is False
        assert infos["n1"]["model_name"] == "chat2"
    r = call(gw, "POST", "/model/update", {"model_info": {"id": "n1"}, "litellm_params": {"api_base": a.base_url}})
    assert r.status_code == 200, r.text
    assert chat(gw, "chat2").choices[0].message.content.startswith("cpA")
    assert_openai_error_shape(call(gw, "POST", "/model/update", {"litellm_params": {}}), 400)
    assert_openai_error_shape(call(gw, "POST", "/model/new", {"model_name": "x"}), 400)
    r = call(gw, "POST", "/model/delete", {"id": "n1"})
    assert r.status_code == 200 and "deleted" in r.json()["message"], r.text
    assert_openai_error_shape(call(gw, "POST", "/model/delete", {"id": "n1"}), 404)
    assert_openai_error_shape(call(gw, "POST", "/model/delete", {}), 400)


def test_admin_changes_survive_a_restart(stack):
    a, b = stack.mock("pA", "--ttft", "1ms"), stack.mock("pB", "--ttft", "1ms")
    cfg = make_config([deployment("chat", a, model_info={"id": "a1"})], general_settings={"master_key": MASTER})
    env = {"TAILGATE_STATE_DIR": str(stack.workdir / "state")}
    gw = stack.gateway(cfg, env=env, name="first")
    assert call(gw, "POST", "/admin/deployments", deployment("chat", b, api_key=SECRET_B,
                                                             model_info={"id": "b1"})).status_code == 201
    assert call(gw, "POST", "/admin/deployments/a1/drain").status_code == 200
    assert call(gw, "PATCH", "/admin/router/settings", {"num_retries": 3}).status_code == 200
    rev = call(gw, "GET", "/admin/config").json()["revision"]
    gw.stop()
    gw2 = stack.gateway(cfg, env=env, name="second")
    body = call(gw2, "GET", "/admin/config").json()
    assert body["revision"] == rev
    assert {d["id"]: d["drained"] for d in body["model_list"]} == {"a1": True, "b1": False}
    assert body["router_settings"]["num_retries"] == 3
    assert served_by(gw2, 6) == {"pB"}
    # Each change was logged once, by key hash, never with a secret.
    log = gw.log_text()
    assert log.count("config revision") == 3 and SECRET_B not in log and MASTER not in log


def test_reload_applies_a_valid_file_and_keeps_the_running_one_when_invalid(cp):
    stack, gw, a, b = cp
    path = gw.config_path
    cfg = json.loads(path.read_text())
    cfg["model_list"].append(deployment("chat", b, api_key=SECRET_B, model_info={"id": "b1"}))
    path.write_text(json.dumps(cfg))
    r = call(gw, "POST", "/admin/reload")
    assert r.status_code == 200 and r.json()["deployments"] == 2, r.text
    wait_for(lambda: served_by(gw, 12) == {"cpA", "cpB"}, timeout=5, what="b1 serving")

    # Invalid: refused with file:line: key: message; the running config stays.
    path.write_text(json.dumps(cfg, indent=1).replace('"num_retries"', '"x"').replace(
        '"routing_strategy": "simple-shuffle"', '"routing_strategy": "no-such-strategy"'))
    r = call(gw, "POST", "/admin/reload")
    err = assert_openai_error_shape(r, 400)
    assert f"{path}:" in err["message"] and "router_settings.routing_strategy" in err["message"], err
    assert [d["id"] for d in call(gw, "GET", "/admin/deployments").json()["data"]] == ["a1", "b1"]
    # Both still serve (polled: random choice over 12 requests, and a busy machine may cool one briefly).
    wait_for(lambda: served_by(gw, 12) == {"cpA", "cpB"}, timeout=10, what="a1 and b1 both serving")

    # SIGHUP: the same, from the signal thread.
    del cfg["model_list"][0]
    path.write_text(json.dumps(cfg))
    os.kill(gw.proc.p.pid, signal.SIGHUP)
    wait_for(lambda: [d["id"] for d in call(gw, "GET", "/admin/deployments").json()["data"]] == ["b1"],
             timeout=5, what="SIGHUP reload")
    a.reset()
    assert served_by(gw, 6) == {"cpB"} and a.received() == 0

    m = gw.http.get("/metrics").text
    assert 'tailgate_config_reloads_total{result="success"} 2' in m
    assert 'tailgate_config_reloads_total{result="failure"} 1' in m
    status = call(gw, "GET", "/admin/status").json()
    assert status["reloads_ok"] == 2 and status["last_result"] == "ok"


def test_dashboard_and_stats_need_the_key_when_one_is_set(cp):
    _, gw, _, _ = cp
    page = gw.http.get("/ui")
    assert page.status_code == 200 and "password" in page.text.lower()  # the login form
    assert_openai_error_shape(gw.http.get("/stats/strategies"), 401)
    assert gw.http.get("/stats/strategies", headers=H).status_code == 200
