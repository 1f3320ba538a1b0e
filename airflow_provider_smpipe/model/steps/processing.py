"""The plain model of a processing step."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from airflow_provider_smpipe.model.spec import StepSpec

if TYPE_CHECKING:
    from airflow_provider_smpipe.model.references import Operand

PROCESSING_INPUT_ROOT = "/opt/ml/processing/input"
PROCESSING_OUTPUT_ROOT = "/opt/ml/processing/output"


@dataclass(frozen=True)
class ProcessingInputSpec:
    name: str
    source: Operand
    local_path: str
    s3_input_mode: str = "File"
    s3_data_distribution_type: str | None = None


@dataclass(frozen=True)
class ProcessingOutputSpec:
    name: str
    destination: Operand | None
    local_path: str
    s3_upload_mode: str = "EndOfJob"


@dataclass(frozen=True)
class PropertyFileSpec:
    name: str
    output_name: str
    path: str


@dataclass(frozen=True)
class ProcessingStepSpec(StepSpec):
    step_type: ClassVar[str] = "Processing"

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
