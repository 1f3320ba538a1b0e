"""Plain dataclasses describing one SageMaker pipeline: what the group compiles to before the SDK is involved.

Step operators translate themselves into a :class:`StepSpec` subclass (one module per step kind in
:mod:`airflow_provider_smpipe.model.steps`); the group assembles a :class:`PipelineSpec`; the compiler turns that
into SDK objects and the definition JSON. Values may be plain data or references
(:mod:`airflow_provider_smpipe.model.references`); references still name steps by Airflow task id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

if TYPE_CHECKING:
    from airflow_provider_smpipe.model.references import ParameterType, PrimitiveValue


@dataclass(frozen=True)
class ParameterSpec:
    name: str
    type: ParameterType
    default: PrimitiveValue | None = None
    enum_values: tuple[str, ...] | None = None


@dataclass(frozen=True)
class CacheSpec:
    """Step caching; ``expire_after`` is an ISO 8601 duration such as ``"P30D"`` (None: never expires)."""

    expire_after: str | None = None


@dataclass(frozen=True)
class RetrySpec:
    """One retry policy: ``kind`` "step" retries on step exceptions, "job" on SageMaker job failures."""

    kind: Literal["step", "job"]
    exception_types: tuple[str, ...]
    interval_seconds: int = 1
    backoff_rate: float = 2.0
    max_attempts: int | None = None
    expire_after_mins: int | None = None


@dataclass(frozen=True)
class StepSpec:
    """What every step has. ``name`` is the SageMaker step name, ``task_id`` the Airflow task it mirrors.

    ``step_type`` is the SageMaker step type the spec compiles to (``StepTypeEnum`` value); the compiler and the
    local backend find the code for a spec through it. ``cache`` and ``retry_policies`` are used by the step
    kinds SageMaker allows them on (the operators refuse them elsewhere).
    """

    step_type: ClassVar[str] = ""

    name: str
    task_id: str
    depends_on: tuple[str, ...] = ()
    display_name: str | None = None
    description: str | None = None
    cache: CacheSpec | None = None
    retry_policies: tuple[RetrySpec, ...] = ()

    def nested_task_ids(self) -> tuple[str, ...]:
        """Task ids of steps this step holds inside its own definition (a condition's branches)."""
        return ()


@dataclass(frozen=True)
class PipelineSpec:
    name: str
    role_arn: str
    steps: tuple[StepSpec, ...]
    parameters: tuple[ParameterSpec, ...] = ()
    default_bucket: str | None = None
    max_parallel_steps: int | None = None
    tags: tuple[tuple[str, str], ...] = ()
    description: str | None = None
