"""When a handed-over batch counts as in Fluent Bit's chunks (flbsql.input.intake)."""

from __future__ import annotations

import logging

from flbsql.input.intake import Intake

LOG = logging.getLogger("test")


class Engine:
    """Fluent Bit's two counters of the input, as the engine moves them."""

    def __init__(self, records: int = 0) -> None:
        self.records, self.failures = records, 0
        self.exposed = True

    def __call__(self) -> tuple[int, int] | None:
        return (self.records, self.failures) if self.exposed else None


def test_a_batch_lands_one_collect_after_the_engine_counted_all_of_it():
    eng = Engine(records=7)  # another life of the counter: only growth counts
    it = Intake(eng, LOG)
    assert it.landed() == 0
    it.handed(100)
    assert it.landed() == 0  # still in the ring buffer: the engine thread is busy
    assert it.landed() == 0
    eng.records += 100
    assert it.landed() == 0  # counted now; the chunk write follows the count
    assert it.landed() == 1


def test_batches_land_in_order_and_only_whole():
    eng = Engine()
    it = Intake(eng, LOG)
    it.landed()
    it.handed(10)
    it.handed(20)
    it.handed(30)
    eng.records = 10 + 20  # the third is still in the ring
    assert it.landed() == 0
    assert it.landed() == 2
    eng.records += 30
    assert it.landed() == 0
    assert it.landed() == 1
    assert it.landed() == 0


def test_a_counter_that_stays_short_by_a_remainder_follows_fluent_bits_count():
    eng = Engine()
    it = Intake(eng, LOG)
    it.landed()
    it.handed(10)
    eng.records = 8  # a processor dropped two
    assert it.landed() == 0
    assert it.landed() == 0  # the same remainder for one collect: that is all that comes
    assert it.landed() == 1
    it.handed(5)
    eng.records += 5
    it.landed()
    assert it.landed() == 1


def test_a_batch_dropped_from_a_full_ring_buffer_is_reported_at_cleanup():
    eng = Engine()
    it = Intake(eng, LOG)
    it.landed()
    eng.failures += 1  # append_to_ring_buffer gave up during the append
    assert it.dropped()
    it.landed()
    assert not it.dropped()


def test_at_exit_what_was_counted_lands_at_once():
    eng = Engine()
    it = Intake(eng, LOG)
    it.landed()
    it.handed(4)
    it.handed(6)
    eng.records = 4
    assert it.landed(final=True) == 1


def test_without_the_counters_a_batch_lands_at_the_next_collect():
    eng = Engine()
    eng.exposed = False
    it = Intake(eng, LOG)
    it.handed(4)
    it.handed(6)
    assert it.landed() == 2
    assert not it.dropped()
