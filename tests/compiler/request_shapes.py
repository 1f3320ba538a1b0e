"""Checks a step's rendered ``Arguments`` against botocore's input shape of the API call the step makes."""

from __future__ import annotations

from typing import Any

from botocore.model import ListShape, MapShape, Shape, StructureShape

from airflow_provider_smpipe.local.validation import operation_model

#: Pipeline expressions stand for a value SageMaker fills in at run time.
_EXPRESSION_KEYS = {"Get", "Std:Join", "Std:JsonGet"}


def request_problems(
    operation: str, arguments: dict[str, Any], filled_in: set[str] = frozenset()
) -> list[str]:
    """Problems of ``arguments`` as a ``operation`` request; ``filled_in``: required members the pipeline adds
    itself (the job name)."""
    shape = operation_model("sagemaker", operation).input_shape
    errors: list[str] = []
    _check(shape, arguments, operation, errors, filled_in)
    return errors


def _check(shape: Shape, value: Any, path: str, errors: list[str], filled_in: set[str] = frozenset()) -> None:
    if isinstance(value, dict) and set(value) & _EXPRESSION_KEYS and not isinstance(shape, MapShape):
        return
    if isinstance(shape, StructureShape):
        if not isinstance(value, dict):
            errors.append(f"{path}: expected an object, got {value!r}"[:200])
            return
        for name in shape.required_members:
            if name not in value and name not in filled_in:
                errors.append(f"{path}: missing required member {name}")
        for key, item in value.items():
            if key not in shape.members:
                errors.append(f"{path}: unknown member {key}")
            elif item is None:
                errors.append(f"{path}.{key}: null")
            else:
                _check(shape.members[key], item, f"{path}.{key}", errors)
    elif isinstance(shape, ListShape):
        if not isinstance(value, list):
            errors.append(f"{path}: expected a list")
            return
        for index, item in enumerate(value):
            _check(shape.member, item, f"{path}[{index}]", errors)
    elif isinstance(shape, MapShape):
        if not isinstance(value, dict):
            errors.append(f"{path}: expected a map")
            return
        for key, item in value.items():
            _check(shape.value, item, f"{path}[{key!r}]", errors)
    else:
        kind = shape.type_name
        if kind == "string":
            if not isinstance(value, str):
                errors.append(f"{path}: expected a string, got {value!r}"[:200])
            elif shape.metadata.get("enum") and value not in shape.metadata["enum"]:
                errors.append(f"{path}: {value!r} not in {shape.metadata['enum']}")
        elif kind in ("integer", "long"):
            if isinstance(value, bool) or not isinstance(value, int):
                errors.append(f"{path}: expected an integer, got {value!r}"[:200])
            else:
                low, high = shape.metadata.get("min"), shape.metadata.get("max")
                if (low is not None and value < low) or (high is not None and value > high):
                    errors.append(f"{path}: {value} outside [{low}, {high}]")
        elif kind == "boolean" and not isinstance(value, bool):
            errors.append(f"{path}: expected a boolean, got {value!r}")
