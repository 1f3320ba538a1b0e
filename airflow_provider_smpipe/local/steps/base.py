"""What a step runner gets from the executor, and the registry runners are found in.

A runner is ``run(env: StepEnv) -> None``: it drives ``env.run`` (the step's :class:`StepRun`) to a terminal
status with :meth:`StepRun.finish`, sets its ``metadata`` (what ListPipelineExecutionSteps shows) and its
``properties`` (what ``Steps.<name>.*`` references read). Raising :class:`ExpressionError` fails the step with
a ClientError; any other exception fails it as an internal error (the executor catches both).
"""

from __future__ import annotations

import random
import re
import string
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_smpipe.local.expressions import evaluate, to_text
from airflow_provider_smpipe.local.jobs import JOB_KINDS, JobContext, JobRun
from airflow_provider_smpipe.local.state import JobRecord
from airflow_provider_smpipe.registry import Registry

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from airflow_provider_smpipe.local.definition import StepDef
    from airflow_provider_smpipe.local.expressions import EvalContext
    from airflow_provider_smpipe.local.s3io import S3IO
    from airflow_provider_smpipe.local.state import Execution, StepRun, Store


def job_name(execution_id: str, step_name: str) -> str:
    """``pipelines-<execution id>-<step>-<random>`` within SageMaker's 63-character job names."""
    suffix = "".join(random.choices(string.ascii_letters + string.digits, k=10))
    step = re.sub(r"[^A-Za-z0-9-]+", "-", step_name).strip("-") or "step"
    room = 63 - len(f"pipelines-{execution_id}--{suffix}")
    return f"pipelines-{execution_id}-{step[:room].rstrip('-')}-{suffix}"


@dataclass
class Services:
    """Backend services a runner may use.

    :ivar shutting_down: Set when the backend stops: a runner that waits for something outside (an answer to a
        callback) gives up then instead of keeping the backend's threads alive.
    """

    store: Store
    endpoint_url: Callable[[], str]
    state_dir: Path
    s3: Callable[[str], S3IO]
    shutting_down: threading.Event = field(default_factory=threading.Event)


@dataclass
class StepEnv:
    """Everything one step's runner needs.

    :ivar execution: The execution the step belongs to.
    :ivar step: The step's definition.
    :ivar run: The step's record in the execution (drive it to a terminal status).
    :ivar ctx: Evaluates expressions (parameters, other steps' properties, property files).
    :ivar services: The backend's store, endpoint, state directory and S3 access.
    """

    execution: Execution
    step: StepDef
    run: StepRun
    ctx: EvalContext
    services: Services
    job_runs: list[JobRun] = field(default_factory=list)
    #: A failure type the fault controls make this attempt's job fail with (``SageMaker.CAPACITY_ERROR``...).
    injected_failure: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def evaluate(self, value: Any) -> Any:
        """Resolve every expression inside a definition fragment."""
        return evaluate(value, self.ctx)

    @property
    def stop_requested(self) -> bool:
        return self.execution.stop_requested

    @property
    def s3(self) -> S3IO:
        return self.services.s3(self.execution.region)

    def new_job(
        self, kind: str, request: dict[str, Any], *, name: str | None = None, parent_arn: str | None = None
    ) -> JobRecord:
        """Record a job of ``kind`` for this step (visible to Describe*/List* calls at once)."""
        execution = self.execution
        name = name or job_name(execution.execution_id, self.step.name)
        resource = JOB_KINDS[kind].resource
        arn = f"arn:aws:sagemaker:{execution.region}:{execution.account}:{resource}/{name}"
        job = JobRecord(
            kind=kind,
            name=name,
            arn=arn,
            request=request,
            pipeline_execution_arn=execution.arn,
            parent_arn=parent_arn,
        )
        self.services.store.add_job(execution.account, execution.region, job)
        return job

    def run_job(self, job: JobRecord) -> None:
        """Run ``job`` to its end in this thread; a stop of the execution (or of the job) kills it."""
        job_run = JobRun(
            job,
            JobContext(
                endpoint_url=self.services.endpoint_url(),
                account=self.execution.account,
                region=self.execution.region,
                state_dir=self.services.state_dir,
                s3=self.s3,
            ),
        )
        with self.execution.changed:
            if self.execution.stop_requested or job.stop_requested:
                job.set_status("Stopped", "Stopped")
                return
            if self.injected_failure is not None:
                from airflow_provider_smpipe.local.retries import FAILURE_REASONS

                job.start_time = job.start_time or job.creation_time
                job.set_status("Failed", "Failed", FAILURE_REASONS[self.injected_failure])
                self.run.failure_type, self.injected_failure = self.injected_failure, None
                return
            with self._lock:
                self.job_runs.append(job_run)
        job_run.run()
        if job.status != "Completed" and job.stop_requested and job.status != "Stopped":
            job.set_status("Stopped", "Stopped")

    def stop(self) -> None:
        """Kill every job this step runs (called by the executor when the execution is stopped)."""
        with self._lock:
            runs = list(self.job_runs)
        for job_run in runs:
            job_run.job.stop_requested = True
            job_run.stop()

    def stop_job(self, job: JobRecord) -> bool:
        """Kill one job of this step (StopTrainingJob...); False when it is not this step's."""
        with self._lock:
            runs = [r for r in self.job_runs if r.job is job]
        for job_run in runs:
            job_run.stop()
        return bool(runs)


#: Step runners by definition step type ("Processing", "Condition", ...).
STEP_RUNNERS: Registry[str, Callable[[StepEnv], None]] = Registry(
    "local step runner", "airflow_provider_smpipe.local.steps", skip=("base",)
)


def strings_map(value: Any) -> Any:
    """API string maps (HyperParameters, Environment) as strings: typed parameters resolve to numbers."""
    if isinstance(value, dict):
        return {str(k): to_text(v) for k, v in value.items()}
    return value


def run_job_step(env: StepEnv, kind: str, request: dict[str, Any], metadata_key: str) -> JobRecord:
    """Run one job as the whole of a step (processing, training, transform) and finish the step by it."""
    run = env.run
    job = env.new_job(kind, request)
    run.job = job
    run.metadata = {metadata_key: {"Arn": job.arn}}
    run.properties = job.describe
    with env.execution.changed:
        if not env.stop_requested:
            run.status = "Executing"
    env.run_job(job)
    finish_by_job(env, job)
    return job


def finish_by_job(env: StepEnv, job: JobRecord) -> None:
    """The step's terminal status from its job's."""
    run = env.run
    if job.status == "Completed":
        run.finish("Succeeded")
    elif job.status == "Stopped" or job.stop_requested:
        run.finish("Stopped")
    else:
        run.finish("Failed", job.failure_reason or "the job failed")
