"""SageMakerStepLogsHook against a moto CloudWatch Logs server, and the shared rate limiter."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from typing import Any

import boto3
import pytest

from airflow_provider_smpipe.hooks.step_logs import (
    LogCursor,
    LogEvent,
    SageMakerStepLogsHook,
    instance_label,
)
from airflow_provider_smpipe.ratelimit import AsyncTokenBucket, get_bucket, reset_buckets

MOTO_CONN_ID = "smpipe_moto"
GROUP = "/aws/sagemaker/ProcessingJobs"


@pytest.fixture
def logs(moto_url: str) -> Any:
    return boto3.client("logs", endpoint_url=moto_url, region_name="us-east-1")


@pytest.fixture
def hook(moto_url: str) -> SageMakerStepLogsHook:
    reset_buckets()
    hook = SageMakerStepLogsHook(aws_conn_id=MOTO_CONN_ID)
    hook.page_limit = 2  # several pages per stream
    return hook


def _ensure_group(logs: Any, group: str) -> None:
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_group(logGroupName=group)


def _put(logs: Any, group: str, stream: str, events: list[tuple[int, str]]) -> None:
    _ensure_group(logs, group)
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
    if not events:
        return
    logs.put_log_events(
        logGroupName=group,
        logStreamName=stream,
        logEvents=[{"timestamp": ts, "message": msg} for ts, msg in events],
    )


async def _collect(
    hook: SageMakerStepLogsHook, group: str, job: str, cursor: LogCursor, done: Any, **kw: Any
) -> list[LogEvent]:
    out: list[LogEvent] = []
    async for event in hook.follow_job_logs(
        log_group=group, job_name=job, job_done=done, cursor=cursor, poll_interval=0.05, drain_delay=0, **kw
    ):
        out.append(event)
    return out


def test_instance_label() -> None:
    assert instance_label("job", "job/algo-1-1700000000") == "algo-1"
    assert instance_label("job", "job/algo-12-1700000000") == "algo-12"
    assert instance_label("job", "job/custom") == "custom"


def test_streams_appearing_over_time_interleaved_each_once(logs: Any, hook: SageMakerStepLogsHook) -> None:
    group = f"/aws/sagemaker/ProcessingJobs-{uuid.uuid4().hex[:6]}"  # does not exist yet
    job = f"pipelines-{uuid.uuid4().hex[:8]}-prep"
    base = int(time.time() * 1000)
    done = asyncio.Event()
    idle_cursors: list[dict[str, Any]] = []

    async def on_idle(cursor: LogCursor) -> None:
        idle_cursors.append(cursor.to_dict())

    async def writer() -> None:
        await asyncio.sleep(0.2)  # the group does not exist for a few passes
        await asyncio.to_thread(
            _put, logs, group, f"{job}/algo-1-1700000000", [(base + i * 10, f"a{i}") for i in range(5)]
        )
        await asyncio.sleep(0.2)
        # A second instance appears later; its lines interleave with the first one's by timestamp.
        await asyncio.to_thread(
            _put, logs, group, f"{job}/algo-2-1700000001", [(base + 100 + i * 10, f"b{i}") for i in range(5)]
        )
        more = [(base + 105 + i * 10, f"a{5 + i}") for i in range(5)]
        await asyncio.to_thread(_put, logs, group, f"{job}/algo-1-1700000000", more)
        await asyncio.sleep(0.2)
        # Written right before the job ends: picked up by the final pass.
        await asyncio.to_thread(_put, logs, group, f"{job}/algo-2-1700000001", [(base + 500, "b-last")])
        done.set()

    async def scenario() -> list[LogEvent]:
        cursor = LogCursor()
        results = await asyncio.gather(_collect(hook, group, job, cursor, done, on_idle=on_idle), writer())
        # Every call went through the process-wide rate limiter.
        assert get_bucket(MOTO_CONN_ID, None, "GetLogEvents").acquired > 0
        assert get_bucket(MOTO_CONN_ID, None, "DescribeLogStreams").acquired > 0
        return results[0]

    events = asyncio.run(asyncio.wait_for(scenario(), 30))
    messages = [e.message for e in events]
    expected = {f"a{i}" for i in range(10)} | {f"b{i}" for i in range(5)} | {"b-last"}
    assert sorted(messages) == sorted(expected)
    assert len(messages) == len(set(messages))  # each once
    assert messages[:5] == [f"a{i}" for i in range(5)]  # the first batch, before algo-2 existed
    assert {e.instance for e in events} == {"algo-1", "algo-2"}
    assert messages[-1] == "b-last"
    assert idle_cursors  # the consumer got a chance to persist after every pass
    assert idle_cursors[-1]["streams"][f"{job}/algo-2-1700000001"] == [base + 500, 1]


def test_instances_interleaved_by_timestamp(logs: Any, hook: SageMakerStepLogsHook) -> None:
    job = f"pipelines-{uuid.uuid4().hex[:8]}-multi"
    base = int(time.time() * 1000)
    _put(logs, GROUP, f"{job}/algo-1-1700000000", [(base + t, f"one@{t}") for t in (0, 2, 4, 6, 8)])
    _put(logs, GROUP, f"{job}/algo-2-1700000000", [(base + t, f"two@{t}") for t in (1, 3, 5, 7)])
    _put(logs, GROUP, f"{job}/algo-3-1700000000", [])

    async def scenario() -> list[LogEvent]:
        return await _collect(hook, GROUP, job, LogCursor(), lambda: True)

    events = asyncio.run(scenario())
    assert [e.timestamp - base for e in events] == list(range(9))
    assert [e.instance for e in events][:3] == ["algo-1", "algo-2", "algo-1"]


def test_resume_from_cursor_no_loss_no_duplicates(logs: Any, hook: SageMakerStepLogsHook) -> None:
    job = f"pipelines-{uuid.uuid4().hex[:8]}-train"
    base = int(time.time() * 1000)
    # Several events share a timestamp, right where the first watcher stops.
    a = [(base, "a0"), (base + 1, "a1"), (base + 1, "a2"), (base + 1, "a3"), (base + 2, "a4")]
    a.append((base + 3, "a5"))
    b = [(base + 1, "b0"), (base + 1, "b1"), (base + 4, "b2")]
    _put(logs, GROUP, f"{job}/algo-1-1700000000", a)
    _put(logs, GROUP, f"{job}/algo-2-1700000000", b)

    async def first_watcher() -> tuple[list[str], dict[str, Any]]:
        cursor = LogCursor()
        seen: list[str] = []
        agen = hook.follow_job_logs(
            log_group=GROUP, job_name=job, job_done=lambda: False, cursor=cursor, poll_interval=0.05
        )
        async for event in agen:
            seen.append(event.message)
            if len(seen) == 4:  # the triggerer dies here
                break
        await agen.aclose()
        return seen, cursor.to_dict()

    seen, saved = asyncio.run(first_watcher())
    assert len(seen) == 4

    # More lines arrive while no trigger runs.
    _put(logs, GROUP, f"{job}/algo-1-1700000000", [(base + 10, "a6")])

    async def second_watcher() -> list[str]:
        cursor = LogCursor.from_dict(saved)
        events = await _collect(hook, GROUP, job, cursor, lambda: True)
        return [e.message for e in events]

    rest = asyncio.run(second_watcher())
    everything = [m for _, m in a] + [m for _, m in b] + ["a6"]
    assert sorted(seen + rest) == sorted(everything)
    assert len(seen + rest) == len(everything)


def test_missing_group_and_done_job_ends(hook: SageMakerStepLogsHook) -> None:
    async def scenario() -> list[LogEvent]:
        return await _collect(hook, "/aws/sagemaker/NoSuchGroup", "job-x", LogCursor(), lambda: True)

    started = time.monotonic()
    assert asyncio.run(scenario()) == []
    assert time.monotonic() - started < 10


def test_cursor_round_trip() -> None:
    cursor = LogCursor.from_dict({"v": 1, "streams": {"j/algo-1-1": [5, 2]}})
    assert cursor.to_dict() == {"v": 1, "streams": {"j/algo-1-1": [5, 2]}}
    assert LogCursor.from_dict(None).streams == {}
    assert LogCursor.from_dict({"streams": {"x": "garbage"}}).streams == {}
    copy = cursor.copy()
    copy.streams["j/algo-1-1"].advance(6)
    assert cursor.streams["j/algo-1-1"].ts == 5


def test_token_bucket_limits_rate() -> None:
    async def scenario() -> float:
        bucket = AsyncTokenBucket(rate=50, burst=1)
        started = time.monotonic()
        await asyncio.gather(*(bucket.acquire() for _ in range(11)))
        assert bucket.acquired == 11
        return time.monotonic() - started

    elapsed = asyncio.run(scenario())
    assert 0.17 <= elapsed < 2.0


def test_buckets_are_shared_per_connection_region_and_api() -> None:
    async def scenario() -> None:
        reset_buckets()
        a = get_bucket("conn", "eu-west-1", "GetLogEvents")
        assert get_bucket("conn", "eu-west-1", "GetLogEvents") is a
        assert get_bucket("conn", "us-east-1", "GetLogEvents") is not a
        assert get_bucket("other", "eu-west-1", "GetLogEvents") is not a
        assert get_bucket("conn", "eu-west-1", "DescribeLogStreams") is not a
        assert get_bucket("conn", "eu-west-1", "FilterLogEvents").rate < 5

    asyncio.run(scenario())
