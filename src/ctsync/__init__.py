"""ctsync: Microsoft Entra ID cross-tenant synchronization as code."""

from __future__ import annotations

import sys

from ctsync._version import __version__
from ctsync.errors import (
    AuthenticationError,
    BadRequestError,
    ConfigError,
    ConflictError,
    CtsyncError,
    ForbiddenError,
    GraphError,
    NotFoundError,
    ServerError,
    ThrottledError,
    TransportError,
    UnauthorizedError,
)

# httpx imports its command-line client (click, rich, pygments: ~50 ms of every ctsync start)
# to offer ``httpx.main``, which ctsync never calls. With that one module refused, httpx binds a
# stub ``main`` instead (its own fallback); everything else of httpx is untouched.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]

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
    "__version__",
]
