"""Turning Airflow ids into names SageMaker accepts."""

from __future__ import annotations

import hashlib
import re

PIPELINE_NAME_MAX = 256
STEP_NAME_MAX = 64
_PIPELINE_NAME_RE = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,255}$")
_STEP_NAME_RE = re.compile(r"^[A-Za-z0-9\-_]{1,64}$")


def _short_hash(text: str, length: int = 8) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def is_valid_pipeline_name(name: str) -> bool:
    return bool(_PIPELINE_NAME_RE.match(name))


def is_valid_step_name(name: str) -> bool:
    return bool(_STEP_NAME_RE.match(name))


def pipeline_name_for(dag_id: str, group_id: str) -> str:
    """A valid pipeline name from the DAG id and group id: ``my_dag`` + ``train`` -> ``my-dag-train``.

    Raises ValueError when nothing usable is left (ids made only of symbols).
    """
    raw = f"{dag_id}-{group_id}"
    name = re.sub(r"[^a-zA-Z0-9]+", "-", raw).strip("-")
    if not name:
        raise ValueError(f"cannot make a SageMaker pipeline name from {raw!r}")
    if len(name) > PIPELINE_NAME_MAX:
        name = f"{name[: PIPELINE_NAME_MAX - 9].rstrip('-')}-{_short_hash(raw)}"
    return name


def step_name_for(task_id: str, group_id: str) -> str:
    """The step name for a task of the group: the task id without the group prefix, dots made dashes.

    Names longer than 64 characters keep a readable prefix and end with a hash of the full id, so they stay
    unique and stable.
    """
    local_id = task_id[len(group_id) + 1 :] if task_id.startswith(f"{group_id}.") else task_id
    name = re.sub(r"[^A-Za-z0-9\-_]", "-", local_id)
    if len(name) > STEP_NAME_MAX:
        name = f"{name[: STEP_NAME_MAX - 9]}-{_short_hash(task_id)}"
    return name
