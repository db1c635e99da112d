"""The naive sequential baseline: Microsoft's Graph walkthrough, one call at a time.

For each link (graph-limits §6.1, in the walkthrough's order; :mod:`benchmarks.walkthrough`):
T1 create the partner in the target, T2 PUT its identitySynchronization, T3 PATCH inbound
automatic redemption and trust; S1 create the partner in the source, S2 PATCH outbound automatic
redemption, S3 instantiate the CTS app template, S4 validateCredentials (credentials inline, on
``jobs/validateCredentials``), S5 create the job, S6 PUT the secrets, S7 assign the pilot group,
S8 GET the schema, S8b PUT it with the config's mappings and scoping (the walkthrough leaves the
defaults; ctsync's apply writes them, so the same work does too), S9 provisionOnDemand, S10
start, S11 poll the job once, S12 read the provisioning logs. The bodies are ctsync's own for
the same config (:func:`link_work`).

No batching, no client pacing (``Pacer(enabled=False)``), every call awaited before the next;
the client still honours ``Retry-After`` on a 429. S9 provisions the pilot user on demand (the
rule id from S8's schema), S12 reads the job's provisioning logs (``$filter`` on its jobId,
``$top=500``, first page). A step the emulator does not implement (it answers 501) is left out
and listed in :attr:`NaiveResult.skipped`. Principal ids (the pilot group and user) are pasted
in, as in the walkthrough. Token acquisitions (one per tenant) go through the in-process
emulator credential and cost no simulated latency.

For B5 the naive drift check reads, per link, the target's partner and identitySynchronization
and the source's service principal, job and schema: five sequential GETs.

For B4 the naive audit reads, tenant after tenant, the job's provisioning logs page after page
(``$filter=jobId eq …``, ``$top`` = the page size, following ``@odata.nextLink``): no client
pacing, one request in flight, ``Retry-After`` honoured on every 429 (the client's retry).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from ctsync.config import DesiredState
from ctsync.emulator.services import azure2azure
from ctsync.engine.desired import wants
from ctsync.engine.plan import nested
from ctsync.engine.schema import edit_schema, schema_edits
from ctsync.graph import GraphClient, Pacer
from ctsync.graph.apps import ApplicationsApi
from ctsync.graph.policy import CrossTenantAccessPolicyApi
from ctsync.graph.sync import SynchronizationApi

from .common import drain_emulator_hub_writes
from .walkthrough import LinkWork, walk_link
from .world import GROUP_NAME, HUB, World

__all__ = [
    "NaiveAudit",
    "NaiveRead",
    "NaiveResult",
    "link_work",
    "naive_audit",
    "naive_read",
    "naive_setup",
    "quiet_retries",
    "walk_link",
    "walkthrough_calls",
]

#: The walkthrough's calls for one link (graph-limits §6.1), in order.
WALKTHROUGH = (
    *("T1", "T2", "T3", "S1", "S2", "S3", "S4", "S5", "S6", "S7", "S8", "S8b", "S9", "S10"),
)
#: After the job is started (not part of "time to start accepted").
AFTER_START = ("S11", "S12")


@dataclass
class NaiveResult:
    """Simulated seconds to the last ``start`` accepted and to the end of the walkthrough."""

    to_start: float = 0.0
    total: float = 0.0
    #: Seconds spent in S9 (provision on demand), which ctsync's apply does not do: the
    #: speed-ups compare ctsync with :attr:`same_work`, the walkthrough to start without it.
    on_demand: float = 0.0
    wall: float = 0.0
    links: int = 0
    calls_per_link: int = 0
    calls_to_start_per_link: int = 0
    skipped: list[str] = field(default_factory=list)
    client_stats: dict[str, Any] = field(default_factory=dict)
    token_fetches: int = 0
    #: Per link, the service principal id the walkthrough created.
    sp_ids: dict[str, str] = field(default_factory=dict)

    @property
    def same_work(self) -> float:
        """To start accepted, doing the work ctsync's apply does (no provision on demand)."""
        return self.to_start - self.on_demand


def walkthrough_calls(world: World) -> tuple[list[str], list[str]]:
    """The calls this emulator implements, and the ones it answers 501 (left out)."""
    router = world.emulator.router
    probes = {
        "S9": ("POST", "/servicePrincipals/x/synchronization/jobs/y/provisionOnDemand"),
        "S12": ("GET", "/auditLogs/provisioning"),
    }
    skipped = [name for name, (m, p) in probes.items() if router.match(m, p).route is None]
    kept = [c for c in (*WALKTHROUGH, *AFTER_START) if c not in skipped]
    return kept, skipped


def link_work(desired: DesiredState, key: str) -> LinkWork:
    """The request bodies that do ctsync's work for link ``key`` (``SOURCE:TARGET``) of
    ``desired``: what its partner configurations, secrets and user mapping must hold."""
    wanted = wants(desired)
    link = wanted.links[key]
    source, target = link.source.name, link.target.name
    template = azure2azure.default_schema(azure2azure.TEMPLATE_ID, "rule", "src", "tgt")
    edited = edit_schema(template, schema_edits(link.link.sync))
    user = next(
        m
        for rule in edited["synchronizationRules"]
        for m in rule["objectMappings"]
        if str(m.get("sourceObjectName")).lower() == "user"
    )
    return LinkWork(
        inbound=nested(wanted.partners[(target, source)].members),
        outbound=nested(wanted.partners[(source, target)].members),
        secrets=dict(link.secrets),
        user_mapping={k: user[k] for k in ("flowTypes", "attributeMappings", "scope")},
    )


@contextmanager
def _clients(world: World, names: list[str]) -> Iterator[dict[str, GraphClient]]:
    pacer = Pacer(clock=world.clock, enabled=False)
    yield {name: world.client(name, pacer) for name in names}


def _merge(stats: Counter[str], client: GraphClient) -> None:
    for key, value in client.stats.as_dict().items():
        if isinstance(value, int):
            stats[key] += value


@contextmanager
def quiet_retries() -> Iterator[None]:
    """The client logs every retry as a warning; the naive scripts retry every 429 after its
    Retry-After (provisionOnDemand and the reports quota are 5 per 10 s), which would print
    hundreds of lines. The retries are counted in the client stats."""
    graph_log = logging.getLogger("ctsync.graph")
    level = graph_log.level
    graph_log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        graph_log.setLevel(level)


async def naive_setup(world: World, spokes: list[str], *, drained: bool = False) -> NaiveResult:
    """Run the walkthrough for hub → each of ``spokes``, strictly one call after another.

    ``drained``: the emulator's hub write bucket starts empty (the naive script has no client
    pacing to drain; it meets the empty bucket as 429s and waits out their Retry-After).
    """
    with quiet_retries():
        return await _naive_setup(world, spokes, drained=drained)


async def _naive_setup(world: World, spokes: list[str], *, drained: bool) -> NaiveResult:
    if drained:
        drain_emulator_hub_writes(world)
    kept, skipped = walkthrough_calls(world)
    result = NaiveResult(
        links=len(spokes),
        skipped=skipped,
        calls_per_link=len(kept),
        calls_to_start_per_link=len([c for c in kept if c not in AFTER_START]),
    )
    hub_tenant = world.emulator.tenant(HUB)
    group_id = next(g["id"] for g in hub_tenant.groups.values() if g["displayName"] == GROUP_NAME)
    pilot_id = hub_tenant.group_members[group_id][0]
    hub_id = hub_tenant.id
    stats: Counter[str] = Counter()
    clock = world.clock
    wall = time.perf_counter()
    start = clock.monotonic()
    with _clients(world, [HUB, *spokes]) as clients:
        hub = clients[HUB]

        async def on_demand(sp_id: str, job_id: str, schema: dict[str, Any]) -> None:
            # S9, timed apart: ctsync's apply does not do it.
            coro = _provision_on_demand(hub, sp_id, job_id, schema, pilot_id)
            result.on_demand += await _timed(clock, coro)

        for spoke in spokes:
            sp_id, job_id = await walk_link(
                hub,
                clients[spoke],
                hub_id=hub_id,
                spoke_id=world.desired.tenants[spoke].tenant_id,
                group_id=group_id,
                app_name=f"{spoke} (naive)",
                work=link_work(world.desired, f"{HUB}:{spoke}"),
                on_demand=on_demand if "S9" in kept else None,
            )
            result.to_start = clock.monotonic() - start
            await SynchronizationApi(hub).get_job(sp_id, job_id)  # S11 (one poll)
            if "S12" in kept:
                await hub.get(
                    "/auditLogs/provisioning",
                    params={"$filter": f"jobId eq '{job_id}'", "$top": 500},
                )
            result.sp_ids[spoke] = sp_id
        result.total = clock.monotonic() - start
        result.wall = time.perf_counter() - wall
        for client in clients.values():
            _merge(stats, client)
            await client.aclose()
    result.client_stats = dict(stats)
    result.token_fetches = stats["token_fetches"]
    return result


async def _timed(clock: Any, call: Awaitable[None]) -> float:
    began = clock.monotonic()
    await call
    return float(clock.monotonic() - began)


async def _provision_on_demand(
    hub: GraphClient, sp_id: str, job_id: str, schema: dict[str, Any], user_id: str
) -> None:
    rule_id = str(schema["synchronizationRules"][0]["id"])
    subject = {"objectId": user_id, "objectTypeName": "User"}
    await hub.post(
        f"/servicePrincipals/{quote(sp_id)}/synchronization/jobs/"
        f"{quote(job_id, safe='')}/provisionOnDemand",
        json={"parameters": [{"ruleId": rule_id, "subjects": [subject]}]},
    )


@dataclass
class NaiveRead:
    seconds: float
    wall: float
    links: int
    gets: int
    client_stats: dict[str, Any]


async def naive_read(world: World, spokes: list[str]) -> NaiveRead:
    """B5's naive drift check: five sequential GETs per configured link."""
    hub_id = world.emulator.tenant(HUB).id
    hub_tenant = world.emulator.tenant(HUB)
    # The script knows each link's service principal and job ids (kept from the setup run).
    by_name = {sp["displayName"]: sp["id"] for sp in hub_tenant.service_principals.values()}
    stats: Counter[str] = Counter()
    clock = world.clock
    wall = time.perf_counter()
    start = clock.monotonic()
    gets = 0
    with _clients(world, [HUB, *spokes]) as clients:
        hub = clients[HUB]
        apps = ApplicationsApi(hub)
        sync = SynchronizationApi(hub)
        for spoke in spokes:
            target = CrossTenantAccessPolicyApi(clients[spoke])
            await target.get_partner(hub_id)
            await target.get_identity_sync(hub_id)
            sp_id = str(by_name[f"{spoke} (ctsync)"])
            sp_obj = await apps.get_service_principal(sp_id)
            job_id = _job_id(world, sp_id)
            await sync.get_job(sp_id, job_id)
            await sync.get_schema(sp_id, job_id)
            del sp_obj
            gets += 5
        seconds = clock.monotonic() - start
        wall = time.perf_counter() - wall
        for client in clients.values():
            _merge(stats, client)
            await client.aclose()
    return NaiveRead(
        seconds=seconds, wall=wall, links=len(spokes), gets=gets, client_stats=dict(stats)
    )


def _job_id(world: World, sp_id: str) -> str:
    # The naive script kept the job id from its setup run (as the walkthrough's reader does).
    sync = world.emulator.tenant(HUB).synchronization[sp_id]
    return next(iter(sync.jobs))


@dataclass
class NaiveAudit:
    seconds: float
    wall: float
    entries: int
    pages: dict[str, int]
    counts: Counter[tuple[str, str]]
    client_stats: dict[str, Any]


async def naive_audit(world: World, jobs: dict[str, str], *, page: int) -> NaiveAudit:
    """B4's naive audit: per source tenant in turn (``jobs``: tenant name → job id, known from
    the setup), every page of the job's provisioning logs, one request at a time."""
    with quiet_retries():
        return await _naive_audit(world, jobs, page=page)


async def _naive_audit(world: World, jobs: dict[str, str], *, page: int) -> NaiveAudit:
    stats: Counter[str] = Counter()
    counts: Counter[tuple[str, str]] = Counter()
    pages: dict[str, int] = {}
    entries = 0
    clock = world.clock
    wall = time.perf_counter()
    start = clock.monotonic()
    with _clients(world, list(jobs)) as clients:
        for name, job_id in jobs.items():
            params = {"$filter": f"jobId eq '{job_id}'", "$top": page}
            pages[name] = 0
            async for rows in clients[name].iter_pages("/auditLogs/provisioning", params=params):
                pages[name] += 1
                entries += len(rows)
                for row in rows:
                    status = (row.get("provisioningStatusInfo") or {}).get("status")
                    counts[(str(row.get("provisioningAction")), str(status))] += 1
        seconds = clock.monotonic() - start
        wall = time.perf_counter() - wall
        for client in clients.values():
            _merge(stats, client)
            await client.aclose()
    return NaiveAudit(
        seconds=seconds,
        wall=wall,
        entries=entries,
        pages=pages,
        counts=counts,
        client_stats=dict(stats),
    )
