"""The run-time side of one step kind, as the step trigger uses it.

``ListPipelineExecutionSteps`` describes every step with ``Metadata`` holding one key per kind
(``ProcessingJob``, ``TrainingJob``, ``Condition``, ``RegisterModel``...). The trigger looks that key up in
:data:`STEP_KINDS` to find what to follow while the step runs (its job's logs, a tuning job's trials), what to
put in XCom when it succeeds, and which extra links apply. One module per kind registers a
:class:`StepKindRuntime`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_provider_smpipe.registry import Registry

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Mapping

    from airflow_provider_smpipe.hooks.pipeline import SageMakerPipelineHook
    from airflow_provider_smpipe.triggers.pipeline_step import SageMakerPipelineStepTrigger


@dataclass(frozen=True)
class JobRef:
    """
    The SageMaker job behind a step.

    :param kind: ``processing``, ``training``, ``transform`` or ``tuning``.
    :param arn: The job ARN.
    :param name: The job name (last part of the ARN).
    :param log_group: The CloudWatch log group of its logs, None when there is no single log.
    :param console_path: The job's page in the SageMaker console (``processing-jobs``, ``jobs``...).
    """

    kind: str
    arn: str
    name: str
    log_group: str | None
    console_path: str | None = None


@dataclass
class StepView:
    """
    One step as a step kind's run-time code sees it.

    :param trigger: The trigger watching the step (its ``log``, settings and log streaming).
    :param hook: The pipeline hook (async calls).
    :param step: The step's latest entry in ListPipelineExecutionSteps.
    :param execution_arn: The execution ARN.
    """

    trigger: SageMakerPipelineStepTrigger
    hook: SageMakerPipelineHook
    step: Mapping[str, Any]
    execution_arn: str

    @property
    def metadata(self) -> Mapping[str, Any]:
        return self.step.get("Metadata") or {}

    @property
    def log(self) -> Any:
        return self.trigger.log


class StepKindRuntime:
    """
    Run-time behaviour of the steps whose Metadata carries :attr:`metadata_key`.

    :cvar metadata_key: The key in the step's Metadata (``ProcessingJob``).
    :cvar job_kind: For steps backed by one SageMaker job: its kind (``processing``); None otherwise.
    :cvar log_group: The CloudWatch log group of that job's streams (None: no single log to follow).
    :cvar console_path: The job's page in the SageMaker console.
    """

    metadata_key: ClassVar[str] = ""
    job_kind: ClassVar[str | None] = None
    log_group: ClassVar[str | None] = None
    console_path: ClassVar[str | None] = None

    def job(self, metadata: Mapping[str, Any]) -> JobRef | None:
        """The job behind the step, if this kind has one and the metadata names it."""
        arn = (metadata.get(self.metadata_key) or {}).get("Arn")
        if self.job_kind is None or not arn:
            return None
        return JobRef(
            kind=self.job_kind,
            arn=str(arn),
            name=str(arn).rsplit("/", 1)[-1],
            log_group=self.log_group,
            console_path=self.console_path,
        )

    async def watch(self, view: StepView, done: asyncio.Event) -> None:
        """Follow the running step until ``done`` is set: by default, stream its job's logs."""
        job = self.job(view.metadata)
        if job is not None and job.log_group is not None:
            await view.trigger.stream_job_logs(job, done, view.execution_arn)

    async def result(self, view: StepView) -> dict[str, Any]:
        """What the succeeded (or failed) step adds to its task's XCom result."""
        return {}

    async def handover(self, view: StepView) -> dict[str, Any] | None:
        """For a trigger with ``worker_handover``: plain data for the task's worker when the running step needs
        work done on a worker (a callback step waiting for the answer the task computes); None otherwise."""
        return None

    def link_xcoms(
        self, metadata: Mapping[str, Any], base: Mapping[str, Any], result: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        """This kind's own extra-link XComs by link key (the job and log links are common to every kind).

        :param metadata: The step's Metadata.
        :param base: ``region_name`` and ``aws_domain`` of the connection, for every link.
        :param result: The task's XCom result when the step succeeded, else None.
        """
        return {}


#: Step kinds by Metadata key.
STEP_KINDS: Registry[str, StepKindRuntime] = Registry(
    "step kind runtime", "airflow_provider_smpipe.triggers.step_kinds", skip=("base",)
)


def kind_of(metadata: Mapping[str, Any] | None) -> StepKindRuntime | None:
    """The registered kind of a step, from the keys of its Metadata."""
    for key in metadata or {}:
        kind = STEP_KINDS.get(key)
        if kind is not None:
            return kind
    return None


def job_from_metadata(metadata: Mapping[str, Any] | None) -> JobRef | None:
    """
    Return the job referenced by a step's Metadata, or None for steps without a job.

    :param metadata: The step's ``Metadata`` from ListPipelineExecutionSteps.
    """
    kind = kind_of(metadata)
    return kind.job(metadata or {}) if kind is not None else None


async def job_outputs(view: StepView, job: JobRef) -> tuple[dict[str, Any], dict[str, str]]:
    """The job's Describe* response and its S3 outputs by name."""
    described = await view.hook.async_describe_job(job.arn)
    outputs: dict[str, str] = {}
    for output in (described.get("ProcessingOutputConfig") or {}).get("Outputs", []):
        uri = (output.get("S3Output") or {}).get("S3Uri")
        if uri:
            outputs[output["OutputName"]] = uri
    return described, outputs
