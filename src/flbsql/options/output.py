"""Options of the output: table, column mapping, writes."""

from __future__ import annotations

from flbsql.options.option import OUTPUT, Option

__all__ = ["OUTPUT_OPTIONS"]

O = Option

OUTPUT_OPTIONS: tuple[Option, ...] = (
    # --- output -------------------------------------------------------------------------
    O(
        "table",
        "str",
        None,
        "Target table (output) or source table (input); `schema.table` is allowed. "
        "Quoted by the dialect; a part in double quotes is literal, so a name with a dot "
        'is written `"my.table"` (`""` inside for a quote). Output: a table per record with '
        "`$TAG`, `$TAG[n]` (the n-th dot-separated part of the tag, from 0) or `$field` (a "
        "record field; with `apply`, the default `$table` is the change's source table); see "
        "docs/replication.md.",
        group="table",
    ),
    O(
        "columns",
        "list",
        (),
        "Output: column mapping `column=key.path[:type]`, comma-separated; nested keys with "
        "dots. Input: columns to select (default all).",
        group="table",
    ),
    O(
        "tag_column",
        "str",
        "tag",
        "Column for the tag (`none` for no column).",
        kinds=OUTPUT,
        group="table",
    ),
    O(
        "time_column",
        "str",
        "time",
        "Output: column for the record time (`none` for no column). Input: column that "
        "gives the event time (default: ingest time).",
        group="table",
    ),
    O(
        "json_column",
        "str",
        "data",
        "Column holding the record as JSON; with `columns`, the keys not mapped "
        "(`none` for no column).",
        kinds=OUTPUT,
        group="table",
    ),
    O(
        "time_zone",
        "str",
        "UTC",
        "Zone for naive timestamps (IANA name, e.g. Europe/Paris). Output times are "
        "written in this zone to columns without a zone.",
        group="table",
    ),
    O(
        "time_zone_ambiguous",
        "choice",
        "database",
        "A naive local time that happens twice (the hour repeated when clocks go back) or "
        "never (skipped when they go forward), read in `time_zone`: `database` follows the "
        "database's own rule (PostgreSQL: the second, standard-time reading of a repeated "
        "hour, and a skipped time read with the offset before the change; elsewhere: "
        "`earlier`), `earlier` the first reading, `later` the second.",
        choices=("database", "earlier", "later"),
        group="table",
    ),
    O(
        "auto_create_table",
        "bool",
        True,
        "Create the table when it is missing.",
        kinds=OUTPUT,
        group="table",
    ),
    O(
        "auto_add_columns",
        "bool",
        False,
        "Add mapped columns that are missing.",
        kinds=OUTPUT,
        group="table",
    ),
    O(
        "unique_key",
        "list",
        (),
        "Idempotent writes: columns of a unique key; rows already present are skipped "
        "(or updated, see `on_conflict`), so Fluent Bit retries never duplicate.",
        kinds=OUTPUT,
        group="table",
    ),
    O(
        "on_conflict",
        "choice",
        "ignore",
        "With `unique_key`: ignore or update.",
        kinds=OUTPUT,
        group="table",
        choices=("ignore", "update"),
    ),
    O(
        "dead_letter_table",
        "str",
        None,
        "Table for records the database rejects, with the error text. Without it they "
        "go to the error log with the record.",
        kinds=OUTPUT,
        group="table",
    ),
    O(
        "batch_rows",
        "int",
        0,
        "Rows per statement (0 = the dialect's limit).",
        kinds=OUTPUT,
        group="table",
        minimum=0,
    ),
    O(
        "bulk",
        "choice",
        "auto",
        "Bulk path: auto (COPY on PostgreSQL, LOAD DATA LOCAL INFILE on MySQL/MariaDB when "
        "the server allows local_infile), copy, insert (bound executemany).",
        kinds=OUTPUT,
        group="table",
        choices=("auto", "copy", "insert"),
    ),
    O(
        "table_prefix",
        "str",
        None,
        "Output: text put before every table name that `table` resolves per record "
        "(`$TAG`, `$field`), e.g. `replica_`; not before `table_map` targets.",
        kinds=OUTPUT,
        group="replication",
    ),
    O(
        "table_schema",
        "str",
        None,
        "Output: the schema of every table `table` resolves to. Unset: the name as "
        "resolved (`$table` of a CDC record is `public.orders`); `none`: no schema (the "
        "connection's default schema or database, e.g. for MariaDB and SQLite targets); "
        "another value: that schema.",
        kinds=OUTPUT,
        group="replication",
    ),
    O(
        "table_map",
        "list",
        (),
        "Output: `source=target` pairs, comma-separated: a resolved name (e.g. "
        "`public.orders`) that is a source here is written to its target (`schema.table` "
        "allowed) as it is, without `table_prefix` or `table_schema`.",
        kinds=OUTPUT,
        group="replication",
    ),
    O(
        "apply",
        "choice",
        "off",
        "Output: apply change records instead of appending them: `cdc` (in_sql `mode cdc` "
        "records), `debezium` (Debezium change events, with or without the "
        "`schema`/`payload` envelope), `auto` (either, per record). Inserts become "
        "insert-or-update by key, updates update by key, deletes delete by key, truncates "
        "empty the table (docs/replication.md).",
        kinds=OUTPUT,
        group="replication",
        choices=("off", "cdc", "debezium", "auto"),
    ),
    O(
        "apply_position_table",
        "str",
        "flbsql_apply_position",
        "Output, with `apply`: table holding the last applied position per source and "
        "source table, written in each flush's transaction; a change at or before it is "
        "skipped, so a replayed chunk changes nothing (`none`: no replay check).",
        kinds=OUTPUT,
        group="replication",
    ),
    O(
        "apply_parked_table",
        "str",
        "flbsql_apply_parked",
        "Output, with `apply` and a position table: where a change that arrives ahead of "
        "an older one of its table (its `seq` skips a number: Fluent Bit flushed a newer "
        "chunk first) waits, in the flush's transaction, until the older ones are applied.",
        kinds=OUTPUT,
        group="replication",
    ),
    O(
        "apply_gap_wait",
        "duration",
        600.0,
        "Output, with `apply`: how long a table's changes wait for a missing older one "
        "before they are applied without it (one error line names the table and the "
        "missing numbers). The table's target lags meanwhile.",
        kinds=OUTPUT,
        group="replication",
    ),
    O(
        "apply_source",
        "str",
        None,
        "Output, with `apply`: the name positions are kept under in `apply_position_table` "
        "(default: Debezium's `source.name`, else the chunk's tag).",
        kinds=OUTPUT,
        group="replication",
    ),
)
