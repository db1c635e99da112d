"""One Graph client per tenant of a config, sharing one pacer (one app, one set of quotas)."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Sequence
from typing import Any

from ctsync.config import DesiredState, TenantSpec
from ctsync.engine.journal import Journal
from ctsync.engine.ownership import Ledger
from ctsync.graph import (
    Clock,
    GraphClient,
    HttpTransport,
    Pacer,
    RetryPolicy,
    build_credential,
)
from ctsync.graph._http import shared_tls
from ctsync.graph.client import TOKEN_THREADS, IntentObserver, WriteObserver
from ctsync.graph.credentials import TokenTransports

#: Requests in flight at once across every tenant of a session, and the connection pools
#: (per cloud) they are spread over.
MAX_IN_FLIGHT = 64
POOLS = 8

__all__ = ["CredentialFactory", "Session"]

#: Builds the credential of a tenant; the default resolves the config's auth settings.
CredentialFactory = Callable[[TenantSpec], Any]


class Session:
    """The clients of one run. ``transport`` and ``credentials`` let tests and the demo plug
    in the in-process emulator; ``intent_observers`` see every write before it is sent and
    ``observers`` its outcome (the audit trail)."""

    def __init__(
        self,
        desired: DesiredState,
        *,
        transport: Any = None,
        credentials: CredentialFactory | None = None,
        clock: Clock | None = None,
        pacer: Pacer | None = None,
        retry: RetryPolicy | None = None,
        observers: Sequence[WriteObserver] = (),
        intent_observers: Sequence[IntentObserver] = (),
        on_token: Callable[[str], None] | None = None,
        journal: Journal | None = None,
        replication_wait: float = 120.0,
        ledger: Ledger | None = None,
    ) -> None:
        self.desired = desired
        self._transport = transport
        self._credentials = credentials or self._from_config
        self.pacer = pacer or Pacer(clock=clock)
        self.clock = clock or self.pacer.clock
        self._retry = retry
        self._observers = list(observers)
        self._intent_observers = list(intent_observers)
        self._on_token = on_token
        #: Notes apps created but not yet tagged, so a re-run finds them by id (journal.py).
        self.journal = journal
        #: Seconds a re-run waits for an app an interrupted run may have created to show up
        #: in Entra's replicated reads before it creates one itself.
        self.replication_wait = replication_wait
        #: Which objects ctsync created, and what it changed on others (ownership.py). Without
        #: one, nothing counts as created: destroy reverts fields and deletes no partner.
        self.ledger = ledger
        self._clients: dict[str, GraphClient] = {}
        #: Connection pools per CA bundle (in practice: per cloud), shared by the tenants'
        #: clients: a fleet needs a few dozen TLS connections, not two per tenant. Tokens are
        #: per request, so sharing a pool shares nothing else. A few small pools rather than
        #: one big one (httpcore's pool does work per connection for every request it
        #: places), with one cap on the requests in flight across them.
        self._pools: dict[str | None, list[HttpTransport]] = {}
        self._slots: asyncio.Semaphore | None = None
        #: The pools' TLS context per CA bundle: one, not one per pool.
        self._tls: dict[str | None, Any] = {}
        #: Credentials this session built: closed with it (their HTTP pools included).
        self._credentials_made: list[Any] = []
        #: The authorities' connections, shared by the credentials built from the config.
        self.token_transports = TokenTransports(pool_size=TOKEN_THREADS)

    def _from_config(self, tenant: TenantSpec) -> Any:
        from ctsync.permissions import delegated_scopes, sides_of

        # A signed-in admin is asked for exactly the scopes this tenant's duties need.
        scopes = delegated_scopes(sides_of(self.desired, tenant.name))
        spec = tenant.auth.resolve(base_dir=self.desired.base_dir, scopes=scopes)
        return build_credential(
            spec,
            tenant_id=tenant.tenant_id,
            cloud=tenant.cloud,
            name=tenant.name,
            record_dir=self.desired.base_dir / ".ctsync" / "auth",
            transport=self.token_transports.get(tenant.cloud.ca_bundle),
            async_transport=self.token_transports.get_async(tenant.cloud.ca_bundle),
        )

    def client(self, tenant_name: str) -> GraphClient:
        """The client of a tenant of the config (built on first use)."""
        client = self._clients.get(tenant_name)
        if client is None:
            tenant = self.desired.tenants[tenant_name]
            if tenant.size_class:
                self.pacer.set_size_class(tenant.tenant_id, tenant.size_class)
            credential = self._credentials(tenant)
            self._credentials_made.append(credential)
            sync_credential = not inspect.iscoroutinefunction(
                getattr(credential, "get_token", None)
            )
            if self._on_token is not None and sync_credential:
                credential = _TokenTap(credential, self._on_token)
            pool = self._pool(tenant.cloud.ca_bundle, len(self._clients))
            client = GraphClient(
                tenant_id=tenant.tenant_id,
                credential=credential,
                cloud=tenant.cloud,
                pacer=self.pacer,
                retry=self._retry,
                clock=self.clock,
                http=pool,
            )
            for observer in self._observers:
                client.add_observer(observer)
            for intent_observer in self._intent_observers:
                client.add_intent_observer(intent_observer)
            self._clients[tenant_name] = client
        return client

    def _pool(self, bundle: str | None, index: int) -> HttpTransport:
        """The pool of the ``index``-th client (tenants are spread over the pools in turn)."""
        if self._slots is None:
            self._slots = asyncio.Semaphore(MAX_IN_FLIGHT)
        pools = self._pools.setdefault(bundle, [])
        if len(pools) < POOLS:
            if bundle not in self._tls:
                # An injected transport (the in-process emulator) has no TLS to set up; the
                # system's trust store is loaded only when a cloud has no CA bundle of its own.
                if bundle:
                    self._tls[bundle] = shared_tls(bundle)
                else:
                    self._tls[bundle] = True if self._transport else shared_tls(True)
            pools.append(
                HttpTransport(
                    transport=self._transport,
                    verify=self._tls[bundle],
                    max_in_flight=MAX_IN_FLIGHT // POOLS,
                    slots=self._slots,
                )
            )
            return pools[-1]
        return pools[index % POOLS]

    @property
    def requests(self) -> int:
        """HTTP requests sent so far by every client of the session."""
        return sum(c.stats.attempts for c in self._clients.values())

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()
        for pools in self._pools.values():
            for pool in pools:
                await pool.aclose()
        self._pools.clear()
        for credential in self._credentials_made:
            close = getattr(credential, "aclose", None) or getattr(credential, "close", None)
            if callable(close):
                result = close()
                if inspect.isawaitable(result):
                    await result
        self._credentials_made.clear()
        await self.token_transports.aclose()

    async def __aenter__(self) -> Session:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class _TokenTap:
    """Passes each token it hands out to a callback (who ctsync acts as, for the audit trail).

    Only synchronous credentials are wrapped, which is what azure-identity and the emulator
    provide; the token never leaves the process.
    """

    def __init__(self, inner: Any, callback: Callable[[str], None]) -> None:
        self._inner = inner
        self._callback = callback

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        token = self._inner.get_token(*scopes, **kwargs)
        self._callback(token.token)
        return token

    @property
    def async_capable(self) -> bool:
        return bool(getattr(self._inner, "async_capable", False))

    async def aget_token(self, *scopes: str, **kwargs: Any) -> Any:
        token = await self._inner.aget_token(*scopes, **kwargs)
        self._callback(token.token)
        return token

    def close(self) -> None:
        close = getattr(self._inner, "close", None)
        if callable(close):
            close()

    async def aclose(self) -> None:
        aclose = getattr(self._inner, "aclose", None)
        if callable(aclose):
            await aclose()
        else:
            self.close()
