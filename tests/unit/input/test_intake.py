"""When a handed-over batch counts as in Fluent Bit's chunks (flbsql.input.intake)."""

from __future__ import annotations

import logging

from flbsql.input.intake import NEVER_COUNTED, Intake

LOG = logging.getLogger("test")


class Engine:
    """Fluent Bit's counters of the input, moved as its input thread and engine would."""

    def __init__(self, records: int = 0) -> None:
        self.records, self.failures, self.writes = records, 0, 0
        self.exposed = True

    def __call__(self) -> tuple[int, int, int] | None:
        return (self.records, self.failures, self.writes) if self.exposed else None

    def append(self, it: Intake, rows: int, entry: bool = True) -> bool:
        """The input callback's batch copied into the ring buffer, then cleanup."""
        self.writes += entry
        return it.appended(rows)


def started(eng: Engine) -> Intake:
    it = Intake(eng, LOG)
    assert it.landed() == 0
    return it


def test_a_batch_lands_one_collect_after_the_engine_counted_all_of_it():
    eng = Engine(records=7)  # another life of the counter: only growth counts
    it = started(eng)
    assert eng.append(it, 100)
    assert it.landed() == 0  # still in the ring buffer: the engine thread is busy
    assert it.waiting()
    assert it.landed() == 0
    eng.records += 100
    assert it.landed() == 0  # counted now; the chunk write follows the count
    assert not it.waiting()
    assert it.landed() == 1


def test_batches_land_in_order_and_only_whole():
    eng = Engine()
    it = started(eng)
    for rows in (10, 20):
        assert eng.append(it, rows)
        it.landed()
    assert eng.append(it, 30)
    eng.records = 10 + 20  # the third is still in the ring
    assert it.landed() == 0
    assert it.waiting()
    assert it.landed() == 2
    eng.records += 30
    assert it.landed() == 0
    assert it.landed() == 1
    assert it.landed() == 0


def test_a_counter_that_stays_short_by_a_remainder_follows_fluent_bits_count():
    eng = Engine()
    it = started(eng)
    assert eng.append(it, 10)
    eng.records = 8  # a processor dropped two
    assert it.landed() == 0
    assert not it.waiting()  # the engine took its entry: hand over the next batch
    assert it.landed() == 0  # the same remainder for one collect: that is all that comes
    assert it.landed() == 1
    assert eng.append(it, 5)
    eng.records += 5
    it.landed()
    assert it.landed() == 1


def test_a_batch_that_made_no_ring_buffer_entry_has_nothing_to_wait_for():
    eng = Engine()
    it = started(eng)
    assert eng.append(it, 10, entry=False)  # processors dropped every record
    assert not it.waiting()
    assert it.landed() == 1


def test_a_batch_dropped_from_a_full_ring_buffer_is_reported_at_cleanup():
    eng = Engine()
    it = started(eng)
    eng.failures += 1  # append_to_ring_buffer gave up during the append
    assert not eng.append(it, 10, entry=False)
    assert it.landed() == 0
    assert eng.append(it, 10)


def test_at_exit_what_was_counted_lands_at_once():
    eng = Engine()
    it = started(eng)
    assert eng.append(it, 4)
    it.landed()
    assert eng.append(it, 6)
    eng.records = 4
    assert it.landed(final=True) == 1


def test_without_the_counters_a_batch_lands_at_the_next_collect():
    eng = Engine()
    eng.exposed = False
    it = started(eng)
    assert eng.append(it, 4)
    assert eng.append(it, 6)
    assert it.landed() == 2
    assert not it.waiting()


def test_a_records_counter_that_never_moves_is_given_up_after_a_minute(caplog):
    eng = Engine()
    it = started(eng)
    assert eng.append(it, 10)
    assert it.landed() == 0 and it.waiting()
    it._batches[0].since -= NEVER_COUNTED + 1  # a minute on, still nothing counted
    with caplog.at_level(logging.WARNING):
        assert it.landed() == 1
    assert "has not counted any record of this input" in caplog.text
    assert not it.waiting()
    assert eng.append(it, 5)
    assert it.landed() == 1  # from now on: the next collect, as without counters


def test_a_counter_that_moved_once_is_trusted_however_long_the_engine_is_busy():
    eng = Engine()
    it = started(eng)
    assert eng.append(it, 10)
    eng.records += 10
    it.landed()
    assert it.landed() == 1
    assert eng.append(it, 10)
    it.landed()
    it._batches[0].since -= NEVER_COUNTED + 1
    assert it.landed() == 0 and it.waiting()


def test_a_collect_waits_for_the_engine_to_count_the_last_batch_and_lands_nothing_early():
    """A batch handed over late in a second: the next collect waits for the count."""
    import threading

    eng = Engine()
    it = started(eng)
    assert eng.append(it, 100)
    assert it.landed() == 0 and it.waiting()
    assert not it.wait(0.05)  # the engine did not count it: give up, skip this second
    counted = threading.Timer(0.1, lambda: setattr(eng, "records", eng.records + 100))
    counted.start()
    assert it.wait(5.0)  # counted meanwhile: hand over the next batch now
    counted.join()
    assert it.landed() == 0  # only seen counted now: it lands one collect later, as before
    assert it.landed() == 1


def test_waiting_for_the_engine_needs_every_earlier_batch_counted():
    eng = Engine()
    it = started(eng)
    for rows in (10, 20):
        assert eng.append(it, rows)
        it.landed()
    eng.records = 10  # the second batch is still in the ring
    assert not it.wait(0.05)
    eng.records = 30
    assert it.wait(0.05)
