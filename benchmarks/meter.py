"""Counting what crosses the wire: a transport wrapper around the in-process emulator.

The client's own counters say what it *sent*; this wrapper says what each tenant was *charged*:
HTTP requests, ``$batch`` sub-requests, writes (top-level and inside batches), the resource
units Graph reported (``x-ms-resource-unit``) and 429s, per tenant (read from the token's
``tid``). The floor model needs writes and RU per scope; the report needs the rest.
"""

from __future__ import annotations

import base64
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx

from ctsync.emulator import EmulatorTransport

__all__ = ["Meter", "MeteredTransport", "TenantMeter", "operation"]

_WRITES = frozenset({"POST", "PATCH", "PUT", "DELETE"})
_COUNTS = ("http", "batches", "batch_items", "calls", "writes", "reads", "ru", "throttled")
_ID = re.compile(
    r"^(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[A-Za-z0-9]+\.[^/]+)$",
    re.IGNORECASE,
)


def operation(method: str, url: str) -> str:
    """``PATCH /servicePrincipals/{id}``: the call's shape, ids and query left out."""
    path = urlsplit(url).path
    if path.startswith("/v1.0"):
        path = path[len("/v1.0") :]
    parts = ["{id}" if _ID.match(unquote(p)) else p for p in path.split("/")]
    return f"{method.upper()} {'/'.join(parts)}"


@dataclass
class TenantMeter:
    http: int = 0
    batches: int = 0
    batch_items: int = 0
    #: Calls the tenant answered without a 429 (top-level non-batch calls and batch items).
    calls: int = 0
    #: Writes the tenant accepted (answered anything but 429): what its write bucket paid.
    writes: int = 0
    reads: int = 0
    ru: int = 0
    throttled: int = 0
    #: Accepted calls by ``METHOD /path`` with ids replaced by ``{id}`` (batch items included).
    ops: Counter[str] = field(default_factory=Counter)

    def add(self, other: TenantMeter) -> None:
        for name in _COUNTS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.ops.update(other.ops)

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in _COUNTS}


@dataclass
class Meter:
    tenants: dict[str, TenantMeter] = field(default_factory=dict)
    statuses: Counter[int] = field(default_factory=Counter)

    def tenant(self, tenant_id: str) -> TenantMeter:
        return self.tenants.setdefault(tenant_id.lower(), TenantMeter())

    def total(self, exclude: str | None = None) -> TenantMeter:
        out = TenantMeter()
        for tid, m in self.tenants.items():
            if tid != (exclude or "").lower():
                out.add(m)
        return out

    def reset(self) -> None:
        self.tenants.clear()
        self.statuses.clear()


def _tenant_of(request: httpx.Request) -> str:
    auth = request.headers.get("authorization", "")
    token = auth.partition(" ")[2]
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return str(claims.get("tid", "")).lower()
    except (IndexError, ValueError):
        return ""


def _ru(headers: Any) -> int:
    try:
        return int(headers.get("x-ms-resource-unit") or 0)
    except (TypeError, ValueError):
        return 0


class MeteredTransport(httpx.AsyncBaseTransport):
    """Delegates to an :class:`EmulatorTransport` and counts per tenant into ``meter``."""

    def __init__(self, inner: EmulatorTransport, meter: Meter) -> None:
        self.inner = inner
        self.meter = meter

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        response = await self.inner.handle_async_request(request)
        if request.url.path.startswith(("/oauth2", "/common")) or "/v1.0" not in request.url.path:
            return response
        m = self.meter.tenant(_tenant_of(request))
        m.http += 1
        self.meter.statuses[response.status_code] += 1
        if request.url.path.endswith("/$batch"):
            m.batches += 1
            self._count_batch(m, body, response)
            return response
        self._count_call(
            m, request.method, str(request.url), response.status_code, response.headers
        )
        return response

    @staticmethod
    def _count_call(m: TenantMeter, method: str, url: str, status: int, headers: Any) -> None:
        if status == 429:
            m.throttled += 1
            return
        m.calls += 1
        m.ops[operation(method, url)] += 1
        if method.upper() in _WRITES:
            m.writes += 1
        else:
            m.reads += 1
        m.ru += _ru(headers)

    def _count_batch(self, m: TenantMeter, body: bytes, response: httpx.Response) -> None:
        try:
            sent = json.loads(body)["requests"]
            answers = response.json().get("responses") or []
        except (ValueError, KeyError, TypeError):
            return
        by_id = {str(r.get("id")).casefold(): r for r in sent}
        m.batch_items += len(sent)
        for answer in answers:
            item = by_id.get(str(answer.get("id")).casefold(), {})
            method, url = str(item.get("method", "GET")), str(item.get("url", ""))
            headers = {str(k).lower(): v for k, v in (answer.get("headers") or {}).items()}
            self._count_call(m, method, url, int(answer.get("status", 0)), headers)

    async def aclose(self) -> None:
        await self.inner.aclose()
