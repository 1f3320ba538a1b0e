"""The plain model of a Lambda step."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from airflow_provider_smpipe.model.spec import StepSpec

if TYPE_CHECKING:
    from airflow_provider_smpipe.model.output_parameters import OutputType
    from airflow_provider_smpipe.model.references import Operand


@dataclass(frozen=True)
class LambdaFunctionSpec:
    """A Lambda function made from local code when the pipeline is compiled.

    :ivar name: The function name.
    :ivar code_path: Absolute path of the handler file, or of a directory packaged whole.
    :ivar handler: ``module.function``, e.g. ``handler.lambda_handler``.
    :ivar execution_role_arn: The role the function runs as.
    :ivar runtime: The Lambda runtime, e.g. ``python3.12``.
    :ivar timeout: Seconds before Lambda stops the function.
    :ivar memory_size: Megabytes of memory.
    :ivar environment: The function's environment variables.
    """

    name: str
    code_path: str
    handler: str
    execution_role_arn: str
    runtime: str = "python3.12"
    timeout: int = 120
    memory_size: int = 128
    environment: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class LambdaStepSpec(StepSpec):
    """A step that invokes a Lambda function with its inputs and reads outputs from the returned dict.

    Exactly one of ``function_arn`` (an existing function) and ``function`` (created at compile time) is set.
    """

    step_type: ClassVar[str] = "Lambda"

    function_arn: str | None = None
    function: LambdaFunctionSpec | None = None
    inputs: tuple[tuple[str, Operand], ...] = ()
    outputs: tuple[tuple[str, OutputType], ...] = ()
