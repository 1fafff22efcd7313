"""What the pool keeps per connection, its timing settings, and where credentials come from."""

from __future__ import annotations

import contextlib
import dataclasses
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from flbsql.dialects.base import Connection
    from flbsql.settings import Config

__all__ = ["Credentials", "PoolSettings", "Slot", "looks_dead"]


class Credentials(Protocol):
    """Where user and password come from on each connect (a secret store, Vault)."""

    def __call__(self) -> tuple[str | None, str | None]:
        """The credentials to connect with now."""
        ...

    def release(self) -> None:
        """The pool closed for good: give back what was leased (Vault: revoke)."""
        ...


# A credentials source may also have ``rejected(creds)``: the pool calls it when a
# connect with ``creds`` failed, so that a cached token is dropped (oidc: references).


@dataclasses.dataclass(frozen=True)
class PoolSettings:
    """Timing knobs, from the ``pool.*`` options."""

    max_lifetime: float = 1800.0
    check_idle: float = 30.0
    backoff_initial: float = 1.0
    backoff_max: float = 30.0

    @classmethod
    def from_config(cls, cfg: Config) -> PoolSettings:
        """Read the ``pool.*`` options of a :class:`~flbsql.settings.Config`."""
        return cls(
            cfg.pool_max_lifetime,
            cfg.pool_check_idle,
            cfg.pool_backoff_initial,
            cfg.pool_backoff_max,
        )


@dataclasses.dataclass(eq=False)
class Slot:
    """One pooled connection and what the pool knows of it."""

    conn: Connection = dataclasses.field(repr=False)
    created: float
    expires: float
    last_used: float
    generation: int
    creds: tuple[str | None, str | None] | None = dataclasses.field(default=None, repr=False)
    in_use: bool = False
    used: bool = False  # checked out before: it may have died while it waited


def looks_dead(conn: Any) -> bool:
    """The driver's own view, where it has one (psycopg, PyMySQL)."""
    with contextlib.suppress(Exception):
        if getattr(conn, "broken", False) is True or getattr(conn, "closed", False) is True:
            return True
        if getattr(conn, "open", True) is False:
            return True
    return False
