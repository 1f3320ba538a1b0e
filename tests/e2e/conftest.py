"""End-to-end fixtures: ONE real Airflow stack (api-server, scheduler, dag-processor, triggerer) on the local
SageMaker backend per test session, and ONE completed run of ``churn_pipeline`` the tests inspect.

Starting the stack takes about 35 s here and a churn run about 85 s, so the modules share them. At the end the
service logs and task logs are copied to ``test-artifacts/e2e/`` for CI to keep.
"""

from __future__ import annotations

import os
import shutil
from typing import TYPE_CHECKING

import pytest
from e2e_support import ARTIFACTS, CHURN_DAG, FollowedRun, follow

from airflow_provider_smpipe.demo.stack import AirflowStack

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


def _require_local_backend_prerequisites() -> None:
    # The backend runs jobs in a private mount namespace (unshare + bind mount of /opt/ml): root and util-linux.
    if shutil.which("unshare") is None:
        pytest.skip("the local backend needs `unshare` (util-linux): run `make system-deps`")
    if os.geteuid() != 0:
        pytest.skip("the local backend needs root to bind-mount /opt/ml for its jobs")


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowStack]:
    _require_local_backend_prerequisites()
    home = tmp_path_factory.mktemp("airflow-home")
    airflow_stack = AirflowStack(home, echo=lambda line: print(line, flush=True))
    airflow_stack.start()
    print(f"stack timings: {airflow_stack.timings}", flush=True)
    try:
        yield airflow_stack
    finally:
        airflow_stack.stop()
        _keep_logs(home)


def _keep_logs(home: Path) -> None:
    target = ARTIFACTS / "e2e"
    shutil.rmtree(target, ignore_errors=True)
    for folder in ("services", "logs"):
        if (home / folder).is_dir():
            shutil.copytree(home / folder, target / folder, dirs_exist_ok=True)


@pytest.fixture(scope="session")
def churn_run(stack: AirflowStack) -> FollowedRun:
    """One run of the example DAG with its default parameters, followed to the end."""
    stack.wait_for_dag(CHURN_DAG)
    stack.unpause(CHURN_DAG)
    run_id = stack.trigger(CHURN_DAG)
    return follow(stack, CHURN_DAG, run_id)
