"""Fixtures for the end-to-end suite.

Everything runs on 127.0.0.1 with port 0: the mock providers (`tailgate-mock`)
and the gateway (`tailgate`) print `listening on HOST:PORT` on stdout when
ready, which is how the fixtures learn their ports. Configs are written as JSON
(a subset of YAML) into the test's temporary directory. Every process started
here is registered and stopped (terminate, wait, kill on timeout) by the
fixture that started it, and again at session end as a safety net.
"""
from __future__ import annotations

import atexit
import json
import os
import queue
import re
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterable

import httpx
import openai
import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD_DIR = Path(os.environ.get("TAILGATE_BUILD_DIR", REPO / "build")).resolve()
BIN_DIR = BUILD_DIR / "bin"
TAILGATE = BIN_DIR / "tailgate"
MOCK = BIN_DIR / "tailgate-mock"
PLUGIN_DIR = BUILD_DIR / "lib" / "tailgate" / "plugins"

START_TIMEOUT = float(os.environ.get("TAILGATE_START_TIMEOUT", "10"))  # sanitizer builds start slower


def pytest_sessionstart(session):
    for b in (TAILGATE, MOCK):
        if not b.exists():
            raise pytest.UsageError(f"{b} not found: build first or set TAILGATE_BUILD_DIR")


# --------------------------------------------------------------------------
# processes
# --------------------------------------------------------------------------

_ALL: list["Proc"] = []


class Proc:
    """A child process that announces `listening on HOST:PORT` on stdout."""

    def __init__(self, argv: list[str], log_path: Path, env: dict | None = None,
                 expect_listen: bool = True, cwd: str | None = None):
        self.argv = [str(a) for a in argv]
        self.log_path = Path(log_path)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "wb")
        full_env = dict(os.environ)
        if env:
            full_env.update(env)
        self.p = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=self._log, env=full_env,
                                  cwd=cwd, start_new_session=True)
        _ALL.append(self)
        self.stdout_lines: list[str] = []
        self._q: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.host = None
        self.port = None
        if expect_listen:
            self._wait_listening()

    def _read(self):
        for raw in iter(self.p.stdout.readline, b""):
            line = raw.decode(errors="replace").rstrip("\n")
            self.stdout_lines.append(line)
            self._q.put(line)
        self._q.put(None)

    def _wait_listening(self):
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self.stop()
                raise RuntimeError(f"{self.argv[0]} did not print 'listening on' within {START_TIMEOUT}s; "
                                   f"log:\n{self.log_text()}")
            try:
                line = self._q.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                rc = self.p.wait(timeout=5)
                raise RuntimeError(f"{' '.join(self.argv)} exited with {rc} before listening; "
                                   f"stdout: {self.stdout_lines}\nlog:\n{self.log_text()}")
            m = re.match(r"listening on (\S+):(\d+)\s*$", line)
            if m:
                self.host, self.port = m.group(1), int(m.group(2))
                return

    def alive(self) -> bool:
        return self.p.poll() is None

    def log_text(self) -> str:
        try:
            self._log.flush()
        except ValueError:
            pass
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self, timeout: float = 5.0) -> int | None:
        if self.p.poll() is None:
            try:
                self.p.send_signal(signal.SIGTERM)
                self.p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(timeout=timeout)
            except ProcessLookupError:
                pass
        try:
            self._log.close()
        except Exception:
            pass
        if self in _ALL:
            _ALL.remove(self)
        return self.p.returncode


def _reap_all():
    for p in list(_ALL):
        p.stop()


# Last resort if the session is torn down abnormally (fixtures normally do it).
atexit.register(_reap_all)


@pytest.fixture(scope="session", autouse=True)
def _reap_everything():
    yield
    _reap_all()


# --------------------------------------------------------------------------
# mock provider
# --------------------------------------------------------------------------

class Mock:
    def __init__(self, name: str, workdir: Path, args: Iterable[str] = (), port: int = 0):
        self.name = name
        self.proc = Proc([MOCK, "--port", str(port), "--name", name, "--threads", "2", *args],
                         workdir / f"mock-{name}.log")
        self.port = self.proc.port
        self.url = f"http://127.0.0.1:{self.port}"
        self.base_url = self.url + "/v1"
        self._http = httpx.Client(base_url=self.url, timeout=10)

    # control API
    def stats(self) -> dict:
        r = self._http.get("/mock/stats")
        r.raise_for_status()
        return r.json()

    def requests(self, limit: int = 1000) -> list[dict]:
        r = self._http.get("/mock/requests", params={"limit": limit})
        r.raise_for_status()
        return r.json()

    def api_requests(self) -> list[dict]:
        return [r for r in self.requests() if not r["path"].startswith("/mock")]

    def last_body(self) -> dict:
        reqs = self.api_requests()
        assert reqs, f"mock {self.name} received no API request"
        return json.loads(reqs[-1]["body"])

    def configure(self, **knobs) -> dict:
        r = self._http.post("/mock/config", json=knobs)
        assert r.status_code == 200, r.text
        return r.json()

    def reset(self):
        r = self._http.post("/mock/reset")
        r.raise_for_status()

    def received(self) -> int:
        return self.stats()["received"]

    def stop(self):
        self._http.close()
        self.proc.stop()


# --------------------------------------------------------------------------
# gateway
# --------------------------------------------------------------------------

def deployment(group: str, mock: "Mock | None" = None, model: str = "openai/upstream-model",
               api_base: str | None = None, api_key: str = "sk-mock", model_info: dict | None = None,
               **params) -> dict:
    """One model_list entry pointing at `mock` (or at `api_base`)."""
    lp = {"model": model, "api_base": api_base or mock.base_url, "api_key": api_key}
    lp.update(params)
    d = {"model_name": group, "litellm_params": lp}
    if model_info:
        d["model_info"] = model_info
    return d


class Gateway:
    def __init__(self, config: dict | str, workdir: Path, env: dict | None = None, name: str = "gateway"):
        workdir.mkdir(parents=True, exist_ok=True)
        self.config_path = workdir / f"{name}.yaml"
        text = config if isinstance(config, str) else json.dumps(config, indent=2)
        self.config_path.write_text(text)
        self.proc = Proc([TAILGATE, "--config", self.config_path, "--host", "127.0.0.1", "--port", "0"],
                         workdir / f"{name}.log", env=env)
        self.port = self.proc.port
        self.url = f"http://127.0.0.1:{self.port}"
        self.base_url = self.url + "/v1"
        self.http = httpx.Client(base_url=self.url, timeout=30)

    def client(self, api_key: str = "sk-anything", **kw) -> openai.OpenAI:
        kw.setdefault("max_retries", 0)
        kw.setdefault("timeout", 30)
        return openai.OpenAI(base_url=self.base_url, api_key=api_key, **kw)

    def async_client(self, api_key: str = "sk-anything", **kw) -> openai.AsyncOpenAI:
        kw.setdefault("max_retries", 0)
        kw.setdefault("timeout", 30)
        return openai.AsyncOpenAI(base_url=self.base_url, api_key=api_key, **kw)

    def log_text(self) -> str:
        return self.proc.log_text()

    def alive(self) -> bool:
        return self.proc.alive()

    def assert_healthy(self):
        assert self.alive(), f"gateway died; log:\n{self.log_text()[-4000:]}"
        r = httpx.get(self.url + "/health/liveliness", timeout=5)  # fresh connection
        assert r.status_code == 200, r.text

    def stop(self) -> int | None:
        self.http.close()
        return self.proc.stop()


def make_config(model_list: list[dict], router_settings: dict | None = None,
                general_settings: dict | None = None) -> dict:
    cfg: dict[str, Any] = {"model_list": model_list,
                           "router_settings": {"routing_strategy": "simple-shuffle"}}
    if router_settings:
        cfg["router_settings"].update(router_settings)
    if general_settings:
        cfg["general_settings"] = general_settings
    return cfg


class Stack:
    """Owns mocks and gateways started for one scope; stops them all."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.mocks: list[Mock] = []
        self.gateways: list[Gateway] = []

    def mock(self, name: str, *args: str, port: int = 0) -> Mock:
        m = Mock(name, self.workdir, args, port=port)
        self.mocks.append(m)
        return m

    def gateway(self, config: dict | str, env: dict | None = None, name: str | None = None) -> Gateway:
        g = Gateway(config, self.workdir, env=env, name=name or f"gateway{len(self.gateways)}")
        self.gateways.append(g)
        return g

    def reset_mocks(self):
        for m in self.mocks:
            if m.proc.alive():
                m.reset()

    def close(self):
        for g in self.gateways:
            g.stop()
        for m in self.mocks:
            m.stop()


@pytest.fixture
def stack(tmp_path):
    """Per-test mocks and gateways."""
    s = Stack(tmp_path)
    yield s
    s.close()


@pytest.fixture(scope="module")
def module_stack(tmp_path_factory, request):
    """Mocks and gateways shared by one test module (reset between tests by the module)."""
    s = Stack(tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1]))
    yield s
    s.close()


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

def wait_for(pred: Callable[[], Any], timeout: float = 5.0, interval: float = 0.02, what: str = "condition"):
    """Polls `pred` until it returns a truthy value; returns it or fails."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = pred()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
        time.sleep(interval)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def assert_openai_error_shape(resp: httpx.Response, status: int | None = None) -> dict:
    if status is not None:
        assert resp.status_code == status, (resp.status_code, resp.text)
    assert resp.headers.get("content-type", "").startswith("application/json"), resp.headers
    body = resp.json()
    assert isinstance(body, dict) and set(body) == {"error"}, body
    err = body["error"]
    for k in ("message", "type", "param", "code"):
        assert k in err, (k, body)
    assert isinstance(err["message"], str) and err["message"], body
    return err


def mock_words(name: str, chunks: int = 8) -> str:
    return " ".join(f"{name}-{i}" for i in range(chunks))


USER_HI = [{"role": "user", "content": "hello there"}]


def plugin_available(name: str) -> bool:
    """True when strategy plugin `name` is built (or on TAILGATE_PLUGIN_PATH)."""
    dirs = [PLUGIN_DIR] + [Path(d) for d in os.environ.get("TAILGATE_PLUGIN_PATH", "").split(":") if d]
    return any((d / f"{name}.so").exists() for d in dirs)


def needs_plugins(*names: str):
    """Marker: skip the test while a strategy plugin it configures is not built yet."""
    missing = [n for n in names if not plugin_available(n)]
    return pytest.mark.skipif(bool(missing), reason=f"strategy plugin(s) not built: {', '.join(missing)}")


def open_fds(pid: int) -> int:
    """Open descriptors of a process, not counting eventfds: each gateway pool thread
    keeps one for its life (its wake-up for every request it serves), so which thread
    served a request would move the count. Sockets, files and pipes must come back."""
    n = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            n += os.readlink(f"/proc/{pid}/fd/{fd}") != "anon_inode:[eventfd]"
        except OSError:
            continue
    return n


def quantile(values: list[float], q: float) -> float:
    """Nearest-rank quantile (q in [0, 1]) of a non-empty list."""
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(-(-q * len(s) // 1)) - 1))
    return s[k]


class MockClock:
    """Maps one mock's steady-clock ms (received_ms, finished_ms, cancel_ms, now_ms)
    onto this process's time.monotonic() seconds. The offset is measured around a
    /mock/stats call (the fastest of a few), good to about a millisecond on loopback."""

    def __init__(self, mock: "Mock", probes: int = 5):
        best = None
        for _ in range(probes):
            t0 = time.monotonic()
            now_ms = mock.stats()["now_ms"]
            t1 = time.monotonic()
            if best is None or t1 - t0 < best[0]:
                best = (t1 - t0, (t0 + t1) / 2 - now_ms / 1000)
        self.offset = best[1]

    def __call__(self, mock_ms: float) -> float:
        return mock_ms / 1000 + self.offset


# --------------------------------------------------------------------------
# databases for virtual keys and spend (tests/e2e/pg.py)
# --------------------------------------------------------------------------

@pytest.fixture(scope="session")
def pg_server():
    """One PostgreSQL server for the session, started on first use."""
    import pg
    if not pg.available():
        pytest.skip("PostgreSQL binaries not installed (Debian: postgresql)")
    server = pg.PgServer()
    yield server
    server.close()


class KeyDatabase:
    """Where a test's gateway keeps keys and spend: a SQLite file or a PostgreSQL database."""

    def __init__(self, backend: str, url: str, query: Callable[[str], list[tuple]]):
        self.backend = backend
        self.url = url
        self.query = query  # SQL -> rows, read straight from the database


@pytest.fixture(params=["sqlite", "postgres"])
def key_db(request, tmp_path):
    """A fresh database on each backend: the tests that take it run twice."""
    if request.param == "sqlite":
        import sqlite3
        path = tmp_path / "keys.db"

        def query(sql: str) -> list[tuple]:
            with sqlite3.connect(path) as c:
                return c.execute(sql).fetchall()
        return KeyDatabase("sqlite", f"sqlite://{path}", query)
    server = request.getfixturevalue("pg_server")
    name = server.fresh_database()

    def query(sql: str) -> list[tuple]:
        out = server.psql(sql, name)
        return [tuple(line.split("|")) for line in out.splitlines() if line]
    return KeyDatabase("postgres", server.url(name), query)
