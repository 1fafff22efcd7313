"""``flbsql check``: everything wrong with the sql sections of a Fluent Bit config.

Unlike the plugin at Init (which can only ask for keys it knows, ABI doc section 5),
the checker reads the file, so it reports every unknown key, with a suggestion.
It also tries each database connection, with the password redacted.
"""

from __future__ import annotations

import difflib
import logging
import os
import pathlib

from flbsql import fbconfig
from flbsql.config import parse
from flbsql.errors import FlbSqlError
from flbsql.options import CONSUMED_BY_FLUENT_BIT, options_for

__all__ = ["check_file"]

_FB_PREFIXES = ("net.", "tls.", "storage.", "thread.ring_buffer.", "rate_gate", "oauth2",
                "_debug.", "processors")


def _unknown_keys(section: fbconfig.Section, kind: str) -> list[str]:
    known = options_for(kind)
    problems: list[str] = []
    for key, _ in section.props:
        low = key.lower()
        if low in known or low in CONSUMED_BY_FLUENT_BIT or low.startswith(_FB_PREFIXES):
            continue
        hint = difflib.get_close_matches(low, list(known), n=1)
        problems.append(f"unknown key '{key}'" + (f" (did you mean '{hint[0]}'?)" if hint
                                                   else ""))
    return problems


def check_file(path: str | os.PathLike[str], connect: bool = True) -> list[str]:
    """Problems found in the config, one line each (empty: all good)."""
    try:
        sections = fbconfig.load(path)
    except (OSError, ValueError) as exc:
        return [f"{path}: cannot read: {exc}"]
    problems: list[str] = []
    for lib in fbconfig.plugin_paths(sections, pathlib.Path(path).resolve().parent):
        if not os.path.exists(lib):
            problems.append(f"{path}: plugin library {lib} does not exist")
    for section in sections:
        if section.kind not in ("input", "output") or section.name != "sql":
            continue
        where = f"{section.origin} [{section.kind.upper()}] sql"
        problems += [f"{where}: {p}" for p in _unknown_keys(section, section.kind)]
        values = {k.lower(): v for k, v in reversed(section.props) if v != ""}
        try:
            cfg = parse(section.kind, values.get, probe_typos=False)
        except FlbSqlError as exc:
            problems.append(f"{where}: {exc}")
            continue
        if connect:
            problems += [f"{where}: {p}" for p in _try_connect(cfg)]
    return problems


def _try_connect(cfg: object) -> list[str]:
    from flbsql.connect import open_pool

    log = logging.getLogger("flbsql.check")
    try:
        pool = open_pool(cfg, log)  # type: ignore[arg-type]
        try:
            with pool.connection() as conn:
                pool.dialect.ping(conn)
        finally:
            pool.close()
    except FlbSqlError as exc:
        return [f"cannot connect: {exc}"]
    except Exception as exc:
        return [f"cannot connect: {type(exc).__name__}: {exc}"]
    return []
