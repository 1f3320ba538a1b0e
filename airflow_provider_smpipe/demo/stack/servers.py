"""PostgreSQL and Redis as child processes of the stack: Debian's binaries, a cluster and a broker of its own.

Neither uses the packages' system services. The PostgreSQL cluster lives in ``<home>/postgres`` (``initdb`` on
first start, kept afterwards), listens on 127.0.0.1 only, and runs as an unprivileged user (``postgres`` when the
stack runs as root: the server refuses root). Airflow reaches it over TCP with a generated password; the cluster's
own superuser only over the Unix socket in ``<home>/postgres/run`` (peer authentication). Redis keeps nothing on
disk (a broker of a throwaway stack) and asks for a generated password.
"""

from __future__ import annotations

import contextlib
import functools
import os
import pwd
import re
import shutil
import socket
import stat
import subprocess
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from airflow_provider_smpipe.demo.stack.errors import StackError
from airflow_provider_smpipe.demo.stack.processes import STOP_SIGNALS, ManagedProcess, as_user

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

#: The Airflow database and its owner in the stack's cluster.
DATABASE = "airflow"
DATABASE_USER = "airflow"
_POSTGRES_BIN_GLOB = "/usr/lib/postgresql/*/bin"


def postgres_bin_dir() -> Path:
    """The newest ``/usr/lib/postgresql/<version>/bin`` (Debian keeps ``initdb`` out of PATH), else PATH's."""
    candidates = sorted(
        (Path(p) for p in Path("/").glob(_POSTGRES_BIN_GLOB.lstrip("/")) if (Path(p) / "initdb").exists()),
        key=lambda p: int(re.sub(r"\D", "", p.parent.name) or 0),
    )
    if candidates:
        return candidates[-1]
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    raise StackError("PostgreSQL is not installed (initdb not found): run `make system-deps`")


def server_user() -> str | None:
    """The user PostgreSQL runs as: ``postgres`` (else ``nobody``) when this process is root, else ``None``."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    raise StackError("running as root, and neither a `postgres` nor a `nobody` user exists to run PostgreSQL")


def unreachable_parent(path: Path, user: str) -> Path | None:
    """The first directory above ``path`` that ``user`` may not enter (no search permission), or ``None``."""
    entry = pwd.getpwnam(user)
    groups = {entry.pw_gid, *os.getgrouplist(user, entry.pw_gid)}
    for parent in reversed(path.parents):
        info = parent.stat()
        if info.st_uid == entry.pw_uid:
            allowed = info.st_mode & stat.S_IXUSR
        elif info.st_gid in groups:
            allowed = info.st_mode & stat.S_IXGRP
        else:
            allowed = info.st_mode & stat.S_IXOTH
        if not allowed:
            return parent
    return None


def reachable_temp_home(prefix: str) -> Path:
    """A new directory under the system's temporary directory that PostgreSQL's unprivileged user can enter
    (mode 0711: enter, not list), for a stack home. Not under pytest's base temporary directory: every pytest
    session that starts resets that to mode 0700, which would cut a running cluster off from its files."""
    home = Path(tempfile.mkdtemp(prefix=prefix))
    home.chmod(0o711)
    return home


class PostgresServer:
    """One PostgreSQL cluster in ``root`` for one stack.

    :param root: Its directory (``data/``, ``run/`` for the socket).
    :param port: The TCP port on 127.0.0.1.
    :param password: The password of the ``airflow`` database user.
    :param env: The environment of its processes.
    :param log_path: Where the server's output goes.
    """

    def __init__(
        self, root: Path, *, port: int, password: str, env: Mapping[str, str], log_path: Path
    ) -> None:
        self.root = root
        self.port = port
        self.password = password
        self.env = dict(env)
        self.log_path = log_path
        self.user = server_user()

    @functools.cached_property
    def bin_dir(self) -> Path:
        return postgres_bin_dir()

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "run"

    @property
    def url(self) -> str:
        """The SQLAlchemy URL Airflow uses (psycopg2 driver; Airflow derives the asyncpg one)."""
        return f"postgresql+psycopg2://{DATABASE_USER}:{self.password}@127.0.0.1:{self.port}/{DATABASE}"

    def prepare(self) -> None:
        """Create the cluster on first use (``initdb``); a cluster from an earlier start is kept."""
        self.root.mkdir(parents=True, exist_ok=True)
        if self.user is not None:
            blocked = unreachable_parent(self.root, self.user)
            if blocked is not None:
                raise StackError(
                    f"PostgreSQL runs as user {self.user!r}, which cannot enter {blocked} (no search permission) "
                    f"to reach {self.root}: choose a stack home it can reach, or `chmod o+x {blocked}`"
                )
            entry = pwd.getpwnam(self.user)
            for path in (self.root, self.data_dir, self.socket_dir):
                path.mkdir(exist_ok=True)
                os.chown(path, entry.pw_uid, entry.pw_gid)
        for path in (self.root, self.data_dir, self.socket_dir):
            path.mkdir(exist_ok=True)
            path.chmod(0o700)
        if (self.data_dir / "PG_VERSION").exists():
            return
        self._run(
            [
                str(self.bin_dir / "initdb"),
                "--pgdata",
                str(self.data_dir),
                "--username",
                self.superuser,
                "--auth-local=peer",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
            ],
            "initdb",
        )

    @property
    def superuser(self) -> str:
        """The cluster's superuser: the server's OS user (peer authentication over the socket)."""
        return self.user or pwd.getpwuid(os.geteuid()).pw_name

    def process(self) -> ManagedProcess:
        """The ``postgres`` server process (foreground, so it stops with the stack)."""
        argv = [
            str(self.bin_dir / "postgres"),
            "-D",
            str(self.data_dir),
            "-p",
            str(self.port),
            "-k",
            str(self.socket_dir),
            "-c",
            "listen_addresses=127.0.0.1",
            # A local stack: a crash may lose the last commits, never corrupt the cluster.
            "-c",
            "synchronous_commit=off",
            "-c",
            "shared_buffers=64MB",
            "-c",
            "max_connections=200",
        ]
        return ManagedProcess(
            "postgres", argv, self.log_path, self.env, user=self.user, stop_signal=STOP_SIGNALS["postgres"]
        )

    def wait_ready(self, process: ManagedProcess, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not process.alive():
                raise StackError(f"postgres exited; see {process.log_path}:\n{process.tail()}")
            ready = subprocess.run(
                [str(self.bin_dir / "pg_isready"), "-q", "-h", str(self.socket_dir), "-p", str(self.port)],
                env=self.env,
                check=False,
                **as_user(self.user),
            )
            if ready.returncode == 0:
                return
            time.sleep(0.2)
        raise StackError(f"postgres not ready in {timeout:.0f}s; see {process.log_path}")

    def ensure_database(self) -> None:
        """Create (or update the password of) the ``airflow`` user, and its database when missing."""
        quoted = self.password.replace("'", "''")
        self._psql(
            "DO $$ BEGIN\n"
            f"  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{DATABASE_USER}') THEN\n"
            f"    CREATE ROLE {DATABASE_USER} LOGIN;\n"
            "  END IF;\n"
            "END $$;\n"
            f"ALTER ROLE {DATABASE_USER} PASSWORD '{quoted}';\n"
        )
        exists = self._psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'", tuples=True)
        if exists.strip() != "1":
            self._psql(f"CREATE DATABASE {DATABASE} OWNER {DATABASE_USER}")

    def _psql(self, sql: str, *, tuples: bool = False) -> str:
        argv = [
            str(self.bin_dir / "psql"),
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            str(self.socket_dir),
            "-p",
            str(self.port),
            "-U",
            self.superuser,
            "-d",
            "postgres",
        ]
        if tuples:
            argv += ["-t", "-A"]
        # The statements go in on stdin: the password never shows in a process list.
        return self._run(argv, "psql", stdin=sql)

    def _run(self, argv: Sequence[str], what: str, stdin: str | None = None) -> str:
        result = subprocess.run(
            argv,
            input=stdin,
            capture_output=True,
            text=True,
            env=self.env,
            cwd=self.root,
            check=False,
            **as_user(self.user),
        )
        if result.returncode != 0:
            raise StackError(
                f"{what} exited {result.returncode}:\n{result.stdout[-2000:]}{result.stderr[-2000:]}"
            )
        return result.stdout


class RedisServer:
    """A Redis broker for the CeleryExecutor: 127.0.0.1 only, a password, nothing persisted.

    :param root: Its directory (config file and working directory).
    :param port: The TCP port on 127.0.0.1.
    :param password: The password Celery uses.
    :param env: The environment of its process.
    :param log_path: Where its output goes.
    """

    def __init__(
        self, root: Path, *, port: int, password: str, env: Mapping[str, str], log_path: Path
    ) -> None:
        self.root = root
        self.port = port
        self.password = password
        self.env = dict(env)
        self.log_path = log_path

    @property
    def url(self) -> str:
        """The Celery broker URL."""
        return f"redis://:{self.password}@127.0.0.1:{self.port}/0"

    def process(self) -> ManagedProcess:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        if not Path(binary).exists():
            raise StackError("redis-server is not installed: run `make system-deps`")
        self.root.mkdir(parents=True, exist_ok=True)
        config = self.root / "redis.conf"
        # In a file (mode 0600), not on the command line: the password never shows in a process list.
        config.write_text(
            "\n".join(
                [
                    "bind 127.0.0.1",
                    f"port {self.port}",
                    f"dir {self.root}",
                    'save ""',
                    "appendonly no",
                    "daemonize no",
                    "protected-mode yes",
                    f'requirepass "{self.password}"',
                    "loglevel notice",
                ]
            )
            + "\n"
        )
        config.chmod(0o600)
        return ManagedProcess("redis", [binary, str(config)], self.log_path, self.env)

    def wait_ready(self, process: ManagedProcess, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not process.alive():
                raise StackError(f"redis exited; see {process.log_path}:\n{process.tail()}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock,
            ):
                sock.sendall(f"AUTH {self.password}\r\nPING\r\n".encode())
                if b"+PONG" in _read_some(sock):
                    return
            time.sleep(0.2)
        raise StackError(f"redis not ready in {timeout:.0f}s; see {process.log_path}")


def _read_some(sock: socket.socket) -> bytes:
    data = b""
    with contextlib.suppress(OSError):
        while b"+PONG" not in data and b"-" not in data[:1]:
            chunk = sock.recv(256)
            if not chunk:
                break
            data += chunk
    return data
