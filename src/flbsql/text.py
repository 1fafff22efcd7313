"""How values appear in log lines and error messages: as an operator writes them.

``2026-10-25T02:30:00+01:00`` rather than ``datetime.datetime(2026, 10, 25, ...)``,
``0b2c...`` rather than ``UUID('0b2c...')``, a size in bytes with its unit, and a
missing limit as ``unlimited`` rather than ``None``.
"""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from collections.abc import Sequence
from typing import Any

__all__ = ["show", "show_bytes", "show_tuple"]


def show(value: Any) -> str:
    """One value, as it would be written in SQL or in a config file (no Python repr)."""
    if value is None:
        return "NULL"
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (uuid.UUID, decimal.Decimal)):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "\\x" + bytes(value).hex()
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return str(value)


def show_tuple(values: Sequence[Any] | None, limit: int = 120) -> str:
    """``(2024-05-01T12:00:00+00:00, 42)``, cut at ``limit`` characters."""
    if values is None:
        return "the beginning"
    text = ", ".join(show(v) for v in values)
    return f"({text[:limit]}{'...' if len(text) > limit else ''})"


def show_bytes(n: int | None, none: str = "unlimited") -> str:
    """``1.5 GiB``; ``none`` when there is no number."""
    if n is None:
        return none
    size = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if abs(size) < 1024 or unit == "GiB":
            return f"{size:.0f} bytes" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"  # pragma: no cover
