"""ListTrainingJobsForHyperParameterTuningJob over the local tuning jobs' trials (Describe, List and Stop of
tuning jobs come from the tuning job kind's ``api_noun``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_smpipe.local.api.base import ApiContext, operation, paginate
from airflow_provider_smpipe.local.errors import validation_error
from airflow_provider_smpipe.local.jobs.tuning import objective, ranked_trials, trial_summary

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_provider_smpipe.local.state import JobRecord


@operation("ListTrainingJobsForHyperParameterTuningJob")
def list_training_jobs_for_tuning_job(
    api: ApiContext, body: dict[str, Any], account: str, region: str
) -> dict[str, Any] | None:
    tuning = api.store.get_job(account, region, "tuning", str(body.get("HyperParameterTuningJobName")))
    if tuning is None:
        return None  # not one of ours: moto answers
    sort_by = body.get("SortBy", "Name")
    descending = body.get("SortOrder", "Ascending") == "Descending"
    if sort_by == "FinalObjectiveMetricValue":
        # Trials without an objective value are not listed; "Descending" means the highest value first.
        trials = ranked_trials(tuning)
        if (objective(tuning)[1] == "Maximize") != descending:
            trials.reverse()
    else:
        keys: dict[str, Callable[[JobRecord], Any]] = {
            "Name": lambda t: t.name,
            "CreationTime": lambda t: t.creation_time,
            "Status": lambda t: t.status,
        }
        if sort_by not in keys:
            raise validation_error(f"Invalid SortBy {sort_by!r}")
        trials = sorted(tuning.children, key=keys[sort_by], reverse=descending)
    status = body.get("StatusEquals")
    if status:
        trials = [t for t in trials if t.status == status]
    page, token = paginate(trials, body, 10)
    out: dict[str, Any] = {"TrainingJobSummaries": [trial_summary(tuning, t) for t in page]}
    if token:
        out["NextToken"] = token
    return out
