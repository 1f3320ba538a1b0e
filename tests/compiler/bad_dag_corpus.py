"""The corpus of defective DAG files (tests/fixtures/bad_dags/) and the harness that launches one against moto.

Each corpus file carries one defect and says in its docstring where it must be refused::

    expect: parse | launch | compile
    task: ml.prep          (or  group: ml)
    field: instance_type   (or  -  when the defect has no field)

``parse``: importing the file fails. ``launch``: the file imports (the value is a template) and the launch task
refuses the rendered value. ``compile``: the file imports and the pipeline is refused while it is compiled
(escape-hatch factories run then). Files whose name starts with ``_`` are controls, not defects.
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

CORPUS = Path(__file__).parents[1] / "fixtures" / "bad_dags"
STAGES = ("parse", "launch", "compile")
MOTO_CONN_ID = "smpipe_moto"
RUN_ID = "manual__2026-01-01T00:00:00+00:00"


@dataclass(frozen=True)
class Defect:
    path: Path
    title: str
    stage: str
    task: str | None
    group: str | None
    field: str | None

    @property
    def name(self) -> str:
        return self.path.stem


def read_defect(path: Path) -> Defect:
    docstring = ast.get_docstring(ast.parse(path.read_text())) or ""
    header = dict(re.findall(r"^(expect|task|group|field): (.+)$", docstring, re.M))
    field = header.get("field")
    return Defect(
        path=path,
        title=docstring.splitlines()[0] if docstring else "",
        stage=header.get("expect", ""),
        task=header.get("task"),
        group=header.get("group"),
        field=None if field in (None, "-") else field,
    )


def defects(*stages: str) -> list[Defect]:
    found = [read_defect(path) for path in sorted(CORPUS.glob("*.py")) if not path.name.startswith("_")]
    return [d for d in found if not stages or d.stage in stages]


def names_task_and_field(message: str, defect: Defect) -> list[str]:
    """What the message fails to say (empty: it names the task or group, and the field, in one or two lines)."""
    problems = []
    if defect.task and f"task {defect.task!r}" not in message:
        problems.append(f"does not name task {defect.task!r}")
    if defect.group and f"group {defect.group!r}" not in message:
        problems.append(f"does not name group {defect.group!r}")
    if defect.field and f"field {defect.field!r}" not in message:
        problems.append(f"does not name field {defect.field!r}")
    if message.count("\n") > 1:
        problems.append(f"takes {message.count(chr(10)) + 1} lines")
    return problems


def load_dag(path: Path) -> Any:
    """The DAG of a corpus file, imported the way the DAG processor imports it."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(str(path))
    assert not bag.import_errors, bag.import_errors
    (dag,) = bag.dags.values()
    return dag


def run_context(dag: Any) -> dict[str, Any]:
    """What the launch task reads from its Airflow context, for one manual run."""
    pushed: dict[str, Any] = {}
    ti = SimpleNamespace(
        dag_id=dag.dag_id,
        run_id=RUN_ID,
        try_number=1,
        xcom_push=lambda key, value: pushed.__setitem__(key, value),
        pushed=pushed,
    )
    params = {key: dag.params[key] for key in dag.params}
    return {
        "dag": dag,
        "params": params,
        "ti": ti,
        "task_instance": ti,
        "dag_run": SimpleNamespace(run_id=RUN_ID, dag_id=dag.dag_id, conf={}),
        "run_id": RUN_ID,
        "ds": "2026-01-01",
        "logical_date": None,
    }


def prepare_launch(dag: Any) -> tuple[Any, dict[str, Any]]:
    """The group's launch task pointed at moto's connection, with its templates rendered for a run."""
    group = dag.task_group_dict["ml"]
    group.aws_conn_id = MOTO_CONN_ID
    launch = group.launch_task
    launch.aws_conn_id = MOTO_CONN_ID
    context = run_context(dag)
    launch.render_template_fields(context)
    return launch, context


def aws_state(url: str) -> dict[str, Any]:
    """Everything a launch can create in the account: pipelines and their executions, S3 buckets and objects,
    Lambda functions."""
    import boto3

    def client(service: str) -> Any:
        return boto3.client(service, endpoint_url=url, region_name="us-east-1")

    sagemaker = client("sagemaker")
    pipelines = sorted(p["PipelineName"] for p in sagemaker.list_pipelines()["PipelineSummaries"])
    s3 = client("s3")
    buckets = {}
    for bucket in sorted(b["Name"] for b in s3.list_buckets()["Buckets"]):
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
        buckets[bucket] = sorted(keys)
    return {
        "pipelines": pipelines,
        "executions": {
            name: [
                e["PipelineExecutionArn"]
                for e in sagemaker.list_pipeline_executions(PipelineName=name)["PipelineExecutionSummaries"]
            ]
            for name in pipelines
        },
        "buckets": buckets,
        "functions": sorted(f["FunctionName"] for f in client("lambda").list_functions()["Functions"]),
    }


def create_role(url: str, arn: str) -> None:
    """The IAM role a Lambda function is created with must exist in moto."""
    import boto3

    iam = boto3.client("iam", endpoint_url=url, region_name="us-east-1")
    name = arn.rsplit("/", 1)[1]
    with contextlib.suppress(iam.exceptions.EntityAlreadyExistsException):
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17"}))


def subprocess_env(home: Path) -> dict[str, str]:
    """An environment for the render command: no AWS settings of the caller's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["AIRFLOW_HOME"] = str(home)
    return env
