"""Model and register-model steps compile to what the SageMaker SDK's own ``ModelBuilder`` + ``ModelStep`` give,
with request arguments valid for CreateModel / CreateModelPackage, one SageMaker step per task and reproducible
bytes."""

from __future__ import annotations

import io
import json
import tarfile
from typing import Any

import pendulum
import pytest
from airflow.sdk import DAG
from compiler_support import BUCKET, CODE, IMAGE, ROLE, load_fixture_dag
from request_shapes import request_problems

from airflow_provider_smpipe import (
    SageMakerModelStepOperator,
    SageMakerPipelineTaskGroup,
    SageMakerProcessingStepOperator,
    SageMakerRegisterModelStepOperator,
    SageMakerTrainingStepOperator,
)
from airflow_provider_smpipe.compiler.from_airflow import build_pipeline_spec
from airflow_provider_smpipe.compiler.model_container import pack
from airflow_provider_smpipe.compiler.sdk import compile_definition
from airflow_provider_smpipe.model.references import execution_variable
from airflow_provider_smpipe.model.steps.model import InferenceCodeSpec

START = pendulum.datetime(2026, 1, 1)
PIPELINE = "golden-models"
INFERENCE = CODE / "inference_src"
SERVING_ROLE = "arn:aws:iam::123456789012:role/Serving"
VPC = {"subnets": ["subnet-0a1b2c3d", "subnet-4e5f6a7b"], "security_group_ids": ["sg-0123abcd"]}
STEP_RETRY = {"exception_types": ["Step.THROTTLING"], "max_attempts": 3}


@pytest.fixture(autouse=True)
def _no_role_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    # The hand-written ModelTrainer checks its role with IAM calls moto lacks (compile_definition sets this too).
    monkeypatch.setenv("SAGEMAKER_VALIDATE_ROLE", "false")


def _steps(definition: str) -> dict[str, dict[str, Any]]:
    return {step["Name"]: step for step in json.loads(definition)["Steps"]}


def _normalized(definition: str) -> dict[str, Any]:
    """The definition with the SDK's timestamped training-code URIs and the code archive's URI replaced."""
    parsed = json.loads(definition)

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("ChannelName") in {"code", "sm_drivers"}:
                node["DataSource"]["S3DataSource"]["S3Uri"] = f"<{node['ChannelName']}>"
            if "SAGEMAKER_SUBMIT_DIRECTORY" in node:
                node["SAGEMAKER_SUBMIT_DIRECTORY"] = "<code>"
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(parsed)
    return parsed


def _code_environment() -> dict[str, str]:
    """What framework containers read to find the inference code (the archive's URI is normalized away)."""
    return {
        "SAGEMAKER_PROGRAM": "inference.py",
        "SAGEMAKER_SUBMIT_DIRECTORY": "<code>",
        "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
        "SAGEMAKER_REGION": "us-east-1",
    }


def _full_group() -> SageMakerPipelineTaskGroup:
    with (
        DAG("golden_models", start_date=START, schedule=None),
        SageMakerPipelineTaskGroup(
            "ml",
            pipeline_name=PIPELINE,
            role_arn=ROLE,
            default_bucket=BUCKET,
            parameters={"Status": "PendingManualApproval"},
        ) as group,
    ):
        train = SageMakerTrainingStepOperator(
            task_id="train", image_uri=IMAGE, entry_point="train.py", source_dir=str(CODE / "train_src")
        )
        evaluate = SageMakerProcessingStepOperator(
            task_id="evaluate",
            image_uri=IMAGE,
            code=str(CODE / "evaluate.py"),
            command=["python3"],
            inputs={"model": train.model_artifacts},
            outputs=["evaluation"],
            property_files={"evaluation": "evaluation/evaluation.json"},
        )
        SageMakerModelStepOperator(
            task_id="model",
            image_uri=IMAGE,
            model_data=train.model_artifacts,
            environment={"MODE": "serve"},
            entry_point="inference.py",
            source_dir=str(INFERENCE),
            vpc_config=VPC,
            description="The churn model",
            retry_policies=[STEP_RETRY],
        )
        SageMakerRegisterModelStepOperator(
            task_id="register",
            model_package_group_name="churn-models",
            image_uri=IMAGE,
            model_data=train.model_artifacts,
            environment={"MODE": "serve"},
            entry_point="inference.py",
            source_dir=str(INFERENCE),
            approval_status=group.parameter("Status"),
            content_types=["text/csv"],
            response_types=["application/json"],
            inference_instances=["ml.m5.large", "ml.m5.xlarge"],
            transform_instances=["ml.m5.large"],
            model_metrics={
                "model_quality_statistics": evaluate.property_file_uri("evaluation"),
                "bias_report": {"s3_uri": "s3://reports/bias.json", "content_type": "application/json"},
            },
            customer_metadata={"team": "ml", "execution": execution_variable("PipelineExecutionId")},
            domain="MACHINE_LEARNING",
            task="CLASSIFICATION",
            description="Churn model, gradient boosting",
        )
    return group


def test_model_and_register_steps_equal_the_sdks_model_builder(aws: Any) -> None:
    ours = compile_definition(build_pipeline_spec(_full_group()), aws)

    from sagemaker.core.model_metrics import MetricsSource, ModelMetrics
    from sagemaker.core.processing import ScriptProcessor
    from sagemaker.core.shapes import ProcessingInput, ProcessingOutput, ProcessingS3Input, ProcessingS3Output
    from sagemaker.core.training.configs import Networking
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.core.workflow.functions import Join
    from sagemaker.core.workflow.parameters import ParameterString
    from sagemaker.core.workflow.pipeline_context import PipelineSession
    from sagemaker.core.workflow.properties import PropertyFile
    from sagemaker.mlops.workflow.model_step import ModelStep
    from sagemaker.mlops.workflow.pipeline import Pipeline
    from sagemaker.mlops.workflow.retry import StepExceptionTypeEnum, StepRetryPolicy
    from sagemaker.mlops.workflow.steps import ProcessingStep, TrainingStep
    from sagemaker.serve.model_builder import ModelBuilder
    from sagemaker.train import ModelTrainer
    from sagemaker.train.configs import Compute, SourceCode, StoppingCondition

    session = PipelineSession(boto_session=aws, default_bucket=BUCKET)
    status = ParameterString("Status", default_value="PendingManualApproval")
    train_step = TrainingStep(
        name="train",
        step_args=ModelTrainer(
            training_image=IMAGE,
            role=ROLE,
            sagemaker_session=session,
            base_job_name="train",
            source_code=SourceCode(source_dir=str(CODE / "train_src"), entry_script="train.py"),
            compute=Compute(instance_type="ml.m5.large", instance_count=1, volume_size_in_gb=30),
            # SageMaker's own default (the SDK alone would write 3600 s).
            stopping_condition=StoppingCondition(max_runtime_in_seconds=86400),
            hyperparameters={},
            environment={},
        ).train(wait=False),
    )
    artifacts = train_step.properties.ModelArtifacts.S3ModelArtifacts
    evaluation = PropertyFile(name="evaluation", output_name="evaluation", path="evaluation.json")
    evaluate_step = ProcessingStep(
        name="evaluate",
        step_args=ScriptProcessor(
            role=ROLE,
            image_uri=IMAGE,
            command=["python3"],
            instance_type="ml.m5.large",
            instance_count=1,
            volume_size_in_gb=30,
            sagemaker_session=session,
        ).run(
            code=str(CODE / "evaluate.py"),
            inputs=[
                ProcessingInput(
                    input_name="model",
                    s3_input=ProcessingS3Input(
                        s3_uri=artifacts,
                        local_path="/opt/ml/processing/input/model",
                        s3_data_type="S3Prefix",
                        s3_input_mode="File",
                    ),
                )
            ],
            outputs=[
                ProcessingOutput(
                    output_name="evaluation",
                    s3_output=ProcessingS3Output(
                        s3_uri=Join(
                            on="/",
                            values=[
                                "s3:/",
                                BUCKET,
                                PIPELINE,
                                ExecutionVariables.PIPELINE_EXECUTION_ID,
                                "evaluate",
                                "evaluation",
                            ],
                        ),
                        local_path="/opt/ml/processing/output/evaluation",
                        s3_upload_mode="EndOfJob",
                    ),
                )
            ],
        ),
        property_files=[evaluation],
        depends_on=["train"],
    )
    # The SDK's documented flow: one ModelBuilder, build() for the model, register() for the registry.
    builder = ModelBuilder(
        image_uri=IMAGE,
        s3_model_data_url=artifacts,
        role_arn=ROLE,
        sagemaker_session=session,
        env_vars={"MODE": "serve", **_code_environment()},
        network=Networking(subnets=VPC["subnets"], security_group_ids=VPC["security_group_ids"]),
    )
    model_step = ModelStep(
        name="model",
        step_args=builder.build(),
        depends_on=["train"],
        description="The churn model",
        retry_policies=[StepRetryPolicy(exception_types=[StepExceptionTypeEnum.THROTTLING], max_attempts=3)],
    )
    evaluation_uri = Join(
        on="/",
        values=[
            evaluate_step.properties.ProcessingOutputConfig.Outputs["evaluation"].S3Output.S3Uri,
            "evaluation.json",
        ],
    )
    register_step = ModelStep(
        name="register",
        step_args=builder.register(
            model_package_group_name="churn-models",
            content_types=["text/csv"],
            response_types=["application/json"],
            inference_instances=["ml.m5.large", "ml.m5.xlarge"],
            transform_instances=["ml.m5.large"],
            model_metrics=ModelMetrics(
                model_statistics=MetricsSource(content_type="application/json", s3_uri=evaluation_uri),
                bias=MetricsSource(content_type="application/json", s3_uri="s3://reports/bias.json"),
            ),
            approval_status=status,
            description="Churn model, gradient boosting",
            customer_metadata_properties={
                "team": "ml",
                "execution": ExecutionVariables.PIPELINE_EXECUTION_ID,
            },
            domain="MACHINE_LEARNING",
            task="CLASSIFICATION",
        ),
        depends_on=["evaluate", "train"],
        description="Churn model, gradient boosting",
    )
    by_hand = Pipeline(
        name=PIPELINE,
        parameters=[status],
        steps=[train_step, evaluate_step, model_step, register_step],
        sagemaker_session=session,
    ).definition()
    assert _normalized(ours) == _normalized(by_hand)

    steps = _steps(ours)
    model_args, register_args = steps["model"]["Arguments"], steps["register"]["Arguments"]
    # The description reaches the model package: the SDK's ModelStep pops "Description", a key register
    # requests never have; CreateModelPackage's own field is ModelPackageDescription.
    assert register_args["ModelPackageDescription"] == "Churn model, gradient boosting"
    assert register_args["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"] == {
        "Std:Join": {
            "On": "/",
            "Values": [
                {"Get": "Steps.evaluate.ProcessingOutputConfig.Outputs['evaluation'].S3Output.S3Uri"},
                "evaluation.json",
            ],
        }
    }
    assert request_problems("CreateModel", model_args, filled_at_run_time=("ModelName",)) == []
    assert request_problems("CreateModelPackage", register_args) == []


def test_plain_uris_parameter_image_and_own_role_equal_the_sdk(aws: Any) -> None:
    with (
        DAG("golden_models", start_date=START, schedule=None),
        SageMakerPipelineTaskGroup(
            "ml",
            pipeline_name=PIPELINE,
            role_arn=ROLE,
            default_bucket=BUCKET,
            parameters={"ServingImage": IMAGE},
        ) as group,
    ):
        SageMakerModelStepOperator(
            task_id="model",
            image_uri=group.parameter("ServingImage"),
            model_data="s3://models/churn/model.tar.gz",
            execution_role_arn=SERVING_ROLE,
        )
        SageMakerRegisterModelStepOperator(
            task_id="register",
            model_package_group_name="churn-models",
            image_uri=group.parameter("ServingImage"),
            model_data="s3://models/churn/model.tar.gz",
            approval_status="Approved",
            model_metrics={"model_quality_statistics": "s3://reports/evaluation.json"},
        )
    ours = compile_definition(build_pipeline_spec(group), aws)

    from sagemaker.core.model_metrics import MetricsSource, ModelMetrics
    from sagemaker.core.workflow.parameters import ParameterString
    from sagemaker.core.workflow.pipeline_context import PipelineSession
    from sagemaker.mlops.workflow.model_step import ModelStep
    from sagemaker.mlops.workflow.pipeline import Pipeline
    from sagemaker.serve.model_builder import ModelBuilder

    session = PipelineSession(boto_session=aws, default_bucket=BUCKET)
    image = ParameterString("ServingImage", default_value=IMAGE)
    builder = ModelBuilder(
        image_uri=image,
        s3_model_data_url="s3://models/churn/model.tar.gz",
        role_arn=SERVING_ROLE,
        sagemaker_session=session,
    )
    model_step = ModelStep(name="model", step_args=builder.build())
    register_step = ModelStep(
        name="register",
        step_args=builder.register(
            model_package_group_name="churn-models",
            approval_status="Approved",
            model_metrics=ModelMetrics(
                model_statistics=MetricsSource(
                    content_type="application/json", s3_uri="s3://reports/evaluation.json"
                )
            ),
        ),
    )
    by_hand = Pipeline(
        name=PIPELINE, parameters=[image], steps=[model_step, register_step], sagemaker_session=session
    ).definition()
    assert json.loads(ours) == json.loads(by_hand)
    steps = _steps(ours)
    assert steps["model"]["Arguments"]["ExecutionRoleArn"] == SERVING_ROLE
    # No script-mode variables in a container without inference code (the SDK's register() alone adds empty
    # SAGEMAKER_PROGRAM / SAGEMAKER_SUBMIT_DIRECTORY).
    assert steps["register"]["Arguments"]["InferenceSpecification"]["Containers"][0]["Environment"] == {}
    assert (
        request_problems("CreateModel", steps["model"]["Arguments"], filled_at_run_time=("ModelName",)) == []
    )
    assert request_problems("CreateModelPackage", steps["register"]["Arguments"]) == []


def test_the_shape_check_catches_bad_requests() -> None:
    bad = {
        "ModelPackageGroupName": "churn_models",  # underscores are not allowed
        "ModelApprovalStatus": "Maybe",
        "InferenceSpecification": {"Containers": [{"Image": "x", "ModelDataUrl": "ftp://x"}], "Extra": 1},
    }
    problems = request_problems("CreateModelPackage", bad)
    assert len(problems) == 4, problems
    assert request_problems("CreateModel", {"PrimaryContainer": {"Image": {"Get": "Parameters.Image"}}}) == [
        "CreateModel: missing required member ModelName"
    ]


def test_inference_code_is_one_content_addressed_archive_and_no_repack_step(aws: Any) -> None:
    group = _full_group()
    first = compile_definition(build_pipeline_spec(group), aws)
    assert first == compile_definition(build_pipeline_spec(group), aws)  # byte-identical
    steps = _steps(first)
    # Exactly one SageMaker step per Airflow task: no hidden RepackModel training step.
    assert sorted(steps) == sorted(t.step_name for t in group.step_tasks())
    environment = steps["model"]["Arguments"]["PrimaryContainer"]["Environment"]
    uri = environment["SAGEMAKER_SUBMIT_DIRECTORY"]
    archive = pack(InferenceCodeSpec(entry_point="inference.py", source_dir=str(INFERENCE)))
    import hashlib

    assert uri == f"s3://{BUCKET}/{PIPELINE}/code/{hashlib.sha256(archive).hexdigest()}/sourcedir.tar.gz"
    assert environment["SAGEMAKER_PROGRAM"] == "inference.py"
    body = aws.client("s3").get_object(Bucket=BUCKET, Key=uri.split("/", 3)[3])["Body"].read()
    assert body == archive
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        assert tar.getnames() == ["helpers/__init__.py", "helpers/scoring.py", "inference.py"]
    register_env = steps["register"]["Arguments"]["InferenceSpecification"]["Containers"][0]["Environment"]
    assert register_env["SAGEMAKER_SUBMIT_DIRECTORY"] == uri


def test_the_sdk_would_hide_a_repack_step_behind_the_model_step(aws: Any) -> None:
    """Why the compiler uploads the inference code itself: ModelBuilder with source code and model data known
    only at run time makes ModelStep add a second, training step (an extra step, timestamped S3 keys)."""
    from sagemaker.core.workflow.parameters import ParameterString
    from sagemaker.core.workflow.pipeline_context import PipelineSession
    from sagemaker.mlops.workflow.model_step import ModelStep
    from sagemaker.serve.model_builder import ModelBuilder
    from sagemaker.train.configs import SourceCode

    session = PipelineSession(boto_session=aws, default_bucket=BUCKET)
    builder = ModelBuilder(
        image_uri=IMAGE,
        s3_model_data_url=ParameterString("ModelData", default_value="s3://models/model.tar.gz"),
        role_arn=ROLE,
        sagemaker_session=session,
        source_code=SourceCode(source_dir=str(INFERENCE), entry_script="inference.py"),
    )
    step = ModelStep(name="model", step_args=builder.build())
    assert [type(s).__name__ for s in step.steps] == ["_RepackModelStep"]


def test_code_archive_ignores_caches_and_timestamps(tmp_path: Any) -> None:
    source = tmp_path / "src"
    (source / "__pycache__").mkdir(parents=True)
    (source / "serve.py").write_text("print('hi')\n")
    (source / "__pycache__" / "serve.cpython-311.pyc").write_bytes(b"\0")
    code = InferenceCodeSpec(entry_point="serve.py", source_dir=str(source))
    first = pack(code)
    import os

    os.utime(source / "serve.py", (0, 0))
    assert pack(code) == first
    with tarfile.open(fileobj=io.BytesIO(first)) as tar:
        assert tar.getnames() == ["serve.py"]
    lone = pack(InferenceCodeSpec(entry_point=str(source / "serve.py")))
    with tarfile.open(fileobj=io.BytesIO(lone)) as tar:
        assert tar.getnames() == ["serve.py"]


def test_fixture_dag_with_relative_code_paths_compiles_identically(aws: Any) -> None:
    dag = load_fixture_dag("model_registry_pipeline")
    group = dag.task_group_dict["ml"]
    first = compile_definition(build_pipeline_spec(group), aws)
    assert first == compile_definition(build_pipeline_spec(group), aws)
    (check,) = [s for s in json.loads(first)["Steps"] if s["Type"] == "Condition"]
    branch = {s["Name"]: s for s in check["Arguments"]["IfSteps"]}
    assert sorted(branch) == ["create_model", "register_model"]
    for container in (
        branch["create_model"]["Arguments"]["PrimaryContainer"],
        branch["register_model"]["Arguments"]["InferenceSpecification"]["Containers"][0],
    ):
        assert container["Environment"]["SAGEMAKER_PROGRAM"] == "serve.py"
    # The same code (a directory holding only serve.py, or serve.py alone) packs to the same archive.
    assert (
        branch["create_model"]["Arguments"]["PrimaryContainer"]["Environment"]["SAGEMAKER_SUBMIT_DIRECTORY"]
        == branch["register_model"]["Arguments"]["InferenceSpecification"]["Containers"][0]["Environment"][
            "SAGEMAKER_SUBMIT_DIRECTORY"
        ]
    )
