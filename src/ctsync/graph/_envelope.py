"""Reading Graph's JSON bodies and its error envelope.

```
{"error": {"code": "...", "message": "...",
           "innerError": {"request-id": "...", "client-request-id": "...", "date": "..."},
           "details": [{"code": "...", "message": "...", "target": "..."}]}}
```
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ctsync.errors import GraphError, graph_error_for_status

__all__ = ["error_code", "graph_error", "parse_json"]

_MAX_TEXT = 300


def parse_json(body: bytes) -> Any:
    """The decoded JSON body, or None for an empty or non-JSON body."""
    if not body or not body.strip():
        return None
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None


def _error_object(payload: Any) -> Mapping[str, Any]:
    if isinstance(payload, Mapping):
        error = payload.get("error")
        if isinstance(error, Mapping):
            return error
    return {}


def _inner(error: Mapping[str, Any]) -> Mapping[str, Any]:
    for key in ("innerError", "innererror", "InnerError"):
        inner = error.get(key)
        if isinstance(inner, Mapping):
            return inner
    return {}


def error_code(payload: Any) -> str | None:
    """The Graph ``error.code`` of a decoded body, if any."""
    code = _error_object(payload).get("code")
    return str(code) if code else None


def graph_error(
    *,
    status: int,
    headers: Mapping[str, str],
    payload: Any,
    raw: bytes = b"",
    tenant: str | None,
    method: str,
    path: str,
    client_request_id: str | None,
    attempts: int = 1,
    retry_after: float | None = None,
) -> GraphError:
    """The most specific :class:`GraphError` for an error answer (JSON envelope or not)."""
    error = _error_object(payload)
    inner = _inner(error)
    code = str(error.get("code") or f"HTTP{status}")
    message = error.get("message")
    if not isinstance(message, str) or not message:
        text = raw.decode("utf-8", "replace").strip() if raw else ""
        message = text[:_MAX_TEXT] if text else "Graph returned an error without a Graph error body"
    details = error.get("details")
    lowered = {k.lower(): v for k, v in headers.items()}
    cls = graph_error_for_status(status)
    return cls(
        status=status,
        code=code,
        message=message,
        tenant=tenant,
        method=method,
        path=path,
        request_id=_str(inner.get("request-id")) or lowered.get("request-id"),
        client_request_id=_str(inner.get("client-request-id"))
        or lowered.get("client-request-id")
        or client_request_id,
        details=[d for d in details if isinstance(d, Mapping)] if isinstance(details, list) else (),
        retry_after=retry_after,
        attempts=attempts,
    )


def _str(value: Any) -> str | None:
    return str(value) if value else None
