"""The stack harness's options and its own PostgreSQL and Redis servers (real processes, no Airflow)."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg2
import pytest

from airflow_provider_smpipe.demo.stack import AirflowStack, ManagedProcess
from airflow_provider_smpipe.demo.stack.processes import free_port
from airflow_provider_smpipe.demo.stack.servers import (
    PostgresServer,
    RedisServer,
    reachable_temp_home,
)

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def home() -> Iterator[Path]:
    """A stack home the unprivileged PostgreSQL user can reach (not under pytest's temporary directories)."""
    path = reachable_temp_home("smpipe-servers-test-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _uid(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError("no Uid line")


def test_options_are_checked_and_the_default_is_sqlite_local_one_triggerer(tmp_path: Path) -> None:
    stack = AirflowStack(tmp_path)
    settings = stack.airflow_settings()
    assert settings["core"]["executor"] == "LocalExecutor"
    assert settings["database"]["sql_alchemy_conn"].startswith("sqlite:///")
    assert "celery" not in settings
    assert stack.service_names == ["api-server", "scheduler", "dag-processor", "triggerer"]
    with pytest.raises(ValueError, match="CeleryExecutor needs db='postgres'"):
        AirflowStack(tmp_path, executor="celery")
    with pytest.raises(ValueError, match="db must be one of"):
        AirflowStack(tmp_path, db="mysql")
    with pytest.raises(ValueError, match="at least 1"):
        AirflowStack(tmp_path, triggerers=0)


def test_several_triggerers_serve_their_logs_on_ports_of_their_own(tmp_path: Path) -> None:
    stack = AirflowStack(
        tmp_path,
        db="postgres",
        executor="celery",
        triggerers=3,
        triggerer_heartbeat_sec=1,
        triggerer_health_check_threshold=20,
        service_env={"triggerer-2": {"EXTRA": "yes"}},
    )
    assert stack.service_names == [
        "api-server",
        "scheduler",
        "dag-processor",
        "triggerer",
        "triggerer-2",
        "triggerer-3",
        "worker",
    ]
    settings = stack.airflow_settings()
    assert settings["triggerer"]["job_heartbeat_sec"] == "1"
    assert settings["triggerer"]["triggerer_health_check_threshold"] == "20"
    ports = {
        settings["logging"]["trigger_log_server_port"],
        stack.service_environment("triggerer-2")["AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT"],
        stack.service_environment("triggerer-3")["AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT"],
    }
    assert len(ports) == 3
    assert "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT" not in stack.service_environment("triggerer")
    assert stack.service_environment("triggerer-2")["EXTRA"] == "yes"
    assert "EXTRA" not in stack.service_environment("triggerer-3")
    # Secrets and ports are kept for the home: a restart finds the same database.
    again = AirflowStack(tmp_path, db="postgres", executor="celery").airflow_settings()
    assert again["database"] == settings["database"] and again["celery"] == settings["celery"]


def test_postgres_runs_unprivileged_in_the_home_and_keeps_its_cluster(home: Path) -> None:
    tmp_path = home
    env = dict(os.environ)

    def server(password: str) -> PostgresServer:
        return PostgresServer(
            tmp_path / "postgres", port=port, password=password, env=env, log_path=tmp_path / "postgres.log"
        )

    port = free_port()
    first = server("first-secret")
    first.prepare()
    process = first.process()
    assert "first-secret" not in " ".join(process.argv)
    process.start()
    try:
        first.wait_ready(process)
        first.ensure_database()
        if os.geteuid() == 0:
            assert _uid(process.pid or 0) != 0  # PostgreSQL refuses root; the harness runs it as another user
        with (
            psycopg2.connect(first.url.replace("+psycopg2", "")) as connection,
            connection.cursor() as cursor,
        ):
            cursor.execute("CREATE TABLE kept (x int)")
    finally:
        process.stop()
    # A second start of the same home: no initdb, the data is still there, a new password applies.
    second = server("second-secret")
    second.prepare()
    process = second.process()
    process.start()
    try:
        second.wait_ready(process)
        second.ensure_database()
        with (
            psycopg2.connect(second.url.replace("+psycopg2", "")) as connection,
            connection.cursor() as cursor,
        ):
            cursor.execute("SELECT count(*) FROM kept")
            assert cursor.fetchone() == (0,)
        with pytest.raises(psycopg2.OperationalError):
            psycopg2.connect(first.url.replace("+psycopg2", "")).close()
        # Only 127.0.0.1 listens.
        assert "listen_addresses=127.0.0.1" in process.argv
    finally:
        process.stop()


def test_redis_asks_for_its_password_and_keeps_it_out_of_the_command_line(tmp_path: Path) -> None:
    redis = RedisServer(
        tmp_path / "redis",
        port=free_port(),
        password="broker-secret",
        env=dict(os.environ),
        log_path=tmp_path / "redis.log",
    )
    process: ManagedProcess = redis.process()
    assert "broker-secret" not in " ".join(process.argv)
    assert (tmp_path / "redis" / "redis.conf").stat().st_mode & 0o777 == 0o600
    process.start()
    try:
        redis.wait_ready(process)
        with socket.create_connection(("127.0.0.1", redis.port), timeout=5) as sock:
            sock.sendall(b"PING\r\n")
            assert sock.recv(256).startswith(b"-NOAUTH")
        assert redis.url == f"redis://:broker-secret@127.0.0.1:{redis.port}/0"
    finally:
        process.stop()
