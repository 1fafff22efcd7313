"""The one mapping from what happened in a flush to Fluent Bit's return code."""

from __future__ import annotations

import pytest

from flbsql.errors import (
    ConfigError,
    DatabaseError,
    DisconnectError,
    FlbSqlError,
    MissingDriverError,
    RecordError,
    SecretError,
    TerminalError,
    TransientError,
)
from flbsql.outcome import Outcome, to_outcome


def test_the_codes_are_fluent_bits():
    assert (Outcome.ERROR, Outcome.OK, Outcome.RETRY) == (0, 1, 2)


@pytest.mark.parametrize(
    ("exc", "outcome"),
    [
        (TransientError("deadlock", "40P01"), Outcome.RETRY),
        (DisconnectError("server closed the connection"), Outcome.RETRY),
        (SecretError("vault sealed"), Outcome.RETRY),
        (TerminalError("permission denied", "42501"), Outcome.ERROR),
        (RecordError("column 'n': not an integer"), Outcome.ERROR),
        (ConfigError("table", "required"), Outcome.ERROR),
        (MissingDriverError("oracle", "oracledb", "oracle"), Outcome.ERROR),
        (DatabaseError("unclassified"), Outcome.RETRY),
        (FlbSqlError("base"), Outcome.RETRY),
        (RuntimeError("a bug"), Outcome.RETRY),  # nothing is lost silently
        (KeyboardInterrupt(), Outcome.RETRY),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else v.name,
)
def test_each_error_class_has_one_outcome(exc, outcome):
    assert to_outcome(exc) is outcome
