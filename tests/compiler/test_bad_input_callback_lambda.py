"""Bad Callback and Lambda step arguments fail at DAG parse time, naming the task and the field."""

from __future__ import annotations

import subprocess
import sys
from typing import TYPE_CHECKING, Any

import pendulum
import pytest
from airflow.sdk import DAG
from compiler_support import ROLE

from airflow_provider_smpipe import (
    SageMakerCallbackStepOperator,
    SageMakerLambdaStepOperator,
    SageMakerPipelineTaskGroup,
)
from airflow_provider_smpipe.exceptions import PipelineDefinitionError

if TYPE_CHECKING:
    from pathlib import Path

START = pendulum.datetime(2026, 1, 1)
QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/approvals"
FUNCTION = "arn:aws:lambda:us-east-1:123456789012:function:split"
LAMBDA_ROLE = "arn:aws:iam::123456789012:role/lambda-exec"


def _refused(make: Any) -> str:
    with DAG("bad", start_date=START, schedule=None), pytest.raises(PipelineDefinitionError) as error:
        with SageMakerPipelineTaskGroup("ml", role_arn=ROLE):
            make()
    return str(error.value)


@pytest.mark.parametrize(
    "outputs",
    [
        {"has space": "String"},
        {"quote'd": "String"},
        {"": "String"},
        {"x" * 257: "String"},
        {"a.b": "String"},
        {f"o{i}": "String" for i in range(51)},
        "approved",
    ],
    ids=["space", "quote", "empty", "too-long", "dot", "more-than-50", "a-string"],
)
def test_invalid_callback_output_names(outputs: Any) -> None:
    message = _refused(
        lambda: SageMakerCallbackStepOperator(task_id="approve", sqs_queue_url=QUEUE, outputs=outputs)
    )
    assert "task 'ml.approve' field 'outputs'" in message


@pytest.mark.parametrize("kind", ["Str", "Double", list, dict, None, 3])
def test_bad_output_types(kind: Any) -> None:
    for make in (
        lambda: SageMakerCallbackStepOperator(task_id="step", sqs_queue_url=QUEUE, outputs={"x": kind}),
        lambda: SageMakerLambdaStepOperator(task_id="step", function_arn=FUNCTION, outputs={"x": kind}),
    ):
        message = _refused(make)
        assert "task 'ml.step' field 'outputs'" in message and "'x'" in message


def test_reference_to_an_undeclared_output() -> None:
    def make() -> None:
        approve = SageMakerCallbackStepOperator(task_id="approve", sqs_queue_url=QUEUE, outputs={"ok": bool})
        approve.output_parameter("approver")

    message = _refused(make)
    assert "task 'ml.approve' field 'outputs'" in message and "'approver'" in message and "['ok']" in message

    def make_lambda() -> None:
        split = SageMakerLambdaStepOperator(task_id="split", function_arn=FUNCTION, outputs=["train"])
        split.output_parameter("test")

    assert "task 'ml.split' field 'outputs'" in _refused(make_lambda)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"sqs_queue_url": ""}, "sqs_queue_url"),
        ({"sqs_queue_url": "approvals"}, "sqs_queue_url"),
        ({"sqs_queue_url": QUEUE, "callback": "not callable"}, "callback"),
        ({"sqs_queue_url": QUEUE, "inputs": ["a"]}, "inputs"),
        ({"sqs_queue_url": QUEUE, "message_visibility_timeout": 50000}, "message_visibility_timeout"),
    ],
)
def test_bad_callback_arguments(kwargs: dict[str, Any], field: str) -> None:
    message = _refused(lambda: SageMakerCallbackStepOperator(task_id="approve", **kwargs))
    assert "task 'ml.approve'" in message and field in message


def test_callback_step_needs_a_queue() -> None:
    message = _refused(lambda: SageMakerCallbackStepOperator(task_id="approve", outputs=["ok"]))
    assert "task 'ml.approve' field 'sqs_queue_url'" in message and "SQS queue" in message


HANDLER = {
    "handler_file": "handler.py",
    "handler": "handler.lambda_handler",
    "function_name": "smpipe-add",
    "execution_role_arn": LAMBDA_ROLE,
}


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({}, "'function_arn' (an existing Lambda function) or 'handler_file'"),
        ({"function_arn": FUNCTION, **HANDLER}, "exactly one of 'function_arn'"),
        ({"function_arn": "split"}, "field 'function_arn'"),
        ({"function_arn": "arn:aws:sqs:us-east-1:123456789012:q"}, "field 'function_arn'"),
        ({"function_arn": FUNCTION, "function_name": "x"}, "field 'function_name'"),
        ({**HANDLER, "handler": "other.lambda_handler"}, "field 'handler'"),
        ({**HANDLER, "handler": "lambda_handler"}, "field 'handler'"),
        ({**HANDLER, "function_name": None}, "field 'function_name'"),
        ({**HANDLER, "function_name": "has space"}, "field 'function_name'"),
        ({**HANDLER, "execution_role_arn": None}, "field 'execution_role_arn'"),
        ({**HANDLER, "execution_role_arn": "lambda-exec"}, "field 'execution_role_arn'"),
        ({**HANDLER, "timeout": 0}, "field 'timeout'"),
        ({**HANDLER, "timeout": 901}, "field 'timeout'"),
        ({**HANDLER, "memory_size": 64}, "field 'memory_size'"),
        ({**HANDLER, "runtime": "nodejs20.x"}, "field 'runtime'"),
        ({**HANDLER, "environment": {"A": 1}}, "field 'environment'"),
        ({"function_arn": FUNCTION, "inputs": {"nested": {"a": 1}}}, "field \"inputs['nested']\""),
        ({"function_arn": FUNCTION, "inputs": {"nested": [1]}}, "field \"inputs['nested']\""),
    ],
)
def test_bad_lambda_arguments(kwargs: dict[str, Any], field: str) -> None:
    message = _refused(lambda: SageMakerLambdaStepOperator(task_id="add", **kwargs))
    assert "task 'ml.add'" in message and field in message, message


def test_templated_values_are_checked_once_rendered(tmp_path: Path) -> None:
    with (
        DAG("bad", start_date=START, schedule=None),
        SageMakerPipelineTaskGroup("ml", role_arn=ROLE),
    ):
        approve = SageMakerCallbackStepOperator(task_id="approve", sqs_queue_url="{{ var.value.queue }}")
        split = SageMakerLambdaStepOperator(task_id="split", function_arn="{{ var.value.fn }}")
    approve.sqs_queue_url = "approvals"  # what the template rendered to
    with pytest.raises(PipelineDefinitionError, match=r"'ml\.approve' field 'sqs_queue_url'"):
        approve.to_step_spec(name="approve", depends_on=())
    split.function_arn = "split"
    with pytest.raises(PipelineDefinitionError, match=r"'ml\.split' field 'function_arn'"):
        split.to_step_spec(name="split", depends_on=())


PARSE_PROBE_DAG = """
import pendulum
from airflow.sdk import DAG
from airflow_provider_smpipe import (
    SageMakerCallbackStepOperator, SageMakerLambdaStepOperator, SageMakerPipelineTaskGroup,
)

def approve(inputs, token, context):
    return {"approved": True}

with DAG("probe", start_date=pendulum.datetime(2026, 1, 1), schedule=None):
    with SageMakerPipelineTaskGroup("ml", role_arn="arn:aws:iam::123456789012:role/r"):
        cb = SageMakerCallbackStepOperator(
            task_id="approve",
            sqs_queue_url="https://sqs.us-east-1.amazonaws.com/123456789012/q",
            outputs={"approved": "Boolean"},
            callback=approve,
        )
        SageMakerLambdaStepOperator(
            task_id="add",
            handler_file="handler.py",
            handler="handler.lambda_handler",
            function_name="smpipe-add",
            execution_role_arn="arn:aws:iam::123456789012:role/lambda",
            inputs={"approved": cb.output_parameter("approved")},
        )
"""


def test_parsing_a_dag_with_these_steps_imports_no_sdk_and_creates_no_client(tmp_path: Path) -> None:
    from test_parse_time import PROBE

    dag_file = tmp_path / "probe_dag.py"
    dag_file.write_text(PARSE_PROBE_DAG)
    (tmp_path / "handler.py").write_text("def lambda_handler(event, context):\n    return {}\n")
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(dag_file)],
        capture_output=True,
        text=True,
        env={"AIRFLOW_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "HEAVY []" in result.stdout and "CLIENTS []" in result.stdout, result.stdout
