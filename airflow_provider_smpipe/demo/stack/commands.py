"""The command lines of the stack's services: what the harness runs and ``docker-compose.yaml`` mirrors
(``tests/test_docker_compose.py`` compares them)."""

from __future__ import annotations

REGION = "us-east-1"
#: The Airflow services every stack runs (one process each; the triggerer may run several times).
SERVICES = ("api-server", "scheduler", "dag-processor", "triggerer")
#: The Celery worker, run with the CeleryExecutor.
WORKER = "worker"
#: Credentials of the local backend (it accepts any): also what docker-compose.yaml wires in.
BACKEND_ACCESS_KEY = "testing"
BACKEND_SECRET_KEY = "testing"


def service_command(name: str, *, api_host: str = "127.0.0.1", api_port: int = 8080) -> list[str]:
    """The ``airflow ...`` command line of one Airflow service (``docker-compose.yaml`` runs the same)."""
    if name == "api-server":
        # One worker: the demo has one user, and each worker is a full copy of the app (memory, start time).
        return ["airflow", "api-server", "--host", api_host, "--port", str(api_port), "--workers", "1"]
    if name in ("scheduler", "dag-processor", "triggerer"):
        return ["airflow", name]
    if name == WORKER:
        # Concurrency and the broker come from the [celery] settings, shared by every component.
        return ["airflow", "celery", "worker"]
    raise ValueError(f"unknown Airflow service {name!r}; expected one of {(*SERVICES, WORKER)}")


def backend_command(*, host: str = "127.0.0.1", port: int = 0, state_dir: str | None = None) -> list[str]:
    """The ``smpipe-local`` command line (``--port 0`` picks a free port, printed on the ready line)."""
    command = ["smpipe-local", "--host", host, "--port", str(port)]
    if state_dir is not None:
        command += ["--state-dir", state_dir]
    return command


def aws_connection_extra(endpoint_url: str, region_name: str = REGION) -> dict[str, str]:
    """The ``aws_default`` connection's extra pointing the amazon provider at the local backend."""
    return {"endpoint_url": endpoint_url, "region_name": region_name}
