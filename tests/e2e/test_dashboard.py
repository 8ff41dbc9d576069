"""GET /ui: the self-contained HTML dashboard, same switch and auth rule as
/stats/strategies. The browser test drives Debian's headless Chromium through
playwright-core (tests/e2e/ui): live numbers, deployment states, a cooldown
event detected by the page between two polls, no console or page errors."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from conftest import USER_HI, deployment, make_config, needs_plugins, wait_for

MASTER_KEY = "sk-master-ui-5"
QUIET = ("--chunks", "3", "--chunk-delay", "1ms")
UI_DIR = Path(__file__).parent / "ui"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def test_ui_served_self_contained_with_stats_auth(stack):
    m = stack.mock("m", "--ttft", "2ms", *QUIET)
    dep = [deployment("g", m)]
    gw = stack.gateway(make_config(dep))
    for path in ("/ui", "/ui/"):
        r = httpx.get(gw.url + path, timeout=10)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "text/html; charset=utf-8", r.headers
        html = r.text
        assert html.startswith("<!doctype html>") and "</html>" in html
        # No CDN, no external asset: the only absolute URL is the SVG namespace.
        urls = set(re.findall(r"https?://[^\s\"'<>)]+", html))
        assert urls <= {"http://www.w3.org/2000/svg"}, urls
        assert not re.search(r"<(script|link|img)[^>]+(src|href)=\"(?!data:)", html), "external asset"
    assert httpx.post(gw.url + "/ui").status_code == 405

    # With a master key the page is a login form (no data in it); what it shows needs the key, sent as a header.
    locked = stack.gateway(make_config(dep, general_settings={"master_key": MASTER_KEY}))
    page = httpx.get(locked.url + "/ui")
    assert page.status_code == 200 and 'type="password"' in page.text
    assert httpx.get(locked.url + "/stats/strategies").status_code == 401
    assert httpx.get(locked.url + "/stats/strategies",
                     headers={"Authorization": f"Bearer {MASTER_KEY}"}).status_code == 200

    off = stack.gateway(make_config(dep, general_settings={"metrics": False}))
    assert httpx.get(off.url + "/ui").status_code == 404


def _browser_missing() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} missing (apt-get install chromium)"
    if not shutil.which("node") or not shutil.which("npm"):
        return "node/npm missing"
    if not (UI_DIR / "node_modules" / "playwright-core").is_dir():
        return "tests/e2e/ui/node_modules missing (cd tests/e2e/ui && npm ci --no-audit --no-fund)"
    return None


@needs_plugins("staggered-hedge", "health")
def test_dashboard_in_headless_chromium(stack, tmp_path):
    if (why := _browser_missing()):
        pytest.skip(why)
    # g: a slow primary and a fast secondary behind a 100 ms hedge -> every request hedged, hedge wins.
    p = stack.mock("p", "--ttft", "300ms", *QUIET)
    q = stack.mock("q", "--ttft", "20ms", *QUIET)
    # h: `bad` fails; health (allowed_fails 0) cools it down on its first failure.
    good = stack.mock("good", "--ttft", "5ms", *QUIET)
    bad = stack.mock("bad", "--ttft", "5ms", *QUIET, "--fail-rate", "1", "--fail-status", "500")
    cfg = make_config(
        [deployment("g", p, model_info={"id": "p-dep"}), deployment("g", q, model_info={"id": "q-dep"}),
         deployment("h", bad, model_info={"id": "bad-dep"}), deployment("h", good, model_info={"id": "good-dep"})],
        router_settings={"num_retries": 1, "allowed_fails": 0, "cooldown_time": 60,
                         "strategies": ["health", {"name": "staggered-hedge", "args": {
                             "delay": "100ms", "max_extra_load": 1, "min_hedges_per_second": 100}}]})
    gw = stack.gateway(cfg)
    client = gw.client()
    n = 12
    for _ in range(n):
        for _c in client.chat.completions.create(model="g", messages=USER_HI, stream=True):
            pass

    shot = tmp_path / "dashboard.png"
    proc = subprocess.Popen(["node", str(UI_DIR / "check_dashboard.mjs"), gw.url + "/ui", str(shot)],
                            cwd=UI_DIR, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        first = json.loads(proc.stdout.readline() or "{}")
        assert first.get("ready"), (first, proc.stderr.read() if proc.poll() is not None else "")
        # The page saw everything healthy on its first poll ...
        assert first["states"] == {d: "healthy" for d in ("p-dep", "q-dep", "good-dep", "bad-dep")}, first
        # ... then `bad` fails once and cools down: the page must notice the transition.
        h_requests = 0
        while bad.received() == 0:
            client.chat.completions.create(model="h", messages=USER_HI)
            h_requests += 1
            assert h_requests < 50, "bad-dep never picked"
        for _ in range(3):
            client.chat.completions.create(model="h", messages=USER_HI)
            h_requests += 1
        want = {"groups": {"g": n, "h": h_requests},
                "states": {"bad-dep": "cooling", "good-dep": "healthy", "q-dep": "healthy", "p-dep": "healthy"},
                "event": "bad-dep: healthy \u2192 cooling",
                "text": {'tr[data-group="g"] [data-field=hedge_trigger]': "100.0 %",
                         'tr[data-group="g"] [data-field=censored]': str(n),
                         'tr[data-dep="q-dep"] [data-field=success_rate]': "100.0 %",
                         'tr[data-dep="bad-dep"] [data-field=cooldowns]': "1",
                         # Spend (issue 20): the database's state and spend per deployment.
                         "#db": "database connected",
                         'tr[data-spend-dep="q-dep"] [data-field=group]': "g"},
                "min_polls": 3}
        proc.stdin.write(json.dumps(want) + "\n")
        proc.stdin.flush()
        out, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    res = json.loads(out.strip().splitlines()[-1])
    assert res["ok"], (res["error"], err)
    assert res["console_errors"] == [] and res["page_errors"] == [], res
    assert shot.stat().st_size > 10_000
    if (dest := os.environ.get("TAILGATE_DASHBOARD_SHOT")):
        shutil.copy(shot, dest)
    gw.assert_healthy()
