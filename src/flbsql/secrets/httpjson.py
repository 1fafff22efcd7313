"""JSON over HTTP(S) with the standard library, for the identity provider's endpoints.

One request helper: a JSON answer with its status (4xx included, since OAuth errors
are JSON bodies), and a short retry of what retrying can cure (no connection, a
timeout, 429 and 5xx) before :class:`UnreachableError` is raised.
"""

from __future__ import annotations

import json
import ssl
import time
import urllib.error
import urllib.request
from typing import Any

__all__ = ["RETRY_DELAYS", "UnreachableError", "request_json"]

RETRY_DELAYS = (0.5, 1.0)  # two quick retries, then the caller's next use
_TRANSIENT_STATUS = {429, 500, 502, 503, 504}


class UnreachableError(Exception):
    """No usable answer after the retries; the text says why (no URL, no secret)."""


def request_json(
    url: str,
    data: bytes | None,
    headers: dict[str, str],
    timeout: float,
    context: ssl.SSLContext,
) -> tuple[int, dict[str, Any]]:
    """POST ``data`` (GET when None); the status and the JSON object answered ({} if none).

    Raises:
        UnreachableError: no connection, a timeout, or 429/5xx, three times in a row.
    """
    reason = ""
    for delay in (*RETRY_DELAYS, None):
        request = urllib.request.Request(url, data=data, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout, context=context) as resp:
                return resp.status, _json(resp.read())
        except urllib.error.HTTPError as exc:
            if exc.code not in _TRANSIENT_STATUS:
                return exc.code, _json(exc.read())
            reason = f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError) as exc:
            why = getattr(exc, "reason", exc)
            reason = (why.strerror or str(why)) if isinstance(why, OSError) else str(why)
        if delay is not None:
            time.sleep(delay)
    raise UnreachableError(reason[:200])


def _json(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return {}
    return value if isinstance(value, dict) else {}
