"""A complete local Airflow stack on the local SageMaker backend, for ``make demo`` and the end-to-end tests.

:class:`AirflowStack` starts ``smpipe-local`` and the four Airflow 3 services (``api-server``, ``scheduler``,
``dag-processor``, ``triggerer``) as separate processes sharing one ``AIRFLOW_HOME`` (SQLite, LocalExecutor),
each in its own process group with its output in ``<home>/services/<name>.log``. It then drives them through
the public REST API: unpause and trigger DAGs, follow a run's task states, read task logs, restart the
triggerer. ``stop()`` ends every process it started (SIGTERM to the process group, SIGKILL after a grace
period).

Every command line is built by :func:`service_command` / :func:`backend_command`, which ``docker-compose.yaml``
mirrors (``tests/test_docker_compose.py`` compares them).
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DAGS_FOLDER = REPO_ROOT / "dags"
REGION = "us-east-1"
SERVICES = ("api-server", "scheduler", "dag-processor", "triggerer")
TERMINAL_RUN_STATES = frozenset({"success", "failed"})
TERMINAL_TASK_STATES = frozenset({"success", "failed", "skipped", "upstream_failed", "removed"})
# Credentials of the local backend (it accepts any): also what docker-compose.yaml wires in.
BACKEND_ACCESS_KEY = "testing"
BACKEND_SECRET_KEY = "testing"
_READY_PREFIX = "smpipe-local ready on "


class StackError(RuntimeError):
    """A service did not start, died, or the API refused a call; the message names the log to read."""


class ApiNotFound(StackError):
    """The REST API answered 404: no such DAG, run or task instance (try) yet."""


def service_command(name: str, *, api_host: str = "127.0.0.1", api_port: int = 8080) -> list[str]:
    """The ``airflow ...`` command line of one Airflow service (``docker-compose.yaml`` runs the same)."""
    if name == "api-server":
        # One worker: the demo has one user, and each worker is a full copy of the app (memory, start time).
        return ["airflow", "api-server", "--host", api_host, "--port", str(api_port), "--workers", "1"]
    if name in ("scheduler", "dag-processor", "triggerer"):
        return ["airflow", name]
    raise ValueError(f"unknown Airflow service {name!r}; expected one of {SERVICES}")


def backend_command(*, host: str = "127.0.0.1", port: int = 0, state_dir: str | None = None) -> list[str]:
    """The ``smpipe-local`` command line (``--port 0`` picks a free port, printed on the ready line)."""
    command = ["smpipe-local", "--host", host, "--port", str(port)]
    if state_dir is not None:
        command += ["--state-dir", state_dir]
    return command


def aws_connection_extra(endpoint_url: str, region_name: str = REGION) -> dict[str, str]:
    """The ``aws_default`` connection's extra pointing the amazon provider at the local backend."""
    return {"endpoint_url": endpoint_url, "region_name": region_name}


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def _executable(name: str) -> str:
    """A console script of this environment (the venv's ``bin``), so the stack never picks up another install."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    return name


@dataclasses.dataclass(frozen=True)
class StateChange:
    """One change seen while following a run: a task's state (``task_id`` set) or the run's own state."""

    at: float
    task_id: str | None
    old: str | None
    new: str | None
    try_number: int | None = None

    @property
    def is_run(self) -> bool:
        return self.task_id is None


@dataclasses.dataclass
class ManagedProcess:
    """A child process in its own process group, output appended to ``log_path``."""

    name: str
    argv: list[str]
    log_path: Path
    env: Mapping[str, str]
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as output:
            output.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(self.argv)}\n".encode())
            output.flush()
            self.popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                env=dict(self.env),
                # A session of its own: stop() signals the whole group (uvicorn workers, executor workers, jobs),
                # and Ctrl-C in the terminal reaches only the parent, which stops the children in order.
                start_new_session=True,
            )

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen is not None else None

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self, grace: float = 20.0) -> int | None:
        """SIGTERM the process group, SIGKILL it after ``grace`` seconds; returns the exit code."""
        if self.popen is None:
            return None
        terminate_group(self.popen.pid, grace, wait=self.popen.wait)
        return self.popen.returncode

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def terminate_group(pid: int, grace: float, wait: Callable[[float], Any] | None = None) -> None:
    """SIGTERM process group ``pid``, then SIGKILL whatever is left of it after ``grace`` seconds."""
    try:
        os.killpg(pid, signal.SIGTERM)
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


class AirflowStack:
    """The local backend plus api-server, scheduler, dag-processor and triggerer on one ``AIRFLOW_HOME``.

    :param home: The ``AIRFLOW_HOME`` (created; config, SQLite database, logs and service logs go there).
    :param dags_folder: The DAGs folder (default: the repository's ``dags/``).
    :param api_port: The api-server port (UI and REST API); ``None`` picks a free one.
    :param api_host: The interface the api-server binds.
    :param username: The UI/API user (simple auth manager, admin role).
    :param password: Its password.
    :param backend_state_dir: The backend's job workspaces (default ``<home>/smpipe-state``).
    :param extra_env: More environment variables for every service (e.g. ``SMPIPE_DEMO_BUCKET``).
    :param echo: Called with one line per start-up milestone (default: the module logger).
    """

    def __init__(
        self,
        home: str | Path,
        *,
        dags_folder: str | Path | None = None,
        api_port: int | None = None,
        api_host: str = "127.0.0.1",
        username: str = "admin",
        password: str = "admin",
        backend_state_dir: str | Path | None = None,
        extra_env: Mapping[str, str] | None = None,
        echo: Callable[[str], None] | None = None,
    ) -> None:
        self.home = Path(home).resolve()
        self.dags_folder = Path(dags_folder or DEFAULT_DAGS_FOLDER).resolve()
        self.api_host = api_host
        self.api_port = api_port if api_port is not None else free_port(api_host)
        self.username = username
        self.password = password
        self.backend_state_dir = Path(backend_state_dir or self.home / "smpipe-state").resolve()
        self.extra_env = dict(extra_env or {})
        self.echo = echo or (lambda line: log.info("%s", line))
        self.backend: ManagedProcess | None = None
        self.services: dict[str, ManagedProcess] = {}
        self.endpoint_url: str | None = None
        self.timings: dict[str, float] = {}
        self._http: httpx.Client | None = None
        self._token: str | None = None

    # -- paths and URLs ----------------------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        host = "127.0.0.1" if self.api_host in ("0.0.0.0", "::") else self.api_host
        return f"http://{host}:{self.api_port}"

    @property
    def log_folder(self) -> Path:
        """Task logs: ``dag_id=<dag>/run_id=<run>/task_id=<task>/attempt=<n>.log`` (+ ``.trigger.*.log``)."""
        return self.home / "logs"

    @property
    def service_log_folder(self) -> Path:
        return self.home / "services"

    def ui_url(self, dag_id: str | None = None, run_id: str | None = None) -> str:
        if dag_id is None:
            return self.api_url
        if run_id is None:
            return f"{self.api_url}/dags/{dag_id}"
        return f"{self.api_url}/dags/{dag_id}/runs/{run_id}"

    def environment(self) -> dict[str, str]:
        """The environment every service runs with: only ``AIRFLOW_HOME`` selects the config."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__") and k != "AIRFLOW_CONFIG"}
        bin_dir = str(Path(sys.executable).parent)
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW_CONFIG": str(self.home / "airflow.cfg"),
                "PATH": bin_dir + os.pathsep + env.get("PATH", "/usr/bin:/bin"),
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(self.extra_env)
        return env

    # -- configuration -----------------------------------------------------------------------------------

    def airflow_settings(self) -> dict[str, dict[str, str]]:
        """``airflow.cfg`` sections this stack sets (Airflow's defaults apply to everything else)."""
        return {
            "core": {
                "dags_folder": str(self.dags_folder),
                "executor": "LocalExecutor",
                "load_examples": "False",
                "parallelism": "16",
                "dags_are_paused_at_creation": "True",
                "auth_manager": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
                "simple_auth_manager_users": f"{self.username}:admin",
                "simple_auth_manager_passwords_file": str(self.home / "simple_auth_manager_passwords.json"),
                # The task runner reaches the api-server here; the default assumes port 8080.
                "execution_api_server_url": f"{self.api_url}/execution/",
                "fernet_key": self._persistent_secret("fernet_key", _fernet_key),
            },
            "database": {"sql_alchemy_conn": f"sqlite:///{self.home / 'airflow.db'}"},
            "api": {
                "host": self.api_host,
                "port": str(self.api_port),
                "workers": "1",
                # Signs the requests the api-server makes to the worker and triggerer log servers.
                "secret_key": self._persistent_secret("secret_key", lambda: secrets.token_urlsafe(32)),
            },
            # All processes must sign and check JWTs with the same secret.
            "api_auth": {
                "jwt_secret": self._persistent_secret("jwt_secret", lambda: secrets.token_urlsafe(32))
            },
            "logging": {
                "base_log_folder": str(self.log_folder),
                "dag_processor_child_process_log_directory": str(self.home / "logs" / "dag_processor"),
                # Free ports, so a demo and the e2e tests can run side by side.
                "worker_log_server_port": str(self._persistent_port("worker_log_server_port")),
                "trigger_log_server_port": str(self._persistent_port("trigger_log_server_port")),
            },
            # New and changed DAG files show up within seconds instead of minutes.
            "dag_processor": {"refresh_interval": "10", "min_file_process_interval": "20"},
            "triggerer": {"capacity": "1000"},
        }

    def _secrets_path(self) -> Path:
        return self.home / "stack-secrets.json"

    def _load_secrets(self) -> dict[str, Any]:
        try:
            return dict(json.loads(self._secrets_path().read_text()))
        except (OSError, ValueError):
            return {}

    def _persistent_secret(self, key: str, make: Callable[[], str]) -> str:
        """Kept across restarts of the same home: encrypted connections and sessions stay readable."""
        stored = self._load_secrets()
        if key not in stored:
            stored[key] = make()
            self._secrets_path().write_text(json.dumps(stored))
            self._secrets_path().chmod(0o600)
        return str(stored[key])

    def _persistent_port(self, key: str) -> int:
        port = int(self._persistent_secret(key, lambda: str(free_port())))
        if port_is_free(port):
            return port
        stored = self._load_secrets()
        stored[key] = str(free_port())
        self._secrets_path().write_text(json.dumps(stored))
        return int(stored[key])

    def write_config(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        lines = ["# Written by airflow_provider_smpipe.demo.stack; rewritten on every start."]
        for section, options in self.airflow_settings().items():
            lines.append(f"\n[{section}]")
            lines.extend(f"{key} = {value}" for key, value in options.items())
        config = self.home / "airflow.cfg"
        config.write_text("\n".join(lines) + "\n")
        config.chmod(0o600)
        passwords = self.home / "simple_auth_manager_passwords.json"
        passwords.write_text(json.dumps({self.username: self.password}) + "\n")
        passwords.chmod(0o600)

    # -- start and stop ------------------------------------------------------------------------------------

    def __enter__(self) -> AirflowStack:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self, timeout: float = 300.0) -> None:
        """Start the backend and the four services and wait until the API reports them all healthy."""
        started = time.monotonic()
        self.write_config()
        try:
            self.backend = ManagedProcess(
                "smpipe-local",
                [
                    _executable(a) if i == 0 else a
                    for i, a in enumerate(backend_command(state_dir=str(self.backend_state_dir)))
                ],
                self.service_log_folder / "smpipe-local.log",
                self.environment(),
            )
            self.backend.start()
            self._run_cli(["db", "migrate"], "db-migrate", timeout=timeout)
            self.timings["db_migrate"] = time.monotonic() - started
            self.endpoint_url = self._wait_for_backend(timeout=60)
            self.echo(f"local backend ready on {self.endpoint_url}")
            self._write_connection()
            self.timings["prepared"] = time.monotonic() - started
            for name in SERVICES:
                self._start_service(name)
            self._wait_until_healthy(deadline=started + timeout)
        except BaseException:
            self.stop()
            raise
        self.timings["healthy"] = time.monotonic() - started
        self.echo(f"Airflow is up in {self.timings['healthy']:.0f}s: {self.api_url}")

    def _start_service(self, name: str) -> ManagedProcess:
        argv = service_command(name, api_host=self.api_host, api_port=self.api_port)
        argv[0] = _executable(argv[0])
        process = ManagedProcess(name, argv, self.service_log_folder / f"{name}.log", self.environment())
        process.start()
        self.services[name] = process
        return process

    def _run_cli(self, args: Sequence[str], log_name: str, timeout: float = 300.0) -> None:
        log_path = self.service_log_folder / f"{log_name}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as output:
            result = subprocess.run(
                [_executable("airflow"), *args],
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                env=self.environment(),
                timeout=timeout,
                check=False,
            )
        if result.returncode != 0:
            tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-20:])
            raise StackError(
                f"`airflow {' '.join(args)}` exited {result.returncode}; see {log_path}:\n{tail}"
            )

    def _wait_for_backend(self, timeout: float) -> str:
        assert self.backend is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in reversed(self.backend.log_path.read_text(errors="replace").splitlines()):
                if line.startswith(_READY_PREFIX):
                    return line[len(_READY_PREFIX) :].strip()
                if line.startswith("=== "):
                    break  # older runs' lines are in the same file
            if not self.backend.alive():
                raise StackError(f"smpipe-local exited; see {self.backend.log_path}:\n{self.backend.tail()}")
            time.sleep(0.2)
        raise StackError(f"smpipe-local printed no ready line in {timeout:.0f}s; see {self.backend.log_path}")

    def _write_connection(self) -> None:
        assert self.endpoint_url is not None
        connection = {
            "aws_default": {
                "conn_type": "aws",
                "description": "The local SageMaker backend (smpipe-local) started by the demo stack",
                "login": BACKEND_ACCESS_KEY,
                "password": BACKEND_SECRET_KEY,
                "extra": json.dumps(aws_connection_extra(self.endpoint_url)),
            }
        }
        path = self.home / "connections.json"
        path.write_text(json.dumps(connection, indent=2))
        path.chmod(0o600)
        self._run_cli(["connections", "import", "--overwrite", str(path)], "connections")

    def _wait_until_healthy(self, deadline: float) -> None:
        last: Any = None
        while time.monotonic() < deadline:
            for process in (self.backend, *self.services.values()):
                if process is not None and not process.alive():
                    raise StackError(
                        f"{process.name} exited with {process.popen.returncode if process.popen else None}; "
                        f"see {process.log_path}:\n{process.tail()}"
                    )
            try:
                last = self.health()
            except httpx.HTTPError as error:
                last = error
            else:
                if all(
                    (last.get(component) or {}).get("status") == "healthy"
                    for component in ("metadatabase", "scheduler", "triggerer", "dag_processor")
                ):
                    return
            time.sleep(1.0)
        raise StackError(
            f"Airflow services not healthy in time; last health answer: {last!r}; see "
            f"{self.service_log_folder}"
        )

    def stop(self, grace: float = 20.0) -> None:
        """Stop every service (in parallel), then the backend. Safe to call twice."""
        started = time.monotonic()
        had_processes = bool(self.services) or self.backend is not None
        if self._http is not None:
            self._http.close()
            self._http = None
        running = [p for p in self.services.values() if p.popen is not None]
        if running:
            with ThreadPoolExecutor(len(running)) as pool:
                list(pool.map(lambda p: p.stop(grace), running))
        self.services.clear()
        if self.backend is not None:
            self.backend.stop(grace)
            self.backend = None
        if had_processes:
            self.timings["stop"] = time.monotonic() - started

    def restart_triggerer(self, timeout: float = 120.0) -> None:
        """Stop the triggerer (SIGTERM) and start a new one; returns once the new one heartbeats."""
        old = self.services.get("triggerer")
        if old is not None:
            old.stop()
        restarted_at = time.time()
        self._start_service("triggerer")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            heartbeat = (self.health().get("triggerer") or {}).get("latest_triggerer_heartbeat")
            if heartbeat and _parse_time(heartbeat) > restarted_at:
                return
            if not self.services["triggerer"].alive():
                raise StackError(f"the new triggerer exited; see {self.services['triggerer'].log_path}")
            time.sleep(1.0)
        raise StackError(f"the new triggerer did not heartbeat within {timeout:.0f}s")

    def pids(self) -> dict[str, int]:
        processes = {"smpipe-local": self.backend, **self.services}
        return {name: p.pid for name, p in processes.items() if p is not None and p.pid is not None}

    # -- REST API ------------------------------------------------------------------------------------------

    def _client(self) -> httpx.Client:
        if self._http is None:
            self._http = httpx.Client(base_url=self.api_url, timeout=30.0)
        return self._http

    def token(self) -> str:
        """A JWT for the REST API (the same login the UI uses)."""
        if self._token is None:
            response = self._client().post(
                "/auth/token", json={"username": self.username, "password": self.password}
            )
            _raise_for_status(response)
            self._token = str(response.json()["access_token"])
        return self._token

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        """Call ``/api/v2<path>`` as the admin user; JSON answers are decoded."""
        for attempt in range(2):
            headers = {"Authorization": f"Bearer {self.token()}", **kwargs.pop("headers", {})}
            response = self._client().request(method, f"/api/v2{path}", headers=headers, **kwargs)
            if response.status_code == 401 and attempt == 0:
                self._token = None
                continue
            _raise_for_status(response)
            if response.headers.get("content-type", "").startswith("application/json"):
                return response.json()
            return response.text
        raise AssertionError("unreachable")

    def health(self) -> dict[str, Any]:
        response = self._client().get("/api/v2/monitor/health")
        _raise_for_status(response)
        return dict(response.json())

    def wait_for_dag(self, dag_id: str, timeout: float = 120.0) -> dict[str, Any]:
        """Wait until the DAG processor has parsed ``dag_id``; fail at once on an import error of its file."""
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(ApiNotFound):
                return dict(self.api("GET", f"/dags/{dag_id}"))
            errors = self.api("GET", "/importErrors").get("import_errors", [])
            for item in errors:
                if Path(str(item.get("filename", ""))).stem == dag_id or dag_id in str(item.get("filename")):
                    raise StackError(f"DAG file of {dag_id} does not import:\n{item.get('stack_trace')}")
            if time.monotonic() > deadline:
                raise StackError(f"DAG {dag_id} not parsed within {timeout:.0f}s (import errors: {errors})")
            time.sleep(1.0)

    def unpause(self, dag_id: str) -> None:
        self.api("PATCH", f"/dags/{dag_id}", json={"is_paused": False})

    def trigger(self, dag_id: str, conf: Mapping[str, Any] | None = None, run_id: str | None = None) -> str:
        """Start a manual run of ``dag_id`` (with ``conf`` as its params); returns the run id."""
        body: dict[str, Any] = {"logical_date": None, "conf": dict(conf or {})}
        if run_id is not None:
            body["dag_run_id"] = run_id
        return str(self.api("POST", f"/dags/{dag_id}/dagRuns", json=body)["dag_run_id"])

    def run_state(self, dag_id: str, run_id: str) -> str:
        return str(self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}")["state"])

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        answer = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 1000})
        return list(answer["task_instances"])

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        return {
            ti["task_id"]: ti["state"] for ti in self.task_instances(dag_id, run_id) if ti["map_index"] < 1
        }

    def wait_for_run(
        self, dag_id: str, run_id: str, timeout: float = 1200.0, poll_interval: float = 2.0
    ) -> Iterator[StateChange]:
        """Follow a run: yield every task state change, then the run's final state; ``TimeoutError`` after
        ``timeout`` seconds (the run is left as it is)."""
        deadline = time.monotonic() + timeout
        seen: dict[str, tuple[str | None, int | None]] = {}
        run_state: str | None = None
        while True:
            for ti in self.task_instances(dag_id, run_id):
                if ti["map_index"] >= 1:
                    continue
                current = (ti["state"], ti.get("try_number"))
                previous = seen.get(ti["task_id"])
                if previous != current:
                    seen[ti["task_id"]] = current
                    old = previous[0] if previous else None
                    if previous is None and current[0] is None:
                        continue
                    yield StateChange(time.time(), ti["task_id"], old, current[0], current[1])
            state = self.run_state(dag_id, run_id)
            if state != run_state:
                if state in TERMINAL_RUN_STATES:
                    yield StateChange(time.time(), None, run_state, state)
                    return
                run_state = state
            if time.monotonic() > deadline:
                raise TimeoutError(f"run {run_id} of {dag_id} still {state} after {timeout:.0f}s")
            time.sleep(poll_interval)

    def task_log(
        self, dag_id: str, run_id: str, task_id: str, try_number: int = 1, map_index: int = -1
    ) -> str:
        """The task's log as the UI shows it (task process and trigger lines), one line per entry.

        Raises :class:`ApiNotFound` while the task instance has no such try yet.
        """
        answer = self.api(
            "GET",
            f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}",
            params={"full_content": "true", "map_index": map_index},
            headers={"Accept": "application/json"},
        )
        return "\n".join(_format_log_entry(entry) for entry in answer.get("content", []))

    def task_log_files(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1) -> list[Path]:
        """The task's log file and its trigger log files (``<file>.trigger.<triggerer id>.log``)."""
        folder = self.log_folder / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
        return sorted(folder.glob(f"attempt={try_number}.log*"))

    # -- up/down state file --------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        return {
            "home": str(self.home),
            "api_url": self.api_url,
            "endpoint_url": self.endpoint_url,
            "username": self.username,
            "processes": {
                name: {"pid": pid, "start_ticks": process_start_ticks(pid), "argv": self._argv(name)}
                for name, pid in self.pids().items()
            },
        }

    def _argv(self, name: str) -> list[str]:
        process = self.backend if name == "smpipe-local" else self.services.get(name)
        return list(process.argv) if process is not None else []

    def detach(self) -> None:
        """Forget the processes without stopping them (``up``: they keep running until ``down``)."""
        self.services = {}
        self.backend = None


def stop_from_state(state: Mapping[str, Any], grace: float = 20.0) -> list[str]:
    """Stop the processes a state file lists (``down``); only those still running (same PID and start time).

    The Airflow services stop in parallel, then the backend (running jobs end with it).
    """
    processes: Mapping[str, Any] = state.get("processes", {})
    alive = [
        name
        for name, recorded in processes.items()
        # Gone, or the PID now belongs to another process: leave it alone.
        if process_start_ticks(int(recorded["pid"])) == recorded.get("start_ticks")
    ]
    services = [name for name in alive if name != "smpipe-local"]
    if services:
        with ThreadPoolExecutor(len(services)) as pool:
            list(pool.map(lambda name: terminate_group(int(processes[name]["pid"]), grace), services))
    if "smpipe-local" in alive:
        terminate_group(int(processes["smpipe-local"]["pid"]), grace)
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


def _raise_for_status(response: httpx.Response) -> None:
    if response.status_code >= 400:
        error = ApiNotFound if response.status_code == 404 else StackError
        raise error(
            f"{response.request.method} {response.request.url} -> {response.status_code}: {response.text[:2000]}"
        )


def _parse_time(value: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def _format_log_entry(entry: Any) -> str:
    if not isinstance(entry, dict):
        return str(entry)
    if "sources" in entry:
        return "\n".join(f"# source: {source}" for source in entry["sources"])
    parts = [
        str(entry.get("timestamp", "")),
        str(entry.get("level", "")).upper(),
        str(entry.get("event", "")),
    ]
    return " ".join(part for part in parts if part)


def _fernet_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode()
