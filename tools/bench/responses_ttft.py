#!/usr/bin/env python3
"""Added TTFT of a translated Responses stream versus a native one, same run.

    tools/bench/responses_ttft.py [--build build] [--n 400] [--ttft-ms 20]

Starts two tailgate-mock processes (same knobs) and a gateway with two groups:
`native` (openai/: /v1/responses passed through) and `translated` (hosted_vllm/:
the request sent as chat completions, the chunks rendered back as typed events).
Requests alternate between the groups, one at a time, so both see the same machine
state; TTFT is the time from sending the request to the first
response.output_text.delta event, measured with httpx on the client. Also measured
directly against a mock (no gateway) for each wire, as a baseline. Prints a markdown
table; every process is stopped at exit.
"""
from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]


def start(argv: list[str]) -> tuple[subprocess.Popen, int]:
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        line = p.stdout.readline()
        m = re.match(r"listening on \S+:(\d+)", line or "")
        if m:
            return p, int(m.group(1))
    p.kill()
    raise RuntimeError(f"{argv[0]} did not start")


def ttft_ms(client: httpx.Client, url: str, body: dict, marker: bytes) -> float:
    t0 = time.perf_counter()
    with client.stream("POST", url, json=body) as r:
        r.raise_for_status()
        chunks = r.iter_raw()
        for chunk in chunks:
            if marker in chunk:
                first = time.perf_counter()
                for _ in chunks:  # read the stream to its end: the connection is reused
                    pass
                return (first - t0) * 1000
    raise RuntimeError(f"no {marker!r} in the stream from {url}")


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=str(REPO / "build"))
    ap.add_argument("--n", type=int, default=400, help="requests per variant")
    ap.add_argument("--ttft-ms", type=float, default=20)
    args = ap.parse_args()
    bin_dir = Path(args.build) / "bin"
    knobs = ["--ttft", f"{args.ttft_ms}ms", "--chunk-delay", "1ms", "--chunks", "8"]
    procs = []
    try:
        nat, nat_port = start([str(bin_dir / "tailgate-mock"), "--port", "0", "--name", "nat", *knobs])
        chat, chat_port = start([str(bin_dir / "tailgate-mock"), "--port", "0", "--name", "chat", *knobs])
        procs += [nat, chat]
        cfg = {"model_list": [
            {"model_name": "native", "litellm_params": {"model": "openai/m", "api_base": f"http://127.0.0.1:{nat_port}/v1", "api_key": "k"}},
            {"model_name": "translated", "litellm_params": {"model": "hosted_vllm/m", "api_base": f"http://127.0.0.1:{chat_port}/v1", "api_key": "k"}},
        ], "general_settings": {"log_level": "warn"}}
        cfg_path = Path(tempfile.mkdtemp()) / "bench.yaml"
        cfg_path.write_text(json.dumps(cfg))
        gw, gw_port = start([str(bin_dir / "tailgate"), "--config", str(cfg_path), "--host", "127.0.0.1", "--port", "0"])
        procs.append(gw)
        gw_url = f"http://127.0.0.1:{gw_port}/v1/responses"
        delta = b"response.output_text.delta"
        variants = {
            "native (gateway)": (gw_url, {"model": "native"}, delta),
            "translated (gateway)": (gw_url, {"model": "translated"}, delta),
            "Responses mock direct": (f"http://127.0.0.1:{nat_port}/v1/responses", {"model": "m"}, delta),
            "chat mock direct": (f"http://127.0.0.1:{chat_port}/v1/chat/completions", {"model": "m"}, b'"content":"chat'),
        }
        samples: dict[str, list[float]] = {k: [] for k in variants}
        with httpx.Client(timeout=10) as client:
            for i in range(args.n + 20):  # the first 20 rounds warm up
                for name, (url, base, marker) in variants.items():
                    body = dict(base, stream=True)
                    if "chat" in url:
                        body["messages"] = [{"role": "user", "content": "hello"}]
                    else:
                        body["input"] = "hello"
                    v = ttft_ms(client, url, body, marker)
                    if i >= 20:
                        samples[name].append(v)
        print(f"TTFT, ms (mock TTFT {args.ttft_ms:g} ms, n={args.n} each, requests interleaved, one at a time)\n")
        print("| variant | p50 | p90 | mean |")
        print("|---|---|---|---|")
        for name, s in samples.items():
            print(f"| {name} | {statistics.median(s):.2f} | {pct(s, 0.9):.2f} | {statistics.fmean(s):.2f} |")
        added = statistics.median(samples["translated (gateway)"]) - statistics.median(samples["native (gateway)"])
        print(f"\ntranslated - native, p50: {added:+.2f} ms")
    finally:
        for p in procs:
            p.terminate()
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
