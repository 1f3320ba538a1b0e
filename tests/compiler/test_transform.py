"""Transform steps: the compiled definition equals the SDK's own, its arguments are a valid CreateTransformJob
request, and bad input is refused at parse time naming the task and the field."""

from __future__ import annotations

import json
from typing import Any

import pendulum
import pytest
from airflow.sdk import DAG
from botocore.validate import ParamValidator
from compiler_support import BUCKET, IMAGE, ROLE

from airflow_provider_smpipe import (
    SageMakerPipelineTaskGroup,
    SageMakerProcessingStepOperator,
    SageMakerTransformStepOperator,
)
from airflow_provider_smpipe.compiler.from_airflow import build_pipeline_spec
from airflow_provider_smpipe.compiler.sdk import compile_definition
from airflow_provider_smpipe.exceptions import PipelineDefinitionError
from airflow_provider_smpipe.local.validation import operation_model
from airflow_provider_smpipe.model.references import StepPropertyRef

START = pendulum.datetime(2026, 1, 1)
PIPELINE = "golden-transform"


def _sdk_session(session: Any) -> Any:
    from sagemaker.core.workflow.pipeline_context import PipelineSession

    return PipelineSession(boto_session=session, default_bucket=BUCKET)


def _default_output(step: str, name: str) -> Any:
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.core.workflow.functions import Join

    return Join(
        on="/", values=["s3:/", BUCKET, PIPELINE, ExecutionVariables.PIPELINE_EXECUTION_ID, step, name]
    )


def _prep_step(session: Any) -> Any:
    from sagemaker.core.processing import Processor
    from sagemaker.core.shapes import ProcessingOutput, ProcessingS3Output
    from sagemaker.mlops.workflow.steps import ProcessingStep

    processor = Processor(
        role=ROLE,
        image_uri=IMAGE,
        entrypoint=["python3", "-m", "prep"],
        instance_type="ml.m5.large",
        instance_count=1,
        sagemaker_session=session,
    )
    output = ProcessingOutput(
        output_name="test",
        s3_output=ProcessingS3Output(
            s3_uri=_default_output("prep", "test"),
            local_path="/opt/ml/processing/output/test",
            s3_upload_mode="EndOfJob",
        ),
    )
    return ProcessingStep(name="prep", step_args=processor.run(outputs=[output]))


# -- botocore's CreateTransformJob input shape ----------------------------------------------------------


def _concrete(value: Any, parameters: dict[str, Any], key: str = "") -> Any:
    """The definition fragment as a request: parameters at their defaults, run-time values as examples."""
    if isinstance(value, dict) and len(value) == 1:
        ((kind, body),) = value.items()
        if kind == "Get":
            scope, _, name = str(body).partition(".")
            if scope == "Parameters":
                return parameters[name]
            if scope == "Execution":
                return "exec-123"
            return {"ModelName": "model-from-step"}.get(key, "s3://bucket/from-step")
        if kind == "Std:Join":
            return body["On"].join(str(_concrete(v, parameters, key)) for v in body["Values"])
    if isinstance(value, dict):
        return {k: _concrete(v, parameters, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_concrete(v, parameters, key) for v in value]
    return value


def _shape_problems(shape: Any, value: Any, path: str) -> list[str]:
    """Enum, length and pattern checks botocore's client-side validator leaves to the service."""
    import re

    problems: list[str] = []
    if shape.type_name == "structure" and isinstance(value, dict):
        for name, item in value.items():
            if name in shape.members:
                problems += _shape_problems(shape.members[name], item, f"{path}.{name}")
    elif shape.type_name == "map" and isinstance(value, dict):
        for item in value.values():
            problems += _shape_problems(shape.value, item, f"{path}[]")
    elif shape.type_name == "string" and isinstance(value, str):
        enum = shape.metadata.get("enum")
        if enum and value not in enum:
            problems.append(f"{path}: {value!r} not in {enum}")
        if len(value) > shape.metadata.get("max", 1 << 30):
            problems.append(f"{path}: longer than {shape.metadata['max']}")
        pattern = shape.metadata.get("pattern")
        if pattern and not re.fullmatch(pattern, value):
            problems.append(f"{path}: {value!r} does not match {pattern}")
    return problems


def assert_valid_create_transform_job(definition: str, step_name: str) -> dict[str, Any]:
    """The step's arguments, made concrete, are a request CreateTransformJob accepts (job name added: the
    pipeline names the job)."""
    parsed = json.loads(definition)
    parameters = {p["Name"]: p.get("DefaultValue") for p in parsed["Parameters"]}
    (step,) = [s for s in parsed["Steps"] if s["Name"] == step_name]
    assert step["Type"] == "Transform"
    request = {"TransformJobName": "pipelines-abc-score", **_concrete(step["Arguments"], parameters)}
    shape = operation_model("sagemaker", "CreateTransformJob").input_shape
    report = ParamValidator().validate(request, shape)
    assert not report.has_errors(), report.generate_report()
    assert _shape_problems(shape, request, "CreateTransformJob") == []
    return request


def test_the_shape_check_catches_a_request_sagemaker_refuses() -> None:
    step = {
        "Name": "score",
        "Type": "Transform",
        "Arguments": {
            "TransformInput": {
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://in/"}},
                "SplitType": "Lines",
            },
            "TransformOutput": {"S3OutputPath": "s3://out/"},
            "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
        },
    }
    definition = json.dumps({"Parameters": [], "Steps": [step]})
    with pytest.raises(AssertionError, match="ModelName"):
        assert_valid_create_transform_job(definition, "score")
    step["Arguments"]["ModelName"] = "m"
    with pytest.raises(AssertionError, match="'Lines' not in"):
        assert_valid_create_transform_job(json.dumps({"Parameters": [], "Steps": [step]}), "score")


# -- golden tests -------------------------------------------------------------------------------------------


def test_transform_with_every_option_matches_the_sdk(aws: Any) -> None:
    with (
        DAG("golden", start_date=START, schedule=None),
        SageMakerPipelineTaskGroup(
            "ml",
            pipeline_name=PIPELINE,
            role_arn=ROLE,
            default_bucket=BUCKET,
            parameters={"ModelName": "churn-model", "Payload": 10},
        ) as group,
    ):
        prep = SageMakerProcessingStepOperator(
            task_id="prep", image_uri=IMAGE, entrypoint=["python3", "-m", "prep"], outputs=["test"]
        )
        SageMakerTransformStepOperator(
            task_id="score",
            task_display_name="Score",
            description="batch scoring",
            model_name=group.parameter("ModelName"),
            data=prep.output_uri("test"),
            content_type="text/csv",
            split_type="Line",
            compression_type="Gzip",
            batch_strategy="MultiRecord",
            assemble_with="Line",
            accept="text/csv",
            join_source="Input",
            input_filter="$[1:]",
            output_filter="$[0,-1]",
            max_payload_in_mb=group.parameter("Payload"),
            max_concurrent_transforms=4,
            instance_type="ml.c5.xlarge",
            instance_count=2,
            environment={"MODE": "batch"},
            cache="P7D",
            retry_policies=[{"exception_types": ["SageMaker.CAPACITY_ERROR"], "max_attempts": 2}],
        )
    ours = compile_definition(build_pipeline_spec(group), aws)

    from sagemaker.core.transformer import Transformer
    from sagemaker.core.workflow.parameters import ParameterInteger, ParameterString
    from sagemaker.mlops.workflow.pipeline import Pipeline
    from sagemaker.mlops.workflow.retry import SageMakerJobExceptionTypeEnum, SageMakerJobStepRetryPolicy
    from sagemaker.mlops.workflow.steps import CacheConfig, TransformStep

    session = _sdk_session(aws)
    model_name = ParameterString("ModelName", default_value="churn-model")
    payload = ParameterInteger("Payload", default_value=10)
    prep_step = _prep_step(session)
    transformer = Transformer(
        model_name=model_name,
        instance_count=2,
        instance_type="ml.c5.xlarge",
        strategy="MultiRecord",
        assemble_with="Line",
        output_path=_default_output("score", "output"),
        accept="text/csv",
        max_concurrent_transforms=4,
        max_payload=payload,
        env={"MODE": "batch"},
        base_transform_job_name="score",
        sagemaker_session=session,
    )
    step_args = transformer.transform(
        data=prep_step.properties.ProcessingOutputConfig.Outputs["test"].S3Output.S3Uri,
        content_type="text/csv",
        compression_type="Gzip",
        split_type="Line",
        input_filter="$[1:]",
        output_filter="$[0,-1]",
        join_source="Input",
    )
    score = TransformStep(
        name="score",
        display_name="Score",
        description="batch scoring",
        step_args=step_args,
        depends_on=["prep"],
        cache_config=CacheConfig(enable_caching=True, expire_after="P7D"),
        retry_policies=[
            SageMakerJobStepRetryPolicy(
                exception_types=[SageMakerJobExceptionTypeEnum.CAPACITY_ERROR], max_attempts=2
            )
        ],
    )
    by_hand = Pipeline(
        name=PIPELINE, parameters=[model_name, payload], steps=[prep_step, score], sagemaker_session=session
    ).definition()
    assert json.loads(ours) == json.loads(by_hand)

    request = assert_valid_create_transform_job(ours, "score")
    assert request["ModelName"] == "churn-model"
    assert request["TransformResources"] == {"InstanceType": "ml.c5.xlarge", "InstanceCount": 2}
    assert request["MaxPayloadInMB"] == 10
    assert request["TransformOutput"]["S3OutputPath"] == f"s3://{BUCKET}/{PIPELINE}/exec-123/score/output"
    step = next(s for s in json.loads(ours)["Steps"] if s["Name"] == "score")
    assert step["CacheConfig"] == {"Enabled": True, "ExpireAfter": "P7D"}
    assert step["DisplayName"] == "Score"


def test_transform_defaults_references_and_downstream_output(aws: Any) -> None:
    with (
        DAG("golden", start_date=START, schedule=None),
        SageMakerPipelineTaskGroup(
            "ml", pipeline_name=PIPELINE, role_arn=ROLE, default_bucket=BUCKET
        ) as group,
    ):
        prep = SageMakerProcessingStepOperator(
            task_id="prep", image_uri=IMAGE, entrypoint=["python3", "-m", "prep"], outputs=["test"]
        )
        # A model name another step's properties give (a Model step's model_name is such a reference).
        score = SageMakerTransformStepOperator(
            task_id="score",
            model_name=StepPropertyRef("ml.prep", "ProcessingJobName"),
            data="s3://in/batch/",
            output_path="s3://out/predictions",
        )
        report = SageMakerProcessingStepOperator(
            task_id="report",
            image_uri=IMAGE,
            entrypoint=["python3", "-m", "report"],
            arguments=["--predictions", score.output_uri()],
        )
    assert score.task_id in report.upstream_task_ids and prep.task_id in score.upstream_task_ids
    ours = compile_definition(build_pipeline_spec(group), aws)

    from sagemaker.core.processing import Processor
    from sagemaker.core.transformer import Transformer
    from sagemaker.mlops.workflow.pipeline import Pipeline
    from sagemaker.mlops.workflow.steps import ProcessingStep, TransformStep

    session = _sdk_session(aws)
    prep_step = _prep_step(session)
    transformer = Transformer(
        model_name=prep_step.properties.ProcessingJobName,
        instance_count=1,
        instance_type="ml.m5.large",
        output_path="s3://out/predictions",
        base_transform_job_name="score",
        sagemaker_session=session,
    )
    score_step = TransformStep(
        name="score", step_args=transformer.transform(data="s3://in/batch/"), depends_on=["prep"]
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
        ).run(arguments=["--predictions", score_step.properties.TransformOutput.S3OutputPath]),
        depends_on=["score"],
    )
    by_hand = Pipeline(
        name=PIPELINE, steps=[prep_step, score_step, report_step], sagemaker_session=session
    ).definition()
    assert json.loads(ours) == json.loads(by_hand)
    request = assert_valid_create_transform_job(ours, "score")
    assert set(request) == {
        "TransformJobName",
        "ModelName",
        "TransformInput",
        "TransformOutput",
        "TransformResources",
    }
    report_args = next(s for s in json.loads(ours)["Steps"] if s["Name"] == "report")["Arguments"]
    assert report_args["AppSpecification"]["ContainerArguments"][1] == {
        "Get": "Steps.score.TransformOutput.S3OutputPath"
    }


def test_templated_fields_are_rendered_and_checked_at_launch(aws: Any) -> None:
    with (
        DAG("golden", start_date=START, schedule=None),
        SageMakerPipelineTaskGroup("ml", pipeline_name=PIPELINE, role_arn=ROLE, default_bucket=BUCKET),
    ):
        score = SageMakerTransformStepOperator(
            task_id="score",
            model_name="{{ params.model }}",
            data="s3://in/{{ ds }}/",
            split_type="{{ params.split }}",
        )
    score.render_template_fields({"params": {"model": "m-1", "split": "Line"}, "ds": "2026-01-01"})
    spec = score.to_step_spec(name="score", depends_on=())
    assert (spec.model_name, spec.data, spec.split_type) == ("m-1", "s3://in/2026-01-01/", "Line")
    score.split_type = "Lines"  # a rendered value SageMaker would refuse
    with pytest.raises(PipelineDefinitionError, match=r"'ml\.score' field 'split_type': 'Lines'"):
        score.to_step_spec(name="score", depends_on=())


# -- bad input: refused at parse time, naming the task and the field -----------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field", "words"),
    [
        ({"model_name": None}, "model_name", "a model is required"),
        ({"model_name": ""}, "model_name", "a model is required"),
        ({"model_name": 3}, "model_name", "expected a model name"),
        ({"data": ""}, "data", "S3 input"),
        ({"data": "/local/file.csv"}, "data", "not an S3 URI"),
        ({"split_type": "Lines"}, "split_type", "'Line'"),
        ({"batch_strategy": "Multi"}, "batch_strategy", "'MultiRecord'"),
        ({"assemble_with": "Newline"}, "assemble_with", "'Line'"),
        ({"join_source": "Output"}, "join_source", "'Input'"),
        ({"compression_type": "zip"}, "compression_type", "'Gzip'"),
        ({"data_type": "Prefix"}, "data_type", "'S3Prefix'"),
        ({"instance_count": 0}, "instance_count", "at least 1"),
        ({"instance_count": -2}, "instance_count", "at least 1"),
        ({"instance_count": True}, "instance_count", "expected an integer"),
        ({"instance_count": StepPropertyRef("x", "y")}, "instance_count", "literal number"),
        ({"max_payload_in_mb": 101}, "max_payload_in_mb", "at most 100"),
        ({"max_payload_in_mb": -1}, "max_payload_in_mb", "non-negative"),
        ({"max_payload_in_mb": 30, "max_concurrent_transforms": 4}, "max_concurrent_transforms", "100 MB"),
        ({"input_filter": "[1:]"}, "input_filter", "starting with '$'"),
        ({"output_filter": "$" + "[0]" * 30}, "output_filter", "at most 63"),
        ({"output_path": "out/predictions"}, "output_path", "not an S3 URI"),
        ({"environment": {f"V{i}": "x" for i in range(17)}}, "environment", "at most 16"),
        ({"environment": {"1BAD": "x"}}, "environment", "'1BAD'"),
        ({"cache": "30 days"}, "cache", "ISO 8601"),
    ],
)
def test_bad_transform_input(kwargs: dict[str, Any], field: str, words: str) -> None:
    arguments: dict[str, Any] = {"model_name": "m", "data": "s3://in/batch/", **kwargs}
    with DAG("bad", start_date=START, schedule=None), pytest.raises(PipelineDefinitionError) as error:
        with SageMakerPipelineTaskGroup("ml", role_arn=ROLE):
            SageMakerTransformStepOperator(task_id="score", **arguments)
    message = str(error.value)
    assert f"task 'ml.score' field '{field}'" in message, message
    assert words in message, message


def test_transform_without_a_model_argument_at_all() -> None:
    with DAG("bad", start_date=START, schedule=None), pytest.raises(TypeError, match="model_name"):
        with SageMakerPipelineTaskGroup("ml", role_arn=ROLE):
            SageMakerTransformStepOperator(task_id="score", data="s3://in/")  # type: ignore[call-arg]


def test_transform_has_one_output_and_checked_references() -> None:
    with DAG("bad", start_date=START, schedule=None), pytest.raises(PipelineDefinitionError) as error:
        with SageMakerPipelineTaskGroup("ml", role_arn=ROLE):
            score = SageMakerTransformStepOperator(task_id="score", model_name="m", data="s3://in/")
            score.output_uri("predictions")
    assert "'ml.score'" in str(error.value) and "'output'" in str(error.value)
    with DAG("bad2", start_date=START, schedule=None), pytest.raises(PipelineDefinitionError) as error:
        with SageMakerPipelineTaskGroup("ml", role_arn=ROLE, parameters={"Model": "m"}) as group:
            SageMakerTransformStepOperator(
                task_id="score", model_name=group.parameter("Modell"), data="s3://in/"
            )
    assert "'ml.score' field 'model_name'" in str(error.value) and "'Modell'" in str(error.value)


def test_templated_values_are_checked_once_rendered_not_at_parse_time() -> None:
    with DAG("ok", start_date=START, schedule=None):
        with SageMakerPipelineTaskGroup("ml", role_arn=ROLE):
            score = SageMakerTransformStepOperator(
                task_id="score",
                model_name="{{ params.model }}",
                data="{{ params.data }}",
                join_source="{{ params.join }}",
            )
    assert score.join_source == "{{ params.join }}"
