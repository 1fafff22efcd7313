"""One configuration key: name, type, default, description, kinds, secrecy."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, TypeVar

__all__ = ["BOTH", "INPUT", "OUTPUT", "ConfigBase", "Option"]

INPUT = frozenset({"input"})
OUTPUT = frozenset({"output"})
BOTH = INPUT | OUTPUT


@dataclasses.dataclass(frozen=True)
class Option:
    """One configuration key.

    Attributes:
        name: the property name, case-insensitive in Fluent Bit.
        type: str, int, float, bool, duration (seconds as float; "500ms", "5s",
            "2m", "1h"), size (bytes; "64k", "4M"), list (comma-separated), choice.
        default: the value used when the key is absent (already typed).
        description: one or two sentences for the reference docs.
        kinds: "input", "output" or both.
        group: section of the reference docs.
        secret: the value may hold a credential: never logged, accepts references
            ``env:NAME``, ``file:/path`` and ``vault:<path>#<field>``.
        choices: allowed values for type "choice".
        minimum: lowest allowed value for numbers, durations and sizes.
    """

    name: str
    type: str
    default: Any
    description: str
    kinds: frozenset[str] = BOTH
    group: str = "connection"
    secret: bool = False
    choices: tuple[str, ...] = ()
    minimum: float | None = None

    @property
    def attr(self) -> str:
        """Python attribute name: dots become underscores."""
        return self.name.replace(".", "_")


_C = TypeVar("_C", bound="ConfigBase")


@dataclasses.dataclass(frozen=True, repr=False)
class ConfigBase:
    """What every typed configuration has besides its options.

    The classes with the options as typed fields (:mod:`flbsql.options.config`) are
    generated from the option table; :func:`flbsql.settings.parse` builds them.
    ``repr()`` never shows the value of a secret option.
    """

    KIND: ClassVar[str] = ""
    NAMES: ClassVar[dict[str, str]] = {}  # field -> option name
    SECRET: ClassVar[frozenset[str]] = frozenset()  # fields that hold secrets

    explicit: frozenset[str] = frozenset()
    """Option names given in the configuration (the others hold their defaults)."""

    @property
    def kind(self) -> str:
        """'input' or 'output'."""
        return self.KIND

    def is_set(self, name: str) -> bool:
        """True when option ``name`` was given in the configuration (not defaulted)."""
        return name in self.explicit

    def option(self, name: str) -> Any:
        """The value of option ``name``, for code that handles options by name."""
        for field, option in self.NAMES.items():
            if option == name:
                return getattr(self, field)
        raise KeyError(name)

    def replace(self: _C, **changes: Any) -> _C:
        """A copy with some fields changed; they count as given."""
        given = frozenset(self.NAMES[field] for field in changes)
        return dataclasses.replace(self, explicit=self.explicit | given, **changes)

    def __repr__(self) -> str:
        shown = []
        for field, name in self.NAMES.items():
            if name in self.explicit:
                value = "***" if field in self.SECRET else repr(getattr(self, field))
                shown.append(f"{name}={value}")
        return f"{type(self).__name__}({', '.join(shown)})"

    __str__ = __repr__
