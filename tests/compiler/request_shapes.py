"""Checks a step's definition arguments against botocore's input shape of the API call SageMaker makes for it.

Pipeline expressions (``Get``, ``Std:Join``, ``Std:JsonGet``) stand for values known at run time and are
accepted wherever a scalar goes; members SageMaker fills in when the step runs (a model's name) are named by
the caller. Lengths, enums, required members and string patterns are checked.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import botocore.session
from botocore.model import ListShape, MapShape, Shape, StructureShape

if TYPE_CHECKING:
    from collections.abc import Collection

try:  # botocore's patterns use \p{L}-style classes, which only the regex module knows
    import regex as pattern_engine
except ImportError:  # pragma: no cover
    import re as pattern_engine  # type: ignore[no-redef]

_EXPRESSIONS = {"Get", "Std:Join", "Std:JsonGet"}
# Some models (EMR's) write "any XML character" in Java's UTF-16 form, supplementary planes as a surrogate pair range.
_SURROGATE_PAIR_RANGE = "\\uD800\\uDC00-\\uDBFF\\uDFFF"


def _is_expression(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and next(iter(value)) in _EXPRESSIONS


def request_problems(
    operation: str,
    arguments: dict[str, Any],
    filled_at_run_time: Collection[str] = (),
    service: str = "sagemaker",
) -> list[str]:
    """The problems of ``arguments`` as the input of ``operation`` of ``service`` (default SageMaker; empty:
    valid)."""
    model = botocore.session.get_session().get_service_model(service)
    shape = model.operation_model(operation).input_shape
    assert shape is not None
    errors: list[str] = []
    _check(shape, arguments, operation, errors, tuple(filled_at_run_time))
    return errors


def _check(shape: Shape, value: Any, path: str, errors: list[str], filled: tuple[str, ...] = ()) -> None:
    if _is_expression(value):
        if isinstance(shape, StructureShape | ListShape | MapShape):
            errors.append(f"{path}: an expression where a {shape.type_name} is expected")
        return
    if isinstance(shape, StructureShape):
        if not isinstance(value, dict):
            errors.append(f"{path}: expected an object, got {type(value).__name__}")
            return
        for name in shape.required_members:
            if name not in value and name not in filled:
                errors.append(f"{path}: missing required member {name}")
        for key, item in value.items():
            if key not in shape.members:
                errors.append(f"{path}: unknown member {key}")
            else:
                _check(shape.members[key], item, f"{path}.{key}", errors)
    elif isinstance(shape, ListShape):
        if not isinstance(value, list):
            errors.append(f"{path}: expected a list, got {type(value).__name__}")
            return
        _bounds(shape, len(value), path, errors)
        for index, item in enumerate(value):
            _check(shape.member, item, f"{path}[{index}]", errors)
    elif isinstance(shape, MapShape):
        if not isinstance(value, dict):
            errors.append(f"{path}: expected a map, got {type(value).__name__}")
            return
        _bounds(shape, len(value), path, errors)
        for key, item in value.items():
            _check(shape.key, key, f"{path}<key>", errors)
            _check(shape.value, item, f"{path}[{key!r}]", errors)
    elif shape.type_name == "string":
        if not isinstance(value, str):
            errors.append(f"{path}: expected a string, got {value!r}")
            return
        _bounds(shape, len(value), path, errors)
        enum = shape.metadata.get("enum")
        if enum and value not in enum:
            errors.append(f"{path}: {value!r} is not one of {enum}")
        pattern = shape.metadata.get("pattern")
        if pattern and _compiled(pattern).fullmatch(value) is None:
            errors.append(f"{path}: {value!r} does not match {pattern}")
    elif shape.type_name == "boolean":
        if not isinstance(value, bool):
            errors.append(f"{path}: expected a boolean, got {value!r}")
    elif shape.type_name in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            errors.append(f"{path}: expected an integer, got {value!r}")
        else:
            _bounds(shape, value, path, errors)


@functools.cache
def _compiled(pattern: str) -> Any:
    return pattern_engine.compile(pattern.replace(_SURROGATE_PAIR_RANGE, "\\U00010000-\\U0010FFFF"))


def _bounds(shape: Shape, size: int, path: str, errors: list[str]) -> None:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if (low is not None and size < low) or (high is not None and size > high):
        errors.append(f"{path}: {size} outside [{low}, {high}]")
