"""Seed data: tenants, their users, groups, authentication methods and app-only clients.

A scenario is JSON (a file, a built-in name, or an already-parsed mapping)::

    {"tenants": [{
        "name": "contoso", "display_name": "Contoso", "domain": "contoso.onmicrosoft.com",
        "verified_domains": ["contoso.com"], "tenant_id": "<optional GUID>",
        "clients": [{"display_name": "ctsync", "permissions": "ctsync" | [...],
                     "client_id": "<optional>", "client_secret": "<optional>"}],
        "users": [{"alias": "adele", "displayName": "Adele Vance", "department": "Sales",
                   "accountEnabled": true, "guest_of": "<domain: makes an invited guest>",
                   "methods": ["authenticator", "fido2", "sms", "sms-signin", "oath",
                               "email", "whfb", "tap"], ...any other user property}],
        "groups": [{"alias": "pilot", "displayName": "CTS-Pilot",
                    "members": ["<user or group alias>", ...]}]}]}

Every user also has a password method. ``"permissions": "ctsync"`` grants the application
permissions ctsync needs (reference §2.6).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctsync.emulator.state import Tenant

if TYPE_CHECKING:
    from ctsync.emulator._emulator import Emulator

__all__ = ["BUILTIN", "CTSYNC_PERMISSIONS", "ScenarioError", "load_scenario"]

BUILTIN = ("demo", "empty")

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


class ScenarioError(ValueError):
    """A scenario is malformed; the message names where."""


def load_scenario(emulator: Emulator, spec: str | Path | Mapping[str, Any]) -> list[Tenant]:
    data = _read(spec)
    tenants = data.get("tenants")
    if not isinstance(tenants, list):
        msg = "a scenario needs a 'tenants' list"
        raise ScenarioError(msg)
    return [_add_tenant(emulator, t, f"tenants[{i}]") for i, t in enumerate(tenants)]


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


def _need(obj: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    value = obj.get(key)
    if not isinstance(value, kind):
        msg = f"{where}.{key} must be a {kind.__name__}"
        raise ScenarioError(msg)
    return value


def _add_tenant(emulator: Emulator, spec: Any, where: str) -> Tenant:
    if not isinstance(spec, dict):
        msg = f"{where} must be an object"
        raise ScenarioError(msg)
    name = _need(spec, "name", str, where)
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
    return tenant


def _add_user(
    emulator: Emulator, tenant: Tenant, spec: Any, where: str, aliases: dict[str, str]
) -> None:
    if not isinstance(spec, dict):
        msg = f"{where} must be an object"
        raise ScenarioError(msg)
    alias = _need(spec, "alias", str, where)
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
    user.update({k: v for k, v in spec.items() if k not in {"alias", "guest_of", "methods"}})
    tenant.users[uid] = user
    aliases[alias] = uid
    tenant.auth_methods[uid] = _methods(emulator, spec.get("methods"), user, where)


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
    alias = _need(spec, "alias", str, where)
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
