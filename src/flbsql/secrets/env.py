"""Environment and file secret providers; no dependencies."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from flbsql.errors import SecretError

if TYPE_CHECKING:
    from flbsql.secrets import SecretRef

__all__ = ["EnvProvider", "FileProvider"]

_MAX_FILE = 1 << 20  # a secret file larger than 1 MiB is certainly the wrong file


class EnvProvider:
    """``env:NAME``: an environment variable; missing or empty is an error."""

    scheme = "env"

    def get(self, ref: SecretRef) -> str:
        """The variable's value, as is (no trimming: the environment is exact)."""
        value = os.environ.get(ref.target)
        if not value:
            raise SecretError(f"environment variable {ref.target} is not set or empty")
        return value


class FileProvider:
    """``file:/path``: a file's content with surrounding whitespace trimmed.

    Secret mounts (Kubernetes, Docker) end the value with a newline; it is trimmed.
    The file is read on every call, so a rotated mount is picked up.
    """

    scheme = "file"

    def get(self, ref: SecretRef) -> str:
        """Read and trim; an empty file is an error."""
        try:
            with open(ref.target, "rb") as f:
                raw = f.read(_MAX_FILE + 1)
        except OSError as exc:
            raise SecretError(f"cannot read secret file {ref.target}: {exc.strerror}") from None
        if len(raw) > _MAX_FILE:
            raise SecretError(f"secret file {ref.target} is larger than 1 MiB")
        try:
            value = raw.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise SecretError(f"secret file {ref.target} is not UTF-8 text") from None
        if not value:
            raise SecretError(f"secret file {ref.target} is empty")
        return value
