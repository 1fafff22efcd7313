"""The only mapping from what happened to a Fluent Bit return code.

``FLB_ERROR`` drops the chunk for this output, ``FLB_RETRY`` re-schedules it
(bounded by ``retry_limit``), ``FLB_OK`` releases it. A record that can never be
written must not make a whole chunk retry forever: the writer isolates it
(dead letter) before anything reaches this module.
"""

from __future__ import annotations

import enum

from flbsql.errors import (
    ConfigError,
    MissingDriverError,
    SecretError,
    TerminalError,
    TransientError,
)

__all__ = ["Outcome", "to_outcome"]


class Outcome(enum.IntEnum):
    """Fluent Bit's FLB_ERROR / FLB_OK / FLB_RETRY (flb_macros.h)."""

    ERROR = 0
    OK = 1
    RETRY = 2


def to_outcome(exc: BaseException) -> Outcome:
    """Decide what a failed flush returns.

    Transient database trouble keeps the chunk. A terminal error that reached the
    flush boundary (the writer could not isolate it to single records, e.g. a
    missing table with auto-create off, or permission denied) drops the chunk:
    retrying cannot help and would block the pipeline. Anything unexpected (a bug,
    an unclassified driver error) keeps the chunk, so nothing is lost silently;
    Fluent Bit's ``retry_limit`` bounds the retries and the traceback is logged.
    """
    if isinstance(exc, (TransientError, SecretError)):  # a store may come back too
        return Outcome.RETRY
    if isinstance(exc, (TerminalError, ConfigError, MissingDriverError)):
        return Outcome.ERROR
    return Outcome.RETRY
