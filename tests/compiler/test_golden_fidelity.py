"""Processing and training at AWS fidelity: the compiled definition equals the same steps written with the SDK's
own classes, and each step's arguments are a valid request of the API call SageMaker makes for it."""

from __future__ import annotations

import json
import os
from typing import Any

import pendulum
import pytest
from airflow.sdk import DAG
from compiler_support import BUCKET, CODE, IMAGE, ROLE
from request_shapes import request_problems

from airflow_provider_smpipe import (
    ProcessingInput,
    ProcessingOutput,
    SageMakerConditionStepOperator,
    SageMakerFailStepOperator,
    SageMakerPipelineTaskGroup,
    SageMakerProcessingStepOperator,
    SageMakerStepOperator,
    SageMakerTrainingStepOperator,
    TrainingInput,
)
from airflow_provider_smpipe.compiler.from_airflow import build_pipeline_spec
from airflow_provider_smpipe.compiler.sdk import compile_definition

START = pendulum.datetime(2026, 1, 1)
PIPELINE = "golden-fidelity"
XGBOOST = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"


def _compile(group: SageMakerPipelineTaskGroup, session: Any) -> dict[str, Any]:
    return json.loads(compile_definition(build_pipeline_spec(group), session))


def _sdk_session(session: Any) -> Any:
    from sagemaker.core.workflow.pipeline_context import PipelineSession

    return PipelineSession(boto_session=session, default_bucket=BUCKET)


def _steps(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {step["Name"]: step for step in definition["Steps"]}


def test_processing_container_paths_modes_distribution_and_upload_mode(aws: Any) -> None:
    with (
        DAG("golden", start_date=START, schedule=None),
        SageMakerPipelineTaskGroup(
            "ml", pipeline_name=PIPELINE, role_arn=ROLE, default_bucket=BUCKET
        ) as group,
    ):
        SageMakerProcessingStepOperator(
            task_id="prep",
            task_display_name="Prepare the data",
            description="Splits the raw data",
            image_uri=IMAGE,
            code=str(CODE / "prep.py"),
            command=["python3"],
            instance_count=2,
            inputs={
                "raw": ProcessingInput(
                    "s3://in/raw",
                    destination="/opt/ml/processing/raw",
                    mode="Pipe",
                    distribution="ShardedByS3Key",
                ),
                "lookup": "s3://in/lookup",
            },
            outputs={
                "train": ProcessingOutput(source="/opt/ml/processing/train", upload_mode="Continuous"),
                "test": ProcessingOutput("s3://out/test", source="/opt/ml/processing/test"),
                "report": None,
            },
        )
    ours = _compile(group, aws)

    from sagemaker.core.processing import ScriptProcessor
    from sagemaker.core.shapes import ProcessingInput as In
    from sagemaker.core.shapes import ProcessingOutput as Out
    from sagemaker.core.shapes import ProcessingS3Input, ProcessingS3Output
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.core.workflow.functions import Join
    from sagemaker.mlops.workflow.pipeline import Pipeline
    from sagemaker.mlops.workflow.steps import ProcessingStep

    def default(name: str) -> Any:
        return Join(
            on="/", values=["s3:/", BUCKET, PIPELINE, ExecutionVariables.PIPELINE_EXECUTION_ID, "prep", name]
        )

    session = _sdk_session(aws)
    processor = ScriptProcessor(
        role=ROLE,
        image_uri=IMAGE,
        command=["python3"],
        instance_type="ml.m5.large",
        instance_count=2,
        sagemaker_session=session,
    )
    step = ProcessingStep(
        name="prep",
        display_name="Prepare the data",
        description="Splits the raw data",
        step_args=processor.run(
            code=str(CODE / "prep.py"),
            inputs=[
                In(
                    input_name="raw",
                    s3_input=ProcessingS3Input(
                        s3_uri="s3://in/raw",
                        local_path="/opt/ml/processing/raw",
                        s3_data_type="S3Prefix",
                        s3_input_mode="Pipe",
                        s3_data_distribution_type="ShardedByS3Key",
                    ),
                ),
                In(
                    input_name="lookup",
                    s3_input=ProcessingS3Input(
                        s3_uri="s3://in/lookup",
                        local_path="/opt/ml/processing/input/lookup",
                        s3_data_type="S3Prefix",
                    ),
                ),
            ],
            outputs=[
                Out(
                    output_name="train",
                    s3_output=ProcessingS3Output(
                        s3_uri=default("train"),
                        local_path="/opt/ml/processing/train",
                        s3_upload_mode="Continuous",
                    ),
                ),
                Out(
                    output_name="test",
                    s3_output=ProcessingS3Output(
                        s3_uri="s3://out/test",
                        local_path="/opt/ml/processing/test",
                        s3_upload_mode="EndOfJob",
                    ),
                ),
                Out(
                    output_name="report",
                    s3_output=ProcessingS3Output(
                        s3_uri=default("report"),
                        local_path="/opt/ml/processing/output/report",
                        s3_upload_mode="EndOfJob",
                    ),
                ),
            ],
        ),
    )
    by_hand = json.loads(Pipeline(name=PIPELINE, steps=[step], sagemaker_session=session).definition())
    assert ours == by_hand
    prep = _steps(ours)["prep"]
    assert prep["DisplayName"] == "Prepare the data" and prep["Description"] == "Splits the raw data"
    raw = prep["Arguments"]["ProcessingInputs"][0]["S3Input"]
    assert (raw["LocalPath"], raw["S3InputMode"], raw["S3DataDistributionType"]) == (
        "/opt/ml/processing/raw",
        "Pipe",
        "ShardedByS3Key",
    )
    assert request_problems("CreateProcessingJob", prep["Arguments"], {"ProcessingJobName"}) == []


def _sdk_trainer(session: Any, **kwargs: Any) -> Any:
    from sagemaker.train import ModelTrainer

    os.environ["SAGEMAKER_VALIDATE_ROLE"] = "false"
    try:
        return ModelTrainer(role=ROLE, sagemaker_session=session, **kwargs)
    finally:
        os.environ.pop("SAGEMAKER_VALIDATE_ROLE")


def test_image_only_training_with_channel_options_warm_pool_and_default_stopping(aws: Any) -> None:
    with (
        DAG("golden", start_date=START, schedule=None),
        SageMakerPipelineTaskGroup(
            "ml", pipeline_name=PIPELINE, role_arn=ROLE, default_bucket=BUCKET
        ) as group,
    ):
        SageMakerTrainingStepOperator(
            task_id="train",
            image_uri=XGBOOST,
            hyperparameters={"objective": "binary:logistic", "num_round": 50},
            inputs={
                "train": TrainingInput(
                    "s3://in/train", content_type="text/csv", input_mode="Pipe", distribution="ShardedByS3Key"
                ),
                "validation": TrainingInput(
                    "s3://in/validation", content_type="text/csv", input_mode="FastFile"
                ),
                "extra": "s3://in/extra",
            },
            instance_count=3,
            volume_size_in_gb=50,
            keep_alive_period_in_seconds=900,
            output_path="s3://models/xgb",
        )
    ours = _compile(group, aws)

    from sagemaker.core.shapes import Channel, DataSource, OutputDataConfig, S3DataSource
    from sagemaker.core.training.configs import Compute, InputData, StoppingCondition
    from sagemaker.mlops.workflow.pipeline import Pipeline
    from sagemaker.mlops.workflow.steps import TrainingStep

    def channel(name: str, uri: str, **options: Any) -> Any:
        distribution = options.pop("distribution", "FullyReplicated")
        return Channel(
            channel_name=name,
            data_source=DataSource(
                s3_data_source=S3DataSource(
                    s3_data_type="S3Prefix", s3_uri=uri, s3_data_distribution_type=distribution
                )
            ),
            **options,
        )

    session = _sdk_session(aws)
    trainer = _sdk_trainer(
        session,
        training_image=XGBOOST,
        base_job_name="train",
        compute=Compute(
            instance_type="ml.m5.large",
            instance_count=3,
            volume_size_in_gb=50,
            keep_alive_period_in_seconds=900,
        ),
        stopping_condition=StoppingCondition(max_runtime_in_seconds=86400),
        hyperparameters={"objective": "binary:logistic", "num_round": 50},
        output_data_config=OutputDataConfig(s3_output_path="s3://models/xgb"),
    )
    args = trainer.train(
        input_data_config=[
            channel(
                "train",
                "s3://in/train",
                content_type="text/csv",
                input_mode="Pipe",
                distribution="ShardedByS3Key",
            ),
            channel("validation", "s3://in/validation", content_type="text/csv", input_mode="FastFile"),
            InputData(channel_name="extra", data_source="s3://in/extra"),
        ],
        wait=False,
    )
    step = TrainingStep(name="train", step_args=args)
    by_hand = json.loads(Pipeline(name=PIPELINE, steps=[step], sagemaker_session=session).definition())
    assert ours == by_hand
    arguments = _steps(ours)["train"]["Arguments"]
    # Image-only: no script channels, no entrypoint; the image's own runs.
    assert "ContainerEntrypoint" not in arguments["AlgorithmSpecification"]
    assert [c["ChannelName"] for c in arguments["InputDataConfig"]] == ["train", "validation", "extra"]
    assert arguments["StoppingCondition"] == {"MaxRuntimeInSeconds": 86400}  # SageMaker's default, not 3600
    assert arguments["ResourceConfig"]["KeepAlivePeriodInSeconds"] == 900
    assert request_problems("CreateTrainingJob", arguments, {"TrainingJobName"}) == []


@pytest.mark.parametrize(
    ("kwargs", "stopping"),
    [
        ({}, {"MaxRuntimeInSeconds": 86400}),
        ({"max_runtime_in_seconds": 1200}, {"MaxRuntimeInSeconds": 1200}),
        (
            {"use_spot_instances": True, "max_wait_in_seconds": 7200},
            {"MaxRuntimeInSeconds": 7200, "MaxWaitTimeInSeconds": 7200},
        ),
        (
            {"use_spot_instances": True, "max_wait_in_seconds": 7200, "max_runtime_in_seconds": 600},
            {"MaxRuntimeInSeconds": 600, "MaxWaitTimeInSeconds": 7200},
        ),
    ],
)
def test_stopping_condition_is_the_operators(
    aws: Any, kwargs: dict[str, Any], stopping: dict[str, int]
) -> None:
    with (
        DAG("golden", start_date=START, schedule=None),
        SageMakerPipelineTaskGroup(
            "ml", pipeline_name=PIPELINE, role_arn=ROLE, default_bucket=BUCKET
        ) as group,
    ):
        SageMakerTrainingStepOperator(
            task_id="train",
            image_uri=IMAGE,
            entry_point="train.py",
            source_dir=str(CODE / "train_src"),
            checkpoint_s3_uri="s3://models/ckpt" if kwargs.get("use_spot_instances") else None,
            checkpoint_local_path="/opt/ml/checkpoints/run" if kwargs.get("use_spot_instances") else None,
            **kwargs,
        )
    arguments = _steps(_compile(group, aws))["train"]["Arguments"]
    assert arguments["StoppingCondition"] == stopping
    if kwargs.get("use_spot_instances"):
        assert arguments["EnableManagedSpotTraining"] is True
        assert arguments["CheckpointConfig"] == {
            "S3Uri": "s3://models/ckpt",
            "LocalPath": "/opt/ml/checkpoints/run",
        }
    assert request_problems("CreateTrainingJob", arguments, {"TrainingJobName"}) == []


def _custom_factory(ctx: Any) -> Any:
    from sagemaker.mlops.workflow.fail_step import FailStep

    return FailStep(name=ctx.step_name, error_message="custom")


CACHE_AND_RETRY = {
    "cache": "P7D",
    "retry_policies": [
        {
            "exception_types": ["Step.THROTTLING"],
            "max_attempts": 2,
            "interval_seconds": 5,
            "backoff_rate": 1.5,
        },
        {"exception_types": ["SageMaker.CAPACITY_ERROR"], "expire_after_mins": 30},
    ],
}


def test_every_step_kind_renders_display_name_description_cache_and_retries(aws: Any) -> None:
    with (
        DAG("golden", start_date=START, schedule=None),
        SageMakerPipelineTaskGroup(
            "ml", pipeline_name=PIPELINE, role_arn=ROLE, default_bucket=BUCKET, parameters={"Go": True}
        ) as group,
    ):
        prep = SageMakerProcessingStepOperator(
            task_id="prep",
            task_display_name="Prep",
            description="processing",
            image_uri=IMAGE,
            entrypoint=["python3", "-c", "print(1)"],
            **CACHE_AND_RETRY,
        )
        train = SageMakerTrainingStepOperator(
            task_id="train",
            task_display_name="Train",
            description="training",
            image_uri=XGBOOST,
            **CACHE_AND_RETRY,
        )
        fail = SageMakerFailStepOperator(
            task_id="stop", task_display_name="Stop", description="fail", error_message="no"
        )
        check = SageMakerConditionStepOperator(
            task_id="check",
            task_display_name="Check",
            description="condition",
            conditions=group.parameter("Go").eq(True),
            else_steps=[fail],
        )
        custom = SageMakerStepOperator(
            task_id="custom",
            task_display_name="Custom",
            description="escape hatch",
            step_factory=_custom_factory,
        )
        prep >> train >> check >> fail
        train >> custom
    steps = _steps(_compile(group, aws))
    check_step = steps["check"]
    steps["stop"] = check_step["Arguments"]["ElseSteps"][0]
    expected = {
        "prep": ("Prep", "processing"),
        "train": ("Train", "training"),
        "check": ("Check", "condition"),
        "stop": ("Stop", "fail"),
        "custom": ("Custom", "escape hatch"),
    }
    for name, (display, description) in expected.items():
        assert (steps[name].get("DisplayName"), steps[name].get("Description")) == (display, description), (
            name
        )
    for name in ("prep", "train"):
        assert steps[name]["CacheConfig"] == {"Enabled": True, "ExpireAfter": "P7D"}
        assert steps[name]["RetryPolicies"] == [
            {
                "ExceptionType": ["Step.THROTTLING"],
                "IntervalSeconds": 5,
                "BackoffRate": 1.5,
                "MaxAttempts": 2,
            },
            {
                "ExceptionType": ["SageMaker.CAPACITY_ERROR"],
                "IntervalSeconds": 1,
                "BackoffRate": 2.0,
                "ExpireAfterMin": 30,
            },
        ]


def test_group_without_bucket_uses_the_accounts_default_bucket(aws: Any) -> None:
    with (
        DAG("golden", start_date=START, schedule=None),
        SageMakerPipelineTaskGroup("ml", pipeline_name=PIPELINE, role_arn=ROLE) as group,
    ):
        SageMakerProcessingStepOperator(
            task_id="prep", image_uri=IMAGE, code=str(CODE / "prep.py"), command=["python3"], outputs=["data"]
        )
    account = aws.client("sts").get_caller_identity()["Account"]
    bucket = f"sagemaker-us-east-1-{account}"
    arguments = _steps(_compile(group, aws))["prep"]["Arguments"]
    code = next(i for i in arguments["ProcessingInputs"] if i["InputName"] == "code")
    assert code["S3Input"]["S3Uri"].startswith(f"s3://{bucket}/")
    assert aws.client("s3").head_bucket(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 200
