"""A complete local Airflow stack on the local SageMaker backend, for ``make demo`` and the end-to-end tests.

:class:`AirflowStack` starts ``smpipe-local`` and the Airflow 3 services (``api-server``, ``scheduler``,
``dag-processor``, one or more ``triggerer`` processes, and a Celery ``worker`` with the CeleryExecutor) as
separate processes sharing one ``AIRFLOW_HOME``, each in its own process group with its output in
``<home>/services/<name>.log``. The metadata database is SQLite, or a PostgreSQL cluster of the stack's own
(Debian's binaries; :mod:`.servers`), and the CeleryExecutor's broker a Redis server of its own. It then drives
them through the public REST API (:mod:`.rest`): unpause and trigger DAGs, follow a run's task states, read task
logs, restart or kill a triggerer. ``stop()`` ends every process it started (SIGTERM to the process group,
SIGKILL after a grace period).

Every Airflow command line is built by :func:`service_command` / :func:`backend_command` (:mod:`.commands`),
which ``docker-compose.yaml`` mirrors (``tests/test_docker_compose.py`` compares them and the settings).

Modules: :mod:`.harness` (the stack), :mod:`.rest` (REST API client), :mod:`.servers` (PostgreSQL, Redis),
:mod:`.processes` (child processes, ``down``), :mod:`.commands` (command lines), :mod:`.errors`.
"""

from __future__ import annotations

from airflow_provider_smpipe.demo.stack.commands import (
    BACKEND_ACCESS_KEY,
    BACKEND_SECRET_KEY,
    REGION,
    SERVICES,
    WORKER,
    aws_connection_extra,
    backend_command,
    service_command,
)
from airflow_provider_smpipe.demo.stack.errors import ApiNotFound, StackError
from airflow_provider_smpipe.demo.stack.harness import (
    COMPOSE_DEPLOYMENT,
    DATABASES,
    DEFAULT_DAGS_FOLDER,
    EXECUTORS,
    REPO_ROOT,
    AirflowStack,
)
from airflow_provider_smpipe.demo.stack.processes import (
    ManagedProcess,
    free_port,
    port_is_free,
    process_start_ticks,
    stop_from_state,
    terminate_group,
)
from airflow_provider_smpipe.demo.stack.rest import (
    TERMINAL_RUN_STATES,
    TERMINAL_TASK_STATES,
    AirflowRestApi,
    StateChange,
)

__all__ = [
    "BACKEND_ACCESS_KEY",
    "BACKEND_SECRET_KEY",
    "COMPOSE_DEPLOYMENT",
    "DATABASES",
    "DEFAULT_DAGS_FOLDER",
    "EXECUTORS",
    "REGION",
    "REPO_ROOT",
    "SERVICES",
    "TERMINAL_RUN_STATES",
    "TERMINAL_TASK_STATES",
    "WORKER",
    "AirflowRestApi",
    "AirflowStack",
    "ApiNotFound",
    "ManagedProcess",
    "StackError",
    "StateChange",
    "aws_connection_extra",
    "backend_command",
    "free_port",
    "port_is_free",
    "process_start_ticks",
    "service_command",
    "stop_from_state",
    "terminate_group",
]
