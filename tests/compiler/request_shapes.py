"""Checks a step's request arguments against the botocore input shape of the API call the step makes.

Pipeline expressions (``{"Get": ...}``, ``{"Std:Join": ...}``, ``{"Std:JsonGet": ...}``) stand for a scalar value
SageMaker fills in at run time, so they are accepted wherever a scalar is; members SageMaker Pipelines sets
itself (the job name) may be missing.
"""

from __future__ import annotations

from typing import Any

import botocore.session
from botocore.model import ListShape, MapShape, Shape, StructureShape

_EXPRESSIONS = frozenset({"Get", "Std:Join", "Std:JsonGet"})


def _is_expression(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and next(iter(value)) in _EXPRESSIONS


def request_problems(operation: str, arguments: dict[str, Any], filled_by_pipeline: set[str]) -> list[str]:
    """The problems of ``arguments`` as the input of SageMaker ``operation`` (an empty list: none)."""
    model = botocore.session.get_session().get_service_model("sagemaker")
    shape = model.operation_model(operation).input_shape
    problems: list[str] = []
    _check(shape, arguments, operation, problems, filled_by_pipeline)
    return problems


def _check(
    shape: Shape, value: Any, path: str, problems: list[str], optional: set[str] = frozenset()
) -> None:  # type: ignore[assignment]
    if _is_expression(value) and not isinstance(shape, StructureShape | ListShape | MapShape):
        return
    if isinstance(shape, StructureShape):
        if not isinstance(value, dict):
            problems.append(f"{path}: expected an object, got {value!r}"[:200])
            return
        for name in shape.required_members:
            if name not in value and name not in optional:
                problems.append(f"{path}: missing required member {name}")
        for key, item in value.items():
            if key not in shape.members:
                problems.append(f"{path}: unknown member {key}")
            else:
                _check(shape.members[key], item, f"{path}.{key}", problems)
    elif isinstance(shape, ListShape):
        if not isinstance(value, list):
            problems.append(f"{path}: expected a list, got {value!r}"[:200])
            return
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        if (low is not None and len(value) < low) or (high is not None and len(value) > high):
            problems.append(f"{path}: {len(value)} items, outside [{low}, {high}]")
        for index, item in enumerate(value):
            _check(shape.member, item, f"{path}[{index}]", problems)
    elif isinstance(shape, MapShape):
        if not isinstance(value, dict):
            problems.append(f"{path}: expected a map, got {value!r}"[:200])
            return
        for key, item in value.items():
            _check(shape.key, key, f"{path}<key>", problems)
            _check(shape.value, item, f"{path}[{key!r}]", problems)
    else:
        _check_scalar(shape, value, path, problems)


def _check_scalar(shape: Shape, value: Any, path: str, problems: list[str]) -> None:
    kind = shape.type_name
    if kind == "string":
        if not isinstance(value, str):
            problems.append(f"{path}: expected a string, got {value!r}"[:200])
            return
        enum = shape.metadata.get("enum")
        if enum and value not in enum:
            problems.append(f"{path}: {value!r} is not one of {sorted(enum)}")
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        if (low is not None and len(value) < low) or (high is not None and len(value) > high):
            problems.append(f"{path}: length {len(value)} outside [{low}, {high}]")
    elif kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            problems.append(f"{path}: expected an integer, got {value!r}"[:200])
            return
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        if (low is not None and value < low) or (high is not None and value > high):
            problems.append(f"{path}: {value} outside [{low}, {high}]")
    elif kind in ("float", "double"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            problems.append(f"{path}: expected a number, got {value!r}"[:200])
    elif kind == "boolean" and not isinstance(value, bool):
        problems.append(f"{path}: expected a boolean, got {value!r}"[:200])
