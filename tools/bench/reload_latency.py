#!/usr/bin/env python3
"""Reload latency: time POST /admin/reload (re-read the file, validate, load the
plugins, build the router, swap) for configs of N deployments.

    tools/bench/reload_latency.py build/bin/tailgate 10 1000
"""
from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

KEY = "sk-reload-bench-0000"


def config(n: int, groups: int = 10) -> dict:
    deps = [{"model_name": f"g{i % groups}",
             "litellm_params": {"model": f"openai/m{i}", "api_base": f"http://127.0.0.1:{1024 + i}/v1",
                                "api_key": "sk-x"}}
            for i in range(n)]
    return {"model_list": deps, "router_settings": {"routing_strategy": "latency-based-routing"},
            "general_settings": {"master_key": KEY}}


def measure(binary: str, n: int, runs: int = 15) -> list[float]:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "c.yaml"
        path.write_text(json.dumps(config(n)))
        p = subprocess.Popen([binary, "--config", str(path), "--port", "0"], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True)
        try:
            line = p.stdout.readline()
            port = int(line.rsplit(":", 1)[1])
            out = []
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {KEY}"},
                              timeout=60) as http:
                for _ in range(runs):
                    t0 = time.perf_counter()
                    r = http.post("/admin/reload")
                    out.append((time.perf_counter() - t0) * 1000)
                    assert r.status_code == 200, r.text
            return out
        finally:
            p.terminate()
            p.wait(timeout=10)


def main() -> None:
    binary = sys.argv[1]
    for n in (int(a) for a in sys.argv[2:] or ["10", "1000"]):
        ms = sorted(measure(binary, n))
        print(f"{n:5d} deployments: reload p50 {statistics.median(ms):7.1f} ms  "
              f"min {ms[0]:7.1f}  max {ms[-1]:7.1f}  ({len(ms)} runs)")


if __name__ == "__main__":
    main()
