"""Sharding one source across inputs: ``shard i/N`` keeps the rows whose key hashes to ``i``.

A row belongs to shard ``hash(key) mod N``. The hash is computed by the database, in
the page, signpost and count statements alike, so every instance that reads the same
table with the same N puts each row in the same shard, whatever its own platform:
N inputs ``0/N`` ... ``N-1/N`` read every row exactly once between them per pass, each
with its own position (the shard is part of the position's name and identity).

The hash per dialect (its text rendering of the key columns, joined by ``chr(31)``):

==============  ==================================================================
PostgreSQL      ``hashtextextended(text, 0)`` (PostgreSQL 11+), taken mod N
MySQL/MariaDB   ``CRC32(CONCAT_WS(CHAR(31), ...))`` mod N
SQL Server      ``CHECKSUM(...)`` (as bigint, absolute) mod N
Oracle          ``ORA_HASH(text, N - 1)``
SQLite          refused: one file is read by one process, there is nothing to split
==============  ==================================================================

The condition filters the key order, it does not drive it: each shard still reads the
table's key index in order and skips the rows of the other shards, so N shards cost
the database about N scans of the index between them, spread over N readers.
"""

from __future__ import annotations

import dataclasses
import re
from typing import TYPE_CHECKING

from flbsql.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from flbsql.dialects.base import Dialect

__all__ = ["Shard", "check_dialect", "parse_shard", "shard_condition"]

_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


@dataclasses.dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (``0 <= index < count``)."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str | None) -> Shard | None:
    """``"2/4"`` -> Shard(2, 4); None when unset.

    Raises:
        ConfigError: not ``i/N`` with ``0 <= i < N``.
    """
    if text is None or not text.strip():
        return None
    m = _SHARD.match(text)
    if not m:
        raise ConfigError("shard", f"expected i/N such as 0/4, got {text!r}")
    index, count = int(m.group(1)), int(m.group(2))
    if count < 1 or index >= count:
        raise ConfigError(
            "shard",
            f"{text.strip()}: the index counts from 0 (a pod ordinal) and must be below N, "
            f"so with N={count} it is 0 to {count - 1}",
        )
    return Shard(index, count)


def _postgresql(cols: Sequence[str], n: int) -> str:
    text = cols[0] + "::text" if len(cols) == 1 else _joined(f"{c}::text" for c in cols)
    return f"mod(mod(hashtextextended({text}, 0), {n}) + {n}, {n})"


def _mysql(cols: Sequence[str], n: int) -> str:
    return f"MOD(CRC32(CONCAT_WS(CHAR(31), {', '.join(cols)})), {n})"


def _mssql(cols: Sequence[str], n: int) -> str:
    return f"(ABS(CAST(CHECKSUM({', '.join(cols)}) AS BIGINT)) % {n})"


def _oracle(cols: Sequence[str], n: int) -> str:
    text = " || CHR(31) || ".join(f"TO_CHAR({c})" for c in cols)
    return f"ORA_HASH({text}, {n - 1})"


def _joined(parts: Iterable[str]) -> str:
    return "concat_ws(chr(31), " + ", ".join(parts) + ")"


_HASHES: dict[str, Callable[[Sequence[str], int], str]] = {
    "postgresql": _postgresql,
    "mysql": _mysql,
    "mssql": _mssql,
    "oracle": _oracle,
}


def check_dialect(dialect: Dialect) -> None:
    """Refuse ``shard`` on a database that has no hash to shard by."""
    if dialect.name not in _HASHES:
        raise ConfigError(
            "shard",
            f"not supported on {dialect.name}: one file is read by one process, "
            "there is nothing to split between instances",
        )


def shard_condition(dialect: Dialect, key: Sequence[str], shard: Shard) -> str:
    """SQL that is true for the rows of ``shard``; ``key``: the key columns, unquoted.

    The numbers are validated integers written into the text (they are part of the
    statement's shape, like a LIMIT); the key columns are quoted by the dialect.
    """
    check_dialect(dialect)
    cols = [dialect.quote(c) for c in key]
    return f"{_HASHES[dialect.name](cols, shard.count)} = {shard.index}"
