"""A SageMaker Lambda step as an Airflow task."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_smpipe.exceptions import PipelineDefinitionError
from airflow_provider_smpipe.model.checks import local_path
from airflow_provider_smpipe.model.output_parameters import (
    OutputParameterRef,
    check_output_reference,
    output_property_type,
    output_specs,
)
from airflow_provider_smpipe.model.references import Reference
from airflow_provider_smpipe.model.steps.lambda_step import LambdaFunctionSpec, LambdaStepSpec
from airflow_provider_smpipe.operators.base import SageMakerPipelineStepOperator

if TYPE_CHECKING:
    from airflow_provider_smpipe.model.checks import PathKind
    from airflow_provider_smpipe.model.references import Operand

_FUNCTION_ARN = re.compile(
    r"^arn:aws[a-zA-Z-]*:lambda:[a-z0-9-]+:\d{12}:function:[A-Za-z0-9_-]{1,64}(:(\$LATEST|[A-Za-z0-9_-]{1,128}))?$"
)
_FUNCTION_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_ROLE_ARN = re.compile(r"^arn:aws[a-z\-]*:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+$")
_HANDLER = re.compile(
    r"^(?P<module>[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*)\.(?P<function>[A-Za-z_]\w*)$"
)
_PRIMITIVES = (str, int, float, bool)


def _templated(value: Any) -> bool:
    return isinstance(value, str) and "{{" in value


class SageMakerLambdaStepOperator(SageMakerPipelineStepOperator):
    """A SageMaker Lambda step: invoke a Lambda function with the step's inputs as the event; the outputs are
    the declared keys of the dict the function returns.

    Give either ``function_arn`` (an existing function) or ``handler_file`` with ``handler``,
    ``function_name`` and ``execution_role_arn``: the launch task then creates the function, or updates it when
    its code or configuration changed, before it creates the pipeline (the code is packaged into a reproducible
    zip, so an unchanged handler changes nothing). Later steps read an output with :meth:`output_parameter`
    (``task.output`` keeps its Airflow meaning: the XComArg of the task's result).

    :param task_id: The task id; the step name is derived from it.
    :param function_arn: The ARN of an existing function, in the pipeline's region. (templated)
    :param handler_file: A Python file (or a directory, packaged whole) with the handler, relative to the DAG
        file (without leaving its folder) or absolute; checked to exist when the DAG is parsed.
    :param handler: ``module.function``, e.g. ``"handler.lambda_handler"`` for ``handler.py``.
    :param function_name: The name of the function to create or update.
    :param execution_role_arn: The IAM role the created function runs as. (templated)
    :param runtime: The Lambda runtime of the created function (a Python one).
    :param timeout: Seconds before Lambda stops the created function (1-900; SageMaker waits at most 10
        minutes for a Lambda step).
    :param memory_size: Megabytes of memory of the created function (128-10240).
    :param environment: Environment variables of the created function.
    :param inputs: ``{name: value}``: the event the function gets; values are strings, numbers, booleans or
        references to parameters and other steps' results (not nested). (templated)
    :param outputs: ``{name: "String" | "Integer" | "Float" | "Boolean"}``: keys of the returned dict (a list
        of names declares String outputs). A declared output the function does not return fails the step.
    """

    ui_color = "#fbe3c8"
    template_fields: Sequence[str] = ("function_arn", "execution_role_arn", "inputs")
    template_fields_renderers = {"inputs": "json"}

    def __init__(
        self,
        *,
        function_arn: str | None = None,
        handler_file: str | None = None,
        handler: str | None = None,
        function_name: str | None = None,
        execution_role_arn: str | None = None,
        runtime: str = "python3.12",
        timeout: int = 120,
        memory_size: int = 128,
        environment: Mapping[str, str] | None = None,
        inputs: Mapping[str, Operand] | None = None,
        outputs: Mapping[str, str | type] | Sequence[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.function_arn = function_arn
        self.handler_file = handler_file
        self.handler = handler
        self.function_name = function_name
        self.execution_role_arn = execution_role_arn
        self.runtime = runtime
        self.timeout = timeout
        self.memory_size = memory_size
        self.environment = dict(environment) if environment is not None else None
        self.inputs = dict(inputs) if isinstance(inputs, Mapping) else inputs
        self.outputs = outputs
        self.output_types = output_specs(self.task_id, outputs)
        self._check_function()
        self._check_inputs()

    def _error(self, field: str, message: str) -> PipelineDefinitionError:
        return PipelineDefinitionError(f"task {self.task_id!r} field {field!r}: {message}")

    def _check_function(self) -> None:
        if (self.function_arn is None) == (self.handler_file is None):
            raise PipelineDefinitionError(
                f"task {self.task_id!r}: give exactly one of 'function_arn' (an existing Lambda function) or "
                "'handler_file' (a local handler the launch task deploys as a function)"
            )
        if self.function_arn is not None:
            self._check_function_arn(self.function_arn)
            given = [
                f
                for f in ("handler", "function_name", "execution_role_arn", "environment")
                if getattr(self, f) is not None
            ]
            if given:
                raise self._error(
                    given[0], "only used with 'handler_file' (a function created from local code)"
                )
            return
        if not isinstance(self.handler_file, str) or not self.handler_file:
            raise self._error("handler_file", "expected the path of a Python file or directory")
        match = _HANDLER.match(self.handler or "")
        if match is None:
            raise self._error(
                "handler", f"expected 'module.function', e.g. 'handler.lambda_handler', got {self.handler!r}"
            )
        if self.handler_file.endswith(".py"):
            stem = os.path.splitext(os.path.basename(self.handler_file))[0]
            if match.group("module") != stem:
                raise self._error(
                    "handler",
                    f"{self.handler!r} names module {match.group('module')!r}, but the handler file is "
                    f"{os.path.basename(self.handler_file)!r} (use '{stem}.{match.group('function')}')",
                )
        if not isinstance(self.function_name, str) or not _FUNCTION_NAME.match(self.function_name):
            raise self._error(
                "function_name",
                f"a function created from 'handler_file' needs a name of 1-64 letters, digits, '-' or '_', got "
                f"{self.function_name!r}",
            )
        role = self.execution_role_arn
        if not isinstance(role, str) or not role or (not _templated(role) and not _ROLE_ARN.match(role)):
            raise self._error(
                "execution_role_arn",
                f"a function created from 'handler_file' needs the ARN of the IAM role it runs as, got {role!r}",
            )
        if not isinstance(self.runtime, str) or not self.runtime.startswith("python3"):
            raise self._error(
                "runtime", f"expected a Python runtime such as 'python3.12', got {self.runtime!r}"
            )
        if (
            isinstance(self.timeout, bool)
            or not isinstance(self.timeout, int)
            or not 1 <= self.timeout <= 900
        ):
            raise self._error("timeout", f"expected 1 to 900 seconds, got {self.timeout!r}")
        if (
            isinstance(self.memory_size, bool)
            or not isinstance(self.memory_size, int)
            or not 128 <= self.memory_size <= 10240
        ):
            raise self._error("memory_size", f"expected 128 to 10240 MB, got {self.memory_size!r}")
        for key, value in (self.environment or {}).items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise self._error("environment", f"expected string names and values, got {key!r}: {value!r}")
        self.resolved_handler_path()

    def _check_function_arn(self, arn: Any) -> None:
        if not isinstance(arn, str) or (not _templated(arn) and not _FUNCTION_ARN.match(arn)):
            raise self._error(
                "function_arn",
                f"expected a Lambda function ARN (arn:aws:lambda:<region>:<account>:function:<name>), got {arn!r}",
            )

    def _check_inputs(self) -> None:
        if self.inputs is None:
            return
        if not isinstance(self.inputs, Mapping):
            raise self._error("inputs", f"expected a dict, got {type(self.inputs).__name__}")
        for name, value in self.inputs.items():
            if not isinstance(name, str) or not name:
                raise self._error("inputs", f"{name!r} is not a usable name")
            if value is not None and not isinstance(value, (*_PRIMITIVES, Reference)):
                raise self._error(
                    f"inputs[{name!r}]",
                    f"Lambda step inputs are strings, numbers, booleans or references, not nested values; got "
                    f"{type(value).__name__}",
                )

    # -- translation ------------------------------------------------------------------------------------

    def reference_fields(self) -> Mapping[str, Any]:
        return {"inputs": self.inputs}

    def property_type(self, path: str) -> str | None:
        """The type of a declared output (``Outputs['<name>']``), the only properties of this step kind."""
        return output_property_type(self.output_types, path)

    def output_parameter(self, name: str) -> OutputParameterRef:
        """The value the function returned for output ``name``, for later steps (typed as declared)."""
        check_output_reference(self.task_id, self.output_types, name)
        return OutputParameterRef.of(self.task_id, name)

    def resolved_handler_path(self) -> str | None:
        """``handler_file`` as an absolute path (relative paths are relative to the DAG file and stay in its
        folder), checked to exist (a ``.py`` file, or a directory)."""
        if self.handler_file is None:
            return None
        dag_folder = os.path.dirname(os.path.abspath(self.dag.fileloc)) if self.has_dag() else os.getcwd()
        kind: PathKind = "file" if self.handler_file.endswith(".py") else "directory"
        return local_path(f"task {self.task_id!r}", "handler_file", self.handler_file, dag_folder, kind=kind)

    def to_step_spec(self, *, name: str, depends_on: tuple[str, ...]) -> LambdaStepSpec:
        function: LambdaFunctionSpec | None = None
        # Rendered values are checked again (a template left as written is compiled as such by `render`).
        if self.function_arn is not None:
            if not _templated(self.function_arn) and not _FUNCTION_ARN.match(str(self.function_arn)):
                raise self._error(
                    "function_arn", f"rendered to {self.function_arn!r}, not a Lambda function ARN"
                )
        else:
            role = self.execution_role_arn
            if not _templated(role) and not _ROLE_ARN.match(str(role)):
                raise self._error("execution_role_arn", f"rendered to {role!r}, not an IAM role ARN")
            function = LambdaFunctionSpec(
                name=str(self.function_name),
                code_path=str(self.resolved_handler_path()),
                handler=str(self.handler),
                execution_role_arn=str(self.execution_role_arn),
                runtime=self.runtime,
                timeout=self.timeout,
                memory_size=self.memory_size,
                environment=tuple(sorted((self.environment or {}).items())),
            )
        return LambdaStepSpec(
            **self.common_spec_fields(name, depends_on),
            function_arn=self.function_arn,
            function=function,
            inputs=tuple((self.inputs or {}).items()),
            outputs=self.output_types,
        )
