"""``smpipe-local``: serve the local SageMaker Pipelines backend until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from typing import TYPE_CHECKING

from airflow_provider_smpipe.local.faults import FaultConfig, parse_operations

if TYPE_CHECKING:
    from types import FrameType


def _parser() -> argparse.ArgumentParser:
    env = FaultConfig.from_env()
    parser = argparse.ArgumentParser(
        prog="smpipe-local",
        description="Local AWS-compatible endpoint (S3, STS, IAM, CloudWatch Logs, SageMaker Pipelines) "
        "whose pipeline executions really run their processing and training jobs.",
    )
    parser.add_argument("--host", default=os.environ.get("SMPIPE_LOCAL_HOST", "127.0.0.1"))
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("SMPIPE_LOCAL_PORT", "4566")),
        help="0 picks a free port",
    )
    parser.add_argument(
        "--state-dir",
        default=os.environ.get("SMPIPE_LOCAL_STATE_DIR") or None,
        help="job workspaces (temp dir)",
    )
    parser.add_argument(
        "--throttle-rate", type=float, default=env.throttle_rate, help="share of calls throttled"
    )
    parser.add_argument(
        "--error-rate", type=float, default=env.error_rate, help="share of calls failing with 500"
    )
    parser.add_argument("--latency-ms", type=int, default=env.latency_ms, help="latency added to calls")
    parser.add_argument(
        "--fault-operations",
        default=",".join(sorted(env.operations)),
        help="comma-separated operations (StartPipelineExecution), services (sagemaker:*) or "
        "service:Operation the faults apply to; all calls when empty",
    )
    parser.add_argument("--fault-seed", type=int, default=env.seed, help="seed for reproducible faults")
    parser.add_argument(
        "--strict",
        action="store_true",
        default=os.environ.get("SMPIPE_LOCAL_STRICT", "").lower() in ("1", "true", "yes"),
        help="validate every SageMaker response against botocore's output shapes",
    )
    parser.add_argument("--log-level", default=os.environ.get("SMPIPE_LOCAL_LOG_LEVEL", "WARNING"))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    from airflow_provider_smpipe.local.server import LocalBackend

    faults = FaultConfig(
        throttle_rate=args.throttle_rate,
        error_rate=args.error_rate,
        latency_ms=args.latency_ms,
        operations=parse_operations(args.fault_operations or ""),
        seed=args.fault_seed,
    )
    done = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    backend = LocalBackend(
        host=args.host, port=args.port, state_dir=args.state_dir, faults=faults, strict=args.strict
    )
    backend.start()
    print(f"smpipe-local ready on {backend.endpoint_url}", flush=True)
    try:
        while not done.wait(1.0):
            pass
    finally:
        backend.stop()
    print("smpipe-local stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
