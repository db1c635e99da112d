"""ctsync: Microsoft Entra ID cross-tenant synchronization as code."""

from __future__ import annotations

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
