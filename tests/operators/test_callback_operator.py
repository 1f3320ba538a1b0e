"""SageMakerCallbackStepOperator at run time: the hand-over runs the callable once and answers; retries do not
answer twice differently; a killed task releases the step."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pendulum
import pytest
from airflow.sdk import DAG
from airflow.sdk.exceptions import AirflowException, TaskDeferred

from airflow_provider_smpipe import SageMakerCallbackStepOperator, SageMakerPipelineTaskGroup
from airflow_provider_smpipe.hooks import callback as callback_hooks
from airflow_provider_smpipe.hooks.callback import CallbackMessage

ROLE = "arn:aws:iam::123456789012:role/r"
QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/approvals"
TOKEN = "AbC123xYz9"
ARN = "arn:aws:sagemaker:us-east-1:123456789012:pipeline/p/execution/abc"


@dataclass
class World:
    """What the fake hooks see and record."""

    messages: dict[str, CallbackMessage] = field(default_factory=dict)
    answers: list[tuple[str, str, Any]] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    answered: set[str] = field(default_factory=set)


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> World:
    state = World()

    class FakeCallbackHook:
        def __init__(self, **_: Any) -> None:
            pass

        def _answer(self, kind: str, token: str, value: Any) -> bool:
            state.answers.append((kind, token, value))
            if token in state.answered:
                return False  # SageMaker refuses a used token
            state.answered.add(token)
            return True

        def send_step_success(self, token: str, outputs: dict[str, str]) -> bool:
            return self._answer("success", token, dict(outputs))

        def send_step_failure(self, token: str, reason: str) -> bool:
            return self._answer("failure", token, reason)

        def stop_execution(self, arn: str) -> bool:
            state.stopped.append(arn)
            return True

    class FakeQueueHook:
        def __init__(self, **_: Any) -> None:
            pass

        def find_callback_message(self, queue_url: str, token: str, **_: Any) -> CallbackMessage | None:
            assert queue_url == QUEUE
            return state.messages.get(token)

        def delete_messages(self, queue_url: str, handles: list[str]) -> None:
            state.deleted.extend(handles)
            for token in [t for t, m in state.messages.items() if set(m.receipt_handles) & set(handles)]:
                del state.messages[token]

    monkeypatch.setattr(callback_hooks, "SageMakerCallbackHook", FakeCallbackHook)
    monkeypatch.setattr(callback_hooks, "SageMakerCallbackQueueHook", FakeQueueHook)
    return state


class TI:
    dag_id, run_id, task_id, try_number = "dag", "run1", "ml.approve", 1


def _operator(callback: Any, **kwargs: Any) -> SageMakerCallbackStepOperator:
    with (
        DAG("dag", start_date=pendulum.datetime(2026, 1, 1), schedule=None),
        SageMakerPipelineTaskGroup("ml", role_arn=ROLE),
    ):
        operator = SageMakerCallbackStepOperator(
            task_id="approve",
            sqs_queue_url=QUEUE,
            inputs={"n": 1},
            outputs={"approved": "Boolean", "count": "Integer", "who": "String"},
            callback=callback,
            **kwargs,
        )
    return operator


def _handover(status: str = "Executing", token: str = TOKEN) -> dict[str, Any]:
    return {
        "status": "handover",
        "step_name": "approve",
        "execution_arn": ARN,
        "handover": {"callback_token": token, "sqs_queue_url": QUEUE, "step_status": status},
    }


def _message(token: str = TOKEN, status: str = "Executing") -> CallbackMessage:
    return CallbackMessage(token=token, arguments={"n": 5}, status=status, receipt_handles=[f"rh-{token}"])


def _answer(operator: SageMakerCallbackStepOperator, event: dict[str, Any]) -> Any:
    """Run execute_complete with a hand-over event; return the trigger it defers to."""
    context = {"ti": TI()}
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute_complete(context, event)  # type: ignore[arg-type]
    assert deferred.value.method_name == "execute_complete"
    return deferred.value.trigger


def test_the_callable_runs_once_and_success_is_sent_with_typed_outputs(world: World) -> None:
    calls: list[tuple[Any, ...]] = []

    def approve(inputs: dict[str, Any], token: str, context: Any) -> dict[str, Any]:
        calls.append((inputs, token, context["ti"].task_id))
        return {"approved": True, "count": 7.0, "who": "ann"}

    world.messages[TOKEN] = _message()
    trigger = _answer(_operator(approve), _handover())
    assert calls == [({"n": 5}, TOKEN, "ml.approve")]
    assert world.answers == [("success", TOKEN, {"approved": "true", "count": "7", "who": "ann"})]
    assert world.deleted == [f"rh-{TOKEN}"]
    # Then it waits for the step's end like any step task: no second hand-over, no execution retry.
    kwargs = trigger.serialize()[1]
    assert kwargs["worker_handover"] is False
    assert kwargs["retry_failed_execution"] is False
    assert (kwargs["execution_arn"], kwargs["dag_id"], kwargs["run_id"]) == (ARN, "dag", "run1")


def test_an_exception_sends_failure_with_its_message(world: World) -> None:
    def approve(inputs: dict[str, Any], token: str, context: Any) -> dict[str, Any]:
        raise RuntimeError("ticket #12 was rejected")

    world.messages[TOKEN] = _message()
    _answer(_operator(approve), _handover())
    assert world.answers == [("failure", TOKEN, "RuntimeError: ticket #12 was rejected")]
    assert world.deleted == [f"rh-{TOKEN}"]


@pytest.mark.parametrize(
    ("returned", "problem"),
    [
        ({"approved": True, "count": 1}, "missing ['who']"),
        ({"approved": True, "count": 1, "who": "a", "extra": 1}, "not declared ['extra']"),
        ({"approved": "maybe", "count": 1, "who": "a"}, "declared Boolean"),
        ({"approved": True, "count": "seven", "who": "a"}, "declared Integer"),
        (["approved"], "expected a dict"),
    ],
)
def test_outputs_that_do_not_match_the_declaration_send_failure(
    world: World, returned: Any, problem: str
) -> None:
    world.messages[TOKEN] = _message()
    _answer(_operator(lambda inputs, token, context: returned), _handover())
    ((kind, token, reason),) = world.answers
    assert (kind, token) == ("failure", TOKEN)
    assert problem in reason


def test_a_stopping_execution_is_answered_without_running_the_callable(world: World) -> None:
    def approve(inputs: dict[str, Any], token: str, context: Any) -> dict[str, Any]:
        raise AssertionError("must not run")

    operator = _operator(approve)
    world.messages[TOKEN] = _message()
    _answer(operator, _handover(status="Stopping"))
    assert world.answers == [("failure", TOKEN, "the pipeline execution is stopping")]
    assert world.deleted == [f"rh-{TOKEN}"]  # the step's messages do not linger in the queue

    world.answers.clear()
    world.messages["Tok0000002"] = _message("Tok0000002", status="Stopping")
    _answer(operator, _handover(token="Tok0000002"))
    assert world.answers == [("failure", "Tok0000002", "the pipeline execution is stopping")]


def test_a_message_that_never_arrives_fails_the_step_clearly(world: World) -> None:
    _answer(_operator(lambda *a: {}, message_wait_seconds=0), _handover())
    ((kind, _, reason),) = world.answers
    assert kind == "failure" and f"no callback message for token {TOKEN}" in reason and QUEUE in reason


def test_a_retry_never_answers_twice_with_different_results(world: World) -> None:
    results = iter(
        [{"approved": True, "count": 1, "who": "first"}, {"approved": False, "count": 2, "who": "2nd"}]
    )
    runs: list[str] = []

    def approve(inputs: dict[str, Any], token: str, context: Any) -> dict[str, Any]:
        runs.append(token)
        return next(results)

    world.messages[TOKEN] = _message()
    _answer(_operator(approve), _handover())
    # A retried task gets the hand-over again while SageMaker still lists the step as Executing: the message
    # was deleted with the answer, so the callable does not run again, and SageMaker refuses a second answer.
    _answer(_operator(approve), _handover())
    assert runs == [TOKEN]
    assert world.answers[0] == ("success", TOKEN, {"approved": "true", "count": "1", "who": "first"})
    assert [kind for kind, _, _ in world.answers[1:]] == ["failure"]
    assert world.answered == {TOKEN}


def test_a_task_killed_while_answering_stops_the_execution_and_answers_failure(world: World) -> None:
    operator = _operator(lambda *a: {})

    def approve(inputs: dict[str, Any], token: str, context: Any) -> dict[str, Any]:
        operator.on_kill()  # what Airflow calls when a user marks the running task failed
        raise KeyboardInterrupt

    operator.callback = approve
    world.messages[TOKEN] = _message()
    with pytest.raises(KeyboardInterrupt):
        operator.execute_complete({"ti": TI()}, _handover())  # type: ignore[arg-type]
    assert world.stopped == [ARN]
    assert world.answers == [("failure", TOKEN, "the Airflow task answering this callback was killed")]
    operator._answering = None
    operator.on_kill()  # not answering anything: nothing to do
    assert world.stopped == [ARN]


def test_other_events_end_the_task_in_the_step_state(world: World) -> None:
    operator = _operator(None)
    result = {"step_name": "approve", "outputs": {"approved": "true"}}
    assert operator.execute_complete({"ti": TI()}, {"status": "success", "result": result}) == result  # type: ignore[arg-type]
    with pytest.raises(AirflowException, match="rejected"):
        operator.execute_complete({"ti": TI()}, {"status": "failed", "reason": "rejected"})  # type: ignore[arg-type]
    assert world.answers == []


def test_only_a_task_with_a_callable_asks_for_the_hand_over() -> None:
    with_callable = _operator(lambda *a: {})
    without = _operator(None)
    assert with_callable.trigger_kwargs()["worker_handover"] is True
    assert without.trigger_kwargs()["worker_handover"] is False
    # start_from_trigger: the scheduler starts the trigger with these kwargs, and the event reaches
    # execute_complete on a worker.
    assert with_callable.start_trigger_args.trigger_kwargs["worker_handover"] is True
    assert with_callable.start_trigger_args.next_method == "execute_complete"
