"""SageMakerPipelineStepTrigger: serialization, shared polling, events, retry, kill and restart semantics."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import Counter
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import boto3
from airflow.triggers.base import TaskFailedEvent, TaskSkippedEvent, TaskSuccessEvent, TriggerEvent
from botocore.exceptions import ClientError

from airflow_provider_smpipe.hooks.pipeline import SageMakerPipelineHook
from airflow_provider_smpipe.triggers import pipeline_step
from airflow_provider_smpipe.triggers.pipeline_step import SageMakerPipelineStepTrigger, active_pollers

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    import pytest

MOTO_CONN_ID = "smpipe_moto"
ARN = "arn:aws:sagemaker:us-east-1:123456789012:pipeline/p/execution/abc123"
JOB_PREFIX = "arn:aws:sagemaker:us-east-1:123456789012:processing-job/"


def _throttle() -> ClientError:
    return ClientError(
        {"Error": {"Code": "ThrottlingException"}, "ResponseMetadata": {"HTTPStatusCode": 400}}, "Op"
    )


class FakeSageMaker:
    """An async SageMaker client whose execution advances one tick per DescribePipelineExecution."""

    def __init__(self, script: Callable[[int], tuple[str, list[dict[str, Any]]]]) -> None:
        self.script = script
        self.tick = 0
        self.calls: Counter[str] = Counter()
        self.throttle: Counter[str] = Counter()
        self.status_override: str | None = None
        self.stop_calls: list[str] = []
        self.retry_tokens: list[str] = []
        self.modified = datetime(2026, 1, 1, tzinfo=UTC)

    def _enter(self, op: str) -> None:
        self.calls[op] += 1
        if self.throttle[op]:
            self.throttle[op] -= 1
            raise _throttle()

    async def describe_pipeline_execution(self, PipelineExecutionArn: str) -> dict[str, Any]:
        self._enter("describe_pipeline_execution")
        self.tick += 1
        status, _ = self.script(self.tick)
        return {
            "PipelineExecutionArn": PipelineExecutionArn,
            "PipelineExecutionStatus": self.status_override or status,
            "FailureReason": "step prep failed" if status == "Failed" else None,
            "LastModifiedTime": self.modified,
        }

    async def list_pipeline_execution_steps(self, **_: Any) -> dict[str, Any]:
        self._enter("list_pipeline_execution_steps")
        return {"PipelineExecutionSteps": self.script(self.tick)[1]}

    async def list_pipeline_executions(self, **_: Any) -> dict[str, Any]:
        self._enter("list_pipeline_executions")
        from airflow_provider_smpipe.executions import RunKey, execution_display_name

        name = execution_display_name(RunKey("dag", "run1", "grp"), 0)
        return {
            "PipelineExecutionSummaries": [
                {"PipelineExecutionArn": ARN, "PipelineExecutionDisplayName": name}
            ]
        }

    async def stop_pipeline_execution(self, PipelineExecutionArn: str, **_: Any) -> dict[str, Any]:
        self._enter("stop_pipeline_execution")
        self.stop_calls.append(PipelineExecutionArn)
        return {}

    async def retry_pipeline_execution(
        self, PipelineExecutionArn: str, ClientRequestToken: str
    ) -> dict[str, Any]:
        self._enter("retry_pipeline_execution")
        if ClientRequestToken not in self.retry_tokens:
            self.retry_tokens.append(ClientRequestToken)
            self.modified += timedelta(seconds=1)
        return {}

    async def describe_processing_job(self, ProcessingJobName: str) -> dict[str, Any]:
        self._enter("describe_processing_job")
        return {
            "ProcessingJobName": ProcessingJobName,
            "ProcessingOutputConfig": {
                "Outputs": [{"OutputName": "train", "S3Output": {"S3Uri": "s3://bucket/prefix/train"}}]
            },
        }


class FakeHook(SageMakerPipelineHook):
    def __init__(self, fake: FakeSageMaker) -> None:
        super().__init__(aws_conn_id="fake", region_name="us-east-1")
        self.fake = fake

        async def no_sleep(_s: float) -> None:
            await asyncio.sleep(0)

        self.async_sleep = no_sleep

    @asynccontextmanager
    async def async_client(self) -> AsyncIterator[Any]:
        yield self.fake


class FakeTI:
    def __init__(self, task_id: str, try_number: int = 1) -> None:
        self.dag_id, self.run_id, self.task_id, self.map_index, self.try_number = (
            "dag",
            "run1",
            task_id,
            -1,
            try_number,
        )


def _step(name: str, status: str, job: str | None = None, **extra: Any) -> dict[str, Any]:
    step: dict[str, Any] = {
        "StepName": name,
        "StepStatus": status,
        "StartTime": datetime(2026, 1, 1, tzinfo=UTC),
    }
    if job:
        step["Metadata"] = {"ProcessingJob": {"Arn": JOB_PREFIX + job}}
    step.update(extra)
    return step


def _trigger(fake: FakeSageMaker, step_name: str = "prep", **kwargs: Any) -> SageMakerPipelineStepTrigger:
    params: dict[str, Any] = {
        "pipeline_name": "p",
        "step_name": step_name,
        "dag_id": "dag",
        "run_id": "run1",
        "group_id": "grp",
        "execution_arn": ARN,
        "aws_conn_id": "fake",
        "region_name": "us-east-1",
        "poll_interval": 0.01,
        "stream_logs": False,
    }
    params.update(kwargs)
    trigger = SageMakerPipelineStepTrigger(**params)
    trigger._pipeline_hook = lambda: FakeHook(fake)  # type: ignore[method-assign]
    # Airflow's structlog logger in production; a stdlib logger here so that caplog sees the lines.
    trigger._log = logging.getLogger("smpipe.test.trigger")
    return trigger


async def _first_event(trigger: SageMakerPipelineStepTrigger) -> TriggerEvent:
    agen = trigger.run()
    try:
        return await asyncio.wait_for(anext(agen), 20)
    finally:
        await agen.aclose()


def test_serialize_round_trip() -> None:
    trigger = SageMakerPipelineStepTrigger(
        pipeline_name="p",
        step_name="prep",
        dag_id="dag",
        run_id="{{ run_id }}",
        group_id="grp",
        execution_arn=None,
        aws_conn_id="aws_default",
        region_name="eu-west-1",
        poll_interval=5,
        end_from_trigger=False,
        stream_logs=True,
        retry_failed_execution=True,
        property_files=[{"name": "metrics", "output_name": "evaluation", "path": "metrics.json"}],
        log_cursor={"job_name": "j", "cursor": {"v": 1, "streams": {"j/algo-1-1": [1, 1]}}},
    )
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_smpipe.triggers.pipeline_step.SageMakerPipelineStepTrigger"
    import json

    json.dumps(kwargs)  # plain JSON
    from airflow.sdk._shared.module_loading import import_string

    rebuilt = import_string(classpath)(**kwargs)
    assert rebuilt.serialize() == (classpath, kwargs)


def _linear_script(
    step_names: list[str], finish_tick: int
) -> Callable[[int], tuple[str, list[dict[str, Any]]]]:
    def script(tick: int) -> tuple[str, list[dict[str, Any]]]:
        done = tick >= finish_tick
        steps = [_step(n, "Succeeded" if done else "Executing", job=f"pipelines-abc-{n}") for n in step_names]
        return ("Succeeded" if done else "Executing"), steps

    return script


def test_many_triggers_share_one_polling_loop() -> None:
    names = [f"s{i}" for i in range(8)]
    fake = FakeSageMaker(_linear_script(names, finish_tick=6))

    async def scenario() -> list[TriggerEvent]:
        triggers = [_trigger(fake, n, end_from_trigger=False) for n in names]
        waiters = [asyncio.create_task(_first_event(t)) for t in triggers]
        await asyncio.sleep(0.005)
        assert active_pollers() == 1
        events = await asyncio.gather(*waiters)
        await asyncio.sleep(0)
        assert active_pollers() == 0  # the last subscriber closed the loop
        return events

    events = asyncio.run(scenario())
    assert all(e.payload["status"] == "success" for e in events)
    # One ListPipelineExecutionSteps + one DescribePipelineExecution per poll, not one per trigger.
    assert fake.calls["list_pipeline_execution_steps"] == fake.calls["describe_pipeline_execution"]
    assert fake.calls["list_pipeline_execution_steps"] <= 6 + 2


def test_success_pushes_the_result_and_links(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.sdk.execution_time.xcom import XCom

    pushed: dict[str, Any] = {}

    async def fake_aset(key: str, value: Any, **ids: Any) -> None:
        assert ids["task_id"] == "grp.prep"
        pushed[key] = value

    monkeypatch.setattr(XCom, "aset", fake_aset)

    def script(tick: int) -> tuple[str, list[dict[str, Any]]]:
        status = "Succeeded" if tick >= 3 else "Executing"
        return status, [_step("prep", "Succeeded" if tick >= 3 else "Executing", job="pipelines-abc-prep")]

    fake = FakeSageMaker(script)
    trigger = _trigger(fake)
    trigger.task_instance = FakeTI("grp.prep")  # type: ignore[assignment]
    caplog.set_level(logging.INFO)
    event = asyncio.run(_first_event(trigger))
    assert isinstance(event, TaskSuccessEvent)
    # Pushed through the Task SDK, not the event (Airflow 3.3.2 double-encodes event XComs).
    assert not event.xcoms
    result = pushed["return_value"]
    assert isinstance(result, dict)
    assert pushed["smpipe_step_job"]["job_name"] == "pipelines-abc-prep"
    assert pushed["smpipe_execution"]["execution_arn"].endswith("/execution/abc123")
    assert result["step_status"] == "Succeeded"
    assert result["job_name"] == "pipelines-abc-prep"
    assert result["outputs"] == {"train": "s3://bucket/prefix/train"}
    assert result["cache_hit"] is False
    assert "step prep: Executing (job pipelines-abc-prep)" in caplog.text
    assert "step prep: Succeeded" in caplog.text


def test_failed_stopped_skipped_events(caplog: pytest.LogCaptureFixture) -> None:
    def script(tick: int) -> tuple[str, list[dict[str, Any]]]:
        return "Failed", [
            _step("prep", "Failed", job="pipelines-abc-prep", FailureReason="AlgorithmError: exit 1"),
            _step("halt", "Stopped"),
        ]

    fake = FakeSageMaker(script)
    caplog.set_level(logging.INFO)
    failed = _trigger(fake, "prep")
    failed.task_instance = FakeTI("grp.prep")  # type: ignore[assignment]
    assert isinstance(asyncio.run(_first_event(failed)), TaskFailedEvent)
    assert "AlgorithmError: exit 1" in caplog.text

    stopped = _trigger(fake, "halt")
    stopped.task_instance = FakeTI("grp.halt")  # type: ignore[assignment]
    assert isinstance(asyncio.run(_first_event(stopped)), TaskFailedEvent)

    skipped = _trigger(fake, "evaluate")
    skipped.task_instance = FakeTI("grp.evaluate")  # type: ignore[assignment]
    assert isinstance(asyncio.run(_first_event(skipped)), TaskSkippedEvent)
    assert "skipped: the execution failed before this step started" in caplog.text

    # Without end_from_trigger (or without a task instance: dags test) a plain event tells the operator.
    plain = asyncio.run(_first_event(_trigger(fake, "prep", end_from_trigger=False)))
    assert plain.payload["status"] == "failed"
    assert "AlgorithmError" in plain.payload["reason"]
    assert plain.payload["result"]["step_status"] == "Failed"
    plain_stopped = asyncio.run(_first_event(_trigger(fake, "halt")))
    assert plain_stopped.payload["status"] == "stopped"
    plain_skipped = asyncio.run(_first_event(_trigger(fake, "evaluate")))
    assert plain_skipped.payload["status"] == "skipped"


def test_cache_hit_and_condition_are_noted(caplog: pytest.LogCaptureFixture) -> None:
    def script(tick: int) -> tuple[str, list[dict[str, Any]]]:
        return "Succeeded", [
            _step(
                "prep",
                "Succeeded",
                job="pipelines-old-prep",
                CacheHitResult={"SourcePipelineExecutionArn": "arn:old"},
            ),
            {"StepName": "check", "StepStatus": "Succeeded", "Metadata": {"Condition": {"Outcome": "False"}}},
        ]

    fake = FakeSageMaker(script)
    caplog.set_level(logging.INFO)
    cached = asyncio.run(_first_event(_trigger(fake, "prep", end_from_trigger=False)))
    assert cached.payload["result"]["cache_hit"] is True
    assert "cache hit, reusing the result of execution arn:old" in caplog.text
    condition = asyncio.run(_first_event(_trigger(fake, "check", end_from_trigger=False)))
    assert condition.payload["result"]["condition_outcome"] == "False"


def test_throttling_never_fails_the_task() -> None:
    fake = FakeSageMaker(_linear_script(["prep"], finish_tick=3))
    fake.throttle["describe_pipeline_execution"] = 3
    fake.throttle["list_pipeline_execution_steps"] = 2
    event = asyncio.run(_first_event(_trigger(fake, end_from_trigger=False)))
    assert event.payload["status"] == "success"


def test_execution_found_by_run_key_when_no_arn() -> None:
    fake = FakeSageMaker(_linear_script(["prep"], finish_tick=2))
    event = asyncio.run(_first_event(_trigger(fake, execution_arn=None, end_from_trigger=False)))
    assert event.payload["status"] == "success"
    assert event.payload["result"]["execution_arn"] == ARN


def test_retry_failed_execution_once_for_all_siblings() -> None:
    def script(tick: int) -> tuple[str, list[dict[str, Any]]]:
        # Failed until retried; then the steps run again and succeed.
        if not fake.retry_tokens:
            return "Failed", [_step("a", "Failed"), _step("b", "Succeeded")]
        if tick < fake_retry_tick[0] + 3:
            return "Executing", [_step("a", "Executing"), _step("b", "Succeeded")]
        return "Succeeded", [_step("a", "Succeeded"), _step("b", "Succeeded")]

    fake = FakeSageMaker(script)
    fake_retry_tick = [0]
    original = fake.retry_pipeline_execution

    async def retry(**kwargs: Any) -> dict[str, Any]:
        fake_retry_tick[0] = fake.tick
        return await original(**kwargs)

    fake.retry_pipeline_execution = retry  # type: ignore[method-assign]

    async def scenario() -> list[TriggerEvent]:
        triggers = [
            _trigger(fake, name, retry_failed_execution="True", end_from_trigger=False)
            for name in ("a", "a", "b")
        ]
        return await asyncio.gather(*(_first_event(t) for t in triggers))

    events = asyncio.run(scenario())
    assert [e.payload["status"] for e in events] == ["success", "success", "success"]
    assert len(fake.retry_tokens) == 1  # one RetryPipelineExecution for the siblings


def test_retry_auto_follows_the_try_number() -> None:
    trigger = _trigger(
        FakeSageMaker(_linear_script(["a"], 1)), retry_failed_execution="auto", dag_id="", run_id=""
    )
    assert trigger._should_retry_execution() is False
    trigger.task_instance = FakeTI("grp.a", try_number=2)  # type: ignore[assignment]
    assert trigger._should_retry_execution() is True
    # Empty ids come from the task instance (start_from_trigger has no rendered run id to pass).
    assert trigger._run_key().run_id == "run1"
    assert trigger._run_key().dag_id == "dag"


def test_on_kill_stops_but_not_when_still_deferred_and_cleanup_never_stops() -> None:
    fake = FakeSageMaker(_linear_script(["prep"], finish_tick=10_000))

    async def scenario() -> None:
        trigger = _trigger(fake)
        trigger.task_instance = FakeTI("grp.prep")  # type: ignore[assignment]
        task = asyncio.create_task(_first_event(trigger))
        await asyncio.sleep(0.05)
        # A triggerer restart cancels the task without a message: nothing is stopped.
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await trigger.cleanup()
        assert fake.stop_calls == []

        async def deferred() -> str:
            return "deferred"

        trigger._ti_state = deferred  # type: ignore[method-assign]
        await trigger.on_kill()  # 3.3 bug: triggerer lost its heartbeat, trigger reassigned
        assert fake.stop_calls == []

        async def failed() -> str:
            return "failed"

        trigger._ti_state = failed  # type: ignore[method-assign]
        fake.throttle["stop_pipeline_execution"] = 1
        await trigger.on_kill()  # the user marked the task failed
        assert fake.stop_calls == [ARN]

        # No way to read the state (no triggerer comms): a user asked, so stop.
        fresh = _trigger(fake)
        await fresh.on_kill()
        assert fake.stop_calls == [ARN, ARN]

    asyncio.run(scenario())


def test_on_kill_after_the_step_ended_elsewhere_does_not_stop_the_execution() -> None:
    """A triggerer that lost its heartbeat recovers after the one that took its trigger over ended the task: the
    task is no longer deferred, but nobody killed it, and the execution's other steps must go on."""
    state = {"prep": "Executing"}
    fake = FakeSageMaker(
        lambda tick: ("Executing", [_step("prep", state["prep"]), _step("train", "Executing")])
    )

    async def ended() -> str:
        return "success"

    async def scenario() -> None:
        trigger = _trigger(fake)
        trigger.task_instance = FakeTI("grp.prep")  # type: ignore[assignment]
        trigger._ti_state = ended  # type: ignore[method-assign]
        state["prep"] = "Succeeded"
        await trigger.on_kill()
        assert fake.stop_calls == []
        # While the step still runs, a task that is no longer deferred was marked by a user: stop.
        state["prep"] = "Executing"
        await trigger.on_kill()
        assert fake.stop_calls == [ARN]

    asyncio.run(scenario())


# --------------------------------------------------------------------------- logs + restart (moto logs)
def test_logs_stream_into_the_task_log_and_survive_a_restart(
    moto_url: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(pipeline_step.LOG_CURSOR_DIR_ENV, str(tmp_path))
    logs = boto3.client("logs", endpoint_url=moto_url, region_name="us-east-1")
    group = "/aws/sagemaker/ProcessingJobs"
    job = f"pipelines-{uuid.uuid4().hex[:8]}-prep"
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_group(logGroupName=group)
    for stream in ("algo-1-1700000000", "algo-2-1700000000"):
        logs.create_log_stream(logGroupName=group, logStreamName=f"{job}/{stream}")
    base = int(time.time() * 1000)

    def put(stream: str, lines: list[tuple[int, str]]) -> None:
        logs.put_log_events(
            logGroupName=group,
            logStreamName=f"{job}/{stream}",
            logEvents=[{"timestamp": base + t, "message": m} for t, m in lines],
        )

    state = {"done": False}

    def script(tick: int) -> tuple[str, list[dict[str, Any]]]:
        status = "Succeeded" if state["done"] else "Executing"
        return status, [_step("prep", status, job=job)]

    fake = FakeSageMaker(script)

    def make() -> SageMakerPipelineStepTrigger:
        trigger = _trigger(fake, stream_logs=True, end_from_trigger=False, aws_conn_id=MOTO_CONN_ID)
        trigger._pipeline_hook = lambda: FakeHook(fake)  # type: ignore[method-assign]
        return trigger

    caplog.set_level(logging.INFO)
    put("algo-1-1700000000", [(0, "one 0"), (2, "one 2")])
    put("algo-2-1700000000", [(1, "two 1")])

    async def first_run() -> None:
        task = asyncio.create_task(_first_event(make()))
        deadline = time.monotonic() + 15
        while "[algo-1] one 2" not in caplog.text and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.1)  # let the cursor be saved after the pass
        task.cancel()  # the triggerer dies
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(first_run())
    assert fake.stop_calls == []
    put("algo-1-1700000000", [(3, "one 3")])
    put("algo-2-1700000000", [(4, "two 4")])
    state["done"] = True

    rebuilt_classpath, _rebuilt_kwargs = make().serialize()
    assert rebuilt_classpath.endswith("SageMakerPipelineStepTrigger")

    async def second_run() -> TriggerEvent:
        return await _first_event(make())

    event = asyncio.run(second_run())
    assert event.payload["status"] == "success"
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("[algo-")]
    assert lines == ["[algo-1] one 0", "[algo-2] two 1", "[algo-1] one 2", "[algo-1] one 3", "[algo-2] two 4"]
    assert event.payload["last_log_lines"] == ["[algo-1] one 3", "[algo-2] two 4"]
