"""A chunk of changes as statements: which table, which key, in the order they came.

:func:`plan` turns the changes of one flush into :class:`Op` s for
:mod:`flbsql.output.apply` to run: consecutive upserts (or deletes) of one table with
the same columns share one bulk statement; a truncate or an update that keeps
TOAST columns is an op of its own. A change that cannot become a statement (no
key in ``before``, a column the table lacks, a value that does not convert) is
reported in ``errors`` by its event position, and dead-lettered by the caller.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection
from typing import Any

from flbsql.errors import RecordError
from flbsql.output.changes import Change
from flbsql.output.routing import TableName, TableRouter
from flbsql.output.targets import Target

__all__ = ["Item", "Op", "columns_per_table", "last_per_key", "plan"]


@dataclasses.dataclass(slots=True)
class Item:
    """One change of the chunk, with its target table."""

    at: int  # position of the event in the chunk
    change: Change
    name: TableName


@dataclasses.dataclass
class Op:
    """One statement (or one bulk call) of the flush."""

    kind: str  # upsert, delete, update, empty
    target: Target
    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]
    items: list[int]  # the event position of each row
    extra: Any = None  # update: (key to update, new key, columns kept)


Add = Callable[[str, Target, tuple[str, ...], tuple[Any, ...], int], None]


def plan(
    items: list[Item],
    targets: dict[TableName, Target],
    markers: Collection[str],
    router: TableRouter,
    errors: dict[int, str],
) -> list[Op]:
    """Statements in change order; errors[event position] for changes that cannot be one."""
    ops: list[Op] = []

    def add(kind: str, t: Target, cols: tuple[str, ...], row: tuple[Any, ...], at: int) -> None:
        last = ops[-1] if ops else None
        if (
            last is not None
            and kind in ("upsert", "delete")
            and (last.kind, last.target, last.columns) == (kind, t, cols)
        ):
            last.rows.append(row)
            last.items.append(at)
        else:
            ops.append(Op(kind, t, cols, [row], [at]))

    for it in items:
        t, ch = targets[it.name], it.change
        try:
            if ch.op == "t":
                add("empty", t, (), (), it.at)
            elif ch.op == "d":
                add("delete", t, t.key, _key(router, t, ch.before, "before", ch), it.at)
            else:
                _write(add, ops, router, markers, t, ch, it.at)
        except (RecordError, ValueError) as exc:
            errors[it.at] = str(exc)
    return ops


def _write(
    add: Add,
    ops: list[Op],
    router: TableRouter,
    markers: Collection[str],
    t: Target,
    ch: Change,
    at: int,
) -> None:
    """An r/c/u change: upsert the new row (delete the old key first if it moved)."""
    after = ch.after
    if not after:
        raise RecordError(f"op {ch.op!r} change of {ch.table} has no `after` row")
    unknown = [c for c in after if c not in t.types]
    if unknown:
        raise RecordError(
            f"table {router.text(t.name)} has no column {', '.join(unknown)} "
            "(add it, or set auto_add_columns on)"
        )
    new_key = _key(router, t, after, "after", ch)
    old_key = None
    if ch.op == "u" and ch.before and all(k in ch.before for k in t.key):
        old_key = _key(router, t, ch.before, "before", ch)
    kept = [c for c, v in after.items() if isinstance(v, str) and v in markers]
    if not kept:
        if old_key is not None and old_key != new_key:
            add("delete", t, t.key, old_key, at)
        cols = tuple(after)
        add("upsert", t, cols, t.values(after, cols), at)
        return
    if ch.op != "u":
        raise RecordError(f"op {ch.op!r} change holds the unchanged-TOAST marker in {kept}")
    cols = tuple(c for c in after if c not in kept)
    where = old_key if old_key is not None else new_key
    ops.append(Op("update", t, cols, [t.values(after, cols)], [at], (where, new_key, kept)))


def _key(
    router: TableRouter, t: Target, row: dict[str, Any] | None, part: str, ch: Change
) -> tuple[Any, ...]:
    missing = [k for k in t.key if not row or k not in row]
    if missing or row is None:
        hint = " (REPLICA IDENTITY NOTHING on the source?)" if part == "before" else ""
        raise RecordError(
            f"op {ch.op!r} change of {ch.table}: `{part}` lacks key column(s) "
            f"{', '.join(missing)} of {router.text(t.name)}{hint}"
        )
    return t.values(row, t.key)


def last_per_key(op: Op) -> tuple[list[tuple[Any, ...]], list[int]]:
    """One row per key in a run of upserts: the last, which is the final state."""
    idx = [op.columns.index(k) for k in op.target.key]
    last: dict[tuple[Any, ...], int] = {}
    for i, row in enumerate(op.rows):
        last[tuple(row[j] for j in idx)] = i
    if len(last) == len(op.rows):
        return op.rows, op.items
    keep = sorted(last.values())
    return [op.rows[i] for i in keep], [op.items[i] for i in keep]


def columns_per_table(
    items: list[Item], markers: Collection[str]
) -> dict[TableName, dict[str, Any]]:
    """Per table, its columns in the chunk with a sample value (the types of a new table)."""
    need: dict[TableName, dict[str, Any]] = {}
    for it in items:
        cols = need.setdefault(it.name, {})
        for row in (it.change.after, it.change.before):
            for k, v in (row or {}).items():
                if cols.get(k) is None and not (isinstance(v, str) and v in markers):
                    cols[k] = v
    return need
