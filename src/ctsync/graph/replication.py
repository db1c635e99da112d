"""Waiting out Entra's replication: a just-created object can answer 404 for a while (graph-limits
§5; Microsoft: a new configuration "can take up to 15 seconds" to show)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from ctsync.errors import CtsyncError, NotFoundError
from ctsync.graph.client import GraphClient

__all__ = ["until_readable"]

T = TypeVar("T")


async def until_readable(
    client: GraphClient, call: Callable[[], Awaitable[T]], what: str, *, timeout: float
) -> T:
    """``call()``, again while it answers 404, backing off 1, 2, 4 … 30 s on the client's clock;
    :class:`CtsyncError` naming ``what`` once ``timeout`` seconds would pass."""
    deadline = client.clock.monotonic() + timeout
    wait = 1.0
    while True:
        try:
            return await call()
        except NotFoundError:
            if client.clock.monotonic() + wait > deadline:
                msg = f"{what} was still not readable after {timeout:.0f} s"
                raise CtsyncError(msg) from None
            await client.clock.sleep(wait)
            wait = min(wait * 2, 30.0)
