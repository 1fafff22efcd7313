"""Database URLs to :class:`ConnectParams`.

``postgresql://user:pass@host:5432/db?sslmode=require``, ``mysql://`` (``mariadb://``),
``oracle://user@host:1521/service``, ``mssql://user@host:1433/db``,
``sqlite:///abs/path.db``, ``sqlite://rel/path.db``, ``sqlite://:memory:`` or just a
file path. Driver suffixes such as ``postgresql+psycopg://`` are accepted and
ignored. The password never shows in ``repr``/``str``.
"""

from __future__ import annotations

import dataclasses
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from flbsql.errors import ConfigError

__all__ = ["ConnectParams", "parse_url"]

_SCHEMES = {
    "postgresql": "postgresql",
    "postgres": "postgresql",
    "pgsql": "postgresql",
    "mysql": "mysql",
    "mariadb": "mysql",
    "oracle": "oracle",
    "mssql": "mssql",
    "sqlserver": "mssql",
    "sqlite": "sqlite",
    "sqlite3": "sqlite",
    "file": "sqlite",
}


@dataclasses.dataclass(frozen=True)
class ConnectParams:
    """Everything a dialect needs to open a connection."""

    dialect: str
    host: str | None = None
    port: int | None = None
    user: str | None = None
    password: str | None = dataclasses.field(default=None, repr=False)
    database: str | None = None  # database, service name, or SQLite file path
    query: dict[str, str] = dataclasses.field(default_factory=dict)
    # filled from options, not from the URL
    connect_timeout: float = 10.0
    statement_timeout: float = 60.0
    ssl_mode: str = "prefer"
    ssl_ca: str | None = None
    ssl_cert: str | None = None
    ssl_key: str | None = dataclasses.field(default=None, repr=False)

    def with_(self, **changes: Any) -> ConnectParams:
        """A copy with some fields replaced."""
        return dataclasses.replace(self, **changes)

    def redacted(self) -> str:
        """The URL with the password replaced, for logs and errors."""
        auth = ""
        if self.user:
            auth = self.user + (":***" if self.password else "") + "@"
        host = self.host or ""
        if self.port:
            host += f":{self.port}"
        if self.dialect == "sqlite":
            return f"sqlite://{self.database}"
        return f"{self.dialect}://{auth}{host}/{self.database or ''}"

    def __str__(self) -> str:
        return self.redacted()


def parse_url(url: str) -> ConnectParams:
    """Parse a database URL (or a bare SQLite file path)."""
    text = url.strip()
    if not text:
        raise ConfigError("url", "empty")
    if "://" not in text:
        if ":" in text.split("/")[0] and not text.startswith(("/", ".")):
            raise ConfigError(
                "url",
                "unknown scheme; expected postgresql://, mysql://, "
                "oracle://, mssql://, sqlite:///path or a file path",
            )
        return ConnectParams("sqlite", database=text)
    scheme = text.split("://", 1)[0].lower().split("+", 1)[0]
    dialect = _SCHEMES.get(scheme)
    if dialect is None:
        raise ConfigError(
            "url", f"unknown scheme '{scheme}'; expected one of " + ", ".join(sorted(set(_SCHEMES)))
        )
    if dialect == "sqlite":
        # sqlite:///abs/file.db (absolute, like file://), sqlite://rel/file.db, sqlite://:memory:
        path = unquote(text.split("://", 1)[1].split("?", 1)[0])
        if path in ("", "/:memory:"):
            path = ":memory:"
        return ConnectParams("sqlite", database=path)
    parts = urlsplit(text)
    try:
        port = parts.port
    except ValueError as exc:
        raise ConfigError("url", f"bad port: {exc}") from None
    return ConnectParams(
        dialect,
        host=parts.hostname,
        port=port,
        user=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        database=unquote(parts.path.lstrip("/")) or None,
        query=dict(parse_qsl(parts.query)),
    )
