"""The harness's errors."""

from __future__ import annotations


class StackError(RuntimeError):
    """A service did not start, died, or the API refused a call; the message names the log to read."""


class ApiNotFound(StackError):
    """The REST API answered 404: no such DAG, run or task instance (try) yet."""
