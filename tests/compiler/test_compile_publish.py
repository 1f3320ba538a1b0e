"""What compiling creates in AWS, and when: only after the whole definition is built and checked."""

from __future__ import annotations

from typing import Any

import pendulum
import pytest
from airflow.sdk import DAG
from botocore.exceptions import ClientError
from compiler_support import BUCKET, CODE, IMAGE, ROLE

from airflow_provider_smpipe import SageMakerPipelineTaskGroup, SageMakerProcessingStepOperator
from airflow_provider_smpipe.compiler import session as compiler_session
from airflow_provider_smpipe.compiler.from_airflow import build_pipeline_spec
from airflow_provider_smpipe.compiler.sdk import compile_definition
from airflow_provider_smpipe.exceptions import PipelineDefinitionError


def _group() -> SageMakerPipelineTaskGroup:
    with DAG("publish", start_date=pendulum.datetime(2026, 1, 1), schedule=None):
        with SageMakerPipelineTaskGroup("ml", role_arn=ROLE, default_bucket=BUCKET) as group:
            SageMakerProcessingStepOperator(
                task_id="prep", image_uri=IMAGE, code=str(CODE / "prep.py"), command=["python3"]
            )
    return group


def _keys(aws: Any) -> list[str]:
    return [o["Key"] for o in aws.client("s3").list_objects_v2(Bucket=BUCKET).get("Contents", [])]


def test_code_is_uploaded_once_the_definition_is_built(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    seen_before_publish: list[list[str]] = []
    publish = compiler_session.ensure_bucket

    def spy(*args: Any, **kwargs: Any) -> None:
        seen_before_publish.append(_keys(aws))
        publish(*args, **kwargs)

    monkeypatch.setattr(compiler_session, "ensure_bucket", spy)
    definition = compile_definition(build_pipeline_spec(_group()), aws)
    assert seen_before_publish == [[]]  # nothing uploaded while the SDK built and rendered the steps
    uploaded = _keys(aws)
    assert any(key.endswith("/prep.py") for key in uploaded)
    assert all(f"s3://{BUCKET}/{key}" in definition for key in uploaded), (uploaded, definition)


def test_a_bucket_that_cannot_be_used_is_named_in_one_line(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*args: Any, **kwargs: Any) -> None:
        raise ClientError({"Error": {"Code": "403", "Message": "Forbidden"}}, "HeadBucket")

    monkeypatch.setattr(compiler_session, "ensure_bucket", forbidden)
    with pytest.raises(
        PipelineDefinitionError, match=rf"field 'default_bucket': bucket '{BUCKET}' cannot be used \(403"
    ):
        compile_definition(build_pipeline_spec(_group()), aws)
    assert _keys(aws) == []


def test_an_sdk_error_while_rendering_names_the_step_and_creates_nothing(aws: Any) -> None:
    from sagemaker.mlops.workflow.fail_step import FailStep

    from airflow_provider_smpipe import SageMakerStepOperator

    class BrokenStep(FailStep):
        def to_request(self) -> Any:
            raise ValueError("cannot render this step")

    with DAG("publish", start_date=pendulum.datetime(2026, 1, 1), schedule=None):
        with SageMakerPipelineTaskGroup("ml", role_arn=ROLE, default_bucket=BUCKET) as group:
            SageMakerProcessingStepOperator(
                task_id="prep", image_uri=IMAGE, code=str(CODE / "prep.py"), command=["python3"]
            )
            SageMakerStepOperator(
                task_id="custom", step_factory=lambda ctx: BrokenStep(name=ctx.step_name, error_message="x")
            )
    with pytest.raises(PipelineDefinitionError) as error:
        compile_definition(build_pipeline_spec(group), aws)
    assert str(error.value) == (
        "task 'ml.custom' field 'step_factory': the factory's step failed: ValueError: cannot render this step"
    )
    assert _keys(aws) == []
