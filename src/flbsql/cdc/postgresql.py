"""Everything CDC asks of PostgreSQL: catalog, publication, slot, changes, snapshot.

The slot is driven by SQL functions (docs/fluent-bit-abi.md §15), because psycopg 3 has no
replication-protocol API. The connections (``main`` and ``decoding``), their
credentials and the watchdog over every round trip are in :mod:`.connection`.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql
from psycopg.types.string import TextLoader

from flbsql.cdc import parse_lsn
from flbsql.cdc.connection import DIALECT, PgConnections
from flbsql.cdc.types import TypeInfo
from flbsql.errors import ConfigError, TerminalError, TransientError

if TYPE_CHECKING:
    from collections.abc import Generator, Sequence

__all__ = ["DEFAULT_SCHEMA", "PgCdc", "SlotHealth", "TableInfo", "split_table"]

DEFAULT_SCHEMA = "public"


def split_table(name: str) -> tuple[str, str]:
    """``schema.table`` -> (schema, table), parsed as the polling input parses it.

    The dialect's :meth:`~flbsql.dialects.base.Dialect.split_name` (double quotes
    keep dots and quotes in a part); without a schema, ``public``.

    Raises:
        ConfigError: not a valid table name (option ``tables``).
    """
    try:
        schema, table = DIALECT.split_name(name.strip())
    except ValueError as exc:
        raise ConfigError("tables", str(exc)) from None
    return schema or DEFAULT_SCHEMA, table


@dataclasses.dataclass(frozen=True)
class TableInfo:
    """A captured table: columns in pgoutput's order, type OIDs, read key."""

    schema: str
    name: str
    oid: int
    columns: tuple[str, ...]
    type_oids: tuple[int, ...]
    key: tuple[str, ...]  # empty: read in ctid order
    key_types: tuple[str, ...]
    replident: str

    @property
    def qualname(self) -> str:
        """``schema.table`` as it appears in records."""
        return f"{self.schema}.{self.name}"


@dataclasses.dataclass(frozen=True)
class SlotHealth:
    """One row of ``pg_replication_slots`` plus lags in bytes."""

    plugin: str
    database: str
    wal_status: str | None
    safe_wal_size: int | None
    retained_bytes: int
    pending_bytes: int
    confirmed_lsn: int


_TYPES_SQL = """
WITH RECURSIVE t(oid) AS (
    SELECT unnest(%s::oid[])
    UNION
    SELECT x FROM pg_type p JOIN t ON p.oid = t.oid,
         LATERAL unnest(ARRAY[p.typelem, p.typbasetype]) AS x WHERE x <> 0)
SELECT p.oid::int8, p.typtype::text, p.typelem::int8, p.typbasetype::int8, p.typdelim::text,
       p.typcategory::text
FROM pg_type p JOIN t ON p.oid = t.oid"""

_TABLE_SQL = """
SELECT c.oid::int8, c.relreplident::text,
       array_agg(a.attname::text ORDER BY a.attnum), array_agg(a.atttypid::int8 ORDER BY a.attnum)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
     AND a.attgenerated = ''
WHERE n.nspname = %s AND c.relname = %s AND c.relkind IN ('r', 'p')
GROUP BY c.oid, c.relreplident"""

_KEY_SQL = """
SELECT a.attname::text, format_type(a.atttypid, a.atttypmod)
FROM pg_index i
JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n) ON true
JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
WHERE i.indrelid = %s AND (i.indisprimary OR i.indisreplident)
ORDER BY i.indisprimary DESC, k.n"""

_HEALTH_SQL = """
SELECT plugin::text, database::text, wal_status, safe_wal_size,
       coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn), 0)::int8,
       coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn), 0)::int8,
       coalesce(confirmed_flush_lsn, '0/0')::text
FROM pg_replication_slots WHERE slot_name = %s"""


class PgCdc(PgConnections):
    """The statements CDC runs, on the connections of :class:`PgConnections`."""

    # -- prerequisites -------------------------------------------------------------------

    def check_server(self) -> None:
        """wal_level and the REPLICATION attribute, with errors that say what to do."""
        level = self.execute(self.dec, "SHOW wal_level").fetchone()[0]
        if level != "logical":
            raise TerminalError(
                f"wal_level is '{level}', CDC needs 'logical': set wal_level = logical "
                "(and max_replication_slots, max_wal_senders) in postgresql.conf and "
                "restart the server"
            )
        row = self.execute(
            self.dec,
            "SELECT rolreplication OR rolsuper, current_user FROM pg_roles "
            "WHERE rolname = current_user",
        ).fetchone()
        if not row[0]:
            raise TerminalError(
                f"role '{row[1]}' lacks the REPLICATION attribute needed for a logical "
                f"slot: ALTER ROLE {row[1]} REPLICATION (or set replication_url to a role "
                "that has it)"
            )

    def table_info(self, schema: str, name: str) -> TableInfo:
        """Columns and read key of a table, or a TerminalError naming it."""
        row = self.execute(self.main, _TABLE_SQL, (schema, name)).fetchone()
        if row is None:
            raise TerminalError(f"table {schema}.{name} does not exist (option 'tables')")
        keys = self.execute(self.main, _KEY_SQL, (row[0],)).fetchall()
        key_cols: list[str] = []
        key_types: list[str] = []
        for col, typ in keys:  # primary key first; stop at the first index's columns
            if col in key_cols:
                break
            key_cols.append(col)
            key_types.append(typ)
        return TableInfo(
            schema,
            name,
            int(row[0]),
            tuple(row[2]),
            tuple(int(t) for t in row[3]),
            tuple(key_cols),
            tuple(key_types),
            row[1],
        )

    def type_catalog(self, oids: Sequence[int]) -> dict[int, TypeInfo]:
        """pg_type rows for ``oids`` and the element/base types they refer to."""
        rows = self.execute(self.main, _TYPES_SQL, (list(oids),)).fetchall()
        return {
            int(r[0]): TypeInfo(int(r[0]), r[1], int(r[2]), int(r[3]), r[4], r[5]) for r in rows
        }

    def ensure_publication(self, name: str, tables: Sequence[TableInfo]) -> bool:
        """Create the publication or add missing tables; True when something changed."""
        ident = sql.Identifier(name)
        exists = self.execute(
            self.main, "SELECT puballtables FROM pg_publication WHERE pubname = %s", (name,)
        ).fetchone()
        published = {
            (r[0], r[1])
            for r in self.execute(
                self.main,
                "SELECT schemaname::text, tablename::text FROM pg_publication_tables "
                "WHERE pubname = %s",
                (name,),
            ).fetchall()
        }
        missing = [t for t in tables if (t.schema, t.name) not in published]
        if exists and not missing:
            return False
        names = sql.SQL(", ").join(sql.Identifier(t.schema, t.name) for t in missing or tables)
        stmt = (
            sql.SQL("ALTER PUBLICATION {} ADD TABLE {}")
            if exists
            else sql.SQL("CREATE PUBLICATION {} FOR TABLE {}")
        ).format(ident, names)
        try:
            self.execute(self.main, stmt)
        except psycopg.errors.InsufficientPrivilege as exc:
            raise TerminalError(
                f"cannot {'alter' if exists else 'create'} publication '{name}' ({exc}); "
                "the table owner (or a superuser) must run: "
                f"{stmt.as_string(self.main)}",
                exc.sqlstate,
            ) from exc
        self.log.info(
            "publication %s %s for %s",
            name,
            "altered" if exists else "created",
            ", ".join(t.qualname for t in missing or tables),
        )
        return True

    # -- slot ---------------------------------------------------------------------------

    def slot_health(self, slot: str) -> SlotHealth | None:
        """The slot's row, or None when it does not exist."""
        row = self.execute(self.dec, _HEALTH_SQL, (slot,)).fetchone()
        if row is None:
            return None
        return SlotHealth(
            row[0] or "", row[1] or "", row[2], row[3], row[4], row[5], parse_lsn(row[6])
        )

    def create_slot(self, slot: str) -> int:
        """Create a pgoutput slot; returns its consistent point."""
        row = self.execute(
            self.dec,
            "SELECT lsn::text FROM pg_create_logical_replication_slot(%s, 'pgoutput')",
            (slot,),
        ).fetchone()
        return parse_lsn(row[0])

    def current_lsn(self) -> int:
        """pg_current_wal_flush_lsn() as an integer: the bound for the next peek.

        Not pg_current_wal_lsn() (the *write* position): the SQL decoding functions
        stop at the flush position of the moment they start, so a commit between the
        two (normal with synchronous_commit off) would be skipped by a consumer that
        treats the write position as "read up to here".
        """
        return parse_lsn(
            self.execute(self.dec, "SELECT pg_current_wal_flush_lsn()::text").fetchone()[0]
        )

    def read_changes(
        self, publication: str, upto_lsn: int, nchanges: int, itersize: int
    ) -> Generator[bytes, None, None]:
        """Pgoutput messages up to ``upto_lsn``, consumed from the reader slot.

        Rows are streamed through a server-side cursor, so memory stays bounded. The
        watchdog watches the round trips, not the time the caller takes between
        them (it may wait for room in the queue).
        """
        if self.reader is None:
            raise TransientError("no reader slot (reconnecting)")
        conn = self.dec
        with (
            self.watched(conn) as watched,
            conn.transaction(),
            conn.cursor(name="flbsql_cdc_read", binary=True) as cur,
        ):
            cur.execute(
                "SELECT data FROM pg_logical_slot_get_binary_changes(%s, %s::text::pg_lsn, "
                "%s, 'proto_version', '1', 'publication_names', %s, 'messages', 'true')",
                (
                    self.reader,
                    f"{upto_lsn >> 32:X}/{upto_lsn & 0xFFFFFFFF:X}",
                    nchanges,
                    publication,
                ),
            )
            while rows := cur.fetchmany(itersize):
                watched.pause()
                for (data,) in rows:
                    yield data
                watched.resume()

    def advance(self, slot: str, lsn: int) -> None:
        """Move the slot's confirmed_flush_lsn to ``lsn`` (never backwards)."""
        self.execute(
            self.dec,
            "SELECT pg_replication_slot_advance(%s, %s::text::pg_lsn)",
            (slot, f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"),
        )

    def heartbeat(self, payload: str) -> None:
        """A non-transactional logical message, seen by the next peek (lag probe)."""
        self.execute(
            self.main, "SELECT pg_logical_emit_message(false, 'flbsql_heartbeat', %s)", (payload,)
        )

    # -- snapshot -----------------------------------------------------------------------

    def snapshot_chunk(
        self, table: TableInfo, after: Sequence[str] | None, limit: int
    ) -> tuple[list[tuple[Any, ...]], int]:
        """Up to ``limit`` rows after key ``after``, and the WAL position when read.

        Every value comes back as the text of the type's output function, exactly what
        pgoutput sends (``col::text`` differs for char(n) and inet, so no cast: the
        cursor loads every column type as text). Rows carry the key columns (or the
        ctid) again at the end, for the position.
        """
        cols = [sql.Identifier(c) for c in table.columns]
        key_sql: sql.Composable
        casts: sql.Composable
        order: sql.Composable
        if table.key:
            keys = [sql.Identifier(k) for k in table.key]
            key_sql = sql.SQL("({})").format(sql.SQL(", ").join(keys))
            casts = sql.SQL(", ").join(
                sql.SQL("%s::{}").format(sql.SQL(t)) for t in table.key_types
            )
            extra: list[sql.Composable] = list(keys)
            order = sql.SQL(", ").join(keys)
        else:
            key_sql = order = sql.SQL("ctid")
            casts = sql.SQL("%s::tid")
            extra = [sql.SQL("ctid")]
        where = sql.SQL("WHERE {} > ({})").format(key_sql, casts) if after else sql.SQL("")
        stmt = sql.SQL("SELECT {} FROM {} {} ORDER BY {} LIMIT {}").format(
            sql.SQL(", ").join([*cols, *extra]),
            sql.Identifier(table.schema, table.name),
            where,
            order,
            sql.Literal(limit),
        )
        conn = self.main
        oids = self._text_oids.get(table.oid)
        if oids is None:
            oids = self._text_oids[table.oid] = [*self.type_catalog(table.type_oids), 27]
        with self.watched(conn), conn.transaction():
            cur = conn.cursor()
            for oid in oids:
                cur.adapters.register_loader(oid, TextLoader)
            rows = cur.execute(stmt, list(after) if after else None).fetchall()
            lsn = parse_lsn(conn.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()[0])
        return rows, lsn

    def insert_lsn(self) -> int:
        """pg_current_wal_insert_lsn(): every commit the snapshot saw lies before it."""
        return parse_lsn(
            self.execute(self.main, "SELECT pg_current_wal_insert_lsn()::text").fetchone()[0]
        )
