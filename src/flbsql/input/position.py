"""The input's position: a small typed record with its boundary rules.

Rows are read in *order columns* order: ``(tracking_column, *key)`` with a
tracking column, else ``key``. The order tuple of a row is unique (the key is in
it), so the keyset condition ``order > last`` is exact.

Rules (STYLE habit 7):

- ``last`` is the order tuple of the last row Fluent Bit *took* (its cleanup
  callback ran); ``None`` means "before the first row". It only moves forward:
  the reader hands batches over in order and the position is replaced by the end
  of the acknowledged batch, never compared in Python (text keys follow the
  database collation, which Python does not know).
- ``boundary`` holds the keys of the last rows at ``last``'s tracking value. A
  database that stores a finer time than Python's microseconds (Oracle
  TIMESTAMP(9), SQL Server datetime2(7)) returns such a row again after a
  restart; it is dropped by key (dlt's ``transform.py`` boundary dedup).
- The reader never reads past a :class:`Signpost`, the largest order tuple known
  to be *settled*: every transaction that could still commit a row below it has
  finished (PostgreSQL: the snapshot horizon; elsewhere: ``settle`` seconds).
  So rows that commit late with a lower key are read, not skipped.

Values are stored as JSON with a type tag each, so a restart binds exactly the
Python type the driver returned (datetime stays datetime, UUID stays UUID).
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import decimal
import json
import uuid
from collections.abc import Sequence
from typing import Any

from flbsql.text import show_tuple

__all__ = [
    "BOUNDARY_MAX",
    "Position",
    "Signpost",
    "decode_value",
    "describe",
    "encode_value",
]

BOUNDARY_MAX = 1000  # keys kept for boundary dedup; more rows at one value are re-read


def encode_value(value: Any) -> list[Any]:
    """A driver value as ``[tag, json-safe text]`` (lossless for position types)."""
    if value is None:
        return ["null", None]
    if isinstance(value, bool):
        return ["bool", value]
    if isinstance(value, int):
        return ["int", str(value)]
    if isinstance(value, float):
        return ["float", repr(value)]
    if isinstance(value, decimal.Decimal):
        return ["decimal", str(value)]
    if isinstance(value, str):
        return ["str", value]
    if isinstance(value, dt.datetime):
        return ["datetime", value.isoformat()]
    if isinstance(value, dt.date):
        return ["date", value.isoformat()]
    if isinstance(value, dt.time):
        return ["time", value.isoformat()]
    if isinstance(value, uuid.UUID):
        return ["uuid", str(value)]
    if isinstance(value, (bytes, bytearray, memoryview)):
        return ["bytes", base64.b64encode(bytes(value)).decode()]
    raise TypeError(f"cannot keep a {type(value).__name__} in a position; use another key")


_DECODERS: dict[str, Any] = {
    "null": lambda v: None,
    "bool": bool,
    "int": int,
    "float": float,
    "decimal": decimal.Decimal,
    "str": str,
    "datetime": dt.datetime.fromisoformat,
    "date": dt.date.fromisoformat,
    "time": dt.time.fromisoformat,
    "uuid": uuid.UUID,
    "bytes": base64.b64decode,
}


def decode_value(item: Sequence[Any]) -> Any:
    """Inverse of :func:`encode_value`."""
    tag, text = item
    return _DECODERS[tag](text)


def describe(last: Sequence[Any] | None) -> str:
    """An order tuple for a log line (``the beginning`` for None), cut at 120 characters."""
    return show_tuple(last)


@dataclasses.dataclass(frozen=True)
class Position:
    """Where reading resumes.

    Attributes:
        columns: order columns, tracking column first (if any), then the key.
        tracked: True when ``columns[0]`` is a tracking column.
        last: order tuple of the last acknowledged row, or None (beginning).
        boundary: keys (the key part of the order tuple) of acknowledged rows
            whose tracking value equals ``last[0]``; empty without tracking.
        rows: rows acknowledged so far under this name (for progress lines).
    """

    columns: tuple[str, ...]
    tracked: bool = False
    last: tuple[Any, ...] | None = None
    boundary: frozenset[tuple[Any, ...]] = frozenset()
    rows: int = 0

    @property
    def key_columns(self) -> tuple[str, ...]:
        """The key part of the order columns."""
        return self.columns[1:] if self.tracked else self.columns

    def advance(
        self, last: tuple[Any, ...], batch_orders: Sequence[tuple[Any, ...]], rows: int
    ) -> Position:
        """The position after a batch whose rows' order tuples end with ``batch_orders``.

        ``batch_orders`` are the order tuples of the batch's last rows (any
        number, in read order); the ones sharing ``last``'s tracking value form
        the new boundary, joined with the old one when the value did not change.
        """
        boundary: frozenset[tuple[Any, ...]] = frozenset()
        if self.tracked:
            head = last[0]
            same = [o[1:] for o in batch_orders if o[0] == head]
            if self.last is not None and self.last[0] == head:
                same.extend(self.boundary)
            boundary = frozenset(same[-BOUNDARY_MAX:])
        return dataclasses.replace(self, last=tuple(last), boundary=boundary, rows=self.rows + rows)

    def is_boundary_row(self, order: tuple[Any, ...]) -> bool:
        """True for a row already delivered that came back at the boundary."""
        return (
            bool(self.boundary)
            and self.last is not None
            and (order[0] == self.last[0] and order[1:] in self.boundary)
        )

    # -- storage --------------------------------------------------------------------------

    def to_json(self) -> str:
        """Serialise (typed values)."""
        return json.dumps(
            {
                "v": 1,
                "columns": list(self.columns),
                "tracked": self.tracked,
                "last": None if self.last is None else [encode_value(v) for v in self.last],
                "boundary": [[encode_value(v) for v in k] for k in sorted(self.boundary, key=repr)],
                "rows": self.rows,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> Position:
        """Deserialise what :meth:`to_json` wrote."""
        d = json.loads(text)
        last = None if d["last"] is None else tuple(decode_value(v) for v in d["last"])
        boundary = frozenset(tuple(decode_value(v) for v in k) for k in d["boundary"])
        return cls(tuple(d["columns"]), bool(d["tracked"]), last, boundary, int(d["rows"]))


@dataclasses.dataclass(frozen=True)
class Signpost:
    """The upper bound of a read: the largest order tuple seen by a sample.

    Attributes:
        last: the largest order tuple at sample time (None: the source was empty).
        taken: ``time.monotonic()`` of the sample.
        horizon: the transactions in progress when the sample was taken, as the
            dialect names them (PostgreSQL: virtual transaction ids); the sample is
            settled once all of them have ended. None: the dialect cannot tell.
        wall: ``time.time()`` of the sample (for ``cursor_age_seconds``).
    """

    last: tuple[Any, ...] | None
    taken: float
    horizon: list[Any] | None = None
    wall: float = 0.0
