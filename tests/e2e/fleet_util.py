"""A fleet for the shared-state tests: tools/scripts/fleet.sh (redis-server +
N replicas on loopback) started as a child process, with handles on Redis and
on each replica (HTTP, OpenAI client, Prometheus metrics), and the few
operations the tests need: kill / restart / pause Redis, start a late replica.
"""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import openai

from conftest import REPO, BUILD_DIR, TAILGATE, Proc, wait_for

FLEET_SH = REPO / "tools" / "scripts" / "fleet.sh"
MASTER = "sk-fleet-master"
H = {"Authorization": f"Bearer {MASTER}"}


def fleet_config(model_list: list[dict], router_settings: dict | None = None,
                 shared_state: dict | None = None) -> dict:
    """A config whose Redis endpoint and replica id come from fleet.sh's environment."""
    rs = {"routing_strategy": "simple-shuffle", "redis_url": "os.environ/TAILGATE_REDIS_URL"}
    rs.update(router_settings or {})
    ss = {"replica_id": "os.environ/TAILGATE_REPLICA_ID"}
    ss.update(shared_state or {})
    return {"model_list": model_list, "router_settings": rs, "shared_state": ss,
            "general_settings": {"master_key": MASTER}}


def redis_cmd(port: int, *args: str, timeout: float = 2.0):
    """One Redis command over a fresh socket (RESP by hand: no client library needed)."""
    out = f"*{len(args)}\r\n".encode() + b"".join(
        f"${len(a.encode())}\r\n".encode() + a.encode() + b"\r\n" for a in args)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(out)
        f = s.makefile("rb")
        return _read_resp(f)


def _read_resp(f):
    line = f.readline()
    if not line:
        raise ConnectionError("redis closed the connection")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        raise RuntimeError(rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)[:-2]
        return data.decode(errors="replace")
    if kind == b"*":
        n = int(rest)
        return None if n < 0 else [_read_resp(f) for _ in range(n)]
    raise RuntimeError(f"unexpected RESP line {line!r}")


class Replica:
    def __init__(self, name: str, port: int, pid: int, log: Path):
        self.name, self.port, self.pid, self.log = name, port, pid, log
        self.url = f"http://127.0.0.1:{port}"
        self.http = httpx.Client(base_url=self.url, timeout=30)

    def client(self, **kw) -> openai.OpenAI:
        kw.setdefault("max_retries", 0)
        kw.setdefault("timeout", 30)
        return openai.OpenAI(base_url=self.url + "/v1", api_key=MASTER, **kw)

    def admin(self, method: str, path: str, body=None) -> httpx.Response:
        return self.http.request(method, path, headers=H, json=body)

    def metrics(self) -> str:
        r = self.http.get("/metrics")
        r.raise_for_status()
        return r.text

    def metric(self, name: str, **labels) -> float:
        """Sum of the samples of `name` whose labels include `labels`."""
        total = 0.0
        for line in self.metrics().splitlines():
            if not line.startswith(name + "{") and not line.startswith(name + " "):
                continue
            m = re.match(r"(\w+)(\{[^}]*\})?\s+(\S+)$", line)
            if not m or m.group(1) != name:
                continue
            got = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
            if all(got.get(k) == v for k, v in labels.items()):
                total += float(m.group(3))
        return total

    def health(self, deployment: str) -> str:
        for state in ("healthy", "cooling", "half_open"):
            if self.metric("tailgate_deployment_state", deployment=deployment, state=state) == 1:
                return state
        return "?"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def close(self):
        self.http.close()


def start_replica_process(name: str, config_path: Path, workdir: Path, redis_url: str) -> tuple[Proc, Replica]:
    """One gateway replica outside fleet.sh: its own state dir and log under workdir."""
    state = workdir / name
    state.mkdir(parents=True, exist_ok=True)
    log = workdir / f"{name}.log"
    env = {"TAILGATE_REDIS_URL": redis_url, "TAILGATE_REPLICA_ID": name}
    p = Proc([TAILGATE, "--config", config_path, "--host", "127.0.0.1", "--port", "0", "--state-dir", state],
             log, env=env)
    return p, Replica(name, p.port, p.p.pid, log)


class Fleet:
    """tools/scripts/fleet.sh as a child process; stops everything on close()."""

    def __init__(self, config: dict, workdir: Path, replicas: int = 3):
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.config_path = workdir / "fleet.yaml"
        self.config_path.write_text(json.dumps(config, indent=2))
        self.dir = workdir / "fleet"
        self.proc = Proc(["bash", FLEET_SH, "--config", self.config_path, "--replicas", replicas,
                          "--dir", self.dir, "--build", BUILD_DIR], workdir / "fleet.log", expect_listen=False)
        self.replicas: list[Replica] = []
        self.extra: list[Proc] = []
        self.redis_port = self.redis_pid = None
        self._read_until_ready()

    def _read_until_ready(self):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                line = self.proc._q.get(timeout=0.5)
            except Exception:
                continue
            if line is None:
                raise RuntimeError(f"fleet.sh exited: {self.proc.log_text()}")
            if m := re.match(r"redis 127\.0\.0\.1:(\d+) pid (\d+)", line):
                self.redis_port, self.redis_pid = int(m.group(1)), int(m.group(2))
            elif m := re.match(r"replica (\S+) 127\.0\.0\.1:(\d+) pid (\d+)", line):
                name = m.group(1)
                self.replicas.append(Replica(name, int(m.group(2)), int(m.group(3)), self.dir / f"{name}.log"))
            elif line == "fleet ready":
                self.wait_all_up()
                return
        raise RuntimeError(f"fleet not ready after 30 s: {self.proc.stdout_lines} {self.proc.log_text()}")

    def __getitem__(self, i: int) -> Replica:
        return self.replicas[i]

    def wait_all_up(self, timeout: float = 10.0, replicas: list[Replica] | None = None):
        for r in replicas or self.replicas:
            wait_for(lambda: r.metric("tailgate_shared_state_up") == 1, timeout=timeout,
                     what=f"{r.name} connected to Redis")

    def redis(self, *args: str):
        return redis_cmd(self.redis_port, *args)

    # -- Redis faults -----------------------------------------------------
    def kill_redis(self):
        os.kill(self.redis_pid, signal.SIGKILL)
        wait_for(lambda: not _pid_alive(self.redis_pid), timeout=5, what="redis-server gone")

    def restart_redis(self):
        """A fresh, empty redis-server on the same port (as after a crash without persistence)."""
        p = subprocess.Popen(["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1",
                              "--save", "", "--appendonly", "no", "--logfile", str(self.dir / "redis-2.log")],
                             start_new_session=True)
        self.redis_pid = p.pid
        self._restarted = p
        wait_for(lambda: _answers(self.redis_port), timeout=10, what="redis-server answering")

    def pause_redis(self):
        os.kill(self.redis_pid, signal.SIGSTOP)

    def resume_redis(self):
        os.kill(self.redis_pid, signal.SIGCONT)

    # -- a replica started later --------------------------------------------
    def start_replica(self, name: str) -> Replica:
        p, r = start_replica_process(name, self.config_path, self.dir, f"redis://127.0.0.1:{self.redis_port}")
        self.extra.append(p)
        self.replicas.append(r)
        return r

    def close(self):
        for r in self.replicas:
            r.close()
        for p in self.extra:
            p.stop()
        if getattr(self, "_restarted", None) is not None:
            try:
                os.kill(self.redis_pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
            self._restarted.terminate()
            self._restarted.wait(timeout=10)
        elif self.redis_pid and _pid_alive(self.redis_pid):
            os.kill(self.redis_pid, signal.SIGCONT)  # a paused Redis must be able to stop
        self.proc.stop(timeout=15)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (killed, not reaped yet by fleet.sh) is gone for our purposes.
    # The process may vanish between open and read (ESRCH), which also means gone.
    # The state follows the last ')' since the command name may hold spaces.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    fields = stat[stat.rfind(")") + 1:].split()
    return bool(fields) and fields[0] != "Z"


def _answers(port: int) -> bool:
    try:
        return redis_cmd(port, "PING", timeout=0.5) == "PONG"
    except OSError:
        return False
