"""Script mode of SageMaker's framework images, for training jobs that name no container entrypoint.

A framework image (scikit-learn, PyTorch, TensorFlow, XGBoost...) runs the SageMaker training toolkit, which
reads two hyperparameters: ``sagemaker_submit_directory`` (the code, an S3 ``.tar.gz`` or prefix) and
``sagemaker_program`` (the script in it). It unpacks the code into ``/opt/ml/code`` and runs the script there
with the other hyperparameters as ``--name value`` arguments. The SDK's tuner always relies on it: a tuning job's
training definition cannot name an entrypoint. The local backend has no image, so it does the same itself.
"""

from __future__ import annotations

import json
import shutil
import tarfile
from typing import TYPE_CHECKING, Any

from airflow_provider_smpipe.local.jobs.base import JobSetupError

if TYPE_CHECKING:
    from airflow_provider_smpipe.local.jobs.base import Instance, JobRun

PROGRAM = "sagemaker_program"
SUBMIT_DIRECTORY = "sagemaker_submit_directory"
CODE_DIR = "/opt/ml/code"
# cwd and PYTHONPATH are the code directory, as the toolkit sets them; $0 is the script.
_RUN_SCRIPT = 'cd /opt/ml/code && PYTHONPATH="/opt/ml/code${PYTHONPATH:+:$PYTHONPATH}" exec "$@"'


def _decoded(value: Any) -> str:
    """A hyperparameter as the toolkit reads it: JSON-decoded when it is JSON (the SDK v2 quoted strings)."""
    text = str(value)
    try:
        decoded = json.loads(text)
    except ValueError:
        return text
    return decoded if isinstance(decoded, str) else text


def script_program(request: dict[str, Any]) -> str | None:
    """The script a script-mode job runs (``sagemaker_program``), or None when it is not one."""
    hyperparameters = request.get("HyperParameters") or {}
    if PROGRAM not in hyperparameters:
        return None
    return _decoded(hyperparameters[PROGRAM])


def prepare(run: JobRun, inst: Instance) -> None:
    """Unpack ``sagemaker_submit_directory`` into the instance's ``/opt/ml/code``."""
    hyperparameters = run.job.request.get("HyperParameters") or {}
    source = hyperparameters.get(SUBMIT_DIRECTORY)
    code = inst.root / "code"
    code.mkdir(parents=True, exist_ok=True)
    if source is None:
        return  # the script is in the image on SageMaker: nothing to unpack (it must then exist locally)
    uri = _decoded(source)
    if not uri.startswith("s3://"):
        raise JobSetupError(f"{SUBMIT_DIRECTORY} {uri!r} is not an S3 URI")
    staging = run.workspace / f"{inst.host}-submit"
    run.download(uri, staging, SUBMIT_DIRECTORY)
    for path in sorted(staging.rglob("*")):
        if path.is_file() and path.name.endswith((".tar.gz", ".tgz")):
            with tarfile.open(path) as archive:
                archive.extractall(code, filter="data")
        elif path.is_file():
            target = code / path.relative_to(staging)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)


def command(request: dict[str, Any]) -> list[str]:
    """``python3 <script> --name value ...`` in ``/opt/ml/code`` (``sagemaker_*`` hyperparameters are the
    toolkit's own and are not passed on)."""
    program = script_program(request) or ""
    arguments: list[str] = []
    for name, value in sorted((request.get("HyperParameters") or {}).items()):
        if not str(name).startswith("sagemaker_"):
            arguments += [f"--{name}", _decoded(value)]
    script = f"{CODE_DIR}/{program}"
    if program.endswith(".py"):
        runner = ["python3", script]
    elif program.endswith(".sh"):
        runner = ["/bin/sh", script]
    else:
        runner = [script]
    return ["/bin/sh", "-c", _RUN_SCRIPT, "smpipe-script-mode", *runner, *arguments]
