"""Options of the input: polling and change data capture."""

from __future__ import annotations

from flbsql.options.option import BOTH, INPUT, Option

__all__ = ["INPUT_OPTIONS", "MODES"]

O = Option

INPUT_OPTIONS: tuple[Option, ...] = (
    # --- input --------------------------------------------------------------------------
    O(
        "query",
        "str",
        None,
        "Custom SELECT instead of `table`; must contain `{position}` where the keyset "
        "condition goes (e.g. `SELECT * FROM t WHERE {position}`).",
        kinds=INPUT,
        group="input",
    ),
    O(
        "key",
        "list",
        (),
        "Key columns in read order (default: the primary key). Composite, text, uuid and "
        "timestamp keys work.",
        kinds=INPUT,
        group="input",
    ),
    O(
        "tracking_column",
        "str",
        None,
        "Column that grows on change (e.g. updated_at); rows are read in "
        "(tracking_column, key) order so updates are picked up.",
        kinds=INPUT,
        group="input",
    ),
    O(
        "where",
        "str",
        None,
        "Extra SQL condition (trusted text from the config).",
        kinds=INPUT,
        group="input",
    ),
    O(
        "tables",
        "list",
        (),
        "Several tables (`schema.table`, comma-separated). Poll: instead of `table`, read "
        "in turn, a page each, each with its own key and position; `schema.*` is every "
        "table of the schema, listed at start and every minute. CDC: the tables to capture "
        "(required).",
        kinds=INPUT,
        group="input",
    ),
    O(
        "table_key",
        "str",
        "_table",
        "Poll: the record field that holds the table name (`schema.table` as configured "
        "or listed). Added with `tables`, and with `table` when set explicitly.",
        kinds=INPUT,
        group="input",
    ),
    O(
        "shard",
        "str",
        None,
        "Poll: read one shard of the table(s): `i/N` (`0/4` ... `3/4`, counted from 0 like "
        "a StatefulSet's pod ordinal). A row belongs to shard `hash(key) mod N`, hashed by "
        "the database; N inputs with the same N read every row exactly once between them, "
        "each keeping its own position.",
        kinds=INPUT,
        group="input",
    ),
    O(
        "rows_per_collect",
        "int",
        0,
        "Most rows handed to Fluent Bit per callback (Fluent Bit calls a proxy input once a "
        "second, fixed); 0: no row cap, `bytes_per_collect` decides. A cap is also a "
        "ceiling on rows/s.",
        kinds=INPUT,
        group="input",
        minimum=0,
    ),
    O(
        "bytes_per_collect",
        "size",
        48 << 20,
        "Memory budget of one callback. What a callback hands over adapts: it starts at "
        "this, halves when Fluent Bit pauses the input or a batch did not reach it, and "
        "doubles back while Fluent Bit takes every batch and more is ready; while Fluent "
        "Bit's engine has not taken the last batch, nothing more is handed over. It is "
        "also the ceiling on throughput "
        "(bytes/s, since callbacks come once a second) and costs memory: the reading "
        "thread reads half a batch ahead and Fluent Bit copies a batch twice, so the "
        "process peaks about 3-4x this above its base.",
        kinds=INPUT,
        group="input",
        minimum=1024,
    ),
    O(
        "fetch_size",
        "int",
        5000,
        "Rows per database round trip.",
        kinds=INPUT,
        group="input",
        minimum=1,
    ),
    O(
        "poll_interval",
        "duration",
        1.0,
        "Wait after an empty read before polling again.",
        kinds=INPUT,
        group="input",
        minimum=0.0,
    ),
    O(
        "max_rows_per_second",
        "int",
        0,
        "Pace reads (0 = unlimited).",
        kinds=INPUT,
        group="input",
        minimum=0,
    ),
    O(
        "start",
        "choice",
        "beginning",
        "Without a saved position: read the whole table (beginning) or only rows added "
        "from now on (end).",
        kinds=INPUT,
        group="input",
        choices=("beginning", "end"),
    ),
    O(
        "settle",
        "duration",
        5.0,
        "Where the database cannot report in-flight transactions (all but PostgreSQL), "
        "rows newer than this are not read yet, so late commits are not skipped.",
        kinds=INPUT,
        group="input",
        minimum=0.0,
    ),
    O(
        "horizon_timeout",
        "duration",
        300.0,
        "PostgreSQL: how long a transaction that was open when new rows were sampled may "
        "hold the reader back (it could still commit rows below them). A warning names it "
        "after a minute (pid, application, age); after this timeout reading goes on and a "
        "row it commits later below the read position is not read. 0: wait while it is open.",
        kinds=INPUT,
        group="input",
        minimum=0.0,
    ),
    O(
        "decimal",
        "choice",
        "string",
        "Encode DECIMAL/NUMERIC as lossless string or float.",
        kinds=INPUT,
        group="input",
        choices=("string", "float"),
    ),
    O(
        "db",
        "str",
        None,
        "Position file (SQLite), as tail's `db`. Default: in_sql.db in the working dir.",
        kinds=INPUT,
        group="input",
    ),
    O(
        "db.sync",
        "choice",
        "normal",
        "SQLite synchronous level of the position file.",
        kinds=INPUT,
        group="input",
        choices=("off", "normal", "full", "extra"),
    ),
    O(
        "position_name",
        "str",
        None,
        "Name the position is stored under (Fluent Bit's alias is not visible to "
        "plugins); default `<url database>/<table>` or `<url database>/query-<sha1 of "
        "the query>`. With `tables`, each table's is `<this or the url database>/<table>`; "
        "with `shard i/N`, `#shard<i>` is appended. Two inputs on one `db` file need "
        "different names.",
        kinds=INPUT,
        group="input",
    ),
    O(
        "progress_interval",
        "duration",
        30.0,
        "Log rows read, rows behind and rate this often while catching up.",
        kinds=INPUT,
        group="input",
        minimum=0.0,
    ),
    # --- cdc ----------------------------------------------------------------------------
    O(
        "mode",
        "choice",
        "poll",
        "poll (keyset polling) or cdc (PostgreSQL logical decoding).",
        kinds=INPUT,
        group="cdc",
        choices=("poll", "cdc"),
    ),
    O(
        "publication",
        "str",
        "flbsql",
        "CDC: publication name (created when missing).",
        kinds=INPUT,
        group="cdc",
    ),
    O(
        "slot",
        "str",
        "flbsql",
        "CDC: logical replication slot (created when missing).",
        kinds=INPUT,
        group="cdc",
    ),
    O(
        "replication_url",
        "str",
        None,
        "CDC: URL for the decoding connection.",
        kinds=INPUT,
        group="cdc",
        secret=True,
    ),
    O(
        "snapshot",
        "choice",
        "initial",
        "CDC: initial (snapshot then stream) or never.",
        kinds=INPUT,
        group="cdc",
        choices=("initial", "never"),
    ),
    O(
        "heartbeat_interval",
        "duration",
        10.0,
        "CDC: heartbeat message period (0 = off).",
        kinds=INPUT,
        group="cdc",
        minimum=0.0,
    ),
    O(
        "toast_marker",
        "str",
        "__unchanged_toast__",
        "CDC: value for an unchanged TOAST column when the old row does not have it "
        "(output `apply`: a column holding it keeps the target's value).",
        kinds=BOTH,
        group="cdc",
    ),
    O(
        "slot_warn_bytes",
        "size",
        1 << 30,
        "CDC: warn when the slot retains more WAL.",
        kinds=INPUT,
        group="cdc",
        minimum=0,
    ),
)

#: Input options that only one ``mode`` reads, and that mode. Given in the other mode,
#: Init refuses them by name (:func:`flbsql.settings.parse`) instead of ignoring them.
MODES: dict[str, str] = {
    **dict.fromkeys(
        (
            "table",
            "query",
            "key",
            "columns",
            "where",
            "tracking_column",
            "time_column",
            "time_zone",
            "time_zone_ambiguous",
            "start",
            "settle",
            "horizon_timeout",
            "max_rows_per_second",
            "progress_interval",
            "shard",
            "table_key",
        ),
        "poll",
    ),
    **dict.fromkeys(
        (
            "publication",
            "slot",
            "replication_url",
            "snapshot",
            "heartbeat_interval",
            "toast_marker",
            "slot_warn_bytes",
        ),
        "cdc",
    ),
}
