"""Fluent Bit's record format, both ways (docs/fluent-bit-abi.md §10).

- :mod:`~flbsql.events.codec`: EventTime and the v2 event header, the one place that
  reads and writes them;
- :mod:`~flbsql.events.decode`: a flush chunk to ``(sec, nsec, body, index)`` tuples, fast;
- :mod:`~flbsql.events.chunk`: the careful decoder behind it, which turns every entry
  that is not an event into a :class:`~flbsql.events.chunk.BadEntry` with its bytes.

Nothing here knows about databases.
"""
