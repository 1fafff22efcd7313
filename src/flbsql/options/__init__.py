"""The option table: parser, validator, documentation and typed settings in one place.

Each :class:`Option` names a Fluent Bit property, its type, default, which plugin
kinds accept it, and whether it is secret. :func:`flbsql.settings.parse` reads the
table to build a frozen :class:`~flbsql.settings.Config`; ``docs/configuration.md``
is generated from it (``python -m flbsql.tools.docgen``) and a test fails when it is stale.

Names avoid the keys Fluent Bit consumes before a plugin sees them (``host``,
``port``, ``tls.*``, ``net.*``, ``workers``, ``retry_limit``, ``tag``, ``match``,
``alias``, ``log_level``, ``listen``, ...; docs/fluent-bit-abi.md §5).
"""

from __future__ import annotations

from flbsql.options.connection import CONNECTION
from flbsql.options.input import INPUT_OPTIONS, MODES
from flbsql.options.option import BOTH, INPUT, OUTPUT, Option
from flbsql.options.output import OUTPUT_OPTIONS

__all__ = [
    "BOTH",
    "CONSUMED_BY_FLUENT_BIT",
    "ENGINE_THREAD",
    "INPUT",
    "MODES",
    "OPTIONS",
    "OUTPUT",
    "Option",
    "default_workers_note",
    "options_for",
]

OPTIONS: tuple[Option, ...] = CONNECTION + OUTPUT_OPTIONS + INPUT_OPTIONS


# what out_sql says where the operator set no `workers` and it set `count` itself
# (Fluent Bit gives an external plugin none; docs/fluent-bit-abi.md section 8.2)
def default_workers(apply: str, writers: int) -> int:
    """The flush threads out_sql sets where the operator set no ``workers``.

    ``writers`` is the dialect's own count (``Capabilities.writers``); an apply output
    runs one flush at a time (output/apply.py), so one thread is enough.
    """
    return 1 if apply != "off" else writers


def default_workers_note(count: int) -> str:
    """The line for ``count`` flush threads chosen by out_sql (its log, ``flbsql check``)."""
    return (
        f"no `workers` set: flushes run on {count} worker thread{'s' if count > 1 else ''} "
        "beside Fluent Bit's engine (Fluent Bit gives an external plugin none; `workers` "
        "sets another count)"
    )


# what an sql output costs where the host does not let out_sql set a worker: said once
ENGINE_THREAD = (
    "flushes run on Fluent Bit's engine thread, which then waits for the database "
    "instead of reading inputs"
)

# Keys Fluent Bit consumes itself (never reach a plugin), per docs/fluent-bit-abi.md §5.
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
