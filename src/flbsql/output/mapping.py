"""Record -> row: the column mapping, the JSON document, the time column.

Default shape: ``tag``, ``time`` and the whole record as JSON. With ``columns``
(``column=key.path[:type]``, comma-separated) chosen keys, nested ones too, go to
typed columns and the keys left over go to the JSON column (NULL when nothing is
left). Types: text, string (or ``string(64)``), int, float, bool, timestamp, json,
bytes, decimal; the SQL type of each comes from the dialect's capabilities.

Conversions happen here, before the database sees a row, so a value that cannot
fit its column (``"abc"`` for an int, a NUL where the database cannot store one, a
record that is not valid JSON) becomes a :class:`~flbsql.errors.RecordError`
naming the column, and only that record is dead-lettered.

JSON: ``orjson`` (about 8x faster than ``json.dumps`` on log records). bytes are
written as base64 text, an EventTime inside a record as float seconds, other
msgpack ext types as ``{"ext": code, "data": base64}``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import orjson

from flbsql.errors import ConfigError, RecordError
from flbsql.events.decode import Event
from flbsql.output.convert import TimeConverter, converter, json_default, time_kind
from flbsql.text import show
from flbsql.timestamps import local_time_rule, parse_zone

if TYPE_CHECKING:
    from flbsql.dialects.base import Dialect
    from flbsql.settings import OutputConfig

__all__ = ["ColumnSpec", "Mapper", "parse_columns"]

TYPES = ("text", "string", "int", "float", "bool", "timestamp", "json", "bytes", "decimal")
_SPEC = re.compile(r"^\s*([^=]+?)\s*=\s*([^:]+?)\s*(?::\s*([a-z]+)(?:\((\d+)\))?)?\s*$")


@dataclasses.dataclass(frozen=True)
class ColumnSpec:
    """One ``column=key.path[:type]`` entry of the ``columns`` option."""

    name: str
    path: tuple[str, ...]
    type: str = "text"
    length: int | None = None

    def sql_type(self, types: dict[str, str]) -> str:
        """The dialect's type, with a ``string(n)`` length applied."""
        base = types[self.type]
        if self.length and self.type == "string":
            return re.sub(r"\(\d+", f"({self.length}", base, count=1)
        return base


def parse_columns(items: Sequence[str]) -> list[ColumnSpec]:
    """Parse the ``columns`` option; ConfigError naming the bad entry."""
    specs: list[ColumnSpec] = []
    seen: set[str] = set()
    for item in items:
        m = _SPEC.match(item)
        if not m:
            raise ConfigError("columns", f"{item!r}: expected column=key.path[:type]")
        name, key, ctype, length = m.groups()
        ctype = ctype or "text"
        if ctype not in TYPES:
            raise ConfigError(
                "columns", f"{item!r}: unknown type {ctype!r}; one of " + ", ".join(TYPES)
            )
        path = tuple(key.split("."))
        if not all(path):
            raise ConfigError("columns", f"{item!r}: empty part in key path {key!r}")
        if name in seen:
            raise ConfigError("columns", f"column {name!r} is mapped twice")
        seen.add(name)
        specs.append(ColumnSpec(name, path, ctype, int(length) if length else None))
    return specs


def _lookup(body: dict[Any, Any], path: tuple[str, ...]) -> Any:
    value: Any = body
    for part in path:
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _remove(body: dict[Any, Any], path: tuple[str, ...]) -> None:
    if len(path) == 1:
        body.pop(path[0], None)
        return
    child = body.get(path[0])
    if isinstance(child, dict):
        child = dict(child)  # never change the decoded record in place
        _remove(child, path[1:])
        if child:
            body[path[0]] = child
        else:
            del body[path[0]]


def _record_error(column: str, exc: Exception) -> RecordError:
    """The dead-letter text for a value that cannot be converted for ``column``."""
    detail = (
        str(exc) if isinstance(exc, (ValueError, RecordError)) else (f"{type(exc).__name__}: {exc}")
    )
    return RecordError(f"column {column!r}: {detail}")


Converter = Callable[[Any], Any]


def _column_option(value: str | None) -> str | None:
    return None if not value or value.lower() == "none" else value


class Mapper:
    """Builds the rows of one table from events; one per writer (not shared)."""

    def __init__(self, cfg: OutputConfig, dialect: Dialect) -> None:
        """Validate the shape options; ConfigError names the option at fault."""
        self.dialect = dialect
        self.zone = parse_zone(cfg.time_zone)
        self.local_rule = local_time_rule(cfg.time_zone_ambiguous, dialect.caps.local_time_rule)
        self.specs = parse_columns(cfg.columns)
        self.tag_column = _column_option(cfg.tag_column)
        self.time_column = _column_option(cfg.time_column)
        self.json_column = _column_option(cfg.json_column)
        self.generic: dict[str, str] = {}
        for option, name, ctype in (
            ("tag_column", self.tag_column, "text"),
            ("time_column", self.time_column, "timestamp"),
            *(("columns", s.name, s.type) for s in self.specs),
            ("json_column", self.json_column, "json"),
        ):
            if name is None:
                continue
            try:
                dialect.quote(name)
            except ValueError as exc:
                raise ConfigError(option, str(exc)) from None
            if name in self.generic:
                raise ConfigError(option, f"column {name!r} is used twice")
            self.generic[name] = ctype
        if not self.generic:
            raise ConfigError("columns", "no column left to write (tag, time and json are none)")
        self.columns = list(self.generic)
        self._lengths = {s.name: s.length for s in self.specs}
        self._convs: list[Converter] = []
        self._tconv = TimeConverter("aware", self.zone)
        self._fast = False
        self._json_direct: Any = None

    def coldefs(self, key: Sequence[str] = ()) -> list[tuple[str, str]]:
        """(name, SQL type) for CREATE TABLE / ADD COLUMN.

        Text columns are the dialect's unbounded text, never narrower than the data; a
        text column in a key index (``unique_key``) is the dialect's ``key_text``: still
        unbounded where the database indexes unbounded text (PostgreSQL, SQLite), else
        the widest that its key index takes (documented in docs/type-mapping.md).
        """
        types = self.dialect.caps.types
        out = []
        for name, generic in self.generic.items():
            keyed = name in key and generic in ("text", "string") and not self._lengths.get(name)
            ctype = "key_text" if keyed else generic
            spec = ColumnSpec(name, (name,), ctype, self._lengths.get(name))
            out.append((name, spec.sql_type(types)))
        return out

    def bind(self, db_types: dict[str, str]) -> None:
        """Choose converters from the table's real column types (after introspection)."""
        caps = self.dialect.caps
        convs: list[Converter] = []
        for name in self.columns:
            db_type = db_types.get(name, "")
            kind = time_kind(db_type)
            if kind == "aware" and caps.epoch_micros:
                kind = "epoch"
            elif kind == "naive" and caps.naive_time_text:
                kind = "naive_text"
            tconv = TimeConverter(kind, self.zone, self.local_rule)
            json_bytes = caps.json_as_bytes and db_type in ("json", "jsonb")
            max_len = None
            m = re.search(r"char\w*\s*\((\d+)", db_type)
            if m and not caps.enforces_length:
                max_len = int(m.group(1))
            convs.append(
                converter(
                    self.generic[name],
                    nul_ok=caps.text_nul,
                    json_bytes=json_bytes,
                    tconv=tconv,
                    max_len=max_len,
                )
            )
            if name == self.time_column:
                self._tconv = tconv
        self._convs = convs
        self._fast = not self.specs and self.columns == [
            self.tag_column,
            self.time_column,
            self.json_column,
        ]
        # the JSON column's text straight from orjson (see _iter_fast)
        json_type = db_types.get(self.json_column or "", "")
        plain = caps.text_nul and not (caps.json_as_bytes and json_type in ("json", "jsonb"))
        self._json_direct = orjson.dumps if plain else None

    @property
    def utc(self) -> bool:
        """The output's ``time_zone`` is UTC."""
        return self.zone.utcoffset(None) == dt.timedelta(0)

    @property
    def default_shape(self) -> bool:
        """True for the default columns: tag, time and the whole record as JSON."""
        return self._fast

    def rows(
        self, tag: str, events: Iterable[Event]
    ) -> tuple[list[tuple[Any, ...]], list[int], list[tuple[int, Exception]]]:
        """Rows, the event position of each row, and (position, error) of unmappable events."""
        where: list[int] = []
        bad: list[tuple[int, Exception]] = []
        rows = list(self.iter_rows(tag, events, [], where, bad))
        return rows, where, bad

    def iter_rows(
        self,
        tag: str,
        events: Iterable[Event],
        seen: list[Event] | None,
        where: list[int],
        bad: list[tuple[int, Exception]],
    ) -> Iterator[tuple[Any, ...]]:
        """Rows, lazily.

        Each event is appended to ``seen`` (unless None), each row's event position
        to ``where``, each unmappable event to ``bad`` as (position, error).
        """
        if self._fast:
            yield from self._iter_fast(tag, events, seen, where, bad)
            return
        paths = [s.path for s in self.specs]
        plan = self._plan()
        tconv = self._tconv
        for pos, event in enumerate(events):
            if seen is not None:
                seen.append(event)
            sec, nsec, body, _ = event
            values: list[Any] = []
            name = ""
            try:
                for name, kind, conv, path in plan:  # noqa: B007 - name is in the error
                    if kind == "tag":
                        values.append(tag)
                    elif kind == "time":
                        values.append(tconv(sec, nsec))
                    elif kind == "json":
                        rest = body
                        if paths:
                            rest = dict(body)
                            for p in paths:
                                _remove(rest, p)
                        values.append(conv(rest) if rest else None)
                    else:
                        value = _lookup(body, path)
                        values.append(None if value is None else conv(value))
            except Exception as exc:  # any conversion failure is this record's own problem
                bad.append((pos, _record_error(name, exc)))
                continue
            where.append(pos)
            yield tuple(values)

    def _iter_fast(
        self,
        tag: str,
        events: Iterable[Event],
        seen: list[Event] | None,
        where: list[int],
        bad: list[tuple[int, Exception]],
    ) -> Iterator[tuple[Any, ...]]:
        """The default (tag, time, json) shape, without per-column dispatch.

        The record goes to orjson directly; anything unusual (a NUL the database cannot
        store, a key that is not a string, a value orjson cannot encode) takes the
        column's converter, which says why.
        """
        tconv = self._tconv
        jconv = self._convs[2]
        direct = self._json_direct
        add_where = where.append
        for pos, event in enumerate(events):
            if seen is not None:
                seen.append(event)
            name: str = self.time_column or "time"
            try:
                when = tconv(event[0], event[1])
                name = self.json_column or "json"
                try:
                    doc = direct(event[2], default=json_default).decode() if direct else None
                except TypeError:
                    doc = None
                row = (tag, when, jconv(event[2]) if doc is None else doc)
            except Exception as exc:  # any conversion failure is this record's own problem
                bad.append((pos, _record_error(name, exc)))
                continue
            add_where(pos)
            yield row

    def key_text(self, tag: str, body: Any, key: Sequence[str]) -> str:
        """``id='a-1', region='eu'``: the ``unique_key`` values of a record, for messages."""
        if not key or not isinstance(body, dict):
            return ""
        paths = {s.name: s.path for s in self.specs}
        parts = []
        for column in key:
            if column == self.tag_column:
                value: Any = tag
            elif column in paths:
                value = _lookup(body, paths[column])
            else:
                continue
            parts.append(f"{column}={show(value)}")
        return ", ".join(parts)

    def _plan(self) -> list[tuple[str, str, Converter, tuple[str, ...]]]:
        paths = {s.name: s.path for s in self.specs}
        kinds = {self.tag_column: "tag", self.time_column: "time", self.json_column: "json"}
        return [
            (name, kinds.get(name, "spec"), conv, paths.get(name, ()))
            for name, conv in zip(self.columns, self._convs, strict=True)
        ]
