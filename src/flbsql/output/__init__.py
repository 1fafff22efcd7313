"""The output: flush chunks to rows in one transaction per flush.

- :mod:`~flbsql.output.writer`: one flush = decode, map, write in batches, commit;
- :mod:`~flbsql.output.mapping`: a record to a row (``columns``, JSON overflow, tag, time);
- :mod:`~flbsql.output.convert`: one value to what the driver binds (JSON, time, types);
- :mod:`~flbsql.output.batching`: batches sized by the dialect, and ``isolate`` to find
  the rows a database rejects;
- :mod:`~flbsql.output.deadletter`: where rejected records go;
- :mod:`~flbsql.output.tables`: create the table, add missing columns, read its types;
- :mod:`~flbsql.output.routing`, :mod:`~flbsql.output.routed`: a table per record;
- :mod:`~flbsql.output.apply` (with :mod:`~flbsql.output.changes`, :mod:`~flbsql.output.plan`,
  :mod:`~flbsql.output.targets`): apply mode; :mod:`~flbsql.output.order` keeps each
  table's changes in order (:mod:`~flbsql.output.positions` against replays,
  :mod:`~flbsql.output.parked` for changes that came before older ones);
- :mod:`~flbsql.output.choose`: which of the writers an ``[OUTPUT]`` gets.
"""
