"""The plain model of an escape-hatch step: any step the SageMaker SDK builds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_provider_smpipe.model.spec import StepSpec

if TYPE_CHECKING:
    from collections.abc import Callable


@dataclass(frozen=True)
class CustomStepSpec(StepSpec):
    """The escape hatch: ``factory(context)`` returns any SageMaker SDK step."""

    step_type: ClassVar[str] = "Custom"

    factory: Callable[[Any], Any] | None = None
