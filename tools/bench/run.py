#!/usr/bin/env python3
"""Tailgate benchmark runner: one scenario, every target side by side, in one run.

    tools/bench/run.sh [overhead|stream|concurrency|tail|outage|all] [options]

Each scenario starts `tailgate-mock` providers and reaches them (a) directly,
(b) through Tailgate, (c) through nginx `proxy_pass` (upstream keep-alive) and
(d) through LiteLLM's proxy when it can be installed into `.venv-litellm`; the
open-loop `tailgate-loadgen` drives each target in turn at the same fixed rate.
Proxies run on core 0, the load generator and the mocks on core 1. Everything
listens on 127.0.0.1, every run is bounded in time, and every process started
here is stopped at exit, on error too.

Writes tools/bench/results/<scenario>.json (summaries and raw samples) and
<scenario>.md (the tables, also printed), and PNG plots into docs/bench/.
"""
from __future__ import annotations

import argparse
import atexit
import json
import math
import os
import platform
import queue
import re
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("TAILGATE_BUILD_DIR", REPO / "build")).resolve()
TAILGATE = BUILD / "bin" / "tailgate"
MOCK = BUILD / "bin" / "tailgate-mock"
LOADGEN = BUILD / "bin" / "tailgate-loadgen"
TAILGATE_LOG_LEVEL = "warn"  # --tailgate-log-level
RESULTS = REPO / "tools" / "bench" / "results"
PLOTS = REPO / "docs" / "bench"
LITELLM_VENV = REPO / ".venv-litellm"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

sys.path.insert(0, str(REPO / "tools"))
from tail_compare import MOCK_ARGS as TAIL_MOCK_ARGS, STRATEGIES as TAIL_STRATEGIES  # noqa: E402

QUANTILES = [("p50", .5), ("p90", .9), ("p99", .99), ("p99.9", .999)]
PROXY_CORE, LOAD_CORE = "0", "1"
# LiteLLM's proxy refuses to start without a master key; Tailgate gets the same one so both check it.
MASTER_KEY = "sk-bench-" + secrets.token_hex(16)


def pinned(core: str, argv: list) -> list[str]:
    argv = [str(a) for a in argv]
    if shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
        return ["taskset", "-c", core, *argv]
    return argv


def log(msg: str):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- processes

_PROCS: list["Proc"] = []


class Proc:
    """A child in its own process group; waits for `listening on HOST:PORT` or an HTTP probe."""

    def __init__(self, argv, log_path: Path, listen_line=True, probe_url: str | None = None,
                 timeout: float = 15, env: dict | None = None, cwd=None):
        self.name = Path(str(argv[0] if "taskset" not in str(argv[0]) else argv[3])).name
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.p = subprocess.Popen([str(a) for a in argv], stdout=subprocess.PIPE if listen_line else self._log,
                                  stderr=self._log, stdin=subprocess.DEVNULL, start_new_session=True,
                                  env={**os.environ, **(env or {})}, cwd=cwd)
        _PROCS.append(self)
        self.port = None
        deadline = time.monotonic() + timeout
        if listen_line:
            q: queue.Queue = queue.Queue()

            def reader():
                for line in iter(self.p.stdout.readline, b""):
                    q.put(line)
                q.put(None)
            threading.Thread(target=reader, daemon=True).start()
            while True:
                try:
                    line = q.get(timeout=max(0.05, deadline - time.monotonic()))
                except queue.Empty:
                    line = None
                if line is None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"{self.name} did not start; log: {log_path}\n{self.tail()}")
                m = re.match(rb"listening on (\S+):(\d+)\s*$", line)
                if m:
                    self.port = int(m.group(2))
                    break
        if probe_url:
            while True:
                if self.p.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"{self.name} did not answer {probe_url}; log: {log_path}\n{self.tail()}")
                try:
                    with urllib.request.urlopen(probe_url, timeout=2) as r:
                        if r.status < 500:
                            break
                except (urllib.error.URLError, OSError):
                    time.sleep(0.2)

    def tail(self, n=3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def stop(self):
        if self.p.poll() is None:
            for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
                try:
                    os.killpg(self.p.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.p.wait(timeout=wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        try:
            self._log.close()
        except Exception:
            pass
        if self in _PROCS:
            _PROCS.remove(self)


def stop_all():
    for p in reversed(list(_PROCS)):
        p.stop()


atexit.register(stop_all)


def _on_signal(sig, _frame):
    stop_all()
    sys.exit(128 + sig)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_json(url: str, body: dict | None = None, timeout: float = 10) -> dict:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method="GET" if body is None else "POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


# --------------------------------------------------------------------------- /proc sampling

def tree_pids(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(d))
            except (OSError, ValueError, IndexError):
                pass
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def proc_usage(root: int) -> tuple[float, float, int]:
    """(RSS MiB, CPU seconds, threads) summed over the process tree of `root`."""
    rss_kb, ticks, threads = 0, 0, 0
    for pid in tree_pids(root):
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        rss_kb += int(line.split()[1])
                    elif line.startswith("Threads:"):
                        threads += int(line.split()[1])
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
        except (OSError, ValueError, IndexError):
            pass
    return rss_kb / 1024, ticks / os.sysconf("SC_CLK_TCK"), threads


class Sampler:
    """Samples RSS / CPU / threads of a process tree every `period` seconds in a thread."""

    def __init__(self, pid: int | None, period: float = 0.25):
        self.pid, self.period, self.rows = pid, period, []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        if self.pid:
            self._t.start()
        return self

    def _run(self):
        t0 = time.monotonic()
        while not self._stop.is_set():
            rss, cpu, thr = proc_usage(self.pid)
            self.rows.append((round(time.monotonic() - t0, 3), round(rss, 2), round(cpu, 3), thr))
            self._stop.wait(self.period)

    def __exit__(self, *exc):
        self._stop.set()
        if self._t.is_alive():
            self._t.join()

    def summary(self) -> dict | None:
        if len(self.rows) < 2:
            return None
        (t0, rss0, cpu0, _), (t1, _, cpu1, _) = self.rows[0], self.rows[-1]
        return {"rss_start_mib": rss0, "rss_peak_mib": max(r[1] for r in self.rows),
                "threads_peak": max(r[3] for r in self.rows), "cpu_s": round(cpu1 - cpu0, 2),
                "cpu_pct": round(100 * (cpu1 - cpu0) / max(1e-9, t1 - t0), 1), "series": self.rows}


# --------------------------------------------------------------------------- load generator

def loadgen(url: str, label: str, out: Path, rate: float = 0, duration: float = 10, warmup: float = 0,
            stream: bool = False, streams: int = 0, ramp: float = 2, timeout: float = 10,
            cap: int = 4000, extra: list[str] | None = None, wait: bool = True):
    argv = [LOADGEN, "--url", url + "/v1/chat/completions", "--label", label, "--out", out,
            "--timeout", f"{timeout}s", "--concurrency-cap", cap, "--model", "m", "--quiet",
            "--header", f"Authorization: Bearer {MASTER_KEY}"]
    if streams:
        argv += ["--streams", streams, "--ramp", f"{ramp}s"]
        bound = ramp + timeout + 30
    else:
        argv += ["--rate", rate, "--duration", f"{duration}s", "--warmup", f"{warmup}s"]
        bound = warmup + duration + timeout + 30
    if stream:
        argv.append("--stream")
    argv += extra or []
    p = subprocess.Popen(pinned(LOAD_CORE, argv), stdin=subprocess.DEVNULL)
    if not wait:
        return p, bound
    return finish_loadgen(p, bound, out)


def finish_loadgen(p: subprocess.Popen, bound: float, out: Path) -> dict:
    try:
        rc = p.wait(timeout=bound)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        raise RuntimeError(f"loadgen did not finish within {bound:.0f}s")
    if rc != 0:
        raise RuntimeError(f"loadgen exited with {rc}")
    with open(out) as f:
        return json.load(f)


def quantile(sorted_vals: list[float], q: float) -> float:
    if not sorted_vals:
        return float("nan")
    k = max(0, min(len(sorted_vals) - 1, math.ceil(q * len(sorted_vals)) - 1))
    return sorted_vals[k]


def ok_values(res: dict, key: str = "latency_ms") -> list[float]:
    return sorted(v for v in res["samples"][key] if v is not None and v >= 0)


def pct(res: dict, key: str = "latency_ms") -> dict:
    vals = ok_values(res, key) if key != "gap_ms" else sorted(res["samples"]["gap_ms"])
    return {name: quantile(vals, q) for name, q in QUANTILES}


# --------------------------------------------------------------------------- targets

class Mock:
    def __init__(self, work: Path, name: str, args: list[str]):
        self.name = name
        self.proc = Proc(pinned(LOAD_CORE, [MOCK, "--port", 0, "--name", name, *args]), work / f"mock-{name}.log")
        self.url = f"http://127.0.0.1:{self.proc.port}"

    def stats(self) -> dict:
        return http_json(self.url + "/mock/stats")

    def reset(self):
        http_json(self.url + "/mock/reset", {})

    def configure(self, **kv) -> dict:
        return http_json(self.url + "/mock/config", kv)

    def requests(self, limit: int) -> list[dict]:
        return http_json(f"{self.url}/mock/requests?limit={limit}")


def model_list(mocks: list[Mock]) -> list[dict]:
    return [{"model_name": "m", "model_info": {"id": f"dep-{m.name}"},
             "litellm_params": {"model": "openai/m", "api_base": m.url + "/v1", "api_key": "sk-mock"}}
            for m in mocks]


def start_tailgate(work: Path, name: str, mocks: list[Mock], chain: list, router: dict | None = None,
                   general: dict | None = None, models: list[dict] | None = None) -> Proc:
    cfg = {"model_list": models if models is not None else model_list(mocks),
           "router_settings": {"strategies": chain, **(router or {})},
           # Default max_threads (256): streams and idle connections hold no thread.
           # The per-request log line follows --tailgate-log-level (nginx runs with its access log off).
           "general_settings": {"master_key": MASTER_KEY, "log_level": TAILGATE_LOG_LEVEL, **(general or {})}}
    path = work / f"{name}.yaml"
    path.write_text(json.dumps(cfg, indent=1))
    return Proc(pinned(PROXY_CORE, [TAILGATE, "--config", path, "--host", "127.0.0.1", "--port", 0]),
                work / f"{name}.log")


NGINX_CONF = """\
daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile 65536;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 16384; }}
http {{
  access_log off;
  client_body_temp_path {dir}/body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
  keepalive_requests 1000000;
  keepalive_timeout 120s;
  upstream mocks {{
{servers}
    keepalive 1024;
    keepalive_requests 1000000;
  }}
  server {{
    listen 127.0.0.1:{port} backlog=4096;
    location / {{
      proxy_pass http://mocks;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_read_timeout 120s;
    }}
  }}
}}
"""


def ensure_nginx():
    if os.path.exists(NGINX):
        return
    log("nginx missing: apt-get install nginx-light")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=False, env=env, timeout=300)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "nginx-light"],
                   check=True, env=env, timeout=600)


def start_nginx(work: Path, mocks: list[Mock]) -> Proc:
    ensure_nginx()
    d = work / "nginx"
    d.mkdir(exist_ok=True)
    os.chmod(work, 0o755)
    os.chmod(d, 0o755)
    port = free_port()
    servers = "\n".join(f"    server 127.0.0.1:{m.proc.port};" for m in mocks)
    (d / "nginx.conf").write_text(NGINX_CONF.format(dir=d, port=port, servers=servers))
    p = Proc(pinned(PROXY_CORE, [NGINX, "-p", d, "-c", d / "nginx.conf", "-e", d / "error.log"]),
             work / "nginx.log", listen_line=False, probe_url=f"http://127.0.0.1:{port}/mock/stats")
    p.port = port
    return p


_LITELLM: dict = {}


def litellm_available(install: bool) -> str | None:
    """The installed LiteLLM version, installing it into .venv-litellm first if asked; None if unavailable."""
    if "version" in _LITELLM:
        return _LITELLM["version"]
    py = LITELLM_VENV / "bin" / "python"
    version = None
    try:
        if not (LITELLM_VENV / "bin" / "litellm").exists() and install:
            log("installing litellm[proxy] into .venv-litellm (a few minutes, once)")
            subprocess.run([sys.executable, "-m", "venv", LITELLM_VENV], check=True, timeout=120)
            subprocess.run([py, "-m", "pip", "install", "-q", "--disable-pip-version-check", "litellm[proxy]"],
                           check=True, timeout=900)
        if (LITELLM_VENV / "bin" / "litellm").exists():
            version = subprocess.run([py, "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
                                     capture_output=True, text=True, timeout=60).stdout.strip() or None
    except (subprocess.SubprocessError, OSError) as e:
        _LITELLM["error"] = f"install failed: {e}"
    if version is None and "error" not in _LITELLM:
        _LITELLM["error"] = "not installed (.venv-litellm missing; run without --no-litellm-install)"
    _LITELLM["version"] = version
    return version


def start_litellm(work: Path, mocks: list[Mock]) -> Proc:
    port = free_port()
    cfg = {"model_list": model_list(mocks), "litellm_settings": {"telemetry": False},
           "general_settings": {"master_key": MASTER_KEY}}
    path = work / "litellm.yaml"
    path.write_text(json.dumps(cfg, indent=1))
    env = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR", "LITELLM_TELEMETRY": "False",
           "NO_DOCS": "True", "DISABLE_ADMIN_UI": "True"}
    p = Proc(pinned(PROXY_CORE, [LITELLM_VENV / "bin" / "litellm", "--config", path, "--host", "127.0.0.1",
                                 "--port", port, "--num_workers", 1]),
             work / "litellm.log", listen_line=False, probe_url=f"http://127.0.0.1:{port}/health/liveliness",
             timeout=180, env=env, cwd=work)
    p.port = port
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    for _ in range(3):  # its first request initialises lazily and takes seconds
        req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/chat/completions", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json",
                                              "Authorization": f"Bearer {MASTER_KEY}"})
        with urllib.request.urlopen(req, timeout=60) as r:
            r.read()
    return p


class Targets:
    """direct / tailgate / nginx / litellm in front of the same mocks (direct = the first mock)."""

    def __init__(self, work: Path, mocks: list[Mock], chain: list, args, notes: list[str],
                 router: dict | None = None, kinds=("direct", "tailgate", "nginx", "litellm")):
        self.items: list[tuple[str, str, int | None]] = []
        for kind in kinds:
            if kind == "direct":
                self.items.append(("direct", mocks[0].url, None))
            elif kind == "tailgate":
                p = start_tailgate(work, "tailgate", mocks, chain, router)
                self.items.append(("tailgate", f"http://127.0.0.1:{p.port}", p.p.pid))
            elif kind == "nginx":
                p = start_nginx(work, mocks)
                self.items.append(("nginx", f"http://127.0.0.1:{p.port}", p.p.pid))
            elif kind == "litellm" and args.litellm:
                if litellm_available(args.install_litellm) is None:
                    notes.append(f"LiteLLM skipped: {_LITELLM.get('error')}")
                    continue
                try:
                    p = start_litellm(work, mocks)
                except RuntimeError as e:
                    notes.append(f"LiteLLM skipped: could not start ({str(e).splitlines()[0]})")
                    continue
                self.items.append(("litellm", f"http://127.0.0.1:{p.port}", p.p.pid))


# --------------------------------------------------------------------------- tables

def fmt(x, digits=3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{x:.{digits}f}"


def md_table(head: list[str], rows: list[list]) -> str:
    # The leading blank line: a table must not follow a paragraph line directly.
    out = ["", "| " + " | ".join(head) + " |", "|" + "|".join("---:" if i else "---" for i in range(len(head))) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def verdict(ok: bool | None) -> str:
    return "–" if ok is None else ("**met**" if ok else "**missed**")


def errors_of(s: dict) -> str:
    if not s["errors"]:
        return "0"
    kinds = ", ".join(f"{k} {v}" for k, v in s["error_kinds"].items())
    return f"{s['errors']} ({kinds})"


def trim(res: dict) -> dict:
    """The result without the big arrays the plots already used (kept: latency/ttft for CDFs)."""
    r = dict(res)
    s = dict(res["samples"])
    gaps = s.pop("gap_ms", [])
    if len(gaps) > 20000:  # keep an even subsample of the gaps for re-plotting
        step = len(gaps) / 20000
        gaps = [gaps[int(i * step)] for i in range(20000)]
    s["gap_ms_subsample"] = gaps
    r["samples"] = s
    return r


# --------------------------------------------------------------------------- plots

def plotting():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        return plt
    except ImportError:
        log("matplotlib not available: no plots (tools/bench/run.sh installs it into .venv-bench)")
        return None


def save_plot(plt, fig, path: Path):
    fig.tight_layout()
    PLOTS.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


COLORS = {"direct": "tab:gray", "tailgate": "tab:blue", "nginx": "tab:green", "litellm": "tab:red"}


def plot_cdfs(path: Path, panels: list[tuple[str, dict[str, list[float]]]], xlabel: str):
    plt = plotting()
    if not plt:
        return
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4), squeeze=False)
    for ax, (title, series) in zip(axes[0], panels):
        for name, vals in series.items():
            vals = sorted(v for v in vals if v is not None and v > 0)
            if not vals:
                continue
            n = len(vals)
            # CDF on a "nines" axis: y = -log10(1 - F) shows p90/p99/p99.9 evenly spaced.
            ys = [-math.log10(max(1e-6, 1 - (i + 0.5) / n)) for i in range(n)]
            ax.plot(vals, ys, label=name, color=COLORS.get(name))
        ax.set_xscale("log")
        ax.set_yticks([0.301, 1, 2, 3])
        ax.set_yticklabels(["p50", "p90", "p99", "p99.9"])
        ax.set_xlabel(xlabel)
        ax.set_title(title)
        ax.grid(True, which="both", alpha=.3)
        ax.legend(fontsize=8)
    save_plot(plt, fig, path)


def plot_percentiles(path: Path, panels: list[tuple[str, dict[str, dict]]], ylabel: str):
    plt = plotting()
    if not plt:
        return
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4), squeeze=False)
    for ax, (title, series) in zip(axes[0], panels):
        names = list(series)
        width = 0.8 / max(1, len(names))
        for i, name in enumerate(names):
            vals = [series[name].get(q) for q, _ in QUANTILES]
            vals = [v if v is not None and not math.isnan(v) else 0 for v in vals]
            ax.bar([j + i * width for j in range(len(QUANTILES))], vals, width, label=name,
                   color=COLORS.get(name))
        ax.set_xticks([j + 0.4 - width / 2 for j in range(len(QUANTILES))])
        ax.set_xticklabels([q for q, _ in QUANTILES])
        ax.set_yscale("log")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(True, axis="y", which="both", alpha=.3)
        ax.legend(fontsize=8)
    save_plot(plt, fig, path)


# --------------------------------------------------------------------------- scenarios

def cpu_per_request(res: dict, args) -> float | None:
    """Proxy CPU time per request over warm-up + measurement: steadier than latency on a busy machine."""
    proc = res.get("proc")
    if not proc:
        return None
    sent = res["config"]["rate"] * (res["config"]["warmup_s"] + res["config"]["duration_s"])
    return 1e6 * proc["cpu_s"] / sent if sent else None


def scenario_overhead(work: Path, args, notes: list[str]) -> tuple[dict, str]:
    mock = Mock(work, "a", ["--ttft", "0", "--chunks", "1", "--chunk-delay", "0", "--log-size", "0"])
    t = Targets(work, [mock], ["simple-shuffle"], args, notes)
    runs: dict[str, dict[str, dict]] = {}
    saturated: dict[str, int] = {}
    for rate in args.rates:
        runs[str(rate)] = {}
        for name, url, pid in t.items:
            if name in saturated:
                continue
            out = work / f"overhead-{rate}-{name}.json"
            with Sampler(pid) as smp:
                res = loadgen(url, name, out, rate=rate, duration=args.duration, warmup=args.warmup,
                              timeout=10, cap=2000)
            res["proc"] = smp.summary()
            runs[str(rate)][name] = res
            if res["summary"]["errors"] > res["summary"]["requests"] / 2:
                saturated[name] = rate
                notes.append(f"{name} failed more than half of its requests at {rate}/s: not run at higher rates")
            log(f"overhead {rate}/s {name}: p50 {res['summary']['latency_ms']['p50']} "
                f"p99 {res['summary']['latency_ms']['p99']} ms, errors {res['summary']['errors']}")
    lines = [f"Non-stream chat completions, mock answers at once (TTFT 0); {args.duration:g} s measured "
             f"after {args.warmup:g} s warm-up per target and rate; latency from the scheduled send time, ms. "
             "Proxy CPU = utime+stime of its process tree during the run (warm-up included); loadgen lag = how "
             "late the generator itself picked requests up (large values mean the load machine stalled)."]
    rows = []
    for rate, by in runs.items():
        base = pct(by["direct"])
        for name, res in by.items():
            p = pct(res)
            s = res["summary"]
            added = "" if name == "direct" else " / ".join(fmt(p[q] - base[q]) for q in ("p50", "p99"))
            proc = res.get("proc") or {}
            rows.append([rate, name, *(fmt(p[q]) for q, _ in QUANTILES), added or "–", errors_of(res["summary"]),
                         fmt(s["achieved_send_rate"], 0), fmt(proc.get("cpu_pct"), 0) if proc else "–",
                         fmt(cpu_per_request(res, args), 0),
                         fmt(s["dispatch_lag_ms"]["p99"])])
    lines.append(md_table(["rate/s", "target", "p50", "p90", "p99", "p99.9", "added p50 / p99", "errors",
                           "sent/s", "proxy CPU %", "proxy CPU µs/request", "loadgen lag p99"], rows))
    # ratios and targets at each rate
    rrows, checks, ll_check = [], [], None
    for rate, by in runs.items():
        base = pct(by["direct"])
        # A target that failed most of its requests has no meaningful added latency at that rate.
        add = {n: {q: pct(r)[q] - base[q] for q in ("p50", "p99")} for n, r in by.items()
               if n != "direct" and r["summary"]["ok"] >= r["summary"]["requests"] / 2}
        tg = add.get("tailgate")
        for q in ("p50", "p99"):
            ng = add.get("nginx", {}).get(q)
            ll = add.get("litellm", {}).get(q)
            rrows.append([rate, q, fmt(tg[q]) if tg else "–", fmt(ng), fmt(ll),
                          fmt(tg[q] / ng, 2) if tg and ng and ng > 0 else "–",
                          fmt(ll / tg[q], 1) if tg and ll and tg[q] > 0 else "–"])
        if rate == str(max(args.rates)) and tg:
            checks.append([f"added latency p50 ≤ 0.1 ms at {rate}/s", f"{fmt(tg['p50'])} ms", verdict(tg["p50"] <= 0.1)])
            checks.append([f"added latency p99 ≤ 1 ms at {rate}/s", f"{fmt(tg['p99'])} ms", verdict(tg["p99"] <= 1)])
            if "nginx" in add:
                for q in ("p50", "p99"):
                    ng = add["nginx"][q]
                    checks.append([f"added {q} ≤ 2× nginx's at {rate}/s", f"{fmt(tg[q])} vs nginx {fmt(ng)} ms",
                                   verdict(tg[q] <= 2 * max(ng, 0))])
        if tg and "litellm" in add:  # kept for the highest rate LiteLLM sustained
            ll = add["litellm"]["p50"]
            ll_check = [f"added p50 ≥ 20× lower than LiteLLM's (at {rate}/s, the highest rate LiteLLM sustained)",
                        f"{fmt(tg['p50'])} vs LiteLLM {fmt(ll)} ms ({fmt(ll / tg['p50'], 0) if tg['p50'] > 0 else '∞'}×)",
                        verdict(ll >= 20 * tg["p50"])]
    if ll_check:
        checks.append(ll_check)
    lines += ["", "Added latency (target − direct, same run) and ratios, ms:",
              md_table(["rate/s", "quantile", "tailgate", "nginx", "litellm", "tailgate / nginx",
                        "litellm / tailgate"], rrows)]
    lines += ["", md_table(["target", "figure", "verdict"], checks)]
    rates = list(runs)
    plot_cdfs(PLOTS / "overhead-cdf.png",
              [(f"{r}/s non-stream", {n: res["samples"]["latency_ms"] for n, res in runs[r].items()}) for r in rates],
              "latency ms (log)")
    plot_percentiles(PLOTS / "overhead-percentiles.png",
                     [(f"{r}/s non-stream", {n: pct(res) for n, res in runs[r].items()}) for r in rates], "ms")
    data = {r: {n: trim(res) for n, res in by.items()} for r, by in runs.items()}
    return {"runs": data, "checks": checks}, "\n".join(lines)


def scenario_stream(work: Path, args, notes: list[str]) -> tuple[dict, str]:
    mock = Mock(work, "a", ["--ttft", "5ms", "--chunks", "64", "--chunk-delay", "20ms", "--log-size", "0"])
    t = Targets(work, [mock], ["simple-shuffle"], args, notes)
    runs = {}
    for name, url, pid in t.items:
        with Sampler(pid) as smp:
            res = loadgen(url, name, work / f"stream-{name}.json", rate=args.stream_rate, duration=args.duration,
                          warmup=args.warmup, stream=True, timeout=15, cap=4000)
        res["proc"] = smp.summary()
        runs[name] = res
        log(f"stream {name}: ttft p50 {res['summary']['ttft_ms']['p50']} gap p99 {res['summary']['gap_ms']['p99']}")
    base_t, base_g = pct(runs["direct"], "ttft_ms"), pct(runs["direct"], "gap_ms")
    rows, checks = [], []
    for name, res in runs.items():
        tt, gg = pct(res, "ttft_ms"), pct(res, "gap_ms")
        rows.append([name, *(fmt(tt[q]) for q in ("p50", "p99", "p99.9")),
                     "–" if name == "direct" else f"{fmt(tt['p50'] - base_t['p50'])} / {fmt(tt['p99'] - base_t['p99'])}",
                     *(fmt(gg[q]) for q in ("p50", "p99", "p99.9")),
                     "–" if name == "direct" else f"{fmt(gg['p50'] - base_g['p50'])} / {fmt(gg['p99'] - base_g['p99'])}",
                     errors_of(res["summary"])])
    if "tailgate" in runs:
        tt, gg = pct(runs["tailgate"], "ttft_ms"), pct(runs["tailgate"], "gap_ms")
        checks.append(["added TTFT p50 ≤ 0.2 ms", f"{fmt(tt['p50'] - base_t['p50'])} ms",
                       verdict(tt["p50"] - base_t["p50"] <= 0.2)])
        checks.append(["inter-chunk gap p99 within 0.1 ms of direct", f"{fmt(gg['p99'] - base_g['p99'])} ms",
                       verdict(gg["p99"] - base_g["p99"] <= 0.1)])
    n_streams = runs["direct"]["summary"]["requests"]
    text = "\n".join([
        f"Streams of 64 content chunks 20 ms apart (mock TTFT 5 ms), {args.stream_rate:g} new streams/s for "
        f"{args.duration:g} s after {args.warmup:g} s warm-up ({n_streams} measured streams, about "
        f"{args.stream_rate * 1.3:.0f} open at once); TTFT from the scheduled send time to the first content "
        "event; gaps between consecutive content events; ms.",
        md_table(["target", "TTFT p50", "TTFT p99", "TTFT p99.9", "added TTFT p50 / p99", "gap p50", "gap p99",
                  "gap p99.9", "added gap p50 / p99", "errors"], rows),
        "", md_table(["target", "figure", "verdict"], checks)])
    plot_cdfs(PLOTS / "stream-cdf.png",
              [("TTFT", {n: r["samples"]["ttft_ms"] for n, r in runs.items()}),
               ("inter-chunk gap", {n: r["samples"]["gap_ms"] for n, r in runs.items()})], "ms (log)")
    return {"runs": {n: trim(r) for n, r in runs.items()}, "checks": checks}, text


def scenario_concurrency(work: Path, args, notes: list[str]) -> tuple[dict, str]:
    chunks, delay_ms = 100, 100
    mock = Mock(work, "a", ["--ttft", "0", "--chunks", chunks, "--chunk-delay", f"{delay_ms}ms", "--log-size", "0"])
    t = Targets(work, [mock], ["simple-shuffle"], args, notes)
    runs = {}
    for name, url, pid in t.items:
        idle = proc_usage(pid)[0] if pid else None
        with Sampler(pid, 0.2) as smp:
            res = loadgen(url, name, work / f"conc-{name}.json", streams=args.streams, ramp=args.ramp,
                          stream=True, timeout=60, cap=args.streams)
        res["proc"] = smp.summary()
        if res["proc"]:
            res["proc"]["rss_idle_mib"] = idle
        runs[name] = res
        log(f"concurrency {name}: errors {res['summary']['errors']} proc {({k: v for k, v in (res['proc'] or {}).items() if k != 'series'})}")
    rows, checks = [], []
    for name, res in runs.items():
        s, pr = res["summary"], res.get("proc") or {}
        tt, gg = pct(res, "ttft_ms"), pct(res, "gap_ms")
        rows.append([name, s["requests"], s["max_in_flight"], errors_of(s), fmt(pr.get("rss_idle_mib"), 1),
                     fmt(pr.get("rss_peak_mib"), 1), pr.get("threads_peak", "–"), fmt(pr.get("cpu_s"), 1),
                     fmt(pr.get("cpu_pct"), 0), fmt(tt["p50"]), fmt(tt["p99"]), fmt(gg["p99"]), fmt(gg["p99.9"])])
    if "tailgate" in runs:
        s, pr = runs["tailgate"]["summary"], runs["tailgate"].get("proc") or {}
        checks.append([f"{args.streams} concurrent streams: RSS ≤ 100 MB", f"peak {fmt(pr.get('rss_peak_mib'), 1)} MiB",
                       verdict(pr.get("rss_peak_mib", 1e9) * 1.048576 <= 100)])
        checks.append([f"{args.streams} concurrent streams: no errors", errors_of(s), verdict(s["errors"] == 0)])
    text = "\n".join([
        f"{args.streams} streams opened over {args.ramp:g} s, each {chunks} chunks {delay_ms} ms apart "
        f"(≈{chunks * delay_ms / 1000:g} s long), all held to the end. RSS = VmRSS summed over the proxy's "
        "process tree (peak of 0.2 s samples); CPU = utime+stime over the run; ms for TTFT/gaps.",
        md_table(["target", "streams", "max open", "errors", "RSS idle MiB", "RSS peak MiB", "threads", "CPU s",
                  "CPU %", "TTFT p50", "TTFT p99", "gap p99", "gap p99.9"], rows),
        "", md_table(["target", "figure", "verdict"], checks)])
    plt = plotting()
    if plt:
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(10.4, 4))
        for name, res in runs.items():
            ser = (res.get("proc") or {}).get("series") or []
            if ser:
                a1.plot([r[0] for r in ser], [r[1] for r in ser], label=name, color=COLORS.get(name))
                a2.plot([r[0] for r in ser[1:]],
                        [100 * (b[2] - a[2]) / max(1e-9, b[0] - a[0]) for a, b in zip(ser, ser[1:])],
                        label=name, color=COLORS.get(name))
        a1.set_title(f"RSS during {args.streams} concurrent streams")
        a1.set_xlabel("s")
        a1.set_ylabel("MiB")
        a2.set_title("CPU (% of one core)")
        a2.set_xlabel("s")
        for a in (a1, a2):
            a.grid(alpha=.3)
            a.legend(fontsize=8)
        save_plot(plt, fig, PLOTS / "concurrency-rss-cpu.png")
    return {"runs": {n: trim(r) for n, r in runs.items()}, "checks": checks}, text


def wait_idle(mocks: list[Mock], limit: float = 15):
    end = time.monotonic() + limit
    while time.monotonic() < end and sum(m.stats()["in_flight"] for m in mocks):
        time.sleep(0.05)


def scenario_tail(work: Path, args, notes: list[str]) -> tuple[dict, str]:
    mocks = [Mock(work, n, ["--seed", i + 1, *TAIL_MOCK_ARGS, "--log-size", "0"]) for i, n in enumerate("abc")]
    cases = [(label, chain, True) for label, chain in TAIL_STRATEGIES]
    cases.append(("reference (no stragglers)", ["simple-shuffle"], False))
    runs, extra = {}, {}
    rate, dur = args.tail_rate, args.tail_duration
    for label, chain, stragglers in cases:
        for m in mocks:
            m.reset()
            if not stragglers:
                m.configure(straggler_prob=0)
        gw = start_tailgate(work, "tail-" + re.sub(r"[^a-z0-9]+", "-", label), mocks, chain)
        url = f"http://127.0.0.1:{gw.port}"
        try:
            # Warm-up fills the latency windows the hedge delay is read from; not counted.
            loadgen(url, label, work / "tail-warm.json", rate=rate, duration=args.tail_warmup, timeout=10)
            wait_idle(mocks)
            for m in mocks:
                m.reset()
                if not stragglers:
                    m.configure(straggler_prob=0)
            res = loadgen(url, label, work / f"tail-{len(runs)}.json", rate=rate, duration=dur, timeout=10)
            wait_idle(mocks)
            received = sum(m.stats()["received"] for m in mocks)
        finally:
            gw.stop()
        done = res["summary"]["requests"]
        extra[label] = 100 * (received - done) / done if done else float("nan")
        runs[label] = res
        log(f"tail {label}: p99 {res['summary']['latency_ms']['p99']} extra {extra[label]:.1f}%")
    ref = pct(runs["reference (no stragglers)"])
    rows, checks = [], []
    for label, res in runs.items():
        p = pct(res)
        rows.append([label, *(fmt(p[q], 1) for q, _ in QUANTILES), fmt(p["p99"] / ref["p99"], 2),
                     f"{extra[label]:.1f} %", errors_of(res["summary"])])
    if "hedge p95" in runs:
        p = pct(runs["hedge p95"])
        checks.append(["hedge(p95) p99 ≤ 1.5× reference p99",
                       f"{fmt(p['p99'], 1)} vs {fmt(ref['p99'], 1)} ms ({fmt(p['p99'] / ref['p99'], 2)}×)",
                       verdict(p["p99"] <= 1.5 * ref["p99"])])
        checks.append(["hedge(p95) extra upstream requests ≤ 8 %", f"{extra['hedge p95']:.1f} %",
                       verdict(extra["hedge p95"] <= 8)])
    # Race TTFT: three mocks with fixed TTFTs 20/35/50 ms; race over all three vs the fastest reached directly.
    race_mocks = [Mock(work, f"r{i}", ["--ttft", f"{ms}ms", "--chunks", "8", "--chunk-delay", "5ms", "--log-size", "0"])
                  for i, ms in enumerate((20, 35, 50))]
    gw = start_tailgate(work, "tail-race3", race_mocks,
                        ["health", "simple-shuffle", {"name": "race", "args": {"max_parallel": 3}}])
    race = {}
    try:
        for name, url in (("fastest direct", race_mocks[0].url), ("race(3) via tailgate", f"http://127.0.0.1:{gw.port}")):
            race[name] = loadgen(url, name, work / f"race-{len(race)}.json", rate=args.race_rate,
                                 duration=args.duration, warmup=args.warmup, stream=True, timeout=10)
    finally:
        gw.stop()
        for m in race_mocks:
            m.proc.stop()
    fd, rc = pct(race["fastest direct"], "ttft_ms"), pct(race["race(3) via tailgate"], "ttft_ms")
    race_rows = [[n, *(fmt(pct(r, "ttft_ms")[q]) for q, _ in QUANTILES), errors_of(r["summary"])] for n, r in race.items()]
    checks.append(["race TTFT within 1 ms of the fastest provider's (p50)", f"{rc['p50'] - fd['p50']:+.3f} ms "
                   f"(p99 {rc['p99'] - fd['p99']:+.3f} ms)", verdict(rc["p50"] - fd["p50"] <= 1)])
    text = "\n".join([
        f"Three mocks, lognormal TTFT median 50 ms sigma 0.5, 5 % stragglers ×10 (tools/tail_compare.py's "
        f"profile); non-stream at a fixed {rate:g} requests/s for {dur:g} s after a {args.tail_warmup:g} s "
        "warm-up per strategy (fresh gateway each); extra = upstream requests the mocks received beyond one per "
        "client request; ms.",
        md_table(["strategy", *(q for q, _ in QUANTILES), "p99 / reference", "extra upstream", "errors"], rows),
        "", f"Race TTFT: mocks with fixed TTFT 20 / 35 / 50 ms, streams at {args.race_rate:g}/s, race over all "
        "three (`max_parallel: 3`) vs the 20 ms mock reached directly; ms.",
        md_table(["target", *(q for q, _ in QUANTILES), "errors"], race_rows),
        "", md_table(["target", "figure", "verdict"], checks)])
    plot_cdfs(PLOTS / "tail-cdf.png", [("tail strategies, non-stream", {n: r["samples"]["latency_ms"] for n, r in runs.items()}),
                                       ("race TTFT", {n: r["samples"]["ttft_ms"] for n, r in race.items()})],
              "ms (log)")
    return {"runs": {n: trim(r) for n, r in runs.items()}, "extra_pct": extra,
            "race": {n: trim(r) for n, r in race.items()}, "checks": checks}, text


def scenario_outage(work: Path, args, notes: list[str]) -> tuple[dict, str]:
    mocks = [Mock(work, n, ["--ttft", "20ms", "--chunks", "1", "--chunk-delay", "0", "--log-size", "100000"])
             for n in "abc"]
    # simple-shuffle spreads the load over all three, so the failing one carries a third of it.
    t = Targets(work, mocks, ["health", "simple-shuffle"], args, notes, kinds=("tailgate", "nginx"))
    # The same chain with retries on, as a production config would have it.
    gw = start_tailgate(work, "tailgate-retries", mocks, ["health", "simple-shuffle"], {"num_retries": 2})
    items = [t.items[0], ("tailgate num_retries 2", f"http://127.0.0.1:{gw.port}", gw.p.pid), *t.items[1:]]
    rate, dur, at = args.outage_rate, args.outage_duration, args.outage_at
    runs, route = {}, {}
    for name, url, _pid in items:
        for m in mocks:
            m.reset()
        loadgen(url, name, work / "outage-warm.json", rate=rate, duration=2, timeout=10)
        wait_idle(mocks)
        for m in mocks:
            m.reset()
        out = work / f"outage-{name}.json"
        p, bound = loadgen(url, name, out, rate=rate, duration=dur, timeout=10, wait=False)
        t_start = time.monotonic() + 0.02  # the loadgen's first scheduled send
        time.sleep(max(0, t_start + at - time.monotonic()))
        inject_ms = mocks[1].stats()["now_ms"]
        mocks[1].configure(fail_rate=1, fail_status=500)
        res = finish_loadgen(p, bound, out)
        wait_idle(mocks)
        reqs = [r for r in mocks[1].requests(100000) if r["outcome"] == "failed"]
        fails = sorted(r["received_ms"] - inject_ms for r in reqs)
        # The first burst of failures (until a 1 s pause) is what it took to route around the
        # deployment; later isolated ones are the health plugin's recovery probes.
        burst = []
        for f in fails:
            if burst and f - burst[-1] > 1000:
                break
            burst.append(f)
        never = bool(burst) and burst[-1] > (dur - at) * 1000 - 1000  # still failing at the end
        route[name] = {"failed_upstream": len(fails), "burst": len(burst), "never": never,
                       "route_around_ms": None if never or not burst else burst[-1],
                       "probes": len(fails) - len(burst)}
        runs[name] = res
        log(f"outage {name}: client errors {res['summary']['errors']} route {route[name]}")
    rows = []
    for name, res in runs.items():
        s = res["samples"]
        before = sorted(l for tt, l in zip(s["t_ms"], s["latency_ms"]) if tt < at * 1000 and l >= 0)
        after = sorted(l for tt, l in zip(s["t_ms"], s["latency_ms"]) if tt >= at * 1000 and l >= 0)
        r = route[name]
        rows.append([name, res["summary"]["requests"], errors_of(res["summary"]), fmt(quantile(before, .99), 1),
                     fmt(quantile(after, .99), 1), fmt(quantile(after, .999), 1), r["failed_upstream"], r["burst"],
                     "never" if r["never"] else fmt(r["route_around_ms"], 0), r["probes"]])
    text = "\n".join([
        f"Three mocks (TTFT 20 ms), non-stream at {rate:g}/s for {dur:g} s; at t = {at:g} s mock b starts "
        "answering every request with 500 (POST /mock/config fail_rate 1). Tailgate chain [health, simple-shuffle] with "
        "the router's defaults (num_retries 0) and again with num_retries 2; health defaults (allowed_fails 3, "
        "cooldown 5 s); nginx with default proxy_next_upstream (no retry on 500). "
        "Route-around = time from the injection to the last failed upstream request of the first burst "
        "(later ones are the health plugin's recovery probes).",
        md_table(["target", "requests", "client errors", "p99 before", "p99 after", "p99.9 after",
                  "upstream 500s", "in first burst", "route-around ms", "later probes"], rows)])
    plt = plotting()
    if plt:
        fig, axes = plt.subplots(1, len(runs), figsize=(5.2 * len(runs), 4), squeeze=False)
        for ax, (name, res) in zip(axes[0], runs.items()):
            s = res["samples"]
            okp = [(tt / 1000, l) for tt, l, e in zip(s["t_ms"], s["latency_ms"], s["err"]) if e == 0]
            bad = [tt / 1000 for tt, e in zip(s["t_ms"], s["err"]) if e != 0]
            ax.scatter([a for a, _ in okp], [b for _, b in okp], s=2, color=COLORS.get(name), label="ok")
            if bad:
                ax.scatter(bad, [1] * len(bad), s=4, color="tab:red", marker="x", label="error (at y=1)")
            ax.axvline(at, color="k", ls="--", lw=1, label="mock b fails")
            ax.set_yscale("log")
            ax.set_xlabel("scheduled send time, s")
            ax.set_ylabel("latency ms")
            ax.set_title(f"outage: {name}")
            ax.grid(alpha=.3)
            ax.legend(fontsize=8)
        save_plot(plt, fig, PLOTS / "outage-timeline.png")
    return {"runs": {n: trim(r) for n, r in runs.items()}, "route": route}, text


SCENARIOS = {"overhead": scenario_overhead, "stream": scenario_stream, "concurrency": scenario_concurrency,
             "tail": scenario_tail, "outage": scenario_outage}


def machine() -> dict:
    cpu = ""
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "kernel": platform.release(),
            "loadavg_start": open("/proc/loadavg").read().split()[:3]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("scenario", choices=[*SCENARIOS, "all"])
    ap.add_argument("--rates", type=lambda s: [int(x) for x in s.split(",")], default=[100, 500, 1000, 2000],
                    help="overhead rates, comma separated (default 100,500,1000,2000)")
    ap.add_argument("--duration", type=float, default=10, help="measured seconds per run (default 10)")
    ap.add_argument("--warmup", type=float, default=2, help="warm-up seconds per run (default 2)")
    ap.add_argument("--stream-rate", type=float, default=100, help="new streams per second (default 100)")
    ap.add_argument("--streams", type=int, default=2000, help="concurrency scenario streams (default 2000)")
    ap.add_argument("--ramp", type=float, default=3, help="seconds over which they are opened (default 3)")
    ap.add_argument("--tail-rate", type=float, default=100, help="tail scenario requests/s (default 100)")
    ap.add_argument("--tail-duration", type=float, default=20, help="tail scenario measured seconds (default 20)")
    ap.add_argument("--tail-warmup", type=float, default=4, help="tail scenario warm-up seconds (default 4)")
    ap.add_argument("--race-rate", type=float, default=50, help="race TTFT streams/s (default 50)")
    ap.add_argument("--outage-rate", type=float, default=200, help="outage scenario requests/s (default 200)")
    ap.add_argument("--outage-duration", type=float, default=20, help="outage scenario seconds (default 20)")
    ap.add_argument("--outage-at", type=float, default=5, help="second at which mock b starts failing (default 5)")
    ap.add_argument("--tailgate-log-level", default="warn",
                    help="Tailgate's log_level: warn (default) has no per-request line, like nginx with its access "
                         "log off; info adds one line per request")
    ap.add_argument("--no-litellm", dest="litellm", action="store_false", help="skip LiteLLM")
    ap.add_argument("--no-litellm-install", dest="install_litellm", action="store_false",
                    help="use .venv-litellm only if it already exists")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (configs, logs, raw results)")
    args = ap.parse_args()
    global TAILGATE_LOG_LEVEL
    TAILGATE_LOG_LEVEL = args.tailgate_log_level
    for b in (TAILGATE, MOCK, LOADGEN):
        if not b.exists():
            print(f"{b} not found: build first (tools/bench/run.sh does)", file=sys.stderr)
            return 2
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # children inherit it (2,000 streams = 4,000+ fds)
    RESULTS.mkdir(parents=True, exist_ok=True)
    names = list(SCENARIOS) if args.scenario == "all" else [args.scenario]
    rc = 0
    for name in names:
        work = Path(tempfile.mkdtemp(prefix=f"tailgate-bench-{name}-"))
        notes: list[str] = []
        t0 = time.monotonic()
        info = machine()
        log(f"scenario {name} (work dir {work})")
        try:
            data, text = SCENARIOS[name](work, args, notes)
        except Exception as e:  # report and go on with the next scenario; processes are stopped below
            log(f"scenario {name} failed: {e!r}\n{traceback.format_exc()}")
            rc = 1
            continue
        finally:
            stop_all()
        info["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
        info["run_s"] = round(time.monotonic() - t0, 1)
        if _LITELLM.get("version"):
            info["litellm_version"] = _LITELLM["version"]
        header = (f"## {name}\n\nRun {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {info['run_s']} s; "
                  f"{info['cores']} × {info['cpu']}; load average {' '.join(info['loadavg_start'])} at start, "
                  f"{' '.join(info['loadavg_end'])} at end"
                  + (f"; LiteLLM {info['litellm_version']}" if "litellm_version" in info else "")
                  + f"; Tailgate log_level {TAILGATE_LOG_LEVEL}.\n")
        md = header + "\n" + text + ("\n\n" + "\n".join(f"- {n}" for n in notes) if notes else "") + "\n"
        (RESULTS / f"{name}.md").write_text(md)
        with open(RESULTS / f"{name}.json", "w") as f:
            json.dump({"scenario": name, "machine": info, "notes": notes, **data}, f, separators=(",", ":"))
        print(md, flush=True)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
