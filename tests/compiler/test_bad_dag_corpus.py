"""Every defective DAG of tests/fixtures/bad_dags/ is refused with a PipelineDefinitionError naming the task and
the field, in one or two lines: when the file is imported, or (for values only a run knows) by the launch task
before anything is created in AWS."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

import pytest
from airflow.sdk.exceptions import AirflowFailException
from bad_dag_corpus import (
    CORPUS,
    MOTO_CONN_ID,
    STAGES,
    Defect,
    aws_state,
    create_role,
    defects,
    load_dag,
    names_task_and_field,
    prepare_launch,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

QUALIFIED_ERROR = "airflow_provider_smpipe.exceptions.PipelineDefinitionError: "
#: Where the DAG processor's import error puts the exception: its last line (one-line messages only).
_ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"


def test_the_corpus_covers_every_step_kind_and_every_kind_of_defect() -> None:
    found = defects()
    assert len(found) >= 81
    assert {d.stage for d in found} <= set(STAGES), Counter(d.stage for d in found)
    assert all(d.title and (d.task or d.group) for d in found), [d.name for d in found if not d.title]
    kinds = Counter(d.name.split("_")[0] for d in found)
    for kind in (
        "processing",
        "training",
        "tuning",
        "model",
        "register",
        "transform",
        "callback",
        "lambda",
        "condition",
        "custom",
        "group",
        "parameter",
    ):
        assert kinds[kind] >= 1, f"no defect of kind {kind}"
    assert Counter(d.stage for d in found)["launch"] >= 10


@pytest.mark.parametrize("defect", defects("parse"), ids=lambda d: d.name)
def test_refused_when_the_dag_file_is_imported(defect: Defect) -> None:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(str(defect.path))
    assert not bag.dags, f"{defect.name} imported: {defect.title}"
    (error,) = bag.import_errors.values()
    last_line = error.rstrip().splitlines()[-1]
    assert last_line.startswith(QUALIFIED_ERROR), error
    message = last_line.removeprefix(QUALIFIED_ERROR)
    assert not names_task_and_field(message, defect), (names_task_and_field(message, defect), message)


@pytest.fixture(scope="module")
def moto(moto_url: str) -> str:
    create_role(moto_url, _ROLE)
    return moto_url


@pytest.fixture
def nothing_created(moto: str) -> Iterator[None]:
    before = aws_state(moto)
    yield
    assert aws_state(moto) == before


@pytest.mark.parametrize("defect", defects("launch", "compile"), ids=lambda d: d.name)
def test_refused_by_the_launch_task_before_anything_is_created(
    defect: Defect, moto: str, nothing_created: None
) -> None:
    launch, context = prepare_launch(load_dag(defect.path))
    with pytest.raises(AirflowFailException) as raised:
        launch.execute(context)
    message = str(raised.value)
    assert not names_task_and_field(message, defect), (names_task_and_field(message, defect), message)
    # The provider's message alone: no chained SDK, botocore or pydantic error under it.
    assert raised.value.__cause__ is None and raised.value.__context__ is None
    assert "validation error for" not in message and "Traceback" not in message


def test_the_harness_sees_what_a_good_launch_creates(moto: str) -> None:
    """The control: the same harness, given a good DAG with templated values, creates the pipeline, the
    execution, the uploaded code and the Lambda function (so "nothing created" above is not vacuous)."""
    before = aws_state(moto)
    launch, context = prepare_launch(load_dag(CORPUS / "_good_pipeline.py"))
    result: dict[str, Any] = launch.execute(context)
    after = aws_state(moto)
    assert result["pipeline_name"] in set(after["pipelines"]) - set(before["pipelines"])
    assert after["executions"][result["pipeline_name"]] == [result["execution_arn"]]
    assert "smpipe-good-notify" in set(after["functions"]) - set(before["functions"])
    uploaded = {
        key
        for bucket, keys in after["buckets"].items()
        for key in keys
        if key not in before["buckets"].get(bucket, [])
    }
    assert any(key.endswith("/prep.py") for key in uploaded), uploaded
    assert launch.aws_conn_id == MOTO_CONN_ID


def test_reliability_md_lists_every_defect() -> None:
    text = (CORPUS.parents[2] / "RELIABILITY.md").read_text()
    section = text[text.index("## Bad input") :]
    assert not [d.name for d in defects() if f"| `{d.name}` |" not in section]
