"""Pure helpers for pipeline executions: names, idempotency tokens and the step status mapping.

Nothing here performs I/O: the hooks and the trigger feed AWS responses in and act on what comes out, so the
whole status mapping is unit-tested without AWS.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

#: Execution display names: ``[a-zA-Z0-9](-*[a-zA-Z0-9]){0,81}``.
DISPLAY_NAME_MAX = 82
_DISPLAY_NAME_RE = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,81}$")
_HASH_LEN = 8
# Room kept for "-<hash>-g<generation>" with a generation of up to 6 digits.
_RUN_PART_MAX = DISPLAY_NAME_MAX - (1 + _HASH_LEN + 2 + 6)

EXECUTION_ACTIVE_STATUSES = frozenset({"Executing", "Stopping"})
EXECUTION_TERMINAL_STATUSES = frozenset({"Succeeded", "Failed", "Stopped"})
STEP_ACTIVE_STATUSES = frozenset({"Starting", "Executing", "Stopping"})
STEP_TERMINAL_STATUSES = frozenset({"Succeeded", "Failed", "Stopped"})


@dataclass(frozen=True)
class RunKey:
    """
    Identity of one Airflow DAG run of one pipeline task group.

    :param dag_id: The DAG id.
    :param run_id: The DAG run id.
    :param group_id: The id of the task group that compiles to the pipeline.
    """

    dag_id: str
    run_id: str
    group_id: str

    @property
    def digest(self) -> str:
        """Return a sha256 hex digest of the three ids (unambiguous: joined with NUL bytes)."""
        raw = "\0".join(("smpipe-run", self.dag_id, self.run_id, self.group_id))
        return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def _sanitize(text: str, max_len: int) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")
    cleaned = cleaned[:max_len].rstrip("-")
    return cleaned or "run"


def display_name_prefix(key: RunKey) -> str:
    """
    Return the prefix shared by every execution display name of this run key.

    ``<sanitized run id>-<8 hex of sha256(dag, run, group)>-g``; the generation number follows it.

    :param key: The run key.
    """
    return f"{_sanitize(key.run_id, _RUN_PART_MAX)}-{key.digest[:_HASH_LEN]}-g"


def execution_display_name(key: RunKey, generation: int) -> str:
    """
    Return the display name of execution number ``generation`` of this run key.

    Readable (it starts with the run id), unique per key (hash of dag id, run id and group id) and a valid
    SageMaker display name, for example ``manual-2026-11-22T10-00-00-00-00-3f2a9c1b-g0``.

    :param key: The run key.
    :param generation: 0 for the first execution of the run, n+1 after a cleared group restarts it.
    """
    if generation < 0 or generation > 999_999:
        raise ValueError(f"generation must be within 0..999999, got {generation}")
    name = f"{display_name_prefix(key)}{generation}"
    if not _DISPLAY_NAME_RE.match(name):  # pragma: no cover - guaranteed by construction
        raise ValueError(f"Invalid execution display name {name!r}")
    return name


def parse_generation(display_name: str | None, key: RunKey) -> int | None:
    """
    Return the generation encoded in ``display_name`` when it belongs to ``key``, else None.

    :param display_name: An execution display name.
    :param key: The run key.
    """
    if not display_name:
        return None
    prefix = display_name_prefix(key)
    if not display_name.startswith(prefix):
        return None
    rest = display_name[len(prefix) :]
    return int(rest) if rest.isdigit() else None


def client_request_token(key: RunKey, generation: int) -> str:
    """
    Return the deterministic ``ClientRequestToken`` for starting execution ``generation`` of ``key``.

    A launch retried after crashing in the middle of StartPipelineExecution sends the same token, so SageMaker
    returns the execution it already started instead of starting a second one. 64 hex characters.

    :param key: The run key.
    :param generation: The execution generation.
    """
    raw = "\0".join(("smpipe-start", key.dag_id, key.run_id, key.group_id, str(generation)))
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def retry_token(execution_arn: str, failure_marker: str) -> str:
    """
    Return the ``ClientRequestToken`` for retrying one failure of one execution.

    Sibling step tasks that retry the same failed execution at the same time compute the same token (the
    marker, e.g. the execution's LastModifiedTime, is the same for them), so SageMaker performs one retry.

    :param execution_arn: The pipeline execution ARN.
    :param failure_marker: A value that identifies this particular failure of the execution.
    """
    raw = "\0".join(("smpipe-retry", execution_arn, failure_marker))
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def definition_sha256(definition: str) -> str:
    """
    Return the sha256 hex digest of a pipeline definition string.

    :param definition: The pipeline definition JSON text.
    """
    return hashlib.sha256(definition.encode("utf-8")).hexdigest()


class StepPhase(StrEnum):
    """What an Airflow step task should do about its SageMaker step."""

    WAITING = "waiting"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    STOPPED = "stopped"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class StepState:
    """
    The classified state of one pipeline step.

    :param phase: What the step task should do.
    :param reason: Why it failed, stopped or was skipped (None otherwise).
    :param step_status: The raw SageMaker StepStatus (None when the step is absent).
    :param cache_hit: Whether the step reused the result of an earlier execution.
    :param cache_source_arn: The execution whose result was reused.
    :param condition_outcome: ``"True"``/``"False"`` for a condition step.
    :param attempt_count: SageMaker's AttemptCount of the step.
    """

    phase: StepPhase
    reason: str | None = None
    step_status: str | None = None
    cache_hit: bool = False
    cache_source_arn: str | None = None
    condition_outcome: str | None = None
    attempt_count: int | None = None

    @property
    def terminal(self) -> bool:
        """Return whether the step task can end."""
        return self.phase in (StepPhase.SUCCEEDED, StepPhase.FAILED, StepPhase.STOPPED, StepPhase.SKIPPED)

    def describe(self) -> str:
        """Return a short human-readable summary for the task log."""
        text = self.step_status or self.phase.value
        if self.reason:
            text = f"{text} ({self.reason})"
        return text


def classify_step(
    step_summary: Mapping[str, Any] | None,
    execution_status: str,
    *,
    execution_failure_reason: str | None = None,
) -> StepState:
    """
    Map one step of ListPipelineExecutionSteps and its execution's status to a :class:`StepState`.

    The full mapping:

    ==================  ==========================  ===================================================
    step                execution                   result
    ==================  ==========================  ===================================================
    absent              Executing / Stopping        WAITING (not started yet, or branch not decided)
    absent              Succeeded                   SKIPPED: a condition branch that was not taken
    absent              Failed                      SKIPPED: the execution failed before it started
    absent              Stopped                     SKIPPED: the execution stopped before it started
    Starting/Executing  Executing / Stopping        RUNNING
    Stopping            any                         RUNNING (stop in progress)
    Starting/Executing  Failed / Stopped            FAILED / STOPPED (the execution ended under it)
    Succeeded           any                         SUCCEEDED (cache hit noted)
    Failed              any                         FAILED with FailureReason (or Fail step message)
    Stopped             any                         STOPPED
    ==================  ==========================  ===================================================

    :param step_summary: The step's entry from ListPipelineExecutionSteps, or None when it is not listed.
    :param execution_status: The execution's PipelineExecutionStatus.
    :param execution_failure_reason: The execution's FailureReason, used to explain skips and failures.
    """
    exec_reason = (execution_failure_reason or "").strip() or None
    if step_summary is None:
        if execution_status in EXECUTION_ACTIVE_STATUSES:
            return StepState(StepPhase.WAITING)
        if execution_status == "Succeeded":
            return StepState(
                StepPhase.SKIPPED,
                reason="the execution succeeded without running this step (a condition branch not taken)",
            )
        if execution_status == "Failed":
            why = f": {exec_reason}" if exec_reason else ""
            return StepState(StepPhase.SKIPPED, reason=f"the execution failed before this step started{why}")
        if execution_status == "Stopped":
            return StepState(StepPhase.SKIPPED, reason="the execution was stopped before this step started")
        return StepState(StepPhase.WAITING)

    status = str(step_summary.get("StepStatus") or "")
    metadata = step_summary.get("Metadata") or {}
    cache = step_summary.get("CacheHitResult") or {}
    cache_source = cache.get("SourcePipelineExecutionArn")
    outcome = (metadata.get("Condition") or {}).get("Outcome")
    attempts = step_summary.get("AttemptCount")
    common: dict[str, Any] = {
        "step_status": status,
        "cache_hit": bool(cache_source),
        "cache_source_arn": cache_source,
        "condition_outcome": outcome,
        "attempt_count": attempts,
    }
    if status == "Succeeded":
        return StepState(StepPhase.SUCCEEDED, **common)
    if status == "Failed":
        reason = (
            step_summary.get("FailureReason")
            or (metadata.get("Fail") or {}).get("ErrorMessage")
            or exec_reason
            or "the step failed without a FailureReason"
        )
        return StepState(StepPhase.FAILED, reason=str(reason), **common)
    if status == "Stopped":
        return StepState(StepPhase.STOPPED, reason="the step was stopped", **common)
    if status == "Stopping":
        return StepState(StepPhase.RUNNING, **common)
    # Starting, Executing or a status this code does not know yet.
    if execution_status == "Stopped":
        return StepState(StepPhase.STOPPED, reason="the execution was stopped", **common)
    if execution_status == "Failed":
        why = exec_reason or "the execution failed while this step was running"
        return StepState(StepPhase.FAILED, reason=why, **common)
    return StepState(StepPhase.RUNNING, **common)


def _start_key(step: Mapping[str, Any]) -> float:
    start = step.get("StartTime")
    if isinstance(start, datetime):
        return start.timestamp()
    if isinstance(start, int | float):
        return float(start)
    # A step listed without a StartTime is the newest one.
    return float("inf")


def find_step(steps: Iterable[Mapping[str, Any]], step_name: str) -> Mapping[str, Any] | None:
    """
    Return the latest entry of ``step_name`` in a ListPipelineExecutionSteps result, or None.

    A retried execution can list a step more than once: the entry with the latest StartTime wins.

    :param steps: PipelineExecutionSteps of all pages.
    :param step_name: The SageMaker step name.
    """
    matches = [s for s in steps if s.get("StepName") == step_name]
    if not matches:
        return None
    return max(matches, key=_start_key)


@dataclass
class ExecutionSnapshot:
    """
    One poll of an execution: its description and all its steps.

    :param execution: DescribePipelineExecution's response (without ResponseMetadata).
    :param steps: PipelineExecutionSteps of all pages.
    :param seq: Increases by one with every poll.
    """

    execution: dict[str, Any]
    steps: list[dict[str, Any]] = field(default_factory=list)
    seq: int = 0

    @property
    def status(self) -> str:
        """Return the PipelineExecutionStatus."""
        return str(self.execution.get("PipelineExecutionStatus") or "")

    @property
    def failure_reason(self) -> str | None:
        """Return the execution's FailureReason, if any."""
        reason = self.execution.get("FailureReason")
        return str(reason) if reason else None

    def classify(self, step_name: str) -> StepState:
        """
        Classify ``step_name`` in this snapshot.

        :param step_name: The SageMaker step name.
        """
        return classify_step(
            find_step(self.steps, step_name), self.status, execution_failure_reason=self.failure_reason
        )
