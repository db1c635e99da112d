"""Run a plan: steps in dependency order, concurrently across links and tenants.

A step starts when every step it depends on is done; a failed step skips its dependants and
nothing else. Concurrency is bounded per tenant and overall, and the session's shared pacer
keeps each tenant under Graph's quotas. Every step is idempotent against the state a killed run
leaves behind (a create that finds the object answers 409 and turns into an update), so a re-run
of ``plan``/``apply`` converges without duplicates.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import quote

from ctsync.engine.desired import parse_stage_tag, stage_tag
from ctsync.engine.model import ApplyReport, Plan, Step, StepOutcome
from ctsync.engine.ownership import app_key
from ctsync.engine.schema import desired_schema, keep_ids, schema_drift
from ctsync.engine.session import Session
from ctsync.errors import BadRequestError, ConflictError, CtsyncError, GraphError, NotFoundError
from ctsync.graph import BatchRequest, BatchResult, GraphClient, raise_for_item
from ctsync.graph.apps import ApplicationsApi
from ctsync.graph.replication import until_readable
from ctsync.graph.sync import NewJob, SynchronizationApi, guess_job_id

__all__ = ["Event", "ExecuteOptions", "PlanError", "check_plan", "execute"]

T = TypeVar("T")

#: Called when a step starts (``start``, None), ends (``end``, its outcome) and while it waits
#: (``wait``, what it waits for, as a sentence).
Event = Callable[[str, Step, StepOutcome | str | None], None]
#: Wraps each step so every Graph write inside it can be attributed (the audit trail's hook).
StepScope = Callable[[Step], AbstractContextManager[Any]]

POLICY_CHECK_CODES = frozenset(
    {
        "AzureDirectoryB2BManagementPolicyCheckFailure",
        "AzureActiveDirectoryCrossTenantSyncPolicyCheckFailure",
    }
)


@dataclass(frozen=True)
class ExecuteOptions:
    #: Steps running at once, overall and per tenant.
    concurrency: int = 64
    per_tenant: int = 16
    #: How long to wait for a just-created object to become readable (replication lag).
    ready_timeout: float = 180.0
    #: How long `destroy` waits for a provisioning cycle to deprovision unassigned users.
    deprovision_timeout: float = 3 * 3600.0
    deprovision_poll: float = 300.0


@dataclass
class _LinkContext:
    sp_id: str | None = None
    app_id: str | None = None
    app_role_id: str | None = None
    job_id: str | None = None
    #: The service principal's tags that are not ctsync's (kept when ctsync tags it).
    other_tags: list[str] | None = None
    #: What was read beside the job's creation (``create_job_reading``): the schema step
    #: reads only what is missing.
    new_job: NewJob | None = None


@dataclass
class _Run:
    plan: Plan
    session: Session
    options: ExecuteOptions
    scope: StepScope
    on_event: Event | None
    links: dict[str, _LinkContext] = field(default_factory=dict)
    outcomes: dict[str, StepOutcome] = field(default_factory=dict)
    done: dict[str, asyncio.Event] = field(default_factory=dict)
    #: The plan's steps by id.
    steps: dict[str, Step] = field(default_factory=dict)
    #: The steps that depend on each step (a step's write may travel with its lead's, see
    #: :func:`_rider`).
    dependents: dict[str, list[Step]] = field(default_factory=dict)
    #: The steps running now (past their dependencies, holding a place).
    running: set[str] = field(default_factory=set)
    #: The steps waiting for running steps before they write (see :func:`_rider`).
    waiting: set[str] = field(default_factory=set)
    #: Steps already sent in their lead's ``$batch``: the answer to each.
    rode: dict[str, BatchResult] = field(default_factory=dict)

    def link(self, step: Step) -> _LinkContext:
        key = str(step.params.get("link") or (step.links[0] if step.links else ""))
        ctx = self.links.setdefault(key, _LinkContext())
        for name in ("sp_id", "app_id", "app_role_id", "job_id"):
            if getattr(ctx, name) is None and step.params.get(name):
                setattr(ctx, name, step.params[name])
        return ctx


@contextlib.contextmanager
def _no_scope(step: Step) -> Iterator[None]:
    del step
    yield


async def execute(
    plan: Plan,
    session: Session,
    *,
    options: ExecuteOptions | None = None,
    scope: StepScope | None = None,
    on_event: Event | None = None,
) -> ApplyReport:
    """Run ``plan``; never raises for a failed step — the report says what was done.

    A plan that cannot run as a whole (a step of unknown kind or tenant, a dependency that is
    not in the plan, a cycle) raises :class:`PlanError` before anything is written.
    """
    check_plan(plan, tenants=set(session.desired.tenants))
    started = time.perf_counter()
    requests_before = session.requests
    run = _Run(plan, session, options or ExecuteOptions(), scope or _no_scope, on_event)
    run.done = {s.id: asyncio.Event() for s in plan.steps}
    run.steps = {s.id: s for s in plan.steps}
    for s in plan.steps:
        for dep in s.depends_on:
            run.dependents.setdefault(dep, []).append(s)
    overall = asyncio.Semaphore(run.options.concurrency)
    tenants = {s.tenant: asyncio.Semaphore(run.options.per_tenant) for s in plan.steps}

    async def one(step: Step) -> None:
        carried = False
        try:
            for dep in step.depends_on:
                if dep in run.done:
                    await run.done[dep].wait()
            if step.id in run.outcomes:
                carried = True  # finished with the step it travelled with (see _carried)
                return
            blocked = [
                d for d in step.depends_on if d in run.outcomes and run.outcomes[d].status != "done"
            ]
            if blocked:
                run.outcomes[step.id] = StepOutcome(
                    step.id, "skipped", error=f"not run: {', '.join(blocked)} did not complete"
                )
                return
            async with overall, tenants[step.tenant]:
                run.running.add(step.id)
                if run.on_event:
                    run.on_event("start", step, None)
                begin = time.perf_counter()
                try:
                    with run.scope(step):
                        await _HANDLERS[(step.resource, step.action)](run, step)
                    outcome = StepOutcome(step.id, "done")
                except GraphError as exc:
                    outcome = StepOutcome(
                        step.id, "failed", error=_explain(exc), graph_error=exc.to_dict()
                    )
                except CtsyncError as exc:
                    outcome = StepOutcome(step.id, "failed", error=str(exc))
                outcome.seconds = time.perf_counter() - begin
                run.outcomes[step.id] = outcome
        finally:
            run.running.discard(step.id)
            run.done[step.id].set()
            if run.on_event and step.id in run.outcomes and not carried:
                run.on_event("end", step, run.outcomes[step.id])

    await asyncio.gather(*(one(s) for s in plan.steps))
    _note_applied(run)
    report = ApplyReport(plan=plan, outcomes=[run.outcomes[s.id] for s in plan.steps])
    report.seconds = time.perf_counter() - started
    report.requests = session.requests - requests_before
    return report


def _note_applied(run: _Run) -> None:
    """Tell the next run what this one changed (``engine.settle``): it reads again while it
    misses these writes; a destroy ends that."""
    journal = run.session.journal
    if journal is None:
        return
    if run.plan.kind != "apply":
        journal.forget_applied()
        return
    done = [s.fingerprint() for s in run.plan.steps if run.outcomes[s.id].status == "done"]
    if done:
        journal.record_applied(done, at=run.session.clock.wall().strftime("%Y-%m-%dT%H:%M:%SZ"))


class PlanError(CtsyncError):
    """A plan that cannot be run: nothing of it was run."""


def check_plan(plan: Plan, *, tenants: set[str]) -> None:
    """Refuse a plan the executor could not run whole: every step of a known kind, in a
    tenant of the config, with unique ids, depending only on steps of the plan, no cycle."""
    ids = [s.id for s in plan.steps]
    problems: list[str] = []
    if len(set(ids)) != len(ids):
        twice = sorted({i for i in ids if ids.count(i) > 1})
        problems.append(f"step ids appear twice: {', '.join(twice)}")
    known = set(ids)
    for step in plan.steps:
        if (step.resource, step.action) not in _HANDLERS:
            problems.append(f"step {step.id}: no such kind of step ({step.resource} {step.action})")
        if step.tenant not in tenants:
            problems.append(f"step {step.id}: tenant {step.tenant!r} is not in the config")
        missing = [d for d in step.depends_on if d not in known]
        if missing:
            problems.append(f"step {step.id}: depends on steps not in the plan: {missing}")
    if not problems:
        cycle = _cycle(plan)
        if cycle:
            problems.append(f"the steps depend on each other in a cycle: {' → '.join(cycle)}")
    if problems:
        msg = "the plan cannot be run (nothing was changed): " + "; ".join(problems[:5])
        raise PlanError(msg)


def _cycle(plan: Plan) -> list[str]:
    """One dependency cycle of ``plan`` (its step ids, first repeated last), or []."""
    deps = {s.id: s.depends_on for s in plan.steps}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for root in deps:
        if state.get(root):
            continue
        path: list[str] = []
        stack: list[tuple[str, int]] = [(root, 0)]
        while stack:
            node, index = stack.pop()
            if index == 0:
                state[node] = 1
                path.append(node)
            if index < len(deps[node]):
                stack.append((node, index + 1))
                nxt = deps[node][index]
                if state.get(nxt) == 1:
                    return [*path[path.index(nxt) :], nxt]
                if not state.get(nxt):
                    stack.append((nxt, 0))
            else:
                state[node] = 2
                path.pop()
    return []


def _explain(exc: GraphError) -> str:
    if exc.code in POLICY_CHECK_CODES:
        return (
            f"{exc.code}: the connection test failed — automatic redemption must be allowed "
            "inbound in the target and outbound in the source, and the target must allow user "
            f"sync in from the source ({exc.message})"
        )
    return str(exc)


async def _eventually(
    run: _Run, client: GraphClient, call: Callable[[], Awaitable[T]], what: str
) -> T:
    """Retry ``call`` while it answers 404: a just-created object replicates (graph-limits §5)."""
    return await until_readable(client, call, what, timeout=run.options.ready_timeout)


# -- policy steps ------------------------------------------------------------------------


def _tenant_id(run: _Run, step: Step) -> str:
    return run.session.desired.tenants[step.tenant].tenant_id


async def _existing(run: _Run, step: Step, client: GraphClient, fields: list[str]) -> None:
    """The create found the object there (409): it is not ctsync's. Note what ``fields`` held
    before ctsync writes them, so destroy can put them back."""
    ledger, key = run.session.ledger, step.params.get("object")
    if ledger is None or not key:
        return
    tenant_id = _tenant_id(run, step)
    ledger.note_existing(tenant_id, str(key))
    current = await _eventually(
        run, client, lambda: client.get(step.params["patch_path"]), step.summary
    )
    body = current.json_object()
    ledger.note_before(tenant_id, str(key), {f: _field(body, f) for f in fields})


def _field(obj: dict[str, Any], path: str) -> Any:
    node: Any = obj
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def _note_created(run: _Run, step: Step) -> None:
    ledger, key = run.session.ledger, step.params.get("object")
    if ledger is not None and key:
        ledger.note_created(_tenant_id(run, step), str(key))


async def _partner_create(run: _Run, step: Step) -> None:
    client = run.session.client(step.tenant)
    # The partner's identitySynchronization (made by its own step) follows the create in the
    # same batch once nothing else holds it: one round trip for both.
    sync = await _rider(run, step, "identitySynchronization", "create")
    if sync is not None and sync.params.get("beta"):
        sync = None  # a v1.0 $batch carries no beta request
    try:
        if sync is None:
            await client.post(step.params["path"], json=step.params["body"])
        else:
            create = BatchRequest("partner", "POST", step.params["path"], step.params["body"])
            with _riding(run, sync) as context:
                put = BatchRequest(
                    "sync", "PUT", sync.params["path"], sync.params["body"], context=context
                )
                created, synced = await client.chain(create, put)
            raise_for_item(created)
            _carried(run, sync, synced, lambda: _note_created(run, sync))
    except ConflictError:
        # Made by someone else, a run that died before recording it, or another client a
        # moment ago: make it match instead — once it is readable, since a create can answer
        # 409 while the object it collides with still replicates and answers 404
        # (graph-limits §5).
        await _existing(run, step, client, list(step.params.get("fields") or []))
        await _eventually(
            run,
            client,
            lambda: client.patch(step.params["patch_path"], json=step.params["patch"]),
            step.summary,
        )
    else:
        _note_created(run, step)


async def _patch(run: _Run, step: Step) -> None:
    """An update of ctsync's fields on a partner configuration, identitySynchronization or
    the default policy.

    Before the first change to a field of an object ctsync did not create, the ledger keeps
    its old value; a destroy's revert step gives the fields back (``params["revert"]``).
    """
    client = run.session.client(step.tenant)
    ledger, key = run.session.ledger, step.params.get("object")
    reverting = step.params.get("revert")
    if ledger is not None and key and not reverting:
        ledger.note_before(_tenant_id(run, step), str(key), {c.field: c.old for c in step.changes})
    path = _path(client, step)
    await _eventually(
        run, client, lambda: client.patch(path, json=step.params["patch"]), step.summary
    )
    if ledger is not None and key and reverting:
        ledger.reverted(_tenant_id(run, step), str(key), list(reverting))


async def _cloud_endpoints(run: _Run, step: Step) -> None:
    """Add (``params["add"]``) or take out (``params["remove"]``) values of the policy's
    ``allowedCloudEndpoints``. A PATCH replaces the whole collection, so it is read again
    here: a value someone added since the plan stays. The ledger keeps the values ctsync
    added (and only those go at destroy)."""
    client = run.session.client(step.tenant)
    body = (await client.get(step.params["path"])).json_object()
    current = [str(e) for e in body.get("allowedCloudEndpoints") or []]
    add = [e for e in step.params.get("add") or [] if e not in current]
    remove = [e for e in step.params.get("remove") or [] if e in current]
    ledger, key, tenant_id = run.session.ledger, str(step.params["object"]), _tenant_id(run, step)
    if add or remove:
        wanted = [e for e in current if e not in remove] + add
        await _eventually(
            run,
            client,
            lambda: client.patch(step.params["path"], json={"allowedCloudEndpoints": wanted}),
            step.summary,
        )
    if ledger is not None and add:
        ledger.note_added(tenant_id, key, add)
    if ledger is not None and step.params.get("remove"):
        ledger.note_removed(tenant_id, key, list(step.params["remove"]))


async def _mto_create(run: _Run, step: Step) -> None:
    """Create the multitenant organization (PUT) or add a tenant to it (POST); the ledger
    notes that ctsync made it, so destroy may take it out again."""
    client = run.session.client(step.tenant)
    if step.resource == "multiTenantOrganization":
        await client.put(step.params["path"], json=step.params["body"])
    else:
        await client.post(step.params["path"], json=step.params["body"])
    _note_created(run, step)


async def _reset_default(run: _Run, step: Step) -> None:
    """``resetToSystemDefault`` (``destroy --reset-default-policy``): ctsync's fields go with
    the rest, so the ledger forgets what they were."""
    await run.session.client(step.tenant).post(step.params["path"])
    if run.session.ledger is not None:
        run.session.ledger.forget(_tenant_id(run, step), str(step.params["object"]))


async def _delete_path(run: _Run, step: Step) -> None:
    with contextlib.suppress(NotFoundError):
        await run.session.client(step.tenant).delete(step.params["path"])
    ledger, key = run.session.ledger, step.params.get("object")
    if ledger is not None and key:
        ledger.forget(_tenant_id(run, step), str(key))


def _path(client: GraphClient, step: Step) -> str:
    """The step's ``path``, on Graph's beta endpoint when the step says so (``beta``: what
    the config opted into, e.g. ``groupSyncInbound``)."""
    path = str(step.params["path"])
    return client.beta_url(path) if step.params.get("beta") else path


async def _sync_create(run: _Run, step: Step) -> None:
    client = run.session.client(step.tenant)
    path = _path(client, step)

    async def put() -> None:
        try:
            await client.put(path, json=step.params["body"])
        except ConflictError:
            patch = {k: v for k, v in step.params["body"].items() if k != "displayName"}
            ledger, key = run.session.ledger, step.params.get("object")
            if ledger is not None and key:
                tenant_id = _tenant_id(run, step)
                ledger.note_existing(tenant_id, str(key))
                body = (await client.get(path)).json_object()
                fields = [f"{member}.isSyncAllowed" for member in patch]
                ledger.note_before(tenant_id, str(key), {f: _field(body, f) for f in fields})
            await client.patch(path, json=patch)
        else:
            _note_created(run, step)

    # Sent with the partner's create (see _partner_create): done, unless it met an existing
    # policy (409) or one still replicating (404) — handled below.
    if _rode(run, step, retry=(404, 409)):
        _note_created(run, step)
        return
    # The partner configuration it hangs off may have been created a moment ago.
    await _eventually(run, client, put, step.summary)


# -- source-side steps -------------------------------------------------------------------


async def _app_create(run: _Run, step: Step) -> None:
    ctx = run.link(step)
    journal = run.session.journal
    client = run.session.client(step.tenant)
    noted: Callable[[], None] | None = None
    if journal is not None and step.params.get("link_tag"):
        tag, name = str(step.params["link_tag"]), str(step.params["display_name"])

        def noted() -> None:
            # Right before the create goes on the wire: a run killed earlier created nothing
            # (and the next one need not wait for an app that will never appear).
            journal.record_intent(tag, display_name=name, at=_now(client))

    try:
        created = await ApplicationsApi(client).instantiate(
            step.params["display_name"], on_send=noted
        )
    except GraphError as exc:
        if exc.status < 500 and journal is not None and step.params.get("link_tag"):
            # Refused (4xx): nothing was created, so the next run need not wait for it.
            journal.forget_app(str(step.params["link_tag"]))
        raise
    sp = created.get("servicePrincipal") or {}
    ctx.sp_id = sp.get("id")
    ctx.app_id = sp.get("appId")
    roles = sp.get("appRoles") or []
    ctx.app_role_id = next(
        (r["id"] for r in roles if r.get("displayName") == "msiam_access"),
        roles[0]["id"] if roles else None,
    )
    ctx.other_tags = [t for t in sp.get("tags") or [] if not t.startswith("ctsync:")]
    if not ctx.sp_id:
        msg = "instantiate answered without a service principal"
        raise CtsyncError(msg)
    if journal is not None and step.params.get("link_tag"):
        # Before anything else can fail: a re-run must find this app even while it replicates.
        journal.record_app(str(step.params["link_tag"]), sp_id=ctx.sp_id, app_id=ctx.app_id)


async def _job_create(run: _Run, step: Step) -> None:
    ctx = run.link(step)
    client = run.session.client(step.tenant)
    sync = SynchronizationApi(client)
    sp_id = _need(ctx.sp_id, "service principal")

    # The schema step's reads travel with the create: the template's and, at the id Graph
    # gives a new job (a guess: read again if wrong), the job's own schema.
    guess = guess_job_id(_tenant_id(run, step), ctx.app_id) if ctx.app_id else None

    async def create(*, reading: bool = False) -> dict[str, Any]:
        try:
            if reading:
                ctx.new_job = await sync.create_job_reading(sp_id, guess)
                return ctx.new_job.job
            return await sync.create_job(sp_id)
        except ConflictError:
            jobs = await sync.list_jobs(sp_id)
            return next(j for j in jobs if j.get("templateId") == "Azure2Azure")

    try:
        job = await create(reading=True)
    except NotFoundError:
        # The app still replicates. Wait for it with GETs (retried on any fault) rather than
        # with the POST itself: a POST a 5xx or a dropped connection fails is not retried, so
        # every 404 spent on a POST is one more chance to fail the run. Without lag (the usual
        # case) this costs nothing: no read before the create on every link's critical path.
        await _eventually(run, client, lambda: sync.list_jobs(sp_id), "the configuration app")
        job = await _eventually(run, client, create, "the configuration app")
    ctx.job_id = job["id"]
    # The steps after this one wait for the new job to be readable themselves (the schema's
    # GETs retry a 404; validate reads the job before it POSTs): not a round trip here, on
    # every link's critical path.


async def _secrets(run: _Run, step: Step) -> None:
    ctx = run.link(step)
    client = run.session.client(step.tenant)
    sp_id = _need(ctx.sp_id, "service principal")
    sync = SynchronizationApi(client)
    secrets, tags = step.params["secrets"], _tags(run, step, client)
    validate = await _rider(run, step, "credentials", "action")
    try:
        # The tags (the secrets' fingerprint among them) only ever follow the secrets: the
        # PATCH depends on the PUT in one batch, one round trip instead of two. The connection
        # test, once everything else it needs is done, follows them in the same batch.
        with _riding(run, validate) as context:
            tested = await sync.put_secrets_then_update(
                sp_id, secrets, {"tags": tags}, validate_context=context
            )
        if validate is not None and tested is not None:
            _carried(run, validate, tested)
    except NotFoundError:
        # A new app still replicates: each write waits for it on its own (retried on 404).
        await _eventually(run, client, lambda: sync.put_secrets(sp_id, secrets), "the app")
        await _write_tags(run, client, sp_id, tags)
    if run.session.journal is not None and step.params.get("link_tag"):
        run.session.journal.forget_app(str(step.params["link_tag"]))


async def _retag(run: _Run, step: Step, client: GraphClient, sp_id: str) -> None:
    """Write the app's ctsync tags (link, secrets fingerprint, rollout stage), keeping others.

    The plan carries the app's tags as read (``current_tags``; None for an app this run
    created, whose tags came back from instantiate), so tagging costs one PATCH and no read.
    """
    await _write_tags(run, client, sp_id, _tags(run, step, client))


def _tags(run: _Run, step: Step, client: GraphClient) -> list[str]:
    """The app's tags after ``step``: ctsync's (link, secrets, stage), others kept."""
    ctx = run.link(step)
    current: list[str] = list(step.params.get("current_tags") or [])
    if step.params.get("current_tags") is None:
        keep = list(ctx.other_tags or [])
    else:
        keep = [t for t in current if not t.startswith("ctsync:")]
    tags = [*keep, *step.params["tags"]]
    stage = step.params.get("stage")
    if stage is not None:
        # A stage keeps the time it began; a new stage begins now.
        known = parse_stage_tag(current)
        since = known[1] if known and known[0] == stage else _now(client)
        tags.append(stage_tag(int(stage), since))
    return list(dict.fromkeys(tags))


async def _write_tags(run: _Run, client: GraphClient, sp_id: str, tags: list[str]) -> None:
    await _eventually(
        run,
        client,
        lambda: ApplicationsApi(client).update_service_principal(sp_id, {"tags": tags}),
        "the configuration app's service principal",
    )


def _now(client: GraphClient) -> str:
    return client.clock.wall().strftime("%Y-%m-%dT%H:%M:%SZ")


async def _record_stage(run: _Run, step: Step) -> None:
    ctx = run.link(step)
    client = run.session.client(step.tenant)
    sp_id = _need(ctx.sp_id, "service principal")
    if step.params.get("release"):
        # Let go of an adopted configuration: every ctsync tag off, everything else kept.
        kept = [t for t in step.params.get("current_tags") or [] if not t.startswith("ctsync:")]
        await ApplicationsApi(client).update_service_principal(sp_id, {"tags": kept})
        if run.session.ledger is not None:
            run.session.ledger.forget(_tenant_id(run, step), app_key(sp_id))
        return
    await _retag(run, step, client, sp_id)


async def _pause(run: _Run, step: Step) -> None:
    ctx = run.link(step)
    sync = SynchronizationApi(run.session.client(step.tenant))
    await sync.pause(_need(ctx.sp_id, "service principal"), step.params["job_id"])


async def _schema(run: _Run, step: Step) -> None:
    ctx = run.link(step)
    client = run.session.client(step.tenant)
    sync = SynchronizationApi(client)
    sp_id, job_id = _need(ctx.sp_id, "service principal"), _need(ctx.job_id, "job")
    # The whole schema as ctsync writes it: the template's default with the config's parts
    # set — exactly what the plan compared (a hand edit anywhere goes back to the default).
    # A job this run created came with both read (see _job_create): read only what is missing.
    new = ctx.new_job if ctx.new_job is not None and ctx.new_job.job.get("id") == job_id else None
    template, live = await asyncio.gather(
        _known(new.template if new else None)
        or _eventually(run, client, lambda: sync.template_schema(sp_id), "the app"),
        _known(new.schema if new else None)
        or _eventually(run, client, lambda: sync.get_schema(sp_id, job_id), "the job"),
    )
    wanted = keep_ids(desired_schema(template, step.params["edits"]), live)
    if not schema_drift(wanted, live):
        return
    start = await _rider(run, step, "synchronizationJob", "action")
    if start is None:
        await sync.put_schema(sp_id, job_id, wanted)
        return
    # The link's start waits for nothing else: it travels with the PUT, which it depends on,
    # saving apply's last round trip. Its write is recorded as the start step's.
    with _riding(run, start) as context:
        started = await sync.put_schema_then_start(sp_id, job_id, wanted, start_context=context)
    _carried(run, start, started)


def _known(value: dict[str, Any] | None) -> Awaitable[dict[str, Any]] | None:
    """``value`` as an awaitable (for a gather beside reads), or None when it is not known."""
    if value is None:
        return None
    done: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
    done.set_result(value)
    return done


async def _rider(run: _Run, lead: Step, resource: str, action: str) -> Step | None:
    """The step of kind ``resource``/``action`` that depends on ``lead`` and may travel in
    lead's ``$batch`` (``dependsOn`` lead's write): everything else it depends on is done.

    What it also waits for usually runs in the same round as ``lead``: lead waits for it
    rather than send its own write alone. Only for steps already running — they hold places of
    their own and wait for nothing more — so a fleet's steps never pile up, each holding a
    place, behind steps that have not started."""
    rider = next(
        (
            s
            for s in run.dependents.get(lead.id, ())
            if (s.resource, s.action) == (resource, action)
        ),
        None,
    )
    if rider is None:
        return None
    others = [d for d in rider.depends_on if d != lead.id and d in run.done]
    while pending := [d for d in others if d not in run.outcomes]:
        running: set[str] = set()
        for dep in pending:
            # Running, or waiting only for running steps: it may travel with one of those and
            # be done when that one is (see _carried). Look again after them.
            ahead = [d for d in run.steps[dep].depends_on if d not in run.outcomes]
            if dep not in run.running and not (ahead and all(d in run.running for d in ahead)):
                return None
            running.update([dep] if dep in run.running else ahead)
        # Never wait for a step that waits itself: two leads could wait for each other.
        if any(d in run.waiting for d in running):
            return None
        run.waiting.add(lead.id)
        try:
            for dep in running:
                await run.done[dep].wait()
        finally:
            run.waiting.discard(lead.id)
    if all(run.outcomes[d].status == "done" for d in others):
        return rider
    return None


def _carried(
    run: _Run, rider: Step, answer: BatchResult, then: Callable[[], None] | None = None
) -> None:
    """``rider`` travelled in its lead's ``$batch`` and Graph answered it ``answer``. A success
    finishes the step here and now (``then`` first), so what waits for it need not wait for
    the lead's step to end; anything else is left for its own handler."""
    if not answer.ok:
        run.rode[rider.id] = answer
        return
    if then is not None:
        then()
    if run.on_event:
        run.on_event("start", rider, None)
    run.outcomes[rider.id] = StepOutcome(rider.id, "done")
    run.done[rider.id].set()
    if run.on_event:
        run.on_event("end", rider, run.outcomes[rider.id])


@contextlib.contextmanager
def _riding(run: _Run, rider: Step | None) -> Iterator[contextvars.Context | None]:
    """The context ``rider``'s write is told in (which step writes it, for the audit trail)
    while it travels in another step's ``$batch``; None without a rider."""
    if rider is None:
        yield None
        return
    context = contextvars.copy_context()
    scope = context.run(_enter, run.scope(rider))
    try:
        yield context
    finally:
        context.run(scope.__exit__, None, None, None)


def _enter(scope: AbstractContextManager[Any]) -> AbstractContextManager[Any]:
    scope.__enter__()
    return scope


def _rode(run: _Run, step: Step, *, retry: tuple[int, ...] = ()) -> bool:
    """Whether ``step`` already travelled with its lead (see :func:`_rider`) and is done: its
    answer is raised if an error, unless its status is one of ``retry`` (the step then runs
    as usual)."""
    sent = run.rode.pop(step.id, None)
    if sent is None or sent.status in retry:
        return False
    raise_for_item(sent)
    return True


async def _assign(run: _Run, step: Step) -> None:
    ctx = run.link(step)
    client = run.session.client(step.tenant)
    apps = ApplicationsApi(client)
    sp_id, role = _need(ctx.sp_id, "service principal"), _need(ctx.app_role_id, "app role")
    for principal in step.params["principals"]:

        async def one(principal_id: str = principal) -> None:
            try:
                await apps.assign(sp_id, principal_id=principal_id, app_role_id=role)
            except (ConflictError, BadRequestError) as exc:
                # Graph answers "Permission being assigned already exists" (400) for a repeat.
                if "already exists" not in exc.message:
                    raise

        await _eventually(run, client, one, "the configuration app")


async def _unassign(run: _Run, step: Step) -> None:
    ctx = run.link(step)
    client = run.session.client(step.tenant)
    apps = ApplicationsApi(client)
    sp_id = _need(ctx.sp_id, "service principal")
    began = client.clock.wall()
    for assignment in step.params["assignments"]:
        with contextlib.suppress(NotFoundError):
            await apps.unassign(sp_id, assignment)
    if step.params.get("wait_for_cycle") and ctx.job_id:
        await _wait_for_cycle(run, step, client, sp_id, job_id=ctx.job_id, after=began)


async def _wait_for_cycle(
    run: _Run, step: Step, client: GraphClient, sp_id: str, *, job_id: str, after: datetime
) -> None:
    """Wait until a provisioning cycle has run since ``after`` (it deprovisions the unassigned).

    Each poll is told to ``on_event`` as a ``wait`` event whose outcome says what it waits for
    (the CLI prints it: a destroy can wait up to a cycle, 40 minutes)."""
    sync = SynchronizationApi(client)
    began = client.clock.monotonic()
    deadline = began + run.options.deprovision_timeout
    while True:
        job = await sync.get_job(sp_id, job_id)
        ended = ((job.get("status") or {}).get("lastExecution") or {}).get("timeEnded")
        if ended and _parse_time(ended) > after:
            return
        if run.on_event is not None:
            waited = (client.clock.monotonic() - began) / 60
            left = (deadline - client.clock.monotonic()) / 60
            what = (
                f"{step.links[0] if step.links else step.tenant}: waiting for the next "
                "provisioning cycle (every 40 minutes) to deprovision the unassigned users "
                f"— {waited:.0f} min so far, checking every "
                f"{run.options.deprovision_poll / 60:.0f} min, giving up in {left:.0f} min"
            )
            run.on_event("wait", step, what)
        if client.clock.monotonic() + run.options.deprovision_poll > deadline:
            msg = (
                f"no provisioning cycle ran within {run.options.deprovision_timeout / 60:.0f} "
                "minutes to deprovision the unassigned users; run destroy again later, or "
                "use --keep-users to leave them in the target"
            )
            raise CtsyncError(msg)
        await client.clock.sleep(run.options.deprovision_poll)


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def _validate(run: _Run, step: Step) -> None:
    ctx = run.link(step)
    client = run.session.client(step.tenant)
    sync = SynchronizationApi(client)
    sp_id = _need(ctx.sp_id, "service principal")
    # Sent with the secrets (see _secrets); a 404 there (the app replicates) is tried again.
    if _rode(run, step, retry=(404,)):
        return
    # The saved credentials against the job template (``jobs/validateCredentials``): no job
    # needed. A new app may still replicate: a 404 is retried.
    await _eventually(run, client, lambda: sync.validate_credentials(sp_id), "the app")


async def _start(run: _Run, step: Step) -> None:
    if _rode(run, step):  # with the schema's PUT (see _schema)
        return
    ctx = run.link(step)
    sync = SynchronizationApi(run.session.client(step.tenant))
    await sync.start(_need(ctx.sp_id, "service principal"), _need(ctx.job_id, "job"))


async def _job_delete(run: _Run, step: Step) -> None:
    # A link's duplicate apps are deleted beside its own: the step names its app itself.
    sp_id = step.params.get("sp_id") or run.link(step).sp_id
    sync = SynchronizationApi(run.session.client(step.tenant))
    with contextlib.suppress(NotFoundError):
        await sync.delete_job(_need(sp_id, "service principal"), step.params["job_id"])


async def _app_delete(run: _Run, step: Step) -> None:
    ctx = run.link(step)
    sp_id = step.params.get("sp_id") or ctx.sp_id
    app_id = step.params.get("app_id") or (ctx.app_id if sp_id == ctx.sp_id else None)
    client = run.session.client(step.tenant)
    with contextlib.suppress(NotFoundError):
        if app_id:
            # Deleting the application takes its service principal with it.
            await client.delete(f"/applications(appId='{quote(app_id)}')")
        else:
            await ApplicationsApi(client).delete_service_principal(
                _need(sp_id, "service principal")
            )


def _need(value: str | None, what: str) -> str:
    if not value:
        msg = f"the {what} this step needs is unknown (an earlier step did not record it)"
        raise CtsyncError(msg)
    return value


_HANDLERS: dict[tuple[str, str], Callable[[_Run, Step], Awaitable[None]]] = {
    ("partner", "create"): _partner_create,
    ("partner", "update"): _patch,
    ("defaultPolicy", "update"): _patch,
    ("defaultPolicy", "action"): _reset_default,
    ("crossTenantAccessPolicy", "update"): _cloud_endpoints,
    ("partner", "delete"): _delete_path,
    ("multiTenantOrganization", "create"): _mto_create,
    ("multiTenantOrganization", "update"): _patch,
    ("multiTenantOrganization", "delete"): _delete_path,
    ("multiTenantOrganizationMember", "create"): _mto_create,
    ("multiTenantOrganizationMember", "delete"): _delete_path,
    ("multiTenantOrganizationTemplate", "update"): _patch,
    ("multiTenantOrganizationJoinRequest", "update"): _patch,
    ("identitySynchronization", "create"): _sync_create,
    ("identitySynchronization", "update"): _patch,
    ("identitySynchronization", "delete"): _delete_path,
    ("application", "create"): _app_create,
    ("application", "delete"): _app_delete,
    ("synchronizationJob", "create"): _job_create,
    ("credentials", "action"): _validate,
    ("synchronizationJob", "action"): _start,
    ("synchronizationJob", "delete"): _job_delete,
    ("synchronizationJob", "update"): _pause,
    ("servicePrincipal", "update"): _record_stage,
    ("synchronizationSecrets", "create"): _secrets,
    ("synchronizationSecrets", "update"): _secrets,
    ("synchronizationSchema", "update"): _schema,
    ("appRoleAssignments", "create"): _assign,
    ("appRoleAssignments", "delete"): _unassign,
}
