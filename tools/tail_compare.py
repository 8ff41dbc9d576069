#!/usr/bin/env python3
"""Tail latency of Tailgate's routing strategies on one heavy-tailed mock setup.

Starts three `tailgate-mock` providers with the same latency profile (lognormal
TTFT, median 50 ms, sigma 0.5, plus 5 % stragglers x10), then, for each
strategy chain below, one gateway in front of them: a warm-up (fills the
latency windows the hedge reads), a reset of the mock counters, then N
requests at a fixed concurrency. Prints client-side p50/p95/p99/p99.9 and the
extra upstream requests the strategy cost (sum of the mocks' `received` over N).

    strategy       chain
    simple-shuffle [simple-shuffle]
    latency        [health, latency]
    race(2)        [health, simple-shuffle, race{max_parallel: 2}]
    hedge p95      [health, latency, staggered-hedge{delay: p95}]
    hedge p99      [health, latency, staggered-hedge{delay: p99}]

Everything listens on 127.0.0.1 with port 0. The run stops by itself: each
request has a timeout, and a global deadline (default 170 s) cuts the
remaining strategies short (marked in the table) rather than running on.

    .venv/bin/python tools/tail_compare.py [-n 400] [-c 8] [--stream] [--deadline 170]

Requests are non-stream chat completions of one word by default, so the
latency is the TTFT the mock drew; with --stream it is the time to the first
content chunk. Percentiles are nearest-rank: with n=400, p99.9 is the maximum.
"""
from __future__ import annotations

import argparse
import json
import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
BUILD = Path(os.environ.get("TAILGATE_BUILD_DIR", REPO / "build"))
TAILGATE = BUILD / "bin" / "tailgate"
MOCK = BUILD / "bin" / "tailgate-mock"

MOCK_ARGS = ["--ttft", "50ms", "--ttft-dist", "lognormal", "--ttft-sigma", "0.5",
             "--straggler-prob", "0.05", "--straggler-mult", "10",
             "--chunks", "1", "--chunk-delay", "1ms", "--threads", "2"]

STRATEGIES = [
    ("simple-shuffle", ["simple-shuffle"]),
    ("latency", ["health", "latency"]),
    ("race(2)", ["health", "simple-shuffle", {"name": "race", "args": {"max_parallel": 2}}]),
    ("hedge p95", ["health", "latency", {"name": "staggered-hedge", "args": {"delay": "p95"}}]),
    ("hedge p99", ["health", "latency", {"name": "staggered-hedge", "args": {"delay": "p99"}}]),
]


class Proc:
    """A child that prints `listening on HOST:PORT`; stopped with SIGTERM (then SIGKILL)."""

    def __init__(self, argv, log_path: Path, timeout: float = 10.0):
        self.log = open(log_path, "wb")
        self.p = subprocess.Popen([str(a) for a in argv], stdout=subprocess.PIPE, stderr=self.log,
                                  start_new_session=True)
        q: queue.Queue = queue.Queue()
        threading.Thread(target=lambda: [q.put(line) for line in iter(self.p.stdout.readline, b"")] + [q.put(None)],
                         daemon=True).start()
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = q.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                line = None
            if line is None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{argv[0]} did not start; see {log_path}")
            m = re.match(rb"listening on (\S+):(\d+)\s*$", line)
            if m:
                self.port = int(m.group(2))
                return

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(timeout=5)
        self.log.close()


def quantile(sorted_vals: list[float], q: float) -> float:
    k = max(0, min(len(sorted_vals) - 1, -int(-q * len(sorted_vals) // 1) - 1))
    return sorted_vals[k]


def run_load(url: str, n: int, concurrency: int, stream: bool, deadline: float) -> tuple[list[float], int]:
    """n requests; returns (latencies in ms of the successful ones, errors)."""
    body = {"model": "g", "messages": [{"role": "user", "content": "hi"}], "stream": stream}
    local = threading.local()
    lock = threading.Lock()
    lat: list[float] = []
    errors = [0]

    def one(_):
        if time.monotonic() > deadline:
            return
        c = getattr(local, "c", None)
        if c is None:
            c = local.c = httpx.Client(base_url=url, timeout=10, headers={"Authorization": "Bearer x"})
        t0 = time.monotonic()
        try:
            if stream:
                with c.stream("POST", "/v1/chat/completions", json=body) as r:
                    ok = r.status_code == 200
                    took = None
                    for line in r.iter_lines():
                        if took is None and line.startswith("data: {") and '"content":"' in line \
                                and '"content":""' not in line:
                            took = time.monotonic() - t0
                    ok = ok and took is not None
            else:
                r = c.post("/v1/chat/completions", json=body)
                took = time.monotonic() - t0
                ok = r.status_code == 200
        except httpx.HTTPError:
            ok = False
        with lock:
            if ok:
                lat.append(took * 1000)
            else:
                errors[0] += 1

    with ThreadPoolExecutor(concurrency) as ex:
        list(ex.map(one, range(n)))
    return lat, errors[0]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=400, help="measured requests per strategy (default 400)")
    ap.add_argument("-c", "--concurrency", type=int, default=8, help="concurrent requests (default 8)")
    ap.add_argument("--warmup", type=int, default=80, help="requests before measuring (default 80)")
    ap.add_argument("--stream", action="store_true", help="measure the time to the first content chunk")
    ap.add_argument("--deadline", type=float, default=170, help="stop after this many seconds (default 170)")
    ap.add_argument("--seed", type=int, default=1, help="mock seeds are seed, seed+1, seed+2")
    args = ap.parse_args()
    for b in (TAILGATE, MOCK):
        if not b.exists():
            print(f"{b} not found: build first (cmake --build build) or set TAILGATE_BUILD_DIR", file=sys.stderr)
            return 2

    deadline = time.monotonic() + args.deadline
    work = Path(tempfile.mkdtemp(prefix="tail_compare-"))
    procs: list[Proc] = []
    rows = []
    try:
        mocks = []
        for i, name in enumerate("abc"):
            m = Proc([MOCK, "--port", "0", "--name", name, "--seed", str(args.seed + i), *MOCK_ARGS],
                     work / f"mock-{name}.log")
            procs.append(m)
            mocks.append((name, f"http://127.0.0.1:{m.port}"))
        ctl = httpx.Client(timeout=5)

        def mock_received() -> int:
            return sum(ctl.get(u + "/mock/stats").json()["received"] for _, u in mocks)

        def mocks_idle():
            end = time.monotonic() + 5
            while time.monotonic() < end and sum(ctl.get(u + "/mock/stats").json()["in_flight"] for _, u in mocks):
                time.sleep(0.02)

        model_list = [{"model_name": "g", "model_info": {"id": f"dep-{n}"},
                       "litellm_params": {"model": "openai/m", "api_base": u + "/v1", "api_key": "sk-mock"}}
                      for n, u in mocks]
        for label, chain in STRATEGIES:
            if time.monotonic() > deadline - 5:
                rows.append((label, None))
                continue
            cfg = work / f"{re.sub(r'[^a-z0-9]+', '-', label)}.yaml"
            cfg.write_text(json.dumps({"model_list": model_list, "router_settings": {"strategies": chain}}))
            gw = Proc([TAILGATE, "--config", cfg, "--host", "127.0.0.1", "--port", "0"], cfg.with_suffix(".log"))
            procs.append(gw)
            url = f"http://127.0.0.1:{gw.port}"
            try:
                run_load(url, args.warmup, args.concurrency, args.stream, deadline)
                mocks_idle()
                for _, u in mocks:
                    ctl.post(u + "/mock/reset")
                t0 = time.monotonic()
                lat, errors = run_load(url, args.n, args.concurrency, args.stream, deadline)
                wall = time.monotonic() - t0
                mocks_idle()
                done = len(lat) + errors
                extra = (mock_received() - done) / done * 100 if done else float("nan")
                rows.append((label, dict(lat=sorted(lat), errors=errors, done=done, extra=extra, wall=wall)))
            finally:
                gw.stop()
                procs.remove(gw)
    finally:
        for p in procs:
            p.stop()

    mode = "time to first content chunk" if args.stream else "non-stream response time"
    print(f"3 mocks: lognormal TTFT median 50 ms, sigma 0.5, 5 % stragglers x10; "
          f"{args.n} requests at concurrency {args.concurrency} after {args.warmup} warm-up; {mode}, ms")
    head = f"{'strategy':<15}{'p50':>7}{'p95':>7}{'p99':>7}{'p99.9':>7}{'extra upstream':>16}{'errors':>8}{'wall s':>8}"
    print(head)
    print("-" * len(head))
    for label, r in rows:
        if r is None or not r["lat"]:
            print(f"{label:<15}  (skipped: deadline)")
            continue
        s = r["lat"]
        short = "" if r["done"] == args.n else f"  (cut at {r['done']}: deadline)"
        print(f"{label:<15}{quantile(s, .5):>7.0f}{quantile(s, .95):>7.0f}{quantile(s, .99):>7.0f}"
              f"{quantile(s, .999):>7.0f}{r['extra']:>15.1f}%{r['errors']:>8}{r['wall']:>8.1f}{short}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
