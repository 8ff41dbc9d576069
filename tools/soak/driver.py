"""Soak driver: mixed traffic against a sanitizer build of the gateway.

Starts three mocks (lognormal TTFT) and the gateway (one chain per request kind through
per-request `strategies`), drives stream / non-stream / tool / disconnect / race / hedge
traffic (OpenAI's chat and Anthropic's Messages, over an `anthropic/` deployment among the
OpenAI ones, so both native and translated paths run) at a bounded concurrency while a fault schedule switches injected faults on and off
through POST /mock/config, samples the gateway's RSS and open fds into a CSV, stops
everything, and judges: sanitizer reports, unexpected client errors, RSS/fd growth after
warm-up. Exit 0 = pass, 1 = fail. Run through tools/soak/run.sh.
"""
from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import random
import sys
import time
from collections import Counter
from pathlib import Path

import anthropic
import httpx
import openai

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "e2e"))
import conftest  # noqa: E402  (Proc: start a child, wait for "listening on", stop it)

conftest.START_TIMEOUT = 60.0  # sanitizer builds start slower on a loaded machine

POOL_SIZE = 16          # general_settings.upstream_pool_size (idle connections per origin)
COOLDOWN_S = 3          # router_settings.cooldown_time
USER = [{"role": "user", "content": "soak test: say a few words"}]
TOOLS = [{"type": "function", "function": {"name": "lookup", "description": "look a thing up",
                                            "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}}]

# Request kinds and their weights. `strategies` picks the chain per request
# (allow_request_strategy_override; every name in CHAINS is in the config's
# chain or request_strategies), so one gateway serves every policy.
KINDS = {
    "stream": 22, "nonstream": 18, "tools": 8, "disconnect": 8,
    "latency": 10, "race": 10, "fastest_response": 6, "hedge": 14, "embeddings": 4, "messages": 12,
}
ANT_KEY = "sk-soak-ant"  # what mock d, the Anthropic one, accepts
CHAINS = {
    "latency": ["health", "latency"],
    "race": ["health", "simple-shuffle", "race"],
    "hedge": ["health", "latency", "staggered-hedge"],
}

# Fault phases: (name, {mock: knobs}). Each phase lasts `phase_s`; "clean" phases are where
# no error at all is acceptable. Knobs not listed are restored to the clean values.
CLEAN = {"fail_rate": 0, "reset_before": 0, "reset_mid_stream_after": None, "straggler_prob": 0,
         "retry_after_ms": None}
PHASES = [
    ("clean", {}),
    ("c_reset_mid_stream", {"c": {"reset_mid_stream_after": 3}}),
    ("a_fail_500", {"a": {"fail_rate": 0.3, "fail_status": 500}}),
    ("clean", {}),
    ("b_reset_before", {"b": {"reset_before": 0.2}}),
    ("a_429_b_stragglers", {"a": {"fail_rate": 0.3, "fail_status": 429, "retry_after_ms": 100},
                            "b": {"straggler_prob": 0.1, "straggler_mult": 10}}),
]


MOCKS = "abcd"  # d is the Anthropic one (the Messages API; the same knobs)


class Soak:
    def __init__(self, args):
        self.args = args
        self.out = Path(args.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.results: Counter = Counter()          # (kind, outcome) -> n
        self.unexpected: list[str] = []
        self.expected_errors: Counter = Counter()  # reason -> n
        self.samples: list[dict] = []
        self.phase = "clean"
        self.fault_until = 0.0   # monotonic time until which an error may stem from a fault
        self.stop_at = 0.0
        self.t0 = 0.0

    # ---- processes -----------------------------------------------------------------

    def start(self):
        build = Path(self.args.build_dir)
        self.mocks = {}
        for name in MOCKS:
            self.mocks[name] = conftest.Proc(
                [build / "bin" / "tailgate-mock", "--port", "0", "--name", f"soak{name}", "--threads", "1",
                 "--ttft", "30ms", "--ttft-dist", "lognormal", "--ttft-sigma", "0.6", "--ttft-max", "1s",
                 "--chunk-delay", "4ms", "--chunks", "8", "--log-size", "0", "--seed", str(ord(name)),
                 "--api-key", ANT_KEY],
                self.out / f"mock-{name}.log")
        base = {n: f"http://127.0.0.1:{p.port}/v1" for n, p in self.mocks.items()}
        dep = lambda group, m, model: {"model_name": group, "litellm_params": {  # noqa: E731
            "model": f"openai/{model}", "api_base": base[m], "api_key": "sk-soak"}}
        ant = {"model_name": "chat", "litellm_params": {  # Messages' own wire, in the same group
            "model": "anthropic/up-d", "api_base": f"http://127.0.0.1:{self.mocks['d'].port}", "api_key": ANT_KEY}}
        cfg = {
            "model_list": [dep("chat", "a", "up-a"), dep("chat", "b", "up-b"), dep("chat", "c", "up-c"), ant,
                           dep("backup", "c", "up-backup"), dep("backup", "a", "up-backup"),
                           dep("embed", "b", "up-embed")],
            "router_settings": {
                "routing_strategy": "simple-shuffle", "num_retries": 2, "allowed_fails": 3,
                "cooldown_time": COOLDOWN_S, "fallbacks": [{"chat": ["backup"]}], "timeout": 30,
                "allow_request_strategy_override": True,
                # The chain is [simple-shuffle]; the others are made once at start.
                "request_strategies": sorted({n for chain in CHAINS.values() for n in chain} - {"simple-shuffle"}),
                "plugin_paths": [str(build / "lib" / "tailgate" / "plugins")],
            },
            "general_settings": {"upstream_pool_size": POOL_SIZE, "log_level": "warn"},
        }
        (self.out / "gateway.yaml").write_text(json.dumps(cfg, indent=2))
        self.gw = conftest.Proc([build / "bin" / "tailgate", "--config", self.out / "gateway.yaml",
                                 "--host", "127.0.0.1", "--port", "0"], self.out / "gateway.log")
        self.url = f"http://127.0.0.1:{self.gw.port}"

    def stop(self) -> dict:
        codes = {"gateway": self.gw.stop(timeout=60)}
        for n, m in self.mocks.items():
            codes[f"mock-{n}"] = m.stop(timeout=30)
        return codes

    # ---- sampling ------------------------------------------------------------------

    def sample(self, label: str = ""):
        pid = self.gw.p.pid
        try:
            rss_kb = next(int(l.split()[1]) for l in open(f"/proc/{pid}/status") if l.startswith("VmRSS:"))
            fds = len(os.listdir(f"/proc/{pid}/fd"))
            threads = len(os.listdir(f"/proc/{pid}/task"))
        except (FileNotFoundError, StopIteration, ProcessLookupError):
            return
        done = sum(self.results.values())
        self.samples.append({"t_s": round(time.monotonic() - self.t0, 1), "rss_kb": rss_kb, "fds": fds,
                             "threads": threads, "requests": done, "phase": label or self.phase})

    async def sampler(self):
        while time.monotonic() < self.stop_at:
            self.sample()
            await asyncio.sleep(self.args.sample_s)

    # ---- faults --------------------------------------------------------------------

    async def faults(self, http: httpx.AsyncClient):
        i = 0
        while time.monotonic() < self.stop_at:
            name, knobs = PHASES[i % len(PHASES)]
            for m, proc in self.mocks.items():
                body = dict(CLEAN)
                body.update(knobs.get(m, {}))
                r = await http.post(f"http://127.0.0.1:{proc.port}/mock/config", json=body)
                r.raise_for_status()
            self.phase = name
            end = min(time.monotonic() + self.args.phase_s, self.stop_at)
            if name != "clean":
                # a fault's effects (cooling deployments, retries in flight) outlast the phase
                self.fault_until = end + COOLDOWN_S + 2
            await asyncio.sleep(max(0.0, end - time.monotonic()))
            i += 1

    def in_fault_window(self, started: float) -> bool:
        return self.phase != "clean" or started <= self.fault_until or time.monotonic() <= self.fault_until

    # ---- traffic -------------------------------------------------------------------

    def judge_error(self, kind: str, started: float, status: int | None, body: str, where: str):
        """Expected only when a fault was active and the policy cannot recover from it."""
        shaped = False
        try:
            doc = json.loads(body)
            err = doc["error"]
            shaped = isinstance(err, dict) and (all(k in err for k in ("message", "type", "param", "code")) or
                                                (doc.get("type") == "error" and "message" in err))  # Anthropic's
        except Exception:
            pass
        fault = self.in_fault_window(started)
        ok_status = status in (None, 429, 500, 502, 503, 504)
        if fault and ok_status and (shaped or status is None):
            self.expected_errors[f"{where} {status or ''}".strip()] += 1
            self.results[(kind, "expected_error")] += 1
        else:
            self.results[(kind, "unexpected_error")] += 1
            self.unexpected.append(f"t={started - self.t0:.1f}s kind={kind} {where} status={status} "
                                   f"phase={self.phase} shaped={shaped} body={body[:300]!r}")

    async def messages(self, ant: anthropic.AsyncAnthropic):
        """Anthropic's SDK: native to mock d, translated to the others; stream or not, tools sometimes."""
        started = time.monotonic()
        kw = {"tools": [{"name": "lookup", "input_schema": TOOLS[0]["function"]["parameters"]}]} \
            if random.random() < 0.2 else {}
        try:
            if random.random() < 0.5:
                m = await ant.messages.create(model="chat", max_tokens=64, messages=USER, **kw)
                if not m.content or m.stop_reason is None:
                    raise AssertionError(f"empty/unfinished message: {m}")
            else:
                stopped = False
                async for ev in await ant.messages.create(model="chat", max_tokens=64, messages=USER, stream=True,
                                                          **kw):
                    stopped |= ev.type == "message_stop"
                if not stopped:
                    raise AssertionError("a Messages stream without message_stop or an error event")
            self.results[("messages", "ok")] += 1
        except anthropic.APIStatusError as e:  # status 200: an error event after the stream started
            status = None if e.status_code == 200 else e.status_code
            body = json.dumps(e.body) if isinstance(e.body, dict) else e.response.text
            self.judge_error("messages", started, status, body, "http" if status else "stream-error-event")
        except (AssertionError, anthropic.APIConnectionError, httpx.HTTPError) as e:
            self.results[("messages", "unexpected_error")] += 1
            self.unexpected.append(f"t={started - self.t0:.1f}s kind=messages {type(e).__name__}: {e}")

    async def one(self, kind: str, client: openai.AsyncOpenAI, http: httpx.AsyncClient):
        started = time.monotonic()
        extra: dict = {}
        model = "chat"
        if kind in CHAINS:
            extra["strategies"] = CHAINS[kind]
        if kind == "hedge":
            extra["hedge"] = {"delay": "60ms"}
        if kind == "fastest_response":
            model, extra["fastest_response"] = "chat,backup", True
        try:
            if kind == "embeddings":
                r = await client.embeddings.create(model="embed", input=["soak", "test"])
                assert len(r.data) == 2
            elif kind == "disconnect":
                await self.disconnect(http)
            elif kind in ("nonstream", "tools") or (kind in CHAINS and random.random() < 0.4):
                kw = {"tools": TOOLS} if kind == "tools" else {}
                r = await client.chat.completions.create(model=model, messages=USER, extra_body=extra, **kw)
                ch = r.choices[0]
                if not (ch.message.content or ch.message.tool_calls) or ch.finish_reason is None:
                    raise AssertionError(f"empty/unfinished answer: {r}")
            else:
                stream = await client.chat.completions.create(
                    model=model, messages=USER, stream=True, extra_body=extra,
                    stream_options={"include_usage": True}, **({"tools": TOOLS} if random.random() < 0.2 else {}))
                finished, chunks = False, 0
                async for c in stream:
                    chunks += 1
                    if c.choices and c.choices[0].finish_reason:
                        finished = True
                if not finished:
                    # a stream that ended without a finish chunk and without an error event
                    raise AssertionError(f"silently short stream ({chunks} chunks)")
            self.results[(kind, "ok")] += 1
        except openai.APIStatusError as e:
            self.judge_error(kind, started, e.status_code, e.response.text, "http")
        except openai.APIError as e:   # an SSE error event after the stream started
            body = json.dumps({"error": e.body}) if isinstance(e.body, dict) else str(e.body)
            self.judge_error(kind, started, None, body, "stream-error-event")
        except (AssertionError, openai.APIConnectionError, httpx.HTTPError) as e:
            self.results[(kind, "unexpected_error")] += 1
            self.unexpected.append(f"t={started - self.t0:.1f}s kind={kind} {type(e).__name__}: {e}")

    async def disconnect(self, http: httpx.AsyncClient):
        """Streams and hangs up after two events; the gateway must cancel the upstream."""
        body = {"model": "chat", "messages": USER, "stream": True}
        if random.random() < 0.5:
            body["strategies"] = CHAINS["hedge" if random.random() < 0.5 else "race"]
        async with http.stream("POST", self.url + "/v1/chat/completions", json=body) as r:
            if r.status_code != 200:
                await r.aread()
                raise openai.APIStatusError("disconnect", response=r, body=None)
            events = 0
            async for line in r.aiter_lines():
                if line.startswith("data:"):
                    events += 1
                    if events >= 2:
                        break
        # leaving the block closes this connection mid-stream

    async def worker(self, client, ant, http):
        rnd_kinds = list(KINDS)
        weights = [KINDS[k] for k in rnd_kinds]
        while time.monotonic() < self.stop_at:
            kind = random.choices(rnd_kinds, weights)[0]
            if kind == "messages":
                await self.messages(ant)
            else:
                await self.one(kind, client, http)
            await asyncio.sleep(random.uniform(0, self.args.think_s))

    async def run(self):
        self.t0 = time.monotonic()
        self.stop_at = self.t0 + self.args.seconds
        limits = httpx.Limits(max_connections=self.args.concurrency * 2)
        async with httpx.AsyncClient(timeout=60, limits=limits) as http, \
                openai.AsyncOpenAI(base_url=self.url + "/v1", api_key="sk-soak", max_retries=0,
                                   timeout=60) as client, \
                anthropic.AsyncAnthropic(base_url=self.url, api_key="sk-soak", max_retries=0, timeout=60) as ant:
            self.sample("start")
            tasks = [asyncio.create_task(self.faults(http)), asyncio.create_task(self.sampler())]
            tasks += [asyncio.create_task(self.worker(client, ant, http)) for _ in range(self.args.concurrency)]
            await asyncio.gather(*tasks)
        # traffic over; the client connections are closed: a last sample after a quiet moment
        await asyncio.sleep(3)
        self.sample("end")


def sanitizer_reports(out: Path, logs: list[Path]) -> list[str]:
    found = []
    for f in sorted(out.glob("san.*")):
        text = f.read_text(errors="replace")
        if text.strip():
            found.append(f"{f.name}: {text.strip().splitlines()[0][:200]}")
    for log in logs:
        for line in log.read_text(errors="replace").splitlines():
            if "runtime error:" in line or "Sanitizer" in line:
                found.append(f"{log.name}: {line[:200]}")
    return found


def slope_per_min(xs: list[float], ys: list[float]) -> float:
    n = len(xs)
    if n < 2:
        return 0.0
    mx, my = sum(xs) / n, sum(ys) / n
    den = sum((x - mx) ** 2 for x in xs)
    return 60 * sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den if den else 0.0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--build-dir", default=str(REPO / "build-asan"))
    ap.add_argument("--out", default=str(REPO / "build-asan" / "soak"))
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--think-s", type=float, default=0.05, help="max pause between a worker's requests")
    ap.add_argument("--sample-s", type=float, default=5)
    ap.add_argument("--phase-s", type=float, default=20)
    ap.add_argument("--warmup-s", type=float, default=None, help="default: 20%% of the run, at least 10 s")
    args = ap.parse_args()
    warmup = args.warmup_s if args.warmup_s is not None else max(10.0, 0.2 * args.seconds)
    random.seed(8)

    soak = Soak(args)
    soak.start()
    try:
        asyncio.run(soak.run())
    finally:
        codes = soak.stop()
    out = soak.out

    with open(out / "resources.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["t_s", "rss_kb", "fds", "threads", "requests", "phase"])
        w.writeheader()
        w.writerows(soak.samples)

    failures = []
    reports = sanitizer_reports(out, [out / "gateway.log"] + [out / f"mock-{n}.log" for n in MOCKS])
    if reports:
        failures.append(f"{len(reports)} sanitizer report line(s)")
    bad_exit = {k: v for k, v in codes.items() if v != 0}
    if bad_exit:
        failures.append(f"non-zero exit after SIGTERM: {bad_exit}")
    if soak.unexpected:
        failures.append(f"{len(soak.unexpected)} unexpected client error(s)")

    s = soak.samples
    after = [x for x in s if x["t_s"] >= warmup and x["phase"] != "end"]
    start, end = s[0], s[-1]
    rss_mb = lambda x: x["rss_kb"] / 1024  # noqa: E731
    summary: dict = {"seconds": args.seconds, "warmup_s": warmup, "concurrency": args.concurrency,
                     "exit_codes": codes}
    if len(after) >= 3:
        warm = after[0]
        xs = [x["t_s"] for x in after]
        rss_slope = slope_per_min(xs, [rss_mb(x) for x in after])
        fd_slope = slope_per_min(xs, [x["fds"] for x in after])
        span_min = (xs[-1] - xs[0]) / 60
        rss_growth = rss_slope * span_min
        # RSS: the fitted growth after warm-up within max(10 % of the warm RSS, 16 MiB).
        rss_limit = max(0.10 * rss_mb(warm), 16.0)
        # fds: idle pooled connections come and go (up to the pool size per origin, 3 origins);
        # the count after the run must be back within that of the count after warm-up.
        fd_limit = warm["fds"] + 3 * POOL_SIZE
        summary.update({
            "rss_mb": {"start": round(rss_mb(start), 1), "after_warmup": round(rss_mb(warm), 1),
                       "end": round(rss_mb(end), 1), "max": round(max(rss_mb(x) for x in s), 1),
                       "slope_mb_per_min_after_warmup": round(rss_slope, 3),
                       "fitted_growth_after_warmup_mb": round(rss_growth, 1), "limit_mb": round(rss_limit, 1)},
            "fds": {"start": start["fds"], "after_warmup": warm["fds"], "end": end["fds"],
                    "max": max(x["fds"] for x in s), "slope_per_min_after_warmup": round(fd_slope, 3),
                    "limit_end": fd_limit},
            "threads": {"start": start["threads"], "end": end["threads"], "max": max(x["threads"] for x in s)},
        })
        if rss_growth > rss_limit:
            failures.append(f"RSS grew {rss_growth:.1f} MiB after warm-up (limit {rss_limit:.1f})")
        if end["fds"] > fd_limit:
            failures.append(f"fd count {end['fds']} at the end > {fd_limit} (after warm-up {warm['fds']} + 3 x pool)")
    else:
        failures.append("too few resource samples (did the gateway die?)")

    by_kind: dict = {}
    for (kind, outcome), n in sorted(soak.results.items()):
        by_kind.setdefault(kind, {})[outcome] = n
    total = sum(soak.results.values())
    summary.update({"requests_total": total, "requests_per_s": round(total / args.seconds, 1),
                    "by_kind": by_kind, "expected_errors": dict(soak.expected_errors),
                    "unexpected_errors": soak.unexpected[:50], "sanitizer_reports": reports[:50],
                    "result": "FAIL" if failures else "PASS", "failures": failures})
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")

    print(f"soak: {args.seconds:.0f}s, {total} requests ({summary['requests_per_s']}/s), concurrency {args.concurrency}")
    for kind, outs in by_kind.items():
        print(f"  {kind:17s} " + " ".join(f"{k}={v}" for k, v in sorted(outs.items())))
    print(f"  expected errors (fault phases, not recoverable by the policy): {dict(soak.expected_errors)}")
    if "rss_mb" in summary:
        r, d = summary["rss_mb"], summary["fds"]
        print(f"  RSS MiB start/after-warm-up/end/max: {r['start']}/{r['after_warmup']}/{r['end']}/{r['max']}, "
              f"slope after warm-up {r['slope_mb_per_min_after_warmup']} MiB/min")
        print(f"  fds start/after-warm-up/end/max: {d['start']}/{d['after_warmup']}/{d['end']}/{d['max']}")
    for line in soak.unexpected[:20]:
        print("  UNEXPECTED " + line)
    for line in reports[:20]:
        print("  SANITIZER " + line)
    print(f"  CSV: {out / 'resources.csv'}  summary: {out / 'summary.json'}")
    print(("soak FAILED: " + "; ".join(failures)) if failures else "soak passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
