"""Raw Fluent Bit properties to a frozen, validated :class:`Config`.

The proxy ABI has no way to list an instance's properties: a plugin can only ask
for a key by name (``*_get_property``). So :func:`parse` asks for every key of the
option table, and then probes likely misspellings (``table_name``, ``dsn``,
``pool_max_lifetime``, a key of the other plugin kind, ...) so that a typo fails
Init with the right name instead of being silently ignored. ``flbsql check -c``
reads the config file itself and reports every unknown key.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any, Literal, overload

from flbsql.errors import ConfigError
from flbsql.options import MODES, OPTIONS, Option, options_for
from flbsql.options.config import Config, InputConfig, OutputConfig

__all__ = [
    "Config",
    "InputConfig",
    "OutputConfig",
    "PropertyGetter",
    "convert_value",
    "parse",
    "parse_duration",
    "parse_size",
]

PropertyGetter = Callable[[str], "str | None"]

_TRUE = {"on", "true", "yes", "1"}
_FALSE = {"off", "false", "no", "0"}
_DURATION = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(ms|s|m|h|d)?\s*$", re.IGNORECASE)
_SIZE = re.compile(r"^\s*([0-9]+)\s*([kmg]?)b?\s*$", re.IGNORECASE)
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_SIZE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}

# Names people reach for, mapped to ours.
_ALIASES = {
    "dsn": "url",
    "uri": "url",
    "database_url": "url",
    "connection_string": "url",
    "connection": "url",
    "conninfo": "url",
    "db_url": "url",
    "username": "user",
    "passwd": "password",
    "pass": "password",
    "table_name": "table",
    "schema_table": "table",
    "primary_key": "key",
    "keys": "key",
    "key_column": "key",
    "key_columns": "key",
    "tracking_key": "tracking_column",
    "update_column": "tracking_column",
    "time_key": "time_column",
    "timestamp_column": "time_column",
    "sslmode": "ssl_mode",
    "tls_mode": "ssl_mode",
    "sslrootcert": "ssl_ca",
    "batch_size": "batch_rows",
    "dlq_table": "dead_letter_table",
    "dead_letter": "dead_letter_table",
    "timezone": "time_zone",
    "tz": "time_zone",
    "interval": "poll_interval",
    "interval_sec": "poll_interval",
    "position_db": "db",
    "state_file": "db",
    "upsert_key": "unique_key",
    "idempotency_key": "unique_key",
}


def parse_duration(text: str) -> float:
    """'500ms', '5s', '2m', '1h', '1d' or plain seconds to seconds."""
    m = _DURATION.match(text)
    if not m:
        raise ValueError("expected a duration such as 500ms, 5s, 2m or 1h")
    return float(m.group(1)) * _DURATION_UNITS[(m.group(2) or "s").lower()]


def parse_size(text: str) -> int:
    """'4096', '64k', '8M', '1G' to bytes."""
    m = _SIZE.match(text)
    if not m:
        raise ValueError("expected a size such as 65536, 64k or 8M")
    return int(m.group(1)) * _SIZE_UNITS[m.group(2).lower()]


def convert_value(opt: Option, raw: str) -> Any:
    """One raw property value to its typed value; ValueError says why it is bad."""
    text = raw.strip()
    value: Any
    if opt.type == "str":
        value = text
    elif opt.type == "bool":
        low = text.lower()
        if low not in _TRUE | _FALSE:
            raise ValueError("expected on/off, true/false, yes/no")
        value = low in _TRUE
    elif opt.type == "int":
        value = int(text)
    elif opt.type == "float":
        value = float(text)
    elif opt.type == "duration":
        value = parse_duration(text)
    elif opt.type == "size":
        value = parse_size(text)
    elif opt.type == "list":
        value = tuple(p.strip() for p in text.split(",") if p.strip())
    elif opt.type == "choice":
        value = text.lower()
        if value not in opt.choices:
            raise ValueError("allowed: " + ", ".join(opt.choices))
    else:  # pragma: no cover - the table is checked by a test
        raise AssertionError(opt.type)
    if opt.minimum is not None and isinstance(value, (int, float)) and value < opt.minimum:
        raise ValueError(f"must be >= {opt.minimum:g}")
    return value


def _near_misses(kind: str) -> Iterator[tuple[str, str]]:
    """(misspelled key, what to use instead) pairs worth probing."""
    accepted = options_for(kind)
    for alias, real in _ALIASES.items():
        if real in accepted:
            yield alias, f"use '{real}'"
    for name in accepted:
        for variant in {
            name.replace(".", "_"),
            name.replace("_", "."),
            name.replace("_", "-"),
            name.replace(".", "-"),
        } - {name}:
            if variant not in accepted:
                yield variant, f"use '{name}'"
    other = "output" if kind == "input" else "input"
    for name in options_for(other):
        if name not in accepted:
            yield name, f"it is an option of the {other} plugin, not the {kind}"


@overload
def parse(
    kind: Literal["input"], get: PropertyGetter, *, probe_typos: bool = True
) -> InputConfig: ...
@overload
def parse(
    kind: Literal["output"], get: PropertyGetter, *, probe_typos: bool = True
) -> OutputConfig: ...
@overload
def parse(
    kind: str, get: PropertyGetter, *, probe_typos: bool = True
) -> InputConfig | OutputConfig: ...
def parse(
    kind: str, get: PropertyGetter, *, probe_typos: bool = True
) -> InputConfig | OutputConfig:
    """Read every option of ``kind`` through ``get`` and validate it.

    Raises:
        ConfigError: naming the first bad, misspelled or misplaced key.
    """
    accepted = options_for(kind)
    values: dict[str, Any] = {}
    explicit = set()
    for opt in OPTIONS:
        if opt.name not in accepted:
            continue
        raw = get(opt.name)
        if raw is None:
            values[opt.name] = opt.default
            continue
        try:
            values[opt.name] = convert_value(opt, raw)
        except ValueError as exc:
            shown = "***" if opt.secret else repr(raw)
            raise ConfigError(opt.name, f"invalid value {shown}: {exc}") from None
        explicit.add(opt.name)
    if probe_typos:
        for key, hint in _near_misses(kind):
            if get(key) is not None:
                raise ConfigError(key, f"unknown option for the {kind} plugin; {hint}")
    if kind == "input":
        _refuse_other_mode(values.get("mode", "poll"), explicit)
    cls = InputConfig if kind == "input" else OutputConfig
    fields = {accepted[name].attr: value for name, value in values.items()}
    return cls(explicit=frozenset(explicit), **fields)


def _refuse_other_mode(mode: str, explicit: set[str]) -> None:
    """An input option of the other ``mode`` would be ignored: refuse it by name."""
    for name in sorted(explicit):
        wanted = MODES.get(name)
        if wanted is not None and wanted != mode:
            raise ConfigError(
                name,
                f"only read in mode {wanted}, and this input has mode {mode}; remove it",
            )
