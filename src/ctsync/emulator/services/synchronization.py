"""``/servicePrincipals/{id}/synchronization``: templates, jobs, secrets, schema, job control.

Behaviour follows reference §1.2 (S7-S13), §1.4, §2.3, §3.6-3.8 and §10 items 7-9, and
``cts-defaults.md`` §1, §2 and §5. The job's wire object and the provisioning service's own
bookkeeping live in :class:`~ctsync.emulator.state.SyncJobRecord`. Choices where Microsoft's
documentation is silent are listed in ``docs/emulator.md`` (section "Synchronization").
"""

from __future__ import annotations

import copy
import json
import re
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from ctsync.emulator.core.context import RequestContext
from ctsync.emulator.core.errors import GraphFault, bad_request, conflict, not_found
from ctsync.emulator.core.http import EmuResponse
from ctsync.emulator.core.ids import IdFactory
from ctsync.emulator.core.odata import collection_response
from ctsync.emulator.core.routing import Router
from ctsync.emulator.core.schema import check_body
from ctsync.emulator.engine.cycles import schedule_now
from ctsync.emulator.engine.policy_check import check_cross_tenant_sync
from ctsync.emulator.engine.queue import CycleQueue
from ctsync.emulator.services import azure2azure as a2a
from ctsync.emulator.services._shared import OWNED_BY, require_owner_or
from ctsync.emulator.services.applications import find_service_principal
from ctsync.emulator.state import ServicePrincipalSync, SyncJobRecord

__all__ = [
    "OPERATOR_NAMES",
    "RESTART_FLAGS",
    "new_job_record",
    "pause_record",
    "replace_schema",
    "router",
    "save_secrets",
    "start_record",
]

router = Router()

SYNC_READ = (
    "Synchronization.Read.All",
    "Synchronization.ReadWrite.All",
    OWNED_BY,
    "Application.ReadWrite.All",
)
SYNC_WRITE = ("Synchronization.ReadWrite.All", OWNED_BY, "Application.ReadWrite.All")

ROOT = "/servicePrincipals/{id}/synchronization"
JOB = ROOT + "/jobs/{jobId}"

#: Where Graph hands synchronization calls on: the provisioning service's own API.
SYNCFABRIC = "https://syncfabric.windowsazure.com/api"


def _no_http_resource(method: str, path: str) -> GraphFault:
    """The synchronization service's answer to a method it has no action for (``PATCH
    …/schema``, ``DELETE …/secrets``): not Graph's 405 but the service's ASP.NET 404, passed
    on as ``UnknownError`` with the service's JSON as the message — what Graph answers
    (microsoftgraph/msgraph-sdk-python#820, msgraph-sdk-powershell#1134)."""
    segments = [s for s in path.split("/") if s]
    keyed: list[str] = []
    i = 0
    while i < len(segments):
        name = segments[i]
        if name.lower() in {"serviceprincipals", "jobs", "templates"} and i + 1 < len(segments):
            keyed.append(f"{name}('{segments[i + 1]}')")
            i += 2
        else:
            keyed.append(name)
            i += 1
    uri = f"{SYNCFABRIC}/{'/'.join(keyed)}?api-version=2.0"
    message = json.dumps(
        {"Message": f"No HTTP resource was found that matches the request URI '{uri}'."},
        separators=(",", ":"),
    )
    return GraphFault(404, "UnknownError", message)


router.on_method_mismatch(ROOT, _no_http_resource)

OPERATOR_NAMES = frozenset(op[0] for op in a2a.FILTER_OPERATORS)

#: What each ``synchronizationJobRestartScope`` flag resets; ``Full`` is the first four.
RESTART_FLAGS = {
    "None": frozenset[str](),
    "ConnectorDataStore": frozenset({"ConnectorDataStore"}),
    "Escrows": frozenset({"Escrows"}),
    "Watermark": frozenset({"Watermark"}),
    "QuarantineState": frozenset({"QuarantineState"}),
    "Full": frozenset({"ConnectorDataStore", "Escrows", "Watermark", "QuarantineState"}),
    "ForceDeletes": frozenset({"ForceDeletes"}),
}

#: Secret keys whose values are credentials: ``GET secrets`` never gives them back.
_CREDENTIAL_KEYS = frozenset(
    {
        "Password",
        "SecretToken",
        "ClientSecret",
        "ConsumerSecret",
        "TokenKey",
        "Oauth2AccessToken",
        "Oauth2RefreshToken",
        "Oauth2ClientSecret",
        "Oauth2AuthorizationCode",
        "ConnectionString",
    }
)

_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
#: Namespace for the stable ids of a service principal's template schema.
_TEMPLATE_NAMESPACE = uuid.UUID("8d2f2a8e-3c1f-4e55-9a57-5a0f1f0c2e10")


# -- lookups ---------------------------------------------------------------------------------


def _service_principal(
    ctx: RequestContext, *, write: bool
) -> tuple[dict[str, Any], ServicePrincipalSync]:
    """The service principal in the URL and its synchronization; 404 while it replicates."""
    sp = find_service_principal(ctx, ctx.params["id"])
    broad = set(SYNC_WRITE if write else SYNC_READ) - {OWNED_BY}
    apps = [a["id"] for a in ctx.tenant.applications.values() if a.get("appId") == sp["appId"]]
    require_owner_or(ctx, [sp["id"], *apps], broad)
    return sp, ctx.tenant.synchronization.setdefault(sp["id"], ServicePrincipalSync())


def _job_key(job_id: str) -> str:
    """Where a job's creation time is kept, for the replication-lag fault."""
    return f"synchronizationJob:{job_id.lower()}"


def _job(ctx: RequestContext, sync: ServicePrincipalSync) -> SyncJobRecord:
    record = sync.job(ctx.params["jobId"])
    if record is None or not ctx.visible(_job_key(record.id)):
        raise not_found(f"The synchronization job '{ctx.params['jobId']}' does not exist.")
    return record


def _context(sp: dict[str, Any], rest: str) -> str:
    return f"servicePrincipals('{sp['id']}')/synchronization/{rest}"


# -- templates -------------------------------------------------------------------------------


def _templates(sp: dict[str, Any]) -> list[dict[str, Any]]:
    """The synchronization templates of a service principal: Azure2Azure for a CTS app."""
    if sp.get("applicationTemplateId") != a2a.CTS_TEMPLATE_ID:
        return []

    def stable(name: str) -> str:
        return str(uuid.uuid5(_TEMPLATE_NAMESPACE, f"{sp['id']}/{name}"))

    schema = a2a.default_schema(a2a.TEMPLATE_ID, stable("rule"), stable("src"), stable("tgt"))
    return [a2a.template(sp["appId"], schema)]


@router.route("GET", ROOT + "/templates", permissions=SYNC_READ)
def list_templates(ctx: RequestContext) -> EmuResponse:
    sp, _ = _service_principal(ctx, write=False)
    return collection_response(
        ctx, _templates(sp), context=_context(sp, "templates"), count_requires_advanced=False
    )


# -- jobs ------------------------------------------------------------------------------------


@router.route("GET", ROOT + "/jobs", permissions=SYNC_READ)
def list_jobs(ctx: RequestContext) -> EmuResponse:
    sp, sync = _service_principal(ctx, write=False)
    jobs = [copy.deepcopy(r.job) for r in sync.jobs.values() if ctx.visible(_job_key(r.id))]
    return collection_response(
        ctx, jobs, context=_context(sp, "jobs"), count_requires_advanced=False
    )


@router.route("POST", ROOT + "/jobs", permissions=SYNC_WRITE)
def create_job(ctx: RequestContext) -> EmuResponse:
    sp, sync = _service_principal(ctx, write=True)
    body = ctx.body_object()
    check_body("synchronizationJob", body)
    for key in body:
        if key != "templateId" and not key.startswith("@odata."):
            raise bad_request(f"Property '{key}' is read-only and cannot be set.")
    template_id = body.get("templateId")
    available = [t["id"] for t in _templates(sp)]
    if not isinstance(template_id, str) or template_id not in available:
        choices = ", ".join(available) or "none"
        msg = (
            f"The templateId '{template_id}' is not a synchronization template of this "
            f"application (templates: {choices})."
        )
        raise bad_request(msg)
    if sync.jobs:
        # A cross-tenant sync configuration runs exactly one job.
        existing = next(iter(sync.jobs))
        raise conflict(f"A synchronization job already exists for this application: '{existing}'.")
    record = new_job_record(ctx.tenant.id, sp, sync, ctx.emulator.ids)
    ctx.mark_created(_job_key(record.id))
    return ctx.entity(copy.deepcopy(record.job), context=_context(sp, "jobs/$entity"), status=201)


def new_job_record(
    tenant_id: str, sp: dict[str, Any], sync: ServicePrincipalSync, ids: IdFactory
) -> SyncJobRecord:
    """Add the job ``POST jobs`` with ``templateId`` Azure2Azure creates (once the request is
    checked) to ``sync``; the new record. Scenarios seed jobs with it."""
    job_id = a2a.job_id(tenant_id, sp["appId"])
    record = SyncJobRecord(
        job=a2a.new_job(job_id),
        schema=a2a.default_schema(job_id, ids.guid(), ids.guid(), ids.guid()),
        tenant_id=tenant_id.lower(),
        sp_id=str(sp["id"]),
    )
    sync.jobs[job_id] = record
    return record


@router.route("GET", JOB, permissions=SYNC_READ)
def get_job(ctx: RequestContext) -> EmuResponse:
    sp, sync = _service_principal(ctx, write=False)
    record = _job(ctx, sync)
    return ctx.entity(copy.deepcopy(record.job), context=_context(sp, "jobs/$entity"))


@router.route("PATCH", JOB, permissions=SYNC_WRITE)
def patch_job(ctx: RequestContext) -> EmuResponse:
    _, sync = _service_principal(ctx, write=True)
    record = _job(ctx, sync)
    body = ctx.body_object()
    check_body("synchronizationJob", body)
    for key in body:
        if key != "synchronizationJobSettings" and not key.startswith("@odata."):
            raise bad_request(f"Property '{key}' is read-only and cannot be set.")
    if "synchronizationJobSettings" in body:
        record.job["synchronizationJobSettings"] = copy.deepcopy(
            body["synchronizationJobSettings"] or []
        )
    return ctx.no_content()


@router.route("DELETE", JOB, permissions=SYNC_WRITE)
def delete_job(ctx: RequestContext) -> EmuResponse:
    # Stops the job and forgets its state; users it created in the target stay as they are.
    _, sync = _service_principal(ctx, write=True)
    record = _job(ctx, sync)
    del sync.jobs[record.id]
    return ctx.no_content()


# -- job control -----------------------------------------------------------------------------


def _require_saved_credentials(sync: ServicePrincipalSync) -> None:
    missing = [k for k in ("AuthenticationType", "CompanyId") if not sync.secret(k)]
    if missing:
        msg = (
            "The job cannot run before its credentials are saved (PUT synchronization/secrets); "
            f"missing: {', '.join(missing)}."
        )
        raise bad_request(msg)


def _run(record: SyncJobRecord, now: datetime, cycles: CycleQueue) -> None:
    """Put a job on its schedule: what ``start`` and ``restart`` have in common. A cycle is
    due at once (it runs as soon as the emulator clock moves, see ``engine/cycles.py``)."""
    status = record.job["status"]
    record.job["schedule"]["state"] = "Active"
    schedule_now(record, now, cycles)
    # NotRun until a cycle completes (S13a); a job that has run before goes straight back.
    status["code"] = "Active" if record.completed_cycles else "NotRun"
    if status["lastExecution"] is None:
        status["lastExecution"] = a2a.not_run_execution()
    if status["troubleshootingUrl"] is None:
        status["troubleshootingUrl"] = ""


def _clear_quarantine(record: SyncJobRecord) -> None:
    status = record.job["status"]
    status["quarantine"] = None
    status["countSuccessiveCompleteFailures"] = 0


@router.route("POST", JOB + "/start", permissions=SYNC_WRITE)
def start_job(ctx: RequestContext) -> EmuResponse:
    _, sync = _service_principal(ctx, write=True)
    record = _job(ctx, sync)
    start_record(sync, record, ctx.now, cycles=ctx.emulator.cycle_queue)
    return ctx.no_content()


def start_record(
    sync: ServicePrincipalSync, record: SyncJobRecord, now: datetime, *, cycles: CycleQueue
) -> None:
    """What ``POST …/start`` does to a job (``400`` without saved credentials); ``cycles``
    learns of the cycle it makes due. Scenarios start seeded jobs with it."""
    _require_saved_credentials(sync)
    running = record.job["schedule"]["state"] == "Active"
    if running and record.status_code != "Quarantine":
        # Microsoft advises against repeated starts; one on a running job changes nothing.
        return
    # Start is also how a quarantined job is resumed (reference §1.4).
    _clear_quarantine(record)
    _run(record, now, cycles)


@router.route("POST", JOB + "/pause", permissions=SYNC_WRITE)
def pause_job(ctx: RequestContext) -> EmuResponse:
    _, sync = _service_principal(ctx, write=True)
    record = _job(ctx, sync)
    pause_record(record)
    return ctx.no_content()


def pause_record(record: SyncJobRecord) -> None:
    """What ``POST …/pause`` does to a job. Scenarios pause seeded jobs with it."""
    record.job["schedule"]["state"] = "Paused"
    record.job["status"]["code"] = "Paused"


def _restart_scope(ctx: RequestContext) -> frozenset[str]:
    body = ctx.body if ctx.body is not None else {}
    if not isinstance(body, dict):
        raise GraphFault(400, "BadRequest", "The request body must be a JSON object.")
    for key in body:
        if key != "criteria" and not key.startswith("@odata."):
            raise GraphFault(
                400,
                "BadRequest",
                f"The parameter '{key}' in the request payload is not a valid parameter for "
                "the operation 'restart'.",
            )
    criteria = body.get("criteria")
    if criteria is None:
        return frozenset()
    check_body("synchronizationJobRestartCriteria", criteria)
    scope = criteria.get("resetScope")
    if scope is None:
        return frozenset()
    flags: set[str] = set()
    for part in str(scope).split(","):
        flags |= RESTART_FLAGS[part.strip()]
    return frozenset(flags)


@router.route("POST", JOB + "/restart", permissions=SYNC_WRITE)
def restart_job(ctx: RequestContext) -> EmuResponse:
    _, sync = _service_principal(ctx, write=True)
    record = _job(ctx, sync)
    flags = _restart_scope(ctx)
    _require_saved_credentials(sync)
    if "Watermark" in flags:
        record.watermark = None
    if "Escrows" in flags:
        record.escrows.clear()
        record.group_escrows.clear()
    if "QuarantineState" in flags:
        _clear_quarantine(record)
    if "ConnectorDataStore" in flags:
        # Forget what was matched: the next cycle matches every object again.
        record.connector_data_store.clear()
        record.group_store.clear()
    if "ForceDeletes" in flags:
        record.force_deletes = True
    record.mark_full_sync("restart")
    _run(record, ctx.now, ctx.emulator.cycle_queue)
    return ctx.no_content()


# -- credentials -----------------------------------------------------------------------------


def _secret_pairs(value: Any, where: str) -> list[dict[str, Any]]:
    """Validated ``synchronizationSecretKeyStringValuePair`` items, last duplicate winning."""
    if not isinstance(value, list):
        msg = f"The property '{where}' must be a collection (JSON array)."
        raise GraphFault(400, "BadRequest", msg)
    pairs: dict[str, dict[str, Any]] = {}
    for item in value:
        check_body("synchronizationSecretKeyStringValuePair", item)
        key = item.get("key")
        if not isinstance(key, str):
            msg = f"Every item of '{where}' needs a key (a synchronizationSecret member)."
            raise GraphFault(400, "BadRequest", msg)
        pairs[key] = {"key": key, "value": item.get("value")}
    return list(pairs.values())


@router.route("PUT", ROOT + "/secrets", permissions=SYNC_WRITE)
def put_secrets(ctx: RequestContext) -> EmuResponse:
    _, sync = _service_principal(ctx, write=True)
    body = ctx.body_object()
    for key in body:
        if key != "value" and not key.startswith("@odata."):
            msg = f"The property '{key}' does not exist in the request body; expected 'value'."
            raise GraphFault(400, "BadRequest", msg)
    save_secrets(sync, body.get("value"))
    return ctx.no_content()


def save_secrets(sync: ServicePrincipalSync, value: Any) -> None:
    """What ``PUT secrets`` does with its ``value`` (checked; ``400`` on a bad item).
    Scenarios save seeded secrets with it."""
    # PUT replaces the whole set: a key left out is forgotten.
    sync.secrets = _secret_pairs(value, "value")


@router.route("GET", ROOT + "/secrets", permissions=SYNC_WRITE)
def get_secrets(ctx: RequestContext) -> EmuResponse:
    sp, sync = _service_principal(ctx, write=True)
    shown = [
        {"key": p["key"], "value": None if p["key"] in _CREDENTIAL_KEYS else p["value"]}
        for p in sync.secrets
    ]
    body = {
        "@odata.context": f"{ctx.base_url}/$metadata#{_context(sp, 'secrets')}",
        "value": shown,
    }
    return ctx.json(200, body)


_VALIDATE_PARAMETERS = frozenset(
    {"applicationIdentifier", "templateId", "useSavedCredentials", "credentials"}
)


def _validate_credentials(
    ctx: RequestContext, sp: dict[str, Any], sync: ServicePrincipalSync
) -> EmuResponse:
    body = ctx.body if ctx.body is not None else {}
    if not isinstance(body, dict):
        raise GraphFault(400, "BadRequest", "The request body must be a JSON object.")
    for key in body:
        if key not in _VALIDATE_PARAMETERS and not key.startswith("@odata."):
            raise GraphFault(
                400,
                "BadRequest",
                f"The parameter '{key}' in the request payload is not a valid parameter for "
                "the operation 'validateCredentials'.",
            )
    use_saved = body.get("useSavedCredentials", False)
    if not isinstance(use_saved, bool):
        raise GraphFault(400, "BadRequest", "useSavedCredentials must be true or false.")
    templates = [t["id"] for t in _templates(sp)]
    template_id = body.get("templateId")
    if not templates:
        raise bad_request("This application has no synchronization template to validate against.")
    if template_id is not None and template_id not in templates:
        raise bad_request(f"The templateId '{template_id}' is not a template of this application.")
    if use_saved:
        # The credentials in the body are ignored: the saved secrets are what gets tested.
        if not sync.secrets:
            raise bad_request("No credentials have been saved for this application.")
        pairs = sync.secrets
    else:
        pairs = _secret_pairs(body.get("credentials", []), "credentials")
    credentials = {p["key"]: p["value"] for p in pairs}
    _check_cross_tenant(ctx, credentials)
    return ctx.no_content()


def _check_cross_tenant(ctx: RequestContext, credentials: dict[str, Any]) -> None:
    auth = credentials.get("AuthenticationType")
    if auth != "SyncPolicy":
        raise bad_request(
            "Cross-tenant synchronization authenticates with AuthenticationType 'SyncPolicy'; "
            f"got {auth!r}."
        )
    company = credentials.get("CompanyId")
    if not isinstance(company, str) or not _GUID.match(company):
        raise bad_request(f"CompanyId must be the target tenant id (a GUID); got {company!r}.")
    result = check_cross_tenant_sync(ctx.emulator, ctx.tenant, company)
    if not result.target_known or "same_tenant" in result.checks_failed:
        raise bad_request(result.message)
    if not result.ok:
        raise GraphFault(400, result.code, result.message, details=result.details())


@router.route("POST", ROOT + "/jobs/validateCredentials", permissions=SYNC_WRITE)
def validate_credentials(ctx: RequestContext) -> EmuResponse:
    sp, sync = _service_principal(ctx, write=True)
    return _validate_credentials(ctx, sp, sync)


@router.route("POST", JOB + "/validateCredentials", permissions=SYNC_WRITE)
def validate_job_credentials(ctx: RequestContext) -> EmuResponse:
    sp, sync = _service_principal(ctx, write=True)
    _job(ctx, sync)
    return _validate_credentials(ctx, sp, sync)


# -- schema ----------------------------------------------------------------------------------


def _schema_invalid(message: str) -> GraphFault:
    return GraphFault(400, "schemaInvalid", message)


def _check_matching(mapping: dict[str, Any], where: str) -> None:
    """CTS matches on ``alternativeSecurityIds`` only; it cannot be changed or joined."""
    matching = sorted(
        str(m.get("targetAttributeName"))
        for m in mapping.get("attributeMappings") or []
        if isinstance(m, dict) and m.get("matchingPriority")
    )
    if matching != [a2a.MATCHING_ATTRIBUTE]:
        msg = (
            f"{where}: cross-tenant synchronization matches on '{a2a.MATCHING_ATTRIBUTE}' "
            "only; the matching attribute can't be changed and no other attribute can be "
            f"used for matching (found: {', '.join(matching) or 'none'})."
        )
        raise _schema_invalid(msg)


def _check_scope(scope: Any, where: str) -> None:
    if not isinstance(scope, dict):
        return
    for member in ("groups", "inputFilterGroups", "categoryFilterGroups"):
        for group in scope.get(member) or []:
            for clause in (group or {}).get("clauses") or []:
                operator = (clause or {}).get("operatorName")
                if operator not in OPERATOR_NAMES:
                    msg = (
                        f"{where}: unknown scoping filter operator {operator!r} in "
                        f"'{(group or {}).get('name')}'. See schema/filterOperators."
                    )
                    raise _schema_invalid(msg)


def _new_schema(
    body: dict[str, Any], current: dict[str, Any], job_id: str, new_id: Callable[[], str]
) -> dict[str, Any]:
    check_body("synchronizationSchema", body, allow=frozenset({"directories"}))
    rules = body.get("synchronizationRules")
    if not isinstance(rules, list) or not rules:
        raise _schema_invalid("A synchronization schema needs at least one synchronization rule.")
    known = {r.get("name"): r.get("id") for r in current.get("synchronizationRules") or []}
    schema = {k: copy.deepcopy(v) for k, v in body.items() if not k.startswith("@odata.")}
    for i, rule in enumerate(schema["synchronizationRules"]):
        if not isinstance(rule, dict) or not rule.get("name"):
            raise _schema_invalid(f"synchronizationRules[{i}] needs a name.")
        if not rule.get("id"):
            # A rule sent without its id keeps the one it has (matched by name).
            rule["id"] = known.get(rule["name"]) or new_id()
        for j, mapping in enumerate(rule.get("objectMappings") or []):
            where = f"synchronizationRules[{i}].objectMappings[{j}]"
            source = str((mapping or {}).get("sourceObjectName") or "")
            if source.lower() in {"user", "group"}:
                _check_matching(mapping, where)
            _check_scope((mapping or {}).get("scope"), where)
    schema["id"] = job_id
    schema.setdefault("version", current.get("version"))
    if schema.get("directories") is None:
        # Directory definitions are discovered by the service, not replaced by clients.
        schema["directories"] = copy.deepcopy(current.get("directories") or [])
    return schema


@router.route("GET", JOB + "/schema", permissions=SYNC_READ)
def get_schema(ctx: RequestContext) -> EmuResponse:
    sp, sync = _service_principal(ctx, write=False)
    record = _job(ctx, sync)
    context = _context(sp, f"jobs('{record.id}')/schema/$entity")
    # Written out at once (ctx.entity serializes before it returns): no copy needed, and a
    # schema is the largest object the emulator serves (a fleet read copied each in full).
    return ctx.entity(record.schema, context=context)


@router.route("PUT", JOB + "/schema", permissions=SYNC_WRITE)
def put_schema(ctx: RequestContext) -> EmuResponse:
    _, sync = _service_principal(ctx, write=True)
    record = _job(ctx, sync)
    replace_schema(
        record,
        ctx.body_object(),
        new_id=ctx.emulator.ids.guid,
        now=ctx.now,
        cycles=ctx.emulator.cycle_queue,
    )
    return ctx.no_content()


def replace_schema(
    record: SyncJobRecord,
    body: dict[str, Any],
    *,
    new_id: Callable[[], str],
    now: datetime,
    cycles: CycleQueue,
) -> None:
    """What ``PUT …/schema`` does with its body (checked; ``400`` on a bad schema);
    ``new_id`` draws ids for rules sent without one; ``cycles`` learns of a cycle it makes
    due. Scenarios edit seeded schemas with it."""
    schema = _new_schema(body, record.schema, record.id, new_id)
    if schema != record.schema:
        # Saving a changed schema (a new scoping filter above all) makes the next cycle an
        # initial one, due at once on a running job.
        record.mark_full_sync("schema")
        if record.job["schedule"]["state"] == "Active":
            schedule_now(record, now, cycles)
    record.schema = schema
    record.schema_version += 1


@router.route("GET", JOB + "/schema/filterOperators", permissions=SYNC_WRITE)
def list_filter_operators(ctx: RequestContext) -> EmuResponse:
    _, sync = _service_principal(ctx, write=True)
    _job(ctx, sync)
    return collection_response(
        ctx,
        a2a.filter_operators(),
        context="Collection(microsoft.graph.filterOperatorSchema)",
        count_requires_advanced=False,
    )


@router.route("GET", JOB + "/schema/functions", permissions=SYNC_WRITE)
def list_functions(ctx: RequestContext) -> EmuResponse:
    _, sync = _service_principal(ctx, write=True)
    _job(ctx, sync)
    return collection_response(
        ctx, a2a.functions(), context="functions", count_requires_advanced=False
    )
