#!/usr/bin/env python3
"""Shared state's cost on the request path (issue 18): one Tailgate replica with
Redis on versus the same config without it, in the same run, at a fixed open-loop
rate, alternating off/on/paused rounds so machine noise hits all alike ("paused":
the Redis-on replica while redis-server is stopped with SIGSTOP for the whole run:
the replica drops it after command_timeout and serves alone).

    .venv/bin/python tools/bench/fleet.py [--rate 2000] [--duration 10] [--rounds 2]

Per round and setting: added latency (gateway p50/p99 minus the mock alone at the
same rate), CPU per request (the gateway's utime+stime over the run / requests),
Redis commands per request (tailgate_shared_state_commands_total over the run /
requests). The chain is [health, latency, usage] (all fleet-aware) and the
deployment has an rpm far above the rate, so every request also takes a quota
lease unit from the local allowance (refilled in the background): every
request's outcomes go to Redis in batches. Writes tools/bench/results/fleet.md and .json.
The machine is shared: figures are indicative.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as bench  # noqa: E402  (Proc, Mock, loadgen, pinned, proc_usage, helpers)


def metric(url: str, name: str) -> float:
    with urllib.request.urlopen(url + "/metrics", timeout=5) as r:
        text = r.read().decode()
    m = re.search(rf"^{name} (\S+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


def wait_up(url: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if metric(url, "tailgate_shared_state_up") == 1:
            return
        time.sleep(0.1)
    raise RuntimeError("the replica did not reconnect to Redis")


def start_redis(work: Path) -> tuple[subprocess.Popen, int]:
    port = bench.free_port()
    p = subprocess.Popen(bench.pinned(bench.LOAD_CORE, ["redis-server", "--port", port, "--bind", "127.0.0.1",
                                                        "--save", "", "--appendonly", "no",
                                                        "--logfile", str(work / "redis.log")]))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            import socket
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return p, port
        except OSError:
            time.sleep(0.05)
    p.kill()
    raise RuntimeError("redis-server did not answer")


def one_run(target_url: str, label: str, work: Path, args, pid: int | None) -> dict:
    cpu0 = bench.proc_usage(pid)[1] if pid else 0
    cmds0 = metric(target_url, "tailgate_shared_state_commands_total") if pid else 0
    res = bench.loadgen(target_url, label, work / f"{label}.json", rate=args.rate, duration=args.duration,
                        warmup=args.warmup)
    s = res["summary"]
    n = len(res["samples"]["latency_ms"])
    out = {"label": label, "requests": n, "errors": bench.errors_of(s), "pct": bench.pct(res)}
    if pid:
        cpu = bench.proc_usage(pid)[1] - cpu0
        cmds = metric(target_url, "tailgate_shared_state_commands_total") - cmds0
        total = args.rate * (args.duration + args.warmup)
        out["cpu_us_per_request"] = cpu / total * 1e6
        out["redis_commands_per_request"] = cmds / total
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, default=2000)
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--warmup", type=float, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    work = Path(bench.tempfile.mkdtemp(prefix="tailgate-bench-fleet-"))
    mock = bench.Mock(work, "a", ["--ttft", "0ms", "--chunks", "4", "--chunk-delay", "0ms", "--threads", "1"])
    redis, port = start_redis(work)
    chain = ["health", "latency", "usage"]
    models = bench.model_list([mock])
    models[0]["litellm_params"]["rpm"] = 1_000_000_000  # a limit never reached: leases on every request
    off = bench.start_tailgate(work, "off", [mock], chain, models=models)
    on = bench.start_tailgate(work, "on", [mock], chain, models=models,
                              router={"redis_url": f"redis://127.0.0.1:{port}"})
    rows = []
    try:
        base = one_run(mock.url, "mock", work, args, None)
        for r in range(args.rounds):
            for name, proc in (("off", off), ("on", on), ("paused", on)):
                if name == "paused":
                    os.kill(redis.pid, signal.SIGSTOP)
                try:
                    res = one_run(f"http://127.0.0.1:{proc.port}", f"{name}-{r}", work, args, proc.p.pid)
                finally:
                    if name == "paused":
                        os.kill(redis.pid, signal.SIGCONT)
                        wait_up(f"http://127.0.0.1:{proc.port}")
                res["added_p50_ms"] = res["pct"]["p50"] - base["pct"]["p50"]
                res["added_p99_ms"] = res["pct"]["p99"] - base["pct"]["p99"]
                rows.append(res)
                bench.log(f"{res['label']}: +p50 {res['added_p50_ms']:.3f} ms, +p99 {res['added_p99_ms']:.3f} ms, "
                          f"{res['cpu_us_per_request']:.1f} us CPU/req, "
                          f"{res['redis_commands_per_request']:.4f} Redis cmds/req, errors {res['errors']}")
    finally:
        off.stop()
        on.stop()
        mock.proc.stop()
        os.kill(redis.pid, signal.SIGCONT)
        redis.terminate()
        redis.wait(timeout=10)
    head = ["run", "requests", "added p50 ms", "added p99 ms", "CPU µs/request", "Redis commands/request", "errors"]
    table = bench.md_table(head, [[r["label"], r["requests"], bench.fmt(r["added_p50_ms"]), bench.fmt(r["added_p99_ms"]),
                                   bench.fmt(r["cpu_us_per_request"], 1), bench.fmt(r["redis_commands_per_request"], 4),
                                   r["errors"]] for r in rows])
    text = (f"# Shared state on vs off (one replica, {args.rate:.0f} RPS, {args.duration:.0f} s + "
            f"{args.warmup:.0f} s warm-up per run, chain [health, latency, usage], rpm leases; "
            "paused: redis-server stopped with SIGSTOP for the whole run)\n\n"
            f"Mock alone: p50 {base['pct']['p50']:.3f} ms, p99 {base['pct']['p99']:.3f} ms. "
            "Indicative: a shared 2-core machine.\n\n" + table + "\n")
    bench.RESULTS.mkdir(parents=True, exist_ok=True)
    (bench.RESULTS / "fleet.md").write_text(text)
    (bench.RESULTS / "fleet.json").write_text(json.dumps({"base": base, "rows": rows}, indent=1))
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
