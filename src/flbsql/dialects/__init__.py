"""Dialect registry: name -> :class:`~flbsql.dialects.base.Dialect`, imported lazily.

Only the modules in this package (and :mod:`flbsql.cdc`) import a database driver,
and each does so inside ``connect()``: a missing driver fails with
:class:`~flbsql.errors.MissingDriverError` naming the pip extra, and only for the
dialect that is actually configured.
"""

from __future__ import annotations

import importlib
from functools import cache
from typing import Any

from flbsql.dialects.base import Capabilities, Column, Dialect
from flbsql.errors import ConfigError, MissingDriverError

__all__ = ["Capabilities", "Column", "Dialect", "get_dialect", "import_driver"]

_MODULES = {
    "postgresql": "flbsql.dialects.postgresql",
    "mysql": "flbsql.dialects.mysql",
    "oracle": "flbsql.dialects.oracle",
    "mssql": "flbsql.dialects.mssql",
    "sqlite": "flbsql.dialects.sqlite",
}


@cache
def get_dialect(name: str) -> Dialect:
    """The dialect instance for a URL scheme family (see :mod:`flbsql.conn.url`)."""
    try:
        module = importlib.import_module(_MODULES[name])
    except KeyError:
        raise ConfigError("url", f"no dialect '{name}'") from None
    dialect: Dialect = module.DIALECT
    return dialect


def import_driver(dialect: str, module: str, extra: str) -> Any:
    """Import a driver module or raise the error that names the pip extra."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDriverError(dialect, module, extra) from exc
