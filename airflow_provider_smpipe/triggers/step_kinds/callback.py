"""Callback steps: hand over to the worker that computes the answer; XCom: the output parameters."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_smpipe.triggers.step_kinds.base import STEP_KINDS, StepKindRuntime, StepView

if TYPE_CHECKING:
    from collections.abc import Mapping

#: Step statuses in which SageMaker waits for an answer to the callback token.
_WAITING = frozenset({"Executing", "Stopping"})


def output_parameters(metadata: Mapping[str, Any], key: str) -> dict[str, str]:
    """``Metadata.<key>.OutputParameters`` as ``{name: value}``."""
    items = (metadata.get(key) or {}).get("OutputParameters") or []
    return {str(item["Name"]): str(item.get("Value", "")) for item in items if "Name" in item}


class CallbackStepRuntime(StepKindRuntime):
    metadata_key = "Callback"

    async def handover(self, view: StepView) -> dict[str, Any] | None:
        callback = view.metadata.get(self.metadata_key) or {}
        token = callback.get("CallbackToken")
        status = view.step.get("StepStatus")
        if not token or status not in _WAITING:
            return None
        return {
            "callback_token": str(token),
            "sqs_queue_url": str(callback.get("SqsQueueUrl") or ""),
            "step_status": str(status),
        }

    async def result(self, view: StepView) -> dict[str, Any]:
        return {"outputs": output_parameters(view.metadata, self.metadata_key)}


STEP_KINDS.add(CallbackStepRuntime.metadata_key, CallbackStepRuntime())
