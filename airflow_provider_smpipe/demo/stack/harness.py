"""The stack itself: configuration, start and stop of every process, restarts and kills of single services."""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from airflow_provider_smpipe.demo.stack.commands import (
    BACKEND_ACCESS_KEY,
    BACKEND_SECRET_KEY,
    SERVICES,
    WORKER,
    aws_connection_extra,
    backend_command,
    service_command,
)
from airflow_provider_smpipe.demo.stack.errors import StackError
from airflow_provider_smpipe.demo.stack.processes import (
    ManagedProcess,
    executable,
    free_port,
    port_is_free,
    process_start_ticks,
)
from airflow_provider_smpipe.demo.stack.rest import AirflowRestApi, parse_time
from airflow_provider_smpipe.demo.stack.servers import PostgresServer, RedisServer

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_DAGS_FOLDER = REPO_ROOT / "dags"
DATABASES = ("sqlite", "postgres")
EXECUTORS = {"local": "LocalExecutor", "celery": "CeleryExecutor"}
#: The deployment docker-compose.yaml describes, as AirflowStack options (``tests/test_docker_compose.py``).
COMPOSE_DEPLOYMENT: dict[str, Any] = {"db": "postgres", "executor": "celery", "triggerers": 2}
_READY_PREFIX = "smpipe-local ready on "
# The Celery worker's "celery@<hostname> ready." line once it consumes from the broker.
_WORKER_READY = re.compile(r"\bcelery@\S+ ready\.")


class AirflowStack(AirflowRestApi):
    """The local backend plus api-server, scheduler, dag-processor and triggerer(s) on one ``AIRFLOW_HOME``.

    By default on SQLite with the LocalExecutor and one triggerer; ``db="postgres"`` adds a PostgreSQL cluster
    of the stack's own, ``executor="celery"`` a Redis broker and a Celery worker, ``triggerers=N`` more
    triggerer processes (``triggerer``, ``triggerer-2``, ...).

    :param home: The ``AIRFLOW_HOME`` (created; config, database, logs and service logs go there).
    :param dags_folder: The DAGs folder (default: the repository's ``dags/``).
    :param api_port: The api-server port (UI and REST API); ``None`` picks a free one.
    :param api_host: The interface the api-server binds.
    :param username: The UI/API user (simple auth manager, admin role).
    :param password: Its password.
    :param backend_state_dir: The backend's job workspaces (default ``<home>/smpipe-state``).
    :param extra_env: More environment variables for every service (e.g. ``SMPIPE_DEMO_BUCKET``).
    :param echo: Called with one line per start-up milestone (default: the module logger).
    :param db: The metadata database: ``sqlite`` or ``postgres``.
    :param executor: ``local`` (LocalExecutor) or ``celery`` (CeleryExecutor + Redis; needs ``postgres``).
    :param triggerers: How many triggerer processes run.
    :param triggerer_heartbeat_sec: ``[triggerer] job_heartbeat_sec`` (None: Airflow's default).
    :param triggerer_health_check_threshold: ``[triggerer] triggerer_health_check_threshold``: seconds without
        a heartbeat after which another triggerer takes a triggerer's triggers over (None: Airflow's default).
    :param worker_concurrency: Task processes of the Celery worker.
    :param service_env: More environment variables per service name (e.g. ``{"triggerer-2": {...}}``).
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
        db: str = "sqlite",
        executor: str = "local",
        triggerers: int = 1,
        triggerer_heartbeat_sec: float | None = None,
        triggerer_health_check_threshold: float | None = None,
        worker_concurrency: int = 4,
        service_env: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        if db not in DATABASES:
            raise ValueError(f"db must be one of {DATABASES}, not {db!r}")
        if executor not in EXECUTORS:
            raise ValueError(f"executor must be one of {tuple(EXECUTORS)}, not {executor!r}")
        if executor == "celery" and db != "postgres":
            raise ValueError(
                "the CeleryExecutor needs db='postgres' (its workers and results share the database)"
            )
        if triggerers < 1:
            raise ValueError(f"triggerers must be at least 1, not {triggerers}")
        self.home = Path(home).resolve()
        self.api_host = api_host
        self.api_port = api_port if api_port is not None else free_port(api_host)
        super().__init__(self._api_url(), username, password, self.home / "logs")
        self.dags_folder = Path(dags_folder or DEFAULT_DAGS_FOLDER).resolve()
        self.backend_state_dir = Path(backend_state_dir or self.home / "smpipe-state").resolve()
        self.extra_env = dict(extra_env or {})
        self.echo = echo or (lambda line: log.info("%s", line))
        self.db = db
        self.executor = executor
        self.triggerers = triggerers
        self.triggerer_heartbeat_sec = triggerer_heartbeat_sec
        self.triggerer_health_check_threshold = triggerer_health_check_threshold
        self.worker_concurrency = worker_concurrency
        self.service_env = {name: dict(env) for name, env in (service_env or {}).items()}
        self.backend: ManagedProcess | None = None
        self.infrastructure: dict[str, ManagedProcess] = {}
        self.services: dict[str, ManagedProcess] = {}
        #: Triggerer service name -> the id of its TriggererJob (``trigger.triggerer_id`` of its triggers).
        self.triggerer_jobs: dict[str, int] = {}
        self.endpoint_url: str | None = None
        self.timings: dict[str, float] = {}

    # -- paths and URLs ----------------------------------------------------------------------------------

    def _api_url(self) -> str:
        host = "127.0.0.1" if self.api_host in ("0.0.0.0", "::") else self.api_host
        return f"http://{host}:{self.api_port}"

    @property
    def service_log_folder(self) -> Path:
        return self.home / "services"

    def ui_url(self, dag_id: str | None = None, run_id: str | None = None) -> str:
        if dag_id is None:
            return self.api_url
        if run_id is None:
            return f"{self.api_url}/dags/{dag_id}"
        return f"{self.api_url}/dags/{dag_id}/runs/{run_id}"

    @property
    def triggerer_names(self) -> list[str]:
        """``triggerer``, ``triggerer-2``, ... (one per triggerer process)."""
        return ["triggerer", *(f"triggerer-{i}" for i in range(2, self.triggerers + 1))]

    @property
    def service_names(self) -> list[str]:
        """Every Airflow service process of this stack, in start order."""
        names = [name for name in SERVICES if name != "triggerer"] + self.triggerer_names
        return names + ([WORKER] if self.executor == "celery" else [])

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

    def service_environment(self, name: str) -> dict[str, str]:
        """One service's environment: :meth:`environment`, plus what tells several triggerers apart."""
        env = self.environment()
        index = self.triggerer_names.index(name) if name in self.triggerer_names else 0
        if index > 0:
            # Triggerers on one host each serve their logs on a port of their own.
            port = self._persistent_port(f"trigger_log_server_port_{index + 1}")
            env["AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT"] = str(port)
        env.update(self.service_env.get(name, {}))
        return env

    # -- configuration -----------------------------------------------------------------------------------

    def airflow_settings(self) -> dict[str, dict[str, str]]:
        """``airflow.cfg`` sections this stack sets (Airflow's defaults apply to everything else)."""
        settings: dict[str, dict[str, str]] = {
            "core": {
                "dags_folder": str(self.dags_folder),
                "executor": EXECUTORS[self.executor],
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
            "database": {"sql_alchemy_conn": self._database_url()},
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
        if self.triggerer_heartbeat_sec is not None:
            settings["triggerer"]["job_heartbeat_sec"] = _number(self.triggerer_heartbeat_sec)
        if self.triggerer_health_check_threshold is not None:
            settings["triggerer"]["triggerer_health_check_threshold"] = _number(
                self.triggerer_health_check_threshold
            )
        if self.executor == "celery":
            settings["celery"] = {
                "broker_url": self._redis().url,
                # Task states come back through the metadata database (Celery's SQLAlchemy result backend).
                "result_backend": "db+" + self._database_url(),
                "worker_concurrency": str(self.worker_concurrency),
            }
        return settings

    def _database_url(self) -> str:
        if self.db == "postgres":
            return self._postgres().url
        return f"sqlite:///{self.home / 'airflow.db'}"

    def _postgres(self) -> PostgresServer:
        return PostgresServer(
            self.home / "postgres",
            port=self._persistent_port("postgres_port"),
            password=self._persistent_secret("postgres_password", lambda: secrets.token_urlsafe(24)),
            env=self.environment(),
            log_path=self.service_log_folder / "postgres.log",
        )

    def _redis(self) -> RedisServer:
        return RedisServer(
            self.home / "redis",
            port=self._persistent_port("redis_port"),
            password=self._persistent_secret("redis_password", lambda: secrets.token_urlsafe(24)),
            env=self.environment(),
            log_path=self.service_log_folder / "redis.log",
        )

    def _secrets_path(self) -> Path:
        return self.home / "stack-secrets.json"

    def _load_secrets(self) -> dict[str, Any]:
        try:
            return dict(json.loads(self._secrets_path().read_text()))
        except (OSError, ValueError):
            return {}

    def _store_secrets(self, stored: Mapping[str, Any]) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self._secrets_path().write_text(json.dumps(stored))
        self._secrets_path().chmod(0o600)

    def _persistent_secret(self, key: str, make: Callable[[], str]) -> str:
        """Kept across restarts of the same home: encrypted connections and sessions stay readable."""
        stored = self._load_secrets()
        if key not in stored:
            stored[key] = make()
            self._store_secrets(stored)
        return str(stored[key])

    def _persistent_port(self, key: str) -> int:
        port = int(self._persistent_secret(key, lambda: str(free_port())))
        if port_is_free(port):
            return port
        stored = self._load_secrets()
        stored[key] = str(free_port())
        self._store_secrets(stored)
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
        """Start the database and broker (when used), the backend and the Airflow services, and wait until the
        API reports them all healthy (and the Celery worker consumes)."""
        started = time.monotonic()
        self.write_config()
        try:
            self._start_infrastructure()
            self.timings["infrastructure"] = time.monotonic() - started
            self.backend = ManagedProcess(
                "smpipe-local",
                [
                    executable(a) if i == 0 else a
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
            first, *more = self.triggerer_names
            for name in self.service_names:
                if name not in more:
                    self._start_service(name)
            self._wait_until_healthy(deadline=started + timeout)
            if WORKER in self.services:
                self._wait_for_worker(deadline=started + timeout)
            self.triggerer_jobs[first] = self._new_triggerer_job(first, set(), deadline=started + timeout)
            for name in more:
                self._start_service(name)
                known = set(self.triggerer_jobs.values())
                self.triggerer_jobs[name] = self._new_triggerer_job(name, known, deadline=started + timeout)
        except BaseException:
            self.stop()
            raise
        self.timings["healthy"] = time.monotonic() - started
        self.echo(f"Airflow is up in {self.timings['healthy']:.0f}s: {self.api_url} ({self.describe()})")

    def describe(self) -> str:
        """What runs, in one line (``SQLite, LocalExecutor, 1 triggerer``)."""
        database = {"sqlite": "SQLite", "postgres": "PostgreSQL"}[self.db]
        triggerers = f"{self.triggerers} triggerer{'s' if self.triggerers > 1 else ''}"
        return f"{database}, {EXECUTORS[self.executor]}, {triggerers}"

    def _start_infrastructure(self) -> None:
        servers: list[tuple[PostgresServer | RedisServer, ManagedProcess]] = []
        if self.db == "postgres":
            postgres = self._postgres()
            postgres.prepare()
            servers.append((postgres, postgres.process()))
        if self.executor == "celery":
            redis = self._redis()
            servers.append((redis, redis.process()))
        for _, process in servers:
            process.start()
            self.infrastructure[process.name] = process
        for server, process in servers:
            server.wait_ready(process)
            if isinstance(server, PostgresServer):
                server.ensure_database()
            self.echo(f"{process.name} ready on 127.0.0.1:{server.port}")

    def _start_service(self, name: str) -> ManagedProcess:
        kind = "triggerer" if name in self.triggerer_names else name
        argv = service_command(kind, api_host=self.api_host, api_port=self.api_port)
        argv[0] = executable(argv[0])
        process = ManagedProcess(
            name, argv, self.service_log_folder / f"{name}.log", self.service_environment(name)
        )
        process.start()
        self.services[name] = process
        return process

    def _run_cli(self, args: Sequence[str], log_name: str, timeout: float = 300.0) -> None:
        log_path = self.service_log_folder / f"{log_name}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as output:
            result = subprocess.run(
                [executable("airflow"), *args],
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
            line = _last_line_since_start(self.backend.log_path, lambda text: text.startswith(_READY_PREFIX))
            if line is not None:
                return line[len(_READY_PREFIX) :].strip()
            if not self.backend.alive():
                raise StackError(f"smpipe-local exited; see {self.backend.log_path}:\n{self.backend.tail()}")
            time.sleep(0.2)
        raise StackError(f"smpipe-local printed no ready line in {timeout:.0f}s; see {self.backend.log_path}")

    def _wait_for_worker(self, deadline: float) -> None:
        worker = self.services[WORKER]
        while time.monotonic() < deadline:
            if _last_line_since_start(worker.log_path, lambda text: _WORKER_READY.search(text) is not None):
                return
            if not worker.alive():
                raise StackError(f"the Celery worker exited; see {worker.log_path}:\n{worker.tail()}")
            time.sleep(0.5)
        raise StackError(f"the Celery worker did not get ready in time; see {worker.log_path}")

    def _new_triggerer_job(self, name: str, known: set[int], deadline: float) -> int:
        """The id of the TriggererJob that the just started triggerer ``name`` registered."""
        process = self.services[name]
        while time.monotonic() < deadline:
            fresh = [
                job["id"]
                for job in self.jobs("TriggererJob", alive_only=True)
                # Jobs of an earlier start of this home may still look alive for a while.
                if job["id"] not in known and parse_time(job["start_date"]) >= process.started_at - 1.0
            ]
            if len(fresh) == 1:
                return int(fresh[0])
            if len(fresh) > 1:
                raise StackError(f"several new triggerer jobs {fresh} while starting {name} alone")
            if not process.alive():
                raise StackError(f"{name} exited; see {process.log_path}:\n{process.tail()}")
            time.sleep(0.5)
        raise StackError(f"{name} registered no triggerer job in time; see {process.log_path}")

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
            for process in (self.backend, *self.infrastructure.values(), *self.services.values()):
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
        """Stop every service (in parallel), then the backend, Redis and PostgreSQL. Safe to call twice."""
        started = time.monotonic()
        had_processes = bool(self.services) or self.backend is not None or bool(self.infrastructure)
        self.close()
        running = [p for p in self.services.values() if p.popen is not None]
        if running:
            with ThreadPoolExecutor(len(running)) as pool:
                list(pool.map(lambda p: p.stop(grace), running))
        self.services.clear()
        if self.backend is not None:
            self.backend.stop(grace)
            self.backend = None
        for name in ("redis", "postgres"):
            process = self.infrastructure.pop(name, None)
            if process is not None:
                process.stop(grace)
        if had_processes:
            self.timings["stop"] = time.monotonic() - started

    def restart_triggerer(self, timeout: float = 120.0, name: str = "triggerer") -> None:
        """Stop a triggerer (SIGTERM) and start a new one; returns once the new one registered and
        heartbeats (:attr:`triggerer_jobs` names its new job id)."""
        old = self.services.get(name)
        if old is not None:
            old.stop()
        known = set(self.triggerer_jobs.values())
        self._start_service(name)
        self.triggerer_jobs[name] = self._new_triggerer_job(name, known, deadline=time.monotonic() + timeout)

    def kill_service(self, name: str) -> None:
        """SIGKILL one service's whole process group, as a crash or an OOM kill would (no restart)."""
        self.services[name].kill()

    def pause_service(self, name: str) -> None:
        """Freeze one service (SIGSTOP to its process group): no heartbeat, no work, until :meth:`resume_service`."""
        self.services[name].signal(signal.SIGSTOP)

    def resume_service(self, name: str) -> None:
        """Let a frozen service go on (SIGCONT)."""
        self.services[name].signal(signal.SIGCONT)

    def triggerer_of_job(self, job_id: int) -> str:
        """The triggerer service whose TriggererJob is ``job_id``."""
        for name, known in self.triggerer_jobs.items():
            if known == job_id:
                return name
        raise StackError(f"no triggerer of this stack has job id {job_id} (known: {self.triggerer_jobs})")

    def pids(self) -> dict[str, int]:
        processes = {**self.infrastructure, "smpipe-local": self.backend, **self.services}
        return {name: p.pid for name, p in processes.items() if p is not None and p.pid is not None}

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
        process = (
            self.backend if name == "smpipe-local" else {**self.infrastructure, **self.services}.get(name)
        )
        return list(process.argv) if process is not None else []

    def detach(self) -> None:
        """Forget the processes without stopping them (``up``: they keep running until ``down``)."""
        self.services = {}
        self.infrastructure = {}
        self.backend = None


def _last_line_since_start(path: Path, matches: Callable[[str], bool]) -> str | None:
    """The last line matching ``matches`` written since the process's start marker (older runs share files)."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        if matches(line):
            return line
        if line.startswith("=== "):
            return None
    return None


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _fernet_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode()
