"""docker-compose.yaml (there is no Docker engine here: its structure is checked, and its commands and settings
against what the native stack harness runs in the same mode, ``COMPOSE_DEPLOYMENT``: PostgreSQL, the
CeleryExecutor with Redis and a worker, two triggerers; tests/e2e/test_scaleout_e2e.py runs that mode)."""

from __future__ import annotations

import collections
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from airflow_provider_smpipe.demo.stack import (
    COMPOSE_DEPLOYMENT,
    SERVICES,
    WORKER,
    AirflowStack,
    backend_command,
    service_command,
)

ROOT = Path(__file__).parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yaml").read_text())
AIRFLOW_SERVICES = {name: f"airflow-{name}" for name in (*SERVICES, WORKER)}
# Settings the harness and compose choose differently on purpose: paths, ports, secrets, the database.
LOCAL_ONLY = {
    ("core", "dags_folder"),
    ("core", "execution_api_server_url"),
    ("core", "simple_auth_manager_passwords_file"),
    ("core", "fernet_key"),
    ("database", "sql_alchemy_conn"),
    ("celery", "broker_url"),
    ("celery", "result_backend"),
    ("api", "host"),
    ("api", "port"),
    ("api", "workers"),
    ("api", "secret_key"),
    ("api_auth", "jwt_secret"),
    ("logging", "base_log_folder"),
    ("logging", "dag_processor_child_process_log_directory"),
    ("logging", "worker_log_server_port"),
    ("logging", "trigger_log_server_port"),
    ("triggerer", "capacity"),
}


def _service(name: str) -> dict[str, Any]:
    return dict(COMPOSE["services"][name])


def _harness(home: Path) -> AirflowStack:
    return AirflowStack(home, api_port=8080, **COMPOSE_DEPLOYMENT)


def test_services() -> None:
    assert set(COMPOSE["services"]) == {
        "postgres",
        "redis",
        "smpipe-local",
        "airflow-init",
        *AIRFLOW_SERVICES.values(),
    }


def test_the_harness_runs_the_same_services_in_that_mode(tmp_path: Path) -> None:
    harness = _harness(tmp_path)
    replicas = {
        name: int((_service(service).get("deploy") or {}).get("replicas", 1))
        for name, service in AIRFLOW_SERVICES.items()
    }
    assert replicas == {"api-server": 1, "scheduler": 1, "dag-processor": 1, "triggerer": 2, WORKER: 1}
    started = collections.Counter(
        "triggerer" if name in harness.triggerer_names else name for name in harness.service_names
    )
    assert started == replicas
    assert harness.describe() == "PostgreSQL, CeleryExecutor, 2 triggerers"


@pytest.mark.parametrize("name", [*SERVICES, WORKER])
def test_airflow_service_runs_what_the_harness_runs(name: str) -> None:
    service = _service(AIRFLOW_SERVICES[name])
    # The official image's entrypoint runs `airflow <command>`.
    assert ["airflow", *service["command"]] == service_command(name, api_host="0.0.0.0", api_port=8080)
    assert "healthcheck" in service
    assert service["build"]["dockerfile"] == "docker/Dockerfile"
    assert service["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"
    assert service["depends_on"]["smpipe-local"]["condition"] == "service_healthy"
    assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert service["depends_on"]["redis"]["condition"] == "service_healthy"
    assert "./dags:/opt/airflow/dags" in service["volumes"]
    assert any(volume.startswith("airflow-logs:") for volume in service["volumes"])


def test_backend_service_runs_what_the_harness_runs() -> None:
    backend = _service("smpipe-local")
    command = [*backend["entrypoint"], *backend["command"]]
    assert command == backend_command(host="0.0.0.0", port=4566, state_dir="/var/lib/smpipe")
    # Jobs are bind-mounted at /opt/ml in a private mount namespace: root with CAP_SYS_ADMIN.
    assert backend["user"] == "0:0"
    assert backend.get("privileged") is True or "SYS_ADMIN" in backend.get("cap_add", [])
    assert "/_smpipe/health" in " ".join(backend["healthcheck"]["test"])


def test_init_migrates_the_database() -> None:
    init = _service("airflow-init")
    assert init["command"] == ["db", "migrate"]
    assert init["depends_on"] == {"postgres": {"condition": "service_healthy"}}


def test_aws_connection_points_at_the_backend() -> None:
    env = _service("airflow-scheduler")["environment"]
    connection = json.loads(env["AIRFLOW_CONN_AWS_DEFAULT"])
    assert connection["conn_type"] == "aws"
    assert connection["extra"] == {"endpoint_url": "http://smpipe-local:4566", "region_name": "us-east-1"}


@pytest.mark.parametrize("name", sorted(AIRFLOW_SERVICES.values()))
def test_every_airflow_service_has_the_same_settings(name: str) -> None:
    env = _service(name)["environment"]
    reference = _service("airflow-scheduler")["environment"]
    assert {k: v for k, v in env.items() if k.startswith("AIRFLOW")} == {
        k: v for k, v in reference.items() if k.startswith("AIRFLOW")
    }


def test_airflow_settings_match_the_harness(tmp_path: Path) -> None:
    env = _service("airflow-scheduler")["environment"]
    harness = _harness(tmp_path).airflow_settings()
    assert harness["core"]["executor"] == "CeleryExecutor"
    assert harness["database"]["sql_alchemy_conn"].startswith("postgresql+psycopg2://")
    for section, options in harness.items():
        for key, value in options.items():
            if (section, key) in LOCAL_ONLY:
                continue
            variable = f"AIRFLOW__{section.upper()}__{key.upper()}"
            assert env.get(variable) == value, variable
    # Chosen differently, but set: the container paths, Postgres, and the secrets all components must share.
    for variable in (
        "AIRFLOW__CORE__DAGS_FOLDER",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
        "AIRFLOW__API_AUTH__JWT_SECRET",
        "AIRFLOW__API__SECRET_KEY",
    ):
        assert env.get(variable), variable
    # The same database and broker kinds, at the compose services' addresses.
    assert (
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == "postgresql+psycopg2://airflow:airflow@postgres/airflow"
    )
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"] == "db+" + env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert harness["celery"]["result_backend"] == "db+" + harness["database"]["sql_alchemy_conn"]
    assert env["AIRFLOW__CELERY__BROKER_URL"] == "redis://redis:6379/0"
    assert harness["celery"]["broker_url"].startswith("redis://")


def test_compose_sets_nothing_the_harness_does_not(tmp_path: Path) -> None:
    env = _service("airflow-scheduler")["environment"]
    harness = _harness(tmp_path).airflow_settings()
    known = {
        f"AIRFLOW__{section.upper()}__{key.upper()}" for section, keys in harness.items() for key in keys
    }
    extra = {k for k in env if k.startswith("AIRFLOW__")} - known
    # A setting only compose has would be a deployment the harness (and so the tests) never ran.
    assert extra == set(), extra


def test_worker_and_broker_services() -> None:
    worker = _service("airflow-worker")
    assert worker["environment"]["DUMB_INIT_SETSID"] == "0"
    assert "inspect ping" in " ".join(worker["healthcheck"]["test"])
    redis = _service("redis")
    assert redis["image"].startswith("redis:")
    assert "ping" in redis["healthcheck"]["test"]


def test_image_installs_this_package_with_the_local_extra() -> None:
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    assert dockerfile.startswith("# ") and "FROM apache/airflow:3.3.2-python3.11" in dockerfile
    assert '"/opt/smpipe[local,postgres,celery]"' in dockerfile
    assert '"apache-airflow==${AIRFLOW_VERSION}"' in dockerfile
