"""Model and register-model steps on the local backend: a compiled train -> evaluate -> model -> register
pipeline runs, and the model and the model package are there afterwards for the ordinary SageMaker calls."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import tarfile
import uuid
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import boto3
import pendulum
import pytest
from airflow.sdk import DAG
from smpipe_local_helpers import (
    BUCKET,
    FIXTURES,
    ROLE,
    create_pipeline,
    definition,
    steps_of,
    unique,
    wait_for,
)

from airflow_provider_smpipe import (
    SageMakerModelStepOperator,
    SageMakerPipelineTaskGroup,
    SageMakerProcessingStepOperator,
    SageMakerRegisterModelStepOperator,
    SageMakerTrainingStepOperator,
)
from airflow_provider_smpipe.compiler.from_airflow import build_pipeline_spec
from airflow_provider_smpipe.compiler.sdk import compile_definition
from airflow_provider_smpipe.hooks.pipeline import SageMakerPipelineHook
from airflow_provider_smpipe.triggers.step_kinds.base import StepView, kind_of

if TYPE_CHECKING:
    from airflow_provider_smpipe.local.server import LocalBackend

SCRIPTS = FIXTURES / "scripts"
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"


def _body(s3: Any, uri: str) -> bytes:
    bucket, key = uri[len("s3://") :].split("/", 1)
    return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


@pytest.fixture(scope="module")
def registry_pipeline(backend: LocalBackend) -> dict[str, Any]:
    """The compiled pipeline: its name, model package group and input data."""
    name = unique("models")
    group_name = unique("churn")
    prefix = f"data/{uuid.uuid4().hex[:8]}"
    backend.client("s3").put_object(Bucket=BUCKET, Key=f"{prefix}/part-0.csv", Body=b"a\nb\nc\n")
    with (
        DAG("local_models", start_date=pendulum.datetime(2026, 1, 1), schedule=None),
        SageMakerPipelineTaskGroup(
            "ml",
            pipeline_name=name,
            role_arn=ROLE,
            default_bucket=BUCKET,
            parameters={"ApprovalStatus": "PendingManualApproval"},
        ) as group,
    ):
        train = SageMakerTrainingStepOperator(
            task_id="train",
            image_uri=IMAGE,
            entry_point="train.py",
            source_dir=str(SCRIPTS / "train_src"),
            inputs={"train": f"s3://{BUCKET}/{prefix}"},
        )
        evaluate = SageMakerProcessingStepOperator(
            task_id="evaluate",
            image_uri=IMAGE,
            code=str(SCRIPTS / "evaluate.py"),
            command=["python3"],
            inputs={"model": train.model_artifacts},
            outputs=["evaluation"],
            property_files={"evaluation": "evaluation/evaluation.json"},
        )
        model = SageMakerModelStepOperator(
            task_id="model",
            image_uri=IMAGE,
            model_data=train.model_artifacts,
            environment={"MODE": "serve"},
            entry_point="serve.py",
            source_dir=str(SCRIPTS / "serve_src"),
        )
        register = SageMakerRegisterModelStepOperator(
            task_id="register",
            model_package_group_name=group_name,
            image_uri=IMAGE,
            model_data=train.model_artifacts,
            entry_point="serve.py",
            source_dir=str(SCRIPTS / "serve_src"),
            approval_status=group.parameter("ApprovalStatus"),
            content_types=["text/csv"],
            response_types=["application/json"],
            inference_instances=["ml.m5.large"],
            transform_instances=["ml.m5.xlarge"],
            model_metrics={"model_quality_statistics": evaluate.property_file_uri("evaluation")},
            customer_metadata={"team": "ml"},
            domain="MACHINE_LEARNING",
            task="CLASSIFICATION",
            description="Churn model",
        )
        # Later steps read the created model's name and the package's ARN (what a transform step uses).
        SageMakerProcessingStepOperator(
            task_id="announce",
            image_uri=IMAGE,
            entrypoint=["python3", "-c", "import sys; print('announce:', *sys.argv[1:])"],
            arguments=[model.model_name, register.model_package_arn],
        )
    session = boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    )
    text = compile_definition(build_pipeline_spec(group), session, endpoint_url=backend.endpoint_url)
    sm = backend.client("sagemaker")
    create_pipeline(sm, text, name=name)
    return {"name": name, "group": group_name, "input": f"s3://{BUCKET}/{prefix}"}


def _step_results(
    backend: LocalBackend, monkeypatch: pytest.MonkeyPatch, steps: dict[str, Any], arn: str
) -> dict[str, dict[str, Any]]:
    """What the step trigger puts in XCom for each step, through the hook's async calls to the backend."""
    connection = {
        "conn_type": "aws",
        "login": "testing",
        "password": "testing",
        "extra": {"endpoint_url": backend.endpoint_url, "region_name": "us-east-1"},
    }
    monkeypatch.setenv("AIRFLOW_CONN_SMPIPE_LOCAL_MODELS", json.dumps(connection))
    hook = SageMakerPipelineHook(aws_conn_id="smpipe_local_models")
    trigger: Any = SimpleNamespace(log=logging.getLogger(__name__))

    async def results() -> dict[str, dict[str, Any]]:
        out = {}
        for name in ("model", "register"):
            kind = kind_of(steps[name]["Metadata"])
            assert kind is not None
            out[name] = await kind.result(StepView(trigger, hook, steps[name], arn))
        return out

    return asyncio.run(results())


def test_train_model_register_run_and_the_registry_answers(
    sm: Any,
    s3: Any,
    backend: LocalBackend,
    monkeypatch: pytest.MonkeyPatch,
    registry_pipeline: dict[str, Any],
) -> None:
    group_name = registry_pipeline["group"]
    with pytest.raises(sm.exceptions.ClientError):
        sm.describe_model_package_group(ModelPackageGroupName=group_name)  # not created beforehand
    arn = sm.start_pipeline_execution(PipelineName=registry_pipeline["name"])["PipelineExecutionArn"]
    execution_id = arn.rsplit("/", 1)[-1]
    described = wait_for(sm, arn, timeout=180)
    steps = steps_of(sm, arn)
    assert described["PipelineExecutionStatus"] == "Succeeded", steps
    assert set(steps) == {"train", "evaluate", "model", "register", "announce"}

    # The model step: DescribeModel and ListModels see the model, with its container and inference code.
    model_arn = steps["model"]["Metadata"]["Model"]["Arn"]
    model_name = model_arn.rsplit("/", 1)[-1]
    assert model_name.startswith(f"pipelines-{execution_id}-model-")
    model = sm.describe_model(ModelName=model_name)
    assert model["ModelArn"] == model_arn
    assert model["ExecutionRoleArn"] == ROLE
    train_name = steps["train"]["Metadata"]["TrainingJob"]["Arn"].rsplit("/", 1)[-1]
    artifacts = sm.describe_training_job(TrainingJobName=train_name)["ModelArtifacts"]["S3ModelArtifacts"]
    container = model["PrimaryContainer"]
    assert container["Image"] == IMAGE
    assert container["ModelDataUrl"] == artifacts
    environment = container["Environment"]
    assert environment["MODE"] == "serve"
    assert environment["SAGEMAKER_PROGRAM"] == "serve.py"
    with tarfile.open(fileobj=io.BytesIO(_body(s3, environment["SAGEMAKER_SUBMIT_DIRECTORY"]))) as tar:
        assert tar.getnames() == ["serve.py"]
    listed = sm.list_models(NameContains=execution_id)["Models"]
    assert [m["ModelName"] for m in listed] == [model_name]

    # Steps.model.ModelName and Steps.register.ModelPackageArn resolve for later steps.
    announce = steps["announce"]["Metadata"]["ProcessingJob"]["Arn"].rsplit("/", 1)[-1]
    package_arn = steps["register"]["Metadata"]["RegisterModel"]["Arn"]
    job = sm.describe_processing_job(ProcessingJobName=announce)
    assert job["AppSpecification"]["ContainerArguments"] == [model_name, package_arn]

    # The register step: a version in a group it created, with metrics, approval and metadata.
    group = sm.describe_model_package_group(ModelPackageGroupName=group_name)
    assert group["ModelPackageGroupStatus"] == "Completed"
    versions = sm.list_model_packages(ModelPackageGroupName=group_name)["ModelPackageSummaryList"]
    assert [(v["ModelPackageArn"], v["ModelPackageVersion"]) for v in versions] == [(package_arn, 1)]
    assert versions[0]["ModelApprovalStatus"] == "PendingManualApproval"
    package = sm.describe_model_package(ModelPackageName=package_arn)
    assert package["ModelPackageGroupName"] == group_name
    assert package["ModelPackageDescription"] == "Churn model"
    assert package["CustomerMetadataProperties"] == {"team": "ml"}
    assert (package["Domain"], package["Task"]) == ("MACHINE_LEARNING", "CLASSIFICATION")
    spec = package["InferenceSpecification"]
    assert spec["Containers"][0]["ModelDataUrl"] == artifacts
    assert spec["Containers"][0]["Environment"]["SAGEMAKER_PROGRAM"] == "serve.py"
    assert spec["SupportedTransformInstanceTypes"] == ["ml.m5.xlarge"]
    statistics = package["ModelMetrics"]["ModelQuality"]["Statistics"]
    assert statistics["ContentType"] == "application/json"
    # The property file's URI resolved at run time to the report the evaluate step wrote.
    assert (
        statistics["S3Uri"]
        == f"s3://{BUCKET}/{registry_pipeline['name']}/{execution_id}/evaluate/evaluation/evaluation.json"
    )
    assert json.loads(_body(s3, statistics["S3Uri"])) == {"rows": 3}

    # The step tasks' XCom results.
    results = _step_results(backend, monkeypatch, steps, arn)
    assert results["model"] == {"model_name": model_name, "model_arn": model_arn}
    assert results["register"] == {
        "model_package_arn": package_arn,
        "model_package_version": 1,
        "model_package_group_name": group_name,
        "approval_status": "PendingManualApproval",
    }

    # Approving it later works as in SageMaker: metadata is merged, not replaced.
    sm.update_model_package(
        ModelPackageArn=package_arn,
        ModelApprovalStatus="Approved",
        ApprovalDescription="looks good",
        CustomerMetadataProperties={"reviewer": "ana"},
    )
    updated = sm.describe_model_package(ModelPackageName=package_arn)
    assert updated["ModelApprovalStatus"] == "Approved"
    assert updated["ApprovalDescription"] == "looks good"
    assert updated["CustomerMetadataProperties"] == {"team": "ml", "reviewer": "ana"}
    assert "LastModifiedTime" in updated
    approved = sm.list_model_packages(ModelPackageGroupName=group_name, ModelApprovalStatus="Approved")
    assert [v["ModelPackageArn"] for v in approved["ModelPackageSummaryList"]] == [package_arn]


def test_a_second_run_adds_a_version_with_the_parameter_status(
    sm: Any, registry_pipeline: dict[str, Any]
) -> None:
    group_name = registry_pipeline["group"]
    before = len(sm.list_model_packages(ModelPackageGroupName=group_name)["ModelPackageSummaryList"])
    arn = sm.start_pipeline_execution(
        PipelineName=registry_pipeline["name"],
        PipelineParameters=[{"Name": "ApprovalStatus", "Value": "Approved"}],
    )["PipelineExecutionArn"]
    assert wait_for(sm, arn, timeout=180)["PipelineExecutionStatus"] == "Succeeded"
    package_arn = steps_of(sm, arn)["register"]["Metadata"]["RegisterModel"]["Arn"]
    package = sm.describe_model_package(ModelPackageName=package_arn)
    assert package["ModelPackageVersion"] == before + 1
    assert package["ModelApprovalStatus"] == "Approved"


def _model_step(model_data: str) -> dict[str, Any]:
    return {
        "Name": "model",
        "Type": "Model",
        "Arguments": {
            "ExecutionRoleArn": ROLE,
            "PrimaryContainer": {"Image": IMAGE, "Environment": {}, "ModelDataUrl": model_data},
        },
    }


def _register_step(status: Any, group: str) -> dict[str, Any]:
    return {
        "Name": "register",
        "Type": "RegisterModel",
        "Arguments": {
            "ModelPackageGroupName": group,
            "InferenceSpecification": {
                "Containers": [{"Image": IMAGE, "ModelDataUrl": "s3://x/model.tar.gz"}]
            },
            "ModelApprovalStatus": status,
        },
    }


def test_missing_model_data_fails_the_model_step(sm: Any) -> None:
    uri = f"s3://{BUCKET}/missing/{uuid.uuid4().hex}/model.tar.gz"
    name = create_pipeline(sm, definition(_model_step(uri)))
    arn = sm.start_pipeline_execution(PipelineName=name)["PipelineExecutionArn"]
    assert wait_for(sm, arn)["PipelineExecutionStatus"] == "Failed"
    step = steps_of(sm, arn)["model"]
    assert step["StepStatus"] == "Failed"
    assert step["FailureReason"] == f"ClientError: Could not find model data at {uri}."


def test_a_bad_approval_status_parameter_fails_the_register_step(sm: Any) -> None:
    group = unique("bad-status")
    name = create_pipeline(
        sm,
        definition(
            _register_step({"Get": "Parameters.Status"}, group),
            parameters=[{"Name": "Status", "Type": "String", "DefaultValue": "Maybe"}],
        ),
    )
    arn = sm.start_pipeline_execution(PipelineName=name)["PipelineExecutionArn"]
    assert wait_for(sm, arn)["PipelineExecutionStatus"] == "Failed"
    step = steps_of(sm, arn)["register"]
    assert step["FailureReason"].startswith("ClientError: Value 'Maybe' at 'modelApprovalStatus'")


def test_registry_calls_outside_pipelines(sm: Any) -> None:
    group = unique("direct")
    with pytest.raises(sm.exceptions.ClientError) as missing:
        sm.create_model_package(
            ModelPackageGroupName=group,
            InferenceSpecification={"Containers": [{"Image": IMAGE}], "SupportedContentTypes": ["text/csv"]},
        )
    assert missing.value.response["Error"]["Code"] == "ValidationException"
    created = sm.create_model_package_group(ModelPackageGroupName=group, ModelPackageGroupDescription="d")
    with pytest.raises(sm.exceptions.ClientError) as twice:
        sm.create_model_package_group(ModelPackageGroupName=group)
    assert "already exists" in twice.value.response["Error"]["Message"]
    package_arn = sm.create_model_package(
        ModelPackageGroupName=created["ModelPackageGroupArn"],
        InferenceSpecification={"Containers": [{"Image": IMAGE}], "SupportedContentTypes": ["text/csv"]},
    )["ModelPackageArn"]
    package = sm.describe_model_package(ModelPackageName=package_arn)
    assert (package["ModelPackageVersion"], package["ModelApprovalStatus"]) == (1, "PendingManualApproval")
    groups = sm.list_model_package_groups(NameContains=group)["ModelPackageGroupSummaryList"]
    assert [(g["ModelPackageGroupName"], g["ModelPackageGroupDescription"]) for g in groups] == [(group, "d")]
    with pytest.raises(sm.exceptions.ClientError) as unknown:
        sm.describe_model(ModelName=unique("nope"))
    assert unknown.value.response["Error"]["Code"] == "ValidationException"
