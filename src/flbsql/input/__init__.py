"""The input: rows of a table (or a query) to Fluent Bit events, with a durable position.

- :mod:`~flbsql.input.source`: what the input plugin asks of a source (``BatchSource``);
- :mod:`~flbsql.input.handoff`: the bounded queue between a source's reading thread and
  the 1 s collect callback (both modes: poll here, CDC in :mod:`flbsql.cdc`);
- poll mode: :mod:`~flbsql.input.poll` wires :mod:`~flbsql.input.spec` (what is read:
  one table, many (:mod:`~flbsql.input.tables`), a query; a shard of it,
  :mod:`~flbsql.input.shard`), :mod:`~flbsql.input.fetch` (the reading thread, one for
  every table), :mod:`~flbsql.input.horizon` (never
  past a late commit), :mod:`~flbsql.input.page` and :mod:`~flbsql.input.keyset` (one
  page), :mod:`~flbsql.input.tracker` (what Fluent Bit took) and
  :mod:`~flbsql.input.progress` (log lines and lag);
- :mod:`~flbsql.input.encoding`: database values to msgpack events;
- :mod:`~flbsql.input.position` and :mod:`~flbsql.input.store`: the position and the
  SQLite file it is kept in (poll and CDC), the way in_tail keeps its offsets.
"""
