#!/usr/bin/env python3
"""ctest smoke test of tailgate-loadgen against a tailgate-mock (behaviour, not timing).

    smoke_test.py LOADGEN MOCK

Runs the loadgen for about a second at a low rate in its three modes (non-stream,
stream, N held streams) and checks the JSON: the expected request count, no error,
one latency per request, TTFT and the inter-chunk gaps of every stream.
"""
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

CHUNKS = 4


def main() -> int:
    loadgen, mock_bin = sys.argv[1], sys.argv[2]
    work = Path(tempfile.mkdtemp(prefix="loadgen-smoke-"))
    mock = subprocess.Popen([mock_bin, "--port", "0", "--ttft", "2ms", "--chunks", str(CHUNKS),
                             "--chunk-delay", "2ms"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    failures = []
    try:
        m = re.match(rb"listening on \S+:(\d+)", mock.stdout.readline())
        if not m:
            print("mock did not start")
            return 1
        url = f"http://127.0.0.1:{int(m.group(1))}/v1/chat/completions"

        def run(name, extra, expect_n):
            out = work / f"{name}.json"
            subprocess.run([loadgen, "--url", url, "--out", out, "--quiet", "--timeout", "10s", *extra],
                           check=True, timeout=30)
            d = json.loads(out.read_text())
            s, smp = d["summary"], d["samples"]
            got = (s["requests"], s["ok"], s["errors"], len(smp["latency_ms"]))
            if got != (expect_n, expect_n, 0, expect_n):
                failures.append(f"{name}: requests/ok/errors/samples {got}, expected {expect_n}/{expect_n}/0/{expect_n}")
            if any(x < 0 for x in smp["latency_ms"]) or any(st != 200 for st in smp["status"]):
                failures.append(f"{name}: a request without latency or with a status other than 200")
            if smp["t_ms"] != sorted(smp["t_ms"]):
                failures.append(f"{name}: scheduled times are not in order")
            return d

        run("plain", ["--rate", "40", "--duration", "1s", "--warmup", "250ms"], 40)
        d = run("stream", ["--rate", "20", "--duration", "1s", "--stream"], 20)
        if d["summary"]["ttft_ms"]["n"] != 20 or len(d["samples"]["gap_ms"]) != 20 * (CHUNKS - 1):
            failures.append(f"stream: ttft n {d['summary']['ttft_ms']['n']}, gaps {len(d['samples']['gap_ms'])}, "
                            f"expected 20 and {20 * (CHUNKS - 1)}")
        if any(t > l for t, l in zip(d["samples"]["ttft_ms"], d["samples"]["latency_ms"])):
            failures.append("stream: a TTFT after the end of its stream")
        run("held", ["--streams", "30", "--ramp", "200ms", "--stream"], 30)
    finally:
        mock.terminate()
        mock.wait(timeout=10)
    for f in failures:
        print("FAIL", f)
    print("loadgen smoke:", "FAILED" if failures else "ok")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
