"""``flbsql check``: everything wrong with the sql sections of a Fluent Bit config.

Unlike the plugin at Init (which can only ask for keys it knows, docs/fluent-bit-abi.md §5),
the checker reads the file, so it reports every unknown key, with a suggestion, every
bad value (not only the first), missing required options, malformed secret references,
and ``${VAR}`` references to unset environment variables (Fluent Bit expands those to
an empty value with only a warning). It also logs in to the identity provider when
``oidc.*`` is set (one token request, the one line of its refusal otherwise) and tries
each database connection, with the password redacted.
"""

from __future__ import annotations

import difflib
import logging
import os
import pathlib
import re

from flbsql.errors import FlbSqlError
from flbsql.options import (
    CONSUMED_BY_FLUENT_BIT,
    default_workers,
    default_workers_note,
    options_for,
)
from flbsql.settings import InputConfig, OutputConfig, convert_value, parse
from flbsql.tools import fbconfig

__all__ = ["check_file", "validate_as_init"]

_FB_PREFIXES = (
    "net.",
    "tls.",
    "storage.",
    "thread.ring_buffer.",
    "rate_gate",
    "oauth2",
    "_debug.",
    "processors",
)


def _unknown_keys(section: fbconfig.Section, kind: str) -> list[str]:
    known = options_for(kind)
    problems: list[str] = []
    for key, _ in section.props:
        low = key.lower()
        if low in known or low in CONSUMED_BY_FLUENT_BIT or low.startswith(_FB_PREFIXES):
            continue
        hint = difflib.get_close_matches(low, list(known), n=1)
        problems.append(f"unknown key '{key}'" + (f" (did you mean '{hint[0]}'?)" if hint else ""))
    return problems


def check_file(
    path: str | os.PathLike[str], connect: bool = True, notes: list[str] | None = None
) -> list[str]:
    """Problems found in the config, one line each (empty: all good).

    ``notes`` receives what is worth knowing but not wrong (an output's bulk path).
    """
    try:
        sections = fbconfig.load(path)
    except (OSError, ValueError) as exc:
        return [f"{path}: cannot read: {exc}"]
    problems: list[str] = [f"{path}: {p}" for p in _unset_variables(path)]
    problems += [
        f"{path}: plugin library {lib} does not exist"
        for lib in fbconfig.plugin_paths(sections, pathlib.Path(path).resolve().parent)
        if not os.path.exists(lib)
    ]
    for section in sections:
        if section.kind not in ("input", "output") or section.name != "sql":
            continue
        where = f"{section.origin} [{section.kind.upper()}] sql"
        problems += [f"{where}: {p}" for p in _unknown_keys(section, section.kind)]
        values = {k.lower(): v for k, v in reversed(section.props) if v != ""}
        bad = _bad_values(section.kind, values) + _missing(section.kind, values)
        problems += [f"{where}: {p}" for p in bad]
        if bad:
            continue
        try:
            cfg = parse(section.kind, values.get, probe_typos=False)
            validate_as_init(cfg)
        except FlbSqlError as exc:
            problems.append(f"{where}: {exc}")
            continue
        if notes is not None and isinstance(cfg, OutputConfig) and "workers" not in values:
            notes.append(f"{where}: {default_workers_note(_writers(cfg))}")
        if connect:
            login = _try_oidc(cfg)
            found: list[str] = []
            problems += [f"{where}: {p}" for p in login or _try_connect(cfg, found)]
            if notes is not None:
                notes += [f"{where}: {n}" for n in found]
    return problems


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_SET = re.compile(r"^\s*@SET\s+([A-Za-z_][A-Za-z0-9_]*)\s*=", re.IGNORECASE | re.MULTILINE)


def _unset_variables(path: str | os.PathLike[str]) -> list[str]:
    """``${NAME}`` used in the file (comments aside) but set neither by @SET nor in env."""
    text = pathlib.Path(path).read_text()
    defined = set(_SET.findall(text))
    used = []
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue
        used += [n for n in _VAR.findall(line) if n not in used]
    return [
        f"environment variable {name} is not set (Fluent Bit would use an empty value)"
        for name in used
        if name not in defined and name not in os.environ
    ]


def _bad_values(kind: str, values: dict[str, str]) -> list[str]:
    """Every option whose value does not convert, each with the reason."""
    from flbsql.secrets import is_reference, parse_ref

    problems = []
    for name, opt in options_for(kind).items():
        raw = values.get(name)
        if raw is None:
            continue
        shown = "***" if opt.secret else repr(raw)
        try:
            convert_value(opt, raw)
            if opt.secret and is_reference(raw.strip()):
                parse_ref(raw.strip())
        except (ValueError, FlbSqlError) as exc:
            problems.append(f"option '{name}': invalid value {shown}: {exc}")
    return problems


def _missing(kind: str, values: dict[str, str]) -> list[str]:
    """Options a section cannot run without (the rules the plugins apply at Init)."""
    problems = []
    if "url" not in values:
        problems.append("option 'url': required (is its ${VARIABLE} set?)")
    if kind == "output" and "table" not in values and values.get("apply", "off") == "off":
        problems.append("option 'table': required")
    if kind == "input" and values.get("mode", "poll").lower() == "cdc":
        if "tables" not in values:
            problems.append("option 'tables': required with mode cdc")
    elif kind == "input":
        if sum(name in values for name in ("table", "tables", "query")) != 1:
            problems.append("option 'table': set exactly one of `table`, `tables` or `query`")
        if "query" in values and "{position}" not in values["query"]:
            problems.append("option 'query': must contain {position}")
    return problems


def validate_as_init(cfg: InputConfig | OutputConfig) -> None:
    """Run the validation the plugin runs at Init, with the same functions, offline.

    Raises:
        FlbSqlError: what Init would fail with (a ConfigError names the option).
    """
    log = logging.getLogger("flbsql.check")
    if isinstance(cfg, OutputConfig):
        from flbsql.conn.connect import open_pool
        from flbsql.output.choose import open_writer

        pool = open_pool(cfg, log)  # lazy: nothing connects
        try:
            open_writer(cfg, pool, log)
        finally:
            pool.close()
    elif cfg.mode == "cdc":
        from flbsql.cdc.worker import validate as validate_cdc

        validate_cdc(cfg)
    else:
        from flbsql.conn.url import parse_url
        from flbsql.dialects import get_dialect
        from flbsql.input.spec import validate as validate_poll

        validate_poll(cfg, get_dialect(parse_url(cfg.url or "").dialect))


def _writers(cfg: OutputConfig) -> int:
    """The flush threads the output sets where no `workers` is (plugin/output.py)."""
    from flbsql.conn.url import parse_url
    from flbsql.dialects import get_dialect

    return default_workers(cfg.apply, get_dialect(parse_url(cfg.url or "").dialect).caps.writers)


def _try_oidc(cfg: InputConfig | OutputConfig) -> list[str]:
    """Ask the identity provider for a token, as the plugin would at its first connect."""
    if not cfg.oidc_issuer:
        return []
    from flbsql.conn.connect import SecretResolver

    try:
        SecretResolver(cfg, logging.getLogger("flbsql.check")).oidc_client().token()
    except FlbSqlError as exc:
        return [f"oidc login: {exc}"]
    return []


def _try_connect(cfg: object, notes: list[str]) -> list[str]:
    from flbsql.conn.connect import open_pool

    log = logging.getLogger("flbsql.check")
    try:
        pool = open_pool(cfg, log)  # type: ignore[arg-type]
        try:
            with pool.connection() as conn:
                pool.dialect.ping(conn)
                if isinstance(cfg, OutputConfig):
                    path, slower = pool.dialect.bulk_path(conn)
                    if cfg.bulk == "insert":
                        path, slower = "executemany (bulk insert)", None
                    notes.append(f"bulk path: {path}" + (f" ({slower})" if slower else ""))
        finally:
            pool.close()
    except FlbSqlError as exc:
        return [f"cannot connect: {exc}"]
    except Exception as exc:
        return [f"cannot connect: {type(exc).__name__}: {exc}"]
    return []
