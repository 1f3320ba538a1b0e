"""Helpers shared by the end-to-end tests (importable from the test modules; fixtures live in conftest)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow_provider_smpipe.demo.stack import AirflowStack, StateChange

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "test-artifacts"
CHURN_DAG = "churn_pipeline"


@dataclasses.dataclass
class FollowedRun:
    """A DAG run followed to its end through the REST API."""

    dag_id: str
    run_id: str
    changes: list[StateChange]
    final_state: str | None
    task_states: dict[str, str | None]


def follow(stack: AirflowStack, dag_id: str, run_id: str, timeout: float = 900.0) -> FollowedRun:
    """Follow a run to its end, printing each state change (pytest shows them for a failing test)."""
    changes = []
    for change in stack.wait_for_run(dag_id, run_id, timeout=timeout):
        print(f"{dag_id} {change.task_id or 'RUN'}: {change.old} -> {change.new}", flush=True)
        changes.append(change)
    return FollowedRun(dag_id, run_id, changes, changes[-1].new, stack.task_states(dag_id, run_id))
