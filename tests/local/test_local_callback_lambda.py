"""Callback and Lambda steps on the local backend: SQS messages, answers through the SageMaker API, stops,
Lambda handlers run with the local Python, and outputs used by later steps."""

from __future__ import annotations

import contextlib
import io
import json
import os
import time
import uuid
import zipfile
from typing import TYPE_CHECKING, Any

import pytest
from botocore.exceptions import ClientError
from smpipe_local_helpers import BUCKET, ROLE, create_pipeline, definition, steps_of, unique, wait_for

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from airflow_provider_smpipe.local.server import LocalBackend

LAMBDA_ROLE = "arn:aws:iam::123456789012:role/smpipe-lambda"


@pytest.fixture
def sqs(backend: LocalBackend) -> Any:
    return backend.client("sqs")


@pytest.fixture
def queue(sqs: Any) -> str:
    return str(sqs.create_queue(QueueName=unique("callbacks"))["QueueUrl"])


@pytest.fixture(scope="module")
def lambda_role(backend: LocalBackend) -> str:
    iam = backend.client("iam")
    with contextlib.suppress(iam.exceptions.EntityAlreadyExistsException):
        iam.create_role(RoleName="smpipe-lambda", AssumeRolePolicyDocument="{}")
    return LAMBDA_ROLE


def callback_step(
    name: str, queue: str, *, arguments: dict[str, Any], outputs: dict[str, str]
) -> dict[str, Any]:
    return {
        "Name": name,
        "Type": "Callback",
        "Arguments": arguments,
        "SqsQueueUrl": queue,
        "OutputParameters": [{"OutputName": k, "OutputType": v} for k, v in outputs.items()],
    }


def fail_step(name: str, message: Any, depends_on: list[str]) -> dict[str, Any]:
    return {"Name": name, "Type": "Fail", "Arguments": {"ErrorMessage": message}, "DependsOn": depends_on}


def output(step: str, name: str) -> dict[str, str]:
    return {"Get": f"Steps.{step}.OutputParameters['{name}']"}


def wait_for_step(sm: Any, arn: str, name: str, statuses: set[str], timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        step = steps_of(sm, arn).get(name)
        if step is not None and step["StepStatus"] in statuses:
            return step
        if time.monotonic() > deadline:
            raise AssertionError(f"step {name} is {step and step['StepStatus']} after {timeout}s")
        time.sleep(0.1)


def receive(sqs: Any, queue: str, count: int = 1) -> list[dict[str, Any]]:
    bodies: list[dict[str, Any]] = []
    deadline = time.monotonic() + 20
    while len(bodies) < count and time.monotonic() < deadline:
        response = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        for message in response.get("Messages", []):
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
    return bodies


def _error_code(error: pytest.ExceptionInfo[ClientError]) -> str:
    return str(error.value.response["Error"]["Code"])


# ------------------------------------------------------------------------------------------------ callback
def test_callback_step_answered_with_outputs_that_later_steps_use(sm: Any, sqs: Any, queue: str) -> None:
    check = {
        "Name": "check",
        "Type": "Condition",
        "DependsOn": ["approve"],
        "Arguments": {
            "Conditions": [
                {"Type": "GreaterThanOrEqualTo", "LeftValue": output("approve", "count"), "RightValue": 10},
                {"Type": "Equals", "LeftValue": output("approve", "approved"), "RightValue": True},
            ],
            "IfSteps": [
                fail_step(
                    "report",
                    {
                        "Std:Join": {
                            "On": " ",
                            "Values": [
                                "approved by",
                                output("approve", "approver"),
                                output("approve", "score"),
                            ],
                        }
                    },
                    [],
                )
            ],
            "ElseSteps": [],
        },
    }
    body = definition(
        callback_step(
            "approve",
            queue,
            arguments={"limit": {"Get": "Parameters.Limit"}, "team": "ml"},
            outputs={"approved": "Boolean", "approver": "String", "count": "Integer", "score": "Float"},
        ),
        check,
        parameters=[{"Name": "Limit", "Type": "Integer", "DefaultValue": 3}],
    )
    name = create_pipeline(sm, body)
    arn = sm.start_pipeline_execution(
        PipelineName=name, PipelineParameters=[{"Name": "Limit", "Value": "8"}]
    )["PipelineExecutionArn"]

    (message,) = receive(sqs, queue)
    token = message["token"]
    assert message == {
        "token": token,
        "pipelineExecutionArn": arn,
        "arguments": {"limit": 8, "team": "ml"},
        "status": "Executing",
    }
    assert len(token) == 10 and token.isalnum()
    waiting = wait_for_step(sm, arn, "approve", {"Executing"})
    assert waiting["Metadata"] == {
        "Callback": {"CallbackToken": token, "SqsQueueUrl": queue, "OutputParameters": []}
    }
    assert sm.describe_pipeline_execution(PipelineExecutionArn=arn)["PipelineExecutionStatus"] == "Executing"

    # Answers SageMaker would refuse: an unknown token, an undeclared output, a value not of its type.
    with pytest.raises(ClientError) as unknown:
        sm.send_pipeline_execution_step_success(CallbackToken="NoSuchTok1")
    assert _error_code(unknown) == "ValidationException"
    with pytest.raises(ClientError, match="not declared"):
        sm.send_pipeline_execution_step_success(
            CallbackToken=token, OutputParameters=[{"Name": "colour", "Value": "red"}]
        )
    with pytest.raises(ClientError, match="declared Integer"):
        sm.send_pipeline_execution_step_success(
            CallbackToken=token, OutputParameters=[{"Name": "count", "Value": "many"}]
        )

    outputs = [
        {"Name": "approved", "Value": "true"},
        {"Name": "approver", "Value": "ann"},
        {"Name": "count", "Value": "12"},
        {"Name": "score", "Value": "0.5"},
    ]
    request_token = uuid.uuid4().hex
    answered = sm.send_pipeline_execution_step_success(
        CallbackToken=token, OutputParameters=outputs, ClientRequestToken=request_token
    )
    assert answered["PipelineExecutionArn"] == arn
    # The same request again (a client retry) gets the same answer; any other answer is refused.
    again = sm.send_pipeline_execution_step_success(
        CallbackToken=token, OutputParameters=outputs, ClientRequestToken=request_token
    )
    assert again["PipelineExecutionArn"] == arn
    with pytest.raises(ClientError, match="already been used") as used:
        sm.send_pipeline_execution_step_failure(CallbackToken=token, FailureReason="late")
    assert _error_code(used) == "ValidationException"

    desc = wait_for(sm, arn)
    steps = steps_of(sm, arn)
    assert steps["approve"]["StepStatus"] == "Succeeded"
    assert steps["approve"]["Metadata"]["Callback"]["OutputParameters"] == outputs
    assert steps["check"]["Metadata"] == {"Condition": {"Outcome": "True"}}  # typed: 12 >= 10, true == True
    assert desc["FailureReason"] == steps["report"]["FailureReason"] == "approved by ann 0.5"


def test_callback_step_answered_with_failure(sm: Any, sqs: Any, queue: str) -> None:
    name = create_pipeline(
        sm,
        definition(
            callback_step("approve", queue, arguments={}, outputs={}),
            fail_step("after", "never", ["approve"]),
        ),
    )
    arn = sm.start_pipeline_execution(PipelineName=name)["PipelineExecutionArn"]
    (message,) = receive(sqs, queue)
    sm.send_pipeline_execution_step_failure(CallbackToken=message["token"], FailureReason="ticket rejected")
    desc = wait_for(sm, arn)
    steps = steps_of(sm, arn)
    assert desc["PipelineExecutionStatus"] == "Failed"
    assert steps["approve"]["StepStatus"] == "Failed"
    assert steps["approve"]["FailureReason"] == "ticket rejected"
    assert "after" not in steps


def test_a_stop_waits_for_the_callback_answer(sm: Any, sqs: Any, queue: str) -> None:
    name = create_pipeline(sm, definition(callback_step("approve", queue, arguments={"n": 1}, outputs={})))
    arn = sm.start_pipeline_execution(PipelineName=name)["PipelineExecutionArn"]
    (first,) = receive(sqs, queue)
    wait_for_step(sm, arn, "approve", {"Executing"})
    sm.stop_pipeline_execution(PipelineExecutionArn=arn)

    # SageMaker tells the consumer and keeps the execution Stopping until the step is answered.
    (stopping,) = receive(sqs, queue)
    assert stopping == {**first, "status": "Stopping"}
    time.sleep(1.5)
    assert sm.describe_pipeline_execution(PipelineExecutionArn=arn)["PipelineExecutionStatus"] == "Stopping"
    assert steps_of(sm, arn)["approve"]["StepStatus"] == "Stopping"

    sm.send_pipeline_execution_step_failure(
        CallbackToken=first["token"], FailureReason="stopped by the consumer"
    )
    assert wait_for(sm, arn)["PipelineExecutionStatus"] == "Stopped"
    assert steps_of(sm, arn)["approve"]["StepStatus"] == "Stopped"


def test_a_missing_queue_fails_the_step_clearly(sm: Any, queue: str) -> None:
    missing = queue.rsplit("/", 1)[0] + "/no-such-queue"
    name = create_pipeline(sm, definition(callback_step("approve", missing, arguments={}, outputs={})))
    arn = sm.start_pipeline_execution(PipelineName=name)["PipelineExecutionArn"]
    assert wait_for(sm, arn)["PipelineExecutionStatus"] == "Failed"
    reason = steps_of(sm, arn)["approve"]["FailureReason"]
    assert "no-such-queue" in reason and "does not exist" in reason


# -------------------------------------------------------------- the operator answering through its hooks
@pytest.fixture
def local_connection(backend: LocalBackend, monkeypatch: pytest.MonkeyPatch) -> str:
    conn_id = "smpipe_local_callbacks"
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{conn_id.upper()}",
        json.dumps(
            {
                "conn_type": "aws",
                "login": "testing",
                "password": "testing",
                "extra": {"endpoint_url": backend.endpoint_url, "region_name": "us-east-1"},
            }
        ),
    )
    return conn_id


def _compile(group: Any, backend: LocalBackend) -> str:
    import boto3

    from airflow_provider_smpipe.compiler.from_airflow import build_pipeline_spec
    from airflow_provider_smpipe.compiler.sdk import compile_definition

    session = boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    )
    return compile_definition(build_pipeline_spec(group), session, endpoint_url=backend.endpoint_url)


def test_the_operator_answers_through_its_hooks_and_a_later_step_uses_the_outputs(
    backend: LocalBackend, sm: Any, queue: str, local_connection: str
) -> None:
    import pendulum
    from airflow.sdk import DAG
    from airflow.sdk.exceptions import TaskDeferred

    from airflow_provider_smpipe import (
        SageMakerCallbackStepOperator,
        SageMakerFailStepOperator,
        SageMakerPipelineTaskGroup,
    )
    from airflow_provider_smpipe.model.references import join

    seen: list[tuple[dict[str, Any], str]] = []

    def approve(inputs: dict[str, Any], token: str, context: Any) -> dict[str, Any]:
        seen.append((inputs, token))
        return {"approved": True, "approver": f"bot-{inputs['limit']}"}

    pipeline = unique("cb-op")
    with (
        DAG("cb_op", start_date=pendulum.datetime(2026, 1, 1), schedule=None),
        SageMakerPipelineTaskGroup(
            "ml",
            pipeline_name=pipeline,
            role_arn=ROLE,
            default_bucket=BUCKET,
            parameters={"Limit": 4},
            aws_conn_id=local_connection,
            region_name="us-east-1",
        ) as group,
    ):
        operator = SageMakerCallbackStepOperator(
            task_id="approve",
            sqs_queue_url=queue,
            inputs={"limit": group.parameter("Limit")},
            outputs={"approved": "Boolean", "approver": "String"},
            callback=approve,
            message_wait_seconds=20,
        )
        SageMakerFailStepOperator(
            task_id="report",
            error_message=join(
                operator.output_parameter("approver"), operator.output_parameter("approved"), on=":"
            ),
        )
    create_pipeline(sm, _compile(group, backend), name=pipeline)
    arn = sm.start_pipeline_execution(PipelineName=pipeline)["PipelineExecutionArn"]
    step = wait_for_step(sm, arn, "approve", {"Executing"})
    token = step["Metadata"]["Callback"]["CallbackToken"]
    event = {
        "status": "handover",
        "step_name": "approve",
        "execution_arn": arn,
        "handover": {"callback_token": token, "sqs_queue_url": queue, "step_status": "Executing"},
    }

    class TI:
        dag_id, run_id, task_id, try_number = "cb_op", "run1", "ml.approve", 1

    with pytest.raises(TaskDeferred):
        operator.execute_complete({"ti": TI()}, event)  # type: ignore[arg-type]
    assert seen == [({"limit": 4}, token)]
    desc = wait_for(sm, arn)
    assert desc["FailureReason"] == "bot-4:true"
    assert steps_of(sm, arn)["approve"]["Metadata"]["Callback"]["OutputParameters"] == [
        {"Name": "approved", "Value": "true"},
        {"Name": "approver", "Value": "bot-4"},
    ]
    # The message was consumed: nothing of this execution is left in the queue.
    assert receive(backend.client("sqs"), queue, count=1) == []


# ------------------------------------------------------------------------------------------------- lambda
HANDLER = """
import os

def lambda_handler(event, context):
    print("adding", event["a"], "and", event["b"], "in", context.function_name)
    return {"total": event["a"] + event["b"], "label": os.environ["LABEL"], "extra": [1, 2]}
"""


@pytest.fixture
def handler_file(tmp_path: Path) -> Path:
    path = tmp_path / "adder.py"
    path.write_text(HANDLER)
    return path


def test_lambda_step_from_a_handler_file_whose_outputs_a_later_step_uses(
    backend: LocalBackend, sm: Any, handler_file: Path, lambda_role: str
) -> None:
    import pendulum
    from airflow.sdk import DAG

    from airflow_provider_smpipe import (
        SageMakerFailStepOperator,
        SageMakerLambdaStepOperator,
        SageMakerPipelineTaskGroup,
    )
    from airflow_provider_smpipe.model.references import join

    function_name = unique("adder")
    pipeline = unique("lambda-pl")
    with (
        DAG("lambda_dag", start_date=pendulum.datetime(2026, 1, 1), schedule=None),
        SageMakerPipelineTaskGroup(
            "ml", pipeline_name=pipeline, role_arn=ROLE, default_bucket=BUCKET, parameters={"B": 2}
        ) as group,
    ):
        add = SageMakerLambdaStepOperator(
            task_id="add",
            handler_file=str(handler_file),
            handler="adder.lambda_handler",
            function_name=function_name,
            execution_role_arn=lambda_role,
            environment={"LABEL": "sum"},
            inputs={"a": 40, "b": group.parameter("B")},
            outputs={"total": "Integer", "label": "String"},
        )
        again = SageMakerLambdaStepOperator(
            task_id="add_again",
            function_arn=f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}",
            inputs={"a": add.output_parameter("total"), "b": 100},
            outputs={"total": "Integer"},
        )
        SageMakerFailStepOperator(
            task_id="report",
            error_message=join(add.output_parameter("label"), again.output_parameter("total"), on="="),
        )
    create_pipeline(sm, _compile(group, backend), name=pipeline)
    arn = sm.start_pipeline_execution(PipelineName=pipeline)["PipelineExecutionArn"]
    desc = wait_for(sm, arn, timeout=120)
    steps = steps_of(sm, arn)
    function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
    assert steps["add"]["StepStatus"] == "Succeeded", steps["add"]
    assert steps["add"]["Metadata"] == {
        "Lambda": {
            "Arn": function_arn,
            "OutputParameters": [{"Name": "total", "Value": "42"}, {"Name": "label", "Value": "sum"}],
        }
    }
    assert steps["add_again"]["Metadata"]["Lambda"]["OutputParameters"] == [{"Name": "total", "Value": "142"}]
    assert desc["FailureReason"] == "sum=142"

    # The handler's output is in CloudWatch Logs, where Lambda puts it.
    logs = backend.client("logs")
    group_name = f"/aws/lambda/{function_name}"
    deadline = time.monotonic() + 10
    messages: list[str] = []
    while time.monotonic() < deadline and len(messages) < 2 * 4:
        streams = logs.describe_log_streams(logGroupName=group_name)["logStreams"]
        messages = [
            event["message"]
            for stream in streams
            for event in logs.get_log_events(
                logGroupName=group_name, logStreamName=stream["logStreamName"], startFromHead=True
            )["events"]
        ]
        time.sleep(0.2)
    assert all(stream["logStreamName"].endswith(tuple("0123456789abcdef")) for stream in streams)
    assert "[$LATEST]" in streams[0]["logStreamName"]
    assert f"adding 40 and 2 in {function_name}" in messages
    assert f"adding 42 and 100 in {function_name}" in messages
    assert sum(m.startswith("START RequestId: ") for m in messages) == 2
    assert sum(m.startswith("REPORT RequestId: ") for m in messages) == 2


def _function(backend: LocalBackend, role: str, code: str, timeout: int = 3) -> str:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("fn.py", code)
    name = unique("fn")
    created = backend.client("lambda").create_function(
        FunctionName=name,
        Role=role,
        Runtime="python3.12",
        Handler="fn.handler",
        Code={"ZipFile": buffer.getvalue()},
        Timeout=timeout,
    )
    return str(created["FunctionArn"])


def _lambda_step(arn: str, outputs: dict[str, str]) -> dict[str, Any]:
    return {
        "Name": "call",
        "Type": "Lambda",
        "Arguments": {"x": 1},
        "FunctionArn": arn,
        "OutputParameters": [{"OutputName": k, "OutputType": v} for k, v in outputs.items()],
    }


@pytest.mark.parametrize(
    ("code", "outputs", "timeout", "expected"),
    [
        (
            "def handler(event, context):\n    return {'a': 1}\n",
            {"a": "Integer", "b": "String"},
            3,
            "did not return the output parameters ['b']",
        ),
        (
            "def handler(event, context):\n    raise ValueError('bad input x=%s' % event['x'])\n",
            {},
            3,
            "failed: ValueError: bad input x=1",
        ),
        (
            "import time\ndef handler(event, context):\n    time.sleep(30)\n",
            {},
            1,
            "timed out after 1 seconds",
        ),
        (
            "def handler(event, context):\n    return {'n': 'seven'}\n",
            {"n": "Integer"},
            3,
            "declared Integer",
        ),
    ],
    ids=["missing-output", "exception", "timeout", "bad-type"],
)
def test_lambda_step_failures(
    backend: LocalBackend,
    sm: Any,
    lambda_role: str,
    code: str,
    outputs: dict[str, str],
    timeout: int,
    expected: str,
) -> None:
    arn = _function(backend, lambda_role, code, timeout)
    name = create_pipeline(sm, definition(_lambda_step(arn, outputs)))
    execution = sm.start_pipeline_execution(PipelineName=name)["PipelineExecutionArn"]
    assert wait_for(sm, execution)["PipelineExecutionStatus"] == "Failed"
    step = steps_of(sm, execution)["call"]
    assert step["StepStatus"] == "Failed"
    assert expected in step["FailureReason"], step["FailureReason"]
    assert step["Metadata"]["Lambda"]["Arn"] == arn


def test_lambda_step_with_an_unknown_function(sm: Any) -> None:
    arn = "arn:aws:lambda:us-east-1:123456789012:function:no-such-fn"
    name = create_pipeline(sm, definition(_lambda_step(arn, {})))
    execution = sm.start_pipeline_execution(PipelineName=name)["PipelineExecutionArn"]
    assert wait_for(sm, execution)["PipelineExecutionStatus"] == "Failed"
    assert "no-such-fn does not exist" in steps_of(sm, execution)["call"]["FailureReason"]


def test_a_stop_waits_for_a_running_lambda_function(backend: LocalBackend, sm: Any, lambda_role: str) -> None:
    code = "import time\ndef handler(event, context):\n    time.sleep(2)\n    return {'done': True}\n"
    arn = _function(backend, lambda_role, code, timeout=30)
    name = create_pipeline(sm, definition(_lambda_step(arn, {"done": "Boolean"})))
    execution = sm.start_pipeline_execution(PipelineName=name)["PipelineExecutionArn"]
    wait_for_step(sm, execution, "call", {"Executing"})
    sm.stop_pipeline_execution(PipelineExecutionArn=execution)
    assert (
        sm.describe_pipeline_execution(PipelineExecutionArn=execution)["PipelineExecutionStatus"]
        == "Stopping"
    )
    assert wait_for(sm, execution)["PipelineExecutionStatus"] == "Stopped"
    step = steps_of(sm, execution)["call"]
    assert step["StepStatus"] == "Stopped"
    assert step["Metadata"]["Lambda"]["OutputParameters"] == [{"Name": "done", "Value": "true"}]


@pytest.fixture(autouse=True)
def _no_leftover_env() -> Iterator[None]:
    before = dict(os.environ)
    yield
    assert {k: v for k, v in os.environ.items() if k.startswith("AWS_ENDPOINT")} == {
        k: v for k, v in before.items() if k.startswith("AWS_ENDPOINT")
    }
