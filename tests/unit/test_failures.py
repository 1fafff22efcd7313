"""FailureLog: one line per event, tracebacks only for bugs."""

from __future__ import annotations

import logging
import time

import pytest

from flbsql.errors import TransientError
from flbsql.failures import FailureLog


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def at(self, level: int) -> list[str]:
        return [r.getMessage() for r in self.records if r.levelno == level]


@pytest.fixture
def lines():
    logger = logging.Logger("t", logging.DEBUG)
    h = Lines()
    logger.addHandler(h)
    return logger, h


def test_a_run_of_transient_failures_is_one_warning_then_one_info(lines):
    logger, h = lines
    f = FailureLog(logger, "flush")
    for _ in range(20):
        f.failed(TransientError("database down"), "Fluent Bit retries the chunk")
    f.succeeded()
    f.succeeded()
    assert h.at(logging.WARNING) == ["flush failed: database down; Fluent Bit retries the chunk"]
    assert len(h.at(logging.DEBUG)) == 19
    assert len(h.at(logging.INFO)) == 1 and "after 20 failed attempt(s)" in h.at(logging.INFO)[0]
    assert h.at(logging.ERROR) == []


def test_a_long_outage_is_reminded_once_a_minute(lines, monkeypatch):
    logger, h = lines
    now = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    f = FailureLog(logger, "flush")
    for _ in range(150):  # one failure a second for 150 s
        f.failed(TransientError("down"), "retrying")
        now[0] += 1.0
    warnings = h.at(logging.WARNING)
    assert len(warnings) == 3  # the first, then at 60 s and 120 s
    assert warnings[1].startswith("flush still failing after 61 attempts in 60s: down")


def test_a_bug_logs_its_traceback_once_per_place(lines):
    logger, h = lines
    f = FailureLog(logger, "flush")

    def boom() -> None:
        raise KeyError("x")

    for _ in range(3):
        try:
            boom()
        except KeyError as exc:  # noqa: PERF203 - three times
            f.failed(exc, "Fluent Bit retries the chunk")
    errors = h.at(logging.ERROR)
    assert len(errors) == 3
    assert "Traceback (most recent call last)" in errors[0] and "a bug" in errors[0]
    assert all("Traceback" not in e for e in errors[1:])
    assert len([d for d in h.at(logging.DEBUG) if "Traceback" in d]) == 2
