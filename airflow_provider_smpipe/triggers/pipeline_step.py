"""Deferrable trigger that mirrors one step of a SageMaker pipeline execution into one Airflow task.

Many step tasks of one execution share one polling loop per triggerer (:func:`subscribe_execution`); each
trigger streams its own step job's CloudWatch logs into its task log and ends the task from the triggerer.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from typing import Any

from airflow.providers.amazon.aws.links.base_aws import BaseAwsLink
from airflow.triggers.base import (
    BaseTrigger,
    TaskFailedEvent,
    TaskSkippedEvent,
    TaskSuccessEvent,
    TriggerEvent,
)

from airflow_provider_smpipe.executions import RunKey, StepPhase, StepState, find_step
from airflow_provider_smpipe.hooks.pipeline import ExecutionNotFoundError, SageMakerPipelineHook
from airflow_provider_smpipe.hooks.step_logs import LogCursor, SageMakerStepLogsHook
from airflow_provider_smpipe.ratelimit import is_transient_error
from airflow_provider_smpipe.triggers.log_cursors import (
    LOG_CURSOR_DIR_ENV,
    LOG_CURSOR_XCOM_KEY,
    FileLogCursorStore,
    LogCursorStore,
    XComLogCursorStore,
    _FallbackCursorStore,
    default_cursor_dir,
)
from airflow_provider_smpipe.triggers.polling import active_pollers, subscribe_execution
from airflow_provider_smpipe.triggers.step_kinds.base import JobRef, StepView, kind_of

__all__ = [
    "LOG_CURSOR_DIR_ENV",
    "LOG_CURSOR_XCOM_KEY",
    "SageMakerPipelineStepTrigger",
    "active_pollers",
    "subscribe_execution",
]

log = logging.getLogger(__name__)
#: Log lines kept for the failure report.
LAST_LOG_LINES = 30


def _as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes", "on"}
    return bool(value)


def _iso(value: Any) -> str | None:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value) if value else None


# --------------------------------------------------------------------------------------------- trigger
class SageMakerPipelineStepTrigger(BaseTrigger):
    """
    Wait for one step of a SageMaker pipeline execution, stream its job's logs, and end the task.

    :param pipeline_name: The pipeline name.
    :param step_name: The SageMaker step name.
    :param dag_id: DAG id of the run key; empty: the task instance's.
    :param run_id: Run id of the run key; empty: the task instance's (what start_from_trigger needs).
    :param group_id: Task group id of the run key.
    :param execution_arn: The execution ARN; None finds the run key's latest execution.
    :param aws_conn_id: The Airflow AWS connection id.
    :param region_name: AWS region.
    :param poll_interval: Seconds between polls of the execution and of the log streams.
    :param end_from_trigger: End the task in the triggerer (TaskSuccessEvent, TaskFailedEvent,
        TaskSkippedEvent); False yields a plain TriggerEvent for the operator's ``execute_complete``.
    :param stream_logs: Stream the step job's CloudWatch logs into the task log.
    :param retry_failed_execution: Retry the execution once if it failed (set when the task's try_number > 1;
        ``"auto"`` decides from the task instance's try number, for start_from_trigger).
    :param property_files: ``[{"name", "output_name", "path"}]`` JSON files to read into the result.
    :param log_cursor: Initial log cursor ``{"job_name", "cursor"}`` (used when no saved cursor exists).
    :param find_timeout: Seconds to wait for the run key's execution to appear when ``execution_arn`` is None.
    :param worker_handover: Hand the task over to a worker (a plain event ``{"status": "handover", ...}`` for
        the operator's ``execute_complete``) when the running step needs work the task does there, such as a
        callback step waiting for the answer the task computes (see ``StepKindRuntime.handover``).
    """

    def __init__(
        self,
        *,
        pipeline_name: str,
        step_name: str,
        dag_id: str,
        run_id: str,
        group_id: str,
        execution_arn: str | None = None,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        poll_interval: float = 10,
        end_from_trigger: bool = True,
        stream_logs: bool = True,
        retry_failed_execution: bool | str = False,
        property_files: list[dict[str, str]] | None = None,
        log_cursor: dict[str, Any] | None = None,
        find_timeout: float = 600,
        worker_handover: bool = False,
    ) -> None:
        super().__init__()
        self.pipeline_name = pipeline_name
        self.step_name = step_name
        self.dag_id = dag_id
        self.run_id = run_id
        self.group_id = group_id
        self.execution_arn = execution_arn
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name
        self.poll_interval = poll_interval
        self.end_from_trigger = end_from_trigger
        self.stream_logs = stream_logs
        self.retry_failed_execution = retry_failed_execution
        self.property_files = property_files
        self.log_cursor = log_cursor
        self.find_timeout = find_timeout
        self.worker_handover = worker_handover
        # Runtime state (never serialized).
        self._resolved_arn: str | None = None
        self._last_lines: collections.deque[str] = collections.deque(maxlen=LAST_LOG_LINES)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Return the classpath and plain-JSON kwargs that rebuild this trigger."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "pipeline_name": self.pipeline_name,
                "step_name": self.step_name,
                "dag_id": self.dag_id,
                "run_id": self.run_id,
                "group_id": self.group_id,
                "execution_arn": self.execution_arn,
                "aws_conn_id": self.aws_conn_id,
                "region_name": self.region_name,
                "poll_interval": self.poll_interval,
                "end_from_trigger": self.end_from_trigger,
                "stream_logs": self.stream_logs,
                "retry_failed_execution": self.retry_failed_execution,
                "property_files": self.property_files,
                "log_cursor": self.log_cursor,
                "find_timeout": self.find_timeout,
                "worker_handover": self.worker_handover,
            },
        )

    # ------------------------------------------------------------------------------------------ helpers
    def _pipeline_hook(self) -> SageMakerPipelineHook:
        return SageMakerPipelineHook(aws_conn_id=self.aws_conn_id, region_name=self.region_name)

    def _logs_hook(self) -> SageMakerStepLogsHook:
        return SageMakerStepLogsHook(aws_conn_id=self.aws_conn_id, region_name=self.region_name)

    def _ti_attr(self, name: str) -> Any:
        return getattr(self.task_instance, name, None) if self.task_instance is not None else None

    def _run_key(self) -> RunKey:
        return RunKey(
            dag_id=self.dag_id or self._ti_attr("dag_id"),
            run_id=self.run_id or self._ti_attr("run_id"),
            group_id=self.group_id,
        )

    @property
    def _interval(self) -> float:
        return max(0.01, float(self.poll_interval))

    def _cursor_store(self, execution_arn: str) -> LogCursorStore:
        try_number = int(self._ti_attr("try_number") or 0)
        scope = f"{execution_arn}\0{self.step_name}\0{try_number}"
        file_store = FileLogCursorStore(default_cursor_dir(), scope)
        ti = self.task_instance
        if ti is None:
            return file_store
        xcom_store = XComLogCursorStore(
            dag_id=ti.dag_id,
            run_id=ti.run_id,
            task_id=ti.task_id,
            map_index=int(getattr(ti, "map_index", -1) if getattr(ti, "map_index", None) is not None else -1),
            try_number=try_number,
        )
        return _FallbackCursorStore(xcom_store, file_store, self.log)

    def _should_retry_execution(self) -> bool:
        value = self.retry_failed_execution
        if isinstance(value, str) and value.strip().lower() == "auto":
            # start_from_trigger: kwargs are fixed at scheduling time, the try number is not.
            return int(self._ti_attr("try_number") or 1) > 1
        return _as_bool(value)

    async def _find_execution(self, hook: SageMakerPipelineHook) -> str:
        key = self._run_key()
        deadline = time.monotonic() + float(self.find_timeout)
        while True:
            try:
                found = await hook.async_find_execution(self.pipeline_name, key)
            except Exception as exc:
                if not is_transient_error(exc):
                    raise
                self.log.warning("Looking up the execution failed transiently: %s", exc)
                found = None
            if found is not None:
                self.log.info(
                    "Found execution %s (%s, generation %s) of run %s",
                    found["PipelineExecutionArn"],
                    found.get("PipelineExecutionDisplayName"),
                    found.get("generation"),
                    key.run_id,
                )
                return str(found["PipelineExecutionArn"])
            if time.monotonic() >= deadline:
                raise ExecutionNotFoundError(
                    f"No execution of pipeline {self.pipeline_name!r} belongs to DAG {key.dag_id!r}, run "
                    f"{key.run_id!r}, group {key.group_id!r} after {float(self.find_timeout):.0f} s: did the "
                    "launch task run?"
                )
            await asyncio.sleep(self._interval)

    async def _maybe_retry(self, hook: SageMakerPipelineHook, arn: str) -> str | None:
        """Retry the execution if it failed and this step did not succeed; return the pre-retry marker."""
        described = await hook.async_describe_execution(arn)
        if described.get("PipelineExecutionStatus") != "Failed":
            return None
        steps = await hook.async_list_execution_steps(arn)
        step = find_step(steps, self.step_name)
        if step is not None and step.get("StepStatus") == "Succeeded":
            self.log.info("Step %s already succeeded in execution %s: not retrying it", self.step_name, arn)
            return None
        marker = _iso(described.get("LastModifiedTime")) or ""
        if await hook.async_retry_execution(arn):
            self.log.info("Retrying failed execution %s (Airflow retry of step %s)", arn, self.step_name)
        else:
            self.log.info("Execution %s is being retried already", arn)
        return marker

    async def stream_job_logs(self, job: JobRef, done: asyncio.Event, execution_arn: str) -> None:
        """Stream the CloudWatch log lines of ``job`` into the task log until ``done`` and the log are over."""
        assert job.log_group is not None
        store = self._cursor_store(execution_arn)
        saved = await store.load(job.name)
        initial = self.log_cursor
        if saved is None and isinstance(initial, Mapping) and initial.get("job_name") == job.name:
            saved = dict(initial.get("cursor") or {})
        cursor = LogCursor.from_dict(saved)
        last_saved = cursor.to_dict()
        if cursor.streams:
            self.log.info("Resuming the logs of job %s after the lines already shown", job.name)
        # Claim the job's lines: a trigger that showed them before, on a triggerer that lost its heartbeat and
        # recovers, stops at its next lines instead of showing them a second time.
        await store.save(job.name, last_saved)

        async def persist(current: LogCursor) -> None:
            nonlocal last_saved
            data = current.to_dict()
            if data != last_saved:
                await store.save(job.name, data)
                last_saved = data

        taken_over = False

        async def still_ours() -> bool:
            nonlocal taken_over
            taken_over = not await store.owned(job.name)
            return not taken_over

        hook = self._logs_hook()
        try:
            async for event in hook.follow_job_logs(
                log_group=job.log_group,
                job_name=job.name,
                job_done=done,
                cursor=cursor,
                poll_interval=self._interval,
                on_idle=persist,
                may_emit=still_ours,
            ):
                line = f"[{event.instance}] {event.message}"
                self._last_lines.append(line)
                self.log.info("%s", line)
        except asyncio.CancelledError:
            raise
        except Exception:
            # Logs are a convenience: losing them must not fail the step task.
            self.log.warning("Stopped streaming the logs of job %s", job.name, exc_info=True)
        if taken_over:
            self.log.info(
                "Another triggerer took the logs of job %s over; they continue in its log", job.name
            )

    async def _result(
        self, hook: SageMakerPipelineHook, state: StepState, step: Mapping[str, Any] | None, arn: str
    ) -> dict[str, Any]:
        result: dict[str, Any] = {
            "step_name": self.step_name,
            "step_status": state.step_status,
            "execution_arn": arn,
            "cache_hit": state.cache_hit,
        }
        if state.condition_outcome is not None:
            result["condition_outcome"] = state.condition_outcome
        if step is None:
            return result
        result["started"] = _iso(step.get("StartTime"))
        result["ended"] = _iso(step.get("EndTime"))
        kind = kind_of(step.get("Metadata"))
        if kind is None:
            return result
        job = kind.job(step.get("Metadata") or {})
        if job is not None:
            result["job_name"] = job.name
            result["job_arn"] = job.arn
        if state.phase == StepPhase.SUCCEEDED:
            result.update(await kind.result(StepView(self, hook, step, arn)))
        return result

    async def _link_xcoms(
        self, step: Mapping[str, Any] | None, result: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """The extra links' XComs (execution, job, log stream, the step kind's own): no worker runs to
        persist them."""
        from asgiref.sync import sync_to_async

        hook = self._pipeline_hook()
        try:
            region, partition = await sync_to_async(lambda: (hook.conn_region_name, hook.conn_partition))()
        except Exception:
            self.log.warning("Could not read the connection's region for the extra links", exc_info=True)
            return {}
        base = {"region_name": region, "aws_domain": BaseAwsLink.get_aws_domain(partition)}
        xcoms: dict[str, Any] = {}
        if self._resolved_arn:
            xcoms["smpipe_execution"] = {
                **base,
                "execution_arn": self._resolved_arn,
                "pipeline_name": self.pipeline_name,
            }
        kind = kind_of((step or {}).get("Metadata"))
        job = kind.job((step or {}).get("Metadata") or {}) if kind is not None else None
        if job is not None:
            console_path = job.console_path or f"{job.kind}-jobs"
            xcoms["smpipe_step_job"] = {**base, "job_kind": console_path, "job_name": job.name}
            if job.log_group:
                xcoms["smpipe_step_logs"] = {**base, "log_group": job.log_group, "job_name": job.name}
        if kind is not None:
            xcoms.update(kind.link_xcoms((step or {}).get("Metadata") or {}, base, result))
        return xcoms

    async def _push_xcoms(self, xcoms: Mapping[str, Any]) -> None:
        """Push XComs through the Task SDK, as a worker would.

        Not through ``TaskSuccessEvent(xcoms=...)``: on Airflow 3.3.2 that path JSON-encodes values once more
        than the worker path, so a dict comes back to ``xcom_pull`` as a string.
        """
        from airflow.sdk.execution_time.xcom import XCom

        ti = self.task_instance
        if ti is None:
            return
        ids = {
            "dag_id": ti.dag_id,
            "run_id": ti.run_id,
            "task_id": ti.task_id,
            "map_index": ti.map_index if ti.map_index is not None else -1,
        }
        for key, value in xcoms.items():
            try:
                await XCom.aset(key, value, **ids)
            except Exception:
                self.log.warning("Could not push XCom %s", key, exc_info=True)

    async def _event(
        self,
        status: str,
        reason: str | None,
        result: dict[str, Any] | None,
        step: Mapping[str, Any] | None = None,
    ) -> TriggerEvent:
        # Under `airflow dags test` the trigger runs inline without a task instance, and dag.test hands any
        # event's payload to next_method: a plain event keeps the result and the reason there.
        if _as_bool(self.end_from_trigger) and self.task_instance is not None:
            xcoms = await self._link_xcoms(step, result)
            if status == "success":
                xcoms["return_value"] = result
            await self._push_xcoms(xcoms)
            if status == "success":
                return TaskSuccessEvent()
            if status == "skipped":
                return TaskSkippedEvent()
            return TaskFailedEvent()
        return TriggerEvent(
            {
                "status": status,
                "step_name": self.step_name,
                "reason": reason,
                "result": result,
                "last_log_lines": list(self._last_lines),
            }
        )

    # ---------------------------------------------------------------------------------------------- run
    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Watch the step until it ends; stream its logs meanwhile; yield one event."""
        hook = self._pipeline_hook()
        arn = self.execution_arn or await self._find_execution(hook)
        self._resolved_arn = arn
        self.log.info("Watching step %s of execution %s", self.step_name, arn)
        retry_marker: str | None = None
        retry_deadline = 0.0
        if self._should_retry_execution():
            retry_marker = await self._maybe_retry(hook, arn)
            retry_deadline = time.monotonic() + max(300.0, 10 * self._interval)

        done = asyncio.Event()
        watch_task: asyncio.Task[None] | None = None
        last_text: str | None = None
        announced_cache = False
        async with subscribe_execution(hook, arn, self._interval) as subscription:
            if retry_marker is not None:
                subscription.refresh()
            try:
                while True:
                    snapshot = await subscription.next_snapshot()
                    if retry_marker is not None:
                        stale = (
                            snapshot.status == "Failed"
                            and _iso(snapshot.execution.get("LastModifiedTime")) == retry_marker
                        )
                        if stale and time.monotonic() < retry_deadline:
                            continue  # still the failure we retried
                        retry_marker = None
                    step = find_step(snapshot.steps, self.step_name)
                    state = snapshot.classify(self.step_name)
                    kind = kind_of((step or {}).get("Metadata"))
                    job = kind.job((step or {}).get("Metadata") or {}) if kind is not None else None

                    text = state.describe() + (f" (job {job.name})" if job else "")
                    if text != last_text:
                        self.log.info("step %s: %s", self.step_name, text)
                        last_text = text
                    if state.cache_hit and not announced_cache:
                        self.log.info(
                            "step %s: cache hit, reusing the result of execution %s",
                            self.step_name,
                            state.cache_source_arn,
                        )
                        announced_cache = True
                    if (
                        kind is not None
                        and step is not None
                        and watch_task is None
                        and _as_bool(self.stream_logs)
                        and not state.cache_hit
                    ):
                        watch_task = asyncio.create_task(
                            self._watch(kind.watch(StepView(self, hook, step, arn), done))
                        )
                    if not state.terminal:
                        handover = await self._handover(kind, hook, step, arn)
                        if handover is None:
                            continue
                        done.set()
                        yield handover
                        return

                    done.set()
                    if watch_task is not None:
                        await watch_task
                    yield await self._finish(hook, state, step, arn)
                    return
            finally:
                if watch_task is not None and not watch_task.done():
                    watch_task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await watch_task

    async def _handover(
        self, kind: Any, hook: SageMakerPipelineHook, step: Mapping[str, Any] | None, arn: str
    ) -> TriggerEvent | None:
        """The event that hands the task over to a worker, when this trigger does so and the step asks."""
        if not _as_bool(self.worker_handover) or kind is None or step is None:
            return None
        payload = await kind.handover(StepView(self, hook, step, arn))
        if payload is None:
            return None
        self.log.info("step %s: handing over to a worker (%s)", self.step_name, step.get("StepStatus"))
        return TriggerEvent(
            {
                "status": "handover",
                "step_name": self.step_name,
                "execution_arn": arn,
                "handover": payload,
            }
        )

    async def _watch(self, watching: Any) -> None:
        try:
            await watching
        except asyncio.CancelledError:
            raise
        except Exception:
            # Following a step (its logs, its trials) is a convenience: it must not fail the step task.
            self.log.warning("Stopped following step %s", self.step_name, exc_info=True)

    async def _finish(
        self, hook: SageMakerPipelineHook, state: StepState, step: Mapping[str, Any] | None, arn: str
    ) -> TriggerEvent:
        if state.phase == StepPhase.SUCCEEDED:
            result = await self._result(hook, state, step, arn)
            self.log.info("step %s succeeded", self.step_name)
            return await self._event("success", None, result, step)
        if state.phase == StepPhase.SKIPPED:
            self.log.info("step %s skipped: %s", self.step_name, state.reason)
            return await self._event("skipped", state.reason, None, step)
        result = await self._result(hook, state, step, arn)
        status = "stopped" if state.phase == StepPhase.STOPPED else "failed"
        self.log.error("step %s %s: %s", self.step_name, status, state.reason)
        if self._last_lines:
            self.log.error(
                "Last %s log lines of step %s:\n%s",
                len(self._last_lines),
                self.step_name,
                "\n".join(self._last_lines),
            )
        return await self._event(status, state.reason, result, step)

    # ------------------------------------------------------------------------------------------ kill
    async def _ti_state(self) -> str | None:
        """Return the task instance's current state as the API server sees it, None when unknown."""
        ti = self.task_instance
        if ti is None:
            return None
        from airflow.sdk.execution_time.comms import GetTaskStates, TaskStatesResult
        from airflow.sdk.execution_time.task_runner import SUPERVISOR_COMMS

        map_index = getattr(ti, "map_index", -1)
        response = await SUPERVISOR_COMMS.asend(
            GetTaskStates(
                dag_id=ti.dag_id,
                task_ids=[ti.task_id],
                run_ids=[ti.run_id],
                map_index=map_index if map_index is not None and map_index >= 0 else None,
            )
        )
        if not isinstance(response, TaskStatesResult):
            return None
        states = response.task_states.get(ti.run_id) or {}
        key = ti.task_id if map_index is None or map_index < 0 else f"{ti.task_id}_{map_index}"
        state = states.get(key)
        return str(state) if state is not None else None

    async def _should_stop(self) -> bool:
        try:
            state = await self._ti_state()
        except Exception:
            self.log.warning("Could not read the task instance state; stopping as asked", exc_info=True)
            return True
        if state == "deferred":
            # Airflow 3.3 also calls on_kill when this triggerer lost its heartbeat and the trigger moved
            # to another triggerer: the task is still deferred, so nobody asked to kill anything.
            self.log.warning(
                "on_kill was called but the task instance is still deferred (the trigger moved to another "
                "triggerer); not stopping execution %s",
                self._resolved_arn or self.execution_arn,
            )
            return False
        return True

    async def _step_ended(self, hook: SageMakerPipelineHook, arn: str) -> bool:
        """Whether the execution lists this trigger's step as ended (False when unknown: stop as asked)."""
        try:
            step = find_step(await hook.async_list_execution_steps(arn), self.step_name)
        except Exception:
            self.log.warning("Could not read the steps of execution %s", arn, exc_info=True)
            return False
        return step is not None and step.get("StepStatus") in ("Succeeded", "Failed", "Stopped")

    async def on_kill(self) -> None:
        """Stop the execution when a user marked the deferred task failed/success or cleared it."""
        if not await self._should_stop():
            return
        hook = self._pipeline_hook()
        arn = self._resolved_arn or self.execution_arn
        if arn is None:
            found = await hook.async_find_execution(self.pipeline_name, self._run_key())
            arn = found["PipelineExecutionArn"] if found else None
        if arn is None:
            self.log.info("on_kill: no execution to stop")
            return
        if await self._step_ended(hook, arn):
            # The task ended with its step, through this trigger's event on the triggerer that took the trigger
            # over while this one's triggerer had lost its heartbeat (Airflow 3.3 then calls on_kill here too).
            self.log.warning(
                "on_kill was called after step %s had ended; not stopping execution %s", self.step_name, arn
            )
            return
        self.log.info("Task killed by a user: stopping execution %s", arn)
        stopped = await hook.async_stop_execution(arn)
        if not stopped:
            self.log.info("Execution %s was not running; nothing to stop", arn)
