"""Errors raised by the provider."""

from __future__ import annotations


class PipelineDefinitionError(ValueError):
    """A SageMaker pipeline group cannot be compiled; the message names the group, task and field to fix."""
