"""``python -m flbsql`` is the ``flbsql`` command."""

from flbsql.cli import main

raise SystemExit(main())
