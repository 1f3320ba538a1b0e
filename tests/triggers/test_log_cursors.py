"""The XCom log cursor names its reader: a trigger that another triggerer took over stops showing job lines.

Airflow runs a trigger twice for a while when its triggerer lost its heartbeat (another triggerer took the trigger
over) and then recovers: until the recovered triggerer cancels its copy, both follow the same job. The later
reader's claim in the XCom cursor makes the earlier one stop before it shows a line the new one shows.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from typing import Any

import boto3
import pytest
from test_pipeline_step_trigger import (
    MOTO_CONN_ID,
    FakeHook,
    FakeSageMaker,
    FakeTI,
    _first_event,
    _step,
    _trigger,
)

from airflow_provider_smpipe.triggers import pipeline_step
from airflow_provider_smpipe.triggers.log_cursors import LOG_CURSOR_XCOM_KEY, XComLogCursorStore


@pytest.fixture
def xcoms(monkeypatch: pytest.MonkeyPatch) -> dict[tuple[Any, ...], Any]:
    """The Task SDK's XCom calls, served from a dict (values JSON round-tripped, as the API stores them)."""
    from airflow.sdk.execution_time.xcom import XCom

    stored: dict[tuple[Any, ...], Any] = {}

    def key_of(key: str, ids: dict[str, Any]) -> tuple[Any, ...]:
        return (key, ids["dag_id"], ids["run_id"], ids["task_id"], ids["map_index"])

    async def aget_one(*, key: str, **ids: Any) -> Any:
        await asyncio.sleep(0)
        return json.loads(stored[key_of(key, ids)]) if key_of(key, ids) in stored else None

    async def aset(key: str, value: Any, **ids: Any) -> None:
        await asyncio.sleep(0)
        stored[key_of(key, ids)] = json.dumps(value)

    monkeypatch.setattr(XCom, "aget_one", aget_one)
    monkeypatch.setattr(XCom, "aset", aset)
    return stored


def _store(claimed_at: float, try_number: int = 1) -> XComLogCursorStore:
    store = XComLogCursorStore(
        dag_id="dag", run_id="run1", task_id="prep", map_index=-1, try_number=try_number
    )
    store.claimed_at = claimed_at
    return store


def test_a_later_reader_takes_the_job_over(xcoms: dict[tuple[Any, ...], Any]) -> None:
    async def scenario() -> None:
        first, second = _store(100.0), _store(200.0)
        await first.save("job", {"v": 1, "streams": {"s": [5, 1]}})
        assert await first.owned("job")
        assert await second.load("job") == {"v": 1, "streams": {"s": [5, 1]}}
        await second.save("job", {"v": 1, "streams": {"s": [5, 1]}})  # the claim
        assert not await first.owned("job")
        assert await second.owned("job")

    asyncio.run(scenario())


def test_a_late_write_of_the_earlier_reader_does_not_take_the_job_back(
    xcoms: dict[tuple[Any, ...], Any],
) -> None:
    async def scenario() -> None:
        first, second = _store(100.0), _store(200.0)
        await first.save("job", {"v": 1, "streams": {"s": [5, 1]}})
        await second.save("job", {"v": 1, "streams": {"s": [9, 2]}})
        # The earlier reader's triggerer was stalled: its save arrives after the claim.
        await first.save("job", {"v": 1, "streams": {"s": [7, 1]}})
        assert await second.owned("job")  # and it claims again, with its own cursor
        assert await second.load("job") == {"v": 1, "streams": {"s": [9, 2]}}
        assert not await first.owned("job")

    asyncio.run(scenario())


def test_other_tries_jobs_and_unnamed_records_never_take_over(xcoms: dict[tuple[Any, ...], Any]) -> None:
    async def scenario() -> None:
        reader = _store(100.0)
        assert await reader.owned("job")  # nothing saved yet
        await _store(200.0, try_number=2).save("job", {"v": 1, "streams": {}})
        assert await reader.owned("job") and await reader.load("job") is None
        await _store(300.0).save("other-job", {"v": 1, "streams": {}})
        assert await reader.owned("job")
        key = next(iter(xcoms))
        xcoms[key] = json.dumps({"job_name": "job", "try_number": 1, "cursor": {"v": 1, "streams": {}}})
        assert await reader.owned("job")  # written before readers had names

    asyncio.run(scenario())


def test_a_trigger_taken_over_stops_showing_lines_and_each_line_is_shown_once(
    moto_url: str,
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    xcoms: dict[tuple[Any, ...], Any],
) -> None:
    monkeypatch.setenv(pipeline_step.LOG_CURSOR_DIR_ENV, str(tmp_path))
    logs = boto3.client("logs", endpoint_url=moto_url, region_name="us-east-1")
    group = "/aws/sagemaker/ProcessingJobs"
    job = f"pipelines-{uuid.uuid4().hex[:8]}-prep"
    stream = f"{job}/algo-1-1700000000"
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    base = int(time.time() * 1000)

    def put(first: int, last: int) -> None:
        events = [{"timestamp": base + i, "message": f"line {i}"} for i in range(first, last + 1)]
        logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)

    state = {"done": False}
    fake = FakeSageMaker(
        lambda tick: (
            "Succeeded" if state["done"] else "Executing",
            [_step("prep", "Succeeded" if state["done"] else "Executing", job=job)],
        )
    )

    def make(name: str) -> pipeline_step.SageMakerPipelineStepTrigger:
        trigger = _trigger(fake, stream_logs=True, end_from_trigger=False, aws_conn_id=MOTO_CONN_ID)
        trigger._pipeline_hook = lambda: FakeHook(fake)  # type: ignore[method-assign]
        trigger._log = logging.getLogger(f"smpipe.test.{name}")
        trigger.task_instance = FakeTI("prep")  # type: ignore[assignment]
        return trigger

    def shown(name: str) -> list[str]:
        return [r.getMessage() for r in caplog.records if r.name == f"smpipe.test.{name}"]

    async def until(condition: Any) -> None:
        deadline = time.monotonic() + 15
        while not condition():
            assert time.monotonic() < deadline, caplog.text
            await asyncio.sleep(0.02)

    def saved_position() -> int:
        record = json.loads(next(iter(v for k, v in xcoms.items() if k[0] == LOG_CURSOR_XCOM_KEY)))
        return int(record["cursor"]["streams"].get(stream, [-1, 0])[0]) - base

    caplog.set_level(logging.INFO)
    put(0, 2)

    async def scenario() -> list[Any]:
        # The first triggerer's trigger shows lines 0-2 and saves its cursor.
        first = asyncio.create_task(_first_event(make("first")))
        await until(lambda: "[algo-1] line 2" in shown("first") and saved_position() == 2)
        # Another triggerer took the trigger over (the first one lost its heartbeat but keeps running).
        second = asyncio.create_task(_first_event(make("second")))
        await until(lambda: any(m.startswith("Resuming the logs") for m in shown("second")))
        put(3, 5)
        await until(lambda: "[algo-1] line 5" in shown("second"))
        await until(lambda: any("took the logs" in m for m in shown("first")))
        state["done"] = True
        return list(await asyncio.gather(first, second))

    events = asyncio.run(scenario())
    assert [event.payload["status"] for event in events] == ["success", "success"]
    first_lines = [m for m in shown("first") if m.startswith("[algo-1]")]
    second_lines = [m for m in shown("second") if m.startswith("[algo-1]")]
    assert first_lines == [f"[algo-1] line {i}" for i in range(3)]
    assert second_lines == [f"[algo-1] line {i}" for i in range(3, 6)]
