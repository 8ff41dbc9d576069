"""A throwaway PostgreSQL server for the end-to-end suite.

Debian's `postgresql` binaries (initdb, postgres) in a temporary directory, on a
free loopback port, with trust authentication for loopback only. PostgreSQL
refuses to run as root, so as root the server runs as an unprivileged system
user (created once, `tailgate-pg`) through setpriv; as anyone else it runs as
that user. One server serves the whole session; each test gets a database of
its own (`fresh_database`).
"""
from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

PG_BIN = Path(os.environ.get("TAILGATE_PG_BIN", "/usr/lib/postgresql/15/bin"))
PG_USER = "tailgate-pg"


def available() -> bool:
    return (PG_BIN / "initdb").exists() and (PG_BIN / "postgres").exists() and shutil.which("psql") is not None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_user_prefix() -> list[str]:
    """How to run the server's commands: directly, or (as root) as PG_USER."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam(PG_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", PG_USER],
                       check=True, capture_output=True)
    return ["setpriv", f"--reuid={PG_USER}", f"--regid={PG_USER}", "--init-groups", "--"]


class PgServer:
    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="tailgate-pg-"))
        self.data = self.dir / "data"
        self.port = _free_port()
        self.prefix = _as_user_prefix()
        if self.prefix:
            shutil.chown(self.dir, PG_USER, PG_USER)
        self.log_path = self.dir / "postgres.log"
        self.proc: subprocess.Popen | None = None
        subprocess.run(self.prefix + [str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres",
                                      "--auth=trust", "--no-sync", "-E", "UTF8"],
                       check=True, capture_output=True)
        self.start()

    # -- lifecycle ------------------------------------------------------
    def start(self, timeout: float = 30.0):
        log = open(self.log_path, "ab")
        if self.prefix:
            shutil.chown(self.log_path, PG_USER, PG_USER)
        self.proc = subprocess.Popen(
            self.prefix + [str(PG_BIN / "postgres"), "-D", str(self.data), "-p", str(self.port),
                           "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.dir}",
                           "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
                           "-c", "max_connections=200"],
            stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"postgres exited with {self.proc.returncode}:\n{self.log()}")
            r = subprocess.run(["pg_isready", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres"],
                               capture_output=True)
            if r.returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError(f"postgres did not accept connections within {timeout}s:\n{self.log()}")

    def stop(self):
        """Fast shutdown: every client connection is cut at once (an outage)."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except FileNotFoundError:
            return ""

    # -- databases ------------------------------------------------------
    def psql(self, sql: str, database: str = "postgres") -> str:
        r = subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", database,
                            "-v", "ON_ERROR_STOP=1", "-At", "-c", sql], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"psql failed: {r.stderr}")
        return r.stdout

    def fresh_database(self) -> str:
        name = "t_" + uuid.uuid4().hex[:12]
        self.psql(f"CREATE DATABASE {name}")
        return name

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"
