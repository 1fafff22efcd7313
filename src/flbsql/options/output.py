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
        'is written `"my.table"` (`""` inside for a quote).',
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
)
