"""Child processes of the stack: each in its own process group, its output appended to one log file."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pwd
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

#: Processes that the Airflow services use: stopped after them (``stop``, ``down``).
INFRASTRUCTURE = ("smpipe-local", "redis", "postgres")
#: How each process is asked to stop when it is not SIGTERM (PostgreSQL's "fast" shutdown: it puts its server
#: processes in process groups of their own, so a group SIGTERM would wait for every client to disconnect).
STOP_SIGNALS = {"postgres": signal.SIGINT}


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could listen on ``port`` now (connections of a stopped one in TIME_WAIT do not count:
    servers bind with SO_REUSEADDR)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def executable(name: str) -> str:
    """A console script of this environment (the venv's ``bin``), so the stack never picks up another install."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    return name


@dataclasses.dataclass
class ManagedProcess:
    """A child process in its own process group, output appended to ``log_path``.

    :param name: The service name (``scheduler``, ``triggerer-2``, ``postgres``...).
    :param argv: The command line.
    :param log_path: Where its output goes.
    :param env: Its whole environment.
    :param user: Run it as this user (only when started as root; PostgreSQL refuses to run as root).
    :param stop_signal: What asks it to stop (PostgreSQL: SIGINT, its "fast" shutdown; SIGTERM would wait for
        every client to disconnect).
    """

    name: str
    argv: list[str]
    log_path: Path
    env: Mapping[str, str]
    user: str | None = None
    stop_signal: int = signal.SIGTERM
    popen: subprocess.Popen[bytes] | None = None
    #: Wall-clock time of the last start.
    started_at: float = 0.0

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as output:
            output.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(self.argv)}\n".encode())
            output.flush()
            self.started_at = time.time()
            self.popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                env=dict(self.env),
                # A session of its own: stop() signals the whole group (uvicorn workers, executor workers, jobs),
                # and Ctrl-C in the terminal reaches only the parent, which stops the children in order.
                start_new_session=True,
                **as_user(self.user),
            )

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen is not None else None

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self, grace: float = 20.0) -> int | None:
        """Signal the process group to stop, SIGKILL it after ``grace`` seconds; returns the exit code."""
        if self.popen is None:
            return None
        terminate_group(self.popen.pid, grace, wait=self.popen.wait, signum=self.stop_signal)
        return self.popen.returncode

    def kill(self) -> None:
        """SIGKILL the whole process group at once (a crash: nothing gets to clean up) and reap it."""
        if self.popen is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(10)

    def signal(self, signum: int) -> None:
        """Send ``signum`` to the whole process group (SIGSTOP freezes it, as a stalled host would; SIGCONT)."""
        if self.popen is not None:
            os.killpg(self.popen.pid, signum)

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def as_user(user: str | None) -> dict[str, Any]:
    """``subprocess`` arguments that run a child as ``user`` when this process is root (else nothing)."""
    if user is None or os.geteuid() != 0:
        return {}
    entry = pwd.getpwnam(user)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def terminate_group(
    pid: int, grace: float, wait: Callable[[float], Any] | None = None, signum: int = signal.SIGTERM
) -> None:
    """Send ``signum`` to process group ``pid``, then SIGKILL whatever is left of it after ``grace`` seconds."""
    try:
        os.killpg(pid, signum)
        # A frozen group (SIGSTOP) handles SIGTERM only once it runs again.
        os.killpg(pid, signal.SIGCONT)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    if wait is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            wait(grace)
    while time.monotonic() < deadline and _group_exists(pid):
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    if wait is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            wait(5)


def _group_exists(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_from_state(state: Mapping[str, Any], grace: float = 20.0) -> list[str]:
    """Stop the processes a state file lists (``down``); only those still running (same PID and start time).

    The Airflow services stop in parallel, then the backend, Redis and PostgreSQL (running jobs end with the
    backend).
    """
    processes: Mapping[str, Any] = state.get("processes", {})
    alive = [
        name
        for name, recorded in processes.items()
        # Gone, or the PID now belongs to another process: leave it alone.
        if process_start_ticks(int(recorded["pid"])) == recorded.get("start_ticks")
    ]
    services = [name for name in alive if name not in INFRASTRUCTURE]
    if services:
        with ThreadPoolExecutor(len(services)) as pool:
            list(pool.map(lambda name: terminate_group(int(processes[name]["pid"]), grace), services))
    for name in INFRASTRUCTURE:
        if name in alive:
            terminate_group(int(processes[name]["pid"]), grace, signum=STOP_SIGNALS.get(name, signal.SIGTERM))
    return alive


def process_start_ticks(pid: int) -> int | None:
    """When ``pid`` started (clock ticks since boot, ``/proc/<pid>/stat`` field 22); ``None`` if it is gone.

    A PID plus its start time names one process for good: a recycled PID has another start time. (The command
    line cannot be used: the api-server rewrites its process title.)
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Fields after the command name, which is in parentheses and may contain spaces: state is field 3.
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[19])
