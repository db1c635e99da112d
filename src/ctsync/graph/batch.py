"""JSON batching types and planning (graph-limits §2, graph-cts-api §7).

A ``POST /$batch`` holds at most 20 sub-requests. Requests linked by ``dependsOn`` must travel
in the same batch, so the planner keeps each linked group together and packs whole groups.
:meth:`GraphClient.batch <ctsync.graph.client.GraphClient.batch>` sends the plan.
"""

from __future__ import annotations

import contextvars
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from ctsync.errors import GraphError

from ._envelope import error_code, graph_error

__all__ = ["MAX_BATCH", "BatchRequest", "BatchResult", "plan_batches", "raise_for_item"]

MAX_BATCH: Final = 20


@dataclass(frozen=True)
class BatchRequest:
    """One sub-request. ``url`` is relative to the version root (``/users/abc``)."""

    id: str
    method: str
    url: str
    body: Any = None
    headers: Mapping[str, str] | None = None
    depends_on: Sequence[str] = ()
    #: The context the client tells this item's write to its observers in (the audit trail
    #: reads which step writes from it); None: the caller's.
    context: contextvars.Context | None = field(default=None, compare=False, repr=False)

    def to_json(self, *, depends_on: Sequence[str] | None = None) -> dict[str, Any]:
        """The wire form; ``depends_on`` overrides the links (a re-batch drops finished ones)."""
        item: dict[str, Any] = {"id": self.id, "method": self.method.upper(), "url": self.url}
        headers = dict(self.headers or {})
        if self.body is not None:
            if not any(k.lower() == "content-type" for k in headers):
                headers["Content-Type"] = "application/json"
            item["body"] = self.body
        if headers:
            item["headers"] = headers
        links = list(self.depends_on if depends_on is None else depends_on)
        if links:
            item["dependsOn"] = links
        return item


@dataclass(frozen=True)
class BatchResult:
    """The final answer to one sub-request (errors included: the caller decides)."""

    request: BatchRequest
    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Any = None
    attempts: int = 1
    tenant: str | None = None
    client_request_id: str | None = None

    @property
    def id(self) -> str:
        return self.request.id

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 400

    @property
    def error_code(self) -> str | None:
        return None if self.ok else error_code(self.body)


def raise_for_item(result: BatchResult) -> BatchResult:
    """Raise the matching :class:`GraphError` if ``result`` is an error; else return it."""
    if result.ok:
        return result
    error: GraphError = graph_error(
        status=result.status,
        headers=result.headers,
        payload=result.body,
        tenant=result.tenant,
        method=result.request.method.upper(),
        path=result.request.url,
        client_request_id=result.client_request_id,
        attempts=result.attempts,
    )
    raise error


def plan_batches(
    requests: Sequence[BatchRequest], *, size: int = MAX_BATCH
) -> list[list[BatchRequest]]:
    """Split ``requests`` into batches of at most ``size``, keeping ``dependsOn`` groups whole.

    Raises ValueError for duplicate ids (Graph compares them case-insensitively), links to
    unknown ids, cycles, or a linked group larger than ``size``.
    """
    by_key: dict[str, BatchRequest] = {}
    for request in requests:
        key = request.id.casefold()
        if key in by_key:
            msg = f"batch request id {request.id!r} is used twice (ids are case-insensitive)"
            raise ValueError(msg)
        by_key[key] = request
    for request in requests:
        for dep in request.depends_on:
            if dep.casefold() not in by_key or dep.casefold() == request.id.casefold():
                msg = f"batch request {request.id!r} depends on unknown request {dep!r}"
                raise ValueError(msg)
    _check_acyclic(requests, by_key)

    # Union-find over dependsOn links: each root is one group that must share a batch.
    parent = {key: key for key in by_key}

    def find(key: str) -> str:
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    for request in requests:
        for dep in request.depends_on:
            parent[find(dep.casefold())] = find(request.id.casefold())

    groups: dict[str, list[BatchRequest]] = {}
    for request in requests:
        groups.setdefault(find(request.id.casefold()), []).append(request)

    batches: list[list[BatchRequest]] = []
    for group in groups.values():
        if len(group) > size:
            ids = ", ".join(r.id for r in group)
            msg = f"requests {ids} are linked by dependsOn and cannot fit one batch of {size}"
            raise ValueError(msg)
        for batch in batches:
            if len(batch) + len(group) <= size:
                batch.extend(group)
                break
        else:
            batches.append(list(group))
    return batches


def _check_acyclic(requests: Sequence[BatchRequest], by_key: Mapping[str, BatchRequest]) -> None:
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(key: str) -> None:
        state[key] = 1
        for dep in by_key[key].depends_on:
            dep_key = dep.casefold()
            if state.get(dep_key) == 1:
                msg = f"batch requests {by_key[key].id!r} and {dep!r} depend on each other"
                raise ValueError(msg)
            if dep_key not in state:
                visit(dep_key)
        state[key] = 2

    for request in requests:
        if request.id.casefold() not in state:
            visit(request.id.casefold())
