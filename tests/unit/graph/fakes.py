"""A scripted stand-in for Microsoft Graph, served through ``httpx.MockTransport``.

It fakes the *server*: it answers the client's real HTTP requests with Graph's shapes (error
envelope with innerError ids, ``Retry-After``, ``@odata.nextLink``, ``$batch`` envelopes with
``dependsOn`` and 424), records what arrived and when (on the test's virtual clock), and never
looks inside the client.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import httpx

from ctsync.graph import GraphClient, Pacer, RetryPolicy, VirtualClock

GRAPH = "https://graph.microsoft.com"
V1 = f"{GRAPH}/v1.0"
TENANT = "11111111-1111-1111-1111-111111111111"
OTHER_TENANT = "22222222-2222-2222-2222-222222222222"


class FakeToken(NamedTuple):
    token: str
    expires_on: int


class FakeCredential:
    """A synchronous azure-core style credential handing out numbered tokens."""

    def __init__(self, clock: VirtualClock, *, lifetime: int = 3600) -> None:
        self.clock = clock
        self.lifetime = lifetime
        self.calls: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str) -> FakeToken:
        self.calls.append(scopes)
        expires = int(self.clock.wall().timestamp()) + self.lifetime
        return FakeToken(f"token-{len(self.calls)}", expires)


class AsyncFakeCredential(FakeCredential):
    async def get_token(self, *scopes: str) -> FakeToken:  # type: ignore[override]
        return super().get_token(*scopes)


@dataclass
class Reply:
    status: int = 200
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None


def error(
    status: int, code: str, message: str = "boom", *, headers: dict[str, str] | None = None
) -> Reply:
    return Reply(status, {"error": {"code": code, "message": message}}, dict(headers or {}))


def throttled(
    retry_after: str | None, *, status: int = 429, headers: dict[str, str] | None = None
) -> Reply:
    code = "TooManyRequests" if status == 429 else "ServiceUnavailable"
    reply = error(status, code, headers=headers)
    if retry_after is not None:
        reply.headers["Retry-After"] = retry_after
    return reply


@dataclass
class Seen:
    """One request as it reached the server (batch items too, with ``in_batch``)."""

    at: float
    method: str
    url: str
    path: str
    headers: dict[str, str]
    body: Any
    in_batch: bool = False
    request_id: str | None = None
    """The request-id the server answered with."""

    @property
    def token(self) -> str:
        return self.headers.get("authorization", "")


Handler = Callable[[Seen], Reply]


class FakeGraph:
    """Scripted answers by method and path (relative to /v1.0; an exact ``path?query`` wins)."""

    def __init__(self, clock: VirtualClock, *, latency: float = 0.0) -> None:
        self.clock = clock
        self.latency = latency
        self.routes: dict[tuple[str, str], list[Reply] | Handler] = {}
        self.requests: list[Seen] = []
        self.items: list[Seen] = []
        self.failures: dict[tuple[str, str], list[Exception]] = {}

    # -- scripting ------------------------------------------------------------------------

    def on(self, method: str, path: str, *replies: Reply | Handler) -> None:
        """Answer with ``replies`` in order; the last one repeats. A callable answers itself."""
        if len(replies) == 1 and callable(replies[0]):
            self.routes[(method, path)] = replies[0]
        else:
            self.routes[(method, path)] = [r for r in replies if isinstance(r, Reply)]

    def fail(self, method: str, path: str, *errors: Exception) -> None:
        """Raise these transport errors (one per request) before answering normally."""
        self.failures[(method, path)] = list(errors)

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self._handle)

    def seen(self, method: str | None = None, path: str | None = None) -> list[Seen]:
        return [
            s
            for s in self.requests
            if (method is None or s.method == method) and (path is None or s.path == path)
        ]

    # -- serving --------------------------------------------------------------------------

    async def _handle(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        parts = urlsplit(str(request.url))
        path = parts.path.removeprefix("/v1.0")
        if parts.query:
            path += f"?{parts.query}"
        seen = Seen(
            at=self.clock.monotonic(),
            method=request.method,
            url=str(request.url),
            path=path,
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
        )
        self.requests.append(seen)
        key = (seen.method, parts.path.removeprefix("/v1.0"))
        pending = self.failures.get(key)
        if pending:
            raise pending.pop(0)
        if self.latency:
            await self.clock.sleep(self.latency)
        if f"{parts.scheme}://{parts.netloc}" != GRAPH:
            # Somebody else's server: it happily takes the token and ends the paging.
            return self._respond(seen, Reply(200, {"value": [{"id": "stolen"}]}))
        if seen.method == "POST" and seen.path == "/$batch":
            return self._respond(seen, Reply(200, self._batch(seen)))
        return self._respond(seen, self._answer(seen))

    def _answer(self, seen: Seen) -> Reply:
        route = self.routes.get((seen.method, seen.path)) or self.routes.get(
            (seen.method, seen.path.split("?", 1)[0])
        )
        if route is None:
            return error(404, "Request_ResourceNotFound", f"no route for {seen.method} {seen.path}")
        if callable(route):
            return route(seen)
        return route.pop(0) if len(route) > 1 else route[0]

    def _respond(self, seen: Seen, reply: Reply) -> httpx.Response:
        request_id = seen.request_id = str(uuid.uuid4())
        crid = seen.headers.get("client-request-id", "")
        payload = reply.json
        if isinstance(payload, Mapping) and isinstance(payload.get("error"), Mapping):
            inner = {"request-id": request_id, "client-request-id": crid, "date": "2026-01-05"}
            payload = {"error": {**payload["error"], "innerError": inner}}
        headers = {"request-id": request_id, "client-request-id": crid, **reply.headers}
        if reply.raw is not None:
            return httpx.Response(reply.status, headers=headers, content=reply.raw)
        if payload is None:
            return httpx.Response(reply.status, headers=headers)
        return httpx.Response(reply.status, headers=headers, json=payload)

    def _batch(self, outer: Seen) -> dict[str, Any]:
        items = list(outer.body["requests"])
        assert len(items) <= 20, "Graph rejects a batch of more than 20 requests"
        status: dict[str, int] = {}
        responses: list[dict[str, Any]] = []
        remaining = list(items)
        while remaining:  # dependsOn order
            item = next(i for i in remaining if all(d in status for d in i.get("dependsOn", [])))
            remaining.remove(item)
            seen = Seen(
                at=outer.at,
                method=item["method"],
                url=item["url"],
                path=item["url"],
                headers={k.lower(): v for k, v in (item.get("headers") or {}).items()},
                body=item.get("body"),
                in_batch=True,
            )
            self.items.append(seen)
            if any(status[d] >= 400 for d in item.get("dependsOn", [])):
                reply = error(424, "FailedDependency", "a dependency failed")
            else:
                reply = self._answer(seen)
            status[item["id"]] = reply.status
            headers = dict(reply.headers)
            if reply.json is not None:
                headers.setdefault("Content-Type", "application/json")
            responses.append(
                {"id": item["id"], "status": reply.status, "headers": headers, "body": reply.json}
            )
        # Graph may answer in any order.
        return {"responses": list(reversed(responses))}


def make_client(
    graph: FakeGraph,
    *,
    clock: VirtualClock | None = None,
    credential: Any = None,
    pacer: Pacer | None = None,
    retry: RetryPolicy | None = None,
    tenant_id: str = TENANT,
) -> GraphClient:
    clock = clock or graph.clock
    return GraphClient(
        tenant_id=tenant_id,
        credential=credential or AsyncFakeCredential(clock),
        transport=graph.transport,
        clock=clock,
        pacer=pacer or Pacer(clock=clock),
        retry=retry or RetryPolicy(seed=7),
    )
