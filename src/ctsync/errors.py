"""Every error ctsync raises, rooted at :class:`CtsyncError`.

```
CtsyncError
├── ConfigError                 a config file or argument is wrong (carries file:line:col)
├── AuthenticationError         a credential could not produce a token
├── TransportError              the request never got an HTTP answer (DNS, TLS, timeout)
└── GraphError                  Microsoft Graph answered with an error
    ├── BadRequestError         400
    ├── UnauthorizedError       401
    ├── ForbiddenError          403
    ├── NotFoundError           404
    ├── ConflictError           409
    ├── ThrottledError          429 that outlived the retry budget
    └── ServerError             5xx that outlived the retry budget
```

A :class:`GraphError` carries the whole call: HTTP status, Graph ``code``, message,
``request-id``, ``client-request-id``, tenant, method and path. Never a token or a secret.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "AuthenticationError",
    "BadRequestError",
    "ConfigError",
    "ConflictError",
    "CtsyncError",
    "ForbiddenError",
    "GraphError",
    "NotFoundError",
    "ServerError",
    "ThrottledError",
    "TransportError",
    "UnauthorizedError",
    "graph_error_for_status",
]


class CtsyncError(Exception):
    """The root of every error ctsync raises on purpose."""


class ConfigError(CtsyncError):
    """A config file or a command-line argument is wrong.

    ``location`` is ``file:line:col`` (or just ``file``) when the problem is in a file.
    """

    def __init__(self, message: str, *, location: str | None = None) -> None:
        self.message = message
        self.location = location
        super().__init__(f"{location}: {message}" if location else message)


class AuthenticationError(CtsyncError):
    """A credential could not produce an access token for a tenant."""

    def __init__(self, message: str, *, tenant: str | None = None) -> None:
        self.tenant = tenant
        super().__init__(message)


class TransportError(CtsyncError):
    """The request got no HTTP answer: connection, TLS or timeout failure."""

    def __init__(
        self, message: str, *, tenant: str | None, method: str, path: str, sent: bool = True
    ) -> None:
        self.tenant = tenant
        self.method = method
        self.path = path
        #: False only when the request certainly never reached the server.
        self.sent = sent
        super().__init__(f"{method} {path} (tenant {tenant}): {message}")


class GraphError(CtsyncError):
    """Microsoft Graph answered with an error status."""

    def __init__(
        self,
        *,
        status: int,
        code: str,
        message: str,
        tenant: str | None,
        method: str,
        path: str,
        request_id: str | None = None,
        client_request_id: str | None = None,
        details: Sequence[Mapping[str, Any]] = (),
        retry_after: float | None = None,
        attempts: int = 1,
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.tenant = tenant
        self.method = method
        self.path = path
        self.request_id = request_id
        self.client_request_id = client_request_id
        self.details = list(details)
        self.retry_after = retry_after
        self.attempts = attempts
        super().__init__(self._describe())

    def _describe(self) -> str:
        ids = (
            f"request-id {self.request_id or '-'}, "
            f"client-request-id {self.client_request_id or '-'}"
        )
        tries = f", after {self.attempts} attempts" if self.attempts > 1 else ""
        return (
            f"{self.method} {self.path} in tenant {self.tenant or '-'} failed: "
            f"{self.status} {self.code}: {self.message} ({ids}{tries})"
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description, for ``--output json`` and reports."""
        return {
            "status": self.status,
            "code": self.code,
            "message": self.message,
            "tenant": self.tenant,
            "method": self.method,
            "path": self.path,
            "request_id": self.request_id,
            "client_request_id": self.client_request_id,
            "attempts": self.attempts,
        }


class BadRequestError(GraphError):
    """400: Graph rejected the request as malformed or invalid."""


class UnauthorizedError(GraphError):
    """401: the token was missing, invalid or expired."""


class ForbiddenError(GraphError):
    """403: the caller lacks a permission (``Authorization_RequestDenied``) or a licence."""


class NotFoundError(GraphError):
    """404: the object does not exist (or has not replicated yet)."""


class ConflictError(GraphError):
    """409: the object already exists (``Request_MultipleObjectsWithSameKeyValue``)."""


class ThrottledError(GraphError):
    """429: throttled, and the retry budget ran out before Graph let the call through."""


class ServerError(GraphError):
    """5xx: Graph failed, and the retry budget ran out."""


_BY_STATUS: dict[int, type[GraphError]] = {
    400: BadRequestError,
    401: UnauthorizedError,
    403: ForbiddenError,
    404: NotFoundError,
    409: ConflictError,
    429: ThrottledError,
}


def graph_error_for_status(status: int) -> type[GraphError]:
    """The most specific :class:`GraphError` subclass for an HTTP status."""
    if status >= 500:
        return ServerError
    return _BY_STATUS.get(status, GraphError)
