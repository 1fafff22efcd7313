"""What runs outside Fluent Bit: the ``flbsql`` command and the generators.

- :mod:`~flbsql.tools.cli`: ``flbsql paths | check | demo``;
- :mod:`~flbsql.tools.check`: every problem of the ``sql`` sections of a config file;
- :mod:`~flbsql.tools.fbconfig`: Fluent Bit's classic and YAML config formats;
- :mod:`~flbsql.tools.docgen` and :mod:`~flbsql.tools.codegen`: the reference docs and
  the typed config classes, generated from the option table.
"""
