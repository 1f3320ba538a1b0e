"""Conditions compare values of one type: a String parameter with a string, a number with a number.

SageMaker evaluates ``Equals``, ``GreaterThan``... on the values as they are typed at run time; comparing a
String parameter with a number never holds (or fails the step), so it is refused when the DAG is parsed, as is
ordering booleans or comparing a whole structure (``step_property("ModelArtifacts")``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_provider_smpipe.model.references import AllOf, AnyOf, Comparison, In, Not, Reference

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_provider_smpipe.model.references import Condition, Operand

#: What a value is for comparing: "string", "number", "boolean", or a structure/list/map that is not a value.
KIND_OF_PARAMETER = {"String": "string", "Integer": "number", "Float": "number", "Boolean": "boolean"}
KIND_OF_PROPERTY = {
    "string": "string",
    "integer": "number",
    "long": "number",
    "float": "number",
    "double": "number",
    "boolean": "boolean",
    "structure": "structure",
    "list": "list",
    "map": "map",
}
_NOT_VALUES = ("structure", "list", "map")


def literal_kind(value: Operand) -> str | None:
    """The kind of a literal operand (None for a reference)."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return None


def check_condition_types(
    condition: Condition, kind_of: Callable[[Operand], str | None], describe: Callable[[Operand], str]
) -> None:
    """Refuse comparisons of values of different kinds.

    :param kind_of: The kind of an operand, None when it is only known at run time (property files...).
    :param describe: How an operand is named in the message.
    :raises ValueError: saying which comparison and why.
    """
    if isinstance(condition, Not):
        check_condition_types(condition.expression, kind_of, describe)
    elif isinstance(condition, AllOf | AnyOf):
        for inner in condition.conditions:
            check_condition_types(inner, kind_of, describe)
    elif isinstance(condition, Comparison):
        _check_pair(condition.type, condition.left, condition.right, kind_of, describe)
    elif isinstance(condition, In):
        for choice in condition.choices:
            _check_pair("In", condition.value, choice, kind_of, describe)


def _check_pair(
    comparison: str,
    left: Operand,
    right: Operand,
    kind_of: Callable[[Operand], str | None],
    describe: Callable[[Operand], str],
) -> None:
    kinds = []
    for operand in (left, right):
        kind = kind_of(operand) if isinstance(operand, Reference) else literal_kind(operand)
        if kind in _NOT_VALUES:
            raise ValueError(f"{describe(operand)} is a {kind}, not a value a condition can compare")
        kinds.append(kind)
    if None in kinds:
        return
    if kinds[0] != kinds[1]:
        raise ValueError(
            f"{comparison} compares {describe(left)} with {describe(right)}; SageMaker compares values of one "
            "type (convert the literal, or declare the parameter with the right type)"
        )
    if kinds[0] == "boolean" and comparison not in ("Equals", "In"):
        raise ValueError(f"{comparison} orders booleans ({describe(left)}); use .eq(True) or .eq(False)")


def describe_literal(value: Operand) -> str:
    kind = literal_kind(value)
    return f"the {kind} {value!r}" if kind else repr(value)
