"""How many examples a property test draws: its own count, scaled for slow builds.

``make sanitize`` runs the C equivalence tests again under ASan/UBSan, where each
example costs about ten times as much; it sets ``FLBSQL_EXAMPLES_SCALE=0.25``. The
plain run (``make test``) draws every example.
"""

from __future__ import annotations

import os

SCALE = float(os.environ.get("FLBSQL_EXAMPLES_SCALE", "1"))


def examples(n: int) -> int:
    """``n`` times ``FLBSQL_EXAMPLES_SCALE``, at least 20."""
    return max(20, int(n * SCALE))
