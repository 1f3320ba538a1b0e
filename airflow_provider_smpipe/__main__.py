"""Command line: ``python -m airflow_provider_smpipe render <dag file> <group id>``."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import re
import sys
import tempfile
from typing import TYPE_CHECKING, Any

from airflow_provider_smpipe.exceptions import PipelineDefinitionError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence


def _find_group(dag_file: str, group_id: str, dag_id: str | None) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    from airflow_provider_smpipe.task_group import SageMakerPipelineTaskGroup

    bag = DagBag(dag_file)
    if bag.import_errors:
        errors = "; ".join(exception_text(error) for error in bag.import_errors.values())
        raise SystemExit(f"error: cannot import {dag_file}: {errors}")
    candidates = []
    for dag in bag.dags.values():
        if dag_id is not None and dag.dag_id != dag_id:
            continue
        group = dag.task_group_dict.get(group_id)
        if isinstance(group, SageMakerPipelineTaskGroup):
            candidates.append(group)
    if not candidates:
        raise SystemExit(f"no SageMakerPipelineTaskGroup {group_id!r} in {dag_file}")
    if len(candidates) > 1:
        raise SystemExit(f"several DAGs in {dag_file} have group {group_id!r}: give --dag-id")
    return candidates[0]


_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::(?P<account>\d{12}):role/(?P<path>(?:[^/]+/)*)(?P<name>[^/]+)$")


def _role_arns(value: Any) -> set[str]:
    """Every IAM role ARN inside a spec (dataclasses, tuples, dicts, strings)."""
    if isinstance(value, str):
        return {value} if _ROLE_ARN.match(value) else set()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return set().union(*(_role_arns(getattr(value, f.name)) for f in dataclasses.fields(value)))
    if isinstance(value, dict):
        return set().union(*(_role_arns(v) for v in value.values()))
    if isinstance(value, tuple | list):
        return set().union(*(_role_arns(v) for v in value))
    return set()


def _mock_account(spec: Any) -> dict[str, str]:
    """The mock plays the account of the group's role, so ARNs and default bucket names come out as a launch
    would make them, and IAM roles the steps name exist in it (a Lambda function needs its role to exist)."""
    match = _ROLE_ARN.match(str(spec.role_arn))
    return {"MOTO_ACCOUNT_ID": match.group("account")} if match else {}


def _create_roles(session: Any, spec: Any, account: str | None) -> None:
    iam = session.client("iam")
    for arn in sorted(_role_arns(spec)):
        match = _ROLE_ARN.match(arn)
        if match and (account is None or match.group("account") == account):
            path = "/" + match.group("path") if match.group("path") else "/"
            iam.create_role(RoleName=match.group("name"), Path=path, AssumeRolePolicyDocument="{}")


def render(dag_file: str, group_id: str, dag_id: str | None = None) -> str:
    """The pipeline definition of a group, compiled against an in-process mock of AWS (nothing is sent to AWS).

    Templated fields are compiled as written (no run context); step code is "uploaded" to the mock, so the S3
    URIs in the output are the ones a real launch would use for the same bucket.
    """
    try:
        from moto import mock_aws
    except ImportError:  # pragma: no cover - the message is the point
        raise SystemExit("render needs moto: pip install 'airflow-provider-smpipe[local]'") from None

    group = _find_group(dag_file, group_id, dag_id)
    from airflow_provider_smpipe.compiler.from_airflow import build_pipeline_spec
    from airflow_provider_smpipe.compiler.sdk import compile_definition

    spec = build_pipeline_spec(group)
    fake = {"AWS_ACCESS_KEY_ID": "render", "AWS_SECRET_ACCESS_KEY": "render", "AWS_SESSION_TOKEN": "render"}
    fake.update(_mock_account(spec))
    saved = {
        key: os.environ.get(key)
        for key in [*fake, "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "MOTO_ACCOUNT_ID"]
    }
    os.environ.update(fake)
    os.environ.setdefault("AWS_DEFAULT_REGION", group.region_name or "us-east-1")
    os.environ.pop("AWS_ENDPOINT_URL", None)
    try:
        with mock_aws():
            import boto3

            session = boto3.Session()
            if spec.default_bucket:
                session.client("s3").create_bucket(Bucket=spec.default_bucket)
            _create_roles(session, spec, fake.get("MOTO_ACCOUNT_ID"))
            definition = compile_definition(spec, session)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return json.dumps(json.loads(definition), indent=2, sort_keys=False)


def exception_text(import_error: str) -> str:
    """The exception at the end of a DagBag import error, without the traceback before it.

    ``airflow_provider_smpipe.exceptions.PipelineDefinitionError: task ...`` gives
    ``PipelineDefinitionError: task ...``.
    """
    lines = import_error.rstrip().splitlines()
    # Frames and their source lines are indented; the exception's own text follows the last of them.
    last_frame = max((index for index, line in enumerate(lines) if line.startswith("  ")), default=-1)
    text = " ".join(line.strip() for line in lines[last_frame + 1 :]) or import_error.strip()
    return re.sub(r"^(?:[A-Za-z_][\w]*\.)+(?=\w+(?:Error|Exception)\b)", "", text)


@contextlib.contextmanager
def _captured_output() -> Iterator[Callable[[], str]]:
    """Send file descriptors 1 and 2 (Airflow's and the SDK's logs) to a temporary file; yield its reader."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 1)
        os.dup2(capture.fileno(), 2)

        def read() -> str:
            sys.stdout.flush()
            sys.stderr.flush()
            capture.seek(0)
            return capture.read().decode(errors="replace")

        try:
            yield read
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m airflow_provider_smpipe")
    commands = parser.add_subparsers(dest="command", required=True)
    render_parser = commands.add_parser(
        "render", help="print the SageMaker pipeline definition a group compiles to, without touching AWS"
    )
    render_parser.add_argument("dag_file")
    render_parser.add_argument("group_id")
    render_parser.add_argument("--dag-id", help="the DAG, when the file defines several with this group id")
    render_parser.add_argument("--output", "-o", help="write the JSON to this file instead of stdout")
    args = parser.parse_args(argv)
    # Airflow and the SDK log to stdout and stderr: their lines are held back, shown on stderr after a
    # definition, dropped after a refused one (its one-line reason is what matters), shown with any other error.
    logs = ""
    failure: str | None = None
    try:
        with _captured_output() as read:
            try:
                definition = render(args.dag_file, args.group_id, args.dag_id)
            except PipelineDefinitionError as error:
                failure = f"error: {error}"
            except SystemExit as error:
                failure = str(error.code)
            finally:
                logs = read()
    except BaseException:
        sys.stderr.write(logs)
        raise
    if failure is not None:
        sys.stderr.write(failure + "\n")
        return 1
    sys.stderr.write(logs)
    if args.output:
        with open(args.output, "w") as handle:
            handle.write(definition + "\n")
    else:
        sys.stdout.write(definition + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
