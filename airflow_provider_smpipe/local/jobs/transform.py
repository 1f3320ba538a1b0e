"""Batch transform jobs: the model's own serving code over every input object, one ``.out`` object each.

Each instance gets the model (``ModelDataUrl`` extracted to ``/opt/ml/model``), the model's inference script
and its share of the input objects (objects are dealt out between instances, as SageMaker does), then runs the
serving harness :mod:`airflow_provider_smpipe.local.serving` in its mount namespace. The script is found as
SageMaker's framework containers find it: ``SAGEMAKER_PROGRAM`` (default ``inference.py``) in
``SAGEMAKER_SUBMIT_DIRECTORY`` (an S3 ``sourcedir.tar.gz``, extracted to ``/opt/ml/code``, or a path such as
``/opt/ml/model/code``), else in ``code/`` of ``model.tar.gz``. A model without a script (a built-in
algorithm's image) runs only when its image is mapped to a local serving command in
``$SMPIPE_LOCAL_IMAGE_COMMANDS``.
"""

from __future__ import annotations

import json
import sys
import tarfile
from typing import TYPE_CHECKING, Any

from airflow_provider_smpipe.local.jobs.base import (
    IMAGE_COMMANDS_ENV,
    JOB_KINDS,
    OPT_ML,
    Instance,
    JobKind,
    JobRun,
    JobSetupError,
    image_command,
    local_path,
)
from airflow_provider_smpipe.local.s3io import split_s3_uri
from airflow_provider_smpipe.local.serving.records import (
    DEFAULT_MAX_PAYLOAD_MB,
    TransformDataError,
    TransformSettings,
)

if TYPE_CHECKING:
    from pathlib import Path

    from airflow_provider_smpipe.local.state import JobRecord

#: Where the harness's configuration, the instance's input objects and its results live in the workspace.
HARNESS_DIR = ".smpipe"
DEFAULT_PROGRAM = "inference.py"
MODEL_DIR = f"{OPT_ML}/model"
CODE_DIR = f"{OPT_ML}/code"


class TransformJobKind(JobKind):
    kind = "transform"
    api_noun = "TransformJob"
    resource = "transform-job"
    log_group = "/aws/sagemaker/TransformJobs"

    def instance_count(self, request: dict[str, Any]) -> int:
        return int((request.get("TransformResources") or {}).get("InstanceCount", 1))

    def prepare(self, run: JobRun, inst: Instance, hosts: list[str]) -> None:
        req = run.job.request
        try:
            TransformSettings.from_request(req).check()
        except TransformDataError as err:
            raise JobSetupError(str(err)) from None
        container = model_container(run)
        _extract_model(run, inst, container)
        serving = _serving_code(run, inst, container)
        objects = input_objects(run)
        share = objects[hosts.index(inst.host) :: len(hosts)]
        harness = inst.root / HARNESS_DIR
        entries = []
        for bucket, key, name in share:
            target = harness / "input" / name
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                run.ctx.s3.client.download_file(bucket, key, str(target))
            except Exception as err:
                raise JobSetupError(f"cannot download input s3://{bucket}/{key}: {err}") from err
            entries.append({"name": name, "path": f"{OPT_ML}/{HARNESS_DIR}/input/{name}"})
        (harness / "output").mkdir(parents=True, exist_ok=True)
        (inst.root / "output").mkdir(parents=True, exist_ok=True)
        timeout = (req.get("ModelClientConfig") or {}).get("InvocationsTimeoutInSeconds")
        config = {
            **serving,
            "model_name": req.get("ModelName"),
            "image": container.get("Image"),
            "model_dir": MODEL_DIR,
            "request": req,
            "objects": entries,
            "output_dir": f"{OPT_ML}/{HARNESS_DIR}/output",
            "invocation_timeout": float(timeout) if timeout else None,
        }
        (harness / "transform.json").write_text(json.dumps(config))

    def command(self, run: JobRun) -> list[str]:
        # -P: the workspace (the working directory) is not put on sys.path; the script's directory is.
        config = f"{OPT_ML}/{HARNESS_DIR}/transform.json"
        return [sys.executable, "-P", "-m", "airflow_provider_smpipe.local.serving", config]

    def environment(self, run: JobRun, inst: Instance) -> dict[str, str]:
        req = run.job.request
        env = {str(k): str(v) for k, v in (model_container(run).get("Environment") or {}).items()}
        payload = req.get("MaxPayloadInMB")
        env.update(
            {
                "SAGEMAKER_BATCH": "true",
                "SAGEMAKER_MAX_PAYLOAD_IN_MB": str(DEFAULT_MAX_PAYLOAD_MB if payload is None else payload),
                "SAGEMAKER_BATCH_STRATEGY": (
                    "MULTI_RECORD" if req.get("BatchStrategy") == "MultiRecord" else "SINGLE_RECORD"
                ),
                "SAGEMAKER_MAX_CONCURRENT_TRANSFORMS": str(req.get("MaxConcurrentTransforms") or 1),
            }
        )
        return env

    def upload_outputs(self, run: JobRun) -> None:
        destination = run.job.request["TransformOutput"]["S3OutputPath"]
        for inst in run.instances:
            run.ctx.s3.upload_dir(inst.root / HARNESS_DIR / "output", destination)

    def describe(self, job: JobRecord) -> dict[str, Any]:
        req = job.request
        out: dict[str, Any] = {
            "TransformJobName": job.name,
            "TransformJobArn": job.arn,
            "TransformJobStatus": job.status,
            "ModelName": req.get("ModelName", ""),
            "TransformInput": req["TransformInput"],
            "TransformResources": req["TransformResources"],
            "CreationTime": job.creation_time,
        }
        for key in (
            "TransformOutput",
            "MaxConcurrentTransforms",
            "ModelClientConfig",
            "MaxPayloadInMB",
            "BatchStrategy",
            "Environment",
            "DataProcessing",
            "DataCaptureConfig",
            "ExperimentConfig",
        ):
            if req.get(key) not in (None, {}, ""):
                out[key] = req[key]
        if job.failure_reason:
            out["FailureReason"] = job.failure_reason
        if job.start_time is not None:
            out["TransformStartTime"] = job.start_time
        if job.end_time is not None:
            out["TransformEndTime"] = job.end_time
        return out

    def summary(self, job: JobRecord) -> dict[str, Any]:
        out: dict[str, Any] = {
            "TransformJobName": job.name,
            "TransformJobArn": job.arn,
            "CreationTime": job.creation_time,
            "LastModifiedTime": job.last_modified_time,
            "TransformJobStatus": job.status,
        }
        if job.end_time is not None:
            out["TransformEndTime"] = job.end_time
        if job.failure_reason:
            out["FailureReason"] = job.failure_reason
        return out


# -- the model -----------------------------------------------------------------------------------------


def model_container(run: JobRun) -> dict[str, Any]:
    """The model's container (``Image``, ``ModelDataUrl``, ``Environment``), from the SageMaker backend."""
    from moto.sagemaker.models import sagemaker_backends

    name = str(run.job.request.get("ModelName") or "")
    backend = sagemaker_backends[run.ctx.account][run.ctx.region]
    try:
        model = backend.describe_model(name)
    except Exception:  # moto's ValidationError, as DescribeModel answers for a missing model
        arn = f"arn:aws:sagemaker:{run.ctx.region}:{run.ctx.account}:model/{name.lower()}"
        raise JobSetupError(f'Could not find model "{arn}".') from None
    primary = dict(model.primary_container or {})
    containers = list(model.containers or [])
    if primary:
        return primary
    if len(containers) == 1:
        return dict(containers[0])
    if containers:
        raise JobSetupError(
            f"model {name!r} is an inference pipeline of {len(containers)} containers; the local backend runs "
            "single-container models only"
        )
    raise JobSetupError(f"model {name!r} has no container")


def _extract_model(run: JobRun, inst: Instance, container: dict[str, Any]) -> None:
    model_dir = inst.root / "model"
    model_dir.mkdir(parents=True, exist_ok=True)
    url = container.get("ModelDataUrl")
    source = (container.get("ModelDataSource") or {}).get("S3DataSource") or {}
    if url:
        archive = _download_once(run, str(url), "model.tar.gz", "the model data (ModelDataUrl)")
        _extract(archive, model_dir, f"ModelDataUrl {url}")
    elif source.get("S3Uri"):
        if source.get("CompressionType", "None") == "Gzip":
            archive = _download_once(
                run, str(source["S3Uri"]), "model.tar.gz", "the model data (ModelDataSource)"
            )
            _extract(archive, model_dir, f"ModelDataSource {source['S3Uri']}")
        else:
            run.download(str(source["S3Uri"]), model_dir, "the model data (ModelDataSource)")


def _download_once(run: JobRun, uri: str, file_name: str, what: str) -> Path:
    """Download an object into the job's workspace once (instances share it)."""
    target = run.workspace / file_name
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            bucket, key = split_s3_uri(uri)
            run.ctx.s3.client.download_file(bucket, key, str(target))
        except Exception as err:
            raise JobSetupError(f"cannot download {what} from {uri}: {err}") from err
    return target


def _extract(archive: Path, dest: Path, what: str) -> None:
    try:
        with tarfile.open(archive, "r:*") as tar:
            tar.extractall(dest, filter="data")
    except (tarfile.TarError, OSError) as err:
        raise JobSetupError(f"{what} is not a readable tar.gz archive: {err}") from err


def _serving_code(run: JobRun, inst: Instance, container: dict[str, Any]) -> dict[str, Any]:
    """How the harness serves the model: ``{"mode": "script", "code_dir", "program"}`` or ``{"mode": "server",
    "server_command"}``; an image-only model without a mapped command fails here, before any input is read."""
    env = {str(k): str(v) for k, v in (container.get("Environment") or {}).items()}
    program = env.get("SAGEMAKER_PROGRAM", "").strip()
    submit = env.get("SAGEMAKER_SUBMIT_DIRECTORY", "").strip()
    if submit.startswith("s3://"):
        code = inst.root / "code"
        code.mkdir(parents=True, exist_ok=True)
        if submit.endswith((".tar.gz", ".tgz")):
            archive = _download_once(
                run, submit, "sourcedir.tar.gz", "the inference code (SAGEMAKER_SUBMIT_DIRECTORY)"
            )
            _extract(archive, code, f"SAGEMAKER_SUBMIT_DIRECTORY {submit}")
        else:
            run.download(submit, code, "the inference code (SAGEMAKER_SUBMIT_DIRECTORY)")
        code_dir = CODE_DIR
    elif submit:
        try:
            local_path(inst, submit)
        except JobSetupError:
            raise JobSetupError(
                f"SAGEMAKER_SUBMIT_DIRECTORY {submit!r} of model {run.job.request.get('ModelName')!r} is neither an "
                f"S3 URI nor a path under {OPT_ML}"
            ) from None
        code_dir = submit.rstrip("/")
    else:
        code_dir = f"{MODEL_DIR}/code"
    script_name = program if program.endswith(".py") or not program else f"{program}.py"
    script_name = script_name or DEFAULT_PROGRAM
    if local_path(inst, f"{code_dir}/{script_name}").is_file():
        return {"mode": "script", "code_dir": code_dir, "program": script_name}
    model = run.job.request.get("ModelName")
    if program:
        raise JobSetupError(
            f"the inference script {script_name!r} (SAGEMAKER_PROGRAM) of model {model!r} is not in {code_dir} "
            f"(SAGEMAKER_SUBMIT_DIRECTORY={submit or 'unset'}; the model data has it under code/ when packaged with "
            "the code)"
        )
    image = str(container.get("Image") or "")
    mapped = image_command(image)
    if mapped is not None:
        # SageMaker starts an inference image as `<entrypoint> serve`.
        return {"mode": "server", "server_command": [*mapped, "serve"]}
    raise JobSetupError(
        f"model {model!r} has no inference script (no SAGEMAKER_PROGRAM, no code/{DEFAULT_PROGRAM} in its model "
        f"data): only its image {image!r} knows how to serve it, and the local backend does not pull images. Give "
        "the model an inference script with model_fn (and input_fn/predict_fn/output_fn), or map the image to a "
        f'local serving command with {IMAGE_COMMANDS_ENV}=\'{{"{image}": "python3 /path/to/serve.py"}}\' (it is '
        "started with the argument serve and must answer GET /ping and POST /invocations on "
        "$SAGEMAKER_BIND_TO_PORT; see docs/local-backend.md)"
    )


# -- the input -----------------------------------------------------------------------------------------


def input_objects(run: JobRun) -> list[tuple[str, str, str]]:
    """``(bucket, key, output name)`` of every input object, in key order."""
    source = run.job.request["TransformInput"]["DataSource"]["S3DataSource"]
    uri = str(source["S3Uri"])
    data_type = source.get("S3DataType", "S3Prefix")
    client = run.ctx.s3.client
    try:
        if data_type == "S3Prefix":
            bucket, prefix = split_s3_uri(uri)
            keys = _list_keys(client, bucket, prefix)
            objects = [(bucket, key, output_name(prefix, key)) for key in keys]
        elif data_type == "ManifestFile":
            objects = _manifest_objects(client, uri)
        else:
            raise JobSetupError(
                f"S3DataType {data_type} is not supported by the local backend (S3Prefix and ManifestFile are)"
            )
    except JobSetupError:
        raise
    except Exception as err:
        raise JobSetupError(f"cannot list the input {uri}: {err}") from err
    if not objects:
        raise JobSetupError(f"No S3 objects found under S3 URL {uri!r} given in TransformInput")
    return objects


def _list_keys(client: Any, bucket: str, prefix: str) -> list[str]:
    keys: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(obj["Key"] for obj in page.get("Contents", []) if not obj["Key"].endswith("/"))
    return sorted(keys)


def output_name(prefix: str, key: str) -> str:
    """The name of ``key``'s result under S3OutputPath (``.out`` added): its path below the prefix's folder."""
    if key == prefix:
        return key.rsplit("/", 1)[-1]
    if prefix.endswith("/") or key.startswith(prefix + "/"):
        folder = prefix if prefix.endswith("/") else prefix + "/"
    else:  # a prefix that ends inside a name ("data/part-"): keep the names below its folder
        folder = prefix.rsplit("/", 1)[0] + "/" if "/" in prefix else ""
    return key[len(folder) :]


def _manifest_objects(client: Any, uri: str) -> list[tuple[str, str, str]]:
    bucket, key = split_s3_uri(uri)
    manifest = json.loads(client.get_object(Bucket=bucket, Key=key)["Body"].read())
    if not isinstance(manifest, list) or not manifest or not isinstance(manifest[0], dict):
        raise JobSetupError(f'manifest {uri} must be a JSON list starting with {{"prefix": "s3://..."}}')
    base_bucket, base = split_s3_uri(str(manifest[0].get("prefix", "")))
    return [(base_bucket, f"{base}{entry}", str(entry)) for entry in manifest[1:]]


JOB_KINDS.add(TransformJobKind.kind, TransformJobKind())
