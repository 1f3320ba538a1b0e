"""Process-wide rate limits and bounded backoff for AWS calls.

Every trigger of one triggerer shares the account's API quotas, so CloudWatch Logs calls (and SageMaker polls)
go through one token bucket per ``(aws_conn_id, region, api)`` and event loop. Throttling and transient errors
are retried with jittered exponential backoff; they never fail a task by themselves.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import TYPE_CHECKING, Any, TypeVar

from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Requests per second and burst size per API, well below the AWS quotas (account and region wide):
#: DescribeLogStreams 25 TPS, GetLogEvents 25 TPS, FilterLogEvents 5 TPS (hard). SageMaker publishes no TPS
#: for the pipeline APIs; a modest budget keeps hundreds of watched steps from tripping throttling.
DEFAULT_BUDGETS: dict[str, tuple[float, float]] = {
    "DescribeLogStreams": (5.0, 5.0),
    "GetLogEvents": (10.0, 10.0),
    "FilterLogEvents": (2.0, 2.0),
    "sagemaker": (10.0, 10.0),
    "s3": (20.0, 20.0),
}

THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "RequestThrottledException",
        "ProvisionedThroughputExceededException",
        "SlowDown",
        "LimitExceededException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalFailure",
        "InternalServerError",
        "InternalError",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)


class AsyncTokenBucket:
    """
    A FIFO token bucket for asyncio: ``await bucket.acquire()`` waits for a token without blocking the loop.

    :param rate: Tokens added per second.
    :param burst: Bucket size.
    :param clock: Monotonic clock, replaceable in tests.
    """

    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = burst
        self._updated = clock()
        self._lock = asyncio.Lock()
        self.acquired = 0

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
        self._updated = now

    async def acquire(self) -> None:
        """Wait until a token is available and take it (waiters are served in order)."""
        async with self._lock:
            while True:
                self._refill()
                if self._tokens >= 1:
                    self._tokens -= 1
                    self.acquired += 1
                    return
                await asyncio.sleep((1 - self._tokens) / self.rate)


# One registry per event loop: asyncio primitives belong to a loop, and tests run several loops.
_BUCKETS: dict[tuple[int, str | None, str | None, str], AsyncTokenBucket] = {}


def get_bucket(
    aws_conn_id: str | None,
    region_name: str | None,
    api: str,
    budgets: dict[str, tuple[float, float]] | None = None,
) -> AsyncTokenBucket:
    """
    Return the process-wide token bucket of ``api`` for one connection and region in the running loop.

    :param aws_conn_id: The Airflow AWS connection id (part of the key: it usually means one account).
    :param region_name: The region.
    :param api: An operation name in :data:`DEFAULT_BUDGETS` (or any name: unknown ones get 10 TPS).
    :param budgets: Override of :data:`DEFAULT_BUDGETS`, used only when the bucket is created.
    """
    loop_id = id(asyncio.get_running_loop())
    key = (loop_id, aws_conn_id, region_name, api)
    bucket = _BUCKETS.get(key)
    if bucket is None:
        rate, burst = (budgets or DEFAULT_BUDGETS).get(api, (10.0, 10.0))
        bucket = _BUCKETS[key] = AsyncTokenBucket(rate, burst)
    return bucket


def reset_buckets() -> None:
    """Forget every bucket (tests)."""
    _BUCKETS.clear()


def error_code(exc: BaseException) -> str | None:
    """
    Return the AWS error code of a botocore ClientError, else None.

    :param exc: Any exception.
    """
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code") or "") or None
    return None


def is_transient_error(exc: BaseException) -> bool:
    """
    Return whether ``exc`` is throttling, a 5xx or a connection problem worth retrying.

    :param exc: Any exception.
    """
    if isinstance(exc, ClientError):
        if error_code(exc) in THROTTLING_CODES:
            return True
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return isinstance(status, int) and status >= 500
    if isinstance(
        exc, EndpointConnectionError | ConnectionClosedError | ReadTimeoutError | ConnectTimeoutError
    ):
        return True
    if isinstance(exc, TimeoutError | ConnectionError):
        return True
    # aiohttp's errors, without importing aiohttp at module level.
    return type(exc).__module__.startswith("aiohttp") and "Error" in type(exc).__name__


def backoff_delay(attempt: int, base: float = 0.5, cap: float = 30.0) -> float:
    """
    Return a full-jitter exponential delay for retry number ``attempt`` (0-based).

    :param attempt: How many attempts failed so far, minus one.
    :param base: The first delay's upper bound in seconds.
    :param cap: The largest delay.
    """
    return random.uniform(0, min(cap, base * (2**attempt)))


async def acall_with_backoff(
    func: Callable[[], Awaitable[T]],
    *,
    op_name: str,
    max_attempts: int | None = 8,
    base: float = 0.5,
    cap: float = 30.0,
    bucket: AsyncTokenBucket | None = None,
    should_retry: Callable[[BaseException], bool] = is_transient_error,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
) -> T:
    """
    Await ``func()`` with a rate limit and retry transient errors with jittered exponential backoff.

    :param func: A zero-argument coroutine function making one AWS call.
    :param op_name: The operation name, for logs.
    :param max_attempts: Give up (re-raise) after this many attempts; None retries transient errors forever.
    :param base: First backoff delay bound in seconds.
    :param cap: Largest backoff delay in seconds.
    :param bucket: Token bucket to take a token from before every attempt.
    :param should_retry: Which exceptions are retried.
    :param sleep: The sleep coroutine (replaceable in tests).
    """
    attempt = 0
    while True:
        if bucket is not None:
            await bucket.acquire()
        try:
            return await func()
        except Exception as exc:
            attempt += 1
            if not should_retry(exc) or (max_attempts is not None and attempt >= max_attempts):
                raise
            delay = backoff_delay(attempt - 1, base, cap)
            log.warning(
                "%s failed (%s: %s), attempt %s; retrying in %.1f s",
                op_name,
                type(exc).__name__,
                error_code(exc) or exc,
                attempt,
                delay,
            )
            await sleep(delay)


def call_with_backoff(
    func: Callable[[], T],
    *,
    op_name: str,
    max_attempts: int = 8,
    base: float = 0.5,
    cap: float = 30.0,
    should_retry: Callable[[BaseException], bool] = is_transient_error,
    sleep: Callable[[float], Any] = time.sleep,
) -> T:
    """
    Call ``func()`` (blocking, for workers only) and retry transient errors with jittered backoff.

    :param func: A zero-argument function making one AWS call.
    :param op_name: The operation name, for logs.
    :param max_attempts: Give up (re-raise) after this many attempts.
    :param base: First backoff delay bound in seconds.
    :param cap: Largest backoff delay in seconds.
    :param should_retry: Which exceptions are retried.
    :param sleep: The sleep function (replaceable in tests).
    """
    attempt = 0
    while True:
        try:
            return func()
        except Exception as exc:
            attempt += 1
            if not should_retry(exc) or attempt >= max_attempts:
                raise
            delay = backoff_delay(attempt - 1, base, cap)
            log.warning(
                "%s failed (%s: %s), attempt %s; retrying in %.1f s",
                op_name,
                type(exc).__name__,
                error_code(exc) or exc,
                attempt,
                delay,
            )
            sleep(delay)
