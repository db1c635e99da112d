"""The users in scope, in bulk: group members, their details, the registration report filtered
server-side, and the phone methods of SMS sign-in candidates only."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import quote

from ctsync.errors import GraphError
from ctsync.graph import BatchRequest, raise_for_item
from ctsync.graph.apps import odata_string

from ._preflight_base import MOBILE_PHONE_METHOD, Finding, LinkCheck, Reads

__all__ = ["user_checks"]

_PHONE_NAMES: Final = ("mobilePhone", "alternateMobilePhone", "officePhone")
_USER_SELECT: Final = (
    "id,displayName,userPrincipalName,mail,userType,accountEnabled,creationType,externalUserState"
)
#: Ids per ``id in (…)`` filter: Graph allows 15 expressions in an ``in`` clause by default.
_IDS_PER_FILTER: Final = 15


def _is_external(user: Mapping[str, Any]) -> bool:
    return (
        str(user.get("userType") or "").lower() == "guest"
        or "#ext#" in str(user.get("userPrincipalName") or "").lower()
        or user.get("creationType") == "Invitation"
        or user.get("externalUserState") is not None
    )


def _who(user: Mapping[str, Any]) -> str:
    return str(user.get("userPrincipalName") or user.get("id"))


async def _group_members(reads: Reads, tenant: str, group_id: str) -> list[dict[str, Any]]:
    return await reads.list(
        tenant, f"/groups/{quote(group_id)}/members", select=["id", "displayName"], top=999
    )


async def _user_details(reads: Reads, tenant: str, ids: list[str]) -> dict[str, dict[str, Any]]:
    """Users by id through ``id in (…)`` filters, 15 ids each, sent in ``$batch``."""
    key = (tenant, "USERS", ",".join(sorted(ids)))

    async def fetch() -> dict[str, dict[str, Any]]:
        chunks = [ids[i : i + _IDS_PER_FILTER] for i in range(0, len(ids), _IDS_PER_FILTER)]
        requests = [
            BatchRequest(
                id=str(n),
                method="GET",
                url="/users?$select="
                + _USER_SELECT
                + "&$filter="
                + quote(f"id in ({','.join(odata_string(i) for i in chunk)})", safe=""),
            )
            for n, chunk in enumerate(chunks)
        ]
        results = await reads.client(tenant).batch(requests, concurrency=4)
        out: dict[str, dict[str, Any]] = {}
        for result in results.values():
            raise_for_item(result)
            body = result.body if isinstance(result.body, dict) else {}
            for user in body.get("value") or []:
                out[str(user["id"])] = user
        return out

    return await reads.once(key, fetch)


def _in_scope(link: LinkCheck) -> tuple[bool, list[tuple[str, str]]]:
    """(all members?, assigned principals) once apply has run: a staged rollout's current stage
    (recorded on the app; the pilot before the first apply), else the link's scope."""
    sync = link.spec.sync
    if sync.rollout is None:
        return sync.all_members, [(p.kind, p.ref) for p in sync.assigned]
    recorded = link.live_link.stage
    stage = recorded[0] if recorded else 0
    principals = sync.rollout.principals(stage)
    return sync.rollout.sync_all(stage), [(p.kind, p.ref) for p in principals]


async def _scope(reads: Reads, link: LinkCheck) -> tuple[dict[str, dict[str, Any]], list[Finding]]:
    """The users in scope (by id) and findings about the scope itself."""
    source = link.source
    found: list[Finding] = []
    all_members, assigned = _in_scope(link)
    if all_members:
        users = await reads.list(
            source.name,
            "/users",
            filter="userType eq 'Member'",
            select=_USER_SELECT.split(","),
            top=999,
        )
        return {str(u["id"]): u for u in users}, found
    resolved = link.live_link.principals
    principals = {key: resolved[key] for key in assigned if key in resolved}
    user_ids = [oid for (kind, _), oid in principals.items() if kind == "user"]
    groups = [(ref, oid) for (kind, ref), oid in principals.items() if kind == "group"]
    listed = await asyncio.gather(*(_group_members(reads, source.name, oid) for _, oid in groups))
    for (ref, _), members in zip(groups, listed, strict=True):
        for member in members:
            kind = str(member.get("@odata.type") or "")
            if kind.endswith(".user"):
                user_ids.append(str(member["id"]))
            elif kind.endswith(".group"):
                found.append(
                    link.finding(
                        "info",
                        "scope.nested-group",
                        source,
                        f"assigned group {ref} holds group "
                        f"{member.get('displayName') or member['id']}: only direct members are "
                        "in scope, so its members are not synced",
                        f"assign {member.get('displayName') or member['id']} itself if its "
                        "members should be synced",
                        subject=str(member.get("displayName") or member["id"]),
                    )
                )
    unique = list(dict.fromkeys(user_ids))
    return (await _user_details(reads, source.name, unique) if unique else {}), found


async def _registration(reads: Reads, tenant: str, flt: str) -> dict[str, dict[str, Any]]:
    rows = await reads.list(
        tenant, "/reports/authenticationMethods/userRegistrationDetails", filter=flt
    )
    return {str(r.get("id")): r for r in rows}


async def _sms_ready(reads: Reads, tenant: str, ids: list[str]) -> set[str]:
    """Which of ``ids`` have SMS sign-in ready on their mobile phone (one ``$batch`` round)."""
    if not ids:
        return set()
    key = (tenant, "PHONES", ",".join(sorted(ids)))

    async def fetch() -> set[str]:
        requests = [
            BatchRequest(
                id=uid, method="GET", url=f"/users/{quote(uid)}/authentication/phoneMethods"
            )
            for uid in ids
        ]
        results = await reads.client(tenant).batch(requests, concurrency=4)
        ready: set[str] = set()
        for uid, result in results.items():
            if result.status == 404:
                continue
            raise_for_item(result)
            body = result.body if isinstance(result.body, dict) else {}
            for phone in body.get("value") or []:
                if (
                    str(phone.get("id")).lower() == MOBILE_PHONE_METHOD
                    and phone.get("smsSignInState") == "ready"
                ):
                    ready.add(uid)
        return ready

    return await reads.once(key, fetch)


async def user_checks(reads: Reads, link: LinkCheck) -> list[Finding]:
    source = link.source
    try:
        users, found = await _scope(reads, link)
    except GraphError as exc:
        return [
            link.finding(
                "warning",
                "users.unreadable",
                source,
                f"the users in scope could not be listed ({exc.status} {exc.code}: "
                f"{exc.message}), so no user was checked",
                f"grant Directory.Read.All to ctsync's app in {source.name}",
                subject="Directory.Read.All",
            )
        ]
    if not users:
        found.append(
            link.finding(
                "warning",
                "scope.empty",
                source,
                f"{source.name} has no member users"
                if _in_scope(link)[0]
                else "no user is in scope: the assigned groups have no direct user members",
                "assign users or groups with members (sync.scope.assigned)",
            )
        )
        return found
    internal = {uid: u for uid, u in users.items() if not _is_external(u)}
    for user in users.values():
        if not _is_external(user):
            continue
        found.append(
            link.finding(
                "warning",
                "user.external",
                source,
                f"{user.get('displayName') or _who(user)} is a guest or external user of "
                f"{source.name} (userType {user.get('userType')}): cross-tenant sync skips it "
                "(scoping: Filter external users)",
                f"remove it from the assigned groups of {link.key}, or ignore this",
                subject=_who(user),
                data={"user_id": user["id"]},
            )
        )
    for user in internal.values():
        if user.get("accountEnabled") is False:
            found.append(
                link.finding(
                    "info",
                    "user.disabled",
                    source,
                    f"{user.get('displayName') or _who(user)} is disabled in {source.name}; "
                    "it is synced as a disabled user",
                    "re-enable or unassign it if that is not intended",
                    subject=_who(user),
                    data={"user_id": user["id"]},
                )
            )
    by_mail: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for user in internal.values():
        if user.get("mail"):
            by_mail[str(user["mail"]).lower()].append(user)
    for mail, same in sorted(by_mail.items()):
        if len(same) < 2:
            continue
        names = ", ".join(sorted(_who(u) for u in same))
        found.append(
            link.finding(
                "warning",
                "user.duplicate-mail",
                source,
                f"{len(same)} users in scope share the mail {mail} ({names}): they map to one "
                "user in the target",
                "give each user its own mail address, or keep all but one out of scope",
                subject=mail,
                data={"user_ids": sorted(str(u["id"]) for u in same)},
            )
        )
    found += await _methods(reads, link, internal)
    return found


async def _methods(
    reads: Reads, link: LinkCheck, users: Mapping[str, Mapping[str, Any]]
) -> list[Finding]:
    source = link.source
    report = "/reports/authenticationMethods/userRegistrationDetails"
    try:
        not_capable, *phones = await asyncio.gather(
            _registration(reads, source.name, "isMfaCapable eq false"),
            *(
                _registration(reads, source.name, f"methodsRegistered/any(m: m eq '{name}')")
                for name in _PHONE_NAMES
            ),
        )
    except GraphError as exc:
        return [
            link.finding(
                "warning",
                "users.unreadable",
                source,
                f"the authentication methods registration report ({report}) could not be read "
                f"({exc.status} {exc.code}), so MFA and SMS sign-in were not checked",
                f"grant AuditLog.Read.All to ctsync's app in {source.name}",
                subject="AuditLog.Read.All",
            )
        ]
    found: list[Finding] = []
    mobile = [uid for uid in users if uid in phones[0]]
    try:
        sms = await _sms_ready(reads, source.name, mobile)
    except GraphError as exc:
        sms = set()
        found.append(
            link.finding(
                "warning",
                "users.unreadable",
                source,
                f"the phone methods of {len(mobile)} user(s) could not be read ({exc.status} "
                f"{exc.code}), so SMS sign-in was not checked",
                f"grant UserAuthenticationMethod.Read.All to ctsync's app in {source.name}",
                subject="UserAuthenticationMethod.Read.All",
            )
        )
    methods: dict[str, list[str]] = {}
    for rows in phones:
        for uid, row in rows.items():
            methods[uid] = [str(m) for m in row.get("methodsRegistered") or []]
    for uid, user in users.items():
        name = user.get("displayName") or _who(user)
        if uid in sms:
            found.append(
                link.finding(
                    "warning",
                    "user.sms-sign-in",
                    source,
                    f"{name} has SMS sign-in enabled on their mobile number: cross-tenant sync "
                    "skips the user (scoping: Filter external users.alternativeSecurityIds)",
                    "run `ctsync preflight --fix sms-sign-in` (asks first, recorded in the "
                    "audit trail); the number stays registered as a second factor",
                    subject=_who(user),
                    data={"user_id": uid},
                )
            )
        elif uid in not_capable:
            found.append(
                link.finding(
                    "warning",
                    "user.no-mfa",
                    source,
                    f"{name} is not MFA-capable in {source.name} (no strong method "
                    "registered): where the target requires MFA, the user is stopped at the "
                    "first sign-in to register one",
                    f"have the user register Microsoft Authenticator (or another strong method) "
                    f"in {source.name} before the first cycle",
                    subject=_who(user),
                    data={"user_id": uid},
                )
            )
        elif uid in methods and set(methods[uid]) <= set(_PHONE_NAMES):
            found.append(
                link.finding(
                    "info",
                    "user.phone-only",
                    source,
                    f"{name}'s only second factors are phone-based ({', '.join(methods[uid])}). "
                    "Phone as a second factor is not documented to break cross-tenant sync "
                    "(only SMS sign-in does); this is advice",
                    "suggest a phishing-resistant method (Authenticator, FIDO2) to the user",
                    subject=_who(user),
                    data={"user_id": uid},
                )
            )
    return found
