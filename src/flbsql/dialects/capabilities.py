"""What a database can do, as data: the :class:`Capabilities` of one dialect.

The generic code (the statement builder in :mod:`flbsql.dialects.sql`, the writer,
the reader) reads these flags and never asks for a dialect by name. dlt's
``_raw_capabilities`` is the model: the dialects differ in data, not in code.
"""

from __future__ import annotations

import dataclasses

__all__ = ["Capabilities"]


@dataclasses.dataclass(frozen=True)
class Capabilities:
    """Limits and syntax of one database, used by the generic code.

    Attributes:
        paramstyle: DB-API paramstyle of the driver: qmark, format, numeric, named.
        quote_open / quote_close: identifier quotes.
        max_identifier_length: longest identifier the server accepts.
        max_rows_per_insert: rows in one multi-row VALUES (None: unbounded).
        max_params: bound parameters per statement.
        max_statement_bytes: statement size cap (MySQL's max_allowed_packet), or None.
        row_value_compare: ``(a, b) > (?, ?)`` works and uses the index.
        limit_style: ``limit`` (LIMIT n), ``fetch_first`` (FETCH FIRST n ROWS ONLY),
            ``top`` (SELECT TOP n).
        upsert_style: on_conflict (PG, SQLite), mysql (ON DUPLICATE KEY UPDATE),
            merge (Oracle, SQL Server).
        merge_terminator: text that must end a MERGE statement (SQL Server: ``;``).
        add_column: the ALTER TABLE keyword that adds a column (``ADD COLUMN`` / ``ADD``).
        types: generic type name -> this dialect's column type.
        timestamp_precision: fractional digits of the timestamp type (documentation).
        create_if_not_exists: ``CREATE TABLE IF NOT EXISTS`` is understood.
        text_nul: text columns can store U+0000 (PostgreSQL cannot).
        json_as_bytes: the bulk path takes JSON documents as UTF-8 bytes.
        current_schema: SQL for the session's default schema (introspection).
        column_type_field: the ``information_schema.columns`` field naming the type
            (MySQL's ``column_type`` keeps the length, e.g. ``varchar(255)``).
        epoch_micros: record times for zone-aware columns may be passed as
            :class:`flbsql.timestamps.EpochMicros` (the driver adapts them), which spares
            building a datetime per row on the hot path.
        naive_time_text: record times for zone-less columns may be bound as text
            ``YYYY-MM-DD HH:MM:SS[.ffffff]`` (what PyMySQL sends for a datetime anyway),
            which spares building a datetime per row on the hot path.
        enforces_length: the server rejects text longer than a VARCHAR(n) (SQLite does not,
            so the mapper checks it to behave like the others).
        streaming: ``Dialect.bulk_insert`` consumes an iterator of rows as it goes
            (PostgreSQL's COPY), so the writer may decode and map while the server works.
        locates_failed_row: a failed bulk write names the row it failed on
            (PostgreSQL's ``COPY t, line N``); ``Dialect.failed_row`` reads it.
        batch_errors: ``Dialect.bulk_insert_partial`` keeps the good rows of a batch and
            returns the rejected ones in one round trip (Oracle's array DML).
        default_port: the server's TCP port when the URL names none (None: no server,
            SQLite); the pool probes it to notice a server that came back.
        empty_table: the statement that empties a table inside the flush transaction
            (``TRUNCATE TABLE`` where it is transactional, PostgreSQL; else ``DELETE FROM``:
            MySQL and Oracle commit a TRUNCATE implicitly, SQLite has none).
        writers: the flush threads (``workers``) out_sql sets where the operator set none
            (docs/fluent-bit-abi.md section 8.2): two for a server, so one flush's
            encoding and sending overlap the other's work in the server; one for SQLite,
            which has one writer at a time.
        local_time_rule: how the database reads a naive local time that a DST change
            repeats or skips (:func:`flbsql.timestamps.localize`): ``postgresql`` or
            ``earlier``; the ``time_zone_ambiguous database`` default.
    """

    paramstyle: str = "qmark"
    quote_open: str = '"'
    quote_close: str = '"'
    max_identifier_length: int = 128
    max_rows_per_insert: int | None = 1000
    max_params: int = 32767
    max_statement_bytes: int | None = None
    row_value_compare: bool = True
    limit_style: str = "limit"
    upsert_style: str = "on_conflict"
    merge_terminator: str = ""
    add_column: str = "ADD COLUMN"
    timestamp_precision: int = 6
    create_if_not_exists: bool = True
    text_nul: bool = True
    json_as_bytes: bool = False
    current_schema: str = "CURRENT_SCHEMA"
    column_type_field: str = "data_type"
    epoch_micros: bool = False
    naive_time_text: bool = False
    enforces_length: bool = True
    streaming: bool = False
    locates_failed_row: bool = False
    batch_errors: bool = False
    default_port: int | None = None
    local_time_rule: str = "earlier"
    writers: int = 2
    empty_table: str = "DELETE FROM"
    types: dict[str, str] = dataclasses.field(
        default_factory=lambda: {
            "text": "TEXT",
            "string": "VARCHAR(255)",
            "key_text": "TEXT",  # a text column in a key index: the widest it can be
            "int": "BIGINT",
            "float": "DOUBLE PRECISION",
            "bool": "BOOLEAN",
            "timestamp": "TIMESTAMP",
            "json": "TEXT",
            "bytes": "BLOB",
            "decimal": "DECIMAL(38, 10)",
        }
    )
