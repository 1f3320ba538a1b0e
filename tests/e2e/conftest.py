"""End-to-end fixtures: ONE real Airflow stack (api-server, scheduler, dag-processor, triggerer) on the local
SageMaker backend for the modules that use the example DAGs, and ONE completed run of ``churn_pipeline`` they
inspect.

Starting the stack takes about 35 s here and a churn run about 85 s, so the modules share them (``demo_stack``).
Its users run first and it stops right after the last of them, so it never runs next to another module's own
stack on CI's two cores. Its service and task logs are copied to ``test-artifacts/e2e/`` for CI to keep.
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

SHARED = "demo_stack"
_running: list[AirflowStack] = []


def _require_local_backend_prerequisites() -> None:
    # The backend runs jobs in a private mount namespace (unshare + bind mount of /opt/ml): root and util-linux.
    if shutil.which("unshare") is None:
        pytest.skip("the local backend needs `unshare` (util-linux): run `make system-deps`")
    if os.geteuid() != 0:
        pytest.skip("the local backend needs root to bind-mount /opt/ml for its jobs")


def _stop_shared_stack() -> None:
    while _running:
        stack = _running.pop()
        stack.stop()
        _keep_logs(stack.home)


def _keep_logs(home: Path) -> None:
    target = ARTIFACTS / "e2e"
    shutil.rmtree(target, ignore_errors=True)
    for folder in ("services", "logs"):
        if (home / folder).is_dir():
            shutil.copytree(home / folder, target / folder, dirs_exist_ok=True)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Within this folder, run the tests that use the shared stack first (other items keep their places)."""
    here = os.path.dirname(__file__)
    slots = [i for i, item in enumerate(items) if str(item.path).startswith(here)]
    ours = sorted((items[i] for i in slots), key=lambda item: SHARED not in getattr(item, "fixturenames", ()))
    for slot, item in zip(slots, ours, strict=True):
        items[slot] = item


def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """Stop the shared stack once no later test needs it."""
    if _running and (nextitem is None or SHARED not in getattr(nextitem, "fixturenames", ())):
        _stop_shared_stack()


@pytest.fixture(scope="session")
def demo_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowStack]:
    """The repository's ``dags/`` on a real stack."""
    _require_local_backend_prerequisites()
    stack = AirflowStack(tmp_path_factory.mktemp("airflow-home"), echo=lambda line: print(line, flush=True))
    _running.append(stack)
    try:
        stack.start()
    except BaseException:
        _stop_shared_stack()
        raise
    print(f"stack timings: {stack.timings}", flush=True)
    yield stack
    _stop_shared_stack()


@pytest.fixture(scope="session")
def churn_run(demo_stack: AirflowStack) -> FollowedRun:
    """One run of the example DAG with its default parameters, followed to the end."""
    demo_stack.wait_for_dag(CHURN_DAG)
    demo_stack.unpause(CHURN_DAG)
    run_id = demo_stack.trigger(CHURN_DAG)
    return follow(demo_stack, CHURN_DAG, run_id)
