"""The plain model of a model step (CreateModel) and of the inference code a model container runs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from airflow_provider_smpipe.model.spec import StepSpec

if TYPE_CHECKING:
    from airflow_provider_smpipe.model.references import Operand


@dataclass(frozen=True)
class InferenceCodeSpec:
    """Inference code for a framework container (``SAGEMAKER_PROGRAM`` / ``SAGEMAKER_SUBMIT_DIRECTORY``).

    ``source_dir`` is an absolute local directory whose files are packed, with ``entry_point`` relative to it;
    without it ``entry_point`` is the absolute path of a lone script, packed alone.
    """

    entry_point: str
    source_dir: str | None = None


@dataclass(frozen=True)
class ModelStepSpec(StepSpec):
    step_type: ClassVar[str] = "Model"

    image_uri: Operand = ""
    model_data: Operand = ""
    environment: tuple[tuple[str, Operand], ...] = ()
    inference_code: InferenceCodeSpec | None = None
    #: None: the group's role.
    execution_role_arn: str | None = None
    subnets: tuple[str, ...] = ()
    security_group_ids: tuple[str, ...] = ()
