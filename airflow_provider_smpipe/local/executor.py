"""Runs pipeline executions: schedules the definition's DAG and drives each step to its end."""

from __future__ import annotations

import logging
import random
import string
import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow_provider_smpipe.local.caching import StepCache
from airflow_provider_smpipe.local.definition import (
    PipelineDef,
    StepDef,
    parse_definition,
    resolve_parameters,
)
from airflow_provider_smpipe.local.errors import ApiError
from airflow_provider_smpipe.local.expressions import EvalContext, ExpressionError, walk
from airflow_provider_smpipe.local.retries import FAILURE_REASONS, RetryState, restart, wait
from airflow_provider_smpipe.local.s3io import S3IO
from airflow_provider_smpipe.local.selective import reuse_source_results
from airflow_provider_smpipe.local.state import Execution, JobRecord, StepRun, Store
from airflow_provider_smpipe.local.steps.base import STEP_RUNNERS, Services, StepEnv, job_name

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from airflow_provider_smpipe.local.faults import FaultInjector

log = logging.getLogger(__name__)

STEP_FAILURE = "Step failure: One or multiple steps failed."
DEFAULT_MAX_PARALLEL = 50
_ALNUM = string.ascii_lowercase + string.digits


def random_id(length: int = 12) -> str:
    return "".join(random.choices(_ALNUM, k=length))


__all__ = ["Executor", "job_name", "random_id"]


class _Running:
    """A step being executed, so it can be stopped."""

    def __init__(self, thread: threading.Thread) -> None:
        self.thread = thread
        self.env: StepEnv | None = None


class Executor:
    """Owns the threads that run executions and their steps.

    :param store: where executions and jobs are recorded.
    :param endpoint_url: returns the backend's URL (jobs talk to it for S3).
    :param state_dir: parent of the job workspaces.
    :param faults: the backend's fault injection (job failures for retry policies).
    """

    def __init__(
        self,
        store: Store,
        endpoint_url: Callable[[], str],
        state_dir: Path,
        faults: FaultInjector | None = None,
    ) -> None:
        self.store = store
        self.endpoint_url = endpoint_url
        self.state_dir = state_dir
        self.faults = faults
        self.cache = StepCache()
        #: Steps a selective execution must not run, by execution ARN.
        self._not_selected: dict[str, set[str]] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._running: dict[str, dict[str, _Running]] = {}
        self._prior_attempts: dict[str, dict[str, int]] = {}
        self._s3: dict[str, S3IO] = {}
        self._lock = threading.Lock()
        self._shutdown = False
        self._shutting_down = threading.Event()

    # --- API entry points -----------------------------------------------------------------------

    def prepare(self, definition_text: str, overrides: list[dict[str, Any]] | None) -> None:
        """Validate what StartPipelineExecution would run, raising ValidationException early."""
        resolve_parameters(parse_definition(definition_text), overrides)

    def start(self, execution: Execution) -> None:
        with self._lock:
            self._running[execution.arn] = {}
            self._prior_attempts.setdefault(execution.arn, {})
            thread = threading.Thread(
                target=self._drive, args=(execution,), name=f"exec-{execution.execution_id}"
            )
            self._threads[execution.arn] = thread
        thread.start()

    def stop(self, execution: Execution) -> None:
        with execution.changed:
            execution.stop_requested = True
            execution.set_status("Stopping")
            for name, running in self._running.get(execution.arn, {}).items():
                run = execution.steps.get(name)
                if run is not None and run.status in ("Starting", "Executing"):
                    run.status = "Stopping"
                if running.env is not None:
                    running.env.stop()
            execution.changed.notify_all()

    def retry(self, execution: Execution, parallelism: int | None) -> None:
        with execution.changed:
            attempts = self._prior_attempts.setdefault(execution.arn, {})
            for name in list(execution.steps):
                run = execution.steps[name]
                if run.status in ("Failed", "Stopped"):
                    attempts[name] = run.attempt_count
                    del execution.steps[name]
                    execution.step_order.remove(name)
            execution.stop_requested = False
            if parallelism:
                execution.parallelism = parallelism
            execution.set_status("Executing")
        self.start(execution)

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop every running execution (killing its jobs) and wait for their threads."""
        self._shutdown = True
        self._shutting_down.set()
        for execution in list(self.store.executions.values()):
            if execution.status in ("Executing", "Stopping"):
                self.stop(execution)
        for thread in list(self._threads.values()):
            thread.join(timeout=timeout)

    # --- execution loop -------------------------------------------------------------------------

    def _s3_for(self, region: str) -> S3IO:
        with self._lock:
            if region not in self._s3:
                self._s3[region] = S3IO(self.endpoint_url(), region)
            return self._s3[region]

    def _context(self, execution: Execution, pdef: PipelineDef) -> EvalContext:
        parameters = resolve_parameters(pdef, execution.parameters)
        s3 = self._s3_for(execution.region)
        start = datetime.fromtimestamp(execution.creation_time, UTC)
        files: dict[tuple[str, str], Any] = {}

        def step_properties(name: str) -> dict[str, Any] | None:
            run = execution.steps.get(name)
            if run is None:
                return None
            return run.properties() if run.properties is not None else {}

        def property_file(step_name: str, file_name: str) -> Any:
            if (step_name, file_name) in files:
                return files[(step_name, file_name)]
            step = pdef.steps.get(step_name)
            spec = step.property_files.get(file_name) if step else None
            if step is None or spec is None:
                raise ExpressionError(f"step {step_name!r} has no property file {file_name!r}")
            props = step_properties(step_name)
            if not props:
                raise ExpressionError(
                    f"step {step_name!r} did not run, so property file {file_name!r} is missing"
                )
            uri = walk(
                props,
                ["ProcessingOutputConfig", "Outputs", spec["OutputName"], "S3Output", "S3Uri"],
                f"property file {file_name}",
            )
            try:
                document = s3.read_json(f"{str(uri).rstrip('/')}/{spec['FilePath']}")
            except Exception as err:
                raise ExpressionError(
                    f"cannot read property file {file_name!r} of step {step_name!r}: {err}"
                ) from err
            files[(step_name, file_name)] = document
            return document

        def read_s3_json(uri: str) -> Any:
            try:
                return s3.read_json(uri)
            except Exception as err:
                raise ExpressionError(f"cannot read JSON from {uri}: {err}") from err

        return EvalContext(
            parameters=parameters,
            execution={
                "PipelineExecutionId": execution.execution_id,
                "PipelineExecutionArn": execution.arn,
                "PipelineName": execution.pipeline_name,
                "PipelineArn": execution.pipeline_arn,
                "StartDateTime": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "CurrentDateTime": lambda: datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            },
            step_properties=step_properties,
            property_file=property_file,
            read_s3_json=read_s3_json,
        )

    def _drive(self, execution: Execution) -> None:
        try:
            pdef = parse_definition(execution.definition_text)
            ctx = self._context(execution, pdef)
        except Exception as err:
            with execution.changed:
                execution.set_status("Failed", f"Invalid pipeline definition: {err}")
            return
        if execution.selective_execution_config and execution.arn not in self._not_selected:
            try:
                with execution.changed:
                    self._not_selected[execution.arn] = reuse_source_results(execution, pdef, self.store)
            except ApiError as err:
                with execution.changed:
                    execution.set_status("Failed", f"Selective execution: {err.message}")
                return
        running = self._running[execution.arn]
        with execution.changed:
            while True:
                # Read each round: UpdatePipelineExecution may change it while the execution runs.
                limit = execution.parallelism or DEFAULT_MAX_PARALLEL
                for name in [n for n, r in running.items() if not r.thread.is_alive()]:
                    del running[name]
                if execution.stop_requested:
                    if not running:
                        execution.set_status("Stopped")
                        return
                else:
                    failed = [r for r in execution.steps.values() if r.status in ("Failed", "Stopped")]
                    if not failed:
                        for step in self._ready(execution, pdef):
                            if len(running) >= limit:
                                break
                            self._launch(execution, step, ctx, running)
                    if not running:
                        if failed:
                            fail_steps = [r for r in failed if r.type == "Fail"]
                            reason = (
                                (fail_steps[0].failure_reason or STEP_FAILURE) if fail_steps else STEP_FAILURE
                            )
                            execution.set_status("Failed", reason)
                        else:
                            execution.set_status("Succeeded")
                        return
                execution.changed.wait(timeout=0.5)

    def _ready(self, execution: Execution, pdef: PipelineDef) -> list[StepDef]:
        ready = []
        not_selected = self._not_selected.get(execution.arn, set())
        for step in pdef.steps.values():
            if step.name in execution.steps or step.name in not_selected:
                continue
            if step.branch is not None:
                condition = execution.steps.get(step.branch[0])
                if (
                    condition is None
                    or condition.status != "Succeeded"
                    or condition.outcome != step.branch[1]
                ):
                    continue
            deps = [execution.steps.get(dep) for dep in step.depends_on]
            if all(dep is not None and dep.status == "Succeeded" for dep in deps):
                ready.append(step)
        return ready

    def _launch(
        self, execution: Execution, step: StepDef, ctx: EvalContext, running: dict[str, _Running]
    ) -> None:
        attempts = self._prior_attempts.get(execution.arn, {}).get(step.name, 0)
        run = StepRun(
            name=step.name,
            type=step.type,
            attempt_count=attempts + 1,
            display_name=step.raw.get("DisplayName"),
            description=step.raw.get("Description"),
        )
        execution.steps[step.name] = run
        execution.step_order.append(step.name)
        holder = _Running(threading.Thread())
        holder.thread = threading.Thread(
            target=self._run_step,
            args=(execution, step, run, ctx, holder),
            name=f"step-{execution.execution_id}-{step.name}",
            daemon=True,
        )
        running[step.name] = holder
        holder.thread.start()

    def _services(self) -> Services:
        return Services(
            store=self.store,
            endpoint_url=self.endpoint_url,
            state_dir=self.state_dir,
            s3=self._s3_for,
            shutting_down=self._shutting_down,
        )

    def _run_step(
        self, execution: Execution, step: StepDef, run: StepRun, ctx: EvalContext, holder: _Running
    ) -> None:
        env = StepEnv(execution=execution, step=step, run=run, ctx=ctx, services=self._services())
        with execution.changed:
            holder.env = env
        try:
            runner = STEP_RUNNERS.get(step.type)
            if runner is None:
                run.finish(
                    "Failed",
                    f"step type {step.type} is not supported by the local backend (it runs "
                    f"{', '.join(sorted(STEP_RUNNERS))})",
                )
            elif execution.stop_requested:
                run.finish("Stopped")
            else:
                key = self.cache.key(execution, step, ctx)
                hit = self.cache.lookup(key, step) if key else None
                if hit is not None:
                    log.info("step %s of %s: cache hit of %s", step.name, execution.arn, hit.execution_arn)
                    self.cache.apply(hit, run)
                else:
                    self._attempts(env, runner)
                    if key and run.status == "Succeeded":
                        self.cache.record(key, execution, run)
        except ExpressionError as err:
            run.finish("Failed", f"ClientError: {err}")
        except Exception as err:  # never leave a step hanging in Executing
            log.exception("step %s of %s crashed", step.name, execution.arn)
            run.finish("Failed", f"InternalServerError: {type(err).__name__}: {err}")
        finally:
            with execution.changed:
                execution.last_modified_time = run.end_time or execution.last_modified_time
                execution.changed.notify_all()

    def _attempts(self, env: StepEnv, runner: Callable[[StepEnv], None]) -> None:
        """Run the step, retrying failed attempts as its retry policies say (``StepRun.finish`` asks them)."""
        run, step = env.run, env.step
        retries = RetryState.of(step.raw)
        run.retry_decider = retries.next_delay if retries.policies else None
        while True:
            run.retry_delay = None
            injected = self.faults.take_job_failure(step.name) if self.faults is not None else None
            if injected is not None and injected.startswith("Step."):
                # The step could not even create its job.
                run.failure_type = injected
                run.finish("Failed", FAILURE_REASONS[injected])
            else:
                env.injected_failure = injected
                runner(env)
            delay = run.retry_delay
            if delay is None:
                if run.status not in ("Succeeded", "Failed", "Stopped"):
                    raise RuntimeError(f"the {step.type} runner left the step {run.status}")
                return
            log.info("step %s: %s, retrying in %.1fs", step.name, run.failure_type, delay)
            if wait(delay, lambda: env.stop_requested):
                run.retry_decider = None
                run.finish("Stopped")
                return
            with env.execution.changed:
                restart(run)
                env.job_runs.clear()

    def stop_job(self, execution: Execution, job: JobRecord) -> None:
        """StopProcessingJob/StopTrainingJob on a pipeline's job: stop just that job."""
        with execution.changed:
            for running in self._running.get(execution.arn, {}).values():
                if running.env is not None and running.env.stop_job(job):
                    return
