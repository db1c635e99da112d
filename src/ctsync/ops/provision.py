"""Provision one user (or a list) on demand — or, on a link that syncs groups, a security
group with its members' memberships — and explain each step in plain words.

``provisionOnDemand`` is limited to 5 requests per 10 s (reference §3.9); the shared pacer holds
a list of users to that, so ``--users FILE`` never bounces off a 429. The answer comes in two
documented shapes (the CTS article's JSON array, the API reference's result + object); both are
read here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from ctsync.audit import audit_step
from ctsync.config import LinkSpec
from ctsync.engine import Session
from ctsync.errors import CtsyncError, NotFoundError
from ctsync.graph.apps import odata_string
from ctsync.graph.sync import SynchronizationApi
from ctsync.ops.knowledge import advice_for, refine_reason
from ctsync.ops.locate import LinkJob, locate

_GUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"

__all__ = [
    "OnDemandResult",
    "OnDemandStep",
    "parse_on_demand",
    "provision_groups",
    "provision_users",
]


@dataclass(frozen=True)
class OnDemandStep:
    name: str
    kind: str
    status: str
    description: str
    details: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.kind,
            "status": self.status,
            "description": self.description,
            "details": self.details,
        }


@dataclass
class OnDemandResult:
    link: str
    user: str
    user_id: str | None
    status: str
    action: str | None = None
    reason: str | None = None
    explanation: str | None = None
    steps: list[OnDemandStep] = field(default_factory=list)
    error: str | None = None
    #: ``User`` or ``Group`` (``user`` and ``user_id`` then name the group).
    object_type: str = "User"

    @property
    def ok(self) -> bool:
        return self.status.lower() in {"success", "skipped"} and self.error is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "link": self.link,
            "user": self.user,
            "user_id": self.user_id,
            "status": self.status,
            "action": self.action,
            "reason": self.reason,
            "explanation": self.explanation,
            "steps": [s.to_dict() for s in self.steps],
            "error": self.error,
            "object_type": self.object_type,
        }


def _load(text: Any) -> Any:
    if isinstance(text, str):
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


def _steps(raw: Any) -> list[OnDemandStep]:
    out = []
    for step in raw or []:
        details = step.get("details") or {}
        out.append(
            OnDemandStep(
                name=str(step.get("name")),
                kind=str(step.get("type") or step.get("provisioningStepType") or ""),
                status=str(step.get("status") or ""),
                description=str(step.get("description") or ""),
                details=details if isinstance(details, dict) else {"value": details},
            )
        )
    return out


def _skip_reason(steps: list[OnDemandStep]) -> str | None:
    for step in steps:
        if step.details.get("SkipReason"):
            return str(step.details["SkipReason"])
    for step in steps:
        if step.kind.lower() == "scoping" and step.status.lower() in {
            "skipped",
            "failure",
            "failed",
        }:
            text = json.dumps(step.details)
            if "Filter external users" in text:
                return "SmsSignInEnabled" if "SMS" in text or "sms" in text else "ExternalUser"
            if '"Assigned to the application": "False"' in text or '"Assigned": "False"' in text:
                return "NotEffectivelyEntitled"
            return "OutOfScope"
    return None


def parse_on_demand(
    payload: dict[str, Any],
) -> tuple[str, str | None, str | None, list[OnDemandStep]]:
    """(status, action, reason, steps) from either documented answer shape."""
    key, value = _load(payload.get("key")), _load(payload.get("value"))
    if isinstance(value, list):  # the CTS article: value is a JSON array of status infos
        info = value[0] if value else {}
        steps = _steps(info.get("provisioningSteps"))
        failed = [s for s in steps if s.status.lower() in {"failure", "failed"}]
        skipped = [s for s in steps if s.status.lower() == "skipped"]
        status = "Failure" if failed else "Skipped" if skipped else "Success"
        reported = info.get("statusInfo") or {}
        status = str(reported.get("status") or status)
        reason = refine_reason(reported.get("errorCode"), reported.get("reason"))
        if failed and not reason:
            reason = (
                str(
                    failed[-1].details.get("ErrorCode") or failed[-1].details.get("errorCode") or ""
                )
                or None
            )
        reason = reason or _skip_reason(steps)
        return status, info.get("action"), reason, steps
    value = value if isinstance(value, dict) else {}
    steps = _steps(value.get("provisioningSteps"))
    status_info = value.get("statusInfo") or {}
    result = key.get("result") if isinstance(key, dict) else None
    status = str(status_info.get("status") or result or "Unknown")
    details = key.get("details") if isinstance(key, dict) else {}
    code = status_info.get("errorCode") or (details or {}).get("errorCode")
    text = status_info.get("reason") or (details or {}).get("errorMessage")
    reason = refine_reason(code, text) or _skip_reason(steps)
    return status, value.get("action"), reason, steps


def _explain(status: str, reason: str | None, steps: list[OnDemandStep]) -> str:
    advice = advice_for(reason)
    if advice is not None:
        verb = "skipped" if status.lower() == "skipped" else status.lower()
        return f"{verb}: {advice.meaning}; {advice.fix}"
    if status.lower() == "success":
        last = steps[-1].description if steps else "done"
        return f"provisioned: {last}"
    return f"{status.lower()}: {reason or (steps[-1].description if steps else 'no details')}"


async def _rule_id(session: Session, where: LinkJob) -> str:
    schema = await SynchronizationApi(session.client(where.link.source)).get_schema(
        where.sp_id, where.job_id
    )
    rules = schema.get("synchronizationRules") or []
    if not rules:
        msg = f"link {where.key}: the job's schema has no synchronization rule"
        raise CtsyncError(msg)
    return str(rules[0]["id"])


async def provision_users(
    session: Session, link: LinkSpec, users: Sequence[str]
) -> list[OnDemandResult]:
    """Provision each user (UPN or object id) of the link's source tenant, one after another."""
    return await _provision(session, link, users, "User")


async def provision_groups(
    session: Session, link: LinkSpec, groups: Sequence[str]
) -> list[OnDemandResult]:
    """Provision each security group (display name or object id) of the link's source tenant,
    with the memberships of its members already in the target, one after another. Only on a
    link that syncs groups (``sync.groups``): elsewhere Graph only evaluates the group."""
    if not link.sync.groups:
        msg = (
            f"link {link.key} does not sync groups: set sync.groups: true (with "
            "`beta: [group_sync]`) to provision a group on demand, or provision its members "
            "with --user"
        )
        raise CtsyncError(msg)
    return await _provision(session, link, groups, "Group")


async def _find(session: Session, link: LinkSpec, ref: str, kind: str) -> str | None:
    """The object id of the user (UPN or id) or group (display name or id) ``ref``."""
    client = session.client(link.source)
    if kind == "User":
        try:
            found = await client.get(f"/users/{quote(ref)}", params={"$select": "id"})
        except NotFoundError:
            return None
        return str(found.json_object()["id"])
    if re.fullmatch(_GUID, ref):
        try:
            return str(
                (await client.get(f"/groups/{ref}", params={"$select": "id"})).json_object()["id"]
            )
        except NotFoundError:
            return None
    named = await client.list_all(
        "/groups", params={"$filter": f"displayName eq {odata_string(ref)}", "$select": "id"}
    )
    if len(named) > 1:
        msg = f"{len(named)} groups in {link.source} are called {ref!r}: name one by its object id"
        raise CtsyncError(msg)
    return str(named[0]["id"]) if named else None


async def _provision(
    session: Session, link: LinkSpec, refs: Sequence[str], kind: str
) -> list[OnDemandResult]:
    where = await locate(session, link)
    rule = await _rule_id(session, where)
    client = session.client(link.source)
    path = (
        f"/servicePrincipals/{quote(where.sp_id)}/synchronization/jobs/"
        f"{quote(where.job_id, safe='')}/provisionOnDemand"
    )
    results = []
    for ref in refs:
        object_id = await _find(session, link, ref, kind)
        if object_id is None:
            error = f"no {kind.lower()} {ref!r} in {link.source}"
            results.append(
                OnDemandResult(link.key, ref, None, "Failure", error=error, object_type=kind)
            )
            continue
        body = {
            "parameters": [
                {"ruleId": rule, "subjects": [{"objectId": object_id, "objectTypeName": kind}]}
            ]
        }
        with audit_step(link=link.key, step=f"{link.key}/provisionOnDemand"):
            answer = await client.post(path, json=body)
        status, action, reason, steps = parse_on_demand(answer.json_object())
        results.append(
            OnDemandResult(
                link=link.key,
                user=ref,
                user_id=object_id,
                status=status,
                action=action,
                reason=reason,
                explanation=_explain(status, reason, steps),
                steps=steps,
                object_type=kind,
            )
        )
    return results
