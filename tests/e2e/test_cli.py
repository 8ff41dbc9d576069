"""`tailgate --check` and config errors (test 15)."""
from __future__ import annotations

import json
import os
import re
import subprocess

from conftest import REPO, TAILGATE


def run(*args, env=None, timeout=30):
    return subprocess.run([str(TAILGATE), *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          env=env)


def test_check_demo_config():
    r = run("--check", "--config", REPO / "configs" / "demo.yaml")
    assert r.returncode == 0, (r.stdout, r.stderr)
    out = r.stdout
    assert "strategy chain: health simple-shuffle  (from routing_strategy: simple-shuffle)\n" in out, out
    for g in ("gpt-3.5-turbo", "groq-llama", "text-embedding-3-small"):
        assert g in out
    assert "api_key=***" in out
    assert "sk-mock" not in out + r.stderr
    assert out.rstrip().endswith("OK")


def test_check_hides_secrets(tmp_path):
    secret, master = "sk-upstream-SECRET-4711", "sk-master-SECRET-0815"
    cfg = tmp_path / "c.yaml"
    cfg.write_text(json.dumps({
        "model_list": [
            {"model_name": "a", "litellm_params": {"model": "openai/x", "api_base": "http://127.0.0.1:9/v1",
                                                   "api_key": secret}},
            {"model_name": "b", "litellm_params": {"model": "azure/dep", "api_base": "http://127.0.0.1:9",
                                                   "api_key": "os.environ/TG_E2E_AZ_KEY"}},
        ],
        "router_settings": {"routing_strategy": "simple-shuffle"},
        "general_settings": {"master_key": master},
    }, indent=2))
    r = run("--check", "--config", cfg, env=dict(os.environ, TG_E2E_AZ_KEY="az-SECRET-1234"))
    assert r.returncode == 0, (r.stdout, r.stderr)
    both = r.stdout + r.stderr
    assert "master_key: ***" in r.stdout
    assert r.stdout.count("api_key=***") == 2, r.stdout
    for s in (secret, master, "az-SECRET-1234", "SECRET"):
        assert s not in both, both


def test_check_missing_model_reports_file_line_path(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(
        "model_list:\n"
        "  - model_name: a\n"
        "    litellm_params:\n"
        "      api_base: http://127.0.0.1:9/v1\n"
        "      api_key: sk-hidden-123\n")
    for extra in (["--check"], []):
        r = run(*extra, "--config", cfg, timeout=10)
        assert r.returncode == 1, (extra, r.stdout, r.stderr)
        m = re.search(r"bad\.yaml:(\d+): model_list\[0\]\.litellm_params\.model: missing", r.stderr)
        assert m, r.stderr
        assert int(m.group(1)) in (3, 4), r.stderr
        assert "sk-hidden-123" not in r.stdout + r.stderr
        assert "listening on" not in r.stdout


def test_check_bad_value_line(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(
        "model_list:\n"
        "  - model_name: a\n"
        "    litellm_params:\n"
        "      model: openai/x\n"
        "      api_base: http://127.0.0.1:9/v1\n"
        "router_settings:\n"
        "  num_retries: lots\n")
    r = run("--check", "--config", cfg)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert re.search(r"bad\.yaml:7: router_settings\.num_retries: ", r.stderr), r.stderr


def test_check_unknown_strategy_lists_available(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(json.dumps({
        "model_list": [{"model_name": "a", "litellm_params": {"model": "openai/x",
                                                              "api_base": "http://127.0.0.1:9/v1"}}],
        "router_settings": {"strategies": ["no-such-strategy"]},
    }))
    r = run("--check", "--config", cfg)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "no-such-strategy" in r.stderr
    m = re.search(r"available: ([^\n(]+)", r.stderr)
    assert m, r.stderr
    assert "simple-shuffle" in m.group(1), r.stderr


def test_missing_config_file_and_bad_args(tmp_path):
    r = run("--check", "--config", tmp_path / "nope.yaml")
    assert r.returncode == 1
    assert "nope.yaml" in r.stderr
    r = run("--bogus")
    assert r.returncode == 2
    r = run("--version")
    assert r.returncode == 0 and r.stdout.startswith("tailgate ")
