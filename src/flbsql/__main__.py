"""``python -m flbsql`` is the ``flbsql`` command."""

from flbsql.tools.cli import main

raise SystemExit(main())
