"""Client-side pacing: stay under Graph's quotas instead of bouncing off 429s.

Graph documents its limits as "quota per window" and calls the mechanism a token bucket
(graph-limits §1.2-1.4). Following graph-limits §6.3 we model each limit as a bucket whose
**capacity is the window quota** and whose **refill rate is quota / window**, and we apply a
``headroom`` factor (default 0.95) to both, because other callers share some scopes and Graph's
accounting is not exact. One :class:`Pacer` is shared by every :class:`GraphClient` of one app,
so the per-app buckets see all tenants.

Per (app, tenant): identity RU (S/M/L = 3,500 / 5,000 / 8,000 per 10 s), writes (3,000 per
150 s), reports (5 per 10 s, ``/auditLogs/*`` and ``/reports/*``), provisionOnDemand (5 per 10 s).
Per app: 150,000 RU per 20 s, 35,000 writes per 5 min, reports 122 per 10 s, and the global
130,000 requests per 10 s.

The **throttle gate**: once Graph answers 429 with ``Retry-After`` for a tenant and family,
every request of that tenant and family waits until then, so concurrent tasks make no early
calls (Graph keeps counting throttled calls, graph-limits §1.5). ``x-ms-throttle-scope``
starting with ``Application`` widens the gate to every tenant. When the wait ends the gate is
half-open: one probe goes first and the others follow only once it got through, oldest logical
request first, so a stale ``Retry-After`` costs one 429 rather than one per waiting task.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, NamedTuple
from urllib.parse import parse_qsl, urlsplit

from .clock import Clock, SystemClock

__all__ = [
    "BATCH",
    "IDENTITY",
    "PROVISION_ON_DEMAND",
    "REPORTS",
    "Cost",
    "Pacer",
    "Quota",
    "Quotas",
    "SizeClass",
    "ThrottleGate",
    "Ticket",
    "TokenBucket",
    "estimate_cost",
]

IDENTITY: Final = "identity"
REPORTS: Final = "reports"
PROVISION_ON_DEMAND: Final = "provisionOnDemand"
BATCH: Final = "batch"
"""The ``POST /$batch`` envelope itself: its sub-requests are charged one by one."""

SizeClass = Literal["S", "M", "L"]

# Refill arithmetic in floats can fall a hair short of a whole token; never wait for a hair.
_EPSILON: Final = 1e-9


class TokenBucket:
    """A token bucket on an injectable clock; waiters are served first come, first served.

    A request larger than the capacity waits for a full bucket and leaves it in debt, so the
    long-run rate still holds.
    """

    def __init__(
        self,
        capacity: float,
        refill_per_second: float,
        clock: Clock,
        *,
        initial: float | None = None,
    ) -> None:
        if capacity <= 0 or refill_per_second <= 0:
            msg = "a token bucket needs a positive capacity and refill rate"
            raise ValueError(msg)
        self.capacity = capacity
        self.refill_per_second = refill_per_second
        self._clock = clock
        self._tokens = capacity if initial is None else min(capacity, initial)
        self._stamp = clock.monotonic()
        # asyncio.Lock hands itself to waiters in arrival order and does not let a newcomer
        # barge past them: that is the FIFO fairness.
        self._lock = asyncio.Lock()

    @property
    def level(self) -> float:
        """Tokens available now (negative while in debt)."""
        self._refill()
        return self._tokens

    def _refill(self) -> None:
        now = self._clock.monotonic()
        elapsed = max(0.0, now - self._stamp)
        self._stamp = now
        self._tokens = min(self.capacity, self._tokens + elapsed * self.refill_per_second)

    async def acquire(self, amount: float = 1.0) -> float:
        """Take ``amount`` tokens, waiting as long as needed. Returns the seconds waited."""
        if amount <= 0:
            return 0.0
        need = min(amount, self.capacity)
        waited = 0.0
        async with self._lock:
            self._refill()
            while self._tokens < need - _EPSILON:
                wait = (need - self._tokens) / self.refill_per_second
                before = self._clock.monotonic()
                await self._clock.sleep(wait)
                waited += self._clock.monotonic() - before
                self._refill()
            self._tokens -= amount
        return waited


class Cost(NamedTuple):
    """What one request costs: its throttling family, resource units and writes."""

    family: str
    ru: int
    writes: int


@dataclass(frozen=True)
class Quota:
    """``amount`` per ``window`` seconds."""

    amount: float
    window: float

    @property
    def rate(self) -> float:
        return self.amount / self.window


@dataclass(frozen=True)
class Quotas:
    """Graph's documented limits (graph-limits §1); override for the emulator or experiments."""

    tenant_ru: Mapping[str, Quota] = field(
        default_factory=lambda: {
            "S": Quota(3_500, 10.0),
            "M": Quota(5_000, 10.0),
            "L": Quota(8_000, 10.0),
        }
    )
    tenant_writes: Quota = Quota(3_000, 150.0)
    tenant_reports: Quota = Quota(5, 10.0)
    tenant_provision_on_demand: Quota = Quota(5, 10.0)
    app_ru: Quota = Quota(150_000, 20.0)
    app_writes: Quota = Quota(35_000, 300.0)
    app_reports: Quota = Quota(122, 10.0)
    app_requests: Quota = Quota(130_000, 10.0)


class Pacer:
    """Token buckets per tenant and per app, plus the throttle gate. Share one per app."""

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        enabled: bool = True,
        headroom: float = 0.95,
        size_class: SizeClass = "S",
        quotas: Quotas | None = None,
        start_full: bool = True,
    ) -> None:
        if not 0.0 < headroom <= 1.0:
            msg = "Pacer headroom is a fraction in (0, 1]"
            raise ValueError(msg)
        self.clock: Clock = clock or SystemClock()
        self.enabled = enabled
        self.headroom = headroom
        self.quotas = quotas or Quotas()
        self._default_size: SizeClass = size_class
        self._sizes: dict[str, SizeClass] = {}
        self._start_full = start_full
        self._buckets: dict[tuple[str | None, str], TokenBucket] = {}
        self._gates: dict[tuple[str | None, str], ThrottleGate] = {}
        #: Seconds spent waiting, by bucket or gate name (for benchmarks).
        self.waited: dict[str, float] = {}

    def set_size_class(self, tenant_id: str, size_class: SizeClass) -> None:
        """Set a tenant's size class (S < 50 users, M <= 500, L > 500) before its first call."""
        self._sizes[tenant_id] = size_class
        self._buckets.pop((tenant_id, "ru"), None)

    # -- buckets --------------------------------------------------------------------------

    def bucket(self, tenant_id: str | None, name: str) -> TokenBucket:
        """The bucket ``name`` (``ru``, ``writes``, ``reports``, ``pod``; app-wide also
        ``requests``) of a tenant, or of the app when ``tenant_id`` is None."""
        key = (tenant_id, name)
        bucket = self._buckets.get(key)
        if bucket is None:
            quota = self._quota(tenant_id, name)
            capacity = quota.amount * self.headroom
            bucket = TokenBucket(
                capacity,
                quota.rate * self.headroom,
                self.clock,
                initial=None if self._start_full else 0.0,
            )
            self._buckets[key] = bucket
        return bucket

    def _quota(self, tenant_id: str | None, name: str) -> Quota:
        q = self.quotas
        if tenant_id is None:
            return {
                "ru": q.app_ru,
                "writes": q.app_writes,
                "reports": q.app_reports,
                "requests": q.app_requests,
            }[name]
        if name == "ru":
            return q.tenant_ru[self._sizes.get(tenant_id, self._default_size)]
        return {
            "writes": q.tenant_writes,
            "reports": q.tenant_reports,
            "pod": q.tenant_provision_on_demand,
        }[name]

    async def acquire(
        self,
        tenant_id: str,
        cost: Cost,
        *,
        since: float | None = None,
        can_probe: bool = True,
        ticket: Ticket | None = None,
    ) -> Ticket:
        """Wait until no 429 gate holds the request and ``cost`` fits every bucket it draws on.

        ``since`` (monotonic) is when the logical request started: gates release the oldest
        first. ``can_probe`` False keeps the request from being a gate's lone probe. Requests
        that travel together (the items of one ``$batch``) share one ``ticket``: the first item
        may probe for all of them, and the rest pass the gates it holds. Hand the ticket back
        to :meth:`settle` when the answer is in.
        """
        ticket = Ticket() if ticket is None else ticket
        if not self.enabled:
            return ticket
        since = self.clock.monotonic() if since is None else since
        try:
            await self._pass_gates(tenant_id, cost.family, since, can_probe, ticket)
            if cost.family != BATCH:
                await self._take_tokens(tenant_id, cost)
                # A 429 may have closed a gate while we queued for tokens.
                await self._pass_gates(tenant_id, cost.family, since, can_probe, ticket)
        except BaseException:
            self.settle(ticket, ok=None)  # never leave a gate waiting on a probe that won't come
            raise
        return ticket

    async def _take_tokens(self, tenant_id: str, cost: Cost) -> None:
        plan: list[tuple[str | None, str, float]] = [(None, "requests", 1)]
        if cost.family == REPORTS:
            plan += [(tenant_id, "reports", 1), (None, "reports", 1)]
        else:
            if cost.family == PROVISION_ON_DEMAND:
                plan.append((tenant_id, "pod", 1))
            plan += [(tenant_id, "ru", cost.ru), (None, "ru", cost.ru)]
            if cost.writes:
                plan += [(tenant_id, "writes", cost.writes), (None, "writes", cost.writes)]
        for tenant, name, amount in plan:
            waited = await self.bucket(tenant, name).acquire(amount)
            if waited:
                label = f"{'tenant' if tenant else 'app'}.{name}"
                self.waited[label] = self.waited.get(label, 0.0) + waited

    def settle(self, ticket: Ticket, *, ok: bool | None) -> None:
        """Report how the request of ``ticket`` ended: ``ok`` True for any answer but 429,
        False for a 429 (after :meth:`throttled`), None for no answer at all."""
        for gate in ticket.probes:
            gate.settle(ok=ok)
        ticket.probes.clear()
        ticket.passed.clear()

    # -- the throttle gate ----------------------------------------------------------------

    def _gate(self, key: tuple[str | None, str]) -> ThrottleGate:
        gate = self._gates.get(key)
        if gate is None:
            gate = self._gates[key] = ThrottleGate(self.clock)
        return gate

    async def _pass_gates(
        self, tenant_id: str, family: str, since: float, can_probe: bool, ticket: Ticket
    ) -> None:
        """Pass the app-wide and the tenant gate of ``family``.

        :meth:`ThrottleGate.enter` returns only once the caller may go. A gate passed is not
        entered again unless a new 429 closed it since (its ``closings`` moved on), so the loop
        ends as soon as no fresh 429 arrives: it never spins on a gate that still wants a probe
        somebody else will send.
        """
        keys = ((None, family), (tenant_id, family))

        def holds(gate: ThrottleGate) -> bool:
            return not (
                gate in ticket.probes or ticket.passed.get(gate) == gate.closings or gate.passable()
            )

        while pending := [g for k in keys if (g := self._gates.get(k)) and holds(g)]:
            for gate in pending:
                if not holds(gate):
                    continue
                before = self.clock.monotonic()
                if await gate.enter(since=since, can_probe=can_probe):
                    ticket.probes.append(gate)
                ticket.passed[gate] = gate.closings
                if (spent := self.clock.monotonic() - before) > 0:
                    self.waited["gate"] = self.waited.get("gate", 0.0) + spent

    def throttled(
        self, tenant_id: str, family: str, seconds: float, *, scope: str | None = None
    ) -> None:
        """Record a 429 that asked for ``seconds``; ``scope`` is ``x-ms-throttle-scope``.

        Scope ``Application/...`` closes the gate of ``family`` for every tenant.
        """
        if not self.enabled or seconds <= 0:
            return
        app_wide = bool(scope) and str(scope).split("/", 1)[0].strip().lower() == "application"
        self._gate((None if app_wide else tenant_id, family)).close(seconds)

    def held_until(self, tenant_id: str, family: str) -> float | None:
        """Monotonic time the gates of ``tenant_id`` and ``family`` open, if closed now."""
        now = self.clock.monotonic()
        ends = [
            gate.until
            for key in ((tenant_id, family), (None, family))
            if (gate := self._gates.get(key)) is not None and gate.until > now
        ]
        return max(ends) if ends else None


@dataclass(eq=False)
class Ticket:
    """What :meth:`Pacer.acquire` hands out: the gates this request probes for."""

    probes: list[ThrottleGate] = field(default_factory=list)
    #: Gates passed (not as the probe), with the number of closings each had then.
    passed: dict[ThrottleGate, int] = field(default_factory=dict)


class ThrottleGate:
    """The 429 gate of one scope: a tenant and family, or a family across the whole app.

    Closed until ``Retry-After`` ends, then half-open: the oldest waiting request that may
    probe goes alone; once it gets any answer but 429 the gate opens and the rest go, oldest
    logical request first (so a request throttled again and again is not starved by newer
    ones). Another 429 closes it again. Nothing is sent to a closed scope.
    """

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self.until = 0.0
        #: How many 429s closed the gate so far: a request passed it for the closings it saw.
        self.closings = 0
        self.needs_probe = False
        self.probing = False
        self._queue: list[tuple[float, int, bool, asyncio.Future[bool]]] = []
        self._seq = itertools.count()
        self._timer: asyncio.Task[None] | None = None

    def close(self, seconds: float) -> None:
        self.until = max(self.until, self._clock.monotonic() + seconds)
        self.closings += 1
        self.needs_probe = True
        if self._queue:
            self._schedule()

    def passable(self) -> bool:
        """Open with nothing queued: a request may go straight through."""
        return (
            not self._queue
            and not self.probing
            and not self.needs_probe
            and self._clock.monotonic() >= self.until
        )

    async def enter(self, *, since: float, can_probe: bool) -> bool:
        """Wait for the gate. True when let through as the probe (then :meth:`settle`)."""
        if not self._queue and not self.probing and self._clock.monotonic() >= self.until:
            if self.needs_probe and can_probe:
                self.probing = True
                return True
            return False
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._queue, (since, next(self._seq), can_probe, future))
        self._schedule()
        try:
            return await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled() and future.result():
                self.settle(ok=None)  # chosen as the probe, then cancelled: pass the role on
            raise

    def settle(self, *, ok: bool | None) -> None:
        self.probing = False
        if ok:
            self.needs_probe = False
        self._dispatch()

    def _schedule(self) -> None:
        if self._timer is None or self._timer.done():
            self._timer = asyncio.get_running_loop().create_task(self._open_when_due())

    async def _open_when_due(self) -> None:
        while (left := self.until - self._clock.monotonic()) > 0:
            await self._clock.sleep(left)
        self._timer = None
        self._dispatch()

    def _dispatch(self) -> None:
        self._queue = [w for w in self._queue if not w[3].done()]
        heapq.heapify(self._queue)
        if not self._queue or self.probing:
            return
        if self._clock.monotonic() < self.until:
            self._schedule()
            return
        if self.needs_probe:
            for waiter in sorted(self._queue):
                if waiter[2]:
                    self._queue.remove(waiter)
                    heapq.heapify(self._queue)
                    self.probing = True
                    waiter[3].set_result(True)
                    return
        while self._queue:
            heapq.heappop(self._queue)[3].set_result(False)


# -- cost estimation (graph-limits §1.2) ----------------------------------------------------

_WRITE_METHODS: Final = frozenset({"POST", "PATCH", "PUT", "DELETE"})
_VERSION_ROOTS: Final = ("v1.0", "beta")


def _segments(path: str) -> list[str]:
    parts = [p for p in urlsplit(path).path.split("/") if p]
    if parts and parts[0].lower() in _VERSION_ROOTS:
        parts = parts[1:]
    return [p.lower() for p in parts]


def _get_base_ru(seg: list[str]) -> int:
    n = len(seg)
    if n == 1 and seg[0] in {"users", "applications", "oauth2permissiongrants"}:
        return 2
    if n == 1 and seg[0] in {"contracts", "subscribedskus"}:
        return 3
    if n == 2 and seg == ["me", "memberof"]:
        return 2
    if n >= 3 and seg[0] == "serviceprincipals" and seg[2] == "approleassignments":
        return 2
    if n >= 3 and seg[0] == "groups" and seg[2] == "members":
        return 3
    if n >= 3 and seg[0] == "groups" and seg[2] == "transitivemembers":
        return 5
    if n >= 3 and seg[0] == "domains" and seg[2] == "domainnamereferences":
        return 4
    return 1


def estimate_cost(method: str, path: str, params: Mapping[str, Any] | None = None) -> Cost:
    """The throttling family, RU and writes of a request (graph-limits §1.2 table).

    GET ``users`` / ``applications`` (collections) cost 2 RU, ``groups/{id}/members`` 3,
    ``groups/{id}/transitiveMembers`` 5, other identity GETs 1; writes cost 1 RU and 1 write.
    ``$select`` -1, ``$expand`` +1, ``$top`` < 20 -1, never below 1. ``/auditLogs/*`` and
    ``/reports/*`` are the reports family (one request each), ``.../provisionOnDemand`` its own
    family on top of identity. Query options are read from ``params`` and from ``path``.
    """
    method = method.upper()
    seg = _segments(path)
    if seg == ["$batch"]:
        return Cost(BATCH, 0, 0)
    if seg and seg[0] in {"auditlogs", "reports"}:
        return Cost(REPORTS, 1, 0)
    query = {k.lower(): v for k, v in parse_qsl(urlsplit(path).query)}
    query.update({k.lower(): v for k, v in (params or {}).items()})
    select = "$select" in query
    writes = 0
    if method == "GET":
        ru = _get_base_ru(seg)
    elif (
        method == "POST"
        and seg
        and seg[-1] in {"checkmembergroups", "checkmemberobjects", "ismemberof"}
    ):
        ru = 4
    elif method == "POST" and seg and seg[-1] in {"getbyids", "getobjectsbyid"}:
        ru = 2 if select else 5
        select = False
    else:
        ru = 1
        writes = 1 if method in _WRITE_METHODS else 0
    if select:
        ru -= 1
    if "$expand" in query:
        ru += 1
    top = query.get("$top")
    if top is not None:
        try:
            if int(str(top)) < 20:
                ru -= 1
        except ValueError:
            pass
    family = PROVISION_ON_DEMAND if seg and seg[-1] == "provisionondemand" else IDENTITY
    return Cost(family, max(1, ru), writes)
