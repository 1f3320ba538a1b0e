"""One polling loop per pipeline execution, shared by every step trigger of the event loop that watches it."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from airflow_provider_smpipe.executions import ExecutionSnapshot
from airflow_provider_smpipe.ratelimit import backoff_delay, is_transient_error

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from airflow_provider_smpipe.hooks.pipeline import SageMakerPipelineHook

log = logging.getLogger(__name__)


class _ExecutionPoller:
    """One polling loop for one execution, shared by every subscribed trigger of the event loop."""

    def __init__(self, key: tuple[Any, ...], hook: SageMakerPipelineHook, arn: str, interval: float) -> None:
        self.key = key
        self.hook = hook
        self.arn = arn
        self.interval = interval
        self.refcount = 0
        self.seq = 0
        self.snapshot: ExecutionSnapshot | None = None
        self.error: BaseException | None = None
        self._published = asyncio.Event()
        self._wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        # A fresh context: the poller's own log lines must not land in the log of whichever trigger
        # happened to create it (the triggerer routes records by context variables).
        self.task = asyncio.get_running_loop().create_task(
            self._run(), name=f"smpipe-poll {self.arn}", context=contextvars.Context()
        )

    def _publish(self, snapshot: ExecutionSnapshot | None, error: BaseException | None) -> None:
        self.seq += 1
        if snapshot is not None:
            snapshot.seq = self.seq
        self.snapshot, self.error = snapshot, error
        published, self._published = self._published, asyncio.Event()
        published.set()

    async def _sleep(self, seconds: float) -> None:
        # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that arrives while
        # the inner wait completes, and the poller would never stop.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._wake.wait()
        self._wake.clear()

    async def _run(self) -> None:
        failures = 0
        while True:
            try:
                async with self.hook.async_client() as client:
                    while True:
                        execution = await self.hook.async_describe_execution(self.arn, client=client)
                        steps = await self.hook.async_list_execution_steps(self.arn, client=client)
                        self._publish(ExecutionSnapshot(execution=execution, steps=steps), None)
                        failures = 0
                        await self._sleep(self.interval)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                if is_transient_error(exc):
                    delay = max(self.interval, backoff_delay(failures, base=2.0, cap=120.0))
                    log.warning(
                        "Polling execution %s failed transiently (%s); retrying in %.0f s",
                        self.arn,
                        exc,
                        delay,
                    )
                else:
                    delay = max(self.interval, 30.0)
                    log.error("Polling execution %s failed: %s", self.arn, exc)
                    self._publish(None, exc)
                await self._sleep(delay)

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            # Bounded: the caller is a trigger finishing; it must not hang on the poller.
            await asyncio.wait({self.task}, timeout=5)


class ExecutionSubscription:
    """
    A trigger's view of a shared :class:`_ExecutionPoller`.

    :param poller: The shared poller.
    """

    def __init__(self, poller: _ExecutionPoller) -> None:
        self._poller = poller
        self._seen = 0

    async def next_snapshot(self) -> ExecutionSnapshot:
        """Wait for a snapshot newer than the last one returned; raise the poller's non-transient error."""
        while self._poller.seq <= self._seen:
            await self._poller._published.wait()
        self._seen = self._poller.seq
        if self._poller.error is not None:
            raise self._poller.error
        assert self._poller.snapshot is not None
        return self._poller.snapshot

    def refresh(self) -> None:
        """Ask the poller to poll now (after a retry, for example)."""
        self._poller._wake.set()


_POLLERS: dict[tuple[Any, ...], _ExecutionPoller] = {}


@asynccontextmanager
async def subscribe_execution(
    hook: SageMakerPipelineHook, execution_arn: str, poll_interval: float
) -> AsyncIterator[ExecutionSubscription]:
    """
    Subscribe to the process-wide polling loop of one execution (created on first use, ref-counted).

    One DescribePipelineExecution and one ListPipelineExecutionSteps (all pages) per interval per execution,
    however many step triggers watch it; the interval is the smallest any subscriber asked for.

    :param hook: The pipeline hook (its connection id and region are part of the key).
    :param execution_arn: The pipeline execution ARN.
    :param poll_interval: Seconds between polls.
    """
    key = (id(asyncio.get_running_loop()), hook.aws_conn_id, hook._region_name, execution_arn)
    poller = _POLLERS.get(key)
    if poller is None:
        poller = _POLLERS[key] = _ExecutionPoller(key, hook, execution_arn, poll_interval)
        poller.start()
    else:
        poller.interval = min(poller.interval, poll_interval)
    poller.refcount += 1
    try:
        yield ExecutionSubscription(poller)
    finally:
        poller.refcount -= 1
        if poller.refcount <= 0 and _POLLERS.get(key) is poller:
            del _POLLERS[key]
            await poller.stop()


def active_pollers() -> int:
    """Return how many shared polling loops run (tests, metrics)."""
    return len(_POLLERS)
