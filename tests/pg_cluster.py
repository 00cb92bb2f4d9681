"""A throwaway PostgreSQL cluster for tests, on 127.0.0.1 and a free port.

The Debian binaries refuse to run as root, so as root initdb and pg_ctl run as the `postgres` user
(`runuser -u postgres --`) in a temp dir that user owns and can reach (under /tmp: not under root's
home, not under pytest's 0700 tmp dirs). Durability is switched off; a start/stop round trip takes
about 1.5 s. See /work/shared/MACHINE-NOTES.md.

    with ThrowawayPostgres() as pg:
        url = pg.create_database("app")  # postgresql+psycopg://postgres@127.0.0.1:PORT/app

No pytest here: callers skip with the reason from `ThrowawayPostgres.available()`.
"""

from __future__ import annotations

import atexit
import glob
import importlib.util
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

PG_GLOB = "/usr/lib/postgresql/*/bin"
PG_USER = "postgres"
HOST = "127.0.0.1"
START_ATTEMPTS = 3  # a free port can be taken between probing it and the server binding it
LOG_TAIL_LINES = 30
_DB_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


def find_bindir() -> Path | None:
    """The bin dir of the highest installed PostgreSQL version that has initdb and pg_ctl."""

    def version(path: str) -> tuple[int, ...]:
        name = Path(path).parent.name
        return tuple(int(part) for part in name.split(".") if part.isdigit())

    for candidate in sorted(glob.glob(PG_GLOB), key=version, reverse=True):
        bindir = Path(candidate)
        if all(os.access(bindir / tool, os.X_OK) for tool in ("initdb", "pg_ctl", "postgres")):
            return bindir
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _is_root() -> bool:
    return os.geteuid() == 0


class ThrowawayPostgres:
    """Start with `start()` (or `with`), make databases with `create_database()`, end with `stop()`."""

    def __init__(self) -> None:
        self.bindir: Path | None = None
        self.basedir: Path | None = None
        self.port: int | None = None
        self.host = HOST
        self.start_seconds: float | None = None
        self.stop_seconds: float | None = None
        self._running = False

    # -- availability ---------------------------------------------------------------------------

    @classmethod
    def available(cls) -> str | None:
        """None when a cluster can be started here, otherwise the reason it cannot (for a skip)."""
        if find_bindir() is None:
            return (
                f"PostgreSQL server binaries not found ({PG_GLOB}/initdb, pg_ctl); "
                "run scripts/system-deps.sh as root (installs the Debian 'postgresql' package)"
            )
        if _is_root():
            try:
                pwd.getpwnam(PG_USER)
            except KeyError:
                return f"running as root but there is no '{PG_USER}' user to run the server as"
            if shutil.which("runuser") is None:
                return "running as root but 'runuser' is missing (needed to run initdb as postgres)"
        if importlib.util.find_spec("psycopg") is None:
            return "psycopg (3) is not installed: pip install 'psycopg[binary]'"
        return None

    # -- paths ----------------------------------------------------------------------------------

    @property
    def datadir(self) -> Path:
        assert self.basedir is not None, "cluster not started"
        return self.basedir / "data"

    @property
    def logfile(self) -> Path:
        assert self.basedir is not None, "cluster not started"
        return self.basedir / "server.log"

    @property
    def sockdir(self) -> Path:
        assert self.basedir is not None, "cluster not started"
        return self.basedir

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> ThrowawayPostgres:
        if self._running:
            return self
        reason = self.available()
        if reason is not None:
            raise RuntimeError(f"cannot start a throwaway PostgreSQL: {reason}")
        self.bindir = find_bindir()
        began = time.perf_counter()
        self.basedir = self._make_basedir()
        try:
            self._run(
                "initdb",
                "-D",
                str(self.datadir),
                "--auth=trust",
                "-U",
                PG_USER,
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            )
            last_error = ""
            for _ in range(START_ATTEMPTS):
                self.port = free_port()
                result = self._pg_ctl_start(self.port)
                if result.returncode == 0:
                    break
                last_error = result.stdout
                if "already in use" not in self._log_tail():  # only a lost port race is worth a retry
                    break
            else:
                result = None
            if result is None or result.returncode != 0:
                raise RuntimeError(
                    f"PostgreSQL did not start (port {self.port}): {last_error.strip()}\n"
                    f"--- tail of {self.logfile} ---\n{self._log_tail()}"
                )
        except BaseException:
            if self.basedir is not None and (self.datadir / "postmaster.pid").exists():
                self._pg_ctl("-m", "immediate", "-w", "-t", "30", "stop")  # e.g. a start that timed out
            self._cleanup()
            raise
        self._running = True
        atexit.register(self.stop)
        self.start_seconds = time.perf_counter() - began
        return self

    def stop(self) -> None:
        """Stop the server (fast: open connections are terminated) and remove the temp dir."""
        if self.basedir is None:
            return
        began = time.perf_counter()
        try:
            if self._running:
                result = self._pg_ctl("-m", "fast", "-w", "-t", "30", "stop")
                if result.returncode != 0:
                    self._pg_ctl("-m", "immediate", "-w", "-t", "30", "stop")
        finally:
            self._running = False
            atexit.unregister(self.stop)
            self._cleanup()
            self.stop_seconds = time.perf_counter() - began

    def __enter__(self) -> ThrowawayPostgres:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- databases ------------------------------------------------------------------------------

    def url(self, dbname: str = "postgres") -> str:
        """SQLAlchemy URL for a database in this cluster."""
        if not self._running:
            raise RuntimeError("cluster not started")
        return f"postgresql+psycopg://{PG_USER}@{self.host}:{self.port}/{dbname}"

    def create_database(self, name: str) -> str:
        """CREATE DATABASE `name` and return its SQLAlchemy URL."""
        if not _DB_NAME.fullmatch(name):
            raise ValueError(f"not a plain database name: {name!r}")
        if not self._running:
            raise RuntimeError("cluster not started")
        import psycopg
        from psycopg import sql

        # CREATE DATABASE cannot run inside a transaction block: autocommit.
        with psycopg.connect(
            host=self.host, port=self.port, user=PG_USER, dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    # -- internals ------------------------------------------------------------------------------

    def _make_basedir(self) -> Path:
        basedir = Path(tempfile.mkdtemp(prefix="throwaway-pg-", dir="/tmp"))
        # mkdtemp gives 0700; the server user must be able to reach the dir (and clients the socket).
        basedir.chmod(0o755)
        if _is_root():
            user = pwd.getpwnam(PG_USER)
            os.chown(basedir, user.pw_uid, user.pw_gid)
        return basedir

    def _command(self, tool: str, *args: str) -> list[str]:
        assert self.bindir is not None
        command = [str(self.bindir / tool), *args]
        if _is_root():
            command = ["runuser", "-u", PG_USER, "--", *command]
        return command

    def _run(self, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            self._command(tool, *args),
            cwd=self.basedir,  # postgres cannot chdir into root's cwd; avoid the warning
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=120,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"{tool} failed ({result.returncode}):\n{result.stdout}")
        return result

    def _pg_ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self._command("pg_ctl", "-D", str(self.datadir), *args),
            cwd=self.basedir,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=120,
            check=False,
        )

    def _pg_ctl_start(self, port: int) -> subprocess.CompletedProcess[str]:
        options = (
            f"-c listen_addresses={HOST} -p {port} -k {self.sockdir} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        return self._pg_ctl("-w", "-t", "30", "-l", str(self.logfile), "-o", options, "start")

    def _log_tail(self) -> str:
        try:
            lines = self.logfile.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError as error:
            return f"(no server log: {error})"
        return "\n".join(lines[-LOG_TAIL_LINES:])

    def _cleanup(self) -> None:
        if self.basedir is not None:
            shutil.rmtree(self.basedir, ignore_errors=True)
            self.basedir = None
