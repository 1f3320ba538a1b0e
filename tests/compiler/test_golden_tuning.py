"""Tuning steps compile to what the SDK's HyperparameterTuner and TuningStep produce by hand, and to a valid
CreateHyperParameterTuningJob request."""

from __future__ import annotations

import io
import json
import os
import tarfile
from typing import Any

import boto3
import pendulum
from airflow.sdk import DAG
from compiler_support import BUCKET, CODE, IMAGE, ROLE
from request_shapes import request_problems

from airflow_provider_smpipe import (
    CategoricalRange,
    ContinuousRange,
    IntegerRange,
    SageMakerPipelineTaskGroup,
    SageMakerProcessingStepOperator,
    SageMakerTuningStepOperator,
)
from airflow_provider_smpipe.compiler.from_airflow import build_pipeline_spec
from airflow_provider_smpipe.compiler.sdk import compile_definition

START = pendulum.datetime(2026, 1, 1)
PIPELINE = "golden-tune"
REGEX = r"validation:auc=([0-9.]+)"


def _normalized(definition: str) -> dict[str, Any]:
    """The definition with the uploaded code's locations replaced: the SDK's are timestamped, ours are
    content-addressed (the archive's content is checked separately)."""
    parsed = json.loads(definition)

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("ChannelName") in {"code", "sm_drivers"}:
                node["DataSource"]["S3DataSource"]["S3Uri"] = f"<{node['ChannelName']}>"
            if "sagemaker_submit_directory" in node:
                node["sagemaker_submit_directory"] = "<sourcedir>"
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(parsed)
    return parsed


def _group(**kwargs: Any) -> SageMakerPipelineTaskGroup:
    return SageMakerPipelineTaskGroup(
        "ml", pipeline_name=PIPELINE, role_arn=ROLE, default_bucket=BUCKET, **kwargs
    )


def _tuning_arguments(definition: str, step_name: str) -> dict[str, Any]:
    steps = {step["Name"]: step for step in json.loads(definition)["Steps"]}
    assert steps[step_name]["Type"] == "Tuning"
    arguments: dict[str, Any] = steps[step_name]["Arguments"]
    return arguments


def test_tuning_step_matches_the_sdk_and_the_api(aws: Any) -> None:
    with (
        DAG("golden", start_date=START, schedule=None),
        _group(parameters={"MinLr": 0.001, "Booster": "dart"}) as group,
    ):
        prep = SageMakerProcessingStepOperator(
            task_id="prep", image_uri=IMAGE, entrypoint=["python3", "-m", "prep"], outputs=["train"]
        )
        tune = SageMakerTuningStepOperator(
            task_id="tune",
            image_uri=IMAGE,
            entry_point="train.py",
            source_dir=str(CODE / "train_src"),
            hyperparameters={"epochs": 5, "lr": 0.1},
            inputs={"train": prep.output_uri("train")},
            instance_type="ml.c5.xlarge",
            max_runtime_in_seconds=900,
            environment={"SEED": "7"},
            output_path="s3://models/tuned",
            hyperparameter_ranges={
                "lr": ContinuousRange(group.parameter("MinLr"), 0.5, scaling="Logarithmic"),
                "depth": IntegerRange(2, 10, scaling="Linear"),
                "booster": CategoricalRange(["gbtree", group.parameter("Booster")]),
            },
            objective_metric_name="validation:auc",
            objective_metric_regex=REGEX,
            metric_definitions=[{"Name": "train:loss", "Regex": r"loss=([0-9.]+)"}],
            objective_type="Minimize",
            strategy="Bayesian",
            max_jobs=12,
            max_parallel_jobs=3,
            early_stopping="Auto",
            random_seed=42,
            cache="P7D",
            retry_policies=[{"exception_types": ["SageMaker.CAPACITY_ERROR"], "max_attempts": 2}],
        )
        SageMakerProcessingStepOperator(
            task_id="report",
            image_uri=IMAGE,
            entrypoint=["python3", "-m", "report"],
            arguments=[tune.model_artifacts, tune.top_model_artifacts(2), tune.best_training_job_name],
        )
    ours = compile_definition(build_pipeline_spec(group), aws)

    from sagemaker.core.parameter import CategoricalParameter, ContinuousParameter, IntegerParameter
    from sagemaker.core.processing import Processor
    from sagemaker.core.shapes import OutputDataConfig
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.core.workflow.functions import Join
    from sagemaker.core.workflow.parameters import ParameterFloat, ParameterString
    from sagemaker.core.workflow.pipeline_context import PipelineSession
    from sagemaker.mlops.workflow.pipeline import Pipeline
    from sagemaker.mlops.workflow.retry import SageMakerJobExceptionTypeEnum, SageMakerJobStepRetryPolicy
    from sagemaker.mlops.workflow.steps import CacheConfig, ProcessingStep, TuningStep
    from sagemaker.train import ModelTrainer
    from sagemaker.train.configs import Compute, InputData, SourceCode, StoppingCondition
    from sagemaker.train.tuner import HyperparameterTuner

    from airflow_provider_smpipe.compiler.sdk import _sdk_environment

    session = PipelineSession(boto_session=aws, default_bucket=BUCKET)
    min_lr = ParameterFloat("MinLr", default_value=0.001)
    booster = ParameterString("Booster", default_value="dart")
    from sagemaker.core.shapes import ProcessingOutput, ProcessingS3Output

    prep_step = ProcessingStep(
        name="prep",
        step_args=Processor(
            role=ROLE,
            image_uri=IMAGE,
            entrypoint=["python3", "-m", "prep"],
            instance_type="ml.m5.large",
            instance_count=1,
            sagemaker_session=session,
        ).run(
            outputs=[
                ProcessingOutput(
                    output_name="train",
                    s3_output=ProcessingS3Output(
                        s3_uri=Join(
                            on="/",
                            values=[
                                "s3:/",
                                BUCKET,
                                PIPELINE,
                                ExecutionVariables.PIPELINE_EXECUTION_ID,
                                "prep",
                                "train",
                            ],
                        ),
                        local_path="/opt/ml/processing/output/train",
                        s3_upload_mode="EndOfJob",
                    ),
                )
            ]
        ),
    )
    with _sdk_environment(None, "us-east-1"):
        trainer = ModelTrainer(
            training_image=IMAGE,
            role=ROLE,
            sagemaker_session=session,
            base_job_name="tune",
            source_code=SourceCode(source_dir=str(CODE / "train_src"), entry_script="train.py"),
            compute=Compute(instance_type="ml.c5.xlarge", instance_count=1, volume_size_in_gb=30),
            stopping_condition=StoppingCondition(max_runtime_in_seconds=900),
            hyperparameters={"epochs": 5, "lr": 0.1},
            environment={"SEED": "7"},
            output_data_config=OutputDataConfig(s3_output_path="s3://models/tuned"),
        )
        tuner = HyperparameterTuner(
            model_trainer=trainer,
            objective_metric_name="validation:auc",
            hyperparameter_ranges={
                "lr": ContinuousParameter(min_lr, 0.5, "Logarithmic"),
                "depth": IntegerParameter(2, 10, "Linear"),
                "booster": CategoricalParameter(["gbtree", booster]),
            },
            metric_definitions=[
                {"Name": "validation:auc", "Regex": REGEX},
                {"Name": "train:loss", "Regex": r"loss=([0-9.]+)"},
            ],
            objective_type="Minimize",
            strategy="Bayesian",
            max_jobs=12,
            max_parallel_jobs=3,
            early_stopping_type="Auto",
            random_seed=42,
        )
        tune_step = TuningStep(
            name="tune",
            step_args=tuner.tune(
                inputs=[
                    InputData(
                        channel_name="train",
                        data_source=prep_step.properties.ProcessingOutputConfig.Outputs[
                            "train"
                        ].S3Output.S3Uri,
                    )
                ],
                wait=False,
            ),
            depends_on=["prep"],
            cache_config=CacheConfig(enable_caching=True, expire_after="P7D"),
            retry_policies=[
                SageMakerJobStepRetryPolicy(
                    exception_types=[SageMakerJobExceptionTypeEnum.CAPACITY_ERROR], max_attempts=2
                )
            ],
        )
        report_step = ProcessingStep(
            name="report",
            step_args=Processor(
                role=ROLE,
                image_uri=IMAGE,
                entrypoint=["python3", "-m", "report"],
                instance_type="ml.m5.large",
                instance_count=1,
                sagemaker_session=session,
            ).run(
                arguments=[
                    tune_step.get_top_model_s3_uri(0, "models", "tuned"),
                    tune_step.get_top_model_s3_uri(2, "models", "tuned"),
                    tune_step.properties.BestTrainingJob.TrainingJobName,
                ]
            ),
            depends_on=["tune"],
        )
        by_hand = Pipeline(
            name=PIPELINE,
            parameters=[min_lr, booster],
            steps=[prep_step, tune_step, report_step],
            sagemaker_session=session,
        ).definition()
    assert _normalized(ours) == _normalized(by_hand)

    arguments = _tuning_arguments(ours, "tune")
    assert request_problems("CreateHyperParameterTuningJob", arguments, {"HyperParameterTuningJobName"}) == []
    definition = arguments["TrainingJobDefinition"]
    assert "lr" not in definition["StaticHyperParameters"]  # tuned, so not static
    assert definition["StaticHyperParameters"]["sagemaker_program"] == "train.py"


def test_source_archive_is_content_addressed_and_reproducible(aws: Any) -> None:
    def build() -> Any:
        with DAG("golden", start_date=START, schedule=None), _group() as group:
            SageMakerTuningStepOperator(
                task_id="tune",
                image_uri=IMAGE,
                entry_point="train.py",
                source_dir=str(CODE / "train_src"),
                hyperparameter_ranges={"kind": CategoricalRange(["a", "b"])},
                objective_metric_name="acc",
                objective_metric_regex=r"acc=(\S+)",
                strategy="Grid",
            )
        return compile_definition(build_pipeline_spec(group), aws)

    first, second = build(), build()
    assert first == second
    arguments = _tuning_arguments(first, "tune")
    limits = arguments["HyperParameterTuningJobConfig"]["ResourceLimits"]
    assert "MaxNumberOfTrainingJobs" not in limits  # Grid: SageMaker counts the combinations
    assert request_problems("CreateHyperParameterTuningJob", arguments, {"HyperParameterTuningJobName"}) == []
    uri = arguments["TrainingJobDefinition"]["StaticHyperParameters"]["sagemaker_submit_directory"]
    assert uri.startswith(f"s3://{BUCKET}/{PIPELINE}/code/") and uri.endswith("/sourcedir.tar.gz")
    body = boto3.client("s3").get_object(Bucket=BUCKET, Key=uri.split("/", 3)[3])["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]
        assert {m.mtime for m in tar.getmembers()} == {0}
    expected = {}
    for root, _, names in os.walk(CODE / "train_src"):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as handle:
                expected[os.path.relpath(path, CODE / "train_src")] = handle.read()
    assert members == expected


def test_model_artifacts_of_a_tuning_step_with_a_parameter_output_path(aws: Any) -> None:
    with DAG("golden", start_date=START, schedule=None), _group(parameters={"Out": "s3://models/x"}) as group:
        tune = SageMakerTuningStepOperator(
            task_id="tune",
            image_uri=IMAGE,
            entry_point="train.py",
            source_dir=str(CODE / "train_src"),
            output_path=group.parameter("Out"),
            hyperparameter_ranges={"lr": ContinuousRange(0.01, 0.1)},
            objective_metric_name="acc",
            objective_metric_regex=r"acc=(\S+)",
            strategy="Random",
            max_jobs=3,
        )
        SageMakerProcessingStepOperator(
            task_id="report", image_uri=IMAGE, entrypoint=["true"], arguments=[tune.top_model_artifacts(1)]
        )
    steps = {s["Name"]: s for s in json.loads(compile_definition(build_pipeline_spec(group), aws))["Steps"]}
    assert steps["report"]["Arguments"]["AppSpecification"]["ContainerArguments"] == [
        {
            "Std:Join": {
                "On": "/",
                "Values": [
                    {"Get": "Parameters.Out"},
                    {"Get": "Steps.tune.TrainingJobSummaries[1].TrainingJobName"},
                    "output/model.tar.gz",
                ],
            }
        }
    ]
    assert steps["report"]["DependsOn"] == ["tune"]


def test_an_image_only_tuning_step_runs_the_images_own_entrypoint(aws: Any) -> None:
    """Without entry_point (a built-in algorithm's image) the trials get no script and no code channels."""
    with DAG("golden", start_date=START, schedule=None), _group() as group:
        SageMakerTuningStepOperator(
            task_id="tune",
            image_uri=IMAGE,
            inputs={"train": "s3://smpipe-golden/train/"},
            hyperparameter_ranges={"eta": ContinuousRange(0.1, 0.5)},
            hyperparameters={"num_round": 10},
            objective_metric_name="validation:rmse",
            objective_type="Minimize",
        )
    arguments = _tuning_arguments(compile_definition(build_pipeline_spec(group), aws), "tune")
    definition = arguments["TrainingJobDefinition"]
    assert definition["AlgorithmSpecification"]["TrainingImage"] == IMAGE
    assert [c["ChannelName"] for c in definition["InputDataConfig"]] == ["train"]
    assert "sagemaker_program" not in json.dumps(definition)
    assert definition["StaticHyperParameters"]["num_round"] == "10"
    assert request_problems("CreateHyperParameterTuningJob", arguments, {"HyperParameterTuningJobName"}) == []
