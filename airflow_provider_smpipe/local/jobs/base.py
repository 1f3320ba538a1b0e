"""Runs SageMaker jobs as local processes that see their workspace at /opt/ml.

Each instance gets a directory that is bind-mounted at ``/opt/ml`` inside a private mount namespace
(``unshare --mount``), so code written for SageMaker containers runs unchanged. The container image is not
pulled: the entrypoint runs with the backend's own Python first on ``PATH``. What differs between job kinds
(inputs, command, environment, outputs, Describe* response) lives in a :class:`JobKind` per module of this
package, found through :data:`JOB_KINDS`.
"""

from __future__ import annotations

import collections
import contextlib
import functools
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
from airflow_provider_smpipe.registry import Registry

if TYPE_CHECKING:
    from pathlib import Path

    from airflow_provider_smpipe.local.s3io import S3IO

log = logging.getLogger(__name__)

OPT_ML = "/opt/ml"
KILL_GRACE_SECONDS = 2.0
# The job sees its workspace at /opt/ml; $0 is the workspace, "$@" the container command.
_NAMESPACE_SCRIPT = 'mkdir -p /opt/ml && mount --bind "$0" /opt/ml && cd /opt/ml && exec "$@"'
#: Environment variable mapping image URIs (or prefixes ending in ``*``) to local commands, as JSON.
IMAGE_COMMANDS_ENV = "SMPIPE_LOCAL_IMAGE_COMMANDS"


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
class Instance:
    """One host of a job: its workspace (seen as /opt/ml), process and log stream."""

    host: str
    root: Path
    process: subprocess.Popen[bytes] | None = None
    stream: JobLogStream | None = None
    stderr_tail: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=50))
    readers: list[threading.Thread] = field(default_factory=list)


class JobKind:
    """What one kind of SageMaker job does differently; one subclass per module of this package.

    :cvar kind: The job kind (``processing``, ``training``...), as in :attr:`JobRecord.kind`.
    :cvar resource: The ARN resource type (``processing-job``).
    :cvar log_group: The CloudWatch log group of its instances.
    :cvar running_status: The secondary status while the command runs.
    :cvar api_noun: The API's name for it (``ProcessingJob``): Describe/List/Stop operations are served for it.
    """

    kind = ""
    api_noun = ""
    resource = ""
    log_group = ""
    running_status = "InProgress"

    def instance_count(self, request: dict[str, Any]) -> int:
        return 1

    def prepare(self, run: JobRun, inst: Instance, hosts: list[str]) -> None:
        """Download inputs and write configuration into the instance's workspace."""

    def command(self, run: JobRun) -> list[str]:
        """The command every instance runs."""
        raise NotImplementedError

    def environment(self, run: JobRun, inst: Instance) -> dict[str, str]:
        """Environment variables of the kind (the request's own Environment is added after these)."""
        return {}

    def max_runtime(self, run: JobRun) -> float | None:
        limit = (run.job.request.get("StoppingCondition") or {}).get("MaxRuntimeInSeconds")
        return float(limit) if limit else None

    def on_line(self, run: JobRun, inst: Instance, line: str) -> None:
        """Called for every line an instance prints (metrics are read from the log)."""

    def upload_outputs(self, run: JobRun) -> None:
        """Upload what the job wrote, once it completed."""

    def describe(self, job: JobRecord) -> dict[str, Any]:
        """The Describe*Job response."""
        raise NotImplementedError

    def summary(self, job: JobRecord) -> dict[str, Any]:
        """The List*Jobs summary."""
        raise NotImplementedError


#: Job kinds by name: each module of this package (but this one) registers one.
JOB_KINDS: Registry[str, JobKind] = Registry("job kind", "airflow_provider_smpipe.local.jobs", skip=("base",))


def local_path(inst: Instance, container_path: str) -> Path:
    """Where a container path under /opt/ml lives in the instance's workspace."""
    if not (container_path == OPT_ML or container_path.startswith(OPT_ML + "/")):
        raise JobSetupError(f"local path {container_path!r} must be under {OPT_ML}")
    return inst.root / container_path[len(OPT_ML) :].lstrip("/")


def image_command(image: str) -> list[str] | None:
    """The local command configured for ``image`` in ``$SMPIPE_LOCAL_IMAGE_COMMANDS`` (JSON), if any.

    Keys are image URIs, or prefixes ending in ``*``; values a command string or list, e.g.
    ``{"683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost*": ["python3", "/srv/xgb_train.py"]}``.
    """
    import json
    import shlex

    raw = os.environ.get(IMAGE_COMMANDS_ENV, "").strip()
    if not raw:
        return None
    try:
        table = json.loads(raw)
    except ValueError as err:
        raise JobSetupError(f"{IMAGE_COMMANDS_ENV} is not valid JSON: {err}") from err
    if not isinstance(table, dict):
        raise JobSetupError(f"{IMAGE_COMMANDS_ENV} must be a JSON object of image -> command")
    for pattern, command in sorted(table.items(), key=lambda item: -len(item[0])):
        matches = image.startswith(pattern[:-1]) if pattern.endswith("*") else image == pattern
        if matches:
            return shlex.split(command) if isinstance(command, str) else [str(part) for part in command]
    return None


def base_environment(ctx: JobContext) -> dict[str, str]:
    """What every local job process gets: the backend's Python first on PATH, the endpoint and a region."""
    python_dir = os.path.dirname(sys.executable)
    return {
        "PATH": f"{python_dir}:{os.environ.get('PATH', '/usr/local/bin:/usr/bin:/bin')}",
        "HOME": os.environ.get("HOME", "/root"),
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        "AWS_ENDPOINT_URL": ctx.endpoint_url,
        "AWS_ACCESS_KEY_ID": "smpipe-local",
        "AWS_SECRET_ACCESS_KEY": "smpipe-local",
        "AWS_DEFAULT_REGION": ctx.region,
        "AWS_REGION": ctx.region,
    }


class JobRun:
    """Runs one job to its end; ``stop()`` kills it from another thread."""

    def __init__(self, job: JobRecord, ctx: JobContext) -> None:
        self.job = job
        self.ctx = ctx
        self.kind = JOB_KINDS[job.kind]
        self.instances: list[Instance] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()

    # --- public ---------------------------------------------------------------------------------

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            for inst in self.instances:
                _kill(inst.process)

    def run(self) -> None:
        job = self.job
        job.start_time = now()
        try:
            # Known before anything is downloaded: a job that cannot run (an unmapped image) fails at once.
            command = self.kind.command(self)
            self._prepare()
            if self._stop.is_set():
                job.set_status("Stopped", "Stopped")
                return
            job.set_status("InProgress", self.kind.running_status)
            outcome, reason = self._execute(command)
            if outcome == "Completed":
                job.set_status("InProgress", "Uploading")
                self.kind.upload_outputs(self)
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

    # --- helpers for job kinds --------------------------------------------------------------------

    def download(self, uri: str, dest: Path, what: str, shard: tuple[int, int] | None = None) -> None:
        """Download an S3 prefix into ``dest``; fail the job when nothing is there.

        :param shard: ``(instance index, instance count)`` for ``ShardedByS3Key``: this instance's share only.
        """
        dest.mkdir(parents=True, exist_ok=True)
        try:
            count = self.ctx.s3.download(uri, dest, shard)
        except Exception as err:
            raise JobSetupError(f"cannot download {what} from {uri}: {err}") from err
        if count == 0:
            raise JobSetupError(f"No S3 objects found under S3 URL {uri!r} given in {what}")

    @property
    def workspace(self) -> Path:
        """The job's own directory (instances live under it)."""
        return self.ctx.state_dir / "jobs" / self.job.name

    # --- preparation ----------------------------------------------------------------------------

    def _prepare(self) -> None:
        problem = namespace_problem()
        if problem:
            raise JobSetupError(f"the local backend cannot run this job: {problem}")
        hosts = [f"algo-{i}" for i in range(1, self.kind.instance_count(self.job.request) + 1)]
        with self._lock:
            self.instances = [Instance(host=h, root=self.workspace / h) for h in hosts]
        job_start = int(time.time())
        for inst in self.instances:
            inst.root.mkdir(parents=True, exist_ok=True)
            inst.stream = JobLogStream(
                self.ctx.account,
                self.ctx.region,
                self.kind.log_group,
                f"{self.job.name}/{inst.host}-{job_start}",
                self.ctx.log_interval,
            )
            self.kind.prepare(self, inst, hosts)

    # --- execution ------------------------------------------------------------------------------

    def _environment(self, inst: Instance) -> dict[str, str]:
        env = base_environment(self.ctx)
        env.update(self.kind.environment(self, inst))
        env.update({str(k): str(v) for k, v in (self.job.request.get("Environment") or {}).items()})
        return env

    def _execute(self, command: list[str]) -> tuple[str, str | None]:
        """Run ``command`` on every instance; return (final status, failure reason)."""
        wrapper = ["unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c", _NAMESPACE_SCRIPT]
        limit = self.kind.max_runtime(self)
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

    def _pump(self, inst: Instance, pipe: IO[bytes], is_err: bool) -> None:
        for raw in iter(pipe.readline, b""):
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            if inst.stream is not None:
                inst.stream.write(line)
            self.kind.on_line(self, inst, line)
            if is_err:
                inst.stderr_tail.append(line)
        pipe.close()

    def _failure_reason(self, inst: Instance, code: int) -> str:
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


def tar_directory(source: Path, target: Path) -> None:
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
