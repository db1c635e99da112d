"""Seed data: tenants, their users, groups, authentication methods and app-only clients.

A scenario is JSON (a file, a built-in name, or an already-parsed mapping)::

    {"tenants": [{
        "name": "contoso", "display_name": "Contoso", "domain": "contoso.onmicrosoft.com",
        "verified_domains": ["contoso.com"], "tenant_id": "<optional GUID>",
        "cloud": "global" | "usgov" | "usgovdod" | "china",
        "allowed_cloud_endpoints": ["microsoftonline.us", ...],
        "object_quota": 50000,
        "clients": [{"display_name": "ctsync", "permissions": "ctsync" | [...],
                     "client_id": "<optional>", "client_secret": "<optional>"}],
        "users": [{"alias": "adele", "displayName": "Adele Vance", "department": "Sales",
                   "accountEnabled": true, "guest_of": "<domain: makes an invited guest>",
                   "methods": ["authenticator", "fido2", "sms", "sms-signin", "oath",
                               "email", "whfb", "tap"],
                   "roles": ["Global Administrator", "<role template id>"],
                   ...any other user property}],
        "groups": [{"alias": "pilot", "displayName": "CTS-Pilot",
                    "members": ["<user or group alias>", ...]}],
        "licenses": ["AAD_PREMIUM" | {"sku": "AAD_PREMIUM", "capabilityStatus": "Suspended"}],
        "authorization_policy": {"allowInvitesFrom": "adminsAndGuestInviters", ...},
        "conditional_access_policies": [{<conditionalAccessPolicy as POSTed; user and group
            aliases in conditions.users, tenant names in externalTenants.members>}],
        "default_policy": {<crossTenantAccessPolicyConfigurationDefault changes, as PATCHed>},
        "partners": [{"tenantId": "<tenant name or any GUID>",
                      ...<crossTenantAccessPolicyConfigurationPartner members as POSTed,
                          isInMultiTenantOrganization and isServiceProvider included>,
                      "identitySynchronization": {"displayName": "Contoso",
                                                  "userSyncInbound": {"isSyncAllowed": true}}}],
        "cts_configurations": [{
            "display_name": "Sync to Fabrikam" | "MTO_Sync_{target}",
            "target": "<tenant name>",
            "job": {"state": "Active" | "Paused" | "Disabled"},
            "secrets": {"SyncAll": true, "SyncNotificationSettings": {...}, "<key>": null},
            "assigned": ["<user or group alias>", ...],
            "scoping_filter": ["department EQUALS 'Sales'",
                               {"name": "Leads", "clauses": ["jobTitle EQUALS 'Lead'", ...]}],
            "mapping_edits": [{"target": "employeeId", "constant": "N/A"},
                              {"target": "city", "attribute": "officeLocation"},
                              {"target": "displayName", "expression": "Join(...)"},
                              {"target": "userType", "flow_type": "Always"},
                              {"target": "jobTitle", "remove": true}],
            "history": 2}]}]}

Every user also has a password method. ``"permissions": "ctsync"`` grants the application
permissions ctsync needs (reference §2.6).

The cross-tenant keys (``cross_tenant.py``) go through the service code of the matching API
calls, so what they seed is what the API would hold and is checked the same way:

- ``default_policy``: applied as ``PATCH …/crossTenantAccessPolicy/default``.
- ``partners``: each as ``POST …/partners`` (``tenantId`` a tenant name the emulator holds, or
  any GUID), then its ``identitySynchronization`` as ``PUT``.
- ``cts_configurations``: a configuration app as the portal or the MTO wizard leaves it:
  application and service principal as ``POST /applicationTemplates/{CTS}/instantiate``
  makes them (no owner, no tags or notes); ``{target}`` in ``display_name`` is the target's
  tenant id. ``job`` absent: no job (what MTO often leaves); otherwise the job as ``POST
  jobs`` (Azure2Azure) makes it, ``Disabled`` left as created, ``Active`` started,
  ``Paused`` started then paused. ``secrets`` (as ``PUT secrets``): absent, the portal's
  (``AuthenticationType`` SyncPolicy, ``CompanyId`` the target, ``SyncNotificationSettings``
  off, ``SyncAll`` false) when there is a job and none without; ``null``, none; an object, the
  portal's with those keys changed (strings as they are, booleans ``true``/``false``, objects
  as compact JSON; ``null`` drops a key). ``assigned``: aliases granted ``msiam_access``.
  ``scoping_filter`` replaces the user mapping's ``scope.groups`` (OR of groups, AND of
  clauses; a bare clause is a group named ``Scoping filter N``; a clause is
  ``<attribute> <OPERATOR> ['value', ...]`` with a wire operator name, or a ``filterClause``
  object); ``mapping_edits`` change, add or remove attribute mappings of the user mapping
  (one source — ``constant``, ``attribute``, ``expression`` (a function call) — and/or
  ``flow_type``, ``default_value``); both are saved as ``PUT schema``. ``history``: that
  many provisioning cycles already ran, on the engine, in the past: the last one half a cycle
  interval ago, the others an interval apart. Seeded objects are never subject to
  replication lag.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctsync.emulator.core.errors import GraphFault
from ctsync.emulator.scenarios._common import ScenarioError, SeededTenant, need
from ctsync.emulator.services.policies import set_allowed_clouds
from ctsync.emulator.state import CLOUD_ENDPOINTS, Tenant

if TYPE_CHECKING:
    from ctsync.emulator._emulator import Emulator

__all__ = ["BUILTIN", "CTSYNC_PERMISSIONS", "ScenarioError", "load_scenario"]

BUILTIN = ("demo", "brownfield", "empty")

#: Application permissions an app-only ctsync client needs in a tenant (reference §2.6).
CTSYNC_PERMISSIONS = (
    "Application.ReadWrite.All",
    "AppRoleAssignment.ReadWrite.All",
    "AuditLog.Read.All",
    "CrossTenantInformation.ReadBasic.All",
    "Directory.Read.All",
    "Organization.Read.All",
    "Policy.Read.All",
    "Policy.ReadWrite.CrossTenantAccess",
    "Synchronization.ReadWrite.All",
    "UserAuthenticationMethod.ReadWrite.All",
)

#: Fixed ids of phone methods [G20].
MOBILE_PHONE_METHOD_ID = "3179e48a-750b-4051-897c-87b9720928f7"
PASSWORD_METHOD_ID = "28c10230-6103-485e-b985-444c60001490"

_USER_DEFAULTS: dict[str, Any] = {
    "accountEnabled": True,
    "userType": "Member",
    "creationType": None,
    "externalUserState": None,
    "externalUserStateChangeDateTime": None,
    "showInAddressList": None,
    "businessPhones": [],
    "otherMails": [],
    "proxyAddresses": [],
    "identities": [],
    "mobilePhone": None,
    "officeLocation": None,
    "preferredLanguage": "en-US",
    "usageLocation": None,
    "companyName": None,
    "city": None,
    "country": None,
    "state": None,
    "streetAddress": None,
    "postalCode": None,
    "department": None,
    "jobTitle": None,
    "employeeId": None,
    "givenName": None,
    "surname": None,
    "onPremisesSyncEnabled": None,
    "deletedDateTime": None,
}


def load_scenario(emulator: Emulator, spec: str | Path | Mapping[str, Any]) -> list[Tenant]:
    from ctsync.emulator.scenarios import cross_tenant

    data = _read(spec)
    tenants = data.get("tenants")
    if not isinstance(tenants, list):
        msg = "a scenario needs a 'tenants' list"
        raise ScenarioError(msg)
    seeded = [_add_tenant(emulator, t, f"tenants[{i}]") for i, t in enumerate(tenants)]
    # Conditional Access policies, partners and sync configurations may name other tenants of
    # the scenario, so they come once every tenant exists (and draw their ids after every
    # tenant's users and groups: a scenario that adds them keeps the ids of one without).
    for entry in seeded:
        _seed_conditional_access(emulator, entry)
    cross_tenant.seed(emulator, seeded)
    return [entry.tenant for entry in seeded]


def _read(spec: str | Path | Mapping[str, Any]) -> Mapping[str, Any]:
    if isinstance(spec, Mapping):
        return spec
    if isinstance(spec, str) and spec in BUILTIN:
        text = resources.files(__name__).joinpath(f"{spec}.json").read_text()
        data = json.loads(text)
    else:
        path = Path(spec)
        if not path.is_file():
            msg = f"scenario {str(spec)!r} is neither {' nor '.join(BUILTIN)} nor a JSON file"
            raise ScenarioError(msg)
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            msg = f"{path}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}"
            raise ScenarioError(msg) from exc
    if not isinstance(data, dict):
        msg = "a scenario must be a JSON object"
        raise ScenarioError(msg)
    return data


def _add_tenant(emulator: Emulator, spec: Any, where: str) -> SeededTenant:
    if not isinstance(spec, dict):
        msg = f"{where} must be an object"
        raise ScenarioError(msg)
    name = need(spec, "name", str, where)
    try:
        tenant = emulator.add_tenant(
            name=name,
            display_name=spec.get("display_name"),
            domain=spec.get("domain"),
            tenant_id=spec.get("tenant_id"),
        )
    except ValueError as exc:
        msg = f"{where}: {exc}"
        raise ScenarioError(msg) from exc
    tenant.verified_domains = list(spec.get("verified_domains") or [])
    _set_cloud(tenant, spec, where)
    if "object_quota" in spec:
        tenant.object_quota = _object_quota(spec["object_quota"], f"{where}.object_quota")
    for i, client in enumerate(spec.get("clients") or []):
        perms = client.get("permissions", "ctsync")
        if perms == "ctsync":
            perms = list(CTSYNC_PERMISSIONS)
        if not isinstance(perms, list):
            msg = f'{where}.clients[{i}].permissions must be a list or "ctsync"'
            raise ScenarioError(msg)
        emulator.add_client(
            tenant,
            permissions=[str(p) for p in perms],
            display_name=str(client.get("display_name", "ctsync")),
            client_id=client.get("client_id"),
            client_secret=client.get("client_secret"),
        )
    aliases: dict[str, str] = {}
    for i, user in enumerate(spec.get("users") or []):
        _add_user(emulator, tenant, user, f"{where}.users[{i}]", aliases)
    groups = spec.get("groups") or []
    for i, group in enumerate(groups):
        _add_group(emulator, tenant, group, f"{where}.groups[{i}]", aliases)
    for i, group in enumerate(groups):
        gid = aliases[group["alias"]]
        members = []
        for ref in group.get("members") or []:
            if ref not in aliases:
                msg = f"{where}.groups[{i}].members: unknown alias {ref!r}"
                raise ScenarioError(msg)
            members.append(aliases[ref])
        tenant.group_members[gid] = members
    _add_licenses(tenant, spec.get("licenses"), where)
    _set_authorization_policy(tenant, spec.get("authorization_policy"), where)
    policies = spec.get("conditional_access_policies")
    if policies is not None and not isinstance(policies, list):
        msg = f"{where}.conditional_access_policies must be a list"
        raise ScenarioError(msg)
    return SeededTenant(tenant=tenant, spec=spec, aliases=aliases, where=where)


def _set_cloud(tenant: Tenant, spec: dict[str, Any], where: str) -> None:
    """``cloud`` (default ``global``) and ``allowed_cloud_endpoints`` (as PATCHed)."""
    cloud = spec.get("cloud", "global")
    if cloud not in CLOUD_ENDPOINTS:
        msg = f"{where}.cloud must be one of {', '.join(CLOUD_ENDPOINTS)}"
        raise ScenarioError(msg)
    tenant.cloud = cloud
    allowed = spec.get("allowed_cloud_endpoints")
    if allowed is not None:
        try:
            set_allowed_clouds(tenant, {"allowedCloudEndpoints": allowed})
        except GraphFault as exc:
            msg = f"{where}.allowed_cloud_endpoints: {exc.message}"
            raise ScenarioError(msg) from exc


def _object_quota(value: Any, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        msg = f"{where} must be an integer >= 0"
        raise ScenarioError(msg)
    return value


# -- licences, authorization policy, Conditional Access ------------------------------------

#: Licences a scenario can name (``skuPartNumber`` -> skuId and service plans). Entra ID P1
#: includes the Entra ID P1 plan and Multi-Factor Authentication.
SKUS: dict[str, dict[str, Any]] = {
    "AAD_PREMIUM": {
        "skuId": "078d2b04-f1bd-4111-bbd4-b4b1b354cef4",
        "plans": [
            ("41781fb2-bc02-4b7c-bd55-b576c07bb09d", "AADPremiumService"),
            ("8a256a2b-b617-496d-b51b-e76466e88db0", "MultiFactorService"),
        ],
    },
}
#: When scenario licences were assigned (fixed, like the organization's creation date).
_LICENSED_AT = "2020-01-01T00:00:00Z"
_CAPABILITY_STATUSES = ("Enabled", "Warning", "Suspended", "Deleted", "LockedOut")


def _add_licenses(tenant: Tenant, spec: Any, where: str) -> None:
    """``"licenses": ["AAD_PREMIUM", {"sku": "AAD_PREMIUM", "capabilityStatus": "Suspended"}]``.

    The organization's ``assignedPlans`` get the SKU's service plans, and every internal
    member user (not a guest) gets the licence (``assignedLicenses``, ``assignedPlans``).
    """
    if spec is None:
        return
    if not isinstance(spec, list):
        msg = f"{where}.licenses must be a list"
        raise ScenarioError(msg)
    for i, item in enumerate(spec):
        entry = {"sku": item} if isinstance(item, str) else item
        sku_name = entry.get("sku") if isinstance(entry, dict) else None
        sku = SKUS.get(str(sku_name))
        status = entry.get("capabilityStatus", "Enabled") if isinstance(entry, dict) else None
        if sku is None or status not in _CAPABILITY_STATUSES:
            msg = (
                f"{where}.licenses[{i}] must name a known sku ({', '.join(SKUS)}) and a "
                f"capabilityStatus among {', '.join(_CAPABILITY_STATUSES)}"
            )
            raise ScenarioError(msg)
        plans = [
            {
                "assignedDateTime": _LICENSED_AT,
                "capabilityStatus": status,
                "service": service,
                "servicePlanId": plan_id,
            }
            for plan_id, service in sku["plans"]
        ]
        tenant.assigned_plans.extend(plans)
        for user in tenant.users.values():
            if user.get("userType") == "Guest":
                continue
            user.setdefault("assignedLicenses", [])
            user.setdefault("assignedPlans", [])
            user["assignedLicenses"].append({"disabledPlans": [], "skuId": sku["skuId"]})
            user["assignedPlans"].extend(dict(plan) for plan in plans)


def _set_authorization_policy(tenant: Tenant, spec: Any, where: str) -> None:
    """``"authorization_policy": {...}``: changes to the default, as a PATCH would make them."""
    if spec is None:
        return
    from ctsync.emulator.core.errors import GraphFault
    from ctsync.emulator.services.authorization_policy import apply_changes

    try:
        tenant.authorization_policy = apply_changes(tenant.authorization_policy, spec)
    except GraphFault as exc:
        msg = f"{where}.authorization_policy: {exc.message}"
        raise ScenarioError(msg) from exc


def _resolve_aliases(values: Any, aliases: dict[str, str]) -> Any:
    if not isinstance(values, list):
        return values
    return [aliases.get(v, v) if isinstance(v, str) else v for v in values]


def _resolve_tenants(emulator: Emulator, values: Any) -> Any:
    if not isinstance(values, list):
        return values
    out = []
    for value in values:
        try:
            out.append(emulator.tenant(value).id if isinstance(value, str) else value)
        except KeyError:
            out.append(value)
    return out


def _seed_conditional_access(emulator: Emulator, entry: SeededTenant) -> None:
    """Policies in Graph's POST shape; in ``conditions.users`` user and group aliases of the
    tenant stand for their ids, and in ``externalTenants.members`` tenant names of the
    emulator for their tenant ids."""
    from ctsync.emulator.core.errors import GraphFault
    from ctsync.emulator.services.conditional_access import seed_policy

    tenant, aliases, where = entry.tenant, entry.aliases, entry.where
    for i, raw in enumerate(entry.spec.get("conditional_access_policies") or []):
        body = json.loads(json.dumps(raw))
        conditions = body.get("conditions") if isinstance(body, dict) else None
        users = conditions.get("users") if isinstance(conditions, dict) else None
        if isinstance(users, dict):
            for key in ("includeUsers", "excludeUsers", "includeGroups", "excludeGroups"):
                if key in users:
                    users[key] = _resolve_aliases(users[key], aliases)
            for key in ("includeGuestsOrExternalUsers", "excludeGuestsOrExternalUsers"):
                external = users.get(key)
                tenants = external.get("externalTenants") if isinstance(external, dict) else None
                if isinstance(tenants, dict) and "members" in tenants:
                    tenants["members"] = _resolve_tenants(emulator, tenants["members"])
        try:
            seed_policy(tenant, body, now=emulator.clock.now())
        except GraphFault as exc:
            msg = f"{where}.conditional_access_policies[{i}]: {exc.message}"
            raise ScenarioError(msg) from exc


def _add_user(
    emulator: Emulator, tenant: Tenant, spec: Any, where: str, aliases: dict[str, str]
) -> None:
    if not isinstance(spec, dict):
        msg = f"{where} must be an object"
        raise ScenarioError(msg)
    alias = need(spec, "alias", str, where)
    if alias in aliases:
        msg = f"{where}: duplicate alias {alias!r}"
        raise ScenarioError(msg)
    uid = spec.get("id") or emulator.ids.guid()
    domain = tenant.verified_domains[0] if tenant.verified_domains else tenant.domain
    user: dict[str, Any] = {"id": uid, **_USER_DEFAULTS}
    user["createdDateTime"] = emulator.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")
    user["mailNickname"] = alias
    guest_of = spec.get("guest_of")
    if guest_of:
        home = f"{alias}@{guest_of}"
        user.update(
            userPrincipalName=f"{alias}_{guest_of}#EXT#@{tenant.domain}",
            mail=home,
            otherMails=[home],
            userType="Guest",
            creationType="Invitation",
            externalUserState="Accepted",
            externalUserStateChangeDateTime=user["createdDateTime"],
            identities=[
                {"signInType": "federated", "issuer": "ExternalAzureAD", "issuerAssignedId": None}
            ],
        )
    else:
        user.update(userPrincipalName=f"{alias}@{domain}", mail=f"{alias}@{domain}")
        user["identities"] = [
            {
                "signInType": "userPrincipalName",
                "issuer": tenant.domain,
                "issuerAssignedId": f"{alias}@{domain}",
            }
        ]
    user.update(
        {k: v for k, v in spec.items() if k not in {"alias", "guest_of", "methods", "roles"}}
    )
    tenant.users[uid] = user
    aliases[alias] = uid
    _assign_roles(tenant, uid, spec.get("roles"), where)
    tenant.auth_methods[uid] = _methods(emulator, spec.get("methods"), user, where)


def _assign_roles(tenant: Tenant, user_id: str, spec: Any, where: str) -> None:
    """``"roles": ["Global Administrator", "<role template id>"]``: directory roles."""
    if spec is None:
        return
    from ctsync.emulator.core.directory_roles import resolve_role, set_roles

    if not isinstance(spec, list) or not all(isinstance(r, str) for r in spec):
        msg = f"{where}.roles must be a list of role names or template ids"
        raise ScenarioError(msg)
    ids = []
    for i, ref in enumerate(spec):
        rid = resolve_role(ref)
        if rid is None:
            msg = f"{where}.roles[{i}]: unknown directory role {ref!r}"
            raise ScenarioError(msg)
        ids.append(rid)
    set_roles(tenant, user_id, ids)


def _methods(
    emulator: Emulator, spec: Any, user: dict[str, Any], where: str
) -> list[dict[str, Any]]:
    if spec is None:
        spec = ["authenticator"]
    if not isinstance(spec, list):
        msg = f"{where}.methods must be a list"
        raise ScenarioError(msg)
    created = user["createdDateTime"]
    out: list[dict[str, Any]] = [
        {
            "@odata.type": "#microsoft.graph.passwordAuthenticationMethod",
            "id": PASSWORD_METHOD_ID,
            "password": None,
            "createdDateTime": created,
        }
    ]
    out.extend(_method(emulator, str(kind), user, created, where) for kind in spec)
    return out


def _method(
    emulator: Emulator, kind: str, user: dict[str, Any], created: str, where: str
) -> dict[str, Any]:
    name = user.get("displayName") or user["mailNickname"]
    if kind in {"sms", "sms-signin"}:
        return {
            "@odata.type": "#microsoft.graph.phoneAuthenticationMethod",
            "id": MOBILE_PHONE_METHOD_ID,
            "phoneNumber": "+1 2065550" + str(100 + len(name)),
            "phoneType": "mobile",
            "smsSignInState": "ready" if kind == "sms-signin" else "notEnabled",
        }
    common = {"id": emulator.ids.guid(), "createdDateTime": created}
    if kind == "authenticator":
        return {
            "@odata.type": "#microsoft.graph.microsoftAuthenticatorAuthenticationMethod",
            **common,
            "displayName": f"{name}'s phone",
            "deviceTag": "SoftwareTokenActivated",
            "phoneAppVersion": "6.8.17",
        }
    if kind == "fido2":
        return {
            "@odata.type": "#microsoft.graph.fido2AuthenticationMethod",
            **common,
            "displayName": "Security key",
            "aaGuid": "2fc0579f-8113-47ea-b116-bb5a8db9202a",
            "model": "YubiKey 5 NFC",
            "attestationCertificates": [],
            "attestationLevel": "attested",
        }
    if kind == "oath":
        return {
            "@odata.type": "#microsoft.graph.softwareOathAuthenticationMethod",
            **common,
            "secretKey": None,
        }
    if kind == "email":
        return {
            "@odata.type": "#microsoft.graph.emailAuthenticationMethod",
            **common,
            "emailAddress": f"{user['mailNickname']}@example.net",
        }
    if kind == "whfb":
        return {
            "@odata.type": "#microsoft.graph.windowsHelloForBusinessAuthenticationMethod",
            **common,
            "displayName": f"{name}'s laptop",
            "keyStrength": "normal",
        }
    if kind == "tap":
        return {
            "@odata.type": "#microsoft.graph.temporaryAccessPassAuthenticationMethod",
            **common,
            "temporaryAccessPass": None,
            "startDateTime": created,
            "lifetimeInMinutes": 60,
            "isUsableOnce": True,
            "isUsable": True,
            "methodUsabilityReason": "EnabledByPolicy",
        }
    msg = f"{where}.methods: unknown method {kind!r}"
    raise ScenarioError(msg)


def _add_group(
    emulator: Emulator, tenant: Tenant, spec: Any, where: str, aliases: dict[str, str]
) -> None:
    if not isinstance(spec, dict):
        msg = f"{where} must be an object"
        raise ScenarioError(msg)
    alias = need(spec, "alias", str, where)
    if alias in aliases:
        msg = f"{where}: duplicate alias {alias!r}"
        raise ScenarioError(msg)
    gid = spec.get("id") or emulator.ids.guid()
    display = spec.get("displayName") or alias
    tenant.groups[gid] = {
        "id": gid,
        "displayName": display,
        "description": spec.get("description"),
        "mailEnabled": False,
        "mailNickname": display.replace(" ", "-"),
        "securityEnabled": True,
        "groupTypes": [],
        "createdDateTime": emulator.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
        "deletedDateTime": None,
    }
    aliases[alias] = gid
