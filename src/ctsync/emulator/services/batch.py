"""JSON batching: ``POST /$batch`` (graph-limits §2, reference §7 and §10.17).

The whole batch is validated before anything runs, so a malformed batch changes nothing and
answers ``400``. Then each request is dispatched like a direct call with the batch's token:
routing, permissions and traffic control (each inner request is throttled and charged on its
own; the envelope is free) apply per request, and every outcome, errors included, becomes an
item of a ``200`` answer.

Where Graph's documentation is silent: responses come back in execution order (Graph allows
any order; clients must match by ``id``); requests without ``dependsOn`` run in listed order;
an empty batch is a ``400``; a dependency that answered ``>= 400`` (including ``424``) fails
its dependants with ``424``; mixing chains and independent requests is accepted (Graph's docs
only advise against it).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from ctsync.emulator.core.context import RequestContext
from ctsync.emulator.core.errors import GraphFault
from ctsync.emulator.core.http import JSON_TYPE, EmuResponse
from ctsync.emulator.core.routing import Router, normalize_path

__all__ = ["MAX_BATCH_REQUESTS", "router"]

router = Router()

#: Graph's documented cap on requests per batch.
MAX_BATCH_REQUESTS = 20

_METHODS = {"GET", "POST", "PATCH", "PUT", "DELETE"}
_VERSION_PREFIX = "/v1.0"


def _invalid(message: str) -> GraphFault:
    return GraphFault(400, "BadRequest", message)


class _Item:
    """One validated batch request."""

    def __init__(self, raw: Any, index: int) -> None:
        if not isinstance(raw, Mapping):
            raise _invalid(f"Batch request at index {index} must be a JSON object.")
        ident = raw.get("id")
        if not isinstance(ident, str) or not ident.strip():
            raise _invalid(f"Batch request at index {index} has no 'id'.")
        self.id = ident
        method = raw.get("method")
        if not isinstance(method, str) or method.upper() not in _METHODS:
            raise _invalid(f"Batch request '{ident}' has an invalid 'method': {method!r}.")
        self.method = method.upper()
        self.url = _relative_url(ident, raw.get("url"))
        self.headers = _headers(ident, raw.get("headers"))
        self.has_body = raw.get("body") is not None
        if self.has_body and "content-type" not in self.headers:
            msg = f"Batch request '{ident}' has a body but no Content-Type header."
            raise _invalid(msg)
        self.body = _encode_body(raw.get("body"), self.headers.get("content-type", ""))
        depends = raw.get("dependsOn", [])
        if depends is None:
            depends = []
        if not isinstance(depends, list) or not all(isinstance(d, str) for d in depends):
            msg = f"Batch request '{ident}' has an invalid 'dependsOn': it must list request ids."
            raise _invalid(msg)
        self.depends_on = [d.lower() for d in depends]


def _relative_url(ident: str, url: Any) -> str:
    if not isinstance(url, str) or not url.strip():
        raise _invalid(f"Batch request '{ident}' has no 'url'.")
    parts = urlsplit(url.strip())
    if parts.scheme or parts.netloc:
        msg = f"Batch request '{ident}' has an absolute url; batch urls are relative to /v1.0."
        raise _invalid(msg)
    relative = url.strip()
    if not relative.startswith("/"):
        relative = "/" + relative
    if relative.lower() == _VERSION_PREFIX or relative.lower().startswith(_VERSION_PREFIX + "/"):
        relative = relative[len(_VERSION_PREFIX) :] or "/"
    path = normalize_path(urlsplit(relative).path)
    if path.lower() == "/$batch":
        raise _invalid(f"Batch request '{ident}' is itself a batch; batches cannot be nested.")
    return relative


def _headers(ident: str, headers: Any) -> dict[str, str]:
    if headers is None:
        return {}
    if not isinstance(headers, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        msg = f"Batch request '{ident}' has invalid 'headers': expected an object of strings."
        raise _invalid(msg)
    return {k.lower(): v for k, v in headers.items()}


def _encode_body(body: Any, content_type: str) -> bytes:
    if body is None:
        return b""
    if isinstance(body, str) and "json" not in content_type.lower():
        return body.encode()
    return json.dumps(body, separators=(",", ":")).encode()


def _execution_order(items: list[_Item]) -> list[_Item]:
    """Dependencies first; otherwise listed order. Unknown ids and cycles are 400s."""
    by_id = {item.id.lower(): item for item in items}
    for item in items:
        for dep in item.depends_on:
            if dep not in by_id:
                msg = f"Batch request '{item.id}' depends on unknown request id '{dep}'."
                raise _invalid(msg)
            if dep == item.id.lower():
                raise _invalid(f"Batch request '{item.id}' depends on itself.")
    done: set[str] = set()
    order: list[_Item] = []
    pending = list(items)
    while pending:
        ready = next((i for i in pending if all(d in done for d in i.depends_on)), None)
        if ready is None:
            ids = ", ".join(i.id for i in pending)
            raise _invalid(f"Batch requests {ids} have circular dependencies.")
        pending.remove(ready)
        done.add(ready.id.lower())
        order.append(ready)
    return order


def _parse(ctx: RequestContext) -> list[_Item]:
    if ctx.call.in_batch:
        raise _invalid("Batches cannot be nested.")
    body = ctx.body
    requests = body.get("requests") if isinstance(body, Mapping) else None
    if not isinstance(requests, list):
        raise _invalid('Invalid batch payload format: expected {"requests": [...]}.')
    if not requests:
        raise _invalid("Invalid batch payload format: the batch has no requests.")
    if len(requests) > MAX_BATCH_REQUESTS:
        msg = (
            f"Number of batch requests ({len(requests)}) exceeds the limit of {MAX_BATCH_REQUESTS}."
        )
        raise _invalid(msg)
    items = [_Item(raw, index) for index, raw in enumerate(requests)]
    seen: set[str] = set()
    for item in items:
        key = item.id.lower()
        if key in seen:
            raise _invalid(
                f"Batch request id '{item.id}' is not unique (ids are case-insensitive)."
            )
        seen.add(key)
    return items


def _item_json(item_id: str, response: EmuResponse) -> bytes:
    """One entry of the ``responses`` array: id, status, headers and the body (JSON as JSON,
    anything else as a string; none for a 204)."""
    entry = {"id": item_id, "status": response.status, "headers": dict(response.headers)}
    head = json.dumps(entry, separators=(",", ":")).encode()
    if not response.body or response.status == 204:
        return head
    raw = response.body
    if "json" not in response.headers.get("content-type", "").lower() or not _is_json(raw):
        raw = json.dumps(response.body.decode(errors="replace")).encode()
    return head[:-1] + b',"body":' + raw + b"}"


def _is_json(raw: bytes) -> bool:
    # The emulator's own JSON answers start with an object or array; anything else is checked.
    if raw[:1] in (b"{", b"["):
        return True
    try:
        json.loads(raw)
    except ValueError:
        return False
    return True


@router.route("POST", "/$batch", kind="batch", cost=0)
def post_batch(ctx: RequestContext) -> EmuResponse:
    from ctsync.emulator._emulator import GraphCall

    emulator = ctx.emulator
    items = _execution_order(_parse(ctx))
    statuses: dict[str, int] = {}
    responses: list[bytes] = []
    for item in items:
        request_id = emulator.ids.guid()
        # Items without their own client-request-id get one derived from the envelope's, so a
        # client that resends a whole batch is still recognised as retrying each item.
        client_request_id = item.headers.get(
            "client-request-id", f"{ctx.client_request_id}/{item.id}"
        )
        failed = [d for d in item.depends_on if statuses[d] >= 400]
        if failed:
            fault = GraphFault(
                424,
                "FailedDependency",
                f"The request depends on request '{failed[0]}', which failed.",
            )
            response = emulator.error_response(fault, request_id, client_request_id)
        else:
            call = GraphCall(
                method=item.method,
                path_and_query=item.url,
                headers=item.headers,
                body=item.body,
                claims=ctx.call.claims,
                origin=ctx.call.origin,
                client_request_id=client_request_id,
                in_batch=True,
            )
            try:
                response = emulator.dispatch(call, request_id=request_id)
            except GraphFault as fault:
                response = emulator.error_response(fault, request_id, client_request_id)
        statuses[item.id.lower()] = response.status
        emulator.log_request(
            item.method, item.url, response.status, client_request_id, in_batch=True
        )
        emulator.stats["batch_inner_requests"] += 1
        emulator.stats[f"batch_inner_status_{response.status}"] += 1
        responses.append(_item_json(item.id, response))
    # The items' JSON bodies go in as they are, not parsed and written again.
    body = b'{"responses":[' + b",".join(responses) + b"]}"
    return EmuResponse(status=200, headers={"content-type": JSON_TYPE}, body=body)
