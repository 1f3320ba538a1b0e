"""A group that names no bucket compiles against the local backend: the default bucket's name comes from STS
through the connection's endpoint (not the SDK's public STS endpoint), and the bucket is created there."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

import boto3
import pendulum
from airflow.sdk import DAG

from airflow_provider_smpipe import SageMakerPipelineTaskGroup, SageMakerProcessingStepOperator
from airflow_provider_smpipe.compiler.from_airflow import build_pipeline_spec
from airflow_provider_smpipe.compiler.sdk import compile_definition, resolve_default_bucket

if TYPE_CHECKING:
    import pytest

    from airflow_provider_smpipe.local.server import LocalBackend

ROLE = "arn:aws:iam::123456789012:role/smpipe"


def _session(region: str) -> boto3.Session:
    return boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=region)


def test_group_without_default_bucket_compiles_on_the_local_backend(
    backend: LocalBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Nothing may reach AWS's own endpoints: no environment endpoint either, only the connection's.
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with DAG("no_bucket", start_date=pendulum.datetime(2026, 1, 1), schedule=None):
        with SageMakerPipelineTaskGroup("ml", role_arn=ROLE) as group:
            SageMakerProcessingStepOperator(
                task_id="prep",
                image_uri="python:3.11",
                code=os.path.join(os.path.dirname(__file__), "..", "compiler", "code", "prep.py"),
                command=["python3"],
                outputs=["data"],
            )
    spec = build_pipeline_spec(group)
    assert spec.default_bucket is None
    region = "eu-west-1"
    account = backend.client("sts", region=region).get_caller_identity()["Account"]
    bucket = f"sagemaker-{region}-{account}"
    definition = json.loads(compile_definition(spec, _session(region), endpoint_url=backend.endpoint_url))
    s3 = backend.client("s3", region=region)
    s3.head_bucket(Bucket=bucket)  # created
    prep = definition["Steps"][0]["Arguments"]
    code = next(i for i in prep["ProcessingInputs"] if i["InputName"] == "code")
    assert code["S3Input"]["S3Uri"].startswith(f"s3://{bucket}/")
    assert bucket in json.dumps(prep["ProcessingOutputConfig"])
    # Uploaded there, through the same endpoint.
    key = code["S3Input"]["S3Uri"].split(f"s3://{bucket}/", 1)[1]
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    # A second resolution finds the bucket it made.
    assert resolve_default_bucket(_session(region), backend.endpoint_url) == bucket
