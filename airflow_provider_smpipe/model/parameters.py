"""Pipeline parameters: their declarations and the values an execution is started with, checked as SageMaker
checks them (``CreatePipeline`` / ``StartPipelineExecution``).

- Names: 1-256 letters, digits, ``-`` and ``_``; at most 200 parameters.
- Types: ``String``, ``Integer``, ``Float``, ``Boolean``; a default must be of the declared type.
- Values are sent as strings of at most 1,024 characters. Integer values are whole numbers (``3`` or
  ``"3"``), Float values numbers, Boolean values ``True``/``False`` or the strings ``"true"``/``"false"`` in any
  case (sent as ``"true"``/``"false"``).
- Enum values (``Parameter(..., enum_values=[...])``) apply to String parameters; the default and every value
  must be one of them.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any, get_args

from airflow_provider_smpipe.model.references import ParameterType, Reference
from airflow_provider_smpipe.model.spec import ParameterSpec

if TYPE_CHECKING:
    from collections.abc import Iterable

    from airflow_provider_smpipe.model.references import Parameter

PARAMETER_TYPES: tuple[str, ...] = get_args(ParameterType)
MAX_PARAMETERS = 200
MAX_VALUE_CHARS = 1024
_NAME = re.compile(r"^[A-Za-z0-9\-_]{1,256}$")
_INTEGER = re.compile(r"^\s*[-+]?\d+\s*$")


def check_name(name: Any) -> None:
    """:raises ValueError: when ``name`` is not a SageMaker parameter name."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(
            f"{name!r} is not a SageMaker parameter name (1-256 letters, digits, '-' and '_', no spaces or dots)"
        )


def value_text(kind: str, value: Any) -> str:
    """The string SageMaker is given for ``value`` of parameter type ``kind``.

    :raises ValueError: when the value is not of that type or is too long, saying so.
    """
    if isinstance(value, Reference) or value is None or isinstance(value, dict | list | tuple | set):
        raise ValueError(f"{value!r:.80} is not a {kind} value")
    if kind == "Boolean":
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower()
        raise ValueError(f"{value!r:.80} is not a Boolean (true or false)")
    if kind == "Integer":
        if isinstance(value, bool) or not (
            isinstance(value, int) or (isinstance(value, str) and _INTEGER.match(value))
        ):
            raise ValueError(f"{value!r:.80} is not an Integer (a whole number)")
        text = str(int(value))
    elif kind == "Float":
        try:
            number = float(value) if not isinstance(value, bool) else math.nan
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            raise ValueError(f"{value!r:.80} is not a Float (a finite number)")
        text = str(value).strip()
    else:
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
    if len(text) > MAX_VALUE_CHARS:
        raise ValueError(f"a value of {len(text)} characters; SageMaker takes at most {MAX_VALUE_CHARS}")
    return text


def parameter_spec(name: str, declared: Parameter) -> ParameterSpec:
    """The model of one declared parameter.

    :raises ValueError: for a bad name, an unknown type, a default not of the type or too long, or enum values
        that do not fit.
    """
    from airflow_provider_smpipe.model.references import infer_parameter_type

    check_name(name)
    if declared.type is not None and declared.type not in PARAMETER_TYPES:
        raise ValueError(
            f"type {declared.type!r} is unknown; SageMaker parameter types are {list(PARAMETER_TYPES)}"
        )
    try:
        kind: ParameterType = declared.type or infer_parameter_type(declared.default)
    except TypeError as error:
        raise ValueError(f"{error}; defaults are strings, numbers or booleans") from None
    if declared.default is not None:
        if kind == "Float" and isinstance(declared.default, int) and not isinstance(declared.default, bool):
            pass  # 3 is a good Float default
        elif infer_parameter_type(declared.default) != kind:
            raise ValueError(f"default {declared.default!r:.80} is not a {kind}")
        try:
            value_text(kind, declared.default)
        except ValueError as error:
            raise ValueError(f"default: {error}") from None
    enum_values = declared.enum_values
    if enum_values is not None:
        if kind != "String":
            raise ValueError(f"enum_values are for String parameters (SageMaker has none for {kind})")
        if (
            isinstance(enum_values, str)
            or not enum_values
            or not all(isinstance(v, str) for v in enum_values)
        ):
            raise ValueError(f"enum_values must be a non-empty list of strings, got {enum_values!r:.80}")
        enum_values = tuple(enum_values)
        if declared.default is not None and declared.default not in enum_values:
            raise ValueError(f"default {declared.default!r} is not one of enum_values {list(enum_values)}")
    return ParameterSpec(name, kind, declared.default, enum_values)


def check_count(names: Iterable[str]) -> None:
    """:raises ValueError: for more parameters than SageMaker takes."""
    count = len(list(names))
    if count > MAX_PARAMETERS:
        raise ValueError(f"{count} parameters; SageMaker takes at most {MAX_PARAMETERS}")


def execution_value(spec: ParameterSpec, value: Any) -> str:
    """The string an execution is started with for parameter ``spec``.

    :raises ValueError: when the value is not of the declared type, too long, or not one of the enum values.
    """
    text = value_text(spec.type, value)
    if spec.enum_values is not None and text not in spec.enum_values:
        raise ValueError(f"{text!r:.80} is not one of enum_values {list(spec.enum_values)}")
    return text


def is_unrendered(value: Any) -> bool:
    """A value Airflow renders for each run (checked by the launch task once rendered)."""
    return isinstance(value, str) and ("{{" in value or "{%" in value)
