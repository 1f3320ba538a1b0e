"""Callback hooks: the queue hook against moto's SQS; the answers' idempotency against a recording client."""

from __future__ import annotations

import asyncio
import json
import uuid
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.exceptions import ClientError

from airflow_provider_smpipe.hooks.callback import (
    SageMakerCallbackHook,
    SageMakerCallbackQueueHook,
    callback_request_token,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

MOTO_CONN_ID = "smpipe_moto"
TOKEN = "AbC123xYz9"


def _message(token: str, status: str = "Executing", **arguments: Any) -> str:
    return json.dumps(
        {
            "token": token,
            "pipelineExecutionArn": "arn:aws:sagemaker:us-east-1:123456789012:pipeline/p/execution/e1",
            "arguments": arguments,
            "status": status,
        }
    )


@pytest.fixture
def queue(moto_url: str) -> tuple[Any, str]:
    sqs = boto3.client("sqs", endpoint_url=moto_url, region_name="us-east-1")
    url = sqs.create_queue(QueueName=f"cb-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    return sqs, url


def test_finds_its_message_and_leaves_every_other_one_visible(queue: tuple[Any, str]) -> None:
    sqs, url = queue
    sqs.send_message(QueueUrl=url, MessageBody=_message("OtherTok01", n=1))
    sqs.send_message(QueueUrl=url, MessageBody="not a callback message")
    sqs.send_message(QueueUrl=url, MessageBody=_message(TOKEN, n=5, s="x"))
    hook = SageMakerCallbackQueueHook(aws_conn_id=MOTO_CONN_ID)
    found = hook.find_callback_message(url, TOKEN, wait_seconds=5)
    assert found is not None
    assert (found.token, found.arguments, found.status) == (TOKEN, {"n": 5, "s": "x"}, "Executing")
    assert found.pipeline_execution_arn.endswith("/execution/e1")  # type: ignore[union-attr]

    hook.delete_messages(url, found.receipt_handles)
    # The other consumers' messages are visible at once (not after a visibility timeout); ours is gone.
    left = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)["Messages"]
    bodies = sorted(m["Body"] for m in left)
    assert bodies == sorted([_message("OtherTok01", n=1), "not a callback message"])


def test_a_stopping_message_for_the_token_is_reported(queue: tuple[Any, str]) -> None:
    sqs, url = queue
    sqs.send_message(QueueUrl=url, MessageBody=_message(TOKEN, n=5))
    sqs.send_message(QueueUrl=url, MessageBody=_message(TOKEN, "Stopping", n=5))
    found = SageMakerCallbackQueueHook(aws_conn_id=MOTO_CONN_ID).find_callback_message(
        url, TOKEN, wait_seconds=5
    )
    assert found is not None and found.status == "Stopping"


def test_no_message_within_the_wait_returns_none(queue: tuple[Any, str]) -> None:
    sqs, url = queue
    sqs.send_message(QueueUrl=url, MessageBody=_message("OtherTok01"))
    hook = SageMakerCallbackQueueHook(aws_conn_id=MOTO_CONN_ID)
    assert hook.find_callback_message(url, TOKEN, wait_seconds=1) is None
    assert len(sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages", [])) == 1


# ------------------------------------------------------------------------------------ answers (idempotent)
class RecordingSageMaker:
    """Records the answers; answers a used callback token like SageMaker (ValidationException)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.answered: dict[str, str] = {}
        self.error: str | None = None

    def _answer(self, operation: str, request: dict[str, Any]) -> dict[str, Any]:
        self.requests.append((operation, request))
        if self.error:
            raise ClientError({"Error": {"Code": self.error, "Message": "no"}}, operation)
        token, client_token = request["CallbackToken"], request["ClientRequestToken"]
        if token in self.answered and self.answered[token] != client_token:
            raise ClientError({"Error": {"Code": "ValidationException", "Message": "used"}}, operation)
        self.answered[token] = client_token
        return {"PipelineExecutionArn": "arn:exec"}

    def send_pipeline_execution_step_success(self, **request: Any) -> dict[str, Any]:
        return self._answer("success", request)

    def send_pipeline_execution_step_failure(self, **request: Any) -> dict[str, Any]:
        return self._answer("failure", request)

    async def async_send_pipeline_execution_step_failure(self, **request: Any) -> dict[str, Any]:
        return self._answer("failure", request)


class RecordingHook(SageMakerCallbackHook):
    def __init__(self, client: RecordingSageMaker) -> None:
        super().__init__(aws_conn_id=None, region_name="us-east-1")
        self.client = client
        self.sleep = lambda _s: None

    @property
    def conn(self) -> Any:  # type: ignore[override]
        return self.client

    @asynccontextmanager
    async def async_client(self) -> AsyncIterator[Any]:
        class Async:
            send_pipeline_execution_step_failure = self.client.async_send_pipeline_execution_step_failure

        yield Async()


def test_a_retried_answer_is_the_same_request_and_the_first_answer_counts() -> None:
    client = RecordingSageMaker()
    hook = RecordingHook(client)
    assert hook.send_step_success(TOKEN, {"approved": "true"}) is True
    # A retry (the task died after sending) sends the same request, with the same idempotency token.
    assert hook.send_step_success(TOKEN, {"approved": "true"}) is True
    first, second = client.requests
    assert first == second
    assert first[1]["ClientRequestToken"] == callback_request_token(TOKEN, "SendPipelineExecutionStepSuccess")
    assert first[1]["OutputParameters"] == [{"Name": "approved", "Value": "true"}]
    # Anything else for a token already answered is refused by SageMaker: reported, not raised.
    assert hook.send_step_failure(TOKEN, "too late") is False
    assert client.answered[TOKEN] == first[1]["ClientRequestToken"]


def test_request_tokens_are_deterministic_per_token_and_operation() -> None:
    success = callback_request_token(TOKEN, "SendPipelineExecutionStepSuccess")
    assert success == callback_request_token(TOKEN, "SendPipelineExecutionStepSuccess")
    assert success != callback_request_token(TOKEN, "SendPipelineExecutionStepFailure")
    assert success != callback_request_token("OtherTok01", "SendPipelineExecutionStepSuccess")
    assert 32 <= len(success) <= 128


def test_failure_reason_is_cut_to_what_sagemaker_accepts() -> None:
    client = RecordingSageMaker()
    assert RecordingHook(client).send_step_failure(TOKEN, "boom\n" * 200) is True
    reason = client.requests[0][1]["FailureReason"]
    assert len(reason) == 256 and reason.startswith("boom boom") and reason.endswith("...")


def test_other_errors_are_raised() -> None:
    client = RecordingSageMaker()
    client.error = "AccessDeniedException"
    with pytest.raises(ClientError, match="AccessDenied"):
        RecordingHook(client).send_step_success(TOKEN, {})
    client.error = "ResourceNotFound"
    assert RecordingHook(client).send_step_success(TOKEN, {}) is False


def test_async_failure_uses_the_same_idempotency_token() -> None:
    client = RecordingSageMaker()
    hook = RecordingHook(client)
    assert asyncio.run(hook.async_send_step_failure(TOKEN, "killed")) is True
    assert hook.send_step_failure(TOKEN, "killed") is True  # same request again: accepted
    assert client.requests[0][1] == client.requests[1][1]
