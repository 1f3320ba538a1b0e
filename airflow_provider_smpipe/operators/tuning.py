"""A SageMaker hyperparameter tuning step as an Airflow task."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_smpipe.exceptions import PipelineDefinitionError
from airflow_provider_smpipe.model.references import ModelArtifactsRef, Reference, StepPropertyRef
from airflow_provider_smpipe.model.steps.tuning import (
    EARLY_STOPPING_TYPES,
    OBJECTIVE_TYPES,
    SCALING_TYPES,
    STRATEGIES,
    CategoricalRange,
    ContinuousRange,
    IntegerRange,
    MetricDefinitionSpec,
    ParameterRange,
    TuningStepSpec,
)
from airflow_provider_smpipe.operators.training import SageMakerTrainingStepOperator

if TYPE_CHECKING:
    from airflow_provider_smpipe.model.references import Operand

#: SageMaker keeps the 50 best training jobs of a tuning step in ``TrainingJobSummaries``.
TOP_TRAINING_JOBS = 50
#: At most this many hyperparameters are searched (all range kinds together).
MAX_RANGES = 30
MAX_CATEGORICAL_VALUES = 30
MAX_METRIC_DEFINITIONS = 40


class SageMakerTuningStepOperator(SageMakerTrainingStepOperator):
    """A SageMaker hyperparameter tuning job as one step of the group's pipeline (the SDK's
    ``HyperparameterTuner`` over a ``ModelTrainer``).

    Every argument of :class:`~airflow_provider_smpipe.SageMakerTrainingStepOperator` describes the training
    job each trial runs; ``hyperparameters`` are the static ones. The training script reads the tuned values
    like any hyperparameter (``--name value`` arguments, ``SM_HP_<NAME>``) and prints the objective metric,
    which SageMaker reads from the log with the metric's regex.

    On SageMaker the trials run in the training image's own script mode (``sagemaker_program`` and
    ``sagemaker_submit_directory`` hyperparameters, as the SDK's tuner sets them): use a SageMaker framework
    image (scikit-learn, PyTorch, TensorFlow, XGBoost...) whose training toolkit honours them.

    :param hyperparameter_ranges: ``{name: range}`` with :class:`~airflow_provider_smpipe.ContinuousRange`,
        :class:`~airflow_provider_smpipe.IntegerRange` or :class:`~airflow_provider_smpipe.CategoricalRange`
        values (bounds and categories may be pipeline parameters). At most 30.
    :param objective_metric_name: The metric whose value ranks the trials, e.g. ``"validation:auc"``.
    :param objective_metric_regex: The regex that reads it from the training log; its first group is the
        value, e.g. ``r"validation:auc=([0-9.]+)"``. Not needed when ``metric_definitions`` names the metric.
    :param metric_definitions: More metrics to read from the log, as ``[{"Name": ..., "Regex": ...}]``.
    :param objective_type: ``"Maximize"`` or ``"Minimize"`` (a pipeline parameter is allowed).
    :param strategy: ``"Bayesian"``, ``"Random"``, ``"Hyperband"`` or ``"Grid"`` (Grid takes categorical
        ranges only and runs every combination).
    :param max_jobs: At most this many training jobs (default 1; with Grid: the number of combinations, and
        when given it must be that number).
    :param max_parallel_jobs: At most this many training jobs at once.
    :param early_stopping: ``"Off"`` or ``"Auto"`` (SageMaker stops trials unlikely to beat the best; Hyperband
        needs ``"Off"``: it stops trials itself).
    :param random_seed: Seed of the search, for more repeatable choices of hyperparameters.
    :param cache: ``True`` or an ISO 8601 duration such as ``"P30D"`` to cache the step.
    :param retry_policies: SageMaker retry policies as dicts.

    References for later steps: :attr:`model_artifacts` (the best training job's ``model.tar.gz``),
    :meth:`top_model_artifacts` (the k-th best), :attr:`best_training_job_name` and :meth:`step_property`
    (``"BestTrainingJob.FinalHyperParameterTuningJobObjectiveMetric.Value"``,
    ``"TrainingJobSummaries[0].TunedHyperParameters['lr']"``...).
    """

    supports_cache = True
    supported_retry_kinds = frozenset({"step", "job"})
    produces_model_artifacts = True
    property_shapes = (
        "DescribeHyperParameterTuningJobResponse",
        "ListTrainingJobsForHyperParameterTuningJobResponse",
    )

    def __init__(
        self,
        *,
        hyperparameter_ranges: Mapping[str, ParameterRange],
        objective_metric_name: str,
        objective_metric_regex: str | None = None,
        metric_definitions: Sequence[Mapping[str, str]] | None = None,
        objective_type: str | Operand = "Maximize",
        strategy: str | Operand = "Bayesian",
        max_jobs: int | None = None,
        max_parallel_jobs: int = 1,
        early_stopping: str | Operand = "Off",
        random_seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.hyperparameter_ranges = dict(hyperparameter_ranges) if hyperparameter_ranges is not None else {}
        self.objective_metric_name = objective_metric_name
        self.objective_metric_regex = objective_metric_regex
        self.metric_definitions = list(metric_definitions) if metric_definitions is not None else []
        self.objective_type = objective_type
        self.strategy = strategy
        self.max_jobs = max_jobs
        self.max_parallel_jobs = max_parallel_jobs
        self.early_stopping = early_stopping
        self.random_seed = random_seed
        self._check_tuning_arguments()

    # -- validation --------------------------------------------------------------------------------------

    def _check_tuning_arguments(self) -> None:
        where = f"task {self.task_id!r}"
        ranges = self.hyperparameter_ranges
        if not ranges:
            raise PipelineDefinitionError(
                f"{where} field 'hyperparameter_ranges': give at least one range to search, e.g. "
                "{'lr': ContinuousRange(0.001, 0.1)}"
            )
        if len(ranges) > MAX_RANGES:
            raise PipelineDefinitionError(
                f"{where} field 'hyperparameter_ranges': SageMaker searches at most {MAX_RANGES} "
                f"hyperparameters, got {len(ranges)}"
            )
        for name, range_value in ranges.items():
            _check_range(f"{where} field 'hyperparameter_ranges[{name!r}]'", name, range_value)
        self._metric_definitions()
        self._check_choice("objective_type", self.objective_type, OBJECTIVE_TYPES)
        self._check_choice("strategy", self.strategy, STRATEGIES)
        self._check_choice("early_stopping", self.early_stopping, EARLY_STOPPING_TYPES)
        for field, value in (("max_jobs", self.max_jobs), ("max_parallel_jobs", self.max_parallel_jobs)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise PipelineDefinitionError(
                    f"{where} field {field!r}: expected a whole number of at least 1"
                )
        if self.random_seed is not None and (
            isinstance(self.random_seed, bool)
            or not isinstance(self.random_seed, int)
            or self.random_seed < 0
        ):
            raise PipelineDefinitionError(
                f"{where} field 'random_seed': expected a whole number of at least 0"
            )
        if self.strategy == "Grid":
            self._check_grid(where)
        if self.strategy == "Hyperband" and self.early_stopping == "Auto":
            raise PipelineDefinitionError(
                f"{where} field 'early_stopping': the Hyperband strategy stops trials early itself; SageMaker "
                "needs early_stopping='Off' with it"
            )
        limit = self.resolved_max_jobs()
        if limit is not None and self.max_parallel_jobs > limit:
            raise PipelineDefinitionError(
                f"{where} field 'max_parallel_jobs': {self.max_parallel_jobs} is more than the {limit} training "
                "jobs the step runs (max_jobs)"
            )

    def _check_choice(self, field: str, value: Any, choices: tuple[str, ...]) -> None:
        if isinstance(value, Reference):
            return  # a pipeline parameter: SageMaker checks its value when the step runs
        if value not in choices:
            raise PipelineDefinitionError(
                f"task {self.task_id!r} field {field!r}: {value!r} is not one of {list(choices)}"
            )

    def _check_grid(self, where: str) -> None:
        not_categorical = sorted(
            n for n, r in self.hyperparameter_ranges.items() if not isinstance(r, CategoricalRange)
        )
        if not_categorical:
            raise PipelineDefinitionError(
                f"{where} field 'hyperparameter_ranges': the Grid strategy searches categorical ranges only; "
                f"{not_categorical} are not CategoricalRange (use Random or Bayesian, or list the values)"
            )
        combinations = self.grid_size()
        if self.max_jobs is not None and self.max_jobs != combinations:
            raise PipelineDefinitionError(
                f"{where} field 'max_jobs': with the Grid strategy SageMaker runs every combination of the "
                f"categorical values, {combinations} here; leave max_jobs unset or set it to {combinations}"
            )

    def _metric_definitions(self) -> tuple[MetricDefinitionSpec, ...]:
        where = f"task {self.task_id!r}"
        if not isinstance(self.objective_metric_name, str) or not self.objective_metric_name:
            raise PipelineDefinitionError(f"{where} field 'objective_metric_name': a metric name is required")
        definitions: list[MetricDefinitionSpec] = []
        for index, item in enumerate(self.metric_definitions):
            field = f"metric_definitions[{index}]"
            if not isinstance(item, Mapping) or set(item) != {"Name", "Regex"}:
                raise PipelineDefinitionError(
                    f"{where} field {field!r}: expected {{'Name': ..., 'Regex': ...}}, got {item!r}"
                )
            definitions.append(MetricDefinitionSpec(str(item["Name"]), str(item["Regex"])))
        names = [d.name for d in definitions]
        if self.objective_metric_regex is not None:
            if self.objective_metric_name in names:
                raise PipelineDefinitionError(
                    f"{where} field 'objective_metric_regex': metric_definitions already defines "
                    f"{self.objective_metric_name!r}; give its regex in one place"
                )
            definitions.insert(
                0, MetricDefinitionSpec(self.objective_metric_name, self.objective_metric_regex)
            )
        elif self.objective_metric_name not in names and self.entry_point:
            raise PipelineDefinitionError(
                f"{where} field 'objective_metric_regex': the objective metric {self.objective_metric_name!r} "
                "has no regex; SageMaker reads it from the training log with one, e.g. "
                f"objective_metric_regex=r'{re.escape(self.objective_metric_name)}=([0-9.]+)'"
            )
        if len(definitions) > MAX_METRIC_DEFINITIONS:
            raise PipelineDefinitionError(
                f"{where} field 'metric_definitions': SageMaker reads at most {MAX_METRIC_DEFINITIONS} metrics"
            )
        seen: set[str] = set()
        for definition in definitions:
            field = (
                "objective_metric_regex"
                if definition.name == self.objective_metric_name and self.objective_metric_regex is not None
                else "metric_definitions"
            )
            if definition.name in seen:
                raise PipelineDefinitionError(
                    f"{where} field {field!r}: metric {definition.name!r} is defined twice"
                )
            seen.add(definition.name)
            if not 1 <= len(definition.name) <= 255 or not 1 <= len(definition.regex) <= 500:
                raise PipelineDefinitionError(
                    f"{where} field {field!r}: metric names take 1-255 characters and regexes 1-500"
                )
            try:
                groups = re.compile(definition.regex).groups
            except re.error as error:
                raise PipelineDefinitionError(
                    f"{where} field {field!r}: the regex of {definition.name!r} is not valid: {error}"
                ) from None
            if groups < 1:
                raise PipelineDefinitionError(
                    f"{where} field {field!r}: the regex of {definition.name!r} needs a group around the value, "
                    r"e.g. 'loss=([0-9.]+)'"
                )
        return tuple(definitions)

    # -- derived values ----------------------------------------------------------------------------------

    def grid_size(self) -> int:
        """The number of combinations of the categorical values (what the Grid strategy runs)."""
        return math.prod(
            len(r.values) for r in self.hyperparameter_ranges.values() if isinstance(r, CategoricalRange)
        )

    def resolved_max_jobs(self) -> int | None:
        """How many training jobs the step runs at most (None: decided when it runs)."""
        if self.max_jobs is not None:
            return self.max_jobs
        if self.strategy == "Grid":
            return self.grid_size()
        if isinstance(self.strategy, Reference):
            return None
        return 1  # the SDK's default for the other strategies

    def reference_fields(self) -> Mapping[str, Any]:
        return {
            **super().reference_fields(),
            "hyperparameter_ranges": {
                name: list(r.operands()) for name, r in self.hyperparameter_ranges.items()
            },
            "objective_type": self.objective_type,
            "strategy": self.strategy,
            "early_stopping": self.early_stopping,
        }

    def to_step_spec(self, *, name: str, depends_on: tuple[str, ...]) -> TuningStepSpec:
        return TuningStepSpec(
            **self.common_spec_fields(name, depends_on),
            **self.training_spec_fields(),
            hyperparameter_ranges=tuple(self.hyperparameter_ranges.items()),
            objective_metric_name=self.objective_metric_name,
            objective_type=self.objective_type,
            metric_definitions=self._metric_definitions(),
            strategy=self.strategy,
            max_jobs=self.max_jobs,
            max_parallel_jobs=self.max_parallel_jobs,
            early_stopping=self.early_stopping,
            random_seed=self.random_seed,
        )

    # -- references to this step's results -------------------------------------------------------------

    def top_model_artifacts(self, k: int) -> ModelArtifactsRef:
        """The ``model.tar.gz`` of the k-th best training job (0: the best), for Model and Register steps.

        SageMaker keeps the 50 best training jobs of a tuning step (``TrainingJobSummaries``, best first).
        """
        limit = self.resolved_max_jobs()
        top = min(TOP_TRAINING_JOBS, limit) if limit is not None else TOP_TRAINING_JOBS
        if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k < top:
            raise PipelineDefinitionError(
                f"task {self.task_id!r}: top_model_artifacts({k!r}) is out of range; the step ranks its best "
                f"{top} training jobs, from 0 (the best) to {top - 1}"
            )
        return ModelArtifactsRef(self.task_id, rank=k)

    @property
    def best_training_job_name(self) -> StepPropertyRef:
        """The name of the best training job (``BestTrainingJob.TrainingJobName``)."""
        return StepPropertyRef(self.task_id, "BestTrainingJob.TrainingJobName")


def _check_range(where: str, name: str, value: Any) -> None:
    if not isinstance(value, ParameterRange):
        raise PipelineDefinitionError(
            f"{where}: expected ContinuousRange, IntegerRange or CategoricalRange, got {type(value).__name__}"
        )
    if not isinstance(name, str) or not name or len(name) > 256:
        raise PipelineDefinitionError(f"{where}: {name!r} is not a usable hyperparameter name")
    if isinstance(value, CategoricalRange):
        _check_categories(where, value)
        return
    assert isinstance(value, ContinuousRange | IntegerRange)
    allowed = SCALING_TYPES if isinstance(value, ContinuousRange) else SCALING_TYPES[:3]
    if value.scaling not in allowed:
        raise PipelineDefinitionError(
            f"{where}: scaling {value.scaling!r} is not one of {list(allowed)} for a {type(value).__name__}"
        )
    bounds: list[float] = []
    for label, bound in (("min_value", value.min_value), ("max_value", value.max_value)):
        if isinstance(bound, Reference):
            continue
        if isinstance(bound, bool) or not isinstance(bound, int | float) or not math.isfinite(bound):
            raise PipelineDefinitionError(
                f"{where}: {label} must be a number or a pipeline parameter, got {bound!r}"
            )
        if isinstance(value, IntegerRange) and not float(bound).is_integer():
            raise PipelineDefinitionError(
                f"{where}: {label} of an IntegerRange must be a whole number, got {bound!r}"
            )
        bounds.append(float(bound))
    if len(bounds) < 2:
        return
    low, high = bounds
    if low > high:
        raise PipelineDefinitionError(
            f"{where}: min_value {value.min_value!r} is above max_value {value.max_value!r}"
        )
    if value.scaling == "Logarithmic" and low <= 0:
        raise PipelineDefinitionError(
            f"{where}: Logarithmic scaling needs values above 0, got min_value {low!r}"
        )
    if value.scaling == "ReverseLogarithmic" and not (low >= 0 and high < 1):
        raise PipelineDefinitionError(
            f"{where}: ReverseLogarithmic scaling needs values in [0, 1), got {low!r} to {high!r}"
        )


def _check_categories(where: str, value: CategoricalRange) -> None:
    if not 1 <= len(value.values) <= MAX_CATEGORICAL_VALUES:
        raise PipelineDefinitionError(
            f"{where}: a CategoricalRange takes 1 to {MAX_CATEGORICAL_VALUES} values, got {len(value.values)}"
        )
    literal: list[str] = []
    for item in value.values:
        if isinstance(item, Reference):
            continue
        if not isinstance(item, str | int | float | bool):
            raise PipelineDefinitionError(
                f"{where}: values must be strings, numbers, booleans or pipeline parameters, got {item!r}"
            )
        literal.append(str(item).lower() if isinstance(item, bool) else str(item))
    duplicates = sorted({text for text in literal if literal.count(text) > 1})
    if duplicates:
        raise PipelineDefinitionError(f"{where}: values {duplicates} are listed more than once")
