"""Secret references, their providers, and redaction.

Any secret option (``url``, ``user``, ``password``, ``ssl_key``, ``vault.token``,
``vault.role_id``, ``vault.secret_id``, ``vault.jwt``, ``oidc.client_secret``,
``oidc.private_key``) may hold a reference instead of the value:

``env:NAME``
    the environment variable ``NAME`` (missing or empty: an error).
``file:/path``
    the file's content, leading and trailing whitespace trimmed (Kubernetes and
    Docker secret mounts end with a newline).
``vault:<api path>#<field>``
    a field of a Vault/OpenBao KV secret, e.g. ``vault:secret/data/app#password``.
    The path is the HTTP API path after ``/v1/``, exactly as ``bao kv get
    -output-curl-string`` prints it. KV v2 paths therefore contain ``data/`` after
    the mount (``secret/data/app``) and KV v1 paths do not (``kv/app``); the version
    is not guessed from the name but from the answer: a response whose ``data`` holds
    both ``data`` and ``metadata`` is KV v2. ``vault:secret/data/app?version=3#password``
    reads one version of a KV v2 secret. Dynamic database credentials are not a
    reference (user and password must come from one lease): set ``vault.db_role``.
``oidc:`` and ``oidc:<audience>``
    an access token of the ``oidc.*`` client (the client-credentials grant,
    :mod:`flbsql.secrets.oidc`), for ``oidc.audience`` or the audience given; e.g.
    ``vault.jwt oidc:`` (Vault's ``jwt`` login) or ``password oidc:`` (a database or
    proxy that takes OAuth tokens). Cached and refreshed before it expires, and after
    its consumer refused it (:func:`invalidate`).
``literal:text``
    the text as is, for a value that really starts with ``env:``, ``file:``,
    ``vault:`` or ``oidc:``.

Anything else is a literal value. Every value resolved from a reference (and every
literal secret option) is registered with :func:`register`, so that :func:`redact`
and :class:`RedactingFilter` can scrub it from log lines and error texts.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from typing import Protocol, runtime_checkable

from flbsql.errors import SecretError

__all__ = [
    "SCHEMES",
    "RedactingFilter",
    "SecretProvider",
    "SecretRef",
    "invalidate",
    "is_reference",
    "parse_ref",
    "redact",
    "register",
    "resolve",
]

SCHEMES = ("env", "file", "vault", "oidc", "literal")
MASK = "***"
_MIN_REDACT = 4  # shorter values would mangle ordinary words in log lines

_known: set[str] = set()
_known_lock = threading.Lock()


@dataclasses.dataclass(frozen=True)
class SecretRef:
    """A parsed reference: ``scheme:target`` (``#field`` and ``?version=`` for vault)."""

    scheme: str
    target: str
    field: str | None = None
    version: int | None = None

    def __str__(self) -> str:
        """The reference as written (it names where the secret is, not the secret)."""
        text = f"{self.scheme}:{self.target}"
        if self.version is not None:
            text += f"?version={self.version}"
        if self.field:
            text += f"#{self.field}"
        return text


@runtime_checkable
class SecretProvider(Protocol):
    """Something that turns a reference of one scheme into a value."""

    scheme: str

    def get(self, ref: SecretRef) -> str:
        """The secret's value; raise :class:`~flbsql.errors.SecretError` when unavailable."""
        ...


def is_reference(value: object) -> bool:
    """True when ``value`` is ``env:``/``file:``/``vault:``/``oidc:``/``literal:`` + text."""
    return isinstance(value, str) and value.split(":", 1)[0] in SCHEMES and ":" in value


def parse_ref(value: str) -> SecretRef:
    """Parse a reference string (see the module docstring).

    Raises:
        SecretError: malformed reference (the message shows the reference, which is
            a location, never a value).
    """
    scheme, _, rest = value.partition(":")
    if scheme not in SCHEMES:
        raise SecretError(f"unknown secret scheme '{scheme}'; use one of {', '.join(SCHEMES)}")
    if scheme == "literal":
        return SecretRef("literal", rest)
    if scheme == "oidc":  # the target is an audience, and optional
        return SecretRef("oidc", rest.strip())
    if not rest.strip():
        raise SecretError(f"empty {scheme}: reference")
    if scheme != "vault":
        return SecretRef(scheme, rest.strip())
    path, sep, field = rest.partition("#")
    if not sep or not field:
        raise SecretError(f"vault reference '{value}' needs a field: vault:<path>#<field>")
    version = None
    if "?" in path:
        path, _, query = path.partition("?")
        key, _, num = query.partition("=")
        if key != "version" or not num.isdigit():
            raise SecretError(f"vault reference '{value}': only ?version=<n> is understood")
        version = int(num)
    path = path.strip().strip("/")
    if not path:
        raise SecretError(f"vault reference '{value}' has no path")
    return SecretRef("vault", path, field.strip(), version)


def register(value: str | None) -> None:
    """Remember a secret value so that :func:`redact` hides it from then on."""
    if value and len(value) >= _MIN_REDACT:
        with _known_lock:
            _known.add(value)


def redact(text: str) -> str:
    """``text`` with every registered secret value replaced by ``***``."""
    with _known_lock:
        values = sorted(_known, key=len, reverse=True)  # longest first: no partial leftovers
    for value in values:
        if value in text:
            text = text.replace(value, MASK)
    return text


class RedactingFilter(logging.Filter):
    """A logger filter that scrubs registered secrets from the message and traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Render the message once, scrub it, and keep the record."""
        try:
            message = record.getMessage()
        except Exception:
            message = str(record.msg)
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def resolve(
    value: str | None, providers: dict[str, SecretProvider] | None = None, *, hide: bool = True
) -> str | None:
    """The value of a secret option: references are resolved, literals pass through.

    Args:
        value: the option's text (``None`` stays ``None``).
        providers: extra providers by scheme (the Vault provider); ``env`` and
            ``file`` are always available.
        hide: register the value for redaction (False for URLs and user names,
            whose secret part the caller registers itself).

    Raises:
        SecretError: the reference is malformed, its scheme has no provider (``vault:``
            without ``vault.address``), or the provider cannot produce it.
    """
    if value is None:
        return None
    if not is_reference(value):
        if hide:
            register(value)
        return value
    ref = parse_ref(value)
    if ref.scheme == "literal":
        if hide:
            register(ref.target)
        return ref.target
    from flbsql.secrets.env import EnvProvider, FileProvider

    available: dict[str, SecretProvider] = {"env": EnvProvider(), "file": FileProvider()}
    available.update(providers or {})
    provider = available.get(ref.scheme)
    if provider is None:
        needs = "oidc.issuer" if ref.scheme == "oidc" else "vault.address"
        raise SecretError(f"'{ref}' needs the {ref.scheme} provider (set {needs})")
    result = provider.get(ref)
    if hide:
        register(result)
    return result


def invalidate(
    value: str | None, refused: str, providers: dict[str, SecretProvider] | None = None
) -> bool:
    """The consumer refused ``refused``, which reference ``value`` gave: drop it from caches.

    Returns True when a provider keeps such a cache (``oidc:``), so that resolving
    ``value`` again may give something new and a retry can help.
    """
    if value is None or not is_reference(value):
        return False
    ref = parse_ref(value)
    drop = getattr((providers or {}).get(ref.scheme), "invalidate", None)
    if drop is None:
        return False
    drop(ref, refused)
    return True
