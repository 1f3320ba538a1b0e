"""Tuning steps: a hyperparameter tuning job whose trials run as local training jobs.

The search is emulated, not SageMaker's: Grid runs every combination of the categorical values; Random draws
values at random (honouring the ranges' scaling); Bayesian is emulated by the same random search (no model of
earlier results); Hyperband too, without its early stopping, and ``TrainingJobEarlyStoppingType=Auto`` stops no
trial early. Draws are seeded (``RandomSeed``, else the tuning job's name), so a run is repeatable given its
seed. As on SageMaker, a failed trial is recorded and the search goes on; the tuning job fails only when no
trial succeeded (reported an objective value) after 5 attempts, or after all of them when it runs fewer.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import random
import secrets
import string
import threading
import time
from typing import TYPE_CHECKING, Any

from airflow_provider_smpipe.local.expressions import ExpressionError, to_text
from airflow_provider_smpipe.local.jobs.tuning import objective_value, step_properties
from airflow_provider_smpipe.local.steps.base import STEP_RUNNERS, StepEnv, strings_map

if TYPE_CHECKING:
    from airflow_provider_smpipe.local.state import JobRecord

#: SageMaker gives up on a tuning job when this many training jobs ran and none succeeded.
ATTEMPTS_WITHOUT_SUCCESS = 5
# Keys of a HyperParameterTrainingJobDefinition that a training job's request takes as they are.
_TRAINING_KEYS = (
    "RoleArn",
    "InputDataConfig",
    "VpcConfig",
    "OutputDataConfig",
    "ResourceConfig",
    "StoppingCondition",
    "EnableNetworkIsolation",
    "EnableInterContainerTrafficEncryption",
    "EnableManagedSpotTraining",
    "CheckpointConfig",
    "RetryStrategy",
    "Environment",
)
_ALGORITHM_KEYS = ("TrainingImage", "AlgorithmName", "TrainingInputMode", "MetricDefinitions")
_POLL_SECONDS = 0.1


@STEP_RUNNERS.register("Tuning")
def run_tuning(env: StepEnv) -> None:
    request = env.evaluate(env.step.arguments)
    definition = request.get("TrainingJobDefinition")
    if not isinstance(definition, dict):
        raise ExpressionError(
            "the local backend runs tuning jobs with one TrainingJobDefinition (TrainingJobDefinitions, "
            "several training definitions, is not supported)"
        )
    definition["StaticHyperParameters"] = strings_map(definition.get("StaticHyperParameters") or {})
    if "Environment" in definition:
        definition["Environment"] = strings_map(definition["Environment"])
    run = env.run
    name = tuning_job_name(env.execution.execution_id, env.step.name)
    sampler = TrialSampler(request["HyperParameterTuningJobConfig"], seed_text=name)
    tuning = env.new_job("tuning", request, name=name)
    run.job = tuning
    run.metadata = {"TuningJob": {"Arn": tuning.arn}}
    run.properties = lambda: step_properties(tuning)
    with env.execution.changed:
        if not env.stop_requested:
            run.status = "Executing"
    tuning.set_status("InProgress", "Running")
    _Search(env, tuning, definition, sampler).run()
    if tuning.status == "Completed":
        run.finish("Succeeded")
    elif tuning.status == "Stopped":
        run.finish("Stopped")
    else:
        run.finish("Failed", tuning.failure_reason or "the tuning job failed")


def tuning_job_name(execution_id: str, step_name: str) -> str:
    """``<execution id>-<step>-<random>`` within the 32 characters of a tuning job name."""
    suffix = "".join(random.choices(string.ascii_lowercase + string.digits, k=5))
    step = "".join(c if c.isalnum() else "-" for c in step_name).strip("-") or "tune"
    room = 32 - len(f"{execution_id}--{suffix}")
    step = step[: max(room, 0)].strip("-")
    return f"{execution_id}-{step}-{suffix}" if step else f"{execution_id}-{suffix}"


class _Search:
    """Starts the trials (at most MaxParallelTrainingJobs at once) until the search is over."""

    def __init__(
        self, env: StepEnv, tuning: JobRecord, definition: dict[str, Any], sampler: TrialSampler
    ) -> None:
        self.env = env
        self.tuning = tuning
        self.definition = definition
        self.sampler = sampler
        limits = tuning.request["HyperParameterTuningJobConfig"]["ResourceLimits"]
        self.parallel = max(int(limits.get("MaxParallelTrainingJobs") or 1), 1)
        self.limit = int(limits.get("MaxNumberOfTrainingJobs") or sampler.size or 1)
        self.threads: dict[str, threading.Thread] = {}

    def run(self) -> None:
        tuning = self.tuning
        stopping = False
        while True:
            running = [t for t in tuning.children if self.threads[t.name].is_alive()]
            if not stopping and (self.env.stop_requested or tuning.stop_requested):
                stopping = True
                tuning.set_status("Stopping", "Stopping")
                for trial in running:
                    trial.stop_requested = True
                    self.env.stop_job(trial)
            more = len(tuning.children) < self.limit and not self._given_up() and not stopping
            if more and len(running) < self.parallel:
                hyperparameters = self.sampler.next()
                if hyperparameters is not None:
                    self._start(hyperparameters)
                    continue
                self.limit = len(tuning.children)  # a grid with nothing left
            elif not running and not more:
                break
            time.sleep(_POLL_SECONDS)
        self._finish(stopping)

    def _succeeded(self) -> int:
        return sum(1 for t in self.tuning.children if objective_value(self.tuning, t) is not None)

    def _ended(self) -> int:
        return sum(1 for t in self.tuning.children if t.status in ("Completed", "Failed", "Stopped"))

    def _given_up(self) -> bool:
        return self._succeeded() == 0 and self._ended() >= min(ATTEMPTS_WITHOUT_SUCCESS, self.limit)

    def _start(self, tuned: dict[str, str]) -> None:
        tuning = self.tuning
        request = {key: self.definition[key] for key in _TRAINING_KEYS if key in self.definition}
        algorithm = self.definition.get("AlgorithmSpecification") or {}
        request["AlgorithmSpecification"] = {k: algorithm[k] for k in _ALGORITHM_KEYS if k in algorithm}
        if "ResourceConfig" not in request and "HyperParameterTuningResourceConfig" in self.definition:
            resources = self.definition["HyperParameterTuningResourceConfig"]
            request["ResourceConfig"] = {
                k: resources[k] for k in ("InstanceType", "InstanceCount", "VolumeSizeInGB") if k in resources
            }
        request["HyperParameters"] = {**self.definition["StaticHyperParameters"], **tuned}
        name = f"{tuning.name}-{len(tuning.children) + 1:03d}-{secrets.token_hex(4)}"
        trial = self.env.new_job("training", request, name=name, parent_arn=tuning.arn)
        thread = threading.Thread(target=self.env.run_job, args=(trial,), name=f"trial-{name}", daemon=True)
        self.threads[name] = thread
        tuning.children.append(trial)
        tuning.last_modified_time = trial.creation_time
        thread.start()

    def _finish(self, stopped: bool) -> None:
        tuning = self.tuning
        if stopped:
            tuning.set_status("Stopped", "Stopped")
        elif self._succeeded():
            tuning.set_status("Completed", "Completed")
        else:
            tuning.set_status(
                "Failed",
                "Failed",
                f"No training job succeeded after {self._ended()} attempts. Please take a look at the "
                "training job failures to get more details.",
            )


class TrialSampler:
    """Hyperparameter values for the next trial, from the (evaluated) ``HyperParameterTuningJobConfig``.

    :ivar size: How many trials the search can produce (Grid: the number of combinations), None: no limit.
    """

    def __init__(self, config: dict[str, Any], seed_text: str) -> None:
        ranges = config.get("ParameterRanges") or {}
        self.continuous = [
            _bounds(r, float, "Continuous") for r in ranges.get("ContinuousParameterRanges") or []
        ]
        self.integer = [_bounds(r, _integer, "Integer") for r in ranges.get("IntegerParameterRanges") or []]
        self.categorical = [
            (str(r["Name"]), [to_text(v) for v in r.get("Values") or []])
            for r in ranges.get("CategoricalParameterRanges") or []
        ]
        for name, values in self.categorical:
            if not values:
                raise ExpressionError(f"categorical range {name!r} has no values")
        self.strategy = str(config.get("Strategy", "Bayesian"))
        seed = config.get("RandomSeed")
        if seed is None:
            seed = int(hashlib.sha256(seed_text.encode()).hexdigest()[:12], 16)
        self.random = random.Random(int(seed))
        self.seen: set[tuple[tuple[str, str], ...]] = set()
        self.size: int | None = None
        self._grid: Any = None
        if self.strategy == "Grid":
            if self.continuous or self.integer:
                names = [r[0] for r in (*self.continuous, *self.integer)]
                raise ExpressionError(f"the Grid strategy takes categorical ranges only; {names} are not")
            self.size = math.prod(len(values) for _, values in self.categorical)
            names = [name for name, _ in self.categorical]
            self._grid = (
                dict(zip(names, combo, strict=True))
                for combo in itertools.product(*(v for _, v in self.categorical))
            )

    def next(self) -> dict[str, str] | None:
        """The next trial's tuned hyperparameters as strings; None when a grid is exhausted."""
        if self._grid is not None:
            return next(self._grid, None)
        values: dict[str, str] = {}
        for _ in range(20):  # avoid repeating a combination while a fresh one is easy to find
            values = self._draw()
            key = tuple(sorted(values.items()))
            if key not in self.seen:
                break
        self.seen.add(tuple(sorted(values.items())))
        return values

    def _draw(self) -> dict[str, str]:
        draw = self.random
        values: dict[str, str] = {}
        for name, low, high, scaling in self.continuous:
            values[name] = repr(_scaled(draw.random(), low, high, scaling))
        for name, low, high, scaling in self.integer:
            if scaling == "Logarithmic":
                value = math.floor(_scaled(draw.random(), low, high + 1, scaling))
            else:
                value = draw.randint(int(low), int(high))
            values[name] = str(min(max(value, int(low)), int(high)))
        for name, choices in self.categorical:
            values[name] = draw.choice(choices)
        return values


def _integer(text: Any) -> float:
    value = float(text)
    if not value.is_integer():
        raise ValueError(text)
    return value


def _bounds(item: dict[str, Any], parse: Any, kind: str) -> tuple[str, float, float, str]:
    name = str(item["Name"])
    scaling = str(item.get("ScalingType") or "Auto")
    try:
        low, high = parse(item["MinValue"]), parse(item["MaxValue"])
    except (TypeError, ValueError):
        raise ExpressionError(
            f"{kind.lower()} range {name!r}: MinValue {item.get('MinValue')!r} and MaxValue "
            f"{item.get('MaxValue')!r} must be {'whole numbers' if kind == 'Integer' else 'numbers'}"
        ) from None
    if low > high:
        raise ExpressionError(f"{kind.lower()} range {name!r}: MinValue {low} is above MaxValue {high}")
    if scaling == "Logarithmic" and low <= 0:
        raise ExpressionError(f"{kind.lower()} range {name!r}: Logarithmic scaling needs values above 0")
    if scaling == "ReverseLogarithmic" and not (low >= 0 and high < 1):
        raise ExpressionError(
            f"{kind.lower()} range {name!r}: ReverseLogarithmic scaling needs values in [0, 1)"
        )
    return name, low, high, scaling


def _scaled(u: float, low: float, high: float, scaling: str) -> float:
    """A uniform draw ``u`` in [0, 1) mapped onto [low, high] by the range's scaling (Auto: linear)."""
    if scaling == "Logarithmic":
        return math.exp(math.log(low) + u * (math.log(high) - math.log(low)))
    if scaling == "ReverseLogarithmic":
        return 1.0 - math.exp(math.log(1.0 - high) + u * (math.log(1.0 - low) - math.log(1.0 - high)))
    return low + u * (high - low)
