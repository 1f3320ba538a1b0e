"""The inference container of model and register-model steps, as ``ModelBuilder`` arguments.

Inference code is not repacked into the model artifacts: the SDK would do that with a hidden ``RepackModel``
training step (a second SageMaker step behind one Airflow task, with timestamped S3 keys). Instead the code is
packed here into a reproducible ``sourcedir.tar.gz`` under a content-addressed key of the default bucket, and the
container gets the variables SageMaker framework containers read to find it: ``SAGEMAKER_PROGRAM`` (the script)
and ``SAGEMAKER_SUBMIT_DIRECTORY`` (the archive), plus ``SAGEMAKER_CONTAINER_LOG_LEVEL`` and
``SAGEMAKER_REGION`` as the SDK's script mode sets them.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import logging
import os
import tarfile
import tempfile
from typing import TYPE_CHECKING, Any

from airflow_provider_smpipe.exceptions import PipelineDefinitionError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow_provider_smpipe.compiler.sdk import PipelineBuilder
    from airflow_provider_smpipe.model.steps.model import InferenceCodeSpec

ARCHIVE_NAME = "sourcedir.tar.gz"
#: ``SAGEMAKER_CONTAINER_LOG_LEVEL`` as the SDK writes it (logging.INFO).
LOG_LEVEL = "20"


def code_files(code: InferenceCodeSpec) -> list[tuple[str, str]]:
    """``(name in the archive, local path)`` of the code, sorted; Python caches are left out."""
    if code.source_dir is None:
        return [(os.path.basename(code.entry_point), code.entry_point)]
    files = []
    for root, dirs, names in os.walk(code.source_dir):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(names):
            if not name.endswith((".pyc", ".pyo")):
                full = os.path.join(root, name)
                files.append((os.path.relpath(full, code.source_dir).replace(os.sep, "/"), full))
    return sorted(files)


def pack(code: InferenceCodeSpec) -> bytes:
    """The code as a ``.tar.gz`` whose bytes depend only on the files' names, contents and exec bits."""
    buffer = io.BytesIO()
    with (
        gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0) as compressed,
        tarfile.open(fileobj=compressed, mode="w", format=tarfile.USTAR_FORMAT) as tar,
    ):
        for name, path in code_files(code):
            with open(path, "rb") as handle:
                data = handle.read()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755 if os.access(path, os.X_OK) else 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def upload_code(task_id: str, code: InferenceCodeSpec, builder: PipelineBuilder) -> str:
    """Upload the packed code to ``s3://<bucket>/<pipeline>/code/<sha256>/sourcedir.tar.gz``; return its URI."""
    script = os.path.join(code.source_dir or "", code.entry_point)
    if not os.path.isfile(script):
        raise PipelineDefinitionError(f"task {task_id!r} field 'entry_point': {script!r} does not exist")
    archive = pack(code)
    digest = hashlib.sha256(archive).hexdigest()
    with tempfile.TemporaryDirectory(prefix="smpipe-code-") as folder:
        path = os.path.join(folder, ARCHIVE_NAME)
        with open(path, "wb") as handle:
            handle.write(archive)
        return str(
            builder.session.upload_data(path, builder.bucket, key_prefix=f"{builder.spec.name}/code/{digest}")
        )


def container_arguments(
    task_id: str,
    image_uri: Any,
    model_data: Any,
    environment: tuple[tuple[str, Any], ...],
    code: InferenceCodeSpec | None,
    builder: PipelineBuilder,
) -> dict[str, Any]:
    """``ModelBuilder`` keyword arguments for one inference container (without the role), quiet."""
    env = {key: builder.resolve(value) for key, value in environment}
    if code is not None:
        env.update(
            {
                "SAGEMAKER_PROGRAM": os.path.basename(code.entry_point)
                if code.source_dir is None
                else code.entry_point.replace(os.sep, "/"),
                "SAGEMAKER_SUBMIT_DIRECTORY": upload_code(task_id, code, builder),
                "SAGEMAKER_CONTAINER_LOG_LEVEL": env.get("SAGEMAKER_CONTAINER_LOG_LEVEL", LOG_LEVEL),
                "SAGEMAKER_REGION": env.get("SAGEMAKER_REGION", builder.session.boto_region_name),
            }
        )
    return {
        "log_level": logging.WARNING,
        "image_uri": builder.resolve(image_uri),
        "s3_model_data_url": builder.resolve(model_data),
        "env_vars": env,
        "sagemaker_session": builder.session,
    }


@contextlib.contextmanager
def quiet_model_builder() -> Iterator[None]:
    """Restore the SDK logger ModelBuilder re-levels (to its ``log_level``) on the way out.

    Builders pass ``log_level=WARNING``: under a PipelineSession ModelBuilder only captures the request, so its
    "Model has been created" lines would mislead in the launch log.
    """
    logger = logging.getLogger("sagemaker.core.utils.utils")
    level = logger.level
    try:
        yield
    finally:
        logger.setLevel(level)
