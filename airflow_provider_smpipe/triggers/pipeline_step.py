"""Deferrable trigger that mirrors one step of a SageMaker pipeline execution into one Airflow task.

Many step tasks of one execution share one polling loop per triggerer (:func:`subscribe_execution`); each
trigger streams its own step job's CloudWatch logs into its task log and ends the task from the triggerer.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import hashlib
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from airflow.providers.amazon.aws.links.base_aws import BaseAwsLink
from airflow.triggers.base import (
    BaseTrigger,
    TaskFailedEvent,
    TaskSkippedEvent,
    TaskSuccessEvent,
    TriggerEvent,
)

from airflow_provider_smpipe.executions import (
    ExecutionSnapshot,
    JobRef,
    RunKey,
    StepPhase,
    StepState,
    find_step,
    job_from_metadata,
)
from airflow_provider_smpipe.hooks.pipeline import ExecutionNotFoundError, SageMakerPipelineHook
from airflow_provider_smpipe.hooks.step_logs import LogCursor, SageMakerStepLogsHook
from airflow_provider_smpipe.ratelimit import backoff_delay, is_transient_error

log = logging.getLogger(__name__)

#: XCom key under which a running trigger keeps its log cursor.
LOG_CURSOR_XCOM_KEY = "smpipe_log_cursor"
#: Environment variable naming the directory of the file-based log cursor store.
LOG_CURSOR_DIR_ENV = "SMPIPE_LOG_CURSOR_DIR"
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


# --------------------------------------------------------------------------------------- shared polling
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


# --------------------------------------------------------------------------------------- cursor stores
class LogCursorStore(Protocol):
    """Where a running trigger keeps its log cursor so that a rebuilt trigger resumes from it."""

    async def load(self, job_name: str) -> dict[str, Any] | None:
        """Return the saved cursor of ``job_name`` or None."""
        ...

    async def save(self, job_name: str, cursor: dict[str, Any]) -> None:
        """Save the cursor of ``job_name``."""
        ...


class XComLogCursorStore:
    """
    Keep the cursor in an XCom of the deferred task instance (key ``smpipe_log_cursor``).

    The triggerer's supervisor serves GetXCom/SetXCom for trigger code, so this works on every triggerer host.
    The value carries the job name and try number: a new try, or another job, starts from the beginning.

    :param dag_id: DAG id.
    :param run_id: Run id.
    :param task_id: Task id.
    :param map_index: Map index.
    :param try_number: The task instance's try number.
    """

    def __init__(self, *, dag_id: str, run_id: str, task_id: str, map_index: int, try_number: int) -> None:
        self.ids = {"dag_id": dag_id, "run_id": run_id, "task_id": task_id, "map_index": map_index}
        self.try_number = try_number

    async def load(self, job_name: str) -> dict[str, Any] | None:
        """Return the saved cursor of ``job_name`` for this try, or None."""
        from airflow.sdk.execution_time.xcom import XCom

        value = await XCom.aget_one(key=LOG_CURSOR_XCOM_KEY, **self.ids)
        if (
            isinstance(value, Mapping)
            and value.get("job_name") == job_name
            and value.get("try_number") == self.try_number
        ):
            return dict(value.get("cursor") or {})
        return None

    async def save(self, job_name: str, cursor: dict[str, Any]) -> None:
        """Save the cursor of ``job_name`` for this try."""
        from airflow.sdk.execution_time.xcom import XCom

        value = {"job_name": job_name, "try_number": self.try_number, "cursor": cursor}
        await XCom.aset(LOG_CURSOR_XCOM_KEY, value, **self.ids)


def default_cursor_dir() -> Path:
    """Return ``$SMPIPE_LOG_CURSOR_DIR`` or ``$AIRFLOW_HOME/smpipe/log-cursors``."""
    explicit = os.environ.get(LOG_CURSOR_DIR_ENV)
    if explicit:
        return Path(explicit)
    home = os.environ.get("AIRFLOW_HOME") or os.path.expanduser("~/airflow")
    return Path(home) / "smpipe" / "log-cursors"


class FileLogCursorStore:
    """
    Keep the cursor in a small JSON file per (execution, step, try, job): survives restarts on one host only.

    :param directory: The state directory.
    :param scope: Identifies the watcher: execution ARN (or run key), step name and try number.
    """

    def __init__(self, directory: Path, scope: str) -> None:
        self.directory = directory
        self.scope = scope

    def _path(self, job_name: str) -> Path:
        digest = hashlib.sha256(f"{self.scope}\0{job_name}".encode()).hexdigest()[:32]
        return self.directory / f"{digest}.json"

    async def load(self, job_name: str) -> dict[str, Any] | None:
        """Return the saved cursor of ``job_name``, or None."""

        def read() -> dict[str, Any] | None:
            try:
                data = json.loads(self._path(job_name).read_text())
            except (OSError, ValueError):
                return None
            return data.get("cursor") if data.get("job_name") == job_name else None

        return await asyncio.to_thread(read)

    async def save(self, job_name: str, cursor: dict[str, Any]) -> None:
        """Atomically save the cursor of ``job_name``."""

        def write() -> None:
            path = self._path(job_name)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps({"job_name": job_name, "scope": self.scope, "cursor": cursor}))
            os.replace(tmp, path)

        await asyncio.to_thread(write)


class _FallbackCursorStore:
    """Use the primary store; if it fails, log once and use the fallback from then on."""

    def __init__(self, primary: LogCursorStore, fallback: LogCursorStore, logger: Any) -> None:
        self.primary, self.fallback, self.log = primary, fallback, logger
        self.failed = False

    async def load(self, job_name: str) -> dict[str, Any] | None:
        if not self.failed:
            try:
                found = await self.primary.load(job_name)
            except Exception:
                self._fail()
            else:
                return found if found is not None else await self.fallback.load(job_name)
        return await self.fallback.load(job_name)

    async def save(self, job_name: str, cursor: dict[str, Any]) -> None:
        if not self.failed:
            try:
                await self.primary.save(job_name, cursor)
                return
            except Exception:
                self._fail()
        await self.fallback.save(job_name, cursor)

    def _fail(self) -> None:
        self.failed = True
        self.log.warning("Cannot keep the log cursor in XCom; using a local file instead", exc_info=True)


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

    async def _stream_logs(self, job: JobRef, done: asyncio.Event, execution_arn: str) -> None:
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

        async def persist(current: LogCursor) -> None:
            nonlocal last_saved
            data = current.to_dict()
            if data != last_saved:
                await store.save(job.name, data)
                last_saved = data

        hook = self._logs_hook()
        try:
            async for event in hook.follow_job_logs(
                log_group=job.log_group,
                job_name=job.name,
                job_done=done,
                cursor=cursor,
                poll_interval=self._interval,
                on_idle=persist,
            ):
                line = f"[{event.instance}] {event.message}"
                self._last_lines.append(line)
                self.log.info("%s", line)
        except asyncio.CancelledError:
            raise
        except Exception:
            # Logs are a convenience: losing them must not fail the step task.
            self.log.warning("Stopped streaming the logs of job %s", job.name, exc_info=True)

    async def _result(
        self, hook: SageMakerPipelineHook, state: StepState, step: Mapping[str, Any] | None, arn: str
    ) -> dict[str, Any]:
        metadata = (step or {}).get("Metadata") or {}
        job = job_from_metadata(metadata)
        result: dict[str, Any] = {
            "step_name": self.step_name,
            "step_status": state.step_status,
            "execution_arn": arn,
            "cache_hit": state.cache_hit,
        }
        if state.condition_outcome is not None:
            result["condition_outcome"] = state.condition_outcome
        if step is not None:
            result["started"] = _iso(step.get("StartTime"))
            result["ended"] = _iso(step.get("EndTime"))
        if job is None or state.phase != StepPhase.SUCCEEDED:
            return result
        result["job_name"] = job.name
        result["job_arn"] = job.arn
        if job.kind == "tuning":
            return result
        described = await hook.async_describe_job(job.arn)
        outputs: dict[str, str] = {}
        for output in (described.get("ProcessingOutputConfig") or {}).get("Outputs", []):
            uri = (output.get("S3Output") or {}).get("S3Uri")
            if uri:
                outputs[output["OutputName"]] = uri
        if job.kind == "transform":
            uri = (described.get("TransformOutput") or {}).get("S3OutputPath")
            if uri:
                outputs["output"] = uri
        result["outputs"] = outputs
        model = (described.get("ModelArtifacts") or {}).get("S3ModelArtifacts")
        if job.kind == "training":
            result["model_artifacts"] = model
        if self.property_files:
            files: dict[str, Any] = {}
            for spec in self.property_files:
                base = outputs.get(spec["output_name"])
                if base is None:
                    raise ValueError(
                        f"Property file {spec['name']!r} names output {spec['output_name']!r}, but job "
                        f"{job.name} has outputs {sorted(outputs)}"
                    )
                files[spec["name"]] = await hook.async_read_s3_json(
                    f"{base.rstrip('/')}/{spec['path'].lstrip('/')}"
                )
            result["property_files"] = files
        return result

    async def _link_xcoms(self, step: Mapping[str, Any] | None) -> dict[str, Any]:
        """The extra links' XComs (execution, job, log stream): no worker runs to persist them."""
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
        job = job_from_metadata((step or {}).get("Metadata"))
        if job is not None:
            console_kind = {"processing": "processing-jobs", "training": "jobs"}.get(
                job.kind, f"{job.kind}-jobs"
            )
            xcoms["smpipe_step_job"] = {**base, "job_kind": console_kind, "job_name": job.name}
            if job.log_group:
                xcoms["smpipe_step_logs"] = {**base, "log_group": job.log_group, "job_name": job.name}
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
            xcoms = await self._link_xcoms(step)
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
        log_task: asyncio.Task[None] | None = None
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
                    job = job_from_metadata((step or {}).get("Metadata"))

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
                        job is not None
                        and log_task is None
                        and _as_bool(self.stream_logs)
                        and job.log_group is not None
                        and not state.cache_hit
                    ):
                        log_task = asyncio.create_task(self._stream_logs(job, done, arn))
                    if not state.terminal:
                        continue

                    done.set()
                    if log_task is not None:
                        await log_task
                    yield await self._finish(hook, state, step, arn)
                    return
            finally:
                if log_task is not None and not log_task.done():
                    log_task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await log_task

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
        self.log.info("Task killed by a user: stopping execution %s", arn)
        stopped = await hook.async_stop_execution(arn)
        if not stopped:
            self.log.info("Execution %s was not running; nothing to stop", arn)
