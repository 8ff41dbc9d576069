#!/usr/bin/env python3
"""Added TTFT of a translated stream versus a native one, in the same run.

    tools/bench/translation_ttft.py [--build build] [--n 400] [--ttft-ms 5] [--out FILE.md]

Starts two tailgate-mock instances (OpenAI's chat API and Anthropic's Messages API,
same TTFT and chunk timing) and one gateway in front of them, then streams, in
shuffled round-robin order so drift hits every path alike:

    direct    client -> mock                       (each wire's floor)
    native    chat -> openai/, messages -> anthropic/   (bytes pass through)
    translated chat -> anthropic/, messages -> openai/  (decoded and re-rendered)

TTFT is measured on the client from sending the request to the first content event
(a chat delta with content, or a content_block_delta). "Added" is a path's TTFT
minus the direct TTFT of the same upstream wire. One Python client, keep-alive
connections, sequential requests: the figures are indicative (a shared 2-core
machine, a Python client); compare the rows with each other, not with BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

KEY = "sk-bench"
ANT_KEY = "sk-ant-bench"
HI = [{"role": "user", "content": "hello there"}]


def start(argv: list[str], log: Path) -> tuple[subprocess.Popen, int]:
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=open(log, "wb"))
    line = p.stdout.readline().decode()
    m = re.match(r"listening on \S+:(\d+)", line)
    if not m:
        p.kill()
        sys.exit(f"{argv[0]} did not start: {line!r}; see {log}")
    return p, int(m.group(1))


def first_content(lines) -> bool:
    """Reads SSE lines until the first content event; True if one came."""
    for line in lines:
        if not line.startswith("data: "):
            continue
        data = line[6:]
        if data == "[DONE]":
            return False
        ev = json.loads(data)
        if ev.get("type") == "content_block_delta":
            return True
        for ch in ev.get("choices") or []:
            if (ch.get("delta") or {}).get("content"):
                return True
    return False


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build")
    ap.add_argument("--n", type=int, default=400, help="streams per path")
    ap.add_argument("--ttft-ms", type=float, default=5)
    ap.add_argument("--out", help="also write the table (markdown) here")
    args = ap.parse_args()
    bin_dir = Path(args.build).resolve() / "bin"
    work = Path(tempfile.mkdtemp(prefix="translation-ttft-"))
    timing = ["--ttft", f"{args.ttft_ms}ms", "--chunk-delay", "1ms", "--chunks", "8", "--threads", "1"]
    procs = []
    try:
        gpt, gpt_port = start([bin_dir / "tailgate-mock", "--port", "0", "--name", "gpt", *timing], work / "gpt.log")
        claude, claude_port = start([bin_dir / "tailgate-mock", "--port", "0", "--name", "claude", "--api-key",
                                     ANT_KEY, *timing], work / "claude.log")
        procs += [gpt, claude]
        cfg = {"model_list": [
            {"model_name": "gpt", "litellm_params": {"model": "openai/gpt-x", "api_base":
                                                     f"http://127.0.0.1:{gpt_port}/v1", "api_key": "sk-up"}},
            {"model_name": "claude", "litellm_params": {"model": "anthropic/claude-x", "api_base":
                                                        f"http://127.0.0.1:{claude_port}", "api_key": ANT_KEY}}],
            "general_settings": {"master_key": KEY}}
        (work / "gw.yaml").write_text(json.dumps(cfg))
        gw, gw_port = start([bin_dir / "tailgate", "--config", work / "gw.yaml", "--host", "127.0.0.1", "--port", "0"],
                            work / "gw.log")
        procs.append(gw)

        chat = {"messages": HI, "stream": True}
        msgs = {"messages": HI, "stream": True, "max_tokens": 64}
        ant_headers = {"x-api-key": ANT_KEY, "anthropic-version": "2023-06-01"}
        gw_headers = {"Authorization": f"Bearer {KEY}"}
        # name: (url, body, headers, upstream wire, kind)
        paths = {
            "direct openai": (f"http://127.0.0.1:{gpt_port}/v1/chat/completions", {**chat, "model": "gpt-x"}, {},
                              "openai", "direct"),
            "direct anthropic": (f"http://127.0.0.1:{claude_port}/v1/messages", {**msgs, "model": "claude-x"},
                                 ant_headers, "anthropic", "direct"),
            "chat -> openai/": (f"http://127.0.0.1:{gw_port}/v1/chat/completions", {**chat, "model": "gpt"},
                                gw_headers, "openai", "native"),
            "messages -> anthropic/": (f"http://127.0.0.1:{gw_port}/v1/messages", {**msgs, "model": "claude"},
                                       gw_headers, "anthropic", "native"),
            "chat -> anthropic/": (f"http://127.0.0.1:{gw_port}/v1/chat/completions", {**chat, "model": "claude"},
                                   gw_headers, "anthropic", "translated"),
            "messages -> openai/": (f"http://127.0.0.1:{gw_port}/v1/messages", {**msgs, "model": "gpt"},
                                    gw_headers, "openai", "translated"),
        }
        samples: dict[str, list[float]] = {p: [] for p in paths}
        with httpx.Client(timeout=30) as client:
            def one(name: str) -> float:
                url, body, headers, _, _ = paths[name]
                t0 = time.perf_counter()
                with client.stream("POST", url, json=body, headers=headers) as r:
                    if r.status_code != 200:
                        sys.exit(f"{name}: HTTP {r.status_code}: {r.read()[:300]!r}")
                    lines = r.iter_lines()
                    if not first_content(lines):
                        sys.exit(f"{name}: no content event")
                    ttft = (time.perf_counter() - t0) * 1000
                    for _ in lines:  # the rest of the stream
                        pass
                return ttft

            for name in paths:  # warm-up: connections, caches
                for _ in range(20):
                    one(name)
            order = list(paths)
            for _ in range(args.n):
                random.shuffle(order)
                for name in order:
                    samples[name].append(one(name))

        def q(v: list[float], p: float) -> float:
            s = sorted(v)
            return s[min(len(s) - 1, int(p * len(s)))]

        direct = {w: statistics.median(samples[f"direct {w}"]) for w in ("openai", "anthropic")}
        lines = [f"Streams of 8 chunks, mock TTFT {args.ttft_ms:g} ms, {args.n} per path, one sequential "
                 "Python client (indicative: shared 2-core machine).", "",
                 "| path | kind | upstream | TTFT p50 ms | TTFT p99 ms | added p50 ms |", "|---|---|---|---|---|---|"]
        for name, (_, _, _, wire, kind) in paths.items():
            v = samples[name]
            added = "—" if kind == "direct" else f"{statistics.median(v) - direct[wire]:+.3f}"
            lines.append(f"| {name} | {kind} | {wire} | {statistics.median(v):.3f} | {q(v, 0.99):.3f} | {added} |")
        native = statistics.mean(statistics.median(samples[p]) - direct[paths[p][3]]
                                 for p in paths if paths[p][4] == "native")
        translated = statistics.mean(statistics.median(samples[p]) - direct[paths[p][3]]
                                     for p in paths if paths[p][4] == "translated")
        lines += ["", f"Translation adds {translated - native:+.3f} ms to TTFT p50 over pass-through "
                      f"(mean of the two directions: native {native:+.3f} ms, translated {translated:+.3f} ms)."]
        text = "\n".join(lines)
        print(text)
        if args.out:
            Path(args.out).write_text(text + "\n")
    finally:
        for p in procs:
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
