"""The Microsoft Graph client: one per tenant, async, paced, retrying, observable.

Every logical request gets a fresh ``client-request-id`` (a uuid4) and asks Graph to echo it
(``return-client-request-id: true``). Retries of the *same* logical request reuse that id, so the
server (and the emulator) can tell a retry from a new call and count retries that came before
``Retry-After`` expired; a new logical request never reuses one.

Writes (POST, PATCH, PUT, DELETE, batch items included) are announced before they are sent,
to the observers registered with :meth:`GraphClient.add_intent_observer` as a
:class:`WriteIntent`, and reported once final to those of :meth:`GraphClient.add_observer` as a
:class:`WriteRecord` carrying the same ``intent_id``; bodies go through
:func:`~ctsync.graph.redaction.redact`. That is where the audit trail plugs in: a write whose
intent has no outcome (the process was killed while it was in flight) stays visible.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import functools
import inspect
import json as _json
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Final, Self, TypeVar
from urllib.parse import quote, urlsplit
from uuid import uuid4

from ctsync._version import __version__
from ctsync.errors import AuthenticationError, CtsyncError, GraphError, TransportError

from ._envelope import error_code, graph_error, parse_json
from ._http import AsyncTransport, HttpTransport, NoResponseError, RawResponse
from .batch import BatchRequest, BatchResult, plan_batches
from .clock import Clock, SystemClock
from .clouds import Cloud, origin_of, resolve_cloud
from .credentials import AccessTokenLike
from .pacing import BATCH, Cost, Pacer, Ticket, estimate_cost
from .redaction import redact
from .retry import RetryPolicy, parse_retry_after

__all__ = ["ClientStats", "GraphClient", "GraphResponse", "WriteIntent", "WriteRecord"]

logger = logging.getLogger("ctsync.graph")

WRITE_METHODS: Final = frozenset({"POST", "PATCH", "PUT", "DELETE"})
TOKEN_REFRESH_MARGIN: Final = 300.0
"""Seconds before ``expires_on`` at which a cached token is replaced."""

_RESERVED_HEADERS: Final = frozenset(
    {"authorization", "client-request-id", "return-client-request-id"}
)


#: Threads for synchronous credentials' token requests (network-bound; one per tenant at most).
TOKEN_THREADS = 32
#: No value (a body may be None).
_UNSET: Final = object()
T = TypeVar("T")


@functools.cache
def _token_threads() -> concurrent.futures.ThreadPoolExecutor:
    return concurrent.futures.ThreadPoolExecutor(
        max_workers=TOKEN_THREADS, thread_name_prefix="ctsync-token"
    )


@dataclass(frozen=True)
class GraphResponse:
    """A successful Graph answer."""

    status: int
    headers: Mapping[str, str]
    body: Any
    """Decoded JSON, or None (204, empty or non-JSON body)."""
    request_id: str | None
    client_request_id: str
    attempts: int = 1

    def json_object(self) -> dict[str, Any]:
        """The body as a JSON object (``{}`` when there is none)."""
        return dict(self.body) if isinstance(self.body, Mapping) else {}


@dataclass(frozen=True)
class WriteIntent:
    """A write about to be sent (its first attempt). ``intent_id`` names it until its outcome."""

    tenant: str
    method: str
    path: str
    body: Any
    intent_id: str


@dataclass(frozen=True)
class WriteRecord:
    """One write as Graph finally answered it. ``status`` None: no HTTP answer, and then
    ``error_code`` says why: ``NotSent`` (it never reached Graph), ``TransportError`` (the
    answer was lost) or ``Interrupted`` (the run was stopped while it was in flight)."""

    tenant: str
    method: str
    path: str
    body: Any
    status: int | None
    request_id: str | None
    client_request_id: str
    error_code: str | None
    intent_id: str | None = None


#: An observer may return an awaitable (the audit trail's group commit): the client awaits it
#: before it goes on — an intent before its write is sent, an outcome before the caller
#: hears of it.
WriteObserver = Callable[[WriteRecord], Awaitable[None] | None]
IntentObserver = Callable[[WriteIntent], Awaitable[None] | None]


@dataclass
class ClientStats:
    """Counters for benchmarks and status output."""

    requests: int = 0
    """Logical requests (a batch counts once)."""
    attempts: int = 0
    """HTTP requests actually sent."""
    retries: int = 0
    """Attempts (or batch items) sent again."""
    throttled: int = 0
    """429 answers seen, batch items included."""
    transport_failures: int = 0
    token_fetches: int = 0
    batch_items: int = 0
    """Sub-requests sent inside batches, re-sends included."""
    by_status: Counter[int] = field(default_factory=Counter)
    batch_item_status: Counter[int] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "attempts": self.attempts,
            "retries": self.retries,
            "throttled": self.throttled,
            "transport_failures": self.transport_failures,
            "token_fetches": self.token_fetches,
            "batch_items": self.batch_items,
            "by_status": dict(sorted(self.by_status.items())),
            "batch_item_status": dict(sorted(self.batch_item_status.items())),
        }


@dataclass
class _Attempt:
    """What one attempt got: an answer or a failure, the token it used, its Retry-After."""

    outcome: RawResponse | NoResponseError
    token: str
    retry_after: float | None = None


@dataclass
class _Exchange:
    """The last answer of a logical request, after retries."""

    raw: RawResponse
    payload: Any
    attempts: int
    client_request_id: str
    retry_after: float | None = None


class GraphClient:
    """Microsoft Graph for one tenant.

    ``credential`` is anything with azure-core's ``get_token(*scopes)``, sync (run in a thread)
    or async. ``pacer`` should be shared by all clients of one app; without one the client makes
    its own. ``transport`` injects an httpx transport (tests, the in-process emulator).
    """

    def __init__(
        self,
        *,
        tenant_id: str,
        credential: Any,
        cloud: Cloud | str | Mapping[str, Any] = "global",
        transport: AsyncTransport | None = None,
        pacer: Pacer | None = None,
        retry: RetryPolicy | None = None,
        clock: Clock | None = None,
        user_agent: str = f"ctsync/{__version__}",
        timeout: float = 60.0,
        http: HttpTransport | None = None,
    ) -> None:
        self.tenant_id = tenant_id
        self.cloud = resolve_cloud(cloud)
        self.clock: Clock = clock or (pacer.clock if pacer else SystemClock())
        self.pacer = pacer or Pacer(clock=self.clock)
        self.retry = retry or RetryPolicy()
        self.user_agent = user_agent
        self.stats = ClientStats()
        self._credential = credential
        # ``http``: a connection pool shared with other tenants' clients (the token travels
        # with each request, so one pool serves every tenant of a cloud); its owner closes it.
        self._owns_http = http is None
        self._http = http or HttpTransport(
            transport=transport, verify=self.cloud.ca_bundle or True, timeout=timeout
        )
        self._token: tuple[str, float, float] | None = None  # token, expires_on, refresh_at
        self._token_lock = asyncio.Lock()
        self._observers: list[WriteObserver] = []
        self._intent_observers: list[IntentObserver] = []
        #: Redacted bodies of announced writes, by intent id, until their outcome is told.
        self._redacted: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"GraphClient(tenant_id={self.tenant_id!r}, cloud={self.cloud.name!r})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    def add_observer(self, callback: WriteObserver) -> None:
        """Call ``callback(WriteRecord)`` after the final answer to every write.

        An exception from an observer reaches the caller even though the write happened: a
        write that could not be recorded must not pass silently (the record says what it was).
        """
        self._observers.append(callback)

    def add_intent_observer(self, callback: IntentObserver) -> None:
        """Call ``callback(WriteIntent)`` before the first attempt of every write.

        An exception from it stops the write before anything is sent: a write that could not
        be announced (the audit trail is unwritable) is not made.
        """
        self._intent_observers.append(callback)

    # -- requests -------------------------------------------------------------------------

    async def get(
        self,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        advanced_query: bool = False,
    ) -> GraphResponse:
        return await self.request(
            "GET", path, params=params, headers=headers, advanced_query=advanced_query
        )

    async def post(
        self,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        on_send: Callable[[], None] | None = None,
    ) -> GraphResponse:
        return await self.request(
            "POST", path, json=json, params=params, headers=headers, on_send=on_send
        )

    async def patch(
        self, path: str, *, json: Any, headers: Mapping[str, str] | None = None
    ) -> GraphResponse:
        return await self.request("PATCH", path, json=json, headers=headers)

    async def put(
        self, path: str, *, json: Any, headers: Mapping[str, str] | None = None
    ) -> GraphResponse:
        return await self.request("PUT", path, json=json, headers=headers)

    async def delete(self, path: str, *, headers: Mapping[str, str] | None = None) -> GraphResponse:
        return await self.request("DELETE", path, headers=headers)

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        advanced_query: bool = False,
        on_send: Callable[[], None] | None = None,
    ) -> GraphResponse:
        """Send one logical request (with retries) and return the success, or raise.

        ``path`` is relative to the cloud's version root (``/policies/...``) or an absolute URL
        on the same origin (an ``@odata.nextLink``, used verbatim). ``advanced_query`` adds
        ``ConsistencyLevel: eventual`` and, for relative paths, ``$count=true``. ``on_send``
        is called once, right before the request first goes on the wire (after its token and
        pacing): from then on it may have reached Graph. If it raises, nothing is sent.
        """
        method = method.upper()
        url, rel = self._url(path, params, advanced_query=advanced_query)
        send_headers = self._headers(headers, has_body=json is not None)
        if advanced_query:
            send_headers["ConsistencyLevel"] = "eventual"
        content = None if json is None else _json.dumps(json, separators=(",", ":")).encode()
        log_path = urlsplit(rel).path
        self.stats.requests += 1
        pending: list[Awaitable[None]] = []
        intent = self._announce(method, log_path, json, pending)
        await _settle(pending)
        went = False

        def sending() -> None:
            nonlocal went
            if on_send is not None:
                on_send()
            went = True

        try:
            exchange = await self._exchange(
                method,
                url,
                path=log_path,
                headers=send_headers,
                content=content,
                cost=estimate_cost(method, rel),
                on_send=sending,
            )
        except TransportError as exc:
            code = "TransportError" if exc.sent else "NotSent"
            await _settle(
                self._notify(method, log_path, body=json, status=None, code=code, intent_id=intent)
            )
            raise
        except (asyncio.CancelledError, KeyboardInterrupt, CtsyncError):
            # Stopped while the write may be in flight: say so rather than leave only the
            # intent (and when it never left — no token, a hook refused — say that).
            code = "Interrupted" if went else "NotSent"
            await _settle(
                self._notify(method, log_path, body=json, status=None, code=code, intent_id=intent)
            )
            raise
        raw = exchange.raw
        request_id = raw.headers.get("request-id")
        crid = raw.headers.get("client-request-id") or exchange.client_request_id
        error: GraphError | None = None
        if raw.status >= 400:
            error = graph_error(
                status=raw.status,
                headers=raw.headers,
                payload=exchange.payload,
                raw=raw.body,
                tenant=self.tenant_id,
                method=method,
                path=log_path,
                client_request_id=exchange.client_request_id,
                attempts=exchange.attempts,
                retry_after=exchange.retry_after,
            )
        await _settle(
            self._notify(
                method,
                log_path,
                body=json,
                status=raw.status,
                request_id=error.request_id if error else request_id,
                client_request_id=crid,
                code=error.code if error else None,
                intent_id=intent,
            )
        )
        if error is not None:
            raise error
        return GraphResponse(
            status=raw.status,
            headers=raw.headers,
            body=exchange.payload,
            request_id=request_id,
            client_request_id=crid,
            attempts=exchange.attempts,
        )

    def beta_url(self, path: str) -> str:
        """``path`` (``/policies/...``) on the cloud's Graph **beta** endpoint, as an absolute
        URL a request takes. Only for what a config opted into (``beta:``)."""
        return f"{self.cloud.origin}/beta{path if path.startswith('/') else '/' + path}"

    def _url(
        self, path: str, params: Mapping[str, Any] | None, *, advanced_query: bool
    ) -> tuple[str, str]:
        """The absolute URL and the path relative to the version root (for logs and costs)."""
        query = dict(params or {})
        if path.lower().startswith(("https://", "http://")):
            if origin_of(path) != self.cloud.origin:
                msg = (
                    f"refusing to send a request for tenant {self.tenant_id} to "
                    f"{origin_of(path)}: only {self.cloud.origin} gets the token"
                )
                raise ValueError(msg)
            url = path
            parts = urlsplit(path)
            rel = parts.path + (f"?{parts.query}" if parts.query else "")
            root = urlsplit(self.cloud.graph_url).path
            if rel.startswith(root + "/"):
                rel = rel[len(root) :]
        else:
            rel = path if path.startswith("/") else f"/{path}"
            url = self.cloud.graph_url + rel
            if advanced_query:
                query.setdefault("$count", "true")
        if query:
            encoded = _encode_query(query)
            url += ("&" if "?" in url else "?") + encoded
            rel += ("&" if "?" in rel else "?") + encoded
        return url, rel

    def _headers(self, extra: Mapping[str, str] | None, *, has_body: bool) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": self.user_agent}
        if has_body:
            headers["Content-Type"] = "application/json"
        headers.update(
            {k: v for k, v in (extra or {}).items() if k.lower() not in _RESERVED_HEADERS}
        )
        return headers

    async def _exchange(
        self,
        method: str,
        url: str,
        *,
        path: str,
        headers: Mapping[str, str],
        content: bytes | None,
        cost: Cost,
        idempotent: bool = False,
        on_send: Callable[[], None] | None = None,
    ) -> _Exchange:
        """Send with pacing, token, retries and the throttle gate; return the last answer.

        ``idempotent`` marks a POST that changes nothing (a ``$batch`` of reads): it is retried
        like a GET. Raises :class:`TransportError` when no HTTP answer came and retrying is not
        allowed or not possible; error statuses are returned for the caller to turn into
        GraphErrors.
        """
        policy = self.retry
        retry_as = "GET" if idempotent else method
        client_request_id = str(uuid4())
        start = self.clock.monotonic()
        refreshed = False
        attempt = 0
        while True:
            attempt += 1
            sent = await self._attempt(
                method,
                url,
                headers,
                content,
                cost,
                since=start,
                crid=client_request_id,
                on_send=on_send if attempt == 1 else None,
            )
            if isinstance(sent.outcome, NoResponseError):
                failure = sent.outcome
                wait = policy.backoff(attempt)
                if not (
                    failure.retryable
                    and policy.retryable_failure(retry_as, sent=failure.sent)
                    and self._within_budget(attempt, start, wait)
                ):
                    tries = f" (after {attempt} attempts)" if attempt > 1 else ""
                    msg = f"{failure}{tries}"
                    raise TransportError(
                        msg,
                        tenant=self.tenant_id,
                        method=method,
                        path=path,
                        sent=failure.sent or attempt > 1,
                    ) from None
                self._log_retry(
                    method, path, status="-", code=failure.kind, wait=wait, attempt=attempt
                )
                await self.clock.sleep(wait)
                continue

            raw = sent.outcome
            payload = parse_json(raw.body)
            if raw.status < 400:
                return _Exchange(raw, payload, attempt, client_request_id)
            code = error_code(payload)
            if raw.status == 401 and code == "InvalidAuthenticationToken" and not refreshed:
                # The token was revoked or rotated early: fetch a fresh one and try once more.
                refreshed = True
                self._forget_token(sent.token)
                self.stats.retries += 1
                self._log_retry(
                    method,
                    path,
                    status=401,
                    code=code,
                    wait=0.0,
                    attempt=attempt,
                    request_id=raw.headers.get("request-id"),
                )
                continue
            retry_after = sent.retry_after
            if not policy.retryable_status(retry_as, raw.status):
                return _Exchange(raw, payload, attempt, client_request_id, retry_after)
            wait = retry_after if retry_after is not None else policy.backoff(attempt)
            if not self._within_budget(attempt, start, wait):
                return _Exchange(raw, payload, attempt, client_request_id, retry_after)
            self.stats.retries += 1
            self._log_retry(
                method,
                path,
                status=raw.status,
                code=code or "-",
                wait=wait,
                attempt=attempt,
                request_id=raw.headers.get("request-id"),
            )
            await self.clock.sleep(wait)

    async def _attempt(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        content: bytes | None,
        cost: Cost,
        *,
        since: float,
        crid: str,
        on_send: Callable[[], None] | None = None,
    ) -> _Attempt:
        """One HTTP attempt between :meth:`Pacer.acquire` and :meth:`Pacer.settle`."""
        # The token first: a slow sign-in must not hold back requests that were already paced,
        # or they would all go out at once when it arrives and burst past Graph's bucket.
        token = await self._access_token()
        ticket = await self.pacer.acquire(self.tenant_id, cost, since=since)
        ok: bool | None = None
        try:
            send_headers = {
                **headers,
                "Authorization": f"Bearer {token}",
                "client-request-id": crid,
                "return-client-request-id": "true",
            }
            if on_send is not None:
                on_send()
            self.stats.attempts += 1
            began = time.perf_counter()
            try:
                raw = await self._http.send(method, url, headers=send_headers, content=content)
            except NoResponseError as failure:
                self.stats.transport_failures += 1
                if logger.isEnabledFor(logging.DEBUG):
                    _log_attempt(method, url, None, None, began, kind=failure.kind)
                return _Attempt(failure, token)
            if logger.isEnabledFor(logging.DEBUG):
                _log_attempt(method, url, raw.status, raw.headers.get("request-id"), began)
            self.stats.by_status[raw.status] += 1
            retry_after = None
            if self.retry.honours_retry_after(raw.status):
                retry_after = parse_retry_after(raw.headers.get("retry-after"), self.clock.wall())
            ok = raw.status != 429
            if raw.status == 429:
                self.stats.throttled += 1
                # Without Retry-After, hold the gate for the first back-off step.
                hold = retry_after if retry_after is not None else self.retry.backoff_base
                scope = raw.headers.get("x-ms-throttle-scope")
                self.pacer.throttled(self.tenant_id, cost.family, hold, scope=scope)
            return _Attempt(raw, token, retry_after)
        finally:
            self.pacer.settle(ticket, ok=ok)

    def _within_budget(self, attempt: int, start: float, wait: float) -> bool:
        elapsed = self.clock.monotonic() - start
        return attempt < self.retry.max_attempts and elapsed + wait <= self.retry.max_elapsed

    def _log_retry(
        self,
        method: str,
        path: str,
        *,
        status: int | str,
        code: str,
        wait: float,
        attempt: int,
        request_id: str | None = None,
    ) -> None:
        logger.warning(
            "retrying %s %s (tenant %s) after %s %s in %.2fs (attempt %d/%d, request-id %s)",
            method,
            path,
            self.tenant_id,
            status,
            code,
            wait,
            attempt + 1,
            self.retry.max_attempts,
            request_id or "-",
        )

    def _notify(
        self,
        method: str,
        path: str,
        *,
        body: Any,
        status: int | None,
        request_id: str | None = None,
        client_request_id: str | None = None,
        code: str | None = None,
        intent_id: str | None = None,
    ) -> list[Awaitable[None]]:
        """Tell the observers a write's outcome; what they ask to be awaited."""
        if method not in WRITE_METHODS or not self._observers:
            self._redacted.pop(intent_id or "", None)
            return []
        # The intent's redacted body when there was one (a schema is thousands of nodes).
        redacted = self._redacted.pop(intent_id or "", _UNSET)
        record = WriteRecord(
            tenant=self.tenant_id,
            method=method,
            path=path,
            body=redact(body, path=path) if redacted is _UNSET else redacted,
            status=status,
            request_id=request_id,
            client_request_id=client_request_id or "",
            error_code=code,
            intent_id=intent_id,
        )
        return [r for observer in self._observers if (r := observer(record)) is not None]

    def _announce(
        self, method: str, path: str, body: Any, pending: list[Awaitable[None]]
    ) -> str | None:
        """Tell the intent observers a write is about to be sent; its ``intent_id``. What
        they ask to be awaited (before the write is sent) is added to ``pending``."""
        if method not in WRITE_METHODS:
            return None
        intent_id = str(uuid4())
        if self._intent_observers:
            redacted = redact(body, path=path)
            if self._observers:
                self._redacted[intent_id] = redacted  # the outcome shows the same body
            intent = WriteIntent(
                tenant=self.tenant_id,
                method=method,
                path=path,
                body=redacted,
                intent_id=intent_id,
            )
            pending += [r for observer in self._intent_observers if (r := observer(intent))]
        return intent_id

    # -- tokens ---------------------------------------------------------------------------

    async def _access_token(self) -> str:
        now = self.clock.wall().timestamp()
        if self._token is not None and now < self._token[2]:
            return self._token[0]
        async with self._token_lock:
            now = self.clock.wall().timestamp()
            if self._token is not None and now < self._token[2]:
                return self._token[0]
            token = await self._fetch_token()
            expires_on = float(token.expires_on)
            # Short-lived tokens (the emulator's) are refreshed at half-life instead.
            margin = min(TOKEN_REFRESH_MARGIN, max(0.0, (expires_on - now) / 2))
            self._token = (token.token, expires_on, expires_on - margin)
            return token.token

    async def _fetch_token(self) -> AccessTokenLike:
        get_token = self._credential.get_token
        self.stats.token_fetches += 1
        try:
            if getattr(self._credential, "async_capable", False):
                # ctsync's own credentials: an app's secret or certificate signs in on the
                # event loop (azure-identity's async flavour), no thread, no discovery first.
                result = await self._credential.aget_token(self.cloud.scope)
            elif inspect.iscoroutinefunction(get_token):
                result = await get_token(self.cloud.scope)
            else:
                # Synchronous credentials (azure-identity's) run on threads of their own: the
                # default executor has a handful, and a fleet signs in to every tenant at once.
                loop = asyncio.get_running_loop()
                context = contextvars.copy_context()  # as asyncio.to_thread does
                call = functools.partial(context.run, get_token, self.cloud.scope)
                result = await loop.run_in_executor(_token_threads(), call)
                if inspect.isawaitable(result):
                    result = await result
        except CtsyncError:
            raise
        except Exception as exc:
            msg = (
                f"{type(self._credential).__name__} could not get a token for tenant "
                f"{self.tenant_id}: {type(exc).__name__}: {exc}"
            )
            raise AuthenticationError(msg, tenant=self.tenant_id) from None
        if not getattr(result, "token", None):
            msg = f"{type(self._credential).__name__} returned no token for tenant {self.tenant_id}"
            raise AuthenticationError(msg, tenant=self.tenant_id)
        token: AccessTokenLike = result
        return token

    def _forget_token(self, token: str) -> None:
        if self._token is not None and self._token[0] == token:
            self._token = None

    # -- paging ---------------------------------------------------------------------------

    async def iter_pages(
        self,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        advanced_query: bool = False,
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """Yield each page's ``value``, following ``@odata.nextLink`` verbatim.

        ``ConsistencyLevel`` is re-sent on every page (Graph does not carry headers over).
        A nextLink to another origin is refused with :class:`TransportError`: the bearer token
        only ever goes to the cloud's Graph origin.
        """
        response = await self.request("GET", path, params=params, advanced_query=advanced_query)
        while True:
            body = response.json_object()
            value = body.get("value", [])
            yield (
                [item for item in value if isinstance(item, dict)]
                if isinstance(value, list)
                else []
            )
            next_link = body.get("@odata.nextLink")
            if not next_link:
                return
            if not isinstance(next_link, str) or origin_of(next_link) != self.cloud.origin:
                msg = (
                    f"refused to follow @odata.nextLink to {origin_of(str(next_link))}: "
                    f"the token is only sent to {self.cloud.origin}"
                )
                raise TransportError(
                    msg, tenant=self.tenant_id, method="GET", path=urlsplit(path).path
                )
            response = await self.request("GET", next_link, advanced_query=advanced_query)

    async def list_all(
        self,
        path: str,
        *,
        select: Sequence[str] | None = None,
        filter: str | None = None,  # noqa: A002 - OData's own name
        top: int | None = None,
        orderby: str | Sequence[str] | None = None,
        params: Mapping[str, Any] | None = None,
        advanced_query: bool = False,
    ) -> list[dict[str, Any]]:
        """Every item of a collection, all pages read. ``top`` is the page size."""
        query: dict[str, Any] = dict(params or {})
        if select:
            query["$select"] = ",".join(select)
        if filter:
            query["$filter"] = filter
        if top is not None:
            query["$top"] = top
        if orderby:
            query["$orderby"] = orderby if isinstance(orderby, str) else ",".join(orderby)
        items: list[dict[str, Any]] = []
        async for page in self.iter_pages(path, params=query, advanced_query=advanced_query):
            items.extend(page)
        return items

    # -- $batch ---------------------------------------------------------------------------

    async def batch(
        self, requests: Sequence[BatchRequest], *, concurrency: int = 4
    ) -> dict[str, BatchResult]:
        """Send ``requests`` through ``POST /$batch``, 20 per batch, and return every result.

        Sub-requests are paced one by one (a batch saves round trips, not quota). Items answered
        429 are re-sent after their own ``Retry-After`` (non-POST items also after 5xx), together
        with the items that failed 424 because of them. Items that stay errors are returned,
        not raised: see :func:`~ctsync.graph.batch.raise_for_item`. ``concurrency`` bounds the
        batches in flight.
        """
        if not requests:
            return {}
        plan = plan_batches(requests)
        results: dict[str, BatchResult] = {}
        limit = asyncio.Semaphore(max(1, concurrency))

        async def run(chunk: list[BatchRequest]) -> None:
            async with limit:
                results.update(await self._run_batch(chunk))

        await asyncio.gather(*(run(chunk) for chunk in plan))
        return {r.id: results[r.id] for r in requests}

    async def chain(self, first: BatchRequest, *then: BatchRequest) -> list[BatchResult]:
        """``first``, then each of ``then`` only if ``first`` succeeded (``dependsOn``), in one
        ``$batch``: one round trip where one after the other takes ``1 + len(then)``. Graph
        answers a follower whose ``first`` failed ``424`` without running it. The results in
        order, unraised (see :func:`~ctsync.graph.batch.raise_for_item`)."""
        followers = [
            BatchRequest(
                id=r.id,
                method=r.method,
                url=r.url,
                body=r.body,
                headers=r.headers,
                depends_on=(*r.depends_on, first.id),
                context=r.context,
            )
            for r in then
        ]
        results = await self.batch([first, *followers], concurrency=1)
        return [results[r.id] for r in (first, *followers)]

    async def _run_batch(self, chunk: list[BatchRequest]) -> dict[str, BatchResult]:
        ready_at = {r.id: self.clock.monotonic() for r in chunk}
        attempts: Counter[str] = Counter()
        intents: dict[str, str | None] = {}
        final: dict[str, BatchResult] = {}
        start = self.clock.monotonic()
        try:
            while ready_at:
                now = self.clock.monotonic()
                due = min(ready_at.values())
                if due > now:
                    await self.clock.sleep(due - now)
                    continue
                sending = [r for r in chunk if r.id in ready_at and ready_at[r.id] <= now]
                # Graph works through a batch in order and a 429 can stop the rest of it: put
                # the items that waited longest first so the same tail is not throttled every
                # round.
                sending.sort(key=lambda r: -attempts[r.id])
                pending: list[Awaitable[None]] = []
                for request in sending:
                    del ready_at[request.id]
                    attempts[request.id] += 1
                    if attempts[request.id] > 1:
                        self.stats.retries += 1
                    elif request.method.upper() in WRITE_METHODS:
                        path = urlsplit(request.url).path
                        intents[request.id] = _in_context(
                            request,
                            self._announce,
                            request.method.upper(),
                            path,
                            request.body,
                            pending,
                        )
                await _settle(pending)
                retrying, fresh = await self._batch_round(sending, attempts, start)
                ready_at.update(retrying)
                told: list[Awaitable[None]] = []
                for result in fresh:
                    final[result.id] = result
                    told += _in_context(
                        result.request, self._notify_item, result, intents.get(result.id)
                    )
                await _settle(told)
        except (asyncio.CancelledError, KeyboardInterrupt, CtsyncError) as exc:
            # Every announced item gets an outcome, even when the batch itself failed.
            status, code = None, "Interrupted"
            if isinstance(exc, TransportError):
                code = "TransportError" if exc.sent else "NotSent"
            elif isinstance(exc, GraphError):
                status, code = exc.status, exc.code
            told = []
            for request in chunk:
                if request.id in intents and request.id not in final:
                    told += _in_context(
                        request,
                        self._notify,
                        request.method.upper(),
                        urlsplit(request.url).path,
                        body=request.body,
                        status=status,
                        code=code,
                        intent_id=intents[request.id],
                    )
            await _settle(told)
            raise
        return final

    async def _batch_round(
        self, sending: list[BatchRequest], attempts: Counter[str], start: float
    ) -> tuple[dict[str, float], list[BatchResult]]:
        """Send ``sending`` as one ``$batch``: (items to retry and when, final results)."""
        policy = self.retry
        # The items travel together, so they share one ticket: the batch as a whole may be a
        # gate's probe, and it settles once its answer is read (after any 429 in it closed the
        # gate again, so no waiter is let through on a stale Retry-After).
        ticket = Ticket()
        answered: bool | None = None
        try:
            for request in sending:
                await self.pacer.acquire(
                    self.tenant_id,
                    estimate_cost(request.method, request.url),
                    since=start,
                    ticket=ticket,
                )
            answers, crid, outer_request_id = await self._post_batch(sending)
            retrying: dict[str, float] = {}
            fresh: list[BatchResult] = []
            for request in sending:
                status, headers, body = answers.get(
                    request.id.casefold(), (502, {}, _missing_answer(request.id))
                )
                self.stats.batch_items += 1
                self.stats.batch_item_status[status] += 1
                wait = self._item_wait(request, status, headers, attempts[request.id])
                if wait is not None and (
                    attempts[request.id] < policy.max_attempts
                    and self.clock.monotonic() - start + wait <= policy.max_elapsed
                ):
                    retrying[request.id] = self.clock.monotonic() + wait
                    self._log_retry(
                        request.method.upper(),
                        urlsplit(request.url).path,
                        status=status,
                        code=error_code(body) or "-",
                        wait=wait,
                        attempt=attempts[request.id],
                        request_id=headers.get("request-id") or outer_request_id,
                    )
                    continue
                headers = (
                    {"request-id": outer_request_id, **headers} if outer_request_id else headers
                )
                fresh.append(
                    BatchResult(
                        request=request,
                        status=status,
                        headers=headers,
                        body=body,
                        attempts=attempts[request.id],
                        tenant=self.tenant_id,
                        client_request_id=crid,
                    )
                )
            answered = not any(status == 429 for status, _, _ in answers.values())
        finally:
            self.pacer.settle(ticket, ok=answered)
        # A 424 only says "my dependency failed": if that dependency is being retried, so is
        # the dependant, no sooner than it.
        changed = True
        while changed:
            changed = False
            for result in list(fresh):
                deps = [d for d in result.request.depends_on if d in retrying]
                if result.status == 424 and deps:
                    fresh.remove(result)
                    retrying[result.id] = max(retrying[d] for d in deps)
                    changed = True
        return retrying, fresh

    def _item_wait(
        self, request: BatchRequest, status: int, headers: Mapping[str, str], attempt: int
    ) -> float | None:
        """Seconds before re-sending a failed item, or None if it is final."""
        method = request.method.upper()
        if status < 400 or not self.retry.retryable_status(method, status):
            return None
        retry_after = None
        if self.retry.honours_retry_after(status):
            retry_after = parse_retry_after(headers.get("retry-after"), self.clock.wall())
        wait = retry_after if retry_after is not None else self.retry.backoff(attempt)
        if status == 429:
            self.stats.throttled += 1
            family = estimate_cost(method, request.url).family
            self.pacer.throttled(
                self.tenant_id, family, wait, scope=headers.get("x-ms-throttle-scope")
            )
        return wait

    async def _post_batch(
        self, requests: list[BatchRequest]
    ) -> tuple[dict[str, tuple[int, dict[str, str], Any]], str, str | None]:
        """One ``POST /$batch``; answers by case-folded id, the client-request-id, request-id."""
        sent = {r.id for r in requests}
        envelope = {
            "requests": [
                r.to_json(depends_on=[d for d in r.depends_on if d in sent]) for r in requests
            ]
        }
        headers = self._headers(None, has_body=True)
        content = _json.dumps(envelope, separators=(",", ":")).encode()
        self.stats.requests += 1
        exchange = await self._exchange(
            "POST",
            f"{self.cloud.graph_url}/$batch",
            path="/$batch",
            headers=headers,
            content=content,
            cost=Cost(BATCH, 0, 0),
            # A batch of reads changes nothing: a lost answer or a 5xx may be sent again.
            idempotent=all(r.method.upper() == "GET" for r in requests),
        )
        raw = exchange.raw
        if raw.status >= 400:
            raise graph_error(
                status=raw.status,
                headers=raw.headers,
                payload=exchange.payload,
                raw=raw.body,
                tenant=self.tenant_id,
                method="POST",
                path="/$batch",
                client_request_id=exchange.client_request_id,
                attempts=exchange.attempts,
                retry_after=exchange.retry_after,
            )
        answers: dict[str, tuple[int, dict[str, str], Any]] = {}
        payload = exchange.payload if isinstance(exchange.payload, Mapping) else {}
        for item in payload.get("responses") or []:
            if not isinstance(item, Mapping) or "id" not in item:
                continue
            item_headers = item.get("headers")
            answers[str(item["id"]).casefold()] = (
                int(item.get("status", 502)),
                {str(k).lower(): str(v) for k, v in item_headers.items()}
                if isinstance(item_headers, Mapping)
                else {},
                item.get("body"),
            )
        return answers, exchange.client_request_id, raw.headers.get("request-id")

    def _notify_item(self, result: BatchResult, intent_id: str | None) -> list[Awaitable[None]]:
        request = result.request
        return self._notify(
            request.method.upper(),
            urlsplit(request.url).path,
            body=request.body,
            status=result.status,
            request_id=result.headers.get("request-id"),
            client_request_id=result.client_request_id,
            code=result.error_code,
            intent_id=intent_id,
        )


def _in_context(request: BatchRequest, call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``call(*args)`` in the context the item names (:attr:`BatchRequest.context`)."""
    if request.context is None:
        return call(*args, **kwargs)
    return request.context.run(call, *args, **kwargs)


def _log_attempt(
    method: str,
    url: str,
    status: int | None,
    request_id: str | None,
    began: float,
    *,
    kind: str = "",
) -> None:
    """``--debug``: one line per HTTP attempt — method, path (no query: filters can name
    people), status, request-id, time. Headers and bodies (tokens, secrets) are never logged."""
    ms = (time.perf_counter() - began) * 1000
    answer = str(status) if status is not None else f"no answer ({kind})"
    logger.debug(
        "%s %s -> %s request-id %s %.0f ms",
        method,
        urlsplit(url).path,
        answer,
        request_id or "-",
        ms,
    )


async def _settle(pending: list[Awaitable[None]]) -> None:
    """Await what the observers asked (the audit trail's records being stored), all of it,
    even when one fails; then raise the first failure."""
    if not pending:
        return
    results = await asyncio.gather(*pending, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result


def _missing_answer(request_id: str) -> dict[str, Any]:
    return {
        "error": {
            "code": "missingBatchResponse",
            "message": f"the $batch answer had no response for request {request_id!r}",
        }
    }


def _encode_query(query: Mapping[str, Any]) -> str:
    # OData options stay readable ($filter=displayName eq 'x' -> %20, not +).
    def text(value: Any) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)

    return "&".join(
        f"{quote(str(k), safe='$')}={quote(text(v), safe=_QUERY_SAFE)}" for k, v in query.items()
    )


_QUERY_SAFE: Final = "$,'()*:@/"
