"""The plain model of a training step."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from airflow_provider_smpipe.model.spec import StepSpec

if TYPE_CHECKING:
    from airflow_provider_smpipe.model.references import Operand


@dataclass(frozen=True)
class TrainingStepSpec(StepSpec):
    step_type: ClassVar[str] = "Training"

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
