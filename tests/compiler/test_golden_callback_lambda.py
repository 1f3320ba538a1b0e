"""Callback and Lambda steps compile to what the SDK writes for the same steps by hand; the AWS requests they
lead to (CreateFunction, SendPipelineExecutionStep*) fit botocore's input shapes; a handler deploys reproducibly."""

from __future__ import annotations

import json
import shutil
from typing import TYPE_CHECKING, Any

import pendulum
import pytest
from airflow.sdk import DAG
from compiler_support import BUCKET, IMAGE, ROLE

from airflow_provider_smpipe import (
    SageMakerCallbackStepOperator,
    SageMakerFailStepOperator,
    SageMakerLambdaStepOperator,
    SageMakerPipelineTaskGroup,
    SageMakerProcessingStepOperator,
)
from airflow_provider_smpipe.compiler.from_airflow import build_pipeline_spec
from airflow_provider_smpipe.compiler.sdk import compile_definition
from airflow_provider_smpipe.compiler.steps.lambda_step import (
    TAG_PIPELINE,
    code_sha256,
    function_configuration,
    handler_zip,
)
from airflow_provider_smpipe.exceptions import PipelineDefinitionError
from airflow_provider_smpipe.local.validation import _check
from airflow_provider_smpipe.model.references import join
from airflow_provider_smpipe.model.steps.lambda_step import LambdaFunctionSpec

if TYPE_CHECKING:
    from pathlib import Path

START = pendulum.datetime(2026, 1, 1)
PIPELINE = "golden-cb"
QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/approvals"
LAMBDA_ROLE = "arn:aws:iam::123456789012:role/lambda-exec"
EXISTING = "arn:aws:lambda:us-east-1:123456789012:function:existing-fn"
HANDLER_CODE = "def lambda_handler(event, context):\n    return {'total': event['a'] + 1, 'label': 'ok'}\n"


def _input_problems(service: str, operation: str, request: dict[str, Any]) -> list[str]:
    import botocore.session

    model = botocore.session.get_session().get_service_model(service)
    errors: list[str] = []
    _check(model.operation_model(operation).input_shape, request, operation, errors)
    return errors


def _sdk_session(session: Any) -> Any:
    from sagemaker.core.workflow.pipeline_context import PipelineSession

    return PipelineSession(boto_session=session, default_bucket=BUCKET)


@pytest.fixture
def handler_dir(tmp_path: Path) -> Path:
    (tmp_path / "handler.py").write_text(HANDLER_CODE)
    return tmp_path


@pytest.fixture
def lambda_role(aws: Any) -> str:
    aws.client("iam").create_role(RoleName="lambda-exec", AssumeRolePolicyDocument="{}")
    return LAMBDA_ROLE


def test_callback_step_matches_the_sdk(aws: Any) -> None:
    with (
        DAG("golden", start_date=START, schedule=None),
        SageMakerPipelineTaskGroup(
            "ml", pipeline_name=PIPELINE, role_arn=ROLE, default_bucket=BUCKET, parameters={"Limit": 3}
        ) as group,
    ):
        prep = SageMakerProcessingStepOperator(
            task_id="prep",
            image_uri=IMAGE,
            entrypoint=["python3", "-m", "prep"],
            outputs={"train": "s3://o/t"},
        )
        approve = SageMakerCallbackStepOperator(
            task_id="approve",
            sqs_queue_url=QUEUE,
            inputs={"data": prep.output_uri("train"), "limit": group.parameter("Limit"), "team": "ml"},
            outputs={"approved": "Boolean", "approver": str, "score": float, "count": "Integer"},
            description="human approval",
        )
        SageMakerFailStepOperator(
            task_id="report", error_message=join("approved by ", approve.output_parameter("approver"), on="")
        )
    ours = compile_definition(build_pipeline_spec(group), aws)

    from sagemaker.core.processing import Processor
    from sagemaker.core.shapes import ProcessingOutput, ProcessingS3Output
    from sagemaker.core.workflow.functions import Join
    from sagemaker.core.workflow.parameters import ParameterInteger
    from sagemaker.mlops.workflow.callback_step import CallbackOutput, CallbackOutputTypeEnum, CallbackStep
    from sagemaker.mlops.workflow.fail_step import FailStep
    from sagemaker.mlops.workflow.pipeline import Pipeline
    from sagemaker.mlops.workflow.steps import ProcessingStep

    session = _sdk_session(aws)
    limit = ParameterInteger("Limit", default_value=3)
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
                        s3_uri="s3://o/t",
                        local_path="/opt/ml/processing/output/train",
                        s3_upload_mode="EndOfJob",
                    ),
                )
            ]
        ),
    )
    callback_step = CallbackStep(
        name="approve",
        sqs_queue_url=QUEUE,
        inputs={
            "data": prep_step.properties.ProcessingOutputConfig.Outputs["train"].S3Output.S3Uri,
            "limit": limit,
            "team": "ml",
        },
        outputs=[
            CallbackOutput(output_name="approved", output_type=CallbackOutputTypeEnum.Boolean),
            CallbackOutput(output_name="approver", output_type=CallbackOutputTypeEnum.String),
            CallbackOutput(output_name="score", output_type=CallbackOutputTypeEnum.Float),
            CallbackOutput(output_name="count", output_type=CallbackOutputTypeEnum.Integer),
        ],
        description="human approval",
        depends_on=["prep"],
    )
    fail_step = FailStep(
        name="report",
        error_message=Join(on="", values=["approved by ", callback_step.properties.Outputs["approver"]]),
        depends_on=["approve"],
    )
    by_hand = Pipeline(
        name=PIPELINE,
        parameters=[limit],
        steps=[prep_step, callback_step, fail_step],
        sagemaker_session=session,
    ).definition()
    assert json.loads(ours) == json.loads(by_hand)
    step = next(s for s in json.loads(ours)["Steps"] if s["Name"] == "approve")
    assert step["OutputParameters"][0] == {"OutputName": "approved", "OutputType": "Boolean"}
    assert json.loads(ours)["Steps"][2]["Arguments"]["ErrorMessage"]["Std:Join"]["Values"][1] == {
        "Get": "Steps.approve.OutputParameters['approver']"
    }


def test_lambda_step_with_an_existing_function_matches_the_sdk(aws: Any) -> None:
    with (
        DAG("golden", start_date=START, schedule=None),
        SageMakerPipelineTaskGroup(
            "ml", pipeline_name=PIPELINE, role_arn=ROLE, default_bucket=BUCKET
        ) as group,
    ):
        split = SageMakerLambdaStepOperator(
            task_id="split",
            function_arn=EXISTING,
            inputs={"bucket": "data", "ratio": 0.2, "shuffle": True},
            outputs=["train_file", "test_file"],
            task_display_name="Split the data",
        )
        SageMakerLambdaStepOperator(
            task_id="count",
            function_arn=EXISTING + ":7",
            inputs={"file": split.output_parameter("train_file")},
            outputs={"rows": "Integer"},
        )
    ours = compile_definition(build_pipeline_spec(group), aws)

    from sagemaker.core.lambda_helper import Lambda
    from sagemaker.mlops.workflow.lambda_step import LambdaOutput, LambdaOutputTypeEnum, LambdaStep
    from sagemaker.mlops.workflow.pipeline import Pipeline

    session = _sdk_session(aws)
    split_step = LambdaStep(
        name="split",
        lambda_func=Lambda(function_arn=EXISTING, session=session),
        inputs={"bucket": "data", "ratio": 0.2, "shuffle": True},
        outputs=[LambdaOutput(output_name="train_file"), LambdaOutput(output_name="test_file")],
        display_name="Split the data",
    )
    count_step = LambdaStep(
        name="count",
        lambda_func=Lambda(function_arn=EXISTING + ":7", session=session),
        inputs={"file": split_step.properties.Outputs["train_file"]},
        outputs=[LambdaOutput(output_name="rows", output_type=LambdaOutputTypeEnum.Integer)],
        depends_on=["split"],
    )
    with pytest.warns(UserWarning, match="won't be updated"):  # the SDK warns; our builder does not
        by_hand = Pipeline(
            name=PIPELINE, steps=[split_step, count_step], sagemaker_session=session
        ).definition()
    assert json.loads(ours) == json.loads(by_hand)


def _handler_group(handler: Path, role: str, **lambda_kwargs: Any) -> SageMakerPipelineTaskGroup:
    with (
        DAG("golden", start_date=START, schedule=None),
        SageMakerPipelineTaskGroup(
            "ml", pipeline_name=PIPELINE, role_arn=ROLE, default_bucket=BUCKET, parameters={"A": 4}
        ) as group,
    ):
        SageMakerLambdaStepOperator(
            task_id="add",
            handler_file=str(handler),
            handler="handler.lambda_handler",
            function_name="smpipe-add",
            execution_role_arn=role,
            inputs={"a": group.parameter("A")},
            outputs={"total": "Integer", "label": "String"},
            **lambda_kwargs,
        )
    return group


def test_lambda_step_from_a_handler_deploys_reproducibly(
    aws: Any, handler_dir: Path, lambda_role: str
) -> None:
    client = aws.client("lambda")
    handler = handler_dir / "handler.py"
    group = _handler_group(handler, lambda_role, timeout=30, memory_size=256, environment={"MODE": "x"})
    first = compile_definition(build_pipeline_spec(group), aws)
    created = client.get_function(FunctionName="smpipe-add")
    config = created["Configuration"]
    assert config["CodeSha256"] == code_sha256(handler_zip(str(handler)))
    assert (config["Handler"], config["Runtime"], config["Timeout"], config["MemorySize"]) == (
        "handler.lambda_handler",
        "python3.12",
        30,
        256,
    )
    assert config["Role"] == lambda_role
    assert config["Environment"]["Variables"] == {"MODE": "x"}
    assert created["Tags"] == {TAG_PIPELINE: PIPELINE}

    calls: list[str] = []
    aws.events.register("before-call.lambda", lambda model, **_: calls.append(model.name))

    # Unchanged handler: same definition, and the function is only looked at.
    handler.touch()  # a new mtime must not matter (the SDK's zip would change)
    second = compile_definition(build_pipeline_spec(group), aws)
    assert second == first
    assert calls == ["GetFunction"]

    # Changed handler: the code is updated, the definition (which names the function by ARN) stays the same.
    calls.clear()
    handler.write_text(HANDLER_CODE.replace("'ok'", "'changed'"))
    third = compile_definition(build_pipeline_spec(group), aws)
    assert third == first
    assert "UpdateFunctionCode" in calls and "UpdateFunctionConfiguration" not in calls
    updated = client.get_function(FunctionName="smpipe-add")["Configuration"]
    assert updated["CodeSha256"] == code_sha256(handler_zip(str(handler))) != config["CodeSha256"]

    step = json.loads(first)["Steps"][0]
    assert step["FunctionArn"] == "arn:aws:lambda:us-east-1:123456789012:function:smpipe-add"
    assert step["Arguments"] == {"a": {"Get": "Parameters.A"}}
    assert step["OutputParameters"] == [
        {"OutputName": "total", "OutputType": "Integer"},
        {"OutputName": "label", "OutputType": "String"},
    ]

    # The SDK's own LambdaStep for the same script renders the same definition.
    from sagemaker.core.lambda_helper import Lambda
    from sagemaker.core.workflow.parameters import ParameterInteger
    from sagemaker.mlops.workflow.lambda_step import LambdaOutput, LambdaOutputTypeEnum, LambdaStep
    from sagemaker.mlops.workflow.pipeline import Pipeline

    session = _sdk_session(aws)
    a = ParameterInteger("A", default_value=4)
    by_hand = Pipeline(
        name=PIPELINE,
        parameters=[a],
        steps=[
            LambdaStep(
                name="add",
                lambda_func=Lambda(
                    function_name="smpipe-add",
                    execution_role_arn=lambda_role,
                    script=str(handler),
                    handler="handler.lambda_handler",
                    session=session,
                ),
                inputs={"a": a},
                outputs=[
                    LambdaOutput(output_name="total", output_type=LambdaOutputTypeEnum.Integer),
                    LambdaOutput(output_name="label", output_type=LambdaOutputTypeEnum.String),
                ],
            )
        ],
        sagemaker_session=session,
    ).definition()
    assert json.loads(first) == json.loads(by_hand)


def test_a_directory_handler_is_packaged_whole_and_reproducibly(tmp_path: Path) -> None:
    source = tmp_path / "src"
    (source / "pkg").mkdir(parents=True)
    (source / "pkg" / "__init__.py").write_text("")
    (source / "pkg" / "app.py").write_text(HANDLER_CODE)
    (source / "pkg" / "__pycache__").mkdir()
    (source / "pkg" / "__pycache__" / "app.cpython-311.pyc").write_bytes(b"junk")
    package = handler_zip(str(source))
    copy = tmp_path / "copy"
    shutil.copytree(source, copy)
    assert handler_zip(str(copy)) == package
    import io
    import zipfile

    with zipfile.ZipFile(io.BytesIO(package)) as archive:
        assert archive.namelist() == ["pkg/__init__.py", "pkg/app.py"]
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def test_a_function_not_created_by_this_provider_is_never_overwritten(
    aws: Any, handler_dir: Path, lambda_role: str
) -> None:
    client = aws.client("lambda")
    client.create_function(
        FunctionName="smpipe-add",
        Role=lambda_role,
        Runtime="python3.12",
        Handler="other.handler",
        Code={"ZipFile": handler_zip(str(handler_dir / "handler.py"))},
    )
    group = _handler_group(handler_dir / "handler.py", lambda_role)
    with pytest.raises(PipelineDefinitionError, match=r"'ml.add' field 'handler_file'.*not overwritten"):
        compile_definition(build_pipeline_spec(group), aws)
    assert client.get_function(FunctionName="smpipe-add")["Configuration"]["Handler"] == "other.handler"


def test_a_missing_handler_file_is_refused_at_parse_time_naming_the_task(tmp_path: Path) -> None:
    with pytest.raises(PipelineDefinitionError, match=r"'ml.add' field 'handler_file'.*does not exist"):
        _handler_group(tmp_path / "handler.py", LAMBDA_ROLE)


def test_a_handler_file_removed_after_parsing_fails_the_compile_naming_the_task(
    aws: Any, tmp_path: Path
) -> None:
    handler = tmp_path / "handler.py"
    handler.write_text("def lambda_handler(event, context):\n    return {}\n")
    group = _handler_group(handler, LAMBDA_ROLE)
    handler.unlink()
    with pytest.raises(PipelineDefinitionError, match=r"'ml.add' field 'handler_file'.*does not exist"):
        compile_definition(build_pipeline_spec(group), aws)
    assert aws.client("lambda").list_functions()["Functions"] == []


def test_requests_fit_botocore_input_shapes() -> None:
    from airflow_provider_smpipe.hooks.callback import callback_request_token, failure_reason_text

    token = "AbC123xYz9"
    success = {
        "CallbackToken": token,
        "ClientRequestToken": callback_request_token(token, "SendPipelineExecutionStepSuccess"),
        "OutputParameters": [{"Name": "approved", "Value": "true"}],
    }
    failure = {
        "CallbackToken": token,
        "ClientRequestToken": callback_request_token(token, "SendPipelineExecutionStepFailure"),
        "FailureReason": failure_reason_text("x" * 1000),
    }
    assert _input_problems("sagemaker", "SendPipelineExecutionStepSuccess", success) == []
    assert _input_problems("sagemaker", "SendPipelineExecutionStepFailure", failure) == []
    assert _input_problems(
        "sagemaker", "SendPipelineExecutionStepFailure", {**failure, "FailureReason": "x" * 300}
    )
    function = LambdaFunctionSpec(
        name="fn",
        code_path="/unused",
        handler="handler.lambda_handler",
        execution_role_arn=LAMBDA_ROLE,
        timeout=900,
        memory_size=10240,
        environment=(("A", "1"),),
    )
    create = {"FunctionName": "fn", "Code": {"ZipFile": b"zip"}, "Tags": {TAG_PIPELINE: "p"}}
    create.update(function_configuration(function))
    assert _input_problems("lambda", "CreateFunction", create) == []
    update = {"FunctionName": "fn", **function_configuration(function)}
    assert _input_problems("lambda", "UpdateFunctionConfiguration", update) == []


RENDER_DAG = """
import pendulum
from airflow.sdk import DAG
from airflow_provider_smpipe import (
    SageMakerCallbackStepOperator, SageMakerLambdaStepOperator, SageMakerPipelineTaskGroup,
)

with DAG("render_cb", start_date=pendulum.datetime(2026, 1, 1), schedule=None):
    with SageMakerPipelineTaskGroup(
        "ml", role_arn="arn:aws:iam::111122223333:role/pipelines", region_name="eu-west-1"
    ):
        approve = SageMakerCallbackStepOperator(
            task_id="approve", sqs_queue_url="{{ var.value.queue }}", outputs={"ok": "Boolean"}
        )
        SageMakerLambdaStepOperator(
            task_id="add",
            handler_file="handler.py",
            handler="handler.lambda_handler",
            function_name="smpipe-add",
            execution_role_arn="arn:aws:iam::111122223333:role/service/lambda-exec",
            inputs={"ok": approve.output_parameter("ok")},
        )
"""


def test_render_deploys_a_handler_into_its_mock_of_the_groups_account(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    (tmp_path / "dag.py").write_text(RENDER_DAG)
    (tmp_path / "handler.py").write_text(HANDLER_CODE)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MOTO_"))}
    env["AIRFLOW_HOME"] = str(tmp_path / "home")
    result = subprocess.run(
        [sys.executable, "-m", "airflow_provider_smpipe", "render", str(tmp_path / "dag.py"), "ml"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    approve, add = json.loads(result.stdout)["Steps"]
    assert approve["SqsQueueUrl"] == "{{ var.value.queue }}"  # templates are compiled as written
    assert add["FunctionArn"] == "arn:aws:lambda:eu-west-1:111122223333:function:smpipe-add"
