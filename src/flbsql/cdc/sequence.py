"""Each table's change number, ``seq``: dense, and the same when a change is sent again.

Every change record carries ``seq``, its place among its table's changes (1, 2, 3,
... per table, for the life of the slot; snapshot rows carry none, see
:mod:`flbsql.cdc.snapshot`). An output applying changes (``out_sql apply cdc``)
sees a gap when a change's ``seq`` is more than one past the last it applied for
the table: an older chunk is still on its way (Fluent Bit flushes its filesystem
backlog beside new records after a restart, and retries a failed chunk after newer
ones). It then holds the change back until the gap is filled
(:mod:`flbsql.output.order`).

A record sent again after a crash must get the same number. The stream restarts at
the slot's ``confirmed_flush_lsn``, so the numbers at each confirmed LSN are saved
in the position file (row ``<position>/seq`` of ``in_sql_cdc``) *before* the slot is
advanced to it. At start the entry at or below the slot's LSN is the one to count
on from; the last :data:`KEEP` entries are kept, so a slot that moved back a little
(PostgreSQL restarted before its checkpoint) still finds its own. Before the
first entry the stream numbers from 1: no change was confirmed yet, so the stream
starts where it started before. With no entry at or below the slot's LSN (a slot
much further back) numbering starts again at 1, with a warning: an output takes
lower numbers as a new start, and cannot see a gap across that restart. A position
file of a version without numbers starts the same way, silently.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flbsql.cdc import format_lsn

if TYPE_CHECKING:
    import logging

    from flbsql.input.store import PositionStore

__all__ = ["KEEP", "SeqLog"]

KEEP = 32  # saved entries (one per confirm that moved a number)

Seqs = dict[str, int]


class SeqLog:
    """The saved numbers of one CDC position name (worker thread only)."""

    def __init__(self, store: PositionStore, position_name: str) -> None:
        """Read the saved entries; nothing is written before :meth:`save`."""
        self.store = store
        self.name = f"{position_name}/seq"
        saved = store.load_state(self.name) or {}
        self.entries: list[tuple[int, Seqs]] = [
            (int(lsn), {str(t): int(n) for t, n in seqs.items()})
            for lsn, seqs in saved.get("entries", ())
        ]
        self.last: Seqs = self.entries[-1][1] if self.entries else {}

    def at(self, confirmed: int, log: logging.Logger) -> Seqs:
        """The numbers the stream continues from when it restarts at ``confirmed``."""
        below = [seqs for lsn, seqs in self.entries if lsn <= confirmed]
        if below:
            return dict(below[-1])
        if self.entries:
            log.warning(
                "change numbers (seq) restart: the position file has none at or before the "
                "slot's LSN %s; an apply output cannot see a missing chunk across this restart",
                format_lsn(confirmed),
            )
        return {}

    def save(self, lsn: int, seqs: Seqs | None) -> None:
        """Record the numbers at ``lsn`` (before the slot moves there); a no-op if unchanged."""
        if seqs is None or seqs == self.last:
            return
        self.entries = [*self.entries, (lsn, dict(seqs))][-KEEP:]
        self.last = self.entries[-1][1]
        self.store.save_state(self.name, {"entries": [[lsn, s] for lsn, s in self.entries]})
