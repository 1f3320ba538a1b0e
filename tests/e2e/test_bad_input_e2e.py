"""Bad input on the real services: the DAG processor's import error, and a launch task that refuses a rendered
value in one line, without retrying, before anything is created in the local backend.

DAGs: tests/fixtures/bad_input_e2e_dags (one stack for the module).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from e2e_support import follow

from airflow_provider_smpipe.demo.stack import AirflowStack, ApiNotFound

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.e2e

DAGS = Path(__file__).parents[1] / "fixtures" / "bad_input_e2e_dags"
MESSAGE = (
    "task 'ml.prep' field 'instance_type': 'm5.large' is not a SageMaker instance type (ml.<family>.<size>, "
    "e.g. 'ml.m5.large')"
)
FOREIGN_FRAMES = ("/sagemaker/", "/pydantic", "/botocore/", "/boto3/")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowStack]:
    with AirflowStack(tmp_path_factory.mktemp("airflow"), dags_folder=DAGS) as running:
        running.wait_for_dag("bad_launch_e2e")
        running.unpause("bad_launch_e2e")
        yield running


def client(stack: AirflowStack, service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=stack.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def test_the_dag_processor_reports_the_error_in_one_line(stack: AirflowStack) -> None:
    errors = stack.api("GET", "/importErrors")["import_errors"]
    (error,) = [e for e in errors if str(e["filename"]).endswith("bad_parse_e2e.py")]
    last_line = str(error["stack_trace"]).rstrip().splitlines()[-1]
    assert last_line == f"airflow_provider_smpipe.exceptions.PipelineDefinitionError: {MESSAGE}"
    with pytest.raises(ApiNotFound):
        stack.api("GET", "/dags/bad_parse_e2e")


def test_the_launch_task_refuses_once_and_nothing_is_created(stack: AirflowStack) -> None:
    run_id = stack.trigger("bad_launch_e2e")
    run = follow(stack, "bad_launch_e2e", run_id, timeout=300)
    assert run.final_state == "failed"
    assert run.task_states["ml.launch"] == "failed"
    assert {run.task_states["ml.prep"], run.task_states["ml.notify"]} == {"upstream_failed"}
    launch = [ti for ti in stack.task_instances("bad_launch_e2e", run_id) if ti["task_id"] == "ml.launch"]
    assert launch[0]["try_number"] == 1  # retries=2, none used: the same DAG fails the same way

    entries = stack.api(
        "GET",
        f"/dags/bad_launch_e2e/dagRuns/{run_id}/taskInstances/ml.launch/logs/1",
        params={"full_content": "true"},
        headers={"Accept": "application/json"},
    )["content"]
    events = [str(entry.get("event", "")) for entry in entries if isinstance(entry, dict)]
    assert events.count(MESSAGE) == 1, events
    # The failure entry carries Airflow's own frames and the provider's exception, nothing of the SDK.
    details = [
        entry.get("error_detail")
        for entry in entries
        if isinstance(entry, dict) and entry.get("error_detail")
    ]
    frames = [str(frame) for detail in details for item in detail for frame in item.get("frames", [])]
    print(f"launch failure entry: {len(frames)} frames", *frames, sep="\n")
    assert not [frame for frame in frames if any(part in frame for part in FOREIGN_FRAMES)], frames
    # Airflow's task runner (6 frames here) down to the launch task's execute, where the failure is raised.
    assert len(frames) <= 8 and "operators/launch.py" in frames[-1] and "'execute'" in frames[-1], frames
    exceptions = [item for detail in details for item in detail]
    assert [(item.get("exc_type"), item.get("exc_value")) for item in exceptions] == [
        ("AirflowFailException", MESSAGE)
    ]

    assert client(stack, "sagemaker").list_pipelines()["PipelineSummaries"] == []
    assert [b["Name"] for b in client(stack, "s3").list_buckets()["Buckets"]] == []
    assert client(stack, "lambda").list_functions()["Functions"] == []
