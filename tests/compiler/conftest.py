from __future__ import annotations

from compiler_support import aws

__all__ = ["aws"]
