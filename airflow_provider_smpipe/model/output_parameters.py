"""Output parameters of Callback and Lambda steps: declared names and types, references, typed values.

A Callback or Lambda step declares its outputs as ``{name: type}``; SageMaker keeps their values as strings
(``OutputParameter {Name, Value}``) and later steps read them with ``Steps.<step>.OutputParameters['<name>']``,
typed as declared. Nothing here imports Airflow or the SDK: the operators, the worker that answers a callback
and the local backend share it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from airflow_provider_smpipe.exceptions import PipelineDefinitionError
from airflow_provider_smpipe.model.references import StepPropertyRef

OutputType = Literal["String", "Integer", "Float", "Boolean"]
OUTPUT_TYPES: tuple[OutputType, ...] = ("String", "Integer", "Float", "Boolean")
#: ``OutputParameterList`` holds at most 50 items.
MAX_OUTPUTS = 50
#: ``OutputParameter.Value`` is a String1024.
MAX_VALUE_CHARS = 1024
#: ``OutputParameter.Name`` is a String256. Names also appear inside ``OutputParameters['<name>']`` expressions,
#: so they are kept to the characters SageMaker names use everywhere else (letters, digits, ``-`` and ``_``).
_NAME_RE = re.compile(r"^[A-Za-z0-9_\-]{1,256}$")
_PYTHON_TYPES: dict[type, OutputType] = {str: "String", int: "Integer", float: "Float", bool: "Boolean"}


@dataclass(frozen=True, eq=True)
class OutputParameterRef(StepPropertyRef):
    """The value a Callback or Lambda step returned for one of its declared outputs.

    Rendered as ``{"Get": "Steps.<step>.OutputParameters['<name>']"}`` (the SDK's ``step.properties.Outputs``).
    """

    output_name: str = ""

    @classmethod
    def of(cls, task_id: str, output_name: str) -> OutputParameterRef:
        return cls(task_id=task_id, path=f"Outputs['{output_name}']", output_name=output_name)

    def __str__(self) -> str:
        return f"output parameter {self.output_name!r} of {self.task_id!r}"


def output_specs(task_id: str, outputs: Any, field: str = "outputs") -> tuple[tuple[str, OutputType], ...]:
    """
    Check declared outputs and return them as ``((name, type), ...)``.

    :param task_id: The task id, for error messages.
    :param outputs: ``{name: "String" | "Integer" | "Float" | "Boolean"}`` (Python ``str``, ``int``, ``float``,
        ``bool`` are accepted for the type), or a list of names (all ``String``), or None.
    :param field: The operator argument, for error messages.
    :raises PipelineDefinitionError: naming the task and the field.
    """
    where = f"task {task_id!r} field {field!r}"
    if outputs is None:
        return ()
    if isinstance(outputs, str):
        raise PipelineDefinitionError(
            f"{where}: expected a dict {{name: type}} or a list of names, got a string"
        )
    if not isinstance(outputs, Mapping):
        try:
            outputs = dict.fromkeys(outputs, "String")
        except TypeError:
            raise PipelineDefinitionError(
                f"{where}: expected a dict {{name: type}} or a list of names, got {type(outputs).__name__}"
            ) from None
    if len(outputs) > MAX_OUTPUTS:
        raise PipelineDefinitionError(
            f"{where}: SageMaker allows at most {MAX_OUTPUTS} outputs, got {len(outputs)}"
        )
    specs: list[tuple[str, OutputType]] = []
    for name, declared in outputs.items():
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise PipelineDefinitionError(
                f"{where}: output name {name!r} is not valid: use 1 to 256 letters, digits, '-' or '_' (the name "
                "is read back as Steps.<step>.OutputParameters['<name>'])"
            )
        kind = _PYTHON_TYPES.get(declared) if isinstance(declared, type) else declared
        if kind not in OUTPUT_TYPES:
            raise PipelineDefinitionError(
                f"{where}: output {name!r} has type {declared!r}; expected one of {list(OUTPUT_TYPES)}"
            )
        specs.append((name, kind))
    return tuple(specs)


def check_output_reference(task_id: str, declared: tuple[tuple[str, OutputType], ...], name: Any) -> None:
    """Refuse a reference to an output the step does not declare."""
    names = [n for n, _ in declared]
    if name not in names:
        raise PipelineDefinitionError(
            f"task {task_id!r} field 'outputs': {name!r} is not one of its declared outputs {names}"
        )


def output_value_text(name: str, kind: str, value: Any) -> str:
    """
    The string SageMaker stores for an output value of the declared type.

    :raises ValueError: when the value is not of that type (the message names the output).
    """
    text: str
    if kind == "Boolean":
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, str) and value.strip().lower() in ("true", "false"):
            text = value.strip().lower()
        else:
            raise ValueError(f"output {name!r} is declared Boolean, got {value!r}")
    elif kind == "Integer":
        if isinstance(value, bool):
            raise ValueError(f"output {name!r} is declared Integer, got {value!r}")
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, int):
            text = str(value)
        elif isinstance(value, str) and re.fullmatch(r"\s*[-+]?\d+\s*", value):
            text = str(int(value))
        else:
            raise ValueError(f"output {name!r} is declared Integer, got {value!r}")
    elif kind == "Float":
        try:
            number = float(value) if not isinstance(value, bool) else math.nan
        except (TypeError, ValueError):
            number = math.nan
        if math.isnan(number) or math.isinf(number):
            raise ValueError(f"output {name!r} is declared Float, got {value!r}")
        text = repr(number)
    else:
        text = json.dumps(value) if isinstance(value, dict | list) else str(value)
    if len(text) > MAX_VALUE_CHARS:
        raise ValueError(
            f"output {name!r} is {len(text)} characters long; SageMaker keeps at most {MAX_VALUE_CHARS}"
        )
    return text


def typed_output_value(kind: str, text: str) -> Any:
    """An output's stored string as the declared type (what ``Steps.<step>.OutputParameters[...]`` yields).

    A value that does not parse as its type stays a string.
    """
    try:
        if kind == "Integer":
            return int(text)
        if kind == "Float":
            return float(text)
        if kind == "Boolean" and text.strip().lower() in ("true", "false"):
            return text.strip().lower() == "true"
    except ValueError:
        return text
    return text


_OUTPUT_PATH = re.compile(r"""^Outputs\[(?:'([^']+)'|"([^"]+)")\]$""")
_PROPERTY_TYPES = {"String": "string", "Integer": "integer", "Float": "float", "Boolean": "boolean"}


def output_property_type(declared: tuple[tuple[str, OutputType], ...], path: str) -> str:
    """The type of a Callback or Lambda step's property ``path``: its properties are its declared outputs.

    :raises ValueError: for another path, or an output the step does not declare.
    """
    match = _OUTPUT_PATH.match(path)
    if match is None:
        raise ValueError(
            f"{path!r} is not a property of this step kind; its properties are its outputs "
            "(Outputs['<name>'], read with output_parameter(name))"
        )
    name = match.group(1) or match.group(2)
    types = dict(declared)
    if name not in types:
        raise ValueError(f"the step declares no output {name!r} (outputs: {sorted(types)})")
    return _PROPERTY_TYPES[types[name]]
