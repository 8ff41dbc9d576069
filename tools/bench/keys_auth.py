#!/usr/bin/env python3
"""Virtual-key auth cost: added p50 of requests with virtual keys versus the master key.

    .venv-bench/bin/python tools/bench/keys_auth.py [--keys 100000] [--active 1000] [--rate 2000]
        [--duration 5] [--pairs 4]

A SQLite key store holding --keys keys (written straight into the database
after the gateway's own migrations created it; tokens are the keys' SHA-256,
exactly what /key/generate stores), one gateway on core 0, the mock and the
load generator on core 1. Paired runs at --rate: the master key, then
--active virtual keys rotating request by request (tailgate-loadgen
--keys-file), in ABBA order so drift cancels; the difference of each pair's
p50 is the added cost. Before the measured runs every active key is used once
(warm-up); the gateway's own counters then show whether any request went to
the database: tailgate_key_lookups_total (keys read on a cache miss),
tailgate_database_queries_total (every read: lookups, the refresh, the spend
writer's budget-reset check) and tailgate_database_statements_total (every SQL
statement, the spend writer's batched writes included).

Writes tools/bench/results/keys_auth.md (also printed). Indicative on a shared
machine: the load average is in the header.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sqlite3
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as bench  # noqa: E402  (processes, pinning, the load generator)


def metric(url: str, name: str) -> float:
    with urllib.request.urlopen(url + "/metrics", timeout=10) as r:
        text = r.read().decode()
    m = re.search(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.M)
    return float(m.group(1)) if m else float("nan")


def fill_store(db: Path, keys: list[str]):
    """The rows /key/generate would write, in one transaction."""
    now = int(time.time() * 1000)
    rows = [(hashlib.sha256(k.encode()).hexdigest(), "sk-..." + k[-4:], "[]", "{}", now, now) for k in keys]
    with sqlite3.connect(db) as c:
        c.executemany("INSERT INTO tg_keys (token, key_name, models, metadata, created_at_ms, updated_at_ms)"
                      " VALUES (?, ?, ?, ?, ?, ?)", rows)


def start_gateway(work: Path, mock: bench.Mock, db: Path) -> bench.Proc:
    return bench.start_tailgate(work, "tailgate", [mock], ["simple-shuffle"],
                                general={"database_url": f"sqlite://{db}", "proxy_batch_write_at": 1,
                                         "key_refresh_interval": "60s"})


def loadgen(url: str, out: Path, label: str, rate: float, duration: float, warmup: float, auth: list) -> dict:
    """bench.loadgen, with this run's credentials only (a master key header would shadow the keys file's)."""
    argv = [bench.LOADGEN, "--url", url + "/v1/chat/completions", "--label", label, "--out", out, "--timeout", "10s",
            "--concurrency-cap", 2000, "--model", "m", "--quiet", "--rate", rate, "--duration", f"{duration}s",
            "--warmup", f"{warmup}s", *auth]
    p = bench.subprocess.Popen(bench.pinned(bench.LOAD_CORE, argv), stdin=bench.subprocess.DEVNULL)
    return bench.finish_loadgen(p, warmup + duration + 40, out)


def one_run(url: str, work: Path, label: str, args, auth: list) -> dict:
    res = loadgen(url, work / f"{label}.json", label, args.rate, args.duration, 1, auth)
    s = res["summary"]
    bench.log(f"{label}: p50 {s['latency_ms']['p50']:.3f} ms, p99 {s['latency_ms']['p99']:.3f} ms, "
              f"errors {s['errors']}")
    return s


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keys", type=int, default=100_000)
    ap.add_argument("--active", type=int, default=1000)
    ap.add_argument("--rate", type=float, default=2000)
    ap.add_argument("--duration", type=float, default=5)
    ap.add_argument("--pairs", type=int, default=4)
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="tailgate-keys-bench-"))
    load_start = os.getloadavg()
    mock = bench.Mock(work, "a", ["--ttft", "0", "--chunks", "1", "--chunk-delay", "0", "--log-size", "0"])
    db = work / "keys.db"
    first = start_gateway(work, mock, db)  # creates the schema
    first.stop()
    keys = ["sk-bench-" + os.urandom(16).hex() for _ in range(args.keys)]
    t0 = time.monotonic()
    fill_store(db, keys)
    bench.log(f"{args.keys} keys stored in {time.monotonic() - t0:.1f} s")
    keys_file = work / "active-keys.txt"
    keys_file.write_text("\n".join(keys[: args.active]) + "\n")

    gw = start_gateway(work, mock, db)
    url = f"http://127.0.0.1:{gw.port}"
    # Warm-up: every active key once (read from the store on its first use).
    loadgen(url, work / "warm.json", "warm", 1000, max(1.0, args.active / 1000 + 0.5), 0, ["--keys-file", keys_file])
    lookups0 = metric(url, "tailgate_key_lookups_total")
    queries0 = metric(url, "tailgate_database_queries_total")
    statements0 = metric(url, "tailgate_database_statements_total")
    cached = metric(url, "tailgate_key_cache_entries")
    bench.log(f"warm-up: {lookups0:.0f} keys looked up, {cached:.0f} cached")

    master = ["--header", f"Authorization: Bearer {bench.MASTER_KEY}"]
    virtual = ["--keys-file", str(keys_file)]
    pairs = []
    measured_requests = 0
    t_measured = time.monotonic()
    for i in range(args.pairs):
        order = [("master", master), ("keys", virtual)] if i % 2 == 0 else [("keys", virtual), ("master", master)]
        got = {}
        for name, auth in order:
            got[name] = one_run(url, work, f"{name}-{i}", args, auth)
            measured_requests += got[name]["requests"]
        pairs.append(got)
    lookups = metric(url, "tailgate_key_lookups_total") - lookups0
    measured_s = time.monotonic() - t_measured
    queries = metric(url, "tailgate_database_queries_total") - queries0
    statements = metric(url, "tailgate_database_statements_total") - statements0
    gw.stop()
    mock.proc.stop()

    rows = []
    diffs = []
    for i, p in enumerate(pairs):
        d = p["keys"]["latency_ms"]["p50"] - p["master"]["latency_ms"]["p50"]
        diffs.append(d)
        rows.append([str(i + 1), f"{p['master']['latency_ms']['p50']:.3f}", f"{p['keys']['latency_ms']['p50']:.3f}",
                     f"{d * 1000:+.0f}", f"{p['master']['latency_ms']['p99']:.3f}", f"{p['keys']['latency_ms']['p99']:.3f}",
                     str(p["master"]["errors"] + p["keys"]["errors"])])
    md = [f"## keys_auth\n",
          f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {os.cpu_count()} cores; load average "
          f"{' '.join(f'{x:.2f}' for x in load_start)} at start, {' '.join(f'{x:.2f}' for x in os.getloadavg())} at end.",
          "",
          f"{args.keys:,} keys in a SQLite store, {args.active:,} of them rotating request by request at "
          f"{args.rate:g} requests/s, {args.duration:g} s measured per run after 1 s warm-up; paired with the master "
          "key, ABBA order; mock answers at once; latency from the scheduled send time, ms.",
          "",
          bench.md_table(["pair", "master p50", "virtual keys p50", "added p50 µs", "master p99", "virtual keys p99",
                          "errors"], rows),
          "",
          f"Median added p50: **{statistics.median(diffs) * 1000:+.0f} µs**.",
          f"Warm-up: {lookups0:.0f} key lookups (each active key read once), {cached:.0f} keys cached.",
          f"Database after warm-up, over {measured_requests:,} measured requests ({measured_s:.0f} s with the "
          f"metric reads between runs): **{lookups:.0f} key lookups, {queries:.0f} queries** "
          f"({queries / max(1, measured_requests):.5f} per request: the spend writer's once-a-flush budget-reset "
          f"check, independent of traffic), {statements:.0f} SQL statements in all (the spend writer's batches, "
          f"one transaction a second off the request path: {statements / max(1, measured_requests):.4f} "
          f"per request)."]
    text = "\n".join(md) + "\n"
    (bench.RESULTS / "keys_auth.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        bench.stop_all()
