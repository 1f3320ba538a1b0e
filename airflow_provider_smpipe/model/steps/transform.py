"""The plain model of a batch transform step."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from airflow_provider_smpipe.model.spec import StepSpec

if TYPE_CHECKING:
    from airflow_provider_smpipe.model.references import Operand

#: The property path of a transform step's output location (``DescribeTransformJob``).
TRANSFORM_OUTPUT_PATH = "TransformOutput.S3OutputPath"


@dataclass(frozen=True)
class TransformStepSpec(StepSpec):
    """A SageMaker batch transform job over S3 input.

    Enum-valued fields hold the SageMaker values (``"Line"``, ``"MultiRecord"``...) or None when unset;
    ``output_path`` None means the default ``s3://<bucket>/<pipeline>/<execution id>/<step>/output``.
    """

    step_type: ClassVar[str] = "Transform"

    model_name: Operand = ""
    data: Operand = ""
    data_type: str = "S3Prefix"
    content_type: Operand | None = None
    split_type: Operand | None = None
    compression_type: Operand | None = None
    batch_strategy: Operand | None = None
    assemble_with: Operand | None = None
    accept: Operand | None = None
    join_source: Operand | None = None
    input_filter: Operand | None = None
    output_filter: Operand | None = None
    max_payload_in_mb: Operand | None = None
    max_concurrent_transforms: Operand | None = None
    instance_type: Operand = "ml.m5.large"
    instance_count: int = 1
    output_path: Operand | None = None
    environment: tuple[tuple[str, Operand], ...] = ()
