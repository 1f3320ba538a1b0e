"""Answering SageMaker Callback steps: the callback message in SQS, and the success/failure calls.

When a Callback step runs, SageMaker sends ``{"token", "pipelineExecutionArn", "arguments", "status"}`` to the
step's SQS queue and waits for ``SendPipelineExecutionStepSuccess`` or ``SendPipelineExecutionStepFailure``
with that token. Both calls carry a ``ClientRequestToken`` derived from the callback token, so a retried answer
is the same request to SageMaker: the first answer is the one that counts.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
from botocore.exceptions import ClientError

from airflow_provider_smpipe.hooks.pipeline import SageMakerPipelineHook, with_default_retries
from airflow_provider_smpipe.ratelimit import call_with_backoff, error_code

#: What SageMaker answers when a callback token is unknown or already answered.
_TOKEN_NOT_WAITING = frozenset({"ValidationException", "ResourceNotFound", "ResourceNotFoundException"})
#: ``FailureReason`` is a String256.
MAX_FAILURE_REASON = 256
#: SQS long polling waits at most 20 seconds per ReceiveMessage.
_MAX_SQS_WAIT = 20


def callback_request_token(callback_token: str, operation: str) -> str:
    """
    The ``ClientRequestToken`` of an answer to ``callback_token`` (64 hex characters).

    :param callback_token: The step's callback token.
    :param operation: ``SendPipelineExecutionStepSuccess`` or ``SendPipelineExecutionStepFailure``.
    """
    raw = "\0".join(("smpipe-callback", operation, callback_token))
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def failure_reason_text(reason: str) -> str:
    """A failure reason cut to SageMaker's 256 characters."""
    text = " ".join(str(reason).split()) or "the callback failed"
    return text if len(text) <= MAX_FAILURE_REASON else text[: MAX_FAILURE_REASON - 3] + "..."


@dataclass
class CallbackMessage:
    """
    The SQS message(s) SageMaker sent for one callback token.

    :param token: The callback token.
    :param arguments: The step's evaluated inputs.
    :param status: ``Executing``, or ``Stopping`` when the execution is being stopped.
    :param pipeline_execution_arn: The execution the step belongs to.
    :param receipt_handles: To delete the messages once the step is answered.
    """

    token: str
    arguments: dict[str, Any]
    status: str
    pipeline_execution_arn: str | None = None
    receipt_handles: list[str] = field(default_factory=list)


def parse_callback_message(body: str) -> dict[str, Any] | None:
    """The decoded body of a SageMaker callback message, or None for any other message."""
    try:
        decoded = json.loads(body)
    except (TypeError, ValueError):
        return None
    if not isinstance(decoded, dict) or not isinstance(decoded.get("token"), str):
        return None
    return decoded


class SageMakerCallbackHook(SageMakerPipelineHook):
    """
    Send the answer of a Callback step (sync for workers, async for triggers).

    Additional arguments (such as ``aws_conn_id``) may be specified and are passed down to the underlying
    AwsBaseHook.

    .. seealso::
        - :class:`airflow_provider_smpipe.hooks.pipeline.SageMakerPipelineHook`
    """

    def _answer(self, operation: str, callback_token: str, **kwargs: Any) -> bool:
        request = {
            "CallbackToken": callback_token,
            "ClientRequestToken": callback_request_token(callback_token, operation),
            **kwargs,
        }
        method = {
            "SendPipelineExecutionStepSuccess": "send_pipeline_execution_step_success",
            "SendPipelineExecutionStepFailure": "send_pipeline_execution_step_failure",
        }[operation]
        try:
            self._call(method, **request)
        except ClientError as exc:
            if error_code(exc) in _TOKEN_NOT_WAITING:
                self.log.warning(
                    "%s for callback token %s was refused (the step is no longer waiting for it): %s",
                    operation,
                    callback_token,
                    exc,
                )
                return False
            raise
        return True

    def send_step_success(self, callback_token: str, outputs: Mapping[str, str]) -> bool:
        """
        Tell SageMaker the callback step succeeded, with its output parameters.

        :param callback_token: The step's callback token.
        :param outputs: Output values by name, already as the strings SageMaker stores.
        :return: True when sent (or sent before with the same request), False when the token is no longer
            waiting (unknown, answered, or its execution ended).
        """
        sent = self._answer(
            "SendPipelineExecutionStepSuccess",
            callback_token,
            OutputParameters=[{"Name": name, "Value": value} for name, value in outputs.items()],
        )
        if sent:
            self.log.info("Sent success for callback token %s with outputs %s", callback_token, dict(outputs))
        return sent

    def send_step_failure(self, callback_token: str, reason: str) -> bool:
        """
        Tell SageMaker the callback step failed.

        :param callback_token: The step's callback token.
        :param reason: Why (cut to 256 characters).
        :return: True when sent, False when the token is no longer waiting.
        """
        text = failure_reason_text(reason)
        sent = self._answer("SendPipelineExecutionStepFailure", callback_token, FailureReason=text)
        if sent:
            self.log.info("Sent failure for callback token %s: %s", callback_token, text)
        return sent

    async def async_send_step_failure(self, callback_token: str, reason: str) -> bool:
        """
        Tell SageMaker the callback step failed, from a trigger (see :meth:`send_step_failure`).

        :param callback_token: The step's callback token.
        :param reason: Why (cut to 256 characters).
        :return: True when sent, False when the token is no longer waiting.
        """
        operation = "SendPipelineExecutionStepFailure"
        async with self.async_client() as client:
            try:
                await self._acall(
                    client,
                    "send_pipeline_execution_step_failure",
                    CallbackToken=callback_token,
                    ClientRequestToken=callback_request_token(callback_token, operation),
                    FailureReason=failure_reason_text(reason),
                )
            except ClientError as exc:
                if error_code(exc) in _TOKEN_NOT_WAITING:
                    self.log.info("Callback token %s is no longer waiting: %s", callback_token, exc)
                    return False
                raise
        return True


class SageMakerCallbackQueueHook(AwsBaseHook):
    """
    Read the callback messages SageMaker sends to a Callback step's SQS queue.

    Other consumers may share the queue: messages of other tokens are made visible again at once, and only the
    messages of the token being answered are deleted.

    Additional arguments (such as ``aws_conn_id``) may be specified and are passed down to the underlying
    AwsBaseHook.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["client_type"] = "sqs"
        super().__init__(*args, **kwargs)
        self.max_attempts = 8
        self.sleep: Any = time.sleep

    def _get_config(self, config: Any = None) -> Any:
        return with_default_retries(super()._get_config(config))

    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        method = getattr(self.conn, operation)
        return call_with_backoff(
            lambda: method(**kwargs), op_name=operation, max_attempts=self.max_attempts, sleep=self.sleep
        )

    def find_callback_message(
        self,
        queue_url: str,
        callback_token: str,
        *,
        wait_seconds: float = 300.0,
        visibility_timeout: int = 120,
    ) -> CallbackMessage | None:
        """
        Receive messages until the one for ``callback_token`` arrives; leave every other message visible.

        The matching message stays invisible for ``visibility_timeout`` seconds (if the task dies before it
        answered, a retry finds the message again after that) until :meth:`delete_messages` removes it.

        :param queue_url: The step's SQS queue URL.
        :param callback_token: The token from the step's metadata.
        :param wait_seconds: How long to wait for the message.
        :param visibility_timeout: Seconds the matching message stays hidden from other receivers.
        :return: The message, or None when it did not arrive in time.
        """
        deadline = time.monotonic() + max(0.0, wait_seconds)
        while True:
            remaining = deadline - time.monotonic()
            response = self._call(
                "receive_message",
                QueueUrl=queue_url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=int(max(0, min(_MAX_SQS_WAIT, remaining))),
                VisibilityTimeout=visibility_timeout,
                MessageAttributeNames=["All"],
            )
            found: CallbackMessage | None = None
            for message in response.get("Messages") or []:
                body = parse_callback_message(message.get("Body", ""))
                handle = message["ReceiptHandle"]
                if body is None or body["token"] != callback_token:
                    self._release(queue_url, handle)
                    continue
                if found is None:
                    arguments = body.get("arguments")
                    found = CallbackMessage(
                        token=callback_token,
                        arguments=dict(arguments) if isinstance(arguments, Mapping) else {},
                        status=str(body.get("status") or "Executing"),
                        pipeline_execution_arn=body.get("pipelineExecutionArn"),
                    )
                elif str(body.get("status")) == "Stopping":
                    found.status = "Stopping"
                found.receipt_handles.append(handle)
            if found is not None:
                self.log.info(
                    "Received the callback message of token %s (status %s) from %s",
                    callback_token,
                    found.status,
                    queue_url,
                )
                return found
            if time.monotonic() >= deadline:
                return None

    def _release(self, queue_url: str, receipt_handle: str) -> None:
        """Make a message that is not ours visible to other receivers again."""
        try:
            self._call(
                "change_message_visibility",
                QueueUrl=queue_url,
                ReceiptHandle=receipt_handle,
                VisibilityTimeout=0,
            )
        except ClientError as exc:
            self.log.warning("Could not release a message of another consumer in %s: %s", queue_url, exc)

    def delete_messages(self, queue_url: str, receipt_handles: list[str]) -> None:
        """
        Delete the answered callback's messages (best effort: a leftover message does no harm).

        :param queue_url: The step's SQS queue URL.
        :param receipt_handles: From :attr:`CallbackMessage.receipt_handles`.
        """
        for handle in receipt_handles:
            try:
                self._call("delete_message", QueueUrl=queue_url, ReceiptHandle=handle)
            except ClientError as exc:
                self.log.warning("Could not delete an answered callback message from %s: %s", queue_url, exc)
