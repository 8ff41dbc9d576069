"""Virtual keys, teams, limits and spend (issue 20), on both databases.

Every test takes `key_db` and so runs twice: against a SQLite file and against
a database of the session's PostgreSQL server (tests/e2e/pg.py). Clients are
the official `openai` SDK (API calls with virtual keys) and httpx (LiteLLM's
management endpoints, master key). Spend is checked against the mock's own
usage x the configured price.
"""
from __future__ import annotations

import json
import math
import threading
import time

import httpx
import openai
import pytest

from conftest import USER_HI, assert_openai_error_shape, deployment, make_config, wait_for

MASTER = "sk-master-keys-test"
PRICE_IN, PRICE_OUT = 1e-6, 2e-6  # the "cheap" group's configured price per token
WRITE_INTERVAL = 0.2               # proxy_batch_write_at in these tests (seconds)


@pytest.fixture(scope="module")
def mock(module_stack):
    return module_stack.mock("keys", "--ttft", "2ms", "--chunk-delay", "1ms", "--chunks", "4")


def keys_config(mock, db_url: str, **general) -> dict:
    gs = {"master_key": MASTER, "database_url": db_url, "proxy_batch_write_at": WRITE_INTERVAL}
    gs.update(general)
    return make_config(
        [deployment("cheap", mock, model="openai/cheap-upstream", input_cost_per_token=PRICE_IN,
                    output_cost_per_token=PRICE_OUT),
         deployment("gpt-4o", mock, model="openai/gpt-4o"),  # priced by the SDK's table
         deployment("openai/*", mock, model="openai/*"),
         deployment("other", mock, model="openai/other-upstream", input_cost_per_token=0.0,
                    output_cost_per_token=0.0)],
        general_settings=gs)


class Admin:
    """LiteLLM's management endpoints with the master key."""

    def __init__(self, gw):
        self.http = httpx.Client(base_url=gw.url, timeout=30, headers={"Authorization": f"Bearer {MASTER}"})

    def post(self, path: str, body: dict, status: int = 200) -> dict:
        r = self.http.post(path, json=body)
        assert r.status_code == status, (path, r.status_code, r.text)
        return r.json()

    def get(self, path: str, status: int = 200, **params) -> dict | list:
        r = self.http.get(path, params=params)
        assert r.status_code == status, (path, r.status_code, r.text)
        return r.json()

    def generate(self, **fields) -> dict:
        return self.post("/key/generate", fields)

    def info(self, key: str) -> dict:
        return self.get("/key/info", key=key)["info"]


@pytest.fixture
def env(stack, mock, key_db):
    gw = stack.gateway(keys_config(mock, key_db.url))
    admin = Admin(gw)
    yield gw, admin, key_db
    admin.http.close()


def chat(gw, key: str, model: str = "cheap", **kw):
    return gw.client(api_key=key).chat.completions.create(model=model, messages=USER_HI, **kw)


def cost(usage, price_in=PRICE_IN, price_out=PRICE_OUT) -> float:
    return usage.prompt_tokens * price_in + usage.completion_tokens * price_out


# --------------------------------------------------------------------------
# keys: the endpoints, shown once, hashed at rest
# --------------------------------------------------------------------------

def test_generate_use_info_list_and_only_a_hash_is_stored(env):
    gw, admin, db = env
    k = admin.generate(key_alias="app-1", models=["cheap"], metadata={"owner": "ana"}, rpm_limit=100,
                       max_budget=5.0, budget_duration="30d", duration="7d")
    key = k["key"]
    assert key.startswith("sk-") and len(key) > 40
    assert k["key_alias"] == "app-1" and k["models"] == ["cheap"] and k["max_budget"] == 5.0
    assert k["token"] and k["token"] != key and k["key_name"] == "sk-..." + key[-4:]
    assert k["expires"] and k["budget_reset_at"] and k["metadata"] == {"owner": "ana"}

    r = chat(gw, key)
    assert r.choices[0].message.content
    info = admin.info(key)
    assert "key" not in json.dumps(info).replace('"key_alias"', "").replace('"key_name"', ""), info
    assert info["spend"] == pytest.approx(cost(r.usage), rel=1e-9)
    assert info["remaining_budget"] == pytest.approx(5.0 - cost(r.usage), rel=1e-9)
    # The token (LiteLLM's hash) finds the same key.
    assert admin.info(k["token"])["key_alias"] == "app-1"

    listed = admin.get("/key/list")
    assert listed["keys"] == [k["token"]] and listed["total_count"] == 1
    full = admin.get("/key/list", return_full_object="true")
    assert full["keys"][0]["key_alias"] == "app-1"

    # At rest: the hash, never the key.
    rows = db.query("SELECT token, key_name FROM tg_keys")
    assert [r[0] for r in rows] == [k["token"]]
    assert all(key not in "|".join(map(str, r)) for r in rows)


def test_unknown_and_missing_keys_get_401(env):
    gw, admin, _ = env
    with pytest.raises(openai.AuthenticationError):
        chat(gw, "sk-not-a-key-at-all")
    r = httpx.post(gw.base_url + "/chat/completions", json={"model": "cheap", "messages": USER_HI})
    assert_openai_error_shape(r, 401)


def test_models_are_enforced_with_403_naming_the_allowed_ones(env):
    gw, admin, _ = env
    key = admin.generate(models=["cheap", "openai/gpt-*"])["key"]
    chat(gw, key, "cheap")
    chat(gw, key, "openai/gpt-3.5-turbo")  # the key's wildcard, served by the openai/* group
    with pytest.raises(openai.PermissionDeniedError) as e:
        chat(gw, key, "gpt-4o")
    assert e.value.status_code == 403
    body = e.value.body
    assert body["code"] == "model_not_allowed" and "cheap" in body["message"] and "gpt-4o" in body["message"]
    # A model list and per-request fallbacks cannot reach past the list either.
    with pytest.raises(openai.PermissionDeniedError):
        chat(gw, key, "cheap,gpt-4o")
    with pytest.raises(openai.PermissionDeniedError):
        chat(gw, key, "cheap", extra_body={"fallbacks": ["gpt-4o"]})
    models = [m.id for m in gw.client(api_key=key).models.list().data]
    assert models == ["cheap"], models


def test_update_applies_at_once(env):
    gw, admin, _ = env
    key = admin.generate(models=["cheap"])["key"]
    chat(gw, key)  # cached now
    admin.post("/key/update", {"key": key, "models": ["other"], "key_alias": "renamed"})
    with pytest.raises(openai.PermissionDeniedError):
        chat(gw, key, "cheap")
    chat(gw, key, "other")
    assert admin.info(key)["key_alias"] == "renamed"


def test_expired_and_blocked_keys_get_401(env):
    gw, admin, _ = env
    key = admin.generate(duration="2s")["key"]
    chat(gw, key)

    def refused():
        try:
            chat(gw, key)
            return False
        except openai.AuthenticationError as e:
            return "expired" in e.message
    wait_for(refused, timeout=10, interval=0.2, what="the key to expire")

    other = admin.generate()["key"]
    chat(gw, other)
    admin.post("/key/block", {"key": other})
    with pytest.raises(openai.AuthenticationError) as e:
        chat(gw, other)
    assert "blocked" in e.value.message
    admin.post("/key/unblock", {"key": other})
    chat(gw, other)
    # An expiry set in the past through /key/update counts at once.
    admin.post("/key/update", {"key": other, "expires": "2020-01-01T00:00:00Z"})
    with pytest.raises(openai.AuthenticationError):
        chat(gw, other)


def test_delete_and_regenerate(env):
    gw, admin, _ = env
    a = admin.generate(key_alias="to-delete")["key"]
    b = admin.generate(key_alias="to-rotate", models=["cheap"])["key"]
    chat(gw, a)
    r = chat(gw, b)
    assert admin.post("/key/delete", {"key_aliases": ["to-delete"]})["deleted_keys"]
    with pytest.raises(openai.AuthenticationError):
        chat(gw, a)
    admin.post("/key/delete", {"keys": [a]}, status=404)

    new = admin.post("/key/regenerate", {"key": b})
    assert new["key"] != b and new["key_alias"] == "to-rotate" and new["models"] == ["cheap"]
    with pytest.raises(openai.AuthenticationError):
        chat(gw, b)
    chat(gw, new["key"])
    # The path form, LiteLLM's /key/{key}/regenerate; spend carries over.
    newer = admin.post(f"/key/{new['key']}/regenerate", {})
    assert newer["spend"] >= cost(r.usage)
    with pytest.raises(openai.AuthenticationError):
        chat(gw, new["key"])
    chat(gw, newer["key"])


def test_management_needs_the_master_key(env):
    gw, admin, _ = env
    key = admin.generate()["key"]
    for method, path in (("POST", "/key/generate"), ("GET", "/key/list"), ("GET", "/spend/logs"),
                         ("POST", "/team/new"), ("GET", "/global/spend/report"), ("POST", "/admin/reload")):
        body = {} if method == "POST" else None
        r = httpx.request(method, gw.url + path, json=body, headers={"Authorization": f"Bearer {key}"})
        err = assert_openai_error_shape(r, 403)
        assert err["code"] == "master_key_required"
        r = httpx.request(method, gw.url + path, json=body, headers={"Authorization": "Bearer sk-wrong"})
        assert_openai_error_shape(r, 401)


def test_bad_fields_are_400(env):
    gw, admin, _ = env
    for body, field in (({"rpm_limit": -1}, "rpm_limit"), ({"models": "cheap"}, "models"),
                        ({"budget_duration": "soon"}, "budget_duration"), ({"max_budget": "10"}, "max_budget"),
                        ({"model_max_budget": {"cheap": 1}}, "model_max_budget"), ({"key": "short"}, "key")):
        r = admin.http.post("/key/generate", json=body)
        err = assert_openai_error_shape(r, 400)
        assert err["param"] == field, (body, err)
    admin.generate(key_alias="taken")
    r = admin.http.post("/key/generate", json={"key_alias": "taken"})
    assert_openai_error_shape(r, 400)
    r = admin.http.post("/key/generate", content=b"not json")
    assert_openai_error_shape(r, 400)


# --------------------------------------------------------------------------
# limits and budgets
# --------------------------------------------------------------------------

def minute_room(seconds: float = 5.0):
    """Key limits count in UTC minutes: a test that fills one starts where it cannot straddle two."""
    left = 60 - time.time() % 60
    if left < seconds:
        time.sleep(left + 0.2)


def test_rpm_limit_429_with_capped_retry_after(env):
    gw, admin, _ = env
    key = admin.generate(rpm_limit=2)["key"]
    minute_room()
    chat(gw, key)
    chat(gw, key)
    r = httpx.post(gw.base_url + "/chat/completions", json={"model": "cheap", "messages": USER_HI},
                   headers={"Authorization": f"Bearer {key}"})
    err = assert_openai_error_shape(r, 429)
    assert "rpm_limit 2" in err["message"]
    retry = int(r.headers["retry-after"])
    assert 1 <= retry <= 60
    with pytest.raises(openai.RateLimitError):
        chat(gw, key)


def test_tpm_limit(env):
    gw, admin, _ = env
    key = admin.generate(tpm_limit=3)["key"]
    minute_room()
    r = chat(gw, key)  # admitted with 0 tokens used; it uses more than 3
    assert r.usage.total_tokens > 3
    with pytest.raises(openai.RateLimitError) as e:
        chat(gw, key)
    assert "tpm_limit 3" in e.value.message


def test_max_parallel_requests(env, mock):
    gw, admin, _ = env
    key = admin.generate(max_parallel_requests=1)["key"]
    mock.configure(ttft_ms=1500)
    try:
        results = {}

        def slow():
            results["slow"] = chat(gw, key)
        t = threading.Thread(target=slow)
        t.start()
        wait_for(lambda: mock.stats()["in_flight"] >= 1, timeout=5, what="the first request at the mock")
        with pytest.raises(openai.RateLimitError) as e:
            chat(gw, key)
        assert "max_parallel_requests 1" in e.value.message
        t.join(timeout=10)
        assert "slow" in results
    finally:
        mock.configure(ttft_ms=2)
    chat(gw, key)  # the slot came back


def test_budget_400_and_reset(env):
    gw, admin, _ = env
    key = admin.generate(max_budget=1e-9, budget_duration="3s")["key"]
    r = chat(gw, key)  # spend 0 < budget: admitted; now over it
    with pytest.raises(openai.BadRequestError) as e:
        chat(gw, key)
    assert e.value.status_code == 400
    assert e.value.body["type"] == "budget_exceeded" and "Budget has been exceeded" in e.value.message
    # The period ends: spend back to 0, the key works again.
    wait_for(lambda: admin.info(key)["spend"] == 0, timeout=10, interval=0.2, what="the budget to reset")
    chat(gw, key)
    info = admin.info(key)
    assert info["spend"] == pytest.approx(cost(r.usage), rel=1e-9)


# --------------------------------------------------------------------------
# teams
# --------------------------------------------------------------------------

def test_team_models_limits_budget_and_delete(env):
    gw, admin, _ = env
    team = admin.post("/team/new", {"team_alias": "research", "models": ["cheap", "other"], "rpm_limit": 3})
    tid = team["team_id"]
    assert team["team_alias"] == "research"
    k1 = admin.generate(team_id=tid)["key"]
    k2 = admin.generate(team_id=tid, models=["other"])["key"]
    with pytest.raises(openai.PermissionDeniedError) as e:
        chat(gw, k1, "gpt-4o")  # the team's list applies to a key without its own
    assert "team" in e.value.message
    with pytest.raises(openai.PermissionDeniedError):
        chat(gw, k2, "cheap")  # the key's own list applies on top
    minute_room()  # the team's rpm count below must not straddle two UTC minutes
    chat(gw, k1, "cheap")
    chat(gw, k2, "other")
    chat(gw, k1, "cheap")
    with pytest.raises(openai.RateLimitError) as e:
        chat(gw, k2, "other")  # the team's 3 per minute, across its keys
    assert "team" in e.value.message

    info = admin.get("/team/info", team_id=tid)
    assert info["team_info"]["spend"] > 0 and len(info["keys"]) == 2
    # A budget set now applies at once to cached keys.
    admin.post("/team/update", {"team_id": tid, "max_budget": 1e-9, "rpm_limit": None})
    with pytest.raises(openai.BadRequestError) as e:
        chat(gw, k1, "cheap")
    assert e.value.body["type"] == "budget_exceeded" and "Team" in e.value.message
    assert [t["team_id"] for t in admin.get("/team/list")] == [tid]

    admin.post("/key/generate", {"team_id": "no-such-team"}, status=400)
    out = admin.post("/team/delete", {"team_ids": [tid]})
    assert out["deleted_keys"] == 2
    with pytest.raises(openai.AuthenticationError):
        chat(gw, k1, "cheap")
    admin.get("/team/info", status=404, team_id=tid)


# --------------------------------------------------------------------------
# spend
# --------------------------------------------------------------------------

def test_stream_usage_is_asked_for_and_removed_again(env, mock):
    gw, admin, _ = env
    key = admin.generate()["key"]
    client = gw.client(api_key=key)
    chunks = list(client.chat.completions.create(model="cheap", messages=USER_HI, stream=True))
    assert all(c.usage is None for c in chunks) and all(c.choices for c in chunks), chunks[-1]
    sent = mock.last_body()
    assert sent["stream_options"] == {"include_usage": True}
    # The client's own request for usage gets it.
    chunks = list(client.chat.completions.create(model="cheap", messages=USER_HI, stream=True,
                                                 stream_options={"include_usage": True}))
    usage = chunks[-1].usage
    assert usage and usage.completion_tokens > 0
    # Both streams were charged what the mock counted.
    assert admin.info(key)["spend"] == pytest.approx(2 * cost(usage), rel=1e-9)


def test_spend_logs_report_and_table_prices(env):
    gw, admin, db = env
    team = admin.post("/team/new", {"team_id": "t-spend"})["team_id"]
    a = admin.generate(key_alias="a", team_id=team)
    b = admin.generate(key_alias="b")
    ra = chat(gw, a["key"], "cheap")
    rb = chat(gw, b["key"], "gpt-4o", user="u-7", extra_body={"metadata": {"job": "x"}})
    # gpt-4o has no price in the config: the SDK's table (2.5e-6 in, 10e-6 out).
    want_b = cost(rb.usage, 2.5e-6, 10e-6)
    wait_for(lambda: len(admin.get("/spend/logs")) == 2, timeout=10, what="spend logs written")
    logs = admin.get("/spend/logs", api_key=b["key"])
    assert len(logs) == 1
    row = logs[0]
    assert row["model_group"] == "gpt-4o" and row["user"] == "u-7" and row["metadata"] == {"job": "x"}
    assert row["spend"] == pytest.approx(want_b, rel=1e-9) and row["kind"] == "winner"
    assert row["prompt_tokens"] == rb.usage.prompt_tokens and row["completion_tokens"] == rb.usage.completion_tokens
    assert admin.get("/spend/logs", team_id=team)[0]["api_key"] == a["token"]
    assert len(admin.get("/spend/logs", model="cheap")) == 1
    assert admin.get("/spend/logs", start_date="2000-01-01", end_date="2000-01-02") == []
    admin.get("/spend/logs", status=400, start_date="yesterday")

    report = admin.get("/global/spend/report")
    teams = {t["team_name"]: t for day in report for t in day["teams"]}
    assert teams["t-spend"]["total_spend"] == pytest.approx(cost(ra.usage), rel=1e-9)
    assert teams["Unassigned"]["total_spend"] == pytest.approx(want_b, rel=1e-9)
    by_key = {r["api_key"]: r for r in admin.get("/global/spend/report", group_by="api_key")}
    assert by_key[b["token"]]["total_cost"] == pytest.approx(want_b, rel=1e-9)
    assert by_key[b["token"]]["model_details"][0]["model"] == "gpt-4o"

    # The keys' and teams' spend as stored.
    def stored():
        return {r[0]: float(r[1]) for r in db.query("SELECT key_alias, spend FROM tg_keys")}
    wait_for(lambda: stored().get("b", 0) > 0, timeout=10, what="key spend written")
    assert stored()["b"] == pytest.approx(want_b, rel=1e-9)
    assert float(db.query("SELECT spend FROM tg_teams")[0][0]) == pytest.approx(cost(ra.usage), rel=1e-9)


def test_metrics_and_readiness_show_spend_without_keys(env):
    gw, admin, _ = env
    k = admin.generate(key_alias="metered", max_budget=2.0)
    r = chat(gw, k["key"])
    text = gw.http.get("/metrics").text
    assert k["key"] not in text
    prefix = k["token"][:16]
    spend = [l for l in text.splitlines() if l.startswith("tailgate_key_spend_usd{") and prefix in l]
    assert spend and "key_alias" not in spend[0], spend
    assert float(spend[0].split()[-1]) == pytest.approx(cost(r.usage), rel=1e-9)
    remaining = [l for l in text.splitlines() if l.startswith("tailgate_key_budget_remaining_usd{") and prefix in l]
    assert float(remaining[0].split()[-1]) == pytest.approx(2.0 - cost(r.usage), rel=1e-9)
    assert "tailgate_database_up{" in text
    ready = gw.http.get("/health/readiness").json()
    assert ready["db"] == "connected" and ready["status"] == "healthy"
    assert k["key"] not in gw.log_text()


# --------------------------------------------------------------------------
# every API surface goes through the same key check
# --------------------------------------------------------------------------

def test_responses_and_messages_surfaces_enforce_keys_and_record_spend(env, mock):
    import anthropic
    gw, admin, _ = env
    k = admin.generate(models=["cheap"], rpm_limit=4)
    key = k["key"]
    client = gw.client(api_key=key)
    minute_room()  # the rpm count below must not straddle two UTC minutes
    r = client.responses.create(model="cheap", input="hello there")
    assert r.output_text
    with pytest.raises(openai.PermissionDeniedError):
        client.responses.create(model="gpt-4o", input="hello there")
    ant = anthropic.Anthropic(base_url=gw.url, api_key=key, max_retries=0, timeout=30)  # x-api-key
    msg = ant.messages.create(model="cheap", max_tokens=50, messages=[{"role": "user", "content": "hello there"}])
    assert msg.content[0].text
    with pytest.raises(anthropic.PermissionDeniedError):
        ant.messages.create(model="gpt-4o", max_tokens=50, messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(anthropic.AuthenticationError):
        anthropic.Anthropic(base_url=gw.url, api_key="sk-nope", max_retries=0).messages.create(
            model="cheap", max_tokens=5, messages=[{"role": "user", "content": "hi"}])
    # The key's 4 requests a minute count across surfaces: 2 admitted above, then 2 more, then 429.
    chat(gw, key)
    chat(gw, key)
    with pytest.raises(anthropic.RateLimitError):
        ant.messages.create(model="cheap", max_tokens=5, messages=[{"role": "user", "content": "hi"}])
    wait_for(lambda: len(admin.get("/spend/logs", api_key=key)) == 4, timeout=10, what="four spend rows")
    kinds = sorted(row["call_type"] for row in admin.get("/spend/logs", api_key=key))
    assert kinds == ["chat", "chat", "messages", "responses"], kinds
    assert all(row["spend"] > 0 for row in admin.get("/spend/logs", api_key=key))
