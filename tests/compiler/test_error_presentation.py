"""A refused pipeline is reported in one or two lines naming the task and the field: by the render command and by
the launch task, never as a traceback, never as a raw botocore or pydantic error."""

from __future__ import annotations

import logging
import subprocess
import sys
import traceback
from typing import TYPE_CHECKING

import pytest
from airflow.sdk.exceptions import AirflowFailException
from bad_dag_corpus import CORPUS, load_dag, prepare_launch, read_defect, subprocess_env

from airflow_provider_smpipe.operators.launch import SageMakerPipelineLaunchOperator

if TYPE_CHECKING:
    from pathlib import Path

#: What raw SDK, pydantic, botocore and Python errors look like; none may reach the user.
RAW = (
    "Traceback",
    'File "',
    "validation error for",
    "errors.pydantic.dev",
    "botocore.exceptions",
    "ParamValidation",
)


def _render(dag_file: Path, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "airflow_provider_smpipe", "render", str(dag_file), "ml"],
        capture_output=True,
        text=True,
        env=subprocess_env(home),
        timeout=300,
        check=False,
    )


@pytest.mark.parametrize(
    "name",
    [
        # Refused when the file is imported.
        "processing_instance_type_not_ml",
        # The SDK's pydantic validation, raised inside an escape-hatch factory.
        "custom_factory_sdk_validation_error",
        # An escape-hatch factory reading a step it does not declare (refused when compiled).
        "custom_factory_reads_undeclared_step",
    ],
)
def test_render_prints_the_refusal_in_one_line(name: str, tmp_path: Path) -> None:
    defect = read_defect(CORPUS / f"{name}.py")
    result = _render(defect.path, tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) <= 2, result.stderr
    assert lines[0].startswith("error: ")
    assert f"task {defect.task!r}" in result.stderr and f"field {defect.field!r}" in result.stderr, (
        result.stderr
    )
    assert not [raw for raw in RAW if raw in result.stderr], result.stderr


@pytest.mark.parametrize(
    "name", ["processing_instance_type_templated", "custom_factory_sdk_validation_error"]
)
def test_the_launch_task_logs_one_line_and_fails_without_retrying(
    name: str, moto_url: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    defect = read_defect(CORPUS / f"{name}.py")
    launch, context = prepare_launch(load_dag(defect.path))
    # The task's own logger, recorded (Airflow's structlog output does not reach caplog).
    task_log = logging.getLogger("test.launch.task")
    monkeypatch.setattr(SageMakerPipelineLaunchOperator, "log", property(lambda _: task_log))
    with (
        caplog.at_level(logging.INFO, logger="test.launch.task"),
        pytest.raises(AirflowFailException) as raised,
    ):
        launch.execute(context)
    message = str(raised.value)
    assert "\n" not in message
    assert f"task {defect.task!r}" in message and f"field {defect.field!r}" in message
    assert not [raw for raw in RAW if raw in message], message
    task_records = [record for record in caplog.records if record.name == "test.launch.task"]
    errors = [record for record in task_records if record.levelno >= logging.ERROR]
    assert [record.getMessage() for record in errors] == [message]
    assert not any(record.exc_info for record in task_records)
    # Nothing under it for Airflow to print: no cause, no context, and no frame of the SDK,
    # pydantic or botocore in the traceback the task runner logs.
    assert raised.value.__cause__ is None and raised.value.__context__ is None
    frames = traceback.extract_tb(raised.value.__traceback__)
    foreign = ("/sagemaker/", "/pydantic", "/botocore/", "/boto3/")
    assert not [f.filename for f in frames if any(part in f.filename for part in foreign)]
    assert (frames[-1].name, frames[-1].filename.endswith("operators/launch.py")) == ("execute", True)
    assert len(frames) <= 3, traceback.format_tb(raised.value.__traceback__)
