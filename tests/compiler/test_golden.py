"""The compiled definition equals what the SageMaker SDK produces when the same steps are written by hand."""

from __future__ import annotations

import json
from typing import Any

import pendulum
import pytest
from airflow.sdk import DAG
from compiler_support import BUCKET, CODE, IMAGE, ROLE, load_fixture_dag

from airflow_provider_smpipe import (
    Parameter,
    SageMakerConditionStepOperator,
    SageMakerFailStepOperator,
    SageMakerPipelineTaskGroup,
    SageMakerProcessingStepOperator,
    SageMakerTrainingStepOperator,
)
from airflow_provider_smpipe.compiler.from_airflow import build_pipeline_spec
from airflow_provider_smpipe.compiler.sdk import compile_definition, make_pipeline_session
from airflow_provider_smpipe.model.references import join

START = pendulum.datetime(2026, 1, 1)
PIPELINE = "golden-ml"


def _normalized(definition: str) -> dict[str, Any]:
    """Parsed definition with the SDK's timestamped training-code URIs replaced (ours are content-addressed)."""
    parsed = json.loads(definition)

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("ChannelName") in {"code", "sm_drivers"}:
                node["DataSource"]["S3DataSource"]["S3Uri"] = f"<{node['ChannelName']}>"
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(parsed)
    return parsed


def _compile(group: SageMakerPipelineTaskGroup, session: Any) -> str:
    return compile_definition(build_pipeline_spec(group), session)


def _sdk_session(session: Any) -> Any:
    from sagemaker.core.workflow.pipeline_context import PipelineSession

    return PipelineSession(boto_session=session, default_bucket=BUCKET)


def _default_output(step: str, name: str) -> Any:
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.core.workflow.functions import Join

    return Join(
        on="/", values=["s3:/", BUCKET, PIPELINE, ExecutionVariables.PIPELINE_EXECUTION_ID, step, name]
    )


def _processing_io(inputs: dict[str, Any], outputs: dict[str, Any]) -> tuple[list[Any], list[Any]]:
    from sagemaker.core.shapes import ProcessingInput, ProcessingOutput, ProcessingS3Input, ProcessingS3Output

    ins = [
        ProcessingInput(
            input_name=name,
            s3_input=ProcessingS3Input(
                s3_uri=source,
                local_path=f"/opt/ml/processing/input/{name}",
                s3_data_type="S3Prefix",
                s3_input_mode="File",
            ),
        )
        for name, source in inputs.items()
    ]
    outs = [
        ProcessingOutput(
            output_name=name,
            s3_output=ProcessingS3Output(
                s3_uri=destination,
                local_path=f"/opt/ml/processing/output/{name}",
                s3_upload_mode="EndOfJob",
            ),
        )
        for name, destination in outputs.items()
    ]
    return ins, outs


def test_processing_with_parameters_caching_and_retries(aws: Any) -> None:
    with (
        DAG("golden", start_date=START, schedule=None),
        SageMakerPipelineTaskGroup(
            "ml",
            pipeline_name=PIPELINE,
            role_arn=ROLE,
            default_bucket=BUCKET,
            parameters={"InputData": "s3://in/raw", "Split": 0.2, "Workers": 2, "Strict": True},
        ) as group,
    ):
        SageMakerProcessingStepOperator(
            task_id="prep",
            image_uri=IMAGE,
            code=str(CODE / "prep.py"),
            command=["python3"],
            arguments=["--split", group.parameter("Split")],
            inputs={"raw": group.parameter("InputData")},
            outputs={"train": None, "test": "s3://elsewhere/test"},
            instance_type="ml.c5.xlarge",
            instance_count=group.parameter("Workers"),
            volume_size_in_gb=50,
            max_runtime_in_seconds=600,
            environment={"MODE": "full", "STRICT": group.parameter("Strict")},
            cache="P30D",
            retry_policies=[
                {"exception_types": ["Step.THROTTLING", "Step.SERVICE_FAULT"], "max_attempts": 3},
                {
                    "exception_types": ["SageMaker.CAPACITY_ERROR"],
                    "interval_seconds": 30,
                    "expire_after_mins": 60,
                },
            ],
        )
    ours = _compile(group, aws)

    from sagemaker.core.processing import ScriptProcessor
    from sagemaker.core.workflow.parameters import (
        ParameterBoolean,
        ParameterFloat,
        ParameterInteger,
        ParameterString,
    )
    from sagemaker.mlops.workflow.pipeline import Pipeline
    from sagemaker.mlops.workflow.retry import (
        SageMakerJobExceptionTypeEnum,
        SageMakerJobStepRetryPolicy,
        StepExceptionTypeEnum,
        StepRetryPolicy,
    )
    from sagemaker.mlops.workflow.steps import CacheConfig, ProcessingStep

    session = _sdk_session(aws)
    input_data = ParameterString("InputData", default_value="s3://in/raw")
    split = ParameterFloat("Split", default_value=0.2)
    workers = ParameterInteger("Workers", default_value=2)
    strict = ParameterBoolean("Strict", default_value=True)
    processor = ScriptProcessor(
        role=ROLE,
        image_uri=IMAGE,
        command=["python3"],
        instance_type="ml.c5.xlarge",
        instance_count=workers,
        volume_size_in_gb=50,
        max_runtime_in_seconds=600,
        env={"MODE": "full", "STRICT": strict},
        sagemaker_session=session,
    )
    inputs, outputs = _processing_io(
        {"raw": input_data}, {"train": _default_output("prep", "train"), "test": "s3://elsewhere/test"}
    )
    step = ProcessingStep(
        name="prep",
        step_args=processor.run(
            code=str(CODE / "prep.py"), inputs=inputs, outputs=outputs, arguments=["--split", split]
        ),
        cache_config=CacheConfig(enable_caching=True, expire_after="P30D"),
        retry_policies=[
            StepRetryPolicy(
                exception_types=[StepExceptionTypeEnum.THROTTLING, StepExceptionTypeEnum.SERVICE_FAULT],
                max_attempts=3,
            ),
            SageMakerJobStepRetryPolicy(
                exception_types=[SageMakerJobExceptionTypeEnum.CAPACITY_ERROR],
                interval_seconds=30,
                expire_after_mins=60,
            ),
        ],
    )
    by_hand = Pipeline(
        name=PIPELINE,
        parameters=[input_data, split, workers, strict],
        steps=[step],
        sagemaker_session=session,
    ).definition()
    assert json.loads(ours) == json.loads(by_hand)


def test_training_with_spot_checkpoints_and_references(aws: Any) -> None:
    with (
        DAG("golden", start_date=START, schedule=None),
        SageMakerPipelineTaskGroup(
            "ml",
            pipeline_name=PIPELINE,
            role_arn=ROLE,
            default_bucket=BUCKET,
            parameters={"Epochs": 3, "TrainType": Parameter("ml.m5.xlarge", type="String")},
        ) as group,
    ):
        prep = SageMakerProcessingStepOperator(
            task_id="prep",
            image_uri=IMAGE,
            entrypoint=["python3", "-m", "prep"],
            outputs=["train"],
        )
        SageMakerTrainingStepOperator(
            task_id="train",
            image_uri=IMAGE,
            entry_point="train.py",
            source_dir=str(CODE / "train_src"),
            hyperparameters={"epochs": group.parameter("Epochs"), "lr": 0.1},
            inputs={"train": prep.output_uri("train"), "extra": "s3://in/extra"},
            instance_type=group.parameter("TrainType"),
            instance_count=2,
            volume_size_in_gb=40,
            max_runtime_in_seconds=3600,
            environment={"SEED": "7"},
            output_path="s3://models/out",
            use_spot_instances=True,
            max_wait_in_seconds=7200,
            checkpoint_s3_uri="s3://models/checkpoints",
            cache=True,
        )
    ours = _compile(group, aws)

    from sagemaker.core.processing import Processor
    from sagemaker.core.shapes import CheckpointConfig, OutputDataConfig
    from sagemaker.core.workflow.parameters import ParameterInteger, ParameterString
    from sagemaker.mlops.workflow.pipeline import Pipeline
    from sagemaker.mlops.workflow.steps import CacheConfig, ProcessingStep, TrainingStep
    from sagemaker.train import ModelTrainer
    from sagemaker.train.configs import Compute, InputData, SourceCode, StoppingCondition

    session = _sdk_session(aws)
    epochs = ParameterInteger("Epochs", default_value=3)
    train_type = ParameterString("TrainType", default_value="ml.m5.xlarge")
    processor = Processor(
        role=ROLE,
        image_uri=IMAGE,
        entrypoint=["python3", "-m", "prep"],
        instance_type="ml.m5.large",
        instance_count=1,
        sagemaker_session=session,
    )
    _, outputs = _processing_io({}, {"train": _default_output("prep", "train")})
    prep_step = ProcessingStep(name="prep", step_args=processor.run(outputs=outputs), depends_on=None)
    import os

    os.environ["SAGEMAKER_VALIDATE_ROLE"] = "false"
    try:
        trainer = ModelTrainer(
            training_image=IMAGE,
            role=ROLE,
            sagemaker_session=session,
            base_job_name="train",
            source_code=SourceCode(source_dir=str(CODE / "train_src"), entry_script="train.py"),
            compute=Compute(
                instance_type=train_type,
                instance_count=2,
                volume_size_in_gb=40,
                enable_managed_spot_training=True,
            ),
            stopping_condition=StoppingCondition(max_runtime_in_seconds=3600, max_wait_time_in_seconds=7200),
            hyperparameters={"epochs": epochs, "lr": 0.1},
            environment={"SEED": "7"},
            output_data_config=OutputDataConfig(s3_output_path="s3://models/out"),
            checkpoint_config=CheckpointConfig(s3_uri="s3://models/checkpoints"),
        )
        train_args = trainer.train(
            input_data_config=[
                InputData(
                    channel_name="train",
                    data_source=prep_step.properties.ProcessingOutputConfig.Outputs["train"].S3Output.S3Uri,
                ),
                InputData(channel_name="extra", data_source="s3://in/extra"),
            ],
            wait=False,
        )
    finally:
        os.environ.pop("SAGEMAKER_VALIDATE_ROLE")
    train_step = TrainingStep(
        name="train", step_args=train_args, cache_config=CacheConfig(enable_caching=True), depends_on=["prep"]
    )
    by_hand = Pipeline(
        name=PIPELINE,
        parameters=[epochs, train_type],
        steps=[prep_step, train_step],
        sagemaker_session=session,
    ).definition()
    assert _normalized(ours) == _normalized(by_hand)


def test_condition_fail_and_property_files(aws: Any) -> None:
    with (
        DAG("golden", start_date=START, schedule=None),
        SageMakerPipelineTaskGroup(
            "ml",
            pipeline_name=PIPELINE,
            role_arn=ROLE,
            default_bucket=BUCKET,
            parameters={"MinAccuracy": 0.8, "Stage": "dev"},
        ) as group,
    ):
        evaluate = SageMakerProcessingStepOperator(
            task_id="evaluate",
            image_uri=IMAGE,
            code=str(CODE / "evaluate.py"),
            command=["python3"],
            outputs=["evaluation"],
            property_files={"metrics": "evaluation/evaluation.json"},
        )
        publish = SageMakerProcessingStepOperator(
            task_id="publish",
            image_uri=IMAGE,
            entrypoint=["python3", "-c", "print('published')"],
            arguments=[evaluate.step_property("ProcessingJobName")],
        )
        stop = SageMakerFailStepOperator(
            task_id="stop",
            error_message=join(
                "accuracy ",
                evaluate.property_value("metrics", "metrics.accuracy"),
                " below ",
                group.parameter("MinAccuracy"),
            ),
        )
        accuracy = evaluate.property_value("metrics", "metrics.accuracy")
        check = SageMakerConditionStepOperator(
            task_id="check",
            conditions=[
                accuracy >= group.parameter("MinAccuracy"),
                (accuracy < 1.0) | group.parameter("Stage").eq("dev") | ~accuracy.is_in([0.5, 0.6]),
                accuracy.ne(0.0) & (accuracy > 0.1),
            ],
            if_steps=[publish],
            else_steps=[stop],
        )
        evaluate >> check >> [publish, stop]
    ours = _compile(group, aws)

    from sagemaker.core.processing import Processor, ScriptProcessor
    from sagemaker.core.workflow.conditions import (
        ConditionEquals,
        ConditionGreaterThan,
        ConditionGreaterThanOrEqualTo,
        ConditionIn,
        ConditionLessThan,
        ConditionNot,
        ConditionOr,
    )
    from sagemaker.core.workflow.functions import Join, JsonGet
    from sagemaker.core.workflow.parameters import ParameterFloat, ParameterString
    from sagemaker.core.workflow.properties import PropertyFile
    from sagemaker.mlops.workflow.condition_step import ConditionStep
    from sagemaker.mlops.workflow.fail_step import FailStep
    from sagemaker.mlops.workflow.pipeline import Pipeline
    from sagemaker.mlops.workflow.steps import ProcessingStep

    session = _sdk_session(aws)
    min_accuracy = ParameterFloat("MinAccuracy", default_value=0.8)
    stage = ParameterString("Stage", default_value="dev")
    metrics = PropertyFile(name="metrics", output_name="evaluation", path="evaluation.json")
    _, outputs = _processing_io({}, {"evaluation": _default_output("evaluate", "evaluation")})
    evaluate_step = ProcessingStep(
        name="evaluate",
        step_args=ScriptProcessor(
            role=ROLE,
            image_uri=IMAGE,
            command=["python3"],
            instance_type="ml.m5.large",
            instance_count=1,
            sagemaker_session=session,
        ).run(code=str(CODE / "evaluate.py"), outputs=outputs),
        property_files=[metrics],
    )
    acc = JsonGet(step_name="evaluate", property_file=metrics, json_path="metrics.accuracy")
    publish_step = ProcessingStep(
        name="publish",
        step_args=Processor(
            role=ROLE,
            image_uri=IMAGE,
            entrypoint=["python3", "-c", "print('published')"],
            instance_type="ml.m5.large",
            instance_count=1,
            sagemaker_session=session,
        ).run(arguments=[evaluate_step.properties.ProcessingJobName]),
        depends_on=["evaluate"],  # references add the dependency edge, as XComArgs do in Airflow
    )
    stop_step = FailStep(
        name="stop",
        error_message=Join(on="", values=["accuracy ", acc, " below ", min_accuracy]),
        depends_on=["evaluate"],
    )
    check_step = ConditionStep(
        name="check",
        depends_on=["evaluate"],
        conditions=[
            ConditionGreaterThanOrEqualTo(left=acc, right=min_accuracy),
            ConditionOr(
                conditions=[
                    ConditionLessThan(left=acc, right=1.0),
                    ConditionEquals(left=stage, right="dev"),
                    ConditionNot(expression=ConditionIn(value=acc, in_values=[0.5, 0.6])),
                ]
            ),
            ConditionNot(expression=ConditionEquals(left=acc, right=0.0)),
            ConditionGreaterThan(left=acc, right=0.1),
        ],
        if_steps=[publish_step],
        else_steps=[stop_step],
    )
    by_hand = Pipeline(
        name=PIPELINE,
        parameters=[min_accuracy, stage],
        steps=[evaluate_step, check_step],
        sagemaker_session=session,
    ).definition()
    assert json.loads(ours) == json.loads(by_hand)


def test_same_dag_compiles_to_identical_bytes(aws: Any) -> None:
    dag = load_fixture_dag("full_pipeline")
    group = dag.task_group_dict["ml"]
    assert _compile(group, aws) == _compile(group, aws)


def test_training_code_is_content_addressed(aws: Any) -> None:
    session = make_pipeline_session(aws, BUCKET, "p")
    uri = session.upload_data(str(CODE / "train_src"), BUCKET, "p/train-20260101000000/input/code")
    assert uri.startswith(f"s3://{BUCKET}/p/code/") and uri.endswith("/code")
    again = session.upload_data(str(CODE / "train_src"), BUCKET, "p/train-20270101000000/input/code")
    assert uri == again


@pytest.mark.parametrize("default", [True, 3, 0.5, "x"])
def test_parameter_types_inferred(default: Any) -> None:
    from airflow_provider_smpipe.model.references import infer_parameter_type

    expected = {bool: "Boolean", int: "Integer", float: "Float", str: "String"}[type(default)]
    assert infer_parameter_type(default) == expected
