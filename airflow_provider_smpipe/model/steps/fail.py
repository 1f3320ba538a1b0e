"""The plain model of a fail step."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from airflow_provider_smpipe.model.spec import StepSpec

if TYPE_CHECKING:
    from airflow_provider_smpipe.model.references import Operand


@dataclass(frozen=True)
class FailStepSpec(StepSpec):
    step_type: ClassVar[str] = "Fail"

    error_message: Operand | None = None
