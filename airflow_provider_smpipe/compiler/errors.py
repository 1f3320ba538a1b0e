"""Errors raised by the SageMaker SDK, botocore or pydantic while compiling, said in one line."""

from __future__ import annotations

import re
from typing import Any

#: Longest summary kept: the provider's message names the task first, the SDK's detail follows.
MAX_SUMMARY_CHARS = 300


def sdk_error_summary(error: BaseException) -> str:
    """One line saying what the SDK refused: pydantic's model, field and reason; botocore's parameter or the
    service's error code and message; else the exception's type and message."""
    text: str
    errors = getattr(error, "errors", None)
    if type(error).__name__ == "ValidationError" and callable(errors):
        items: list[dict[str, Any]] = list(errors())
        first = items[0] if items else {}
        location = ".".join(str(part) for part in first.get("loc", ()))
        title = getattr(error, "title", "")
        where = ".".join(part for part in (str(title), location) if part)
        more = f" (and {len(items) - 1} more)" if len(items) > 1 else ""
        text = f"{where}: {first.get('msg', error)}{more}"
    elif hasattr(error, "response") and isinstance(getattr(error, "response", None), dict):
        details = error.response.get("Error", {})
        operation = getattr(error, "operation_name", "the call")
        text = f"{operation} failed: {details.get('Code', '')}: {details.get('Message', '')}"
    else:
        text = f"{type(error).__name__}: {error}"
    text = re.sub(r"\s+", " ", text).strip()
    if len(text) > MAX_SUMMARY_CHARS:
        text = text[: MAX_SUMMARY_CHARS - 3].rstrip() + "..."
    return text
