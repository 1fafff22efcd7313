"""PostgreSQL change data capture (``mode cdc``): snapshot, then the change stream.

One record format serves snapshot rows and changes (``docs/cdc.md``). The body is::

    {"op": "r" | "c" | "u" | "d" | "t",   # read (snapshot), create, update, delete, truncate
     "table": "schema.table",
     "lsn": "0/16B3748",                  # commit LSN of the transaction (snapshot: WAL
                                          # insert position when the chunk was read)
     "xid": 1234 | None,                  # transaction id (None for snapshot rows)
     "commit_time": "2024-...+00:00" | None,
     "snapshot": bool,                    # True for rows read by the initial snapshot
     "overlap": bool,                     # a change that may already be in the snapshot
     "pos": 0,                            # position in the transaction (snapshot: row no.)
     "seq": 1,                            # the table's change number (None: snapshot)
     "before": {...} | None,              # old row (FULL) or old key (DEFAULT) when sent
     "after": {...} | None}               # new row (None for delete and truncate)

``(lsn, pos)`` identifies a change: a change delivered twice (after a crash) has the
same pair. Modules: :mod:`.types` (text -> value by type OID), :mod:`.pgoutput`
(message decoder), :mod:`.postgresql` (slot, publication, snapshot, read/advance,
health, heartbeat; the only module that imports psycopg), :mod:`.record` (the
record encoder), :mod:`.snapshot` and :mod:`.stream` (the two phases),
:mod:`.worker` (the background thread that runs them; :mod:`.health` reports
the slot) and :mod:`.source` (the input's batch source, ``mode cdc``). The CDC
state is kept in the input's position file
(:class:`~flbsql.input.store.PositionStore`).
"""

from __future__ import annotations

from typing import Any

from flbsql.errors import TerminalError

__all__ = [
    "OPS",
    "OP_DELETE",
    "OP_INSERT",
    "OP_READ",
    "OP_TRUNCATE",
    "OP_UPDATE",
    "CdcState",
    "SlotLostError",
    "format_lsn",
    "parse_lsn",
]

OP_READ = "r"
OP_INSERT = "c"
OP_UPDATE = "u"
OP_DELETE = "d"
OP_TRUNCATE = "t"
OPS = {
    OP_READ: "read",
    OP_INSERT: "insert",
    OP_UPDATE: "update",
    OP_DELETE: "delete",
    OP_TRUNCATE: "truncate",
}


#: The CDC position file's record of what PostgreSQL cannot keep: how far the initial
#: snapshot got, when it ended (its LSN marks the overlap with the stream) and that the
#: stream started, so a slot that disappears later is detected as a loss instead of
#: being recreated. The stream position itself is the slot's ``confirmed_flush_lsn``.
#: Keys: phase ("snapshot" | "stream"), slot, done (list of tables), table, key (list of
#: text or None), rows (int), snapshot_end_lsn (int | None), slot_created_lsn (int).
CdcState = dict[str, Any]


class SlotLostError(TerminalError):
    """The replication slot is gone or ``lost``: changes were lost; never recreated silently."""


def format_lsn(lsn: int) -> str:
    """64-bit LSN -> PostgreSQL's ``XXX/XXXXXXXX`` text."""
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def parse_lsn(text: str) -> int:
    """``16/B374D848`` -> 64-bit integer."""
    hi, lo = text.split("/")
    return (int(hi, 16) << 32) | int(lo, 16)
