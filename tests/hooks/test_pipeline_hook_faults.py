"""Against the local backend's fault mode: throttling and 5xx answers are retried, never surfaced."""

from __future__ import annotations

import asyncio
import json
import os
from typing import TYPE_CHECKING

import pytest

from airflow_provider_smpipe.executions import RunKey
from airflow_provider_smpipe.hooks.pipeline import SageMakerPipelineHook
from airflow_provider_smpipe.local import FaultConfig, LocalBackend

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

CONN_ID = "smpipe_faulty"
DEFINITION = json.dumps(
    {
        "Version": "2020-12-01",
        "Parameters": [{"Name": "Message", "Type": "String", "DefaultValue": "bye"}],
        "Steps": [
            {"Name": "stop", "Type": "Fail", "Arguments": {"ErrorMessage": {"Get": "Parameters.Message"}}}
        ],
    }
)


@pytest.fixture
def faulty_backend(tmp_path: Path) -> Iterator[LocalBackend]:
    with LocalBackend(port=0, state_dir=tmp_path) as backend:
        os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"] = json.dumps(
            {
                "conn_type": "aws",
                "login": "testing",
                "password": "testing",
                "extra": {"endpoint_url": backend.endpoint_url, "region_name": "us-east-1"},
            }
        )
        backend.faults.configure(
            FaultConfig(throttle_rate=0.35, error_rate=0.1, seed=11, operations=frozenset({"sagemaker:*"}))
        )
        yield backend
        os.environ.pop(f"AIRFLOW_CONN_{CONN_ID.upper()}", None)


def test_launch_calls_survive_throttling_and_server_errors(faulty_backend: LocalBackend) -> None:
    hook = SageMakerPipelineHook(aws_conn_id=CONN_ID)
    upsert = hook.upsert_pipeline(
        pipeline_name="faulty",
        definition=DEFINITION,
        role_arn="arn:aws:iam::123456789012:role/r",
        dag_id="dag",
        group_id="group",
    )
    assert upsert["action"] == "created"
    key = RunKey("dag", "manual__1", "group")
    started = hook.start_or_attach_execution(
        pipeline_name="faulty", run_key=key, parameters={"Message": "hi"}
    )
    again = hook.start_or_attach_execution(pipeline_name="faulty", run_key=key, parameters={"Message": "hi"})
    assert again["PipelineExecutionArn"] == started["PipelineExecutionArn"]

    async def follow() -> list[dict[str, object]]:
        for _ in range(100):
            execution = await hook.async_describe_execution(started["PipelineExecutionArn"])
            if execution["PipelineExecutionStatus"] != "Executing":
                return await hook.async_list_execution_steps(started["PipelineExecutionArn"])
            await asyncio.sleep(0.1)
        raise AssertionError("the execution did not end")

    steps = asyncio.run(follow())
    assert [(s["StepName"], s["StepStatus"]) for s in steps] == [("stop", "Failed")]
    for _ in range(15):  # enough calls that both kinds of fault certainly happen
        assert hook.describe_execution(started["PipelineExecutionArn"])["PipelineExecutionStatus"] == "Failed"
    injected = faulty_backend.faults.injected
    assert injected["ThrottlingException"] > 0 and injected["InternalFailure"] > 0, injected
