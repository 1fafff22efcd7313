"""``python -m bench output|input|cdc|replicate|all``: run benchmarks; ``all`` writes the report.

Each module has ``run(argv) -> list[result row]`` (see :func:`bench.common.result`)
and ``main(argv)``. ``all`` runs every module with its defaults and writes
``docs/benchmarks.md`` and ``docs/benchmarks.json``; exit status 1 when a target
is missed.
"""

from __future__ import annotations

import importlib
import json
import sys

NAMES = ("output", "input", "cdc", "replicate")


def main(argv: list[str]) -> int:
    """Dispatch."""
    if not argv or argv[0] not in (*NAMES, "all"):
        print(f"usage: python -m bench {{{'|'.join(NAMES)}|all}} [options]", file=sys.stderr)
        return 2
    if argv[0] != "all":
        module = importlib.import_module(f"bench.{argv[0]}")
        return int(module.main(argv[1:]) or 0)
    from bench import report

    rows = []
    for name in NAMES:
        module = importlib.import_module(f"bench.{name}")
        rows += module.run([])
        path = report.write(rows)  # after each part: a later failure keeps the earlier ones
    print(json.dumps(rows))
    print(f"wrote {path} and {path.with_suffix('.json')}")
    return 0 if all(r.get("met") is not False for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
