"""The control API under ``/_emulator``: reset, seed, inspect, inject faults, move time, run
provisioning cycles, tune the provisioning engine, and play the person who signs in (approve or
decline device codes, queue interactive sign-ins, assign directory roles: ``core/delegated.py``).

It is a local test harness, so it takes no token; bind the emulator to loopback. Every request
other than ``GET``/``HEAD`` must carry ``Content-Type: application/json`` (body or not),
else ``415``: a web page can make a browser send a cross-origin "simple" request (``text/plain``,
form data) without asking first, but not one with a JSON content type. (The served app also
checks the ``Host`` header against DNS rebinding: ``ctsync.emulator.server``.)
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ctsync.emulator.core.http import EmuRequest, EmuResponse, json_response

if TYPE_CHECKING:
    from ctsync.emulator._emulator import Emulator
    from ctsync.emulator.state import Tenant

__all__ = ["handle_control"]


def _error(status: int, code: str, message: str) -> EmuResponse:
    return json_response(status, {"error": {"code": code, "message": message}})


#: Methods that change nothing and need no content type.
_SAFE_METHODS = {"GET", "HEAD"}


def _is_json(value: str | None) -> bool:
    """``application/json``, any case, with or without parameters (``; charset=utf-8``)."""
    if not value:
        return False
    return value.split(";", 1)[0].strip().lower() == "application/json"


def _body(request: EmuRequest) -> Any:
    if not request.body.strip():
        return {}
    return json.loads(request.body)


def handle_control(emulator: Emulator, request: EmuRequest, path: str) -> EmuResponse:
    method = request.method.upper()
    route = (method, path.lower().rstrip("/"))
    if method not in _SAFE_METHODS and not _is_json(request.header("content-type")):
        return _error(
            415,
            "UnsupportedMediaType",
            f"The control API takes {method} requests only with Content-Type: application/json "
            "(send {} when there is nothing to say).",
        )
    try:
        body = _body(request) if method == "POST" else None
    except (ValueError, UnicodeDecodeError):
        return _error(400, "BadRequest", "The control API takes a JSON body.")
    try:
        if route == ("POST", "/reset"):
            emulator.reset()
            return json_response(200, {"reset": True})
        if route == ("POST", "/seed"):
            return _seed(emulator, body)
        if route == ("GET", "/state"):
            return json_response(200, state(emulator))
        if route == ("GET", "/requests"):
            return _requests(emulator, request)
        if route == ("POST", "/faults"):
            if not isinstance(body, dict):
                return _error(400, "BadRequest", "POST faults takes a JSON object.")
            settings = dict(body)
            seed = settings.pop("seed", None)
            if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
                return _error(400, "BadRequest", "seed takes an integer.")
            emulator.traffic.configure(emulator.faults.merged(settings))
            if seed is not None:
                emulator.traffic.reseed(seed)
            return json_response(200, emulator.faults.to_dict())
        if route == ("POST", "/clock/advance"):
            seconds = body.get("seconds") if isinstance(body, dict) else None
            if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
                return _error(400, "BadRequest", 'clock/advance takes {"seconds": N}, N >= 0.')
            # A control caller edited no tenant state behind the API.
            emulator.advance(float(seconds), direct_edits=False)
            return json_response(200, {"now": _iso(emulator)})
        if route == ("POST", "/cycles/run"):
            return _run_cycles(emulator, body)
        if route == ("POST", "/oidc/token"):
            return _oidc_token(emulator, request, body)
        if route == ("POST", "/oidc/actions"):
            return _oidc_actions(emulator, request, body)
        if route == ("GET", "/provisioning"):
            return json_response(200, _provisioning_settings(emulator))
        if route == ("POST", "/provisioning"):
            if not isinstance(body, dict):
                return _error(400, "BadRequest", "POST provisioning takes a JSON object.")
            changes = dict(body)
            quotas = _object_quotas(emulator, changes.pop("object_quotas", None))
            emulator.provisioning = emulator.provisioning.merged(changes)
            for tenant, quota in quotas:
                tenant.object_quota = quota
            return json_response(200, _provisioning_settings(emulator))
        # Delegated sign-in: pending device codes, approving or declining one, the next
        # interactive sign-in, directory roles (core/delegated.py).
        from ctsync.emulator.core.delegated import handle_signin_control

        signin = handle_signin_control(emulator, method, path, body)
        if signin is not None:
            return signin
    except ValueError as exc:
        return _error(400, "BadRequest", str(exc))
    return _error(501, "NotImplemented", f"The control API has no {method} {path}.")


#: Claims the issuer sets itself; a control request may not choose them.
_RESERVED_CLAIMS = frozenset({"iss", "sub", "aud", "exp", "iat", "nbf", "jti"})
#: What ``POST oidc/token`` mints unless told otherwise (seconds).
DEFAULT_OIDC_LIFETIME = 600


def _oidc_token(emulator: Emulator, request: EmuRequest, body: Any) -> EmuResponse:
    """``POST oidc/token`` ``{"subject", "audience"?, "lifetime"?, "claims"?}``: a token of the
    built-in issuer, ``{"value", "issuer", "subject", "audience", "expires_on"}``."""
    from ctsync.emulator.core.clients import DEFAULT_FEDERATED_AUDIENCE

    if not isinstance(body, dict):
        return _error(400, "BadRequest", "oidc/token takes a JSON object.")
    subject = body.get("subject")
    audience = body.get("audience", DEFAULT_FEDERATED_AUDIENCE)
    lifetime = body.get("lifetime", DEFAULT_OIDC_LIFETIME)
    claims = body.get("claims") or {}
    if not isinstance(subject, str) or not subject:
        return _error(400, "BadRequest", 'oidc/token needs "subject" (a non-empty string).')
    if not isinstance(audience, str) or not audience:
        return _error(400, "BadRequest", '"audience" must be a non-empty string.')
    if not _seconds(lifetime):
        return _error(400, "BadRequest", '"lifetime" must be a positive number of seconds.')
    if not isinstance(claims, dict) or _RESERVED_CLAIMS & set(claims):
        reserved = ", ".join(sorted(_RESERVED_CLAIMS))
        return _error(400, "BadRequest", f'"claims" is an object without {reserved}.')
    token, expires = emulator.oidc.mint(
        origin=request.origin,
        subject=subject,
        audience=audience,
        now=emulator.clock.now(),
        token_id=emulator.ids.guid(),
        lifetime=timedelta(seconds=float(lifetime)),
        claims=claims,
    )
    return json_response(
        200,
        {
            "value": token,
            "issuer": emulator.oidc.issuer_url(request.origin),
            "subject": subject,
            "audience": audience,
            "expires_on": int(expires.timestamp()),
        },
    )


def _oidc_actions(emulator: Emulator, request: EmuRequest, body: Any) -> EmuResponse:
    """``POST oidc/actions`` ``{"repository", "ref"?, "environment"?, "event_name"?,
    "subject"?, "lifetime"?, "claims"?}``: the two variables a GitHub Actions job with
    ``id-token: write`` has, for a pretend run of ``repository``."""
    from ctsync.emulator.core.oidc import ACTIONS_DEFAULT_LIFETIME, OIDC_PATH, ActionsRun

    if not isinstance(body, dict):
        return _error(400, "BadRequest", "oidc/actions takes a JSON object.")
    repository = body.get("repository")
    if not isinstance(repository, str) or repository.count("/") != 1:
        return _error(400, "BadRequest", 'oidc/actions needs "repository" as "owner/name".')
    texts = {k: body.get(k) for k in ("ref", "environment", "event_name", "subject")}
    if any(v is not None and (not isinstance(v, str) or not v) for v in texts.values()):
        return _error(400, "BadRequest", "ref, environment, event_name and subject are strings.")
    lifetime = body.get("lifetime", ACTIONS_DEFAULT_LIFETIME.total_seconds())
    if not _seconds(lifetime):
        return _error(400, "BadRequest", '"lifetime" must be a positive number of seconds.')
    claims = body.get("claims") or {}
    if not isinstance(claims, dict) or _RESERVED_CLAIMS & set(claims):
        reserved = ", ".join(sorted(_RESERVED_CLAIMS))
        return _error(400, "BadRequest", f'"claims" is an object without {reserved}.')
    run = ActionsRun(
        repository=repository,
        ref=texts["ref"] or "refs/heads/main",
        environment=texts["environment"],
        event_name=texts["event_name"] or "push",
        subject=texts["subject"],
        lifetime=timedelta(seconds=float(lifetime)),
        extra_claims=claims,
    )
    request_token = emulator.oidc.start_run(run)
    url = f"{request.origin}{OIDC_PATH}/actions/token?api-version=2.0"
    return json_response(
        200,
        {
            "ACTIONS_ID_TOKEN_REQUEST_URL": url,
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN": request_token,
            "subject": run.claims()["sub"],
        },
    )


def _seconds(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def _requests(emulator: Emulator, request: EmuRequest) -> EmuResponse:
    """``GET requests[?after=SEQ]``: the answered Graph calls after ``SEQ`` (default: all)."""
    after = request.query.get("after", "0")
    if not after.isdigit():
        return _error(400, "BadRequest", "after takes the seq of a logged request (an integer).")
    chosen = [r for r in emulator.request_log if r["seq"] > int(after)]
    return json_response(200, {"requests": chosen})


def _seed(emulator: Emulator, body: Any) -> EmuResponse:
    scenario = body.get("scenario") if isinstance(body, dict) else None
    if not isinstance(scenario, str | dict):
        return _error(400, "BadRequest", 'seed takes {"scenario": "demo"} or {"scenario": {...}}.')
    tenants = emulator.seed(scenario)
    ids = {t.id for t in tenants}
    added = [entry for entry in emulator.client_directory() if entry["tenant_id"] in ids]
    return json_response(200, {"tenants": added})


def _run_cycles(emulator: Emulator, body: Any) -> EmuResponse:
    """``POST cycles/run`` (optional ``{"jobs": [jobId, ...]}``): one cycle of every started
    job now; answers each job's cycle summary."""
    jobs = body.get("jobs") if isinstance(body, dict) else None
    if jobs is not None and (
        not isinstance(jobs, list) or not all(isinstance(j, str) for j in jobs)
    ):
        return _error(400, "BadRequest", 'cycles/run takes {"jobs": ["<job id>", ...]}.')
    return json_response(200, {"now": _iso(emulator), "cycles": emulator.run_cycles(jobs)})


def _provisioning_settings(emulator: Emulator) -> dict[str, Any]:
    """The engine's settings, with each tenant's directory object quota (``object_quotas``,
    by tenant name)."""
    settings = emulator.provisioning.to_dict()
    settings["object_quotas"] = {t.name: t.object_quota for t in emulator.tenants.values()}
    return settings


def _object_quotas(emulator: Emulator, value: Any) -> list[tuple[Tenant, int]]:
    """``object_quotas`` of ``POST provisioning``: ``{"<tenant name or id>": N}``, checked
    whole before anything changes."""
    if value is None:
        return []
    if not isinstance(value, dict):
        msg = 'object_quotas takes {"<tenant name or id>": N, ...}'
        raise ValueError(msg)  # noqa: TRY004 - the control API answers 400 for ValueError
    out: list[tuple[Tenant, int]] = []
    for name, quota in value.items():
        try:
            tenant = emulator.tenant(str(name))
        except KeyError as exc:
            msg = f"object_quotas: no tenant {name!r} in the emulator"
            raise ValueError(msg) from exc
        if not isinstance(quota, int) or isinstance(quota, bool) or quota < 0:
            msg = f"object_quotas: {name!r} takes an integer >= 0"
            raise ValueError(msg)
        out.append((tenant, quota))
    return out


def _provisioning(tenant: Tenant) -> list[dict[str, Any]]:
    out = []
    for sp_id, sync in tenant.synchronization.items():
        for record in sync.jobs.values():
            run = record.running_cycle
            out.append(
                {
                    "service_principal_id": sp_id,
                    "job_id": record.id,
                    "status": record.status_code,
                    "next_cycle_at": _when(record.next_cycle_at),
                    "running_cycle": (
                        None
                        if run is None
                        else {
                            "cycle_id": run.cycle_id,
                            "began": _when(run.began),
                            "initial": run.initial,
                            "completed": run.completed_units,
                            "total": run.total_units,
                        }
                    ),
                    "completed_cycles": record.completed_cycles,
                    "last_cycle": record.last_cycle,
                    "escrows": len(record.escrows) + len(record.group_escrows),
                    "linked_users": len(record.connector_data_store),
                    "linked_groups": len(record.group_store),
                }
            )
    return out


def _when(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def _iso(emulator: Emulator) -> str:
    return emulator.clock.now().isoformat().replace("+00:00", "Z")


def _jobs(tenant: Tenant) -> list[dict[str, Any]]:
    return [
        {
            "service_principal_id": sp_id,
            "job_id": record.id,
            "status": record.status_code,
            "schedule": record.job["schedule"]["state"],
            "full_sync_due": record.full_sync_due,
        }
        for sp_id, sync in tenant.synchronization.items()
        for record in sync.jobs.values()
    ]


def _multitenant_org(tenant: Tenant) -> dict[str, Any]:
    mto = tenant.multi_tenant_org
    join = mto.join_request
    return {
        "home_of": None if mto.organization is None else mto.organization["id"],
        "members": {tid: m["state"] for tid, m in sorted(mto.members.items())},
        "join_request": None if join is None else join["memberState"],
        "join_due": _when(mto.join_window[1]) if mto.join_window else None,
        "templates_customized": [
            name
            for name, stored in (
                ("partnerConfiguration", mto.partner_template),
                ("identitySynchronization", mto.identity_sync_template),
            )
            if stored is not None
        ],
    }


def state(emulator: Emulator) -> dict[str, Any]:
    """A summary of everything the emulator holds, for tests and for curious humans."""
    tenants = [
        {
            "name": t.name,
            "tenant_id": t.id,
            "domain": t.domain,
            "users": len(t.users),
            "groups": len(t.groups),
            "clients": [c.client_id for c in t.clients.values()],
            "partners": sorted(t.access_policy.partners),
            "identity_synchronization": sorted(t.access_policy.identity_sync),
            "default_policy_customized": t.access_policy.default is not None,
            "multitenant_organization": _multitenant_org(t),
            "applications": len(t.applications),
            "service_principals": len(t.service_principals),
            "app_role_assignments": sum(len(a) for a in t.app_role_assignments.values()),
            "synchronization_jobs": _jobs(t),
            "provisioning": _provisioning(t),
            "provisioning_log_records": len(t.provisioning_log.entries),
            "deleted_users": len(t.deleted_users),
        }
        for t in emulator.tenants.values()
    ]
    return {
        "now": _iso(emulator),
        "seed": emulator.seed_value,
        "tenants": tenants,
        "faults": emulator.faults.to_dict(),
        "provisioning": emulator.provisioning.to_dict(),
        "stats": {**dict(emulator.stats), "traffic": emulator.traffic.stats()},
        "engine": _engine(emulator),
    }


def _engine(emulator: Emulator) -> dict[str, Any]:
    """What the provisioning engine did: ``jobs_visited`` (jobs looked at to find due events)
    grows with the events that came due, not with requests × jobs; ``users_planned`` by one
    per user a cycle evaluates."""
    return {
        "queued_jobs": len(emulator.cycle_queue),
        "jobs_visited": emulator.engine_stats["jobs_visited"],
        "events": emulator.engine_stats["events"],
        "users_planned": emulator.engine_stats["users_planned"],
        "users_fingerprinted": emulator.engine_stats["users_fingerprinted"],
        "contexts_built": emulator.engine_stats["contexts_built"],
        "mappings_compiled": emulator.engine_stats["mappings_compiled"],
    }
