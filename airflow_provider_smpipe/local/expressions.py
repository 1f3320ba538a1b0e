"""Evaluation of pipeline definition expressions: Get, Std:Join, Std:JsonGet and conditions.

The shapes follow what the SageMaker Python SDK 3.x writes (``sagemaker.core.workflow``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


class ExpressionError(Exception):
    """An expression cannot be evaluated (unknown parameter, missing property, bad JSON path)."""


# One segment of a property or JSON path: `Name`, `[0]`, `['key']` or `["key"]`.
_TOKEN = re.compile(r"""\.?([A-Za-z0-9_\-:$]+)|\[(\d+)\]|\[\s*'([^']*)'\s*\]|\[\s*"([^"]*)"\s*\]""")


def parse_path(path: str) -> list[str | int]:
    """Split ``Outputs['train'].S3Output.S3Uri`` into ``['Outputs', 'train', 'S3Output', 'S3Uri']``."""
    parts: list[str | int] = []
    pos = 0
    while pos < len(path):
        match = _TOKEN.match(path, pos)
        if not match or match.end() == pos:
            raise ExpressionError(f"cannot parse path {path!r} at {path[pos:]!r}")
        name, index, key1, key2 = match.groups()
        if index is not None:
            parts.append(int(index))
        else:
            parts.append(name if name is not None else (key1 if key1 is not None else key2))
        pos = match.end()
    return parts


def walk(value: Any, parts: list[str | int], what: str) -> Any:
    """Follow ``parts`` into ``value``; lists indexed by a string match an element's ``*Name``."""
    current = value
    for part in parts:
        if isinstance(part, int):
            if not isinstance(current, list) or part >= len(current):
                raise ExpressionError(f"{what}: index [{part}] not found")
            current = current[part]
        elif isinstance(current, dict):
            if part not in current:
                raise ExpressionError(f"{what}: {part!r} not found")
            current = current[part]
        elif isinstance(current, list):
            # Outputs['train'] selects the output named train (OutputName, ChannelName, MetricName...).
            found = [
                item
                for item in current
                if isinstance(item, dict)
                and any(k.endswith("Name") and v == part for k, v in item.items() if isinstance(v, str))
            ]
            if not found:
                raise ExpressionError(f"{what}: no element named {part!r}")
            current = found[0]
        else:
            raise ExpressionError(f"{what}: cannot look up {part!r} in a {type(current).__name__}")
    return current


@dataclass
class EvalContext:
    """Everything expressions can refer to during one execution.

    :param parameters: parameter values already converted to their declared types.
    :param execution: ``Execution.*`` variables (``PipelineExecutionId``...).
    :param step_properties: returns a step's properties (its job's Describe response, or
        ``{"Outcome": ...}`` for a condition), or ``None`` when the step has none yet.
    :param property_file: reads property file ``name`` of ``step`` as decoded JSON.
    :param read_s3_json: reads a JSON object from an S3 URI (``Std:JsonGet`` with ``S3Uri``).
    """

    parameters: dict[str, Any]
    execution: dict[str, Any]
    step_properties: Callable[[str], dict[str, Any] | None]
    property_file: Callable[[str, str], Any]
    read_s3_json: Callable[[str], Any]
    referenced: set[str] = field(default_factory=set)


def evaluate(value: Any, ctx: EvalContext) -> Any:
    """Resolve every expression inside ``value`` (a definition fragment), returning plain data."""
    if isinstance(value, list):
        return [evaluate(item, ctx) for item in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        ((key, arg),) = value.items()
        if key == "Get" and isinstance(arg, str):
            return _get(arg, ctx)
        if key == "Std:Join":
            on = evaluate(arg.get("On", ""), ctx)
            return str(on).join(to_text(evaluate(item, ctx)) for item in arg.get("Values", []))
        if key == "Std:JsonGet":
            return _json_get(arg, ctx)
    return {key: evaluate(item, ctx) for key, item in value.items()}


def to_text(value: Any) -> str:
    # Join renders values the way SageMaker does: booleans lower case, no ".0" on whole floats.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def _get(path: str, ctx: EvalContext) -> Any:
    head, _, rest = path.partition(".")
    if head == "Parameters":
        if rest not in ctx.parameters:
            raise ExpressionError(f"parameter {rest!r} is not defined")
        return ctx.parameters[rest]
    if head == "Execution":
        if rest not in ctx.execution:
            raise ExpressionError(f"unknown execution variable {rest!r}")
        value = ctx.execution[rest]
        return value() if callable(value) else value
    if head == "Steps":
        step, _, prop = rest.partition(".")
        props = ctx.step_properties(step)
        if props is None:
            raise ExpressionError(f"step {step!r} has no properties (it did not run)")
        return walk(props, parse_path(prop), f"Steps.{step}")
    raise ExpressionError(f"unsupported reference {path!r}")


def _json_get(arg: dict[str, Any], ctx: EvalContext) -> Any:
    json_path = evaluate(arg.get("Path", ""), ctx)
    ref = arg.get("PropertyFile")
    if isinstance(ref, dict) and isinstance(ref.get("Get"), str):
        # {"Get": "Steps.<step>.PropertyFiles.<name>"}
        match = re.fullmatch(r"Steps\.([^.]+)\.PropertyFiles\.(.+)", ref["Get"])
        if not match:
            raise ExpressionError(f"bad PropertyFile reference {ref['Get']!r}")
        document = ctx.property_file(match.group(1), match.group(2))
    elif "S3Uri" in arg:
        document = ctx.read_s3_json(str(evaluate(arg["S3Uri"], ctx)))
    else:
        raise ExpressionError(f"Std:JsonGet needs a PropertyFile or S3Uri: {arg!r}")
    text = str(json_path)
    if text.startswith("$"):
        text = text[1:].lstrip(".")
    return walk(document, parse_path(text) if text else [], f"JsonGet {json_path!r}")


def step_references(value: Any) -> Iterator[str]:
    """Yield the names of steps that ``value`` refers to (data dependencies)."""
    if isinstance(value, list):
        for item in value:
            yield from step_references(item)
    elif isinstance(value, dict):
        get = value.get("Get")
        if len(value) == 1 and isinstance(get, str) and get.startswith("Steps."):
            yield get.split(".", 2)[1]
            return
        for item in value.values():
            yield from step_references(item)


# --- conditions -------------------------------------------------------------------------------

_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "Equals": lambda a, b: a == b,
    "GreaterThan": lambda a, b: a > b,
    "GreaterThanOrEqualTo": lambda a, b: a >= b,
    "LessThan": lambda a, b: a < b,
    "LessThanOrEqualTo": lambda a, b: a <= b,
}


def _coerce_pair(left: Any, right: Any) -> tuple[Any, Any]:
    """Compare numbers as numbers even when one side came from a string (JSON, parameters)."""

    def as_number(value: Any) -> float | None:
        if isinstance(value, bool):
            return None
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                return None
        return None

    if isinstance(left, bool) or isinstance(right, bool):
        return to_text(left).lower(), to_text(right).lower()
    ln, rn = as_number(left), as_number(right)
    if ln is not None and rn is not None and (not isinstance(left, str) or not isinstance(right, str)):
        return ln, rn
    if isinstance(left, str) and isinstance(right, str):
        return left, right
    if ln is not None and rn is not None:
        return ln, rn
    return to_text(left), to_text(right)


def evaluate_condition(condition: dict[str, Any], ctx: EvalContext) -> bool:
    kind = condition.get("Type")
    if kind in _COMPARISONS:
        left, right = _coerce_pair(
            evaluate(condition.get("LeftValue"), ctx), evaluate(condition.get("RightValue"), ctx)
        )
        try:
            return bool(_COMPARISONS[kind](left, right))
        except TypeError as err:
            raise ExpressionError(f"cannot compare {left!r} and {right!r} with {kind}") from err
    if kind == "In":
        query = evaluate(condition.get("QueryValue"), ctx)
        values = evaluate(condition.get("Values", []), ctx)
        return any(_eq(query, candidate) for candidate in values)
    if kind == "Not":
        # The SDK writes "Condition"; accept "Expression" as some docs spell it.
        inner = condition.get("Condition") or condition.get("Expression")
        if not isinstance(inner, dict):
            raise ExpressionError("Not condition without an inner Condition")
        return not evaluate_condition(inner, ctx)
    if kind == "Or":
        return any(evaluate_condition(inner, ctx) for inner in condition.get("Conditions", []))
    raise ExpressionError(f"unsupported condition type {kind!r}")


def _eq(left: Any, right: Any) -> bool:
    a, b = _coerce_pair(left, right)
    return bool(a == b)


def evaluate_conditions(conditions: list[dict[str, Any]], ctx: EvalContext) -> bool:
    """All conditions must hold (SageMaker ANDs the list)."""
    return all(evaluate_condition(condition, ctx) for condition in conditions)
