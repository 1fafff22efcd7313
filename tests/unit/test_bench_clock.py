"""The benchmarks' end-of-run clock: Fluent Bit's ``counter`` output lines.

The metrics API refreshes once a second; the bench takes the end of a run from
the ``counter`` output's own timestamp instead, in both formats it has had.
"""

from __future__ import annotations

from bench.engine import _counted_at

V5 = "\n".join(
    [
        "[2026/12/02 13:00:00] [ info] [output:counter:sink] worker #0 started",
        '{"ts":1764680400.250000,"serialized_events":600,"log_records":600,"total":600}',
        '{"ts":1764680401.500000,"serialized_events":400,"log_records":400,"total":400}',
        '{"ts":1764680402.750000,"serialized_events":5,"log_records":5,"total":5}',
    ]
)
V4 = "\n".join(
    [
        "1764680400.250000,600 (total = 600)",
        "some log line",
        "1764680401.500000,400 (total = 1000)",
    ]
)


def test_v5_lines_add_up_per_flush() -> None:
    assert _counted_at(V5, 600) == 1764680400.25
    assert _counted_at(V5, 1000) == 1764680401.5
    assert _counted_at(V5, 1005) == 1764680402.75


def test_v4_lines_carry_the_total() -> None:
    assert _counted_at(V4, 601) == 1764680401.5


def test_never_counted() -> None:
    assert _counted_at(V5, 1006) is None
    assert _counted_at("no counter here", 1) is None
