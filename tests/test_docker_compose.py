"""docker-compose.yaml (there is no Docker engine here: its structure is checked, and its commands and settings
against what the native stack harness runs)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from airflow_provider_smpipe.demo.stack import SERVICES, AirflowStack, backend_command, service_command

ROOT = Path(__file__).parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yaml").read_text())
AIRFLOW_SERVICES = {name: f"airflow-{name}" for name in SERVICES}
# Settings the harness and compose choose differently on purpose: paths, ports, secrets, the database.
LOCAL_ONLY = {
    ("core", "dags_folder"),
    ("core", "execution_api_server_url"),
    ("core", "simple_auth_manager_passwords_file"),
    ("core", "fernet_key"),
    ("database", "sql_alchemy_conn"),
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


def test_services() -> None:
    assert set(COMPOSE["services"]) == {
        "postgres",
        "smpipe-local",
        "airflow-init",
        *AIRFLOW_SERVICES.values(),
    }


@pytest.mark.parametrize("name", SERVICES)
def test_airflow_service_runs_what_the_harness_runs(name: str) -> None:
    service = _service(AIRFLOW_SERVICES[name])
    # The official image's entrypoint runs `airflow <command>`.
    assert ["airflow", *service["command"]] == service_command(name, api_host="0.0.0.0", api_port=8080)
    assert "healthcheck" in service
    assert service["build"]["dockerfile"] == "docker/Dockerfile"
    assert service["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"
    assert service["depends_on"]["smpipe-local"]["condition"] == "service_healthy"
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


def test_airflow_settings_match_the_harness(tmp_path: Path) -> None:
    env = _service("airflow-scheduler")["environment"]
    harness = AirflowStack(tmp_path, api_port=8080).airflow_settings()
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


def test_image_installs_this_package_with_the_local_extra() -> None:
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    assert dockerfile.startswith("# ") and "FROM apache/airflow:3.3.2-python3.11" in dockerfile
    assert '"/opt/smpipe[local]"' in dockerfile
    assert '"apache-airflow==${AIRFLOW_VERSION}"' in dockerfile
