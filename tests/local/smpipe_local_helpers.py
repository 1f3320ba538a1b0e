"""Helpers shared by the local backend tests (definitions, waiting, seeding)."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "local"
BUCKET = "smpipe-fixtures"
ROLE = "arn:aws:iam::123456789012:role/smpipe"
TERMINAL = {"Succeeded", "Failed", "Stopped"}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def create_pipeline(sm: Any, definition: dict[str, Any] | str, name: str | None = None, **kwargs: Any) -> str:
    name = name or unique("pl")
    text = definition if isinstance(definition, str) else json.dumps(definition)
    sm.create_pipeline(PipelineName=name, PipelineDefinition=text, RoleArn=ROLE, **kwargs)
    return name


def wait_for(sm: Any, arn: str, timeout: float = 60, statuses: set[str] = TERMINAL) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        desc: dict[str, Any] = sm.describe_pipeline_execution(PipelineExecutionArn=arn)
        if desc["PipelineExecutionStatus"] in statuses:
            return desc
        if time.monotonic() > deadline:
            raise AssertionError(f"execution still {desc['PipelineExecutionStatus']} after {timeout}s")
        time.sleep(0.2)


def steps_of(sm: Any, arn: str) -> dict[str, dict[str, Any]]:
    steps = sm.list_pipeline_execution_steps(PipelineExecutionArn=arn, SortOrder="Ascending")
    return {step["StepName"]: step for step in steps["PipelineExecutionSteps"]}


def put_script(s3: Any, name: str, code: str) -> str:
    key = f"scripts/{uuid.uuid4().hex[:8]}/{name}"
    s3.put_object(Bucket=BUCKET, Key=key, Body=code.encode())
    return f"s3://{BUCKET}/{key}"


def processing_step(
    name: str,
    code_uri: str,
    *,
    inputs: dict[str, Any] | None = None,
    outputs: dict[str, Any] | None = None,
    arguments: list[Any] | None = None,
    depends_on: list[str] | None = None,
    max_runtime: int | None = None,
    instance_count: int = 1,
) -> dict[str, Any]:
    """A processing step shaped like the SDK's ScriptProcessor output (see pipeline_full.json)."""
    script = code_uri.rsplit("/", 1)[-1]

    def s3_input(input_name: str, uri: Any) -> dict[str, Any]:
        return {
            "InputName": input_name,
            "S3Input": {
                "LocalPath": f"/opt/ml/processing/input/{input_name}",
                "S3CompressionType": "None",
                "S3DataDistributionType": "FullyReplicated",
                "S3DataType": "S3Prefix",
                "S3InputMode": "File",
                "S3Uri": uri,
            },
        }

    args: dict[str, Any] = {
        "AppSpecification": {
            "ContainerEntrypoint": ["python3", f"/opt/ml/processing/input/code/{script}"],
            "ImageUri": "python:3.11",
        },
        "ProcessingInputs": [s3_input(k, v) for k, v in (inputs or {}).items()]
        + [s3_input("code", code_uri)],
        "ProcessingResources": {
            "ClusterConfig": {
                "InstanceCount": instance_count,
                "InstanceType": "ml.m5.large",
                "VolumeSizeInGB": 30,
            }
        },
        "RoleArn": ROLE,
    }
    if arguments:
        args["AppSpecification"]["ContainerArguments"] = arguments
    if outputs:
        args["ProcessingOutputConfig"] = {
            "Outputs": [
                {
                    "OutputName": k,
                    "S3Output": {
                        "LocalPath": f"/opt/ml/processing/output/{k}",
                        "S3UploadMode": "EndOfJob",
                        "S3Uri": v,
                    },
                }
                for k, v in outputs.items()
            ]
        }
    if max_runtime:
        args["StoppingCondition"] = {"MaxRuntimeInSeconds": max_runtime}
    step: dict[str, Any] = {"Name": name, "Type": "Processing", "Arguments": args}
    if depends_on:
        step["DependsOn"] = depends_on
    return step


def definition(*steps: dict[str, Any], parameters: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"Version": "2020-12-01", "Metadata": {}, "Parameters": parameters or [], "Steps": list(steps)}
