"""The scheduled escape-hatch DAG: the scheduler starts its run, an SDK-built step runs next to a normal one,
and the step tasks survive a triggerer restart while they wait."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest
from e2e_support import follow

if TYPE_CHECKING:
    from airflow_provider_smpipe.demo.stack import AirflowStack

pytestmark = pytest.mark.e2e

DAG_ID = "scheduled_escape_hatch"


def _scheduled_run_id(demo_stack: AirflowStack, timeout: float = 120.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = demo_stack.api("GET", f"/dags/{DAG_ID}/dagRuns")["dag_runs"]
        scheduled = [r for r in runs if r["run_type"] == "scheduled"]
        if scheduled:
            return str(scheduled[0]["dag_run_id"])
        time.sleep(1.0)
    raise AssertionError(f"the scheduler made no run of {DAG_ID} within {timeout:.0f}s")


def _wait_for_deferred(demo_stack: AirflowStack, run_id: str, timeout: float = 300.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        deferred = [t for t, s in demo_stack.task_states(DAG_ID, run_id).items() if s == "deferred"]
        if deferred:
            return deferred[0]
        time.sleep(0.5)
    raise AssertionError(f"no step task of {run_id} was deferred within {timeout:.0f}s")


def test_scheduled_run_with_sdk_step_survives_a_triggerer_restart(demo_stack: AirflowStack) -> None:
    demo_stack.wait_for_dag(DAG_ID)
    demo_stack.unpause(DAG_ID)  # catchup=False: the scheduler starts the latest daily interval at once
    run_id = _scheduled_run_id(demo_stack)
    waiting = _wait_for_deferred(demo_stack, run_id)
    demo_stack.restart_triggerer()
    run = follow(demo_stack, DAG_ID, run_id)
    demo_stack.api("PATCH", f"/dags/{DAG_ID}", json={"is_paused": True})

    assert run.final_state == "success", (waiting, run.task_states)
    assert run.task_states == {
        "daily.launch": "success",
        "daily.collect": "success",
        "daily.summarize": "success",
    }
    logical_date = demo_stack.api("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}")["logical_date"][:10]
    # The templated argument was rendered for the run, and the SDK-built step ran its own script.
    assert f"collected 500 events for {logical_date}" in demo_stack.task_log(DAG_ID, run_id, "daily.collect")
    assert "Daily events: 500 events" in demo_stack.task_log(DAG_ID, run_id, "daily.summarize")
