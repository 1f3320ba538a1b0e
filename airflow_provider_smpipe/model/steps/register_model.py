"""The plain model of a register-model step (CreateModelPackage in a model package group)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from airflow_provider_smpipe.model.spec import StepSpec

if TYPE_CHECKING:
    from airflow_provider_smpipe.model.references import Operand
    from airflow_provider_smpipe.model.steps.model import InferenceCodeSpec

#: ``model_metrics`` keys -> (``ModelMetrics`` member, its report) in CreateModelPackage.
MODEL_METRICS_FIELDS: dict[str, tuple[str, str]] = {
    "model_quality_statistics": ("ModelQuality", "Statistics"),
    "model_quality_constraints": ("ModelQuality", "Constraints"),
    "model_data_statistics": ("ModelDataQuality", "Statistics"),
    "model_data_constraints": ("ModelDataQuality", "Constraints"),
    "bias_report": ("Bias", "Report"),
    "bias_pre_training_report": ("Bias", "PreTrainingReport"),
    "bias_post_training_report": ("Bias", "PostTrainingReport"),
    "explainability_report": ("Explainability", "Report"),
}
APPROVAL_STATUSES = ("Approved", "PendingManualApproval", "Rejected")


@dataclass(frozen=True)
class MetricsSourceSpec:
    """One report of the model metrics: a JSON document in S3."""

    s3_uri: Operand
    content_type: str = "application/json"


@dataclass(frozen=True)
class RegisterModelStepSpec(StepSpec):
    step_type: ClassVar[str] = "RegisterModel"

    model_package_group_name: Operand = ""
    image_uri: Operand = ""
    model_data: Operand = ""
    environment: tuple[tuple[str, Operand], ...] = ()
    inference_code: InferenceCodeSpec | None = None
    approval_status: Operand = "PendingManualApproval"
    content_types: tuple[str, ...] = ()
    response_types: tuple[str, ...] = ()
    inference_instances: tuple[str, ...] = ()
    transform_instances: tuple[str, ...] = ()
    #: ``(key of MODEL_METRICS_FIELDS, source)`` pairs.
    model_metrics: tuple[tuple[str, MetricsSourceSpec], ...] = ()
    customer_metadata: tuple[tuple[str, Operand], ...] = ()
    domain: Operand | None = None
    task: Operand | None = None
    model_package_description: str | None = None
