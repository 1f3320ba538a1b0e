"""The SDK session the compiler builds with: content-addressed uploads that wait until the definition is known
to be good.

While the SDK builds the steps and renders the definition, every upload (step code, the SDK's drivers, packed
inference code) is only recorded: its S3 URI is returned as the SDK would return it, the bytes are kept. Only
when every step built and every check passed does :meth:`publish` create the bucket if needed and upload, so a
pipeline refused while compiling leaves nothing behind in AWS.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
from typing import TYPE_CHECKING, Any

from airflow_provider_smpipe.exceptions import PipelineDefinitionError

if TYPE_CHECKING:
    from collections.abc import Callable

    import boto3

log = logging.getLogger(__name__)

# The SDK uploads training code under "<prefix>/<job name with a timestamp>/input/<channel>"; those keys are
# rewritten to content-addressed ones so the same code always gives the same definition.
_JOB_INPUT_KEY = re.compile(r"(?:^|/)input/(?P<channel>[^/]+)/?$")
_SDK_CONFIG = {"SchemaVersion": "1.0", "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}}}
_MISSING_BUCKET = ("404", "NoSuchBucket", "NotFound")


def tree_hash(path: str) -> str:
    """A sha256 over a file's or a directory's relative paths and contents."""
    digest = hashlib.sha256()
    if os.path.isfile(path):
        files = [(os.path.basename(path), path)]
    else:
        files = []
        for root, dirs, names in os.walk(path):
            dirs.sort()
            for name in sorted(names):
                full = os.path.join(root, name)
                files.append((os.path.relpath(full, path), full))
    for relative, full in sorted(files):
        digest.update(relative.encode() + b"\0")
        with open(full, "rb") as handle:
            digest.update(hashlib.sha256(handle.read()).digest())
    return digest.hexdigest()


def make_pipeline_session(boto_session: boto3.Session, default_bucket: str | None, pipeline_name: str) -> Any:
    """A ``PipelineSession`` whose uploads go to content-addressed keys and wait for :meth:`publish`.

    Its ``default_bucket()`` names the bucket without creating it (``publish`` creates it when missing).
    """
    from sagemaker.core.workflow.pipeline_context import PipelineSession

    class ContentAddressedPipelineSession(PipelineSession):
        #: (bucket, key) -> (bytes, ExtraArgs) of the uploads to make.
        pending_uploads: dict[tuple[str, str], tuple[bytes, dict[str, Any]]]
        #: What else to create once everything is checked (Lambda functions...), in order.
        pending_actions: list[Callable[[], None]]

        def default_bucket(self) -> str:
            if self._default_bucket_name_override:
                return str(self._default_bucket_name_override)
            return str(super().default_bucket())

        def upload_data(
            self,
            path: str,
            bucket: str | None = None,
            key_prefix: str = "data",
            callback: Any = None,
            extra_args: Any = None,
        ) -> str:
            match = _JOB_INPUT_KEY.search(key_prefix or "")
            if match:
                key_prefix = f"{pipeline_name}/code/{tree_hash(path)}/{match.group('channel')}"
            bucket, key_prefix = self.determine_bucket_and_prefix(
                bucket=bucket, key_prefix=key_prefix, sagemaker_session=self
            )
            # The same keys and URI as the SDK's upload_data; the bytes are read now (the file may be a
            # temporary one) and uploaded by publish().
            files: list[tuple[str, str]] = []
            suffix = None
            if os.path.isdir(path):
                for folder, _, names in os.walk(path):
                    relative = "" if folder == path else os.path.relpath(folder, start=path) + "/"
                    files.extend(
                        (os.path.join(folder, name), f"{key_prefix}/{relative}{name}") for name in names
                    )
            else:
                suffix = os.path.basename(path)
                files.append((path, f"{key_prefix}/{suffix}"))
            for local, key in files:
                with open(local, "rb") as handle:
                    self.pending_uploads[(bucket, key)] = (handle.read(), dict(extra_args or {}))
            uri = f"s3://{bucket}/{key_prefix}"
            return f"{uri}/{suffix}" if suffix else uri

        def publish(self) -> None:
            """Create the buckets that are missing, upload, then run the pending actions."""
            from botocore.exceptions import ClientError

            s3 = self.boto_session.client("s3", region_name=self.boto_region_name)
            for bucket in sorted({bucket for bucket, _ in self.pending_uploads} | {self.default_bucket()}):
                try:
                    ensure_bucket(s3, bucket, self.boto_region_name)
                except ClientError as error:
                    code = error.response.get("Error", {}).get("Code")
                    raise PipelineDefinitionError(
                        f"field 'default_bucket': bucket {bucket!r} cannot be used ({code}: it may belong to "
                        "another account, or the connection's credentials may not reach it)"
                    ) from error
            for (bucket, key), (data, extra) in sorted(self.pending_uploads.items()):
                s3.upload_fileobj(io.BytesIO(data), bucket, key, ExtraArgs=extra or None)
            self.pending_uploads.clear()
            for action in self.pending_actions:
                action()
            self.pending_actions.clear()

    session = ContentAddressedPipelineSession(
        boto_session=boto_session, default_bucket=default_bucket, sagemaker_config=_SDK_CONFIG
    )
    session.pending_uploads = {}
    session.pending_actions = []
    return session


def ensure_bucket(s3: Any, bucket: str, region: str | None, owner: str | None = None) -> None:
    """Create ``bucket`` when it does not exist (another launch may create it at the same time)."""
    from botocore.exceptions import ClientError

    try:
        s3.head_bucket(Bucket=bucket, **({"ExpectedBucketOwner": owner} if owner else {}))
        return
    except ClientError as error:
        if str(error.response.get("Error", {}).get("Code")) not in _MISSING_BUCKET:
            raise
    log.info("Creating bucket %s", bucket)
    create: dict[str, Any] = {"Bucket": bucket}
    if region and region != "us-east-1":
        create["CreateBucketConfiguration"] = {"LocationConstraint": region}
    try:
        s3.create_bucket(**create)
    except ClientError as error:
        if str(error.response.get("Error", {}).get("Code")) not in (
            "BucketAlreadyOwnedByYou",
            "OperationAborted",
        ):
            raise


def default_bucket_name(boto_session: boto3.Session, endpoint_url: str | None = None) -> str:
    """``sagemaker-<region>-<account>``, as the SDK's ``Session.default_bucket()`` names it, but through the
    connection's own endpoint (the SDK asks STS at its public regional endpoint, which an AWS-compatible endpoint
    such as the local backend never sees). Nothing is created.

    :raises PipelineDefinitionError: when a bucket of that name exists in another account (the SDK checks that
        for the name it picks itself).
    """
    from botocore.exceptions import ClientError

    region = boto_session.region_name or "us-east-1"
    sts = boto_session.client("sts", endpoint_url=endpoint_url, region_name=region)
    account = sts.get_caller_identity()["Account"]
    bucket = f"sagemaker-{region}-{account}"
    s3 = boto_session.client("s3", endpoint_url=endpoint_url, region_name=region)
    try:
        s3.head_bucket(Bucket=bucket, ExpectedBucketOwner=account)
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code"))
        if code not in _MISSING_BUCKET:
            raise PipelineDefinitionError(
                f"the default bucket {bucket!r} cannot be used ({code}: it may belong to another account); give "
                "the group a default_bucket"
            ) from error
    return bucket


def resolve_default_bucket(boto_session: boto3.Session, endpoint_url: str | None = None) -> str:
    """:func:`default_bucket_name`, created when missing."""
    bucket = default_bucket_name(boto_session, endpoint_url)
    region = boto_session.region_name or "us-east-1"
    ensure_bucket(boto_session.client("s3", endpoint_url=endpoint_url, region_name=region), bucket, region)
    return bucket
