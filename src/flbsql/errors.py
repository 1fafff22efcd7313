"""The flbsql error tree.

Every failure the core can meet is one of these, sorted once at the edge where it
arises (a dialect's ``classify``, the option parser, a secret provider). Only
:mod:`flbsql.outcome` turns them into Fluent Bit return codes.

- :class:`ConfigError`: bad or missing option; Init fails, naming the key.
- :class:`SecretError`: a secret reference cannot be resolved (never shows the value).
- :class:`MissingDriverError`: the driver for a dialect is not installed; names the extra.
- :class:`TransientError`: worth retrying later (connection lost, deadlock, timeout).
  :class:`DisconnectError` is the subclass that also invalidates the pool.
- :class:`TerminalError`: retrying cannot help (bad data, constraint, permission).
  :class:`RecordError` is the subclass raised for one record, which the writer
  dead-letters instead of failing the chunk; :class:`BulkRefusedError` says a bulk load
  refused some rows of a batch without naming them.
"""

from __future__ import annotations

__all__ = [
    "BulkRefusedError",
    "ConfigError",
    "DisconnectError",
    "FlbSqlError",
    "MissingDriverError",
    "RecordError",
    "SecretError",
    "TerminalError",
    "TransientError",
    "sqlstate_is_transient",
]


class FlbSqlError(Exception):
    """Base of every error raised on purpose by flbsql."""


class ConfigError(FlbSqlError):
    """An option is unknown, malformed or missing. The message names the key."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"option '{key}': {problem}")
        self.key = key
        self.problem = problem


class SecretError(FlbSqlError):
    """A secret reference could not be resolved. Never carries the secret itself."""


class MissingDriverError(FlbSqlError):
    """A database driver is not installed."""

    def __init__(self, dialect: str, module: str, extra: str) -> None:
        super().__init__(
            f"the {dialect} dialect needs the '{module}' module: pip install \"flbsql[{extra}]\""
        )


class DatabaseError(FlbSqlError):
    """A classified database error; keeps the driver exception as ``__cause__``."""

    def __init__(self, message: str, sqlstate: str | None = None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


class TransientError(DatabaseError):
    """Retrying later may succeed: the chunk is kept (FLB_RETRY)."""


class DisconnectError(TransientError):
    """The connection is gone; every pooled connection older than it is retired."""

    stale = False
    """True when a pooled connection had died while it waited (the server restarted):
    the work can be done again at once on a new connection, as a retry would."""


class TerminalError(DatabaseError):
    """Retrying cannot succeed (FLB_ERROR), unless the writer can isolate the record."""


class RecordError(TerminalError):
    """One record cannot be written or encoded; it is dead-lettered with this text."""


class BulkRefusedError(RecordError):
    """A bulk load refused (or would have altered) rows of a batch without naming them.

    MySQL's ``LOAD DATA LOCAL`` turns data errors into warnings; the writer undoes
    the batch and writes it again through ``Dialect.statement_write``, whose errors
    name the bad rows.
    """


# SQLSTATE classes (ANSI/ISO 9075, as in psycopg.errors) that a retry may cure.
_TRANSIENT_CLASSES = {
    "08",  # connection exception
    "40",  # transaction rollback: serialization failure, deadlock
    "53",  # insufficient resources (disk full, out of memory, too many connections)
    "57",  # operator intervention: admin shutdown, query canceled (statement timeout)
    "58",  # system error (I/O)
    "HY",  # CLI/ODBC: timeout expired (HYT00, HYT01)
}
_TRANSIENT_STATES = {"55P03", "55006"}  # lock_not_available, object_in_use


def sqlstate_is_transient(sqlstate: str | None) -> bool:
    """True when a SQLSTATE means "try again later" rather than "this data is bad"."""
    if not sqlstate:
        return False
    return sqlstate in _TRANSIENT_STATES or sqlstate[:2] in _TRANSIENT_CLASSES
