"""The step trigger hands a waiting callback step to the task's worker and reports callback/Lambda outputs."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import TriggerEvent
from test_pipeline_step_trigger import ARN, FakeSageMaker, FakeTI, _first_event, _trigger

from airflow_provider_smpipe.triggers.pipeline_step import SageMakerPipelineStepTrigger

if TYPE_CHECKING:
    import pytest

TOKEN = "AbC123xYz9"
QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/approvals"


def _callback_step(
    status: str, token: str | None = TOKEN, outputs: dict[str, str] | None = None
) -> dict[str, Any]:
    callback: dict[str, Any] = {"SqsQueueUrl": QUEUE, "OutputParameters": []}
    if token:
        callback["CallbackToken"] = token
    if outputs:
        callback["OutputParameters"] = [{"Name": k, "Value": v} for k, v in outputs.items()]
    return {
        "StepName": "approve",
        "StepStatus": status,
        "StartTime": datetime(2026, 1, 1, tzinfo=UTC),
        "Metadata": {"Callback": callback},
    }


def _script(*ticks: tuple[str, dict[str, Any]]) -> Any:
    """Execution status and the step per tick (the last one repeats)."""

    def script(tick: int) -> tuple[str, list[dict[str, Any]]]:
        status, step = ticks[min(tick, len(ticks)) - 1]
        return status, [step]

    return script


def test_a_waiting_callback_step_is_handed_to_the_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.sdk.execution_time.xcom import XCom

    pushed: list[str] = []

    async def no_push(key: str, value: Any, **_: Any) -> None:
        pushed.append(key)

    monkeypatch.setattr(XCom, "aset", no_push)
    fake = FakeSageMaker(
        _script(
            ("Executing", _callback_step("Starting", token=None)),
            ("Executing", _callback_step("Executing", token=None)),  # no token yet: keep waiting
            ("Executing", _callback_step("Executing")),
        )
    )
    trigger = _trigger(fake, "approve", worker_handover=True)
    trigger.task_instance = FakeTI("grp.approve")  # type: ignore[assignment]
    event = asyncio.run(_first_event(trigger))
    # Even a trigger that ends its task itself hands over with a plain event: a worker must run the callable.
    assert type(event) is TriggerEvent
    assert event.payload == {
        "status": "handover",
        "step_name": "approve",
        "execution_arn": ARN,
        "handover": {"callback_token": TOKEN, "sqs_queue_url": QUEUE, "step_status": "Executing"},
    }
    assert fake.tick == 3
    assert pushed == []


def test_a_stopping_callback_step_is_handed_over_too() -> None:
    fake = FakeSageMaker(_script(("Stopping", _callback_step("Stopping"))))
    event = asyncio.run(_first_event(_trigger(fake, "approve", worker_handover=True, end_from_trigger=False)))
    assert event.payload["handover"]["step_status"] == "Stopping"


def test_without_handover_the_task_follows_the_step_and_reports_its_outputs() -> None:
    fake = FakeSageMaker(
        _script(
            ("Executing", _callback_step("Executing")),
            ("Executing", _callback_step("Executing")),
            ("Succeeded", _callback_step("Succeeded", outputs={"approved": "true", "approver": "ann"})),
        )
    )
    event = asyncio.run(_first_event(_trigger(fake, "approve", end_from_trigger=False)))
    assert event.payload["status"] == "success"
    assert event.payload["result"]["outputs"] == {"approved": "true", "approver": "ann"}


def test_an_answered_step_is_not_handed_over_again() -> None:
    # A retried task whose step was answered already: the callable must not run a second time.
    fake = FakeSageMaker(_script(("Succeeded", _callback_step("Succeeded", outputs={"approved": "true"}))))
    event = asyncio.run(_first_event(_trigger(fake, "approve", worker_handover=True, end_from_trigger=False)))
    assert event.payload["status"] == "success"
    assert event.payload["result"]["outputs"] == {"approved": "true"}


def test_lambda_outputs_in_the_result() -> None:
    arn = "arn:aws:lambda:us-east-1:123456789012:function:split"
    step = {
        "StepName": "split",
        "StepStatus": "Succeeded",
        "StartTime": datetime(2026, 1, 1, tzinfo=UTC),
        "Metadata": {"Lambda": {"Arn": arn, "OutputParameters": [{"Name": "rows", "Value": "12"}]}},
    }
    fake = FakeSageMaker(_script(("Succeeded", step)))
    event = asyncio.run(_first_event(_trigger(fake, "split", worker_handover=True, end_from_trigger=False)))
    result = event.payload["result"]
    assert (result["outputs"], result["function_arn"]) == ({"rows": "12"}, arn)
    assert "job_name" not in result


def test_worker_handover_survives_serialization() -> None:
    trigger = SageMakerPipelineStepTrigger(
        pipeline_name="p", step_name="approve", dag_id="", run_id="", group_id="grp", worker_handover=True
    )
    classpath, kwargs = trigger.serialize()
    assert kwargs["worker_handover"] is True
    assert SageMakerPipelineStepTrigger(**kwargs).serialize() == (classpath, kwargs)
