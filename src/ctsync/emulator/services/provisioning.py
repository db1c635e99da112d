"""``provisionOnDemand`` and ``/auditLogs/provisioning``: the provisioning engine's Graph face.

- ``POST /servicePrincipals/{id}/synchronization/jobs/{jobId}/provisionOnDemand``
  (reference §3.9, §10.10): runs the engine's evaluation for one user at once, whatever the
  job's schedule, writes its log record and answers ``200`` with a ``stringKeyStringValuePair``
  in the CTS article's shape, or the API reference's (``Emulator.provisioning
  .on_demand_shape``). Its own quota: 5 calls per 10 s (route kind ``on_demand``).
- ``GET /auditLogs/provisioning`` (reference §2.5, §10.13): the source tenant's
  ``provisioningObjectSummary`` records, newest first; ``$filter`` (case-sensitive),
  ``$orderby activityDateTime``, ``$top`` (at most 1,000), absolute ``@odata.nextLink``
  paging over a stable snapshot; the reports quota (route kind ``reports``).

Choices where Microsoft's documentation is silent are listed in ``docs/emulator.md``
(section "Provisioning engine").
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import hmac
import json
import weakref
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit
from urllib.parse import quote as _quote

from ctsync.emulator.core.context import RequestContext
from ctsync.emulator.core.errors import bad_request, unsupported_query
from ctsync.emulator.core.http import EmuResponse
from ctsync.emulator.core.odata import FilterSpec, OrderbySpec, apply_select
from ctsync.emulator.core.routing import Router
from ctsync.emulator.engine import groups, logs
from ctsync.emulator.engine.provisioner import JobContext, Outcome, apply, job_context, plan
from ctsync.emulator.services import azure2azure as a2a
from ctsync.emulator.services._shared import object_not_found
from ctsync.emulator.services.synchronization import (
    JOB,
    SYNC_WRITE,
    _job,
    _require_saved_credentials,
    _service_principal,
)
from ctsync.emulator.state import ProvisioningLog

__all__ = ["LOG_READ", "STATUS_INFO_KEY", "router"]

router = Router()

LOG_READ = ("AuditLog.Read.All", "ProvisioningLog.Read.All", "Directory.Read.All")
#: The key of the CTS article's provisionOnDemand answer.
STATUS_INFO_KEY = "Microsoft.Identity.Health.CPP.Common.DataContracts.SyncFabric.StatusInfo"

JsonObject = dict[str, Any]

# -- provisionOnDemand -----------------------------------------------------------------------


def _subject(ctx: RequestContext, rule_ids: set[str]) -> tuple[str, str]:
    """The one (objectId, objectTypeName) the body asks for; ``400`` for a bad body."""
    body = ctx.body_object()
    for key in body:
        if key != "parameters" and not key.startswith("@odata."):
            raise bad_request(
                f"The parameter '{key}' in the request payload is not a valid parameter for "
                "the operation 'provisionOnDemand'.",
                code="BadRequest",
            )
    parameters = body.get("parameters")
    if not isinstance(parameters, list) or not parameters:
        raise bad_request("'parameters' must be a non-empty collection.", code="BadRequest")
    if len(parameters) != 1:
        raise bad_request("Provision on demand takes one parameter (one rule).", code="BadRequest")
    parameter = parameters[0]
    if not isinstance(parameter, dict):
        raise bad_request("Each parameter must be an object.", code="BadRequest")
    rule_id = parameter.get("ruleId")
    if not isinstance(rule_id, str) or rule_id.lower() not in rule_ids:
        raise bad_request(
            f"The ruleId '{rule_id}' is not a synchronization rule of the job's schema.",
            code="BadRequest",
        )
    subjects = parameter.get("subjects")
    if not isinstance(subjects, list) or not subjects:
        raise bad_request("'subjects' must be a non-empty collection.", code="BadRequest")
    if len(subjects) != 1:
        raise bad_request(
            "Cross-tenant synchronization provisions one user on demand at a time.",
            code="BadRequest",
        )
    subject = subjects[0]
    if not isinstance(subject, dict):
        raise bad_request("Each subject must be an object.", code="BadRequest")
    object_id = subject.get("objectId")
    type_name = subject.get("objectTypeName")
    if not isinstance(object_id, str) or not object_id:
        raise bad_request("A subject needs an objectId.", code="BadRequest")
    if not isinstance(type_name, str) or type_name.lower() not in {"user", "group"}:
        raise bad_request(
            f"objectTypeName '{type_name}' is not supported; use 'User'.", code="BadRequest"
        )
    return object_id, type_name.lower()


def _pascal(value: str) -> str:
    return value[:1].upper() + value[1:]


def _on_demand_steps(outcome: Outcome | groups.GroupOutcome, at: str) -> list[JsonObject]:
    return [
        {
            "name": s.name,
            "type": _pascal(s.kind),
            "status": _pascal(s.status),
            "description": s.description,
            "timestamp": at,
            "details": {k: str(v) for k, v in s.details.items()},
        }
        for s in outcome.steps
    ]


def _status_info(record: Mapping[str, Any]) -> JsonObject:
    info = record["provisioningStatusInfo"]
    error = info.get("errorInformation") or {}
    return {
        "status": _pascal(str(info["status"])),
        "errorCode": error.get("errorCode"),
        "reason": error.get("reason"),
        "additionalDetails": error.get("additionalDetails"),
        "errorCategory": error.get("errorCategory"),
        "recommendedAction": error.get("recommendedAction"),
    }


def _result(
    steps: list[JsonObject],
    record: Mapping[str, Any],
    reportable: str,
    started: str,
    ended: str,
    *,
    kind: str = "User",
) -> JsonObject:
    return {
        "provisioningSteps": steps,
        "action": _pascal(str(record["provisioningAction"])),
        "changeId": record["changeId"],
        "startTime": started,
        "endTime": ended,
        "modifiedProperties": copy.deepcopy(record["modifiedProperties"]),
        "reportableIdentifier": reportable,
        "statusInfo": _status_info(record),
        "sourceIdentity": {
            "id": record["sourceIdentity"]["id"],
            "type": kind,
            "displayName": record["sourceIdentity"]["displayName"],
            "details": None,
        },
        "sourceSystem": {
            "id": record["sourceSystem"]["id"],
            "name": record["sourceSystem"]["displayName"],
            "details": None,
        },
        "targetIdentity": {
            "id": record["targetIdentity"]["id"] or None,
            "type": kind,
            "displayName": record["targetIdentity"]["displayName"] or None,
            "details": None,
        },
        "targetSystem": {
            "id": record["targetSystem"]["id"],
            "name": record["targetSystem"]["displayName"],
            "details": None,
        },
    }


def _answer(ctx: RequestContext, result: JsonObject) -> EmuResponse:
    shape = ctx.emulator.provisioning.on_demand_shape
    status = result["statusInfo"]["status"]
    if shape == "reference":
        details: JsonObject = {}
        if status != "Success":
            details = {
                "errorCode": result["statusInfo"]["errorCode"],
                "errorMessage": result["statusInfo"]["reason"],
            }
        key = json.dumps({"result": status, "details": details}, separators=(",", ":"))
        value = json.dumps(result, separators=(",", ":"))
    else:
        key = STATUS_INFO_KEY
        value = json.dumps([result], separators=(",", ":"))
    body = {
        "@odata.context": f"{ctx.base_url}/$metadata#microsoft.graph.stringKeyStringValuePair",
        "key": key,
        "value": value,
    }
    return ctx.json(200, body)


def _group_skip(ctx: RequestContext, group: JsonObject, at: str) -> JsonObject:
    """A group on demand while the job's group mapping is disabled: used for scoping only."""
    name = group.get("displayName")
    reason = (
        f"The Group '{name}' will be skipped: groups are used for scoping only; cross-tenant "
        "synchronization does not provision groups while the schema's group mapping is "
        "disabled. Provision its users one at a time."
    )
    return {
        "provisioningSteps": [
            {
                "name": "EntryImport",
                "type": "Import",
                "status": "Skipped",
                "description": reason,
                "timestamp": at,
                "details": {"SkipReason": "EntityTypeNotSupported"},
            }
        ],
        "action": "Other",
        "changeId": ctx.emulator.ids.guid(),
        "startTime": at,
        "endTime": at,
        "modifiedProperties": [],
        "reportableIdentifier": name,
        "statusInfo": {
            "status": "Skipped",
            "errorCode": "EntityTypeNotSupported",
            "reason": reason,
            "additionalDetails": None,
            "errorCategory": None,
            "recommendedAction": None,
        },
        "sourceIdentity": {
            "id": group.get("id"),
            "type": "Group",
            "displayName": name,
            "details": None,
        },
        "sourceSystem": {"id": None, "name": a2a.SOURCE_DIRECTORY, "details": None},
        "targetIdentity": {"id": None, "type": "Group", "displayName": None, "details": None},
        "targetSystem": {"id": None, "name": a2a.TARGET_DIRECTORY, "details": None},
    }


@router.route("POST", JOB + "/provisionOnDemand", permissions=SYNC_WRITE, kind="on_demand")
def provision_on_demand(ctx: RequestContext) -> EmuResponse:
    sp, sync = _service_principal(ctx, write=True)
    record = _job(ctx, sync)
    rule_ids = {
        str(r.get("id") or "").lower() for r in record.schema.get("synchronizationRules") or []
    }
    object_id, type_name = _subject(ctx, rule_ids)
    _require_saved_credentials(sync)
    at = logs.iso(ctx.now)
    source = ctx.tenant
    job_ctx = job_context(
        ctx.emulator, source=source, sp_id=sp["id"], sync=sync, record=record, indexes={}
    )
    if type_name == "group":
        group_id = next((gid for gid in source.groups if gid.lower() == object_id.lower()), None)
        if group_id is None:
            raise object_not_found(object_id)
        if groups.mapping(job_ctx) is None:
            return _answer(ctx, _group_skip(ctx, source.groups[group_id], at))
        return _group_on_demand(ctx, job_ctx, group_id, at)
    user_id = next((uid for uid in source.users if uid.lower() == object_id.lower()), None)
    if user_id is None:
        # Deleted or unknown users cannot be provisioned on demand (they cannot be found).
        raise object_not_found(object_id)
    decision = plan(job_ctx, user_id)
    assert decision is not None
    outcome = apply(
        job_ctx,
        decision,
        at=ctx.now,
        rows=_rows(ctx, job_ctx),
        duration_ms=1000,
        on_demand=True,
        initial=False,
    )
    logs.append(source, outcome.records)
    logs.prune(source, ctx.now, ctx.emulator.provisioning.log_retention)
    result = _result(_on_demand_steps(outcome, at), outcome.records[0], decision.upn, at, at)
    return _answer(ctx, result)


def _rows(ctx: RequestContext, job_ctx: JobContext) -> logs.RowContext:
    """What an on-demand record shares: a fresh cycle id, the calling app as initiator."""
    app = ctx.tenant.clients.get(ctx.app_id)
    initiator = {
        "id": ctx.app_id,
        "displayName": app.display_name if app is not None else "",
        "initiatorType": "application",
    }
    return logs.RowContext(
        source=ctx.tenant,
        target_tenant_id=job_ctx.target_tenant_id,
        job_id=job_ctx.record.id,
        cycle_id=ctx.emulator.ids.guid(),
        service_principal=job_ctx.sp,
        source_directory_id=job_ctx.source_directory_id,
        target_directory_id=job_ctx.target_directory_id,
        initiator=initiator,
    )


def _group_on_demand(
    ctx: RequestContext, job_ctx: JobContext, group_id: str, at: str
) -> EmuResponse:
    """A group on demand with group provisioning on: the group and the memberships of its
    direct members the job already provisioned (the steps name the others)."""
    decision = groups.plan(job_ctx, group_id, managed=groups.managed_members(job_ctx))
    assert decision is not None
    outcome = groups.apply(
        job_ctx, decision, at=ctx.now, rows=_rows(ctx, job_ctx), duration_ms=1000, on_demand=True
    )
    logs.append(ctx.tenant, outcome.records)
    logs.prune(ctx.tenant, ctx.now, ctx.emulator.provisioning.log_retention)
    steps = _on_demand_steps(outcome, at)
    result = _result(steps, outcome.records[0], decision.name, at, at, kind="Group")
    return _answer(ctx, result)


# -- /auditLogs/provisioning -----------------------------------------------------------------

_EQ = "eq"
_TEXT = "eq contains startswith tolower toupper"
_DATE = "eq gt ge lt le"

_LOG_FILTER = FilterSpec(
    resource="provisioningObjectSummary",
    properties={
        "id": _EQ,
        "activityDateTime": _DATE,
        "tenantId": _EQ,
        "jobId": _EQ,
        "cycleId": _EQ,
        "changeId": _EQ,
        "provisioningAction": _EQ,
        "provisioningStatusInfo/status": _EQ,
        "provisioningStatusInfo/errorInformation/errorCode": _EQ,
        "servicePrincipal/id": _TEXT,
        "servicePrincipal/displayName": _TEXT,
        "sourceIdentity/id": _TEXT,
        "sourceIdentity/displayName": _TEXT,
        "targetIdentity/id": _TEXT,
        "targetIdentity/displayName": _TEXT,
        "sourceSystem/displayName": _TEXT,
        "targetSystem/displayName": _TEXT,
    },
    case_sensitive=True,
)
_LOG_ORDERBY = OrderbySpec(resource="provisioningObjectSummary", properties=("activityDateTime",))
_TOKEN_KEY = b"ctsync-emulator/provisioning-logs/v1"


def _fingerprint(ctx: RequestContext) -> str:
    parts = [ctx.tenant.id, ctx.query.get("$filter", ""), ctx.query.get("$orderby", "")]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def _mac(payload: str) -> str:
    return hmac.new(_TOKEN_KEY, payload.encode(), hashlib.sha256).hexdigest()[:16]


def _encode_token(offset: int, snapshot: int, fingerprint: str) -> str:
    payload = f"{offset}:{snapshot}:{fingerprint}"
    raw = json.dumps({"p": payload, "m": _mac(payload)}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _decode_token(token: str, fingerprint: str) -> tuple[int, int]:
    invalid = bad_request("The $skiptoken value is not valid for this request.")
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        payload, mac = data["p"], data["m"]
        offset_text, snapshot_text, fp = str(payload).split(":")
        offset, snapshot = int(offset_text), int(snapshot_text)
    except (binascii.Error, ValueError, KeyError, TypeError) as exc:
        raise invalid from exc
    if fp != fingerprint or not hmac.compare_digest(str(mac), _mac(str(payload))):
        raise invalid
    return offset, snapshot


def _next_link(ctx: RequestContext, token: str) -> str:
    pairs = [
        (key, value)
        for key, value in parse_qsl(urlsplit(ctx.request.url).query, keep_blank_values=True)
        if key.lower() != "$skiptoken"
    ]
    pairs.append(("$skiptoken", token))
    query = urlencode(pairs, quote_via=_quote, safe="$',:/()")
    return f"{ctx.base_url}{_quote(ctx.path, safe='/')}?{query}"


def _page_size(ctx: RequestContext) -> int:
    settings = ctx.emulator.provisioning
    raw = ctx.query.get("$top")
    if raw is None:
        return settings.log_page_default
    try:
        top = int(raw.strip())
    except ValueError:
        top = 0
    if not 1 <= top <= settings.log_page_max:
        msg = (
            f"Invalid page size specified: '{raw}'. Must be between 1 and "
            f"{settings.log_page_max} inclusive."
        )
        raise bad_request(msg)
    return top


#: The last listings served, so following pages cost only the page: log id -> (the log,
#: its (fingerprint, snapshot, first_seq), the ordered sequence numbers).
_LISTINGS: dict[int, tuple[weakref.ref[ProvisioningLog], tuple[str, int, int], list[int]]] = {}


def _listing(
    ctx: RequestContext, log: ProvisioningLog, fingerprint: str, snapshot: int
) -> list[int]:
    """Sequence numbers of the records a listing shows, in its order: a stable snapshot
    (records written after its first page are not part of it), filtered, ordered."""
    key = (fingerprint, snapshot, log.first_seq)
    cached = _LISTINGS.get(id(log))
    if cached is not None and cached[0]() is log and cached[1] == key:
        return cached[2]
    visible = log.entries[: max(snapshot - log.first_seq, 0)]
    items = list(enumerate(visible, start=log.first_seq))
    raw_filter = ctx.query.get("$filter")
    if raw_filter is not None:
        compiled = _LOG_FILTER.compile(raw_filter)
        items = [(i, e) for i, e in items if compiled.matches(e)]
    descending = True
    raw_orderby = ctx.query.get("$orderby")
    if raw_orderby is not None:
        keys = _LOG_ORDERBY.parse(raw_orderby)
        if len(keys) != 1:
            raise unsupported_query("Sorting is supported on activityDateTime only.")
        descending = keys[0][1]
    # The store is kept in time order; the sort only settles records that were not.
    items.sort(key=lambda pair: (pair[1]["activityDateTime"], pair[0]), reverse=descending)
    order = [i for i, _ in items]
    if len(_LISTINGS) > 64:
        _LISTINGS.clear()
    _LISTINGS[id(log)] = (weakref.ref(log), key, order)
    return order


@router.route("GET", "/auditLogs/provisioning", permissions=LOG_READ, kind="reports")
def list_provisioning(ctx: RequestContext) -> EmuResponse:
    query = ctx.query
    for option in ("$skip", "$search", "$count", "$expand"):
        if option in query:
            raise bad_request(f"Query option '{option}' is not supported on this resource.")
    tenant = ctx.tenant
    logs.prune(tenant, ctx.now, ctx.emulator.provisioning.log_retention)
    log = tenant.provisioning_log
    top = _page_size(ctx)
    fingerprint = _fingerprint(ctx)
    token = query.get("$skiptoken")
    if token is not None:
        offset, snapshot = _decode_token(token, fingerprint)
    else:
        offset, snapshot = 0, log.first_seq + len(log.entries)
    order = _listing(ctx, log, fingerprint, snapshot)
    window = order[offset : offset + top]
    end = offset + len(window)
    page = [log.entries[seq - log.first_seq] for seq in window if seq >= log.first_seq]
    body: JsonObject = {"@odata.context": f"{ctx.base_url}/$metadata#auditLogs/provisioning"}
    if end < len(order):
        body["@odata.nextLink"] = _next_link(ctx, _encode_token(end, snapshot, fingerprint))
    select = query.get("$select")
    # The answer is serialized at once, so the stored records need no copy.
    body["value"] = [apply_select(e, select) for e in page]
    return ctx.json(200, body)
