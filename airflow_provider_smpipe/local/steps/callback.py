"""Callback steps: send the callback message to SQS, wait for SendPipelineExecutionStep{Success,Failure}.

As SageMaker does: the message body is ``{"token", "pipelineExecutionArn", "arguments", "status": "Executing"}``;
a stop of the execution sends a second message with ``"status": "Stopping"`` and the step keeps the execution
Stopping until the token is answered. The step's metadata is ``Callback {CallbackToken, SqsQueueUrl,
OutputParameters}``; ``Steps.<step>.OutputParameters['<name>']`` reads an output typed as declared.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import string
import threading
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from airflow_provider_smpipe.local.expressions import to_text
from airflow_provider_smpipe.local.steps.base import STEP_RUNNERS, StepEnv
from airflow_provider_smpipe.model.output_parameters import typed_output_value

if TYPE_CHECKING:
    from airflow_provider_smpipe.local.state import Execution, StepRun, Store

_SQS_HOST = re.compile(r"^sqs[.-](?P<region>[a-z0-9-]+)\.amazonaws\.com(\.cn)?$")


class QueueNotFoundError(Exception):
    """The callback step's queue does not exist (or the URL is not a queue URL)."""


@dataclass
class PendingCallback:
    """A callback step waiting for its answer.

    :ivar answer: ``("success", {name: value})`` or ``("failure", reason)`` once answered.
    """

    token: str
    execution: Execution
    run: StepRun
    declared: dict[str, str]
    answer: tuple[str, Any] | None = None


@dataclass
class CallbackWaits:
    """The callback steps of one backend that wait for an answer, by token."""

    pending: dict[str, PendingCallback] = field(default_factory=dict)
    answered: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)


_WAITS: weakref.WeakKeyDictionary[Store, CallbackWaits] = weakref.WeakKeyDictionary()
_WAITS_LOCK = threading.Lock()


def callback_waits(store: Store) -> CallbackWaits:
    """The waiting callbacks of the backend that owns ``store``."""
    with _WAITS_LOCK:
        waits = _WAITS.get(store)
        if waits is None:
            waits = _WAITS[store] = CallbackWaits()
        return waits


def new_token() -> str:
    """A callback token: 10 letters and digits, as ``CallbackToken`` requires."""
    return "".join(random.choices(string.ascii_letters + string.digits, k=10))


def send_callback_message(queue_url: str, body: dict[str, Any], execution: Execution) -> None:
    """Send ``body`` to the queue through moto's SQS backend (the backend serves SQS at the same endpoint).

    :raises QueueNotFoundError: when the URL names no existing queue.
    """
    from moto.sqs.exceptions import QueueDoesNotExist
    from moto.sqs.models import sqs_backends

    parsed = urlparse(queue_url)
    parts = [part for part in parsed.path.split("/") if part]
    if parsed.scheme not in ("http", "https") or len(parts) != 2 or not parts[0].isdigit():
        raise QueueNotFoundError(
            f"{queue_url!r} is not an SQS queue URL (https://sqs.<region>.amazonaws.com/<account>/<queue>)"
        )
    account, name = parts
    host = _SQS_HOST.match(parsed.hostname or "")
    region = host.group("region") if host else execution.region
    backend = sqs_backends[account][region]
    try:
        queue = backend.get_queue(name)
    except QueueDoesNotExist:
        raise QueueNotFoundError(
            f"SQS queue {name!r} of account {account} does not exist in {region} ({queue_url})"
        ) from None
    text = json.dumps(body)
    extra: dict[str, Any] = {}
    if queue.fifo_queue:
        extra = {
            "group_id": execution.execution_id,
            "deduplication_id": hashlib.sha256(text.encode()).hexdigest(),
        }
    backend.send_message(name, text, **extra)


def _message(token: str, execution: Execution, arguments: Any, status: str) -> dict[str, Any]:
    return {
        "token": token,
        "pipelineExecutionArn": execution.arn,
        "arguments": arguments,
        "status": status,
    }


@STEP_RUNNERS.register("Callback")
def run_callback(env: StepEnv) -> None:
    run, execution = env.run, env.execution
    raw = env.step.raw
    arguments = env.evaluate(env.step.arguments)
    queue_url = to_text(env.evaluate(raw.get("SqsQueueUrl", "")))
    declared = {
        str(item.get("OutputName")): str(item.get("OutputType") or "String")
        for item in raw.get("OutputParameters") or []
    }
    token = new_token()
    pending = PendingCallback(token=token, execution=execution, run=run, declared=declared)
    outputs: dict[str, str] = {}

    def metadata() -> dict[str, Any]:
        return {
            "Callback": {
                "CallbackToken": token,
                "SqsQueueUrl": queue_url,
                "OutputParameters": [{"Name": k, "Value": v} for k, v in outputs.items()],
            }
        }

    run.metadata = metadata()
    run.properties = lambda: {
        "OutputParameters": {k: typed_output_value(declared.get(k, "String"), v) for k, v in outputs.items()}
    }
    try:
        send_callback_message(queue_url, _message(token, execution, arguments, "Executing"), execution)
    except QueueNotFoundError as err:
        run.finish("Failed", f"ClientError: cannot send the callback message: {err}")
        return
    waits = callback_waits(env.services.store)
    with waits.lock:
        waits.pending[token] = pending
    stopping_sent = False
    try:
        with execution.changed:
            if not execution.stop_requested:
                run.status = "Executing"
            while pending.answer is None and not env.services.shutting_down.is_set():
                if execution.stop_requested and not stopping_sent:
                    # SageMaker does not stop a callback step: it tells the consumer and waits for its answer.
                    stopping_sent = True
                    try:
                        send_callback_message(
                            queue_url, _message(token, execution, arguments, "Stopping"), execution
                        )
                    except QueueNotFoundError:
                        pending.answer = ("failure", "the callback queue was deleted while the step waited")
                        break
                execution.changed.wait(timeout=0.5)
    finally:
        with waits.lock:
            waits.pending.pop(token, None)
            if pending.answer is not None:
                waits.answered.add(token)
    answer = pending.answer
    if answer is None:
        run.finish("Stopped", "the local backend shut down while the callback step waited for its answer")
        return
    kind, value = answer
    if kind == "success":
        outputs.update(value)
        run.metadata = metadata()
    if execution.stop_requested:
        run.finish("Stopped")
    elif kind == "success":
        run.finish("Succeeded")
    else:
        run.finish("Failed", str(value) or "the callback step failed")
