"""What every preflight check shares: findings, their codes, the link being checked, reads made
once per tenant, and "the state the plan will produce" for a partner setting."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, TypeVar

from ctsync.config import LinkSpec, TenantSpec
from ctsync.engine import Session
from ctsync.engine.desired import PartnerWant
from ctsync.engine.live import LiveLink, LiveState
from ctsync.errors import GraphError
from ctsync.graph import GraphClient

__all__ = [
    "FINDING_CODES",
    "MOBILE_PHONE_METHOD",
    "P1_SERVICE_PLAN",
    "POLICY",
    "RANK",
    "SEVERITIES",
    "Finding",
    "LinkCheck",
    "Produced",
    "Reads",
    "Severity",
    "default_policy",
    "member",
    "produced",
]

Severity = Literal["error", "warning", "info"]
SEVERITIES: Final[tuple[Severity, ...]] = ("error", "warning", "info")
RANK: Final = {"error": 0, "warning": 1, "info": 2}

#: Every code a finding can carry, with what it means. Codes are stable: scripts may match them.
FINDING_CODES: Final[Mapping[str, str]] = {
    "live.unreadable": "the live state of the link could not be read, so nothing else was judged",
    "coexist.existing-configuration": (
        "the source already syncs into the target through a configuration ctsync does not manage"
    ),
    "coexist.unidentified-configuration": (
        "the source has a configuration ctsync does not manage whose target it cannot tell"
    ),
    "coexist.adopt-missing": "the link adopts a configuration the source does not hold",
    "coexist.ambiguous-apps": "several untagged configurations carry the link's app name",
    "redemption.off-in-config": "the config turns automatic redemption off for the link",
    "redemption.inbound-blocked": "a read-only target does not redeem the source's users",
    "redemption.outbound-blocked": "a read-only source does not redeem its users in the target",
    "redemption.inbound-drift": "inbound automatic redemption drifted; apply sets it back",
    "redemption.outbound-drift": "outbound automatic redemption drifted; apply sets it back",
    "sync.inbound-blocked": "a read-only target does not allow user sync in from the source",
    "sync.inbound-drift": "inbound user sync was turned off; apply turns it back on",
    "groups.inbound-blocked": "a read-only target does not allow group sync in (beta)",
    "b2b.inbound-blocked": "the target blocks B2B collaboration for the source's users",
    "b2b.outbound-blocked": "the source blocks B2B collaboration for its users into the target",
    "b2b.inbound-partial": "the target allows B2B collaboration for some of the source's users",
    "b2b.outbound-partial": "the source allows B2B collaboration to the target for some users",
    "b2b.inbound-apps-blocked": "the target blocks every application for the source's users",
    "b2b.inbound-drift": "the target's B2B collaboration setting drifted; apply sets it back",
    "b2b.outbound-drift": "the source's B2B collaboration setting drifted; apply sets it back",
    "invitations.blocked": "the target's external collaboration settings allow no invitations",
    "invitations.unreadable": "the target's authorizationPolicy could not be read",
    "ca.mfa-missing": "no enabled Conditional Access policy requires MFA for the synced users",
    "ca.report-only": "a report-only Conditional Access policy (it enforces nothing)",
    "ca.not-covering": "an MFA policy that leaves out the user type or tenant the link creates",
    "ca.excluded-external": "an MFA policy excludes the synced users' guest or external type",
    "ca.excluded-principals": "an MFA policy excludes users or groups (synced users put there)",
    "ca.blocks": "a Conditional Access policy blocks the synced users",
    "ca.mfa-trusted": "inbound trust accepts the source's MFA for the target's MFA policies",
    "ca.mfa-not-trusted": "synced users must register and perform MFA in the target",
    "ca.licence": "the target lacks an enabled Entra ID P1 that Conditional Access needs",
    "ca.unreadable": "the target's Conditional Access policies could not be read",
    "licence.p1-missing": "the source has no enabled Entra ID P1 (cross-tenant sync needs it)",
    "licence.p1-grace": "the source's Entra ID P1 is in its grace period (status Warning)",
    "licence.unreadable": "the source's licences could not be read",
    "licence.cross-cloud": "a cross-cloud link needs Entra ID Governance or Suite (not checked)",
    "licence.group-sync": "group sync needs Entra ID Governance or Suite (not checked)",
    "clouds.not-allowed": "a read-only tenant does not allow the other tenant's Microsoft cloud",
    "quota.unknown": "the target's directory-object quota is not exposed by Graph v1.0",
    "permission.missing": "the credential lacks a permission a planned step needs",
    "permission.missing-read": "the credential lacks a permission preflight or day-2 reads need",
    "permission.missing-fix": "the credential cannot run `--fix sms-sign-in`",
    "permission.unknown": "no app token was seen for the tenant, so permissions were not checked",
    "permission.role-missing": "a person signs in without a directory role a planned step needs",
    "permission.role-missing-read": "a person signs in without a role preflight or day 2 reads",
    "scope.empty": "no user is in the link's scope",
    "scope.nested-group": "an assigned group holds a group, whose members are not in scope",
    "users.unreadable": "the users in scope or their methods could not be read",
    "user.sms-sign-in": "a user signs in by SMS; cross-tenant sync skips such users",
    "user.no-mfa": "a user is not MFA-capable",
    "user.phone-only": "a user's only second factors are phone-based (advice)",
    "user.external": "a guest or external user in an assigned group; sync skips it",
    "user.duplicate-mail": "users in scope share a mail address; they map to one target user",
    "user.disabled": "a disabled account in scope",
}

#: Entra ID P1's service plan (AADPremiumService); P2, E3, E5 and others carry it too.
P1_SERVICE_PLAN: Final = "41781fb2-bc02-4b7c-bd55-b576c07bb09d"
#: The fixed id of a user's mobile phone method, the only one SMS sign-in applies to.
MOBILE_PHONE_METHOD: Final = "3179e48a-750b-4051-897c-87b9720928f7"
POLICY: Final = "/policies/crossTenantAccessPolicy"

T = TypeVar("T")


@dataclass(frozen=True)
class Finding:
    """One thing preflight found: what, where, why, and how to fix it."""

    severity: Severity
    code: str
    link: str
    tenant: str
    """The config's name of the tenant the finding is about (where the fix is made)."""
    message: str
    fix: str
    subject: str | None = None
    """What it is about within the tenant: a user's UPN, a policy's name, a permission."""
    data: Mapping[str, Any] = field(default_factory=dict)
    """Machine-readable extras: ``user_id``, ``policy_id``, a policy body to create."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "severity": self.severity,
            "code": self.code,
            "link": self.link,
            "tenant": self.tenant,
            "subject": self.subject,
            "message": self.message,
            "fix": self.fix,
            "data": dict(self.data),
        }


class Reads:
    """Reads shared by links: each (tenant, what) is fetched once, concurrently awaited."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._tasks: dict[tuple[str, ...], asyncio.Task[Any]] = {}

    async def once(self, key: tuple[str, ...], make: Callable[[], Awaitable[T]]) -> T:
        task = self._tasks.get(key)
        if task is None:

            async def run() -> T:
                return await make()

            task = asyncio.ensure_future(run())
            self._tasks[key] = task
        result: T = await task
        return result

    def client(self, tenant: str) -> GraphClient:
        return self.session.client(tenant)

    def _fetch(
        self, tenant: str, path: str, params: dict[str, str]
    ) -> Callable[[], Awaitable[Any]]:
        async def fetch() -> dict[str, Any]:
            answer = await self.client(tenant).get(path, params=params or None)
            return answer.json_object()

        return fetch

    async def get(self, tenant: str, path: str, **params: str) -> dict[str, Any]:
        key = (tenant, "GET", path, json.dumps(params, sort_keys=True))
        result: dict[str, Any] = await self.once(key, self._fetch(tenant, path, params))
        return result

    def prefetch(self, tenant: str, path: str, **params: str) -> None:
        """Send a GET now; :meth:`get` later takes its answer (or its error). Reads that do
        not depend on the live state go out in the live read's round, not a round after it."""
        key = (tenant, "GET", path, json.dumps(params, sort_keys=True))
        if key not in self._tasks:
            self._tasks[key] = asyncio.ensure_future(self._fetch(tenant, path, params)())

    async def drain(self) -> None:
        """Wait for every read begun; a prefetched read no check took ends here, its error
        (if any) dropped: the check that would have reported it did not run."""
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    async def list(self, tenant: str, path: str, **kwargs: Any) -> list[dict[str, Any]]:
        async def fetch() -> list[dict[str, Any]]:
            return await self.client(tenant).list_all(path, **kwargs)

        key = (tenant, "LIST", path, json.dumps(kwargs, sort_keys=True, default=str))
        return await self.once(key, fetch)


@dataclass
class LinkCheck:
    """The link being checked, its tenants, what it wants of each partner configuration, and
    the live state the plan was computed from."""

    spec: LinkSpec
    source: TenantSpec
    target: TenantSpec
    inbound: PartnerWant
    outbound: PartnerWant
    live: LiveState

    @property
    def key(self) -> str:
        return self.spec.key

    @property
    def live_link(self) -> LiveLink:
        return self.live.links[self.key]

    @property
    def created_type(self) -> str:
        """The guest/external user type the link creates in the target (Conditional Access)."""
        member = self.spec.sync.user_type == "Member"
        return "b2bCollaborationMember" if member else "b2bCollaborationGuest"

    def finding(
        self,
        severity: Severity,
        code: str,
        tenant: TenantSpec,
        message: str,
        fix: str,
        *,
        subject: str | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> Finding:
        assert code in FINDING_CODES, code
        return Finding(
            severity=severity,
            code=code,
            link=self.key,
            tenant=tenant.name,
            message=message,
            fix=fix,
            subject=subject,
            data=dict(data or {}),
        )


def member(obj: Any, path: str) -> Any:
    """``obj["a"]["b"]`` for ``"a.b"``; None where a step is missing or not an object."""
    node = obj
    for part in path.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


@dataclass(frozen=True)
class Produced:
    """A partner setting as it will be after apply, and where that value comes from."""

    value: Any
    origin: Literal["config", "partner", "default", "service"]
    live: Any
    """The live partner member (None when unset or when there is no partner configuration)."""
    partner_exists: bool


def produced(
    link: LinkCheck, want: PartnerWant, path: str, default: Mapping[str, Any], service: Any
) -> Produced:
    """``want.tenant``'s partner setting ``path`` for ``want.partner`` once apply has run.

    A managed tenant gets what the config asks (when the config sets it); otherwise the live
    partner value counts, else the tenant's default (``default``), else ``service``, the
    documented service default.
    """
    tenant = link.source if want.tenant == link.source.name else link.target
    current = link.live.tenants[want.tenant].partners.get(want.partner_id)
    live_value = member(current, path)
    exists = current is not None
    if tenant.managed and path in want.members:
        return Produced(want.members[path], "config", live_value, exists)
    if live_value is not None:
        return Produced(live_value, "partner", live_value, exists)
    inherited = member(default, path)
    if inherited is not None:
        return Produced(inherited, "default", live_value, exists)
    return Produced(service, "service", live_value, exists)


async def default_policy(reads: Reads, tenant: str) -> dict[str, Any]:
    """The tenant's default cross-tenant access settings (``{}`` if unreadable)."""
    try:
        return await reads.get(tenant, f"{POLICY}/default")
    except GraphError:
        # Partners were readable (read_live succeeded), so this is unusual: judge without it.
        return {}
