"""flbsql: Fluent Bit input and output plugins for SQL databases."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
