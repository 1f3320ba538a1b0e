"""End to end through real Airflow services (api-server, scheduler, dag-processor, triggerer) and the local backend.

One stack serves every scenario of the module; each scenario triggers its own run of ``e2e_pipeline``
(tests/fixtures/e2e_dags), whose steps really run as local jobs.
"""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from airflow_provider_smpipe.demo.stack import AirflowStack, StackError
from airflow_provider_smpipe.executions import RunKey, display_name_prefix

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.e2e

DAG_ID = "e2e_pipeline"
PIPELINE = "e2e-pipeline-ml"
DAGS = Path(__file__).parents[1] / "fixtures" / "e2e_dags"
STEP_TASKS = ["ml.prepare", "ml.train", "ml.evaluate", "ml.check", "ml.publish", "ml.reject"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowStack]:
    home = tmp_path_factory.mktemp("airflow")
    with AirflowStack(home, dags_folder=DAGS) as running:
        s3 = client(running, "s3")
        s3.create_bucket(Bucket="smpipe-e2e")
        s3.put_object(Bucket="smpipe-e2e", Key="raw/data.txt", Body="\n".join(map(str, range(30))).encode())
        running.wait_for_dag(DAG_ID)
        running.unpause(DAG_ID)
        yield running


def client(stack: AirflowStack, service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=stack.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def run(stack: AirflowStack, conf: dict[str, Any] | None = None, timeout: float = 600) -> tuple[str, str]:
    run_id = stack.trigger(DAG_ID, conf=conf or {})
    final = None
    for change in stack.wait_for_run(DAG_ID, run_id, timeout=timeout):
        if change.task_id is None:
            final = change.new
    assert final is not None
    return run_id, final


def executions_of(stack: AirflowStack, run_id: str) -> list[dict[str, Any]]:
    prefix = display_name_prefix(RunKey(DAG_ID, run_id, "ml"))
    summaries = client(stack, "sagemaker").list_pipeline_executions(PipelineName=PIPELINE)[
        "PipelineExecutionSummaries"
    ]
    return [s for s in summaries if s.get("PipelineExecutionDisplayName", "").startswith(prefix)]


def xcom(stack: AirflowStack, run_id: str, task_id: str, key: str = "return_value") -> Any:
    entry = stack.api("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}")
    return entry["value"]


def log_so_far(stack: AirflowStack, run_id: str, task_id: str) -> str:
    """The task's log, or "" while the task instance or its log does not exist yet."""
    try:
        return stack.task_log(DAG_ID, run_id, task_id)
    except StackError:
        return ""


def wait_until(condition: Any, timeout: float, message: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(1.0)
    raise AssertionError(message)


def test_pipeline_succeeds_with_step_logs_and_results(stack: AirflowStack) -> None:
    run_id, final = run(stack)
    assert final == "success"
    states = stack.task_states(DAG_ID, run_id)
    assert {task: states[task] for task in STEP_TASKS} == {
        "ml.prepare": "success",
        "ml.train": "success",
        "ml.evaluate": "success",
        "ml.check": "success",
        "ml.publish": "success",
        "ml.reject": "skipped",  # the condition's untaken branch
    }
    log = stack.task_log(DAG_ID, run_id, "ml.prepare")
    for index in range(5):
        assert log.count(f"prepare: line {index} of 5") == 1, log
    assert "prepare: wrote 30 rows" in log
    assert "train: model written" in stack.task_log(DAG_ID, run_id, "ml.train")
    skipped_log = stack.task_log(DAG_ID, run_id, "ml.reject")
    assert "skipped" in skipped_log.lower()

    train = xcom(stack, run_id, "ml.train")
    assert train["model_artifacts"].endswith("/output/model.tar.gz")
    evaluate = xcom(stack, run_id, "ml.evaluate")
    assert evaluate["property_files"]["evaluation"]["metrics"]["accuracy"] == pytest.approx(0.8)
    assert evaluate["outputs"]["evaluation"].startswith("s3://smpipe-e2e/")
    job_link = xcom(stack, run_id, "ml.prepare", "smpipe_step_job")
    assert job_link["job_name"].startswith("pipelines-") and job_link["job_kind"] == "processing-jobs"
    launch = xcom(stack, run_id, "ml.launch")
    assert launch["execution_arn"] == executions_of(stack, run_id)[0]["PipelineExecutionArn"]


def test_retried_launch_reattaches_instead_of_starting_a_second_execution(stack: AirflowStack) -> None:
    run_id, final = run(stack)
    assert final == "success"
    first = xcom(stack, run_id, "ml.launch")
    stack.api(
        "POST",
        f"/dags/{DAG_ID}/clearTaskInstances",
        json={"dag_run_id": run_id, "task_ids": ["ml.launch"], "only_failed": False, "dry_run": False},
    )
    wait_until(
        lambda: (
            stack.task_states(DAG_ID, run_id)["ml.launch"] == "success"
            and stack.run_state(DAG_ID, run_id) == "success"
        ),
        240,
        "the cleared launch task did not succeed again",
    )
    again = xcom(stack, run_id, "ml.launch")
    assert again["execution_arn"] == first["execution_arn"]
    assert again["attached"] is True
    assert len(executions_of(stack, run_id)) == 1


def test_else_branch_fails_the_run_with_the_fail_step_message(stack: AirflowStack) -> None:
    run_id, final = run(stack, {"min_accuracy": 0.99})
    assert final == "failed"
    states = stack.task_states(DAG_ID, run_id)
    assert states["ml.check"] == "success"
    assert states["ml.publish"] == "skipped"
    assert states["ml.reject"] == "failed"
    assert "accuracy below the threshold" in stack.task_log(DAG_ID, run_id, "ml.reject")


def test_failing_step_fails_its_task_with_the_reason_and_downstream_never_runs(stack: AirflowStack) -> None:
    run_id, final = run(stack, {"fail_training": True})
    assert final == "failed"
    states = stack.task_states(DAG_ID, run_id)
    assert states["ml.prepare"] == "success"
    assert states["ml.train"] == "failed"
    for task in ["ml.evaluate", "ml.check", "ml.publish", "ml.reject"]:
        assert states[task] == "upstream_failed", states
    log = stack.task_log(DAG_ID, run_id, "ml.train")
    assert "asked to fail" in log and "exit code" in log
    execution = executions_of(stack, run_id)[0]
    steps = client(stack, "sagemaker").list_pipeline_execution_steps(
        PipelineExecutionArn=execution["PipelineExecutionArn"]
    )["PipelineExecutionSteps"]
    assert {s["StepName"] for s in steps} == {"prepare", "train"}


def test_marking_a_running_step_failed_stops_the_execution(stack: AirflowStack) -> None:
    run_id = stack.trigger(DAG_ID, conf={"lines": 300, "step_sleep": 0.2})
    wait_until(
        lambda: "prepare: line 3 of 300" in log_so_far(stack, run_id, "ml.prepare"),
        300,
        "the long prepare step never logged",
    )
    stack.api(
        "PATCH",
        f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/ml.prepare",
        json={"new_state": "failed"},
    )
    sagemaker = client(stack, "sagemaker")
    arn = executions_of(stack, run_id)[0]["PipelineExecutionArn"]
    status = wait_until(
        lambda: (
            (s := sagemaker.describe_pipeline_execution(PipelineExecutionArn=arn)["PipelineExecutionStatus"])
            in ("Stopping", "Stopped")
            and s
        ),
        90,
        "marking the step task failed did not stop the execution",
    )
    assert status in ("Stopping", "Stopped")
    wait_until(lambda: stack.run_state(DAG_ID, run_id) in ("failed", "success"), 120, "the run did not end")


def test_triggerer_killed_mid_step_ends_the_task_with_no_log_line_lost(stack: AirflowStack) -> None:
    lines = 60
    run_id = stack.trigger(DAG_ID, conf={"lines": lines, "step_sleep": 0.4})
    wait_until(
        lambda: f"prepare: line 5 of {lines}" in log_so_far(stack, run_id, "ml.prepare"),
        300,
        "the prepare step never logged",
    )
    triggerer = stack.services["triggerer"]
    assert triggerer.pid is not None
    os.killpg(triggerer.pid, signal.SIGKILL)
    stack.restart_triggerer()
    final = None
    for change in stack.wait_for_run(DAG_ID, run_id, timeout=600):
        if change.task_id is None:
            final = change.new
    assert final == "success"
    # The lines of both triggerers' log files together: each exactly once, none lost.
    text = "\n".join(path.read_text() for path in stack.task_log_files(DAG_ID, run_id, "ml.prepare"))
    found = re.findall(rf"prepare: line (\d+) of {lines}", text)
    assert sorted(map(int, found)) == list(range(lines)), found
