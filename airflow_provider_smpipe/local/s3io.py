"""S3 transfers between the backend's own endpoint and job workspaces."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from pathlib import Path

# Requests carrying this header bypass fault injection: the backend's own traffic must not fail.
INTERNAL_HEADER = "X-Smpipe-Internal"


def split_s3_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise ValueError(f"not an S3 URI: {uri!r}")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


class S3IO:
    """A boto3 S3 client pointed at the local endpoint, marked as internal traffic."""

    def __init__(self, endpoint_url: str, region: str) -> None:
        self.client: Any = boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            aws_access_key_id="smpipe-local",
            aws_secret_access_key="smpipe-local",
            config=Config(retries={"max_attempts": 3, "mode": "standard"}, s3={"addressing_style": "path"}),
        )

        def mark(request: Any, **_: Any) -> None:
            request.headers[INTERNAL_HEADER] = "1"

        self.client.meta.events.register("before-sign.s3", mark)

    def download(self, uri: str, dest: Path, shard: tuple[int, int] | None = None) -> int:
        """Download the object or every object under the prefix ``uri`` into ``dest``; return the count.

        :param shard: ``(index, count)``: only every ``count``-th object (in key order) from the ``index``-th on,
            as ``ShardedByS3Key`` gives each of ``count`` instances its share. The count returned is then
            the number of objects under the prefix, not of this shard's.
        """
        bucket, prefix = split_s3_uri(uri)
        count = 0
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                key = obj["Key"]
                if key.endswith("/"):
                    continue
                count += 1
                if shard is not None and (count - 1) % shard[1] != shard[0]:
                    continue
                relative = key[len(prefix) :].lstrip("/") or os.path.basename(key)
                target = dest / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                self.client.download_file(bucket, key, str(target))
        return count

    def upload_dir(self, source: Path, uri: str) -> int:
        bucket, prefix = split_s3_uri(uri)
        prefix = prefix.rstrip("/")
        count = 0
        for path in sorted(source.rglob("*")):
            if path.is_file():
                key = f"{prefix}/{path.relative_to(source).as_posix()}" if prefix else path.name
                self.client.upload_file(str(path), bucket, key)
                count += 1
        return count

    def upload_file(self, source: Path, uri: str) -> None:
        bucket, key = split_s3_uri(uri)
        self.client.upload_file(str(source), bucket, key)

    def read_json(self, uri: str) -> Any:
        bucket, key = split_s3_uri(uri)
        body = self.client.get_object(Bucket=bucket, Key=key)["Body"].read()
        return json.loads(body)
