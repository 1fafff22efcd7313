"""The table of each record: ``table`` as a template, plus prefix, schema and a name map.

``table`` may hold references, as Fluent Bit's own outputs write them:

- ``$TAG``: the whole tag; ``$TAG[n]``: its n-th dot-separated part, from 0;
- ``$field``: the value of a top-level record field (``$table``: the source table of
  a change record, which is what apply mode uses by default).

The text it resolves to is a name as ``table`` takes it (``schema.table``, double
quotes for a part holding a dot). A ``table_map`` entry ``source=target`` then
replaces a resolved name as a whole; any other name gets ``table_schema``
(``none`` drops its schema) and ``table_prefix`` (before the table part). A
name that cannot be resolved (a missing field, a tag with fewer parts) or that the
dialect cannot quote is a :class:`~flbsql.errors.RecordError` naming it: that
record is dead-lettered and the rest of the chunk is written.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from flbsql.errors import ConfigError, RecordError

if TYPE_CHECKING:
    from flbsql.dialects.base import Dialect

__all__ = ["TableName", "TableRouter"]

TableName = tuple[str | None, str]  # (schema or None, table)
_REF = re.compile(r"\$(?:(TAG)(?:\[(\d+)\])?|([A-Za-z_][A-Za-z0-9_]*))")
_CACHE_LIMIT = 10_000


def _parse_map(items: Sequence[str], dialect: Dialect) -> dict[str, TableName]:
    out: dict[str, TableName] = {}
    for item in items:
        source, sep, target = item.partition("=")
        if not sep or not source.strip() or not target.strip():
            raise ConfigError("table_map", f"{item!r}: expected source=target")
        try:
            out[source.strip()] = _checked(dialect, dialect.split_name(target.strip()))
        except ValueError as exc:
            raise ConfigError("table_map", f"{item!r}: {exc}") from None
    return out


def _checked(dialect: Dialect, name: TableName) -> TableName:
    """The name if the dialect can quote each part (ValueError otherwise)."""
    schema, table = name
    if schema is not None:
        dialect.quote(schema)
    dialect.quote(table)
    return name


class TableRouter:
    """Resolves the target table of each record (cached per distinct resolved text)."""

    def __init__(
        self,
        template: str,
        dialect: Dialect,
        prefix: str | None = None,
        schema: str | None = None,
        mapping: Sequence[str] = (),
    ) -> None:
        """Parse the template and options; ConfigError names the option at fault."""
        self.dialect = dialect
        self.template = template
        self.parts: list[tuple[str, Any]] = []
        at = 0
        for m in _REF.finditer(template):
            if m.start() > at:
                self.parts.append(("text", template[at : m.start()]))
            if m.group(1):
                index = m.group(2)
                self.parts.append(("tag", None if index is None else int(index)))
            else:
                self.parts.append(("field", m.group(3)))
            at = m.end()
        if at < len(template):
            self.parts.append(("text", template[at:]))
        self.dynamic = any(kind != "text" for kind, _ in self.parts)
        self.prefix = prefix or ""
        self.schema = schema
        self.mapping = _parse_map(mapping, dialect)
        self._cache: dict[str, TableName | RecordError] = {}
        if not self.dynamic:
            try:
                self._finish(template)
            except RecordError as exc:
                raise ConfigError("table", str(exc)) from None

    @staticmethod
    def is_template(text: str) -> bool:
        """True when ``text`` names a table per record (holds a reference)."""
        return _REF.search(text) is not None

    def fields(self) -> list[str]:
        """The record fields the template reads."""
        return [value for kind, value in self.parts if kind == "field"]

    def resolve(self, tag: str, body: Any) -> TableName:
        """(schema, table) of one record; RecordError when it has none we can write."""
        if not self.dynamic:
            return self._lookup(self.template)
        out = []
        for kind, value in self.parts:
            if kind == "text":
                out.append(value)
            elif kind == "tag":
                if value is None:
                    out.append(tag)
                    continue
                pieces = tag.split(".")
                if value >= len(pieces):
                    raise RecordError(f"table {self.template!r}: tag {tag!r} has no part {value}")
                out.append(pieces[value])
            else:
                field = body.get(value) if isinstance(body, dict) else None
                if not isinstance(field, str) or not field:
                    raise RecordError(
                        f"table {self.template!r}: the record has no text field {value!r}"
                    )
                out.append(field)
        return self._lookup("".join(out))

    def _lookup(self, text: str) -> TableName:
        found = self._cache.get(text)
        if found is None:
            try:
                found = self._finish(text)
            except RecordError as exc:
                found = exc
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[text] = found
        if isinstance(found, RecordError):
            raise RecordError(str(found))
        return found

    def _finish(self, text: str) -> TableName:
        """Map, then schema and prefix; RecordError naming the text when it is refused."""
        mapped = self.mapping.get(text)
        if mapped is not None:
            return mapped
        try:
            schema, table = self.dialect.split_name(text)
            if self.schema is not None:
                schema = None if self.schema.lower() == "none" else self.schema
            return _checked(self.dialect, (schema, self.prefix + table))
        except ValueError as exc:
            raise RecordError(
                f"table {text!r} (from {self.template!r}) is refused: {exc}"
            ) from None

    def table_sql(self, name: TableName) -> str:
        """The quoted (schema-qualified) name."""
        schema, table = name
        q = self.dialect.quote
        return q(table) if schema is None else f"{q(schema)}.{q(table)}"

    @staticmethod
    def text(name: TableName) -> str:
        """``schema.table`` for messages and the ``table`` option of a per-table writer."""
        schema, table = name
        quote = any(c in table for c in '."') or (
            schema is not None and any(c in schema for c in '."')
        )
        if quote:
            parts = [p for p in (schema, table) if p is not None]
            return ".".join('"' + p.replace('"', '""') + '"' for p in parts)
        return table if schema is None else f"{schema}.{table}"
