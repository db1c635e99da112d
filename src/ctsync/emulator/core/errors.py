"""Graph's wire errors, raised by services and turned into Graph's error envelope.

Codes and messages follow Microsoft's documentation (reference §7, §10); where the docs show
no code for a situation, the choice is listed in ``docs/emulator.md``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "GraphFault",
    "bad_request",
    "conflict",
    "forbidden",
    "method_not_allowed",
    "not_found",
    "not_implemented",
    "unauthorized",
    "unsupported_query",
]


class GraphFault(Exception):  # noqa: N818 - an answer to send, not a failure of ours
    """An error answer: HTTP status, Graph ``code``, message, optional ``details``."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        details: Sequence[Mapping[str, Any]] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.details = list(details)
        self.headers = dict(headers or {})
        super().__init__(f"{status} {code}: {message}")


def bad_request(message: str, code: str = "Request_BadRequest") -> GraphFault:
    return GraphFault(400, code, message)


def unsupported_query(message: str) -> GraphFault:
    return GraphFault(400, "Request_UnsupportedQuery", message)


def unauthorized(message: str) -> GraphFault:
    return GraphFault(401, "InvalidAuthenticationToken", message)


def forbidden(message: str = "Insufficient privileges to complete the operation.") -> GraphFault:
    return GraphFault(403, "Authorization_RequestDenied", message)


def not_found(
    message: str = "Resource not found.", code: str = "Request_ResourceNotFound"
) -> GraphFault:
    return GraphFault(404, code, message)


def conflict(message: str, *, details: Sequence[Mapping[str, Any]] = ()) -> GraphFault:
    return GraphFault(409, "Request_MultipleObjectsWithSameKeyValue", message, details=details)


def method_not_allowed(method: str, path: str) -> GraphFault:
    return GraphFault(
        405, "Request_BadRequest", f"The HTTP method '{method}' is not allowed on '{path}'."
    )


def not_implemented(method: str, path: str) -> GraphFault:
    return GraphFault(
        501,
        "NotImplemented",
        f"The ctsync emulator does not implement {method} {path}. "
        "See docs/emulator.md for the routes it serves.",
    )
