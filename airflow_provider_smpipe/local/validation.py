"""Checks responses against botocore's output shapes, so drift from the real API fails tests.

The server runs this in strict mode over every SageMaker response it produces or forwards.
"""

from __future__ import annotations

import functools
from typing import Any

import botocore.session
from botocore.model import ListShape, MapShape, OperationModel, Shape, StructureShape


@functools.cache
def _service_model(service: str) -> Any:
    return botocore.session.get_session().get_service_model(service)


def operation_model(service: str, operation: str) -> OperationModel:
    return _service_model(service).operation_model(operation)


def validate_output(service: str, operation: str, data: Any) -> list[str]:
    """Return the problems found in ``data`` (a decoded JSON response) for ``operation``.

    Timestamps are expected as they travel over the JSON protocol: epoch seconds.
    """
    shape = operation_model(service, operation).output_shape
    if shape is None:
        return [] if not data else [f"{operation}: expected an empty response, got {data!r}"[:300]]
    errors: list[str] = []
    _check(shape, data, operation, errors)
    return errors


def _check(shape: Shape, value: Any, path: str, errors: list[str]) -> None:
    if isinstance(shape, StructureShape):
        if not isinstance(value, dict):
            errors.append(f"{path}: expected an object, got {type(value).__name__}")
            return
        members = shape.members
        for name in shape.required_members:
            if name not in value:
                errors.append(f"{path}: missing required member {name}")
        for key, item in value.items():
            if key not in members:
                errors.append(f"{path}: unknown member {key}")
            elif item is not None:
                _check(members[key], item, f"{path}.{key}", errors)
            else:
                errors.append(f"{path}.{key}: null value")
    elif isinstance(shape, ListShape):
        if not isinstance(value, list):
            errors.append(f"{path}: expected a list, got {type(value).__name__}")
            return
        for index, item in enumerate(value):
            _check(shape.member, item, f"{path}[{index}]", errors)
    elif isinstance(shape, MapShape):
        if not isinstance(value, dict):
            errors.append(f"{path}: expected a map, got {type(value).__name__}")
            return
        for key, item in value.items():
            _check(shape.key, key, f"{path}<key>", errors)
            _check(shape.value, item, f"{path}[{key!r}]", errors)
    else:
        _check_scalar(shape, value, path, errors)


def _check_scalar(shape: Shape, value: Any, path: str, errors: list[str]) -> None:
    kind = shape.type_name
    if kind == "string":
        if not isinstance(value, str):
            errors.append(f"{path}: expected a string, got {type(value).__name__}")
            return
        enum = shape.metadata.get("enum")
        if enum and value not in enum:
            errors.append(f"{path}: {value!r} is not one of {sorted(enum)}")
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        if low is not None and len(value) < low:
            errors.append(f"{path}: shorter than {low} characters")
        if high is not None and len(value) > high:
            errors.append(f"{path}: longer than {high} characters")
    elif kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            errors.append(f"{path}: expected an integer, got {value!r}"[:200])
        else:
            low, high = shape.metadata.get("min"), shape.metadata.get("max")
            if (low is not None and value < low) or (high is not None and value > high):
                errors.append(f"{path}: {value} outside [{low}, {high}]")
    elif kind in ("float", "double"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            errors.append(f"{path}: expected a number, got {value!r}"[:200])
    elif kind == "boolean":
        if not isinstance(value, bool):
            errors.append(f"{path}: expected a boolean, got {value!r}"[:200])
    elif kind == "timestamp":
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            errors.append(f"{path}: expected a timestamp, got {value!r}"[:200])
    elif kind == "blob" and not isinstance(value, str | bytes):
        errors.append(f"{path}: expected a blob, got {type(value).__name__}")
