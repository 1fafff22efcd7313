"""``python -m bench output|input|cdc|all``: dispatch to the benchmark modules."""

from __future__ import annotations

import importlib
import sys

NAMES = ("output", "input", "cdc")


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in (*NAMES, "all"):
        print(f"usage: python -m bench {{{'|'.join(NAMES)}|all}} [options]", file=sys.stderr)
        return 2
    names = NAMES if argv[0] == "all" else (argv[0],)
    rc = 0
    for name in names:
        try:
            module = importlib.import_module(f"bench.{name}")
        except ModuleNotFoundError as exc:
            print(f"bench {name}: not available ({exc})", file=sys.stderr)
            rc = rc or 1
            continue
        rc = module.main(argv[1:]) or rc
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
