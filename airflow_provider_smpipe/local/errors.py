"""Errors the local backend returns to AWS clients, in the shape botocore parses."""

from __future__ import annotations


class ApiError(Exception):
    """An AWS service error: ``code`` becomes ``__type`` (JSON) or ``<Code>`` (XML)."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def validation_error(message: str) -> ApiError:
    return ApiError("ValidationException", message)


def not_found(message: str) -> ApiError:
    # SageMaker spells it without the "Exception" suffix.
    return ApiError("ResourceNotFound", message)
