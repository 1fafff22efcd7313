"""The tables of a many-table poll input: ``tables`` as written, wildcards listed.

``tables a, sales.b, logs.*`` reads ``a``, ``sales.b`` and every table of schema
``logs`` (``*`` alone: every table of the connection's current schema). A wildcard is
listed when the input starts and again every minute
(:data:`~flbsql.input.fetch.RELIST_EVERY`): a table created later is read from then
on (from its beginning, or its end with ``start end``), a table dropped is no longer
read (its stored position stays in the file). Views are not listed (name them), and neither are the
partitions of a PostgreSQL partitioned table (the parent is read, which holds their
rows). A listed name is written so that the dialect's ``split_name`` reads it back
(a part with a dot or a double quote goes in double quotes).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flbsql.errors import ConfigError

if TYPE_CHECKING:
    from flbsql.dialects.base import Dialect

__all__ = ["expand_tables", "is_wildcard", "join_name"]


def is_wildcard(name: str) -> bool:
    """``*`` or ``schema.*``."""
    return name.strip() == "*" or name.strip().endswith(".*")


def join_name(schema: str | None, table: str) -> str:
    """(schema, table) as a ``tables`` entry that splits back into the same parts."""

    def part(p: str) -> str:
        return '"' + p.replace('"', '""') + '"' if ("." in p or p.startswith('"')) else p

    return part(table) if schema is None else f"{part(schema)}.{part(table)}"


def _listing(d: Dialect, schema: str | None) -> tuple[str, list[Any]]:
    """The statement listing the base tables of ``schema`` (None: the current one)."""
    p0 = d.placeholder(0)
    if d.name == "postgresql":
        return (
            "SELECT c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
            "ON n.oid = c.relnamespace WHERE n.nspname = COALESCE(" + p0 + ", current_schema()) "
            "AND c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY c.relname",
            [schema],
        )
    if d.name == "sqlite":
        master = "sqlite_master" if schema is None else f"{d.quote(schema)}.sqlite_master"
        return (
            f"SELECT name FROM {master} WHERE type = 'table' "
            "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
            [],
        )
    if d.name == "oracle":
        return (
            "SELECT table_name FROM all_tables WHERE owner = "
            f"NVL({p0}, SYS_CONTEXT('USERENV', 'CURRENT_SCHEMA')) ORDER BY table_name",
            [schema],
        )
    return (
        "SELECT table_name FROM information_schema.tables WHERE table_schema = "
        f"COALESCE({p0}, {d.caps.current_schema}) AND table_type = 'BASE TABLE' "
        "ORDER BY table_name",
        [schema],
    )


def expand_tables(d: Dialect, conn: Any, names: tuple[str, ...]) -> list[str]:
    """``names`` with each wildcard replaced by the tables it lists, without repeats.

    Raises:
        ConfigError: a wildcard that lists no table (option ``tables``).
    """
    out: list[str] = []
    for name in names:
        if not is_wildcard(name):
            found = [name.strip()]
        else:
            schema = None if name.strip() == "*" else _schema_of(d, name)
            sql, params = _listing(d, schema)
            cur = conn.cursor()
            try:
                cur.execute(sql, params)
                found = [join_name(schema, str(r[0])) for r in cur.fetchall()]
            finally:
                cur.close()
            if not found:
                raise ConfigError(
                    "tables",
                    f"{name.strip()} lists no table (schema "
                    f"{schema or 'of the connection'} is empty or not visible to this user)",
                )
        out += [t for t in found if t not in out]
    return out


def _schema_of(d: Dialect, name: str) -> str:
    """The schema of ``schema.*`` as the dialect splits names (quotes allowed)."""
    schema, _ = d.split_name(name.strip()[:-1] + "x")
    assert schema is not None
    return schema
