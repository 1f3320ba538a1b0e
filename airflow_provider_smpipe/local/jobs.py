"""Runs processing and training jobs as local processes that see their workspace at /opt/ml.

Each instance gets a directory that is bind-mounted at ``/opt/ml`` inside a private mount
namespace (``unshare --mount``), so code written for SageMaker containers runs unchanged.
The container image is not pulled: the entrypoint runs with the backend's own Python first
on ``PATH``.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import time
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from airflow_provider_smpipe.local.logs import JobLogStream
from airflow_provider_smpipe.local.state import JobRecord, now

if TYPE_CHECKING:
    from pathlib import Path

    from airflow_provider_smpipe.local.s3io import S3IO

log = logging.getLogger(__name__)

OPT_ML = "/opt/ml"
STDERR_TAIL_LINES = 10
KILL_GRACE_SECONDS = 2.0
# The job sees its workspace at /opt/ml; $0 is the workspace, "$@" the container command.
_NAMESPACE_SCRIPT = 'mkdir -p /opt/ml && mount --bind "$0" /opt/ml && cd /opt/ml && exec "$@"'


class JobSetupError(Exception):
    """The job cannot start (missing input, no namespace support): fails it with this reason."""


@functools.cache
def namespace_problem() -> str | None:
    """Why jobs cannot get a private /opt/ml here, or ``None`` when they can."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "it must run as root to bind-mount the job workspace at /opt/ml"
    if shutil.which("unshare") is None or shutil.which("mount") is None:
        return "unshare(1) and mount(8) from util-linux are not installed"
    probe = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "true"],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        return f"'unshare --mount' failed: {probe.stderr.strip() or probe.returncode}"
    return None


@dataclass
class JobContext:
    """What a job needs from the backend that runs it."""

    endpoint_url: str
    account: str
    region: str
    state_dir: Path
    s3: S3IO
    log_interval: float = 0.5


@dataclass
class _Instance:
    host: str
    root: Path
    process: subprocess.Popen[bytes] | None = None
    stream: JobLogStream | None = None
    stderr_tail: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=50))
    readers: list[threading.Thread] = field(default_factory=list)


class JobRun:
    """Runs one job to its end; ``stop()`` kills it from another thread."""

    def __init__(self, job: JobRecord, ctx: JobContext) -> None:
        self.job = job
        self.ctx = ctx
        self.instances: list[_Instance] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()

    # --- public ---------------------------------------------------------------------------------

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            for inst in self.instances:
                _kill(inst.process)

    def run(self) -> None:
        job = self.job
        job.start_time = now()
        try:
            self._prepare()
            if self._stop.is_set():
                job.set_status("Stopped", "Stopped")
                return
            job.set_status("InProgress", "Training" if job.kind == "training" else "InProgress")
            outcome, reason = self._execute()
            if outcome == "Completed":
                job.set_status("InProgress", "Uploading")
                self._upload_outputs()
            job.set_status(outcome, "Completed" if outcome == "Completed" else outcome, reason)
        except JobSetupError as err:
            job.set_status("Failed", "Failed", f"ClientError: {err}")
        except Exception as err:  # a bug or an S3 failure must fail the job, not hang the pipeline
            log.exception("job %s crashed", job.name)
            job.set_status("Failed", "Failed", f"InternalServerError: {type(err).__name__}: {err}")
        finally:
            for inst in self.instances:
                if inst.stream is not None:
                    inst.stream.close()

    # --- preparation ----------------------------------------------------------------------------

    def _count(self) -> int:
        req = self.job.request
        if self.job.kind == "processing":
            return int(req["ProcessingResources"]["ClusterConfig"].get("InstanceCount", 1))
        return int(req["ResourceConfig"].get("InstanceCount", 1))

    def _prepare(self) -> None:
        problem = namespace_problem()
        if problem:
            raise JobSetupError(f"the local backend cannot run this job: {problem}")
        base = self.ctx.state_dir / "jobs" / self.job.name
        hosts = [f"algo-{i}" for i in range(1, self._count() + 1)]
        with self._lock:
            self.instances = [_Instance(host=h, root=base / h) for h in hosts]
        job_start = int(time.time())
        for inst in self.instances:
            inst.root.mkdir(parents=True, exist_ok=True)
            group = (
                "/aws/sagemaker/ProcessingJobs"
                if self.job.kind == "processing"
                else "/aws/sagemaker/TrainingJobs"
            )
            inst.stream = JobLogStream(
                self.ctx.account,
                self.ctx.region,
                group,
                f"{self.job.name}/{inst.host}-{job_start}",
                self.ctx.log_interval,
            )
            if self.job.kind == "processing":
                self._prepare_processing(inst)
            else:
                self._prepare_training(inst, hosts)

    def _local(self, inst: _Instance, container_path: str) -> Path:
        if not (container_path == OPT_ML or container_path.startswith(OPT_ML + "/")):
            raise JobSetupError(f"local path {container_path!r} must be under {OPT_ML}")
        return inst.root / container_path[len(OPT_ML) :].lstrip("/")

    def _download(self, uri: str, dest: Path, what: str) -> None:
        dest.mkdir(parents=True, exist_ok=True)
        try:
            count = self.ctx.s3.download(uri, dest)
        except Exception as err:
            raise JobSetupError(f"cannot download {what} from {uri}: {err}") from err
        if count == 0:
            raise JobSetupError(f"No S3 objects found under S3 URL {uri!r} given in {what}")

    def _prepare_processing(self, inst: _Instance) -> None:
        req = self.job.request
        for item in req.get("ProcessingInputs") or []:
            s3_input = item.get("S3Input")
            if not s3_input:
                raise JobSetupError(f"input {item.get('InputName')}: only S3Input is supported locally")
            if s3_input.get("S3DataType", "S3Prefix") != "S3Prefix":
                raise JobSetupError(f"input {item.get('InputName')}: only S3DataType S3Prefix is supported")
            self._download(
                s3_input["S3Uri"], self._local(inst, s3_input["LocalPath"]), f"input {item.get('InputName')}"
            )
        for output in (req.get("ProcessingOutputConfig") or {}).get("Outputs") or []:
            s3_output = output.get("S3Output")
            if s3_output:
                self._local(inst, s3_output["LocalPath"]).mkdir(parents=True, exist_ok=True)

    def _prepare_training(self, inst: _Instance, hosts: list[str]) -> None:
        req = self.job.request
        config = inst.root / "input" / "config"
        config.mkdir(parents=True, exist_ok=True)
        for sub in ("model", "output/data", "input/data"):
            (inst.root / sub).mkdir(parents=True, exist_ok=True)
        channels: dict[str, Any] = {}
        for channel in req.get("InputDataConfig") or []:
            name = channel["ChannelName"]
            source = (channel.get("DataSource") or {}).get("S3DataSource")
            if not source:
                raise JobSetupError(f"channel {name}: only S3DataSource is supported locally")
            if source.get("S3DataType", "S3Prefix") != "S3Prefix":
                raise JobSetupError(f"channel {name}: only S3DataType S3Prefix is supported")
            self._download(source["S3Uri"], inst.root / "input" / "data" / name, f"channel {name}")
            channels[name] = {
                "TrainingInputMode": channel.get("InputMode")
                or req["AlgorithmSpecification"].get("TrainingInputMode", "File"),
                "S3DistributionType": source.get("S3DataDistributionType", "FullyReplicated"),
                "RecordWrapperType": channel.get("RecordWrapperType", "None"),
            }
        checkpoint = req.get("CheckpointConfig")
        if checkpoint:
            local = self._local(inst, checkpoint.get("LocalPath") or "/opt/ml/checkpoints")
            local.mkdir(parents=True, exist_ok=True)
            try:
                self.ctx.s3.download(checkpoint["S3Uri"], local)
            except Exception as err:
                raise JobSetupError(f"cannot download checkpoints from {checkpoint['S3Uri']}: {err}") from err
        resources = req["ResourceConfig"]
        resource_config = {
            "current_host": inst.host,
            "current_instance_type": resources.get("InstanceType", "local"),
            "current_group_name": "homogeneousCluster",
            "hosts": hosts,
            "instance_groups": [
                {
                    "instance_group_name": "homogeneousCluster",
                    "instance_type": resources.get("InstanceType", "local"),
                    "hosts": hosts,
                }
            ],
            "network_interface_name": "eth0",
        }
        hyperparameters = {str(k): str(v) for k, v in (req.get("HyperParameters") or {}).items()}
        (config / "hyperparameters.json").write_text(json.dumps(hyperparameters))
        (config / "inputdataconfig.json").write_text(json.dumps(channels))
        (config / "resourceconfig.json").write_text(json.dumps(resource_config))

    # --- execution ------------------------------------------------------------------------------

    def _command(self) -> list[str]:
        req = self.job.request
        spec = req["AppSpecification"] if self.job.kind == "processing" else req["AlgorithmSpecification"]
        command = list(spec.get("ContainerEntrypoint") or []) + list(spec.get("ContainerArguments") or [])
        if not command:
            # Without an entrypoint SageMaker runs the image's default ("train" for training images).
            raise JobSetupError(
                "the job has no ContainerEntrypoint; the local backend does not pull images, so it "
                "cannot run the image's default command"
            )
        return [str(part) for part in command]

    def _environment(self, inst: _Instance) -> dict[str, str]:
        python_dir = os.path.dirname(sys.executable)
        env = {
            "PATH": f"{python_dir}:{os.environ.get('PATH', '/usr/local/bin:/usr/bin:/bin')}",
            "HOME": os.environ.get("HOME", "/root"),
            "LANG": "C.UTF-8",
            "PYTHONUNBUFFERED": "1",
            "AWS_ENDPOINT_URL": self.ctx.endpoint_url,
            "AWS_ACCESS_KEY_ID": "smpipe-local",
            "AWS_SECRET_ACCESS_KEY": "smpipe-local",
            "AWS_DEFAULT_REGION": self.ctx.region,
            "AWS_REGION": self.ctx.region,
        }
        req = self.job.request
        if self.job.kind == "training":
            env.update(self._training_env(inst))
        env.update({str(k): str(v) for k, v in (req.get("Environment") or {}).items()})
        return env

    def _training_env(self, inst: _Instance) -> dict[str, str]:
        req = self.job.request
        hosts = [i.host for i in self.instances]
        channels = [c["ChannelName"] for c in req.get("InputDataConfig") or []]
        hps = {str(k): str(v) for k, v in (req.get("HyperParameters") or {}).items()}
        cpus = os.cpu_count() or 1
        env = {
            "TRAINING_JOB_NAME": self.job.name,
            "TRAINING_JOB_ARN": self.job.arn,
            "SM_MODEL_DIR": "/opt/ml/model",
            "SM_INPUT_DIR": "/opt/ml/input",
            "SM_INPUT_DATA_DIR": "/opt/ml/input/data",
            "SM_INPUT_CONFIG_DIR": "/opt/ml/input/config",
            "SM_OUTPUT_DIR": "/opt/ml/output",
            "SM_OUTPUT_DATA_DIR": "/opt/ml/output/data",
            "SM_OUTPUT_FAILURE": "/opt/ml/output/failure",
            "SM_CHANNELS": json.dumps(channels),
            "SM_HPS": json.dumps(hps),
            "SM_CURRENT_HOST": inst.host,
            "SM_CURRENT_INSTANCE_TYPE": req["ResourceConfig"].get("InstanceType", "local"),
            "SM_HOSTS": json.dumps(hosts),
            "SM_NUM_CPUS": str(cpus),
            "SM_NUM_GPUS": "0",
            "SM_TRAINING_ENV": json.dumps(
                {
                    "job_name": self.job.name,
                    "current_host": inst.host,
                    "hosts": hosts,
                    "channel_input_dirs": {c: f"/opt/ml/input/data/{c}" for c in channels},
                    "hyperparameters": hps,
                    "model_dir": "/opt/ml/model",
                    "output_data_dir": "/opt/ml/output/data",
                    "num_cpus": cpus,
                    "num_gpus": 0,
                }
            ),
        }
        for channel in channels:
            env[f"SM_CHANNEL_{channel.upper()}"] = f"/opt/ml/input/data/{channel}"
        for key, value in hps.items():
            env[f"SM_HP_{key.replace('-', '_').upper()}"] = value
        return env

    def _execute(self) -> tuple[str, str | None]:
        """Run every instance; return (final status, failure reason)."""
        command = self._command()
        wrapper = ["unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c", _NAMESPACE_SCRIPT]
        limit = (self.job.request.get("StoppingCondition") or {}).get("MaxRuntimeInSeconds")
        deadline = time.monotonic() + float(limit) if limit else None
        with self._lock:
            if self._stop.is_set():
                return "Stopped", None
            for inst in self.instances:
                inst.process = subprocess.Popen(
                    [*wrapper, str(inst.root), *command],
                    cwd=str(inst.root),
                    env=self._environment(inst),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    start_new_session=True,  # its own process group, so stop kills the whole tree
                )
                for pipe, is_err in ((inst.process.stdout, False), (inst.process.stderr, True)):
                    assert pipe is not None
                    reader = threading.Thread(target=self._pump, args=(inst, pipe, is_err), daemon=True)
                    reader.start()
                    inst.readers.append(reader)
        timed_out = False
        while any(inst.process is not None and inst.process.poll() is None for inst in self.instances):
            if deadline is not None and time.monotonic() > deadline and not timed_out:
                timed_out = True
                for inst in self.instances:
                    _kill(inst.process)
            time.sleep(0.1)
        for inst in self.instances:
            # Like a container ending: nothing the entrypoint left in the background survives it.
            if inst.process is not None:
                _kill_group(inst.process)
            for reader in inst.readers:
                reader.join(timeout=5)
        if self._stop.is_set():
            return "Stopped", None
        if timed_out:
            return "Failed", (
                f"MaxRuntimeExceeded: the job ran longer than StoppingCondition.MaxRuntimeInSeconds={limit} "
                "and was stopped"
            )
        for inst in self.instances:
            assert inst.process is not None
            code = inst.process.returncode
            if code != 0:
                return "Failed", self._failure_reason(inst, code)
        return "Completed", None

    def _pump(self, inst: _Instance, pipe: IO[bytes], is_err: bool) -> None:
        for raw in iter(pipe.readline, b""):
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            if inst.stream is not None:
                inst.stream.write(line)
            if is_err:
                inst.stderr_tail.append(line)
        pipe.close()

    def _failure_reason(self, inst: _Instance, code: int) -> str:
        failure_file = inst.root / "output" / "failure"
        detail = ""
        if failure_file.is_file():
            detail = failure_file.read_text(errors="replace").strip()
        head = f"AlgorithmError: the job's command exited with exit code {code} on {inst.host}"
        if code < 0:
            head += f" (killed by signal {-code})"
        if detail:
            head += f": {detail}"
        tail = [line for line in inst.stderr_tail if line.strip()]
        reason = head
        while tail:
            reason = head + "\nLast lines on stderr:\n" + "\n".join(tail)
            if len(reason) <= 1024:
                break
            tail.pop(0)
        return reason[:1024]

    # --- outputs --------------------------------------------------------------------------------

    def _upload_outputs(self) -> None:
        req = self.job.request
        if self.job.kind == "processing":
            for inst in self.instances:
                for output in (req.get("ProcessingOutputConfig") or {}).get("Outputs") or []:
                    s3_output = output.get("S3Output")
                    if s3_output:
                        self.ctx.s3.upload_dir(self._local(inst, s3_output["LocalPath"]), s3_output["S3Uri"])
            return
        main = self.instances[0]
        checkpoint = req.get("CheckpointConfig")
        if checkpoint:
            local = self._local(main, checkpoint.get("LocalPath") or "/opt/ml/checkpoints")
            self.ctx.s3.upload_dir(local, checkpoint["S3Uri"])
        base = f"{req['OutputDataConfig']['S3OutputPath'].rstrip('/')}/{self.job.name}/output"
        work = self.ctx.state_dir / "jobs" / self.job.name
        model_tar = work / "model.tar.gz"
        _tar(main.root / "model", model_tar)
        self.ctx.s3.upload_file(model_tar, f"{base}/model.tar.gz")
        self.job.model_artifacts = f"{base}/model.tar.gz"
        data_dir = main.root / "output" / "data"
        if any(data_dir.iterdir()):
            output_tar = work / "output.tar.gz"
            _tar(data_dir, output_tar)
            self.ctx.s3.upload_file(output_tar, f"{base}/output.tar.gz")


def _tar(source: Path, target: Path) -> None:
    with tarfile.open(target, "w:gz") as tar:
        for path in sorted(source.rglob("*")):
            tar.add(path, arcname=path.relative_to(source).as_posix(), recursive=False)


def _kill(process: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM the job's process group, then SIGKILL it if it is still there after a grace period."""
    if process is None or process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return

    def finish() -> None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=KILL_GRACE_SECONDS)
        _kill_group(process)

    threading.Thread(target=finish, daemon=True).start()


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
