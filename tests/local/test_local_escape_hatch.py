"""Escape-hatch examples of docs/escape-hatch.md on the local backend: a step built with the SDK runs like a native
one, a step type the backend cannot run fails with its reason, and the step task's trigger reports each (what its
XCom ``return_value`` holds)."""

from __future__ import annotations

import asyncio
import json
import pickle
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from smpipe_local_helpers import create_pipeline, steps_of, wait_for

from airflow_provider_smpipe.compiler.from_airflow import build_pipeline_spec
from airflow_provider_smpipe.compiler.sdk import compile_definition
from airflow_provider_smpipe.hooks import async_clients
from airflow_provider_smpipe.triggers.pipeline_step import SageMakerPipelineStepTrigger

if TYPE_CHECKING:
    import pytest

    from airflow_provider_smpipe.local.server import LocalBackend

EXAMPLES = Path(__file__).parents[1] / "fixtures" / "escape_hatch_examples"
BUCKET = "smpipe-examples"
CONNECTION = "smpipe_local_escape_hatch"


def _start_example(backend: LocalBackend, name: str) -> tuple[str, str]:
    """Compile an example DAG's group against the backend, create its pipeline, start it: (pipeline, ARN)."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(str(EXAMPLES / f"{name}.py"))
    assert not bag.import_errors, bag.import_errors
    (dag,) = bag.dags.values()
    group = dag.task_group_dict["pipeline"]
    s3 = backend.client("s3")
    if BUCKET not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
        s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="raw/churn.csv", Body=b"churned,age\n1,42\n0,31\n")
    session = boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    )
    text = compile_definition(build_pipeline_spec(group), session, endpoint_url=backend.endpoint_url)
    sm = backend.client("sagemaker")
    pipeline = create_pipeline(sm, text)
    return pipeline, sm.start_pipeline_execution(PipelineName=pipeline)["PipelineExecutionArn"]


def _trigger_event(
    backend: LocalBackend, monkeypatch: pytest.MonkeyPatch, pipeline: str, step: str, arn: str
) -> dict[str, Any]:
    """The event the step task's trigger ends with (its ``result`` is the task's XCom return value)."""
    connection = {
        "conn_type": "aws",
        "login": "testing",
        "password": "testing",
        "extra": {"endpoint_url": backend.endpoint_url, "region_name": "us-east-1"},
    }
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONNECTION.upper()}", json.dumps(connection))
    trigger = SageMakerPipelineStepTrigger(
        pipeline_name=pipeline,
        step_name=step,
        dag_id="escape_hatch",
        run_id="manual",
        group_id="pipeline",
        execution_arn=arn,
        aws_conn_id=CONNECTION,
        poll_interval=0.2,
        end_from_trigger=False,
    )

    async def first_event() -> dict[str, Any]:
        try:
            async for event in trigger.run():
                return dict(event.payload)
            raise AssertionError("the trigger ended without an event")
        finally:
            # The triggerer keeps one client per loop for good; this loop ends here.
            for client in async_clients._clients.pop(asyncio.get_running_loop(), {}).values():
                await client.close()

    return asyncio.run(first_event())


def test_sdk_built_processing_step_runs_and_reports_its_job(
    backend: LocalBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    sm, s3 = backend.client("sagemaker"), backend.client("s3")
    pipeline, arn = _start_example(backend, "sdk_processing")
    assert wait_for(sm, arn)["PipelineExecutionStatus"] == "Succeeded"
    event = _trigger_event(backend, monkeypatch, pipeline, "prepare", arn)
    assert event["status"] == "success"
    result = event["result"]
    job = steps_of(sm, arn)["prepare"]["Metadata"]["ProcessingJob"]["Arn"]
    execution_id = arn.rsplit("/", 1)[-1]
    train = f"s3://{BUCKET}/escape-hatch-sdk-processing-pipeline/{execution_id}/train"
    assert result["step_status"] == "Succeeded"
    assert (result["job_arn"], result["job_name"]) == (job, job.rsplit("/", 1)[-1])
    assert result["outputs"] == {"train": train}
    copied = s3.get_object(
        Bucket=BUCKET, Key=f"escape-hatch-sdk-processing-pipeline/{execution_id}/train/churn.csv"
    )
    assert copied["Body"].read().startswith(b"churned,age")


def test_step_type_the_backend_cannot_run_fails_with_the_reason(
    backend: LocalBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    sm = backend.client("sagemaker")
    pipeline, arn = _start_example(backend, "quality_check")
    assert wait_for(sm, arn)["PipelineExecutionStatus"] == "Failed"
    steps = steps_of(sm, arn)
    assert steps["prepare"]["StepStatus"] == "Succeeded"  # the native step before it ran
    assert steps["data_quality"]["StepStatus"] == "Failed"
    reason = "step type QualityCheck is not supported by the local backend (it runs "
    assert steps["data_quality"]["FailureReason"].startswith(reason)
    event = _trigger_event(backend, monkeypatch, pipeline, "data_quality", arn)
    assert event["status"] == "failed"
    assert event["reason"].startswith(reason)
    assert event["result"]["step_status"] == "Failed"
    assert "job_arn" not in event["result"]  # SageMaker reports a check job under Metadata.QualityCheck


def test_function_step_runs_the_function_with_the_local_python(backend: LocalBackend) -> None:
    """The ``@step`` job's own command (the SDK's job driver) runs on the backend's Python, which has the SDK."""
    sm, s3 = backend.client("sagemaker"), backend.client("s3")
    _, arn = _start_example(backend, "function_step")
    assert wait_for(sm, arn, timeout=180)["PipelineExecutionStatus"] == "Succeeded"
    execution_id = arn.rsplit("/", 1)[-1]
    prefix = "escape-hatch-function-step-pipeline/count_positives/"
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)["Contents"]]
    (payload,) = [key for key in keys if key.endswith(f"/{execution_id}/results/payload.pkl")]
    # count_positives(threshold=0.5) over [0.2, 0.7, 0.9]
    assert pickle.loads(s3.get_object(Bucket=BUCKET, Key=payload)["Body"].read()) == 2
