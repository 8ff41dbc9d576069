#!/usr/bin/env python3
"""Latency of admitted requests below vs past Tailgate's concurrency cap.

Starts one `tailgate-mock` (fixed TTFT, default 500 ms) and one gateway with
`general_settings.max_concurrent_requests: CAP` (default 8), so the capacity is
CAP / TTFT requests per second. Two open-loop phases of non-stream chat
completions follow, a request starting every 1/rate s for a fixed time:

    below   0.5 x capacity      (every request admitted)
    past    OVER x capacity     (default 3: the excess refused with 503 + Retry-After)

Prints, per phase, admitted requests and their latency p50/p95/p99/max,
refusals and their latency p50/p99, and anything else (errors).
Everything listens on 127.0.0.1 with port 0; each phase stops by itself.

    .venv/bin/python tools/overload_bench.py [--cap 8] [--over 3] [--seconds 10] [--ttft-ms 500]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
BIN = Path(os.environ.get("TAILGATE_BUILD_DIR", REPO / "build")) / "bin"


def start(argv: list[str], log: Path) -> tuple[subprocess.Popen, int]:
    p = subprocess.Popen([str(a) for a in argv], stdout=subprocess.PIPE, stderr=open(log, "wb"), text=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        line = p.stdout.readline()
        m = re.match(r"listening on \S+:(\d+)", line or "")
        if m:
            return p, int(m.group(1))
        if p.poll() is not None:
            break
    p.kill()
    sys.exit(f"{argv[0]} did not start; see {log}")


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[max(0, min(len(s) - 1, int(-(-q * len(s) // 1)) - 1))] if s else float("nan")


async def phase(url: str, rate: float, seconds: float) -> dict:
    """Open loop: a request starts every 1/rate s whatever the earlier ones are doing."""
    ok: list[float] = []
    refused: list[float] = []
    other: dict[str, int] = {}
    body = {"model": "g", "messages": [{"role": "user", "content": "hi"}]}
    async with httpx.AsyncClient(base_url=url, timeout=30,
                                 limits=httpx.Limits(max_connections=1000, max_keepalive_connections=1000)) as c:
        async def one():
            t0 = time.monotonic()
            try:
                r = await c.post("/v1/chat/completions", json=body)
                status = r.status_code
            except httpx.HTTPError as e:
                status = type(e).__name__
            dt = (time.monotonic() - t0) * 1000
            if status == 200:
                ok.append(dt)
            elif status == 503 and r.headers.get("retry-after"):
                refused.append(dt)
            else:
                other[str(status)] = other.get(str(status), 0) + 1

        tasks = []
        t0 = time.monotonic()
        for k in range(int(rate * seconds)):
            await asyncio.sleep(max(0.0, t0 + k / rate - time.monotonic()))
            tasks.append(asyncio.create_task(one()))
        await asyncio.gather(*tasks)
    return {"rate": rate, "admitted": len(ok), "p50": pct(ok, .5), "p95": pct(ok, .95), "p99": pct(ok, .99),
            "max": max(ok, default=float("nan")), "refused": len(refused), "refused_p50": pct(refused, .5),
            "refused_p99": pct(refused, .99), "other": other}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cap", type=int, default=8)
    ap.add_argument("--over", type=float, default=3, help="past the cap: offered load = over x capacity")
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--ttft-ms", type=int, default=500)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        mock, mport = start([BIN / "tailgate-mock", "--port", "0", "--threads", "2", "--ttft", f"{args.ttft_ms}ms",
                             "--chunks", "4", "--chunk-delay", "0ms"], tmp / "mock.log")
        cfg = {"model_list": [{"model_name": "g", "litellm_params": {
                   "model": "openai/m", "api_base": f"http://127.0.0.1:{mport}/v1", "api_key": "sk-bench"}}],
               "general_settings": {"max_concurrent_requests": args.cap, "log_level": "warn"}}
        (tmp / "gw.yaml").write_text(json.dumps(cfg))
        gw, gport = start([BIN / "tailgate", "--config", tmp / "gw.yaml", "--port", "0"], tmp / "gw.log")
        try:
            url = f"http://127.0.0.1:{gport}"
            print(f"cap={args.cap} mock ttft={args.ttft_ms} ms, {args.seconds:g} s per phase")
            capacity = args.cap / (args.ttft_ms / 1000)
            print(f"{'phase':6} {'req/s':>7} {'admitted':>8} {'p50':>7} {'p95':>7} {'p99':>7} {'max':>7} "
                  f"{'refused':>8} {'ref p50':>7} {'ref p99':>7} other")
            for name, rate in (("below", capacity / 2), ("past", capacity * args.over)):
                r = asyncio.run(phase(url, rate, args.seconds))
                print(f"{name:6} {r['rate']:7.1f} {r['admitted']:8} {r['p50']:7.1f} {r['p95']:7.1f} {r['p99']:7.1f} "
                      f"{r['max']:7.1f} {r['refused']:8} {r['refused_p50']:7.2f} {r['refused_p99']:7.2f} "
                      f"{r['other'] or '-'}")
            print("(latencies in ms, client-side)")
        finally:
            for p in (gw, mock):
                p.terminate()
                p.wait(10)


if __name__ == "__main__":
    main()
