"""The :class:`Emulator`: tenants, a clock, and one entry point for every request."""

from __future__ import annotations

import copy
import json
import random
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from ctsync.emulator.core.clients import ClientView, find_client
from ctsync.emulator.core.clock import Clock, FrozenClock
from ctsync.emulator.core.context import RequestContext
from ctsync.emulator.core.delegated import is_delegated_client
from ctsync.emulator.core.delegated_access import check_delegated
from ctsync.emulator.core.errors import (
    GraphFault,
    forbidden,
    method_not_allowed,
    not_implemented,
    unauthorized,
)
from ctsync.emulator.core.extras import add_extra_properties
from ctsync.emulator.core.first_party import microsoft_graph_service_principal
from ctsync.emulator.core.http import EmuRequest, EmuResponse, json_response
from ctsync.emulator.core.ids import IdFactory
from ctsync.emulator.core.oidc import OidcIssuer
from ctsync.emulator.core.paths import unknown_segment
from ctsync.emulator.core.query_options import QueryOptions, check_names, refuse_unread
from ctsync.emulator.core.routing import Router, normalize_path
from ctsync.emulator.core.tokens import GRAPH_APP_ID, TokenClaims, TokenIssuer
from ctsync.emulator.core.traffic import FaultProfile, TrafficControl
from ctsync.emulator.engine.queue import CycleQueue
from ctsync.emulator.engine.settings import ProvisioningSettings
from ctsync.emulator.state import ClientApp, Tenant

__all__ = ["Emulator", "GraphCall"]

GRAPH_VERSION = "v1.0"
#: The beta endpoint: only the routes marked ``beta`` answer there (others 501).
BETA_VERSION = "beta"
_PATH_SAFE = "/()'=,:@$!*+;~"

#: Audiences a Graph token may carry (Graph's resource URI and its app id), besides the
#: emulator's own origin (added per request).
_GRAPH_AUDIENCES = {"https://graph.microsoft.com", GRAPH_APP_ID}

#: How many answered calls :attr:`Emulator.request_log` keeps.
REQUEST_LOG_SIZE = 100_000


@dataclass(frozen=True)
class GraphCall:
    """An authenticated Graph call, before routing: what ``$batch`` re-dispatches."""

    method: str
    path_and_query: str
    headers: Mapping[str, str]
    body: bytes
    claims: TokenClaims
    origin: str
    client_request_id: str
    in_batch: bool = False
    #: ``v1.0``, or ``beta`` for the few beta operations the emulator serves.
    version: str = GRAPH_VERSION


class _EngineClock:
    """The emulator's clock: advancing it runs every provisioning cycle event that became due,
    in time order, each stamped with its own time (``engine/cycles.py``)."""

    def __init__(self, inner: Clock, emulator: Emulator) -> None:
        self.inner = inner
        self._emulator = emulator

    def now(self) -> datetime:
        return self.inner.now()

    def advance(self, seconds: float) -> None:
        self._emulator.advance(seconds)


def _graph_router() -> Router:
    from ctsync.emulator.services import all_routes

    return all_routes()


class Emulator:
    """A Microsoft Graph / Entra ID emulator holding any number of tenants.

    ``seed`` makes ids reproducible; ``clock`` drives every lifecycle (a frozen clock by
    default, so nothing depends on wall time); ``faults`` switches latency, random errors,
    quotas, replication lag and undocumented extra properties; ``reset_faults`` is the profile
    :meth:`reset` (control ``POST reset``) returns to — no faults unless given (a served
    emulator keeps its replication lag and extra properties across resets). ``scenario`` seeds
    tenants: ``"demo"``, ``"empty"``, a path to a JSON scenario, or a scenario mapping.
    ``provisioning`` holds the simulated provisioning engine's knobs (thresholds, durations, the
    provisionOnDemand answer shape); assign to it or to its fields at any time.
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        clock: Clock | None = None,
        faults: FaultProfile | None = None,
        reset_faults: FaultProfile | None = None,
        scenario: str | Path | Mapping[str, Any] | None = None,
        provisioning: ProvisioningSettings | None = None,
    ) -> None:
        self.seed_value = seed
        self.clock: Clock = _EngineClock(clock or FrozenClock(), self)
        self.provisioning = provisioning or ProvisioningSettings()
        self.ids = IdFactory(seed)
        self.tokens = TokenIssuer()
        #: The built-in OIDC issuer workload identity federation can trust (``/_oidc``).
        self.oidc = OidcIssuer()
        #: Certificates and federated credentials registered on seeded clients by client id
        #: (lower case), as ``(keyCredentials, federatedIdentityCredentials)``: a client
        #: reseeded after a reset gets them again (``ctsync emulator serve`` registers them).
        self.standing_client_credentials: dict[str, tuple[list[Any], list[Any]]] = {}
        #: Where ``serve`` wrote each client's certificate and federated token (client id in
        #: lower case -> ``{"certificate_path", "federated_token_file"}``), for the info file.
        self.client_files: dict[str, dict[str, str]] = {}
        self.tenants: dict[str, Tenant] = {}
        #: What :meth:`reset` restores: the platform's own behaviour without injected faults.
        self.reset_faults = reset_faults or FaultProfile()
        self.stats: Counter[str] = Counter()
        #: Every Graph call answered, in order (``$batch`` items too): what tests compare with
        #: what a client says it sent. The oldest go past :data:`REQUEST_LOG_SIZE` entries.
        self.request_log: deque[dict[str, Any]] = deque(maxlen=REQUEST_LOG_SIZE)
        self._logged = 0
        #: Pending provisioning events, earliest first (``engine/queue.py``).
        self.cycle_queue = CycleQueue(self)
        #: Counts changes made outside the provisioning engine (write requests, seeds, resets,
        #: clock moves from Python): what the engine built from tenant state is reused while it
        #: stays the same.
        self.generation = 0
        #: Of those, the ones that may have touched any tenant (all but Graph writes, which
        #: count in :attr:`tenant_writes`).
        self.unattributed_changes = 0
        #: Writes into each tenant: Graph writes made with its tokens, and the provisioning
        #: engine's exports into it as a target. With :attr:`unattributed_changes` they tell
        #: the engine that no source user changed since it last compared them all.
        self.tenant_writes: Counter[str] = Counter()
        #: The engine's reusable pass for :attr:`generation` (``engine/cycles.py``).
        self.engine_cache: object | None = None
        #: What the engine did, for tests and ``GET /_emulator/state`` (``engine``).
        self.engine_stats: Counter[str] = Counter()
        #: When the next soft-deleted user is due to be hard-deleted (``None``: none is).
        self._purge_at: datetime | None = None
        #: The recycle bins may hold a user due sooner than ``_purge_at`` (seeds, settings,
        #: direct edits), or may have gained one while ``_purge_at`` was ``None``.
        self._purge_unknown = True
        self._purge_new = False
        #: When the next multitenant-organization join or removal completes (``None``: none
        #: is pending); a cache of what the tenants hold (``services/multitenant_org.py``).
        self.mto_due_at: datetime | None = None
        self.traffic = TrafficControl(faults or FaultProfile(), rng=random.Random(seed))
        self.router = _graph_router()
        if scenario is not None:
            self.seed(scenario)

    # -- state -------------------------------------------------------------------------

    @property
    def faults(self) -> FaultProfile:
        return self.traffic.profile

    def reset(self) -> None:
        """Forget every tenant, counter, throttle state and fault (the profile goes back to
        :attr:`reset_faults`); keep the clock."""
        self.tenants.clear()
        self.stats.clear()
        self.request_log.clear()
        self.ids = IdFactory(self.seed_value)
        self.traffic.reset(self.reset_faults)
        self.provisioning = ProvisioningSettings()
        self.cycle_queue.clear()
        self.engine_stats.clear()
        self.mto_due_at = None
        self.note_change()

    # -- the provisioning engine ---------------------------------------------------------

    def note_change(self) -> None:
        """Say that tenant state may have changed outside the provisioning engine: the engine
        rebuilds what it derived from it and compares every source user again. Requests say
        so themselves, and so do seeds, resets, ``clock.advance()`` and ``run_cycles()``
        called from Python; call it after editing tenant state directly otherwise."""
        self.generation += 1
        self.unattributed_changes += 1
        self._purge_unknown = True

    def advance(self, seconds: float, *, direct_edits: bool = True) -> None:
        """Move emulator time forward (``clock.advance``) and run what became due. A caller
        in this process may have edited tenant state directly before (``direct_edits``); the
        control API's callers cannot, so ``clock/advance`` says ``False``."""
        if direct_edits:
            self.note_change()
        assert isinstance(self.clock, _EngineClock)
        self.clock.inner.advance(seconds)
        self.run_due_cycles(housekeeping=True)

    def run_due_cycles(self, *, housekeeping: bool = False) -> int:
        """Run every provisioning-cycle event due by now (also done before each request and
        after each clock advance), and hard-delete soft-deleted users whose time has come; the
        number of events handled. ``housekeeping`` looks at every recycle bin."""
        from ctsync.emulator.engine.cycles import purge_soft_deleted, run_due
        from ctsync.emulator.services.multitenant_org import settle

        now = self.clock.now()
        settle(self, now)
        handled = run_due(self, now)
        # A user soft-deleted now (by the engine or a Graph delete) is due after every one
        # already in a bin: only when none was does the next purge time need looking up.
        new = (handled > 0 or self._purge_new) and self._purge_at is None
        due = self._purge_at is not None and self._purge_at <= now
        if housekeeping or due or new or self._purge_unknown:
            self._purge_at = purge_soft_deleted(self, now)
            self._purge_unknown = False
        self._purge_new = False
        return handled

    def run_cycles(self, job_ids: list[str] | None = None) -> list[dict[str, Any]]:
        """Run one whole cycle of every started job (or of ``job_ids``) now, as control
        ``POST cycles/run`` does; each job's cycle summary."""
        from ctsync.emulator.engine.cycles import run_now

        self.note_change()
        summaries = run_now(self, job_ids)
        self.run_due_cycles(housekeeping=True)
        return summaries

    def seed(self, scenario: str | Path | Mapping[str, Any]) -> list[Tenant]:
        """Add the tenants of a scenario (name, JSON file path, or mapping)."""
        from ctsync.emulator.scenarios import load_scenario

        self.note_change()
        try:
            return load_scenario(self, scenario)
        finally:
            self.note_change()

    def add_tenant(
        self,
        *,
        name: str,
        display_name: str | None = None,
        domain: str | None = None,
        tenant_id: str | None = None,
    ) -> Tenant:
        tenant_id = (tenant_id or self.ids.guid()).lower()
        if tenant_id in self.tenants:
            msg = f"tenant {tenant_id} already exists"
            raise ValueError(msg)
        if any(t.name == name for t in self.tenants.values()):
            msg = f"a tenant named {name!r} already exists"
            raise ValueError(msg)
        tenant = Tenant(
            id=tenant_id,
            name=name,
            display_name=display_name or name.capitalize(),
            domain=domain or f"{name}.onmicrosoft.com",
        )
        microsoft_graph_service_principal(tenant)
        self.tenants[tenant_id] = tenant
        return tenant

    def add_client(
        self,
        tenant: Tenant,
        *,
        permissions: list[str],
        display_name: str = "ctsync",
        client_id: str | None = None,
        client_secret: str | None = None,
    ) -> ClientApp:
        app = ClientApp(
            client_id=client_id or self.ids.guid(),
            client_secret=client_secret or self.ids.secret(),
            display_name=display_name,
            permissions=sorted(set(permissions)),
            object_id=self.ids.guid(),
        )
        standing = self.standing_client_credentials.get(app.client_id.lower())
        if standing is not None:
            app.key_credentials = copy.deepcopy(standing[0])
            app.federated_credentials = copy.deepcopy(standing[1])
        tenant.clients[app.client_id] = app
        return app

    def client_directory(self) -> list[dict[str, Any]]:
        """One entry per app-only client: what a caller needs to sign in to each tenant.

        This is the shape of the ``tenants`` list in ``--info-file``; it holds the emulator's
        client secrets, which are test credentials by design, and the paths of the certificate
        and federated token ``serve`` wrote for each client.
        """
        return [
            {
                "name": tenant.name,
                "tenant_id": tenant.id,
                "domain": tenant.domain,
                "client_id": client.client_id,
                "client_secret": client.client_secret,
                "permissions": list(client.permissions),
                **self.client_files.get(client.client_id.lower(), {}),
            }
            for tenant in self.tenants.values()
            for client in tenant.clients.values()
        ]

    def tenant(self, name_or_id: str) -> Tenant:
        """A tenant by id or by name."""
        key = name_or_id.lower()
        if key in self.tenants:
            return self.tenants[key]
        for t in self.tenants.values():
            if t.name.lower() == key:
                return t
        msg = f"no tenant {name_or_id!r} in the emulator"
        raise KeyError(msg)

    def issue_token(
        self,
        tenant: Tenant,
        client: ClientApp | ClientView,
        *,
        audience: str = "https://graph.microsoft.com",
    ) -> tuple[str, float]:
        """Mint an app-only token for ``client``; returns the JWT and its expiry (epoch s).

        Its ``roles`` are the permissions granted right now (``core/clients.py``): a grant on
        the Microsoft Graph service principal shows in the next token.
        """
        if isinstance(client, ClientView):
            roles = sorted(client.roles)
        else:
            view = find_client(tenant, client.client_id)
            roles = sorted(view.roles) if view is not None else list(client.permissions)
        token, expires = self.tokens.issue(
            tenant_id=tenant.id,
            app_id=client.client_id,
            object_id=client.object_id,
            roles=roles,
            audience=audience,
            now=self.clock.now(),
            token_id=self.ids.hex32(),
        )
        return token, expires.timestamp()

    # -- the one entry point -------------------------------------------------------------

    def handle(self, request: EmuRequest) -> EmuResponse:
        """Answer one HTTP request: Graph, the OAuth endpoints, or the control API."""
        path = normalize_path(urlsplit(request.url).path)
        first = path.split("/")[1] if path != "/" else ""
        graph = first.lower() in (GRAPH_VERSION, BETA_VERSION)
        if first == "_emulator" or graph:
            # Provisioning cycles run lazily: whatever became due happens before the answer.
            self.run_due_cycles()
        if request.method.upper() not in {"GET", "HEAD"}:
            # A write may change what the engine reads (users, assignments, policies, schemas).
            # A Graph write counts against its tenant (``dispatch``); the identity platform's
            # endpoints change no user, assignment or secret; moving the clock through the
            # control API changes nothing by itself; any other control write may change all.
            if first != "_emulator":
                self.generation += 1
                self._purge_new = True
            elif path.lower().rstrip("/") != "/_emulator/clock/advance":
                self.note_change()
        if first == "_emulator":
            from ctsync.emulator.core.control import handle_control

            return handle_control(self, request, path.removeprefix("/_emulator"))
        if graph:
            # A HEAD answer is complete with its headers, so no socket could lose it halfway.
            drop = self.traffic.drop() if request.method.upper() != "HEAD" else None
            if drop == "before":
                # The request never reached the service: nothing runs, nothing is counted.
                return _lost_request()
            response = self._handle_graph(
                request, path.removeprefix("/" + first) or "/", version=first.lower()
            )
            response.delay = self.traffic.latency()
            response.drop = drop == "after"
            return response
        from ctsync.emulator.core.oauth import handle_oauth

        return handle_oauth(self, request, path)

    def _handle_graph(
        self, request: EmuRequest, path: str, *, version: str = GRAPH_VERSION
    ) -> EmuResponse:
        request_id = self.ids.guid()
        client_request_id = request.header("client-request-id") or request_id
        self.stats["requests"] += 1
        try:
            claims = self._authenticate(request)
            query = request.query
            path_and_query = path + (("?" + urlsplit(request.url).query) if query else "")
            call = GraphCall(
                method=request.method.upper(),
                path_and_query=path_and_query,
                headers=request.headers,
                body=request.body,
                claims=claims,
                origin=request.origin,
                client_request_id=client_request_id,
                version=version,
            )
            response = self.dispatch(call, request_id=request_id)
        except GraphFault as fault:
            response = self.error_response(fault, request_id, client_request_id)
        self.stats[f"status_{response.status}"] += 1
        self.log_request(request.method, path, response.status, client_request_id)
        response.headers.setdefault("request-id", request_id)
        response.headers.setdefault("client-request-id", client_request_id)
        return response

    def log_request(
        self, method: str, path: str, status: int, client_request_id: str, *, in_batch: bool = False
    ) -> None:
        """Note one answered Graph call in :attr:`request_log` (``seq`` counts from 1)."""
        self._logged += 1
        self.request_log.append(
            {
                "seq": self._logged,
                "method": method.upper(),
                "path": urlsplit(path).path,
                "status": status,
                "client_request_id": client_request_id,
                "in_batch": in_batch,
            }
        )

    def _authenticate(self, request: EmuRequest) -> TokenClaims:
        auth = request.header("authorization") or ""
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise unauthorized("Access token is empty.")
        audiences = _GRAPH_AUDIENCES | {request.origin}
        claims = self.tokens.verify(token.strip(), now=self.clock.now(), audiences=audiences)
        tenant = self.tenants.get(claims.tenant_id.lower())
        if tenant is None or not (
            find_client(tenant, claims.app_id) is not None
            or (claims.delegated and is_delegated_client(tenant, claims.app_id))
        ):
            raise unauthorized("Access token validation failure. Invalid issuer or tenant.")
        return claims

    def dispatch(self, call: GraphCall, *, request_id: str) -> EmuResponse:
        """Route an authenticated Graph call; raise :class:`GraphFault` for error answers.

        Traffic control (random faults, quotas, enforced Retry-After) applies to every call,
        including each request inside a ``$batch``.
        """
        tenant = self.tenants[call.claims.tenant_id.lower()]
        if call.method not in {"GET", "HEAD"}:
            self.tenant_writes[tenant.id] += 1
        raw_path, mark, raw_query = call.path_and_query.partition("?")
        path = normalize_path(raw_path)
        # Re-quote the decoded path: a guest's UPN holds '#', which would end the URL's path.
        url = f"{call.origin}/{call.version}{quote(path, safe=_PATH_SAFE)}{mark}{raw_query}"
        request = EmuRequest(
            method=call.method,
            url=url,
            headers=call.headers,
            body=call.body,
        )
        query = QueryOptions(
            {(k.lower() if k.startswith("$") else k): v for k, v in request.query.items()}
        )
        match = self.router.match(call.method, path)
        if match.route is None:
            if match.method_mismatch:
                raise self.router.mismatch_fault(call.method, path) or method_not_allowed(
                    call.method, path
                )
            segment = unknown_segment(path)
            if segment is not None:
                # OData's URI parser: a path Graph does not have, before any service sees it.
                raise GraphFault(
                    400, "BadRequest", f"Resource not found for the segment '{segment}'."
                )
            raise not_implemented(call.method, path)
        check_names(call.method, query)
        route = match.route
        if call.version == BETA_VERSION and not route.beta:
            raise GraphFault(
                501,
                "NotImplemented",
                f"The ctsync emulator serves {call.method} {path} under /v1.0 only; of beta it "
                "has only what ctsync opts into (identitySynchronization with groupSyncInbound).",
            )
        now = self.clock.now()
        admission = self.traffic.admit(
            app_id=call.claims.app_id,
            tenant_id=tenant.id,
            size_class=tenant.size_class,
            kind=route.kind,
            cost=route.cost,
            is_write=route.is_write,
            query=dict(dict.items(query)),
            client_request_id=call.client_request_id,
            priority=call.headers.get("x-ms-throttle-priority", "normal"),
            now=now,
        )
        if admission.fault is not None:
            admission.fault.headers.update(admission.headers)
            raise admission.fault
        if call.claims.delegated:
            # A signed-in user: the operation's delegated scopes and directory roles.
            check_delegated(tenant, route, match.params, call.claims)
        elif route.permissions and not (call.claims.roles & set(route.permissions)):
            raise forbidden()
        ctx = RequestContext(
            emulator=self,
            request=request,
            tenant=tenant,
            app_id=call.claims.app_id,
            # A delegated caller's scopes stand where an app's permissions do (services check
            # finer rules, such as companion permissions, against them).
            roles=call.claims.scopes if call.claims.delegated else call.claims.roles,
            path=path,
            params=match.params,
            query=query,
            body=_parse_body(call.method, call.body),
            request_id=request_id,
            client_request_id=call.client_request_id,
            now=now,
            base_url=f"{call.origin}/{call.version}",
            call=call,
        )
        ctx.extra_headers.update(admission.headers)
        response = route.handler(ctx)
        if call.method in {"GET", "HEAD"} and response.status < 400:
            # An option the route never looked at would have been ignored: refuse it.
            refuse_unread(path, query)
        if self.faults.extra_properties:
            response = add_extra_properties(ctx, response)
        response.headers.update(ctx.extra_headers)
        return response

    def error_response(
        self, fault: GraphFault, request_id: str, client_request_id: str
    ) -> EmuResponse:
        """Graph's error envelope, with ``innerError`` ids echoing the client's."""
        error: dict[str, Any] = {"code": fault.code, "message": fault.message}
        if fault.details:
            error["details"] = fault.details
        error["innerError"] = {
            "date": self.clock.now().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
            "request-id": request_id,
            "client-request-id": client_request_id,
        }
        headers = dict(fault.headers)
        headers["request-id"] = request_id
        headers["client-request-id"] = client_request_id
        return json_response(fault.status, {"error": error}, headers)


def _lost_request() -> EmuResponse:
    """What a transport gets for a request lost before the service saw it (``drop-before``):
    only the order to drop the connection. Over a socket the client sees a status line and
    headers and then the connection closes, as for a lost answer; this 502 is never read."""
    body = b'{"error":{"code":"connectionDropped","message":"The connection was dropped."}}'
    return EmuResponse(
        status=502, headers={"content-type": "application/json"}, body=body, drop=True
    )


def _parse_body(method: str, body: bytes) -> Any:
    if method in {"GET", "DELETE"} or not body.strip():
        return None
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        msg = (
            "Unable to read JSON request payload. Please ensure Content-Type header is set "
            "and payload is of valid JSON format."
        )
        raise GraphFault(400, "BadRequest", msg) from exc
