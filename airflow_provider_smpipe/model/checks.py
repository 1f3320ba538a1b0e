"""Checks of the values inside a step, shared by the step operators.

Each check raises :class:`~airflow_provider_smpipe.exceptions.PipelineDefinitionError` naming the task and the
field, with what SageMaker expects. The operators run them in their constructor (DAG parse time) and again on
the rendered values when the launch task builds the pipeline. Before rendering, a string holding a Jinja
template is not checked (it is checked once rendered); references (pipeline parameters, other steps' results)
are resolved by SageMaker when the step runs and are not checked here.

Limits are SageMaker's, from its API (botocore's ``sagemaker`` service model); they are written out here so that
parsing a DAG never loads the service model.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any, Literal

from airflow_provider_smpipe.exceptions import PipelineDefinitionError
from airflow_provider_smpipe.model.references import Reference

#: ``ml.<family>.<size>``, e.g. ``ml.m5.large``, ``ml.p4d.24xlarge``, ``ml.g5.12xlarge``.
_INSTANCE_TYPE = re.compile(r"^ml\.[a-z0-9][a-z0-9\-]*(\.[a-z0-9][a-z0-9\-]*)+$")
#: A Docker image reference (``[registry[:port]/]repository[:tag][@digest]``), as SageMaker takes it:
#: ``<account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag>``, or a private registry's path.
_DOMAIN = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?))*(?::\d+)?"
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_IMAGE_URI = re.compile(
    rf"^(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
    r"(?::[\w][\w.-]{0,127})?(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?$"
)
_IMAGE_URI_MAX = 255
#: botocore's ``RoleArn`` pattern.
_ROLE_ARN = re.compile(r"^arn:aws[a-z\-]*:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+$")
_ENVIRONMENT_KEY = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
#: Hyperparameter values SageMaker takes as strings (the SDK writes numbers and booleans as strings).
_HYPERPARAMETER_VALUE_MAX = 2500
_HYPERPARAMETER_KEY_MAX = 256
MAX_HYPERPARAMETERS = 100


def is_template(value: Any) -> bool:
    """A string Airflow still has to render (checked again once rendered)."""
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def is_literal(value: Any) -> bool:
    """A plain string: neither a template nor a reference."""
    return isinstance(value, str) and not is_template(value)


def _error(where: str, field: str, message: str) -> PipelineDefinitionError:
    return PipelineDefinitionError(f"{where} field {field!r}: {message}")


def check_instance_type(where: str, field: str, value: Any) -> None:
    """An instance type of the ``ml.<family>.<size>`` form (a reference or template is checked when it runs)."""
    if isinstance(value, Reference) or is_template(value):
        return
    if not isinstance(value, str) or not _INSTANCE_TYPE.match(value):
        raise _error(
            where,
            field,
            f"{value!r} is not a SageMaker instance type (ml.<family>.<size>, e.g. 'ml.m5.large')",
        )


def check_whole_number(
    where: str,
    field: str,
    value: Any,
    *,
    minimum: int = 1,
    maximum: int | None = None,
    reference: bool = True,
) -> None:
    """A whole number from ``minimum`` to ``maximum`` (a reference when ``reference``)."""
    if reference and isinstance(value, Reference):
        return
    if isinstance(value, bool) or not isinstance(value, int):
        also = " or a pipeline parameter" if reference else ""
        raise _error(where, field, f"expected a whole number{also}, got {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        bounds = f"from {minimum} to {maximum}" if maximum is not None else f"of at least {minimum}"
        raise _error(where, field, f"expected a whole number {bounds}, got {value}")


def check_image_uri(where: str, field: str, value: Any, *, required: bool = True) -> None:
    """A container image reference: ``<registry>/<repository>[:tag][@digest]``, such as an ECR URI."""
    if value is None and not required:
        return
    if isinstance(value, Reference) or is_template(value):
        return
    if not value:
        raise _error(where, field, "an image URI is required")
    if not isinstance(value, str) or len(value) > _IMAGE_URI_MAX or not _IMAGE_URI.match(value):
        raise _error(
            where,
            field,
            f"{value!r} is not a container image URI (<registry>/<repository>:<tag>, e.g. "
            "'123456789012.dkr.ecr.us-east-1.amazonaws.com/my-image:1.0')",
        )


def check_role_arn(where: str, field: str, value: Any, *, required: bool = False) -> None:
    """An IAM role ARN, ``arn:aws:iam::<account>:role/<name>``."""
    if value is None and not required:
        return
    if is_template(value):
        return
    if not isinstance(value, str) or not _ROLE_ARN.match(value):
        raise _error(where, field, f"{value!r} is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)")


def check_environment(
    where: str, field: str, environment: Any, *, max_entries: int, max_value_chars: int
) -> None:
    """Environment variables: names SageMaker takes, and string values (or references).

    SageMaker's API takes environment values as strings only; a number, a boolean or None is refused rather
    than converted, so that what the job sees is what the DAG says (``"5"``, ``"true"``...).
    """
    if environment is None:
        return
    if not isinstance(environment, Mapping):
        raise _error(
            where, field, f"expected a dict of variable names to strings, got {type(environment).__name__}"
        )
    if len(environment) > max_entries:
        raise _error(where, field, f"SageMaker takes at most {max_entries} variables, got {len(environment)}")
    for key, value in environment.items():
        if not isinstance(key, str) or not _ENVIRONMENT_KEY.match(key):
            raise _error(where, field, f"{key!r} is not a variable name (letters, digits and '_')")
        if isinstance(value, Reference) or is_template(value):
            continue
        if not isinstance(value, str):
            raise _error(
                where,
                f"{field}[{key!r}]",
                f"environment values are strings in SageMaker, got {type(value).__name__} {value!r:.80}; "
                + _string_hint(value),
            )
        if len(value) > max_value_chars:
            raise _error(
                where, f"{field}[{key!r}]", f"longer than the {max_value_chars} characters SageMaker takes"
            )


def _string_hint(value: Any) -> str:
    if isinstance(value, bool):
        return f"write {str(value).lower()!r}"
    if isinstance(value, int | float):
        return f"write {str(value)!r}"
    if value is None:
        return "give a string or leave the variable out"
    return "give a string (serialize structured values yourself, e.g. json.dumps(...))"


def check_hyperparameters(where: str, field: str, values: Any) -> None:
    """Hyperparameters: strings, numbers, booleans or references; SageMaker passes each as one string."""
    if values is None:
        return
    if not isinstance(values, Mapping):
        raise _error(where, field, f"expected a dict of names to values, got {type(values).__name__}")
    if len(values) > MAX_HYPERPARAMETERS:
        raise _error(where, field, f"SageMaker takes at most {MAX_HYPERPARAMETERS}, got {len(values)}")
    for key, value in values.items():
        if not isinstance(key, str) or not 1 <= len(key) <= _HYPERPARAMETER_KEY_MAX:
            raise _error(where, field, f"{key!r} is not a hyperparameter name (1-256 characters)")
        if isinstance(value, Reference) or is_template(value):
            continue
        if value is None or not isinstance(value, str | int | float | bool):
            raise _error(
                where,
                f"{field}[{key!r}]",
                f"a hyperparameter is one string, number or boolean, got {type(value).__name__} {value!r:.80}"
                + (" (serialize nested values yourself, e.g. json.dumps(...))" if value is not None else ""),
            )
        if len(str(value)) > _HYPERPARAMETER_VALUE_MAX:
            raise _error(
                where,
                f"{field}[{key!r}]",
                f"longer than the {_HYPERPARAMETER_VALUE_MAX} characters SageMaker takes",
            )


def check_s3_uri(where: str, field: str, value: Any, *, what: str) -> None:
    """An ``s3://`` URI (or a reference): SageMaker reads inputs from S3 and writes outputs to S3.

    :param what: What the value is, for the message: "input" or "output".
    """
    if value is None or isinstance(value, Reference) or is_template(value):
        return
    if not isinstance(value, str):
        raise _error(where, field, f"expected an s3:// URI or a reference, got {type(value).__name__}")
    if not value.startswith("s3://") or len(value) <= len("s3://"):
        if what == "input":
            hint = "SageMaker reads inputs from S3; upload the data and give its s3:// URI"
        else:
            hint = "SageMaker writes outputs to S3; give an s3:// URI, or leave it out for a generated one"
        kind = "a local path" if value and "://" not in value else "not an S3 URI"
        raise _error(where, field, f"{value!r} is {kind}; {hint}")


PathKind = Literal["file", "directory", "file or directory"]


def local_path(
    where: str,
    field: str,
    path: Any,
    folder: str,
    *,
    kind: PathKind,
    folder_name: str = "the DAG file's folder",
) -> str:
    """A local path resolved against ``folder`` (the DAG file's folder), checked to exist and be of ``kind``.

    Relative paths must stay inside ``folder`` (``..`` may not leave it); absolute paths are taken as given.

    :param folder_name: What ``folder`` is, for the message.
    """
    if not isinstance(path, str) or not path:
        raise _error(where, field, f"expected a path, got {path!r}")
    if os.path.isabs(path):
        resolved = os.path.normpath(path)
    else:
        resolved = os.path.normpath(os.path.join(folder, path))
        if os.path.relpath(resolved, folder).split(os.sep)[0] == "..":
            raise _error(
                where,
                field,
                f"{path!r} leaves {folder_name} {folder!r}; keep the code inside it, or give an absolute path",
            )
    if not os.path.exists(resolved):
        raise _error(where, field, f"{path!r} does not exist ({resolved})")
    if kind == "file" and not os.path.isfile(resolved):
        raise _error(where, field, f"{path!r} is a directory, not a file ({resolved})")
    if kind == "directory" and not os.path.isdir(resolved):
        raise _error(where, field, f"{path!r} is a file, not a directory ({resolved})")
    return resolved
