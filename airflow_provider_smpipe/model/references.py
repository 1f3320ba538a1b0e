"""References to pipeline parameters and to other steps' results, and conditions built from them.

A reference stands for a value SageMaker only knows while the pipeline runs (``{"Get": ...}`` in the
definition). References name steps by Airflow task id; the group maps task ids to step names, checks that every
reference points at something that exists, and adds the dependency edge the reference implies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

ParameterType = Literal["String", "Integer", "Float", "Boolean"]
PrimitiveValue = str | int | float | bool


class Reference:
    """A value resolved by SageMaker at run time. Comparisons build :class:`Condition` objects.

    ``<``, ``<=``, ``>``, ``>=`` work as operators; equality uses :meth:`eq` / :meth:`ne` because Python's
    ``==`` must keep meaning "same reference" (references are put in sets and dicts).
    """

    def step_task_ids(self) -> tuple[str, ...]:
        """Task ids of the steps this reference reads from (each implies a dependency edge)."""
        return ()

    def eq(self, other: Operand) -> Condition:
        return Comparison("Equals", self, other)

    def ne(self, other: Operand) -> Condition:
        return Not(Comparison("Equals", self, other))

    def is_in(self, values: Iterable[Operand]) -> Condition:
        return In(self, tuple(values))

    def __gt__(self, other: Operand) -> Condition:
        return Comparison("GreaterThan", self, other)

    def __ge__(self, other: Operand) -> Condition:
        return Comparison("GreaterThanOrEqualTo", self, other)

    def __lt__(self, other: Operand) -> Condition:
        return Comparison("LessThan", self, other)

    def __le__(self, other: Operand) -> Condition:
        return Comparison("LessThanOrEqualTo", self, other)


Operand = Reference | PrimitiveValue


@dataclass(frozen=True, eq=True)
class ParameterRef(Reference):
    """A pipeline parameter of the group, e.g. ``group.parameter("InputData")``."""

    name: str

    def __str__(self) -> str:
        return f"Parameters.{self.name}"


@dataclass(frozen=True, eq=True)
class ExecutionVariableRef(Reference):
    """A property of the running execution: ``PipelineExecutionId``, ``PipelineName``, ``StartDateTime``..."""

    name: str

    def __str__(self) -> str:
        return f"Execution.{self.name}"


@dataclass(frozen=True, eq=True)
class StepOutputRef(Reference):
    """The S3 URI of a processing step's named output."""

    task_id: str
    output_name: str

    def step_task_ids(self) -> tuple[str, ...]:
        return (self.task_id,)

    def __str__(self) -> str:
        return f"output {self.output_name!r} of {self.task_id!r}"


@dataclass(frozen=True, eq=True)
class ModelArtifactsRef(Reference):
    """The S3 URI of the ``model.tar.gz`` a step writes: a training step's, or the ``rank``-th best training
    job's of a tuning step (0: the best)."""

    task_id: str
    rank: int = 0

    def step_task_ids(self) -> tuple[str, ...]:
        return (self.task_id,)

    def __str__(self) -> str:
        if self.rank:
            return f"model artifacts of the training job ranked {self.rank} of {self.task_id!r}"
        return f"model artifacts of {self.task_id!r}"


@dataclass(frozen=True, eq=True)
class PropertyFileRef(Reference):
    """A value read with a JSON path from a property file a processing step wrote (``Std:JsonGet``)."""

    task_id: str
    file_name: str
    json_path: str

    def step_task_ids(self) -> tuple[str, ...]:
        return (self.task_id,)

    def __str__(self) -> str:
        return f"{self.json_path!r} of property file {self.file_name!r} of {self.task_id!r}"


@dataclass(frozen=True, eq=True)
class StepPropertyRef(Reference):
    """Any step property path, e.g. ``"ProcessingJobName"`` or ``"FinalMetricDataList['acc'].Value"``."""

    task_id: str
    path: str

    def step_task_ids(self) -> tuple[str, ...]:
        return (self.task_id,)

    def __str__(self) -> str:
        return f"property {self.path!r} of {self.task_id!r}"


@dataclass(frozen=True, eq=True)
class JoinRef(Reference):
    """Values joined into one string at run time (``Std:Join``), e.g. to build an S3 path."""

    values: tuple[Operand, ...]
    on: str = ""

    def step_task_ids(self) -> tuple[str, ...]:
        return tuple(t for v in self.values if isinstance(v, Reference) for t in v.step_task_ids())


def join(*values: Operand, on: str = "") -> JoinRef:
    """Join values (strings, parameters, step properties) at run time: ``join("s3://b/", ref, on="")``."""
    return JoinRef(values=tuple(values), on=on)


def execution_variable(name: str) -> ExecutionVariableRef:
    """Refer to a property of the running execution, e.g. ``execution_variable("PipelineExecutionId")``."""
    return ExecutionVariableRef(name)


# Conditions -----------------------------------------------------------------------------------------------


class Condition:
    """A boolean expression a condition step evaluates. Combine with ``&``, ``|`` and ``~``."""

    def __and__(self, other: Condition) -> Condition:
        return all_of(self, other)

    def __or__(self, other: Condition) -> Condition:
        return any_of(self, other)

    def __invert__(self) -> Condition:
        return Not(self)

    def operands(self) -> Iterator[Operand]:
        """Every operand, recursively (to find references)."""
        return iter(())


ComparisonType = Literal["Equals", "GreaterThan", "GreaterThanOrEqualTo", "LessThan", "LessThanOrEqualTo"]


@dataclass(frozen=True)
class Comparison(Condition):
    type: ComparisonType
    left: Operand
    right: Operand

    def operands(self) -> Iterator[Operand]:
        yield self.left
        yield self.right


@dataclass(frozen=True)
class In(Condition):
    value: Operand
    choices: tuple[Operand, ...]

    def operands(self) -> Iterator[Operand]:
        yield self.value
        yield from self.choices


@dataclass(frozen=True)
class Not(Condition):
    expression: Condition

    def operands(self) -> Iterator[Operand]:
        return self.expression.operands()


@dataclass(frozen=True)
class AllOf(Condition):
    conditions: tuple[Condition, ...] = field(default=())

    def operands(self) -> Iterator[Operand]:
        for condition in self.conditions:
            yield from condition.operands()


@dataclass(frozen=True)
class AnyOf(Condition):
    conditions: tuple[Condition, ...] = field(default=())

    def operands(self) -> Iterator[Operand]:
        for condition in self.conditions:
            yield from condition.operands()


def all_of(*conditions: Condition) -> Condition:
    """All conditions must hold (and)."""
    flat: list[Condition] = []
    for condition in conditions:
        flat.extend(condition.conditions if isinstance(condition, AllOf) else (condition,))
    return AllOf(tuple(flat))


def any_of(*conditions: Condition) -> Condition:
    """At least one condition must hold (or)."""
    flat: list[Condition] = []
    for condition in conditions:
        flat.extend(condition.conditions if isinstance(condition, AnyOf) else (condition,))
    return AnyOf(tuple(flat))


def not_(condition: Condition) -> Condition:
    """The condition must not hold."""
    return Not(condition)


# Parameters -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Parameter:
    """A pipeline parameter declared on the group, with a default and an explicit SageMaker type.

    Plain Python defaults are enough in most cases (``{"Threshold": 0.8}`` becomes a Float); use this class to
    give the type explicitly or to declare a parameter without a default.
    """

    default: PrimitiveValue | None = None
    type: ParameterType | None = None
    enum_values: tuple[str, ...] | None = None

    def resolved_type(self) -> ParameterType:
        if self.type is not None:
            return self.type
        return infer_parameter_type(self.default)


def infer_parameter_type(value: Any) -> ParameterType:
    """The SageMaker parameter type for a Python default (``bool`` before ``int``: bool is an int)."""
    if isinstance(value, bool):
        return "Boolean"
    if isinstance(value, int):
        return "Integer"
    if isinstance(value, float):
        return "Float"
    if isinstance(value, str) or value is None:
        return "String"
    raise TypeError(f"cannot infer a SageMaker parameter type for {type(value).__name__} value {value!r}")


def iter_references(value: Any, path: str = "") -> Iterator[tuple[str, Reference]]:
    """Every reference inside ``value`` (dicts, lists, tuples, conditions), with the path to it."""
    if isinstance(value, JoinRef):
        yield path, value
        for index, item in enumerate(value.values):
            yield from iter_references(item, f"{path}.values[{index}]")
    elif isinstance(value, Reference):
        yield path, value
    elif isinstance(value, Condition):
        for operand in value.operands():
            yield from iter_references(operand, path)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from iter_references(item, f"{path}[{key!r}]")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from iter_references(item, f"{path}[{index}]")
