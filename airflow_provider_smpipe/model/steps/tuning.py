"""The plain model of a hyperparameter tuning step, and the hyperparameter ranges DAG authors write.

A tuning step is a training definition (everything a training step has) plus the search: the ranges of the
tuned hyperparameters, the objective metric and how the trials are chosen and run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from airflow_provider_smpipe.model.steps.training import TrainingStepSpec

if TYPE_CHECKING:
    from airflow_provider_smpipe.model.references import Operand

#: SageMaker's scaling types (``ReverseLogarithmic`` only for continuous ranges).
SCALING_TYPES = ("Auto", "Linear", "Logarithmic", "ReverseLogarithmic")
STRATEGIES = ("Bayesian", "Random", "Hyperband", "Grid")
OBJECTIVE_TYPES = ("Maximize", "Minimize")
EARLY_STOPPING_TYPES = ("Off", "Auto")


class ParameterRange:
    """A range of values a tuning step searches for one hyperparameter.

    :cvar range_type: ``Continuous``, ``Integer`` or ``Categorical``: the SageMaker range list it goes into
        (``<range_type>ParameterRanges``).
    """

    range_type: ClassVar[str] = ""

    def operands(self) -> tuple[Operand, ...]:
        """Every value of the range (references included), for reference checks."""
        raise NotImplementedError


@dataclass(frozen=True)
class ContinuousRange(ParameterRange):
    """Floating-point values between ``min_value`` and ``max_value``, e.g. ``ContinuousRange(1e-4, 0.1,
    scaling="Logarithmic")``.

    :param min_value: The lowest value; a pipeline parameter is allowed.
    :param max_value: The highest value; a pipeline parameter is allowed.
    :param scaling: ``Auto``, ``Linear``, ``Logarithmic`` (values above 0) or ``ReverseLogarithmic``
        (values in [0, 1)).
    """

    range_type: ClassVar[str] = "Continuous"

    min_value: Operand
    max_value: Operand
    scaling: str = "Auto"

    def operands(self) -> tuple[Operand, ...]:
        return (self.min_value, self.max_value)


@dataclass(frozen=True)
class IntegerRange(ParameterRange):
    """Whole numbers from ``min_value`` to ``max_value`` (both included), e.g. ``IntegerRange(2, 10)``.

    :param min_value: The lowest value; a pipeline parameter is allowed.
    :param max_value: The highest value; a pipeline parameter is allowed.
    :param scaling: ``Auto``, ``Linear`` or ``Logarithmic`` (values above 0).
    """

    range_type: ClassVar[str] = "Integer"

    min_value: Operand
    max_value: Operand
    scaling: str = "Auto"

    def operands(self) -> tuple[Operand, ...]:
        return (self.min_value, self.max_value)


@dataclass(frozen=True, init=False)
class CategoricalRange(ParameterRange):
    """A list of values to choose from, e.g. ``CategoricalRange(["gbtree", "dart"])``.

    :param values: 1 to 30 values (strings, numbers, booleans or pipeline parameters), passed to the job as
        strings.
    """

    range_type: ClassVar[str] = "Categorical"

    values: tuple[Operand, ...]

    def __init__(self, values: Operand | list[Operand] | tuple[Operand, ...]) -> None:
        items = tuple(values) if isinstance(values, list | tuple) else (values,)
        object.__setattr__(self, "values", items)

    def operands(self) -> tuple[Operand, ...]:
        return self.values


@dataclass(frozen=True)
class MetricDefinitionSpec:
    """A metric SageMaker reads from the job's log: the first group of ``regex`` is its value."""

    name: str
    regex: str


@dataclass(frozen=True)
class TuningStepSpec(TrainingStepSpec):
    """A tuning step: the training fields describe every trial's training job; ``hyperparameters`` are the
    static ones (a tuned name's value comes from its range)."""

    step_type: ClassVar[str] = "Tuning"

    hyperparameter_ranges: tuple[tuple[str, ParameterRange], ...] = ()
    objective_metric_name: str = ""
    objective_type: Operand = "Maximize"
    metric_definitions: tuple[MetricDefinitionSpec, ...] = ()
    strategy: Operand = "Bayesian"
    max_jobs: int | None = None
    max_parallel_jobs: int = 1
    early_stopping: Operand = "Off"
    random_seed: int | None = None
