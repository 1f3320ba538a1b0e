"""The plain model of a callback step."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from airflow_provider_smpipe.model.spec import StepSpec

if TYPE_CHECKING:
    from airflow_provider_smpipe.model.output_parameters import OutputType
    from airflow_provider_smpipe.model.references import Operand


@dataclass(frozen=True)
class CallbackStepSpec(StepSpec):
    """A step that sends its inputs and a token to an SQS queue and waits for an answer.

    :ivar sqs_queue_url: The queue SageMaker sends the callback message to.
    :ivar inputs: ``(name, value)`` pairs sent as the message's ``arguments``; values may be references.
    :ivar outputs: ``(name, type)`` of the output parameters the answer provides.
    """

    step_type: ClassVar[str] = "Callback"

    sqs_queue_url: str = ""
    inputs: tuple[tuple[str, Operand], ...] = ()
    outputs: tuple[tuple[str, OutputType], ...] = ()
