"""Answers to callback steps: SendPipelineExecutionStepSuccess and SendPipelineExecutionStepFailure.

An unknown or already answered token is refused with ValidationException; a repeated request with the same
``ClientRequestToken`` gets the first answer's response again (idempotent, as on AWS).
"""

from __future__ import annotations

from typing import Any

from airflow_provider_smpipe.local.api.base import ApiContext, operation
from airflow_provider_smpipe.local.errors import validation_error
from airflow_provider_smpipe.local.steps.callback import PendingCallback, callback_waits
from airflow_provider_smpipe.model.output_parameters import output_value_text


def _answer(
    api: ApiContext, name: str, body: dict[str, Any], outcome: tuple[str, Any] | None
) -> dict[str, Any]:
    """Record ``outcome`` for the body's token (``None``: a success whose outputs are checked here)."""
    token = str(body.get("CallbackToken") or "")
    request = api.token(name, body)
    with api.store.lock:
        if request and request in api.store.tokens:
            first_token, response = api.store.tokens[request]
            if first_token == token:
                return dict(response)
    waits = callback_waits(api.store)
    with waits.lock:
        pending = waits.pending.get(token)
        used = token in waits.answered
    if used:
        raise validation_error(f"Callback token {token!r} has already been used")
    if pending is None:
        raise validation_error(f"Callback token {token!r} is not valid: no callback step is waiting for it")
    if outcome is None:
        outcome = ("success", _checked_outputs(pending, body.get("OutputParameters") or []))
    execution = pending.execution
    with execution.changed:
        if pending.answer is not None:
            raise validation_error(f"Callback token {token!r} has already been used")
        pending.answer = outcome
        execution.changed.notify_all()
    response = {"PipelineExecutionArn": execution.arn}
    if request:
        with api.store.lock:
            api.store.tokens[request] = (token, response)
    return response


def _checked_outputs(pending: PendingCallback, items: list[dict[str, Any]]) -> dict[str, str]:
    """The answered outputs by name; undeclared names and values not of the declared type are refused."""
    outputs: dict[str, str] = {}
    for item in items:
        name, value = str(item.get("Name")), str(item.get("Value", ""))
        if name not in pending.declared:
            raise validation_error(
                f"Output parameter {name!r} is not declared by step {pending.run.name} "
                f"(declared: {sorted(pending.declared)})"
            )
        try:
            output_value_text(name, pending.declared[name], value)
        except ValueError as err:
            raise validation_error(f"Invalid value for output parameter: {err}") from None
        outputs[name] = value
    return outputs


@operation("SendPipelineExecutionStepSuccess")
def send_pipeline_execution_step_success(
    api: ApiContext, body: dict[str, Any], account: str, region: str
) -> dict[str, Any]:
    return _answer(api, "SendPipelineExecutionStepSuccess", body, None)


@operation("SendPipelineExecutionStepFailure")
def send_pipeline_execution_step_failure(
    api: ApiContext, body: dict[str, Any], account: str, region: str
) -> dict[str, Any]:
    reason = str(body.get("FailureReason") or "")
    return _answer(api, "SendPipelineExecutionStepFailure", body, ("failure", reason))
