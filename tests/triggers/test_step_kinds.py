"""The step kinds' run-time side: found by the key of a step's Metadata."""

from __future__ import annotations

from airflow_provider_smpipe.triggers.step_kinds.base import job_from_metadata, kind_of


def test_job_from_metadata() -> None:
    arn = "arn:aws:sagemaker:us-east-1:123456789012:processing-job/pipelines-abc-prep-x1"
    job = job_from_metadata({"ProcessingJob": {"Arn": arn}})
    assert job is not None
    assert (job.kind, job.name, job.log_group, job.console_path) == (
        "processing",
        "pipelines-abc-prep-x1",
        "/aws/sagemaker/ProcessingJobs",
        "processing-jobs",
    )
    training = job_from_metadata({"TrainingJob": {"Arn": "arn:aws:sagemaker:r:1:training-job/t1"}})
    assert training is not None
    assert training.log_group == "/aws/sagemaker/TrainingJobs"
    assert job_from_metadata({"Condition": {"Outcome": "True"}}) is None
    assert job_from_metadata(None) is None


def test_kinds_without_a_job_are_still_known() -> None:
    condition = kind_of({"Condition": {"Outcome": "True"}})
    fail = kind_of({"Fail": {"ErrorMessage": "no"}})
    assert condition is not None
    assert fail is not None
    assert condition.metadata_key == "Condition"
    assert kind_of({"SomethingNew": {}}) is None
