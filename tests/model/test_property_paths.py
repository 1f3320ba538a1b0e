"""Step property paths are checked against botocore's Describe* shapes, from a small per-user cache file."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest

from airflow_provider_smpipe.model import property_paths
from airflow_provider_smpipe.model.property_paths import CACHED_ROOTS, property_type

if TYPE_CHECKING:
    from pathlib import Path

PROCESSING = ("DescribeProcessingJobResponse",)
TRAINING = ("DescribeTrainingJobResponse",)
TUNING = ("DescribeHyperParameterTuningJobResponse", "ListTrainingJobsForHyperParameterTuningJobResponse")

GOOD = [
    (PROCESSING, "ProcessingJobName", "string"),
    (PROCESSING, "ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri", "string"),
    (PROCESSING, "ProcessingOutputConfig.Outputs[0].S3Output.S3Uri", "string"),
    (TRAINING, "ModelArtifacts.S3ModelArtifacts", "string"),
    (TRAINING, "FinalMetricDataList['validation:auc'].Value", "float"),
    (TRAINING, "HyperParameters['eta']", "string"),
    (TRAINING, "ModelArtifacts", "structure"),
    (TUNING, "BestTrainingJob.FinalHyperParameterTuningJobObjectiveMetric.Value", "float"),
    (TUNING, "TrainingJobSummaries[0].TunedHyperParameters['lr']", "string"),
    (("DescribeModelOutput",), "ModelName", "string"),
    (("DescribeModelPackageOutput",), "ModelPackageArn", "string"),
    (("DescribeTransformJobResponse",), "TransformOutput.S3OutputPath", "string"),
]

BAD = [
    (PROCESSING, "ProcessingJobStatu", "did you mean 'ProcessingJobStatus'"),
    (TRAINING, "ProcessingJobStatus", "DescribeTrainingJob has no property 'ProcessingJobStatus'"),
    (PROCESSING, "ProcessingJobName[0]", "'ProcessingJobName' is a string"),
    (PROCESSING, "ProcessingJobName.Length", "'ProcessingJobName' is a string, it has no property 'Length'"),
    (TRAINING, "ModelArtifacts.Uri", "'ModelArtifacts' of DescribeTrainingJob has no property 'Uri'"),
    (TRAINING, "", "empty"),
    (TRAINING, "ModelArtifacts/S3ModelArtifacts", "cannot read the property path"),
]


@pytest.mark.parametrize(("shapes", "path", "kind"), GOOD)
def test_paths_of_the_describe_responses(shapes: tuple[str, ...], path: str, kind: str) -> None:
    assert property_type(shapes, path) == kind


@pytest.mark.parametrize(("shapes", "path", "words"), BAD)
def test_paths_a_step_kind_does_not_have(shapes: tuple[str, ...], path: str, words: str) -> None:
    with pytest.raises(ValueError, match=re.escape(words)) as error:
        property_type(shapes, path)
    assert "\n" not in str(error.value)


def test_the_cache_holds_what_the_service_model_says(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The cached subgraph answers every path as the whole service model does, and a corrupt cache file is
    rebuilt."""
    monkeypatch.setattr(property_paths.tempfile, "gettempdir", lambda: str(tmp_path))
    shapes_in_memory = property_paths._shapes
    shapes_in_memory.cache_clear()
    try:
        cache = property_paths._cache_file()
        cache.parent.mkdir()
        cache.write_text("{not json")
        cached = property_paths._shapes()
        assert set(CACHED_ROOTS) <= set(cached)
        assert len(cached) < len(property_paths._service_shapes()) / 4
        assert cache.read_text().startswith("{")
        for shapes, path, kind in GOOD:
            assert property_type(shapes, path) == kind
        # The same answers from the full model.
        monkeypatch.setattr(property_paths, "_shapes", property_paths._service_shapes)
        for shapes, path, kind in GOOD:
            assert property_type(shapes, path) == kind
    finally:
        shapes_in_memory.cache_clear()
