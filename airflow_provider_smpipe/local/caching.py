"""Step caching (``CacheConfig``), as SageMaker does it.

The cache key of a step is its pipeline (ARN), its name, its type and a hash of the step type's cache key
attributes (SageMaker's "default cache key attributes by step type": e.g. ``AppSpecification``, ``Environment``
and ``ProcessingInputs`` of a processing step; ``AlgorithmSpecification``, ``HyperParameters``,
``InputDataConfig``... of a training step; all ``Arguments`` for a type not listed) with every expression
resolved: parameters take the execution's values and ``Steps.<x>`` references the upstream steps' values (so
an upstream step that ran again with other results breaks the chain), but ``Execution.*`` variables stay as
written, so a path holding the execution id does not make every execution a miss.

A hit is the most recent successful run of the same key within ``ExpireAfter`` (an ISO 8601 duration; none:
no limit): the step does not run, reports ``CacheHitResult.SourcePipelineExecutionArn`` and exposes the earlier
run's metadata and properties. Failed runs are never reused. The cache lives in the backend's memory.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from airflow_provider_smpipe.local.expressions import ExpressionError, evaluate

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_provider_smpipe.local.definition import StepDef
    from airflow_provider_smpipe.local.expressions import EvalContext
    from airflow_provider_smpipe.local.state import Execution, StepRun

#: The attributes that make a step run again when they change, by step type.
CACHE_KEY_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "Processing": ("AppSpecification", "Environment", "ProcessingInputs"),
    "Training": (
        "AlgorithmSpecification",
        "CheckpointConfig",
        "DebugHookConfig",
        "DebugRuleConfigurations",
        "Environment",
        "HyperParameters",
        "InputDataConfig",
    ),
    "Tuning": ("HyperParameterTuningJobConfig", "TrainingJobDefinition", "TrainingJobDefinitions"),
    "Transform": ("DataProcessing", "Environment", "ModelName", "TransformInput"),
}

_DURATION = re.compile(
    r"^P?(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+)S)?)?$",
    re.IGNORECASE,
)
_SECONDS = {"years": 365 * 86400, "months": 30 * 86400, "weeks": 7 * 86400, "days": 86400, "hours": 3600}


def duration_seconds(text: str) -> float:
    """``"P30D"``, ``"PT1H"``, ``"30d"``, ``"T16m"``... in seconds (a year is 365 days, a month 30)."""
    match = _DURATION.match(text.strip())
    if not match or not any(match.groupdict().values()):
        raise ValueError(f"{text!r} is not an ISO 8601 duration")
    unit = {**_SECONDS, "minutes": 60, "seconds": 1}
    return float(sum(int(value) * unit[name] for name, value in match.groupdict().items() if value))


@dataclass(frozen=True)
class CacheEntry:
    execution_arn: str
    finished: float
    metadata: dict[str, Any]
    properties: Callable[[], dict[str, Any]] | None
    outcome: bool | None


class StepCache:
    """Successful runs of cached steps, by cache key (thread-safe)."""

    def __init__(self) -> None:
        self._entries: dict[str, list[CacheEntry]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def config(step: StepDef) -> dict[str, Any] | None:
        config = step.raw.get("CacheConfig")
        return config if isinstance(config, dict) and config.get("Enabled") is True else None

    def key(self, execution: Execution, step: StepDef, ctx: EvalContext) -> str | None:
        """The step's cache key in ``execution`` (None: not cached, or its inputs cannot be resolved yet)."""
        if self.config(step) is None:
            return None
        attributes = CACHE_KEY_ATTRIBUTES.get(step.type)
        arguments = step.arguments
        selected = {k: arguments[k] for k in attributes if k in arguments} if attributes else arguments
        symbolic = replace(ctx, execution={name: f"Execution.{name}" for name in ctx.execution})
        try:
            resolved = evaluate(selected, symbolic)
        except ExpressionError:
            return None
        text = json.dumps(
            [execution.pipeline_arn, step.name, step.type, resolved], sort_keys=True, default=str
        )
        return hashlib.sha256(text.encode()).hexdigest()

    def lookup(self, key: str, step: StepDef) -> CacheEntry | None:
        """The latest successful run of ``key`` still within the step's ``ExpireAfter``."""
        config = self.config(step) or {}
        expire = config.get("ExpireAfter")
        oldest = time.time() - duration_seconds(str(expire)) if expire else float("-inf")
        with self._lock:
            entries = [e for e in self._entries.get(key, []) if e.finished >= oldest]
        return max(entries, key=lambda e: e.finished) if entries else None

    def record(self, key: str, execution: Execution, run: StepRun) -> None:
        entry = CacheEntry(
            execution_arn=execution.arn,
            finished=run.end_time or time.time(),
            metadata=run.metadata,
            properties=run.properties,
            outcome=run.outcome,
        )
        with self._lock:
            self._entries.setdefault(key, []).append(entry)

    @staticmethod
    def apply(entry: CacheEntry, run: StepRun) -> None:
        """Finish ``run`` as a hit of ``entry``."""
        run.metadata = entry.metadata
        run.properties = entry.properties
        run.outcome = entry.outcome
        run.cache_hit_result = {"SourcePipelineExecutionArn": entry.execution_arn}
        run.finish("Succeeded")
