"""The option table: parser, validator and documentation in one place.

Each :class:`Option` names a Fluent Bit property, its type, default, which plugin
kinds accept it, and whether it is secret. :func:`flbsql.settings.parse` reads the
table to build a frozen :class:`~flbsql.settings.Config`; ``docs/configuration.md``
is generated from it (``python -m flbsql.tools.docgen``) and a test fails when it is stale.

Names avoid the keys Fluent Bit consumes before a plugin sees them (``host``,
``port``, ``tls.*``, ``net.*``, ``workers``, ``retry_limit``, ``tag``, ``match``,
``alias``, ``log_level``, ``listen``, ...; ABI doc section 5).
"""

from __future__ import annotations

import dataclasses
from typing import Any

__all__ = ["CONSUMED_BY_FLUENT_BIT", "OPTIONS", "Option", "options_for"]

INPUT = frozenset({"input"})
OUTPUT = frozenset({"output"})
BOTH = INPUT | OUTPUT


@dataclasses.dataclass(frozen=True)
class Option:
    """One configuration key.

    Attributes:
        name: the property name, case-insensitive in Fluent Bit.
        type: str, int, float, bool, duration (seconds as float; "500ms", "5s",
            "2m", "1h"), size (bytes; "64k", "4M"), list (comma-separated), choice.
        default: the value used when the key is absent (already typed).
        description: one or two sentences for the reference docs.
        kinds: "input", "output" or both.
        group: section of the reference docs.
        secret: the value may hold a credential: never logged, accepts references
            ``env:NAME``, ``file:/path`` and ``vault:<path>#<field>``.
        choices: allowed values for type "choice".
        minimum: lowest allowed value for numbers, durations and sizes.
    """

    name: str
    type: str
    default: Any
    description: str
    kinds: frozenset[str] = BOTH
    group: str = "connection"
    secret: bool = False
    choices: tuple[str, ...] = ()
    minimum: float | None = None

    @property
    def attr(self) -> str:
        """Python attribute name: dots become underscores."""
        return self.name.replace(".", "_")


O = Option

OPTIONS: tuple[Option, ...] = (
    # --- connection -------------------------------------------------------------------
    O(
        "url",
        "str",
        None,
        "Database URL: postgresql://, mysql:// (or mariadb://), oracle://, mssql://, "
        "sqlite:///path, or a plain file path for SQLite. A password in it is redacted in "
        "logs; prefer `password` with a secret reference.",
        secret=True,
    ),
    O(
        "user",
        "str",
        None,
        "User name; overrides the URL's. Accepts secret references.",
        secret=True,
    ),
    O(
        "password",
        "str",
        None,
        "Password; overrides the URL's. Use `env:NAME`, `file:/path` or "
        "`vault:<path>#<field>` rather than a literal.",
        secret=True,
    ),
    O("connect_timeout", "duration", 10.0, "Timeout for establishing a connection.", minimum=0.1),
    O(
        "statement_timeout",
        "duration",
        60.0,
        "Timeout of one statement, also used as the socket read timeout, so a silent "
        "server never hangs a flush.",
        minimum=0.1,
    ),
    O(
        "ssl_mode",
        "choice",
        "prefer",
        "TLS to the database: disable, prefer, require (encrypt, no verification), "
        "verify-ca, verify-full (also checks the host name).",
        choices=("disable", "prefer", "require", "verify-ca", "verify-full"),
    ),
    O("ssl_ca", "str", None, "CA bundle file to verify the server certificate."),
    O("ssl_cert", "str", None, "Client certificate file (PEM)."),
    O("ssl_key", "str", None, "Client private key file (PEM).", secret=True),
    O(
        "python",
        "str",
        None,
        "Interpreter of the virtualenv the plugin runs in (`<venv>/bin/python`). Read by "
        "the C shim before Python starts; the first plugin instance decides. Default: the "
        "venv the .so sits in, else the one it was built with; env FLBSQL_PYTHON also works.",
        group="runtime",
    ),
    # --- pool ---------------------------------------------------------------------------
    O(
        "pool.max_lifetime",
        "duration",
        1800.0,
        "A connection is replaced after this age (minus up to 10 % jitter).",
        group="pool",
        minimum=1.0,
    ),
    O(
        "pool.check_idle",
        "duration",
        30.0,
        "A connection idle for longer is pinged before use.",
        group="pool",
        minimum=0.0,
    ),
    O(
        "pool.backoff_initial",
        "duration",
        1.0,
        "First reconnect delay; doubles each failure.",
        group="pool",
        minimum=0.01,
    ),
    O("pool.backoff_max", "duration", 30.0, "Longest reconnect delay.", group="pool", minimum=0.01),
    # --- vault --------------------------------------------------------------------------
    O(
        "vault.address",
        "str",
        None,
        "Vault or OpenBao address (https://vault:8200). Enables `vault:` references.",
        group="vault",
    ),
    O("vault.namespace", "str", None, "Vault Enterprise namespace.", group="vault"),
    O(
        "vault.auth",
        "choice",
        "token",
        "Login method.",
        group="vault",
        choices=("token", "approle", "kubernetes", "jwt"),
    ),
    O(
        "vault.auth_mount",
        "str",
        None,
        "Mount path of the auth method (default: the method's name).",
        group="vault",
    ),
    O(
        "vault.token",
        "str",
        None,
        "Token for `vault.auth token` (default env VAULT_TOKEN).",
        group="vault",
        secret=True,
    ),
    O("vault.role_id", "str", None, "AppRole role_id.", group="vault", secret=True),
    O("vault.secret_id", "str", None, "AppRole secret_id.", group="vault", secret=True),
    O("vault.role", "str", None, "Role for kubernetes and jwt login.", group="vault"),
    O(
        "vault.jwt",
        "str",
        None,
        "JWT for jwt login (e.g. `file:/var/run/secrets/token` from an identity provider).",
        group="vault",
        secret=True,
    ),
    O(
        "vault.kubernetes_token_file",
        "str",
        "/var/run/secrets/kubernetes.io/serviceaccount/token",
        "Service-account token file for kubernetes login.",
        group="vault",
    ),
    O("vault.ca_file", "str", None, "CA bundle for the Vault server.", group="vault"),
    O(
        "vault.skip_verify",
        "bool",
        False,
        "Do not verify Vault's certificate (testing only).",
        group="vault",
    ),
    O(
        "vault.db_role",
        "str",
        None,
        "Role of the database secrets engine: user and password are dynamic credentials, "
        "renewed and rotated before expiry.",
        group="vault",
    ),
    O("vault.db_mount", "str", "database", "Mount of the database secrets engine.", group="vault"),
    O(
        "vault.renew_before",
        "float",
        0.33,
        "Rotate dynamic credentials when this fraction of the lease is left.",
        group="vault",
        minimum=0.05,
    ),
    # --- metrics ------------------------------------------------------------------------
    O(
        "metrics.interval",
        "duration",
        60.0,
        "Log a line of counters this often (0 = never).",
        group="metrics",
        minimum=0.0,
    ),
    O(
        "metrics.port",
        "int",
        0,
        "Serve Prometheus text on this port at /metrics (0 = off).",
        group="metrics",
        minimum=0,
    ),
    O("metrics.address", "str", "127.0.0.1", "Address the metrics server binds.", group="metrics"),
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
        "Bulk path: auto (COPY on PostgreSQL), copy, insert.",
        kinds=OUTPUT,
        group="table",
        choices=("auto", "copy", "insert"),
    ),
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
        "rows_per_collect",
        "int",
        20000,
        "Most rows handed to Fluent Bit per callback.",
        kinds=INPUT,
        group="input",
        minimum=1,
    ),
    O(
        "bytes_per_collect",
        "size",
        8 << 20,
        "Most bytes handed to Fluent Bit per callback.",
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
        "the query>`. Two inputs on one `db` file need different names.",
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
        "tables",
        "list",
        (),
        "CDC: tables to capture (`schema.table`, comma-separated).",
        kinds=INPUT,
        group="cdc",
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
        "CDC: value for an unchanged TOAST column when the old row does not have it.",
        kinds=INPUT,
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

# Keys Fluent Bit consumes itself (never reach a plugin), per ABI doc section 5.
CONSUMED_BY_FLUENT_BIT = frozenset(
    {
        "match",
        "match_regex",
        "alias",
        "log_level",
        "log_suppress_interval",
        "host",
        "port",
        "ipv6",
        "tls",
        "retry_limit",
        "workers",
        "storage.total_limit_size",
        "tag",
        "routable",
        "listen",
        "mem_buf_limit",
        "storage.type",
        "storage.pause_on_chunks_overlimit",
        "threaded",
        "rate_window",
        "name",
    }
)

_BY_KIND = {k: {o.name: o for o in OPTIONS if k in o.kinds} for k in ("input", "output")}


def options_for(kind: str) -> dict[str, Option]:
    """The options a plugin kind accepts, by name."""
    return _BY_KIND[kind]
