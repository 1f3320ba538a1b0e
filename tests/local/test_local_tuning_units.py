"""The local tuning emulation's parts: the search, metric reading, script mode and names."""

from __future__ import annotations

import re
from types import SimpleNamespace
from typing import Any

import pytest

from airflow_provider_smpipe.local.expressions import ExpressionError
from airflow_provider_smpipe.local.jobs import _script_mode
from airflow_provider_smpipe.local.jobs.training import TrainingJobKind
from airflow_provider_smpipe.local.steps.tuning import TrialSampler, tuning_job_name


def config(strategy: str = "Random", seed: int | None = 3, **ranges: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "Strategy": strategy,
        "ResourceLimits": {"MaxParallelTrainingJobs": 1},
        "ParameterRanges": {f"{kind}ParameterRanges": items for kind, items in ranges.items()},
    }
    if seed is not None:
        out["RandomSeed"] = seed
    return out


def draws(sampler: TrialSampler, count: int) -> list[dict[str, str]]:
    values = [sampler.next() for _ in range(count)]
    assert all(v is not None for v in values)
    return values  # type: ignore[return-value]


def test_random_draws_honour_bounds_and_scaling() -> None:
    sampler = TrialSampler(
        config(
            Continuous=[
                {"Name": "lr", "MinValue": "0.0001", "MaxValue": "1", "ScalingType": "Logarithmic"},
                {
                    "Name": "momentum",
                    "MinValue": "0.5",
                    "MaxValue": "0.999",
                    "ScalingType": "ReverseLogarithmic",
                },
                {"Name": "dropout", "MinValue": "0", "MaxValue": "0.5", "ScalingType": "Auto"},
            ],
            Integer=[
                {"Name": "depth", "MinValue": "1", "MaxValue": "3", "ScalingType": "Linear"},
                {"Name": "trees", "MinValue": "1", "MaxValue": "1000", "ScalingType": "Logarithmic"},
            ],
            Categorical=[{"Name": "booster", "Values": ["gbtree", "dart"]}],
        ),
        seed_text="unused",
    )
    values = draws(sampler, 400)
    lrs = [float(v["lr"]) for v in values]
    assert all(0.0001 <= x <= 1 for x in lrs)
    # Logarithmic: each decade gets about the same share, so most draws are far below the middle.
    assert sum(x < 0.01 for x in lrs) > 150
    momenta = [float(v["momentum"]) for v in values]
    assert all(0.5 <= x <= 0.999 for x in momenta)
    assert sum(x > 0.95 for x in momenta) > 150  # ReverseLogarithmic: dense near 1
    assert all(0 <= float(v["dropout"]) <= 0.5 for v in values)
    assert {v["depth"] for v in values} == {"1", "2", "3"}
    trees = [int(v["trees"]) for v in values]
    assert all(1 <= t <= 1000 for t in trees) and sum(t < 32 for t in trees) > 150
    assert {v["booster"] for v in values} == {"gbtree", "dart"}


def test_draws_are_seeded() -> None:
    ranges = {"Continuous": [{"Name": "lr", "MinValue": "0.1", "MaxValue": "0.2"}]}
    first = draws(TrialSampler(config(seed=5, **ranges), "a"), 5)
    assert first == draws(TrialSampler(config(seed=5, **ranges), "b"), 5)
    assert first != draws(TrialSampler(config(seed=6, **ranges), "a"), 5)
    # Without RandomSeed the tuning job's name seeds the search.
    assert draws(TrialSampler(config(seed=None, **ranges), "job-1"), 3) == draws(
        TrialSampler(config(seed=None, **ranges), "job-1"), 3
    )


def test_grid_runs_every_combination_once() -> None:
    sampler = TrialSampler(
        config(
            "Grid",
            Categorical=[{"Name": "a", "Values": ["1", "2"]}, {"Name": "b", "Values": ["x", "y", "z"]}],
        ),
        "g",
    )
    assert sampler.size == 6
    combos = [sampler.next() for _ in range(6)]
    assert {(c["a"], c["b"]) for c in combos if c} == {(a, b) for a in "12" for b in "xyz"}
    assert sampler.next() is None


@pytest.mark.parametrize(
    ("ranges", "strategy", "message"),
    [
        ({"Continuous": [{"Name": "lr", "MinValue": "0.5", "MaxValue": "0.1"}]}, "Random", "above MaxValue"),
        ({"Integer": [{"Name": "d", "MinValue": "1.5", "MaxValue": "3"}]}, "Random", "whole numbers"),
        (
            {"Continuous": [{"Name": "lr", "MinValue": "0", "MaxValue": "1", "ScalingType": "Logarithmic"}]},
            "Random",
            "above 0",
        ),
        ({"Integer": [{"Name": "d", "MinValue": "1", "MaxValue": "3"}]}, "Grid", "categorical ranges only"),
    ],
)
def test_bad_ranges_fail_the_step(ranges: dict[str, Any], strategy: str, message: str) -> None:
    # Bounds given as pipeline parameters are only known when the step runs.
    with pytest.raises(ExpressionError, match=re.escape(message)):
        TrialSampler(config(strategy, **ranges), "x")


def _read_metrics(regex: str, lines: list[str]) -> dict[str, float]:
    job = SimpleNamespace(
        request={
            "AlgorithmSpecification": {"MetricDefinitions": [{"Name": "validation:auc", "Regex": regex}]}
        },
        metrics={},
    )
    run = SimpleNamespace(job=job)
    kind = TrainingJobKind()
    for line in lines:
        kind.on_line(run, None, line)  # type: ignore[arg-type]
    return job.metrics


def test_metric_regexes_as_sagemaker_writes_them() -> None:
    # The SDK examples' style, the last value wins.
    assert _read_metrics(
        r"validation:auc=([0-9\.]+)", ["validation:auc=0.5", "x", "validation:auc=0.75"]
    ) == {"validation:auc": 0.75}
    # The built-in XGBoost regex matches tabs as CloudWatch shows them ("#011").
    xgboost = r".*\[[0-9]+\].*#011validation-auc:([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?).*"
    assert _read_metrics(xgboost, ["[3]\ttrain-auc:0.91\tvalidation-auc:0.873"]) == {"validation:auc": 0.873}
    assert _read_metrics(r"auc: (\S+)", ["auc: 1e-3"]) == {"validation:auc": 0.001}
    assert _read_metrics(r"auc: (\S+)", ["auc: high"]) == {}


def test_script_mode_command() -> None:
    request = {
        "HyperParameters": {
            "sagemaker_program": '"train.py"',  # the SDK v2 JSON-quoted its strings
            "sagemaker_submit_directory": "s3://b/code/sourcedir.tar.gz",
            "lr": "0.1",
            "booster": '"dart"',
        }
    }
    assert _script_mode.script_program(request) == "train.py"
    command = _script_mode.command(request)
    assert command[:3] == ["/bin/sh", "-c", _script_mode._RUN_SCRIPT]
    assert command[4:] == ["python3", "/opt/ml/code/train.py", "--booster", "dart", "--lr", "0.1"]
    assert _script_mode.script_program({"HyperParameters": {"lr": "1"}}) is None


@pytest.mark.parametrize("step", ["tune", "a-very-long-step-name-that-does-not-fit", "___"])
def test_tuning_job_names_fit_sagemaker(step: str) -> None:
    name = tuning_job_name("abcdefghij12", step)
    assert len(name) <= 32
    assert re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,31}", name), name
    assert name.startswith("abcdefghij12-")
