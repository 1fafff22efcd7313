"""The DB-API 2 surface the core uses, and a column as introspected from the database."""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol

__all__ = ["Column", "Connection", "Cursor"]


class Cursor(Protocol):
    """The DB-API 2 cursor surface the core uses."""

    description: Any
    rowcount: int

    def execute(self, sql: str, params: Any = ..., /) -> Any: ...  # noqa: D102
    def executemany(self, sql: str, seq: Any, /) -> Any: ...  # noqa: D102
    def fetchone(self) -> Any: ...  # noqa: D102
    def fetchmany(self, size: int = ..., /) -> Any: ...  # noqa: D102
    def fetchall(self) -> Any: ...  # noqa: D102
    def close(self) -> Any: ...  # noqa: D102


class Connection(Protocol):
    """The DB-API 2 connection surface the core uses."""

    def cursor(self, *args: Any, **kwargs: Any) -> Any: ...  # noqa: D102
    def commit(self) -> Any: ...  # noqa: D102
    def rollback(self) -> Any: ...  # noqa: D102
    def close(self) -> Any: ...  # noqa: D102


@dataclasses.dataclass(frozen=True)
class Column:
    """A column as introspected from the database."""

    name: str
    type: str  # the database's own type name, lower case
    nullable: bool = True
