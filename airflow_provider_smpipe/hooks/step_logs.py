"""Follow SageMaker job logs in CloudWatch: all instances interleaved by timestamp, each line once."""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
from botocore.exceptions import ClientError

from airflow_provider_smpipe.hooks.async_clients import shared_async_client
from airflow_provider_smpipe.hooks.pipeline import with_default_retries
from airflow_provider_smpipe.ratelimit import acall_with_backoff, error_code, get_bucket

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    from botocore.config import Config

_STREAM_SUFFIX = re.compile(r"-\d{9,}$")


@dataclass(frozen=True)
class LogEvent:
    """
    One log line of one job instance.

    :param timestamp: Event time in milliseconds since the epoch.
    :param message: The line, without its trailing newline.
    :param stream: The CloudWatch log stream name.
    :param instance: A short instance label derived from the stream (``algo-1``).
    :param ingestion_time: CloudWatch ingestion time in milliseconds, when known.
    """

    timestamp: int
    message: str
    stream: str
    instance: str
    ingestion_time: int | None = None


@dataclass
class StreamPosition:
    """
    What was already delivered from one stream: the last timestamp and how many events carried it.

    :param ts: Timestamp (ms) of the last delivered event, -1 when nothing was delivered.
    :param n: Number of delivered events with timestamp ``ts``.
    """

    ts: int = -1
    n: int = 0

    def advance(self, timestamp: int) -> None:
        """
        Record one delivered event.

        :param timestamp: The event's timestamp.
        """
        if timestamp == self.ts:
            self.n += 1
        elif timestamp > self.ts:
            self.ts, self.n = timestamp, 1
        # An older event (out-of-order writer) leaves the position as it is.


@dataclass
class LogCursor:
    """
    A serializable resume point for :meth:`SageMakerStepLogsHook.follow_job_logs`.

    Per stream, the last delivered timestamp and the number of delivered events at that timestamp: resuming
    asks GetLogEvents for events from that timestamp on and drops the ``n`` already delivered ones, so nothing
    is lost and nothing is repeated (as long as each stream's timestamps do not go backwards, which holds for
    SageMaker containers' stdout/stderr).

    :param streams: Stream name -> position.
    """

    streams: dict[str, StreamPosition] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return plain JSON data."""
        return {"v": 1, "streams": {name: [p.ts, p.n] for name, p in sorted(self.streams.items())}}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> LogCursor:
        """
        Rebuild a cursor from :meth:`to_dict` output (None or garbage gives an empty cursor).

        :param data: Plain JSON data.
        """
        streams: dict[str, StreamPosition] = {}
        for name, value in ((data or {}).get("streams") or {}).items():
            if isinstance(value, list | tuple) and len(value) == 2:
                streams[str(name)] = StreamPosition(int(value[0]), int(value[1]))
        return cls(streams)

    def copy(self) -> LogCursor:
        """Return an independent copy."""
        return LogCursor({k: StreamPosition(v.ts, v.n) for k, v in self.streams.items()})


def instance_label(job_name: str, stream_name: str) -> str:
    """
    Return ``algo-1`` for ``<job>/algo-1-1700000000``.

    :param job_name: The job name.
    :param stream_name: The log stream name.
    """
    rest = stream_name[len(job_name) + 1 :] if stream_name.startswith(job_name + "/") else stream_name
    return _STREAM_SUFFIX.sub("", rest) or rest


@dataclass
class _Stream:
    name: str
    instance: str
    position: StreamPosition
    token: str | None = None
    # When resuming from a cursor: drop events older than skip_ts and the first skip_n events at skip_ts.
    resuming: bool = False
    skip_ts: int = -1
    skip_n: int = 0

    @classmethod
    def create(cls, name: str, instance: str, position: StreamPosition) -> _Stream:
        resuming = position.ts >= 0
        return cls(name, instance, position, resuming=resuming, skip_ts=position.ts, skip_n=position.n)

    def already_delivered(self, timestamp: int) -> bool:
        if not self.resuming:
            return False
        if timestamp < self.skip_ts:
            return True
        if timestamp == self.skip_ts and self.skip_n > 0:
            self.skip_n -= 1
            return True
        self.resuming = False
        return False


JobDone: TypeAlias = "Callable[[], bool] | asyncio.Event"


def _is_done(job_done: JobDone) -> bool:
    return job_done.is_set() if isinstance(job_done, asyncio.Event) else bool(job_done())


class SageMakerStepLogsHook(AwsBaseHook):
    """
    Follow SageMaker job logs in CloudWatch Logs through aiobotocore, under process-wide rate limits.

    Additional arguments (such as ``aws_conn_id``) may be specified and are passed down to the underlying
    AwsBaseHook.

    .. seealso::
        - :class:`airflow.providers.amazon.aws.hooks.base_aws.AwsBaseHook`
    """

    #: GetLogEvents pages read from one stream in one pass before moving on to the other streams.
    max_pages_per_pass = 20

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["client_type"] = "logs"
        super().__init__(*args, **kwargs)
        self.max_attempts: int | None = 8
        #: GetLogEvents ``limit`` (None: the service default of up to 10,000 events or 1 MB).
        self.page_limit: int | None = None
        self.sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep

    def _get_config(self, config: Config | None = None) -> Config:
        """Add standard-mode retries unless the hook or the connection configured retries."""
        return with_default_retries(super()._get_config(config))

    async def _call(self, client: Any, operation: str, api: str, **kwargs: Any) -> dict[str, Any]:
        method = getattr(client, operation)

        async def once() -> dict[str, Any]:
            return await method(**kwargs)

        return await acall_with_backoff(
            once,
            op_name=api,
            max_attempts=self.max_attempts,
            bucket=get_bucket(self.aws_conn_id, self._region_name, api),
            sleep=self.sleep,
        )

    async def _discover(self, client: Any, log_group: str, job_name: str) -> list[str]:
        names: list[str] = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"logGroupName": log_group, "logStreamNamePrefix": f"{job_name}/"}
            if token:
                kwargs["nextToken"] = token
            try:
                page = await self._call(client, "describe_log_streams", "DescribeLogStreams", **kwargs)
            except ClientError as exc:
                if error_code(exc) == "ResourceNotFoundException":
                    return names  # the log group does not exist yet: nothing yet
                raise
            names.extend(s["logStreamName"] for s in page.get("logStreams", []))
            token = page.get("nextToken")
            if not token:
                return sorted(names)

    async def _drain(self, client: Any, log_group: str, stream: _Stream) -> list[LogEvent]:
        """Read every new event of one stream (up to ``max_pages_per_pass`` pages), in stream order."""
        events: list[LogEvent] = []
        for _ in range(self.max_pages_per_pass):
            kwargs: dict[str, Any] = {
                "logGroupName": log_group,
                "logStreamName": stream.name,
                "startFromHead": True,
            }
            if self.page_limit:
                kwargs["limit"] = self.page_limit
            if stream.skip_ts >= 0:
                # Resumed streams keep sending startTime with the token, as the amazon provider's
                # AwsLogsHook does (moto's tokens are even relative to the filtered events).
                kwargs["startTime"] = stream.skip_ts
            if stream.token:
                kwargs["nextToken"] = stream.token
            try:
                page = await self._call(client, "get_log_events", "GetLogEvents", **kwargs)
            except ClientError as exc:
                if error_code(exc) == "ResourceNotFoundException":
                    return events
                raise
            for raw in page.get("events", []):
                timestamp = int(raw.get("timestamp", 0))
                if stream.already_delivered(timestamp):
                    continue
                events.append(
                    LogEvent(
                        timestamp=timestamp,
                        message=str(raw.get("message", "")).rstrip("\n"),
                        stream=stream.name,
                        instance=stream.instance,
                        ingestion_time=raw.get("ingestionTime"),
                    )
                )
            new_token = page.get("nextForwardToken")
            unchanged = new_token is None or new_token == stream.token
            stream.token = new_token or stream.token
            if unchanged:
                break
        return events

    async def follow_job_logs(
        self,
        *,
        log_group: str,
        job_name: str,
        job_done: JobDone,
        cursor: LogCursor | None = None,
        poll_interval: float = 10.0,
        drain_delay: float | None = None,
        on_idle: Callable[[LogCursor], Awaitable[None]] | None = None,
        may_emit: Callable[[], Awaitable[bool]] | None = None,
    ) -> AsyncIterator[LogEvent]:
        """
        Yield the job's log events as they arrive, all instances interleaved by timestamp, each event once.

        Streams ``<job_name>/...`` are discovered as they appear (the log group may not exist yet). Each pass
        reads every stream to its current end (GetLogEvents with startFromHead and forward tokens; an
        unchanged token means "end for now") and yields the pass's events merged by timestamp. The iterator
        ends once ``job_done`` is true and a pass that started after that (waiting ``drain_delay`` for
        CloudWatch ingestion) found nothing new.

        ``cursor`` is updated in place just before each event is yielded, so after the consumer handled an
        event the cursor covers it; :meth:`LogCursor.to_dict` is the resume point for a rebuilt trigger.

        :param log_group: The CloudWatch log group (``/aws/sagemaker/ProcessingJobs``...).
        :param job_name: The SageMaker job name.
        :param job_done: True (or set) once the job has ended.
        :param cursor: Where to resume; a new empty cursor when None.
        :param poll_interval: Seconds between passes while the job runs.
        :param drain_delay: Seconds to wait after the job ended before the final pass (default: up to 5 s).
        :param on_idle: Awaited with the cursor after every pass whose events were all handled (persist it).
        :param may_emit: Awaited before a pass's events are yielded; False ends the iterator without yielding them
            (another reader took the job's lines over).
        """
        cursor = cursor if cursor is not None else LogCursor()
        delay = min(poll_interval, 5.0) if drain_delay is None else drain_delay
        streams: dict[str, _Stream] = {}
        client = await shared_async_client(self)
        final_passes = 0
        while True:
            done_at_start = _is_done(job_done)
            if done_at_start and final_passes == 0 and delay > 0:
                await self.sleep(delay)
            for name in await self._discover(client, log_group, job_name):
                if name not in streams:
                    position = cursor.streams.setdefault(name, StreamPosition())
                    streams[name] = _Stream.create(name, instance_label(job_name, name), position)
            per_stream = [await self._drain(client, log_group, s) for s in streams.values()]
            if may_emit is not None and any(per_stream) and not await may_emit():
                return
            found = 0
            for event in heapq.merge(*per_stream, key=lambda e: e.timestamp):
                streams[event.stream].position.advance(event.timestamp)
                found += 1
                yield event
            if on_idle is not None:
                await on_idle(cursor)
            if done_at_start:
                final_passes += 1
                # End after a quiet pass; a pass that still found lines gets one more (max 3).
                if found == 0 or final_passes >= 3:
                    return
                continue
            await _wait(job_done, poll_interval, self.sleep)


async def _wait(job_done: JobDone, timeout: float, sleep: Callable[[float], Awaitable[Any]]) -> None:
    """Sleep ``timeout`` seconds, waking early when ``job_done`` is an Event that gets set."""
    if isinstance(job_done, asyncio.Event):
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await job_done.wait()
        return
    await sleep(timeout)
