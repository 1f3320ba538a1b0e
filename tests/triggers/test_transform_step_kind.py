"""Transform steps at run time: found by their Metadata, logs from /aws/sagemaker/TransformJobs, XCom result."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import boto3
from airflow.triggers.base import TaskSuccessEvent
from test_pipeline_step_trigger import MOTO_CONN_ID, FakeHook, FakeSageMaker, FakeTI, _first_event, _trigger

from airflow_provider_smpipe.triggers.step_kinds.base import job_from_metadata, kind_of

if TYPE_CHECKING:
    import pytest

JOB = "pipelines-abc123-score-x1y2"
JOB_ARN = f"arn:aws:sagemaker:us-east-1:123456789012:transform-job/{JOB}"
OUTPUT = "s3://bucket/pipeline/abc123/score/output"


def test_transform_jobs_are_known_by_their_metadata() -> None:
    job = job_from_metadata({"TransformJob": {"Arn": JOB_ARN}})
    assert job is not None
    assert (job.kind, job.name, job.log_group, job.console_path) == (
        "transform",
        JOB,
        "/aws/sagemaker/TransformJobs",
        "transform-jobs",
    )
    kind = kind_of({"TransformJob": {"Arn": JOB_ARN}})
    assert kind is not None and kind.metadata_key == "TransformJob"


class FakeTransformSageMaker(FakeSageMaker):
    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.described: list[str] = []

    async def describe_transform_job(self, TransformJobName: str) -> dict[str, Any]:
        self._enter("describe_transform_job")
        self.described.append(TransformJobName)
        return {
            "TransformJobName": TransformJobName,
            "TransformJobArn": JOB_ARN,
            "TransformJobStatus": "Completed",
            "ModelName": "churn-model",
            "TransformInput": {
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://in/"}}
            },
            "TransformOutput": {"S3OutputPath": OUTPUT, "AssembleWith": "Line"},
            "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
            "CreationTime": datetime(2026, 1, 1, tzinfo=UTC),
        }


def test_success_pushes_the_transform_result_and_its_links(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.sdk.execution_time.xcom import XCom

    pushed: dict[str, Any] = {}

    async def fake_aset(key: str, value: Any, **ids: Any) -> None:
        pushed[key] = value

    monkeypatch.setattr(XCom, "aset", fake_aset)

    def script(tick: int) -> tuple[str, list[dict[str, Any]]]:
        status = "Succeeded" if tick >= 2 else "Executing"
        step = {
            "StepName": "score",
            "StepStatus": status,
            "StartTime": datetime(2026, 1, 1, tzinfo=UTC),
            "Metadata": {"TransformJob": {"Arn": JOB_ARN}},
        }
        return status, [step]

    fake = FakeTransformSageMaker(script)
    trigger = _trigger(fake, step_name="score")
    trigger.task_instance = FakeTI("grp.score")  # type: ignore[assignment]
    event = asyncio.run(_first_event(trigger))
    assert isinstance(event, TaskSuccessEvent)
    result = pushed["return_value"]
    assert result["step_status"] == "Succeeded"
    assert (result["job_name"], result["job_arn"]) == (JOB, JOB_ARN)
    assert result["outputs"] == {"output": OUTPUT}
    assert result["model_name"] == "churn-model"
    assert fake.described == [JOB]
    assert pushed["smpipe_step_job"]["job_kind"] == "transform-jobs"
    assert pushed["smpipe_step_job"]["job_name"] == JOB
    assert pushed["smpipe_step_logs"]["log_group"] == "/aws/sagemaker/TransformJobs"


def test_transform_job_logs_stream_into_the_task_log(moto_url: str, caplog: pytest.LogCaptureFixture) -> None:
    logs = boto3.client("logs", endpoint_url=moto_url, region_name="us-east-1")
    group = "/aws/sagemaker/TransformJobs"
    job = f"pipelines-{uuid.uuid4().hex[:8]}-score"
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_group(logGroupName=group)
    stream = f"{job}/algo-1-1700000000"
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    now = int(time.time() * 1000)
    logs.put_log_events(
        logGroupName=group,
        logStreamName=stream,
        logEvents=[
            {"timestamp": now, "message": "inference: model loaded from /opt/ml/model"},
            {"timestamp": now + 1, "message": "part-0.csv: 5 records in 1 requests -> part-0.csv.out"},
        ],
    )
    arn = f"arn:aws:sagemaker:us-east-1:123456789012:transform-job/{job}"

    def script(tick: int) -> tuple[str, list[dict[str, Any]]]:
        status = "Succeeded" if tick >= 4 else "Executing"
        step = {
            "StepName": "score",
            "StepStatus": status,
            "StartTime": datetime(2026, 1, 1, tzinfo=UTC),
            "Metadata": {"TransformJob": {"Arn": arn}},
        }
        return status, [step]

    fake = FakeTransformSageMaker(script)
    trigger = _trigger(
        fake, step_name="score", stream_logs=True, end_from_trigger=False, aws_conn_id=MOTO_CONN_ID
    )
    trigger._pipeline_hook = lambda: FakeHook(fake)  # type: ignore[method-assign]
    caplog.set_level(logging.INFO)
    event = asyncio.run(_first_event(trigger))
    assert event.payload["status"] == "success"
    assert event.payload["result"]["outputs"] == {"output": OUTPUT}
    assert event.payload["last_log_lines"] == [
        "[algo-1] inference: model loaded from /opt/ml/model",
        "[algo-1] part-0.csv: 5 records in 1 requests -> part-0.csv.out",
    ]
