"""Plain dataclasses describing one SageMaker pipeline: what the group compiles to before the SDK is involved.

Step operators translate themselves into a :class:`StepSpec`; the group assembles a :class:`PipelineSpec`; the
compiler turns that into SDK objects and the definition JSON. Values may be plain data or references
(:mod:`airflow_provider_smpipe.model.references`); references still name steps by Airflow task id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_provider_smpipe.model.references import Condition, Operand, ParameterType, PrimitiveValue

PROCESSING_INPUT_ROOT = "/opt/ml/processing/input"
PROCESSING_OUTPUT_ROOT = "/opt/ml/processing/output"


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
class ProcessingInputSpec:
    name: str
    source: Operand
    local_path: str


@dataclass(frozen=True)
class ProcessingOutputSpec:
    name: str
    destination: Operand | None
    local_path: str


@dataclass(frozen=True)
class PropertyFileSpec:
    name: str
    output_name: str
    path: str


@dataclass(frozen=True)
class StepSpec:
    """What every step has. ``name`` is the SageMaker step name, ``task_id`` the Airflow task it mirrors."""

    name: str
    task_id: str
    depends_on: tuple[str, ...] = ()
    display_name: str | None = None
    description: str | None = None


@dataclass(frozen=True)
class ProcessingStepSpec(StepSpec):
    image_uri: Operand = ""
    code: str | None = None
    command: tuple[str, ...] | None = None
    entrypoint: tuple[Operand, ...] | None = None
    arguments: tuple[Operand, ...] = ()
    inputs: tuple[ProcessingInputSpec, ...] = ()
    outputs: tuple[ProcessingOutputSpec, ...] = ()
    property_files: tuple[PropertyFileSpec, ...] = ()
    instance_type: Operand = "ml.m5.large"
    instance_count: Operand = 1
    volume_size_in_gb: Operand = 30
    max_runtime_in_seconds: Operand | None = None
    environment: tuple[tuple[str, Operand], ...] = ()
    cache: CacheSpec | None = None
    retry_policies: tuple[RetrySpec, ...] = ()


@dataclass(frozen=True)
class TrainingStepSpec(StepSpec):
    image_uri: Operand = ""
    entry_point: str = ""
    source_dir: str | None = None
    hyperparameters: tuple[tuple[str, Operand], ...] = ()
    inputs: tuple[tuple[str, Operand], ...] = ()
    instance_type: Operand = "ml.m5.large"
    instance_count: int = 1
    volume_size_in_gb: int = 30
    max_runtime_in_seconds: int | None = None
    environment: tuple[tuple[str, Operand], ...] = ()
    output_path: Operand | None = None
    use_spot_instances: bool = False
    max_wait_in_seconds: int | None = None
    checkpoint_s3_uri: Operand | None = None
    cache: CacheSpec | None = None
    retry_policies: tuple[RetrySpec, ...] = ()


@dataclass(frozen=True)
class ConditionStepSpec(StepSpec):
    condition: Condition | None = None
    if_steps: tuple[str, ...] = ()
    else_steps: tuple[str, ...] = ()


@dataclass(frozen=True)
class FailStepSpec(StepSpec):
    error_message: Operand | None = None


@dataclass(frozen=True)
class CustomStepSpec(StepSpec):
    """The escape hatch: ``factory(context)`` returns any SageMaker SDK step."""

    factory: Callable[[Any], Any] | None = None


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
