"""``disable_sms_sign_in`` (preflight's one write) and reading permissions from tokens."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from ctsync.audit import AuditContext, AuditTrail, recorder
from ctsync.emulator.services.authentication import mobile_phone
from ctsync.ops import TokenRoles, disable_sms_sign_in
from tests.ops.conftest import checker


def _isaiah(emulator: Any) -> str:
    tenant = emulator.tenant("contoso")
    return str(next(uid for uid, u in tenant.users.items() if u["mailNickname"] == "isaiah"))


def test_fix_disables_sms_sign_in_once_per_user_and_records_it(tmp_path: Path) -> None:
    check = checker(tmp_path, links=[("contoso", "fabrikam"), ("contoso", "tailspin")])
    report = check.check()
    targets = report.sms_sign_in_users()
    # Isaiah is in scope of both links: fixed once.
    assert [f.subject for f in targets] == ["isaiah@contoso.com"]
    uid = _isaiah(check.emulator)
    contoso = check.emulator.tenant("contoso")
    phone = mobile_phone(contoso, uid)
    assert phone is not None
    assert phone["smsSignInState"] == "ready"

    with AuditTrail(tmp_path / "audit.sqlite") as trail:
        context = AuditContext(config_hash="c")
        fixes = check.run(
            lambda s: disable_sms_sign_in(s, report.findings),
            observers=[recorder(trail, context)],
        )
        records = trail.records()
    assert [(f.user, f.ok) for f in fixes] == [("isaiah@contoso.com", True)]
    phone = mobile_phone(contoso, uid)
    assert phone is not None
    assert phone["smsSignInState"] == "notEnabled"
    assert phone["phoneNumber"]  # still registered as a second factor
    assert len(records) == 1
    record = records[0]
    assert (record.method, record.status) == ("POST", 204)
    assert record.path.endswith(
        f"/users/{uid}/authentication/phoneMethods/3179e48a-750b-4051-897c-87b9720928f7"
        "/disableSmsSignIn"
    )
    assert (record.link, record.step) == ("contoso:fabrikam", "preflight.fix.sms-sign-in")

    again = check.check()
    assert not [f for f in again.findings if f.code == "user.sms-sign-in"]


def _token(claims: dict[str, Any]) -> str:
    def part(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none'})}.{part(claims)}.sig"


def test_token_roles_reads_app_roles_and_delegated_scopes() -> None:
    seen: list[str] = []
    roles = TokenRoles(chain=seen.append)
    app = _token({"tid": "AAA", "appid": "app", "roles": ["Policy.Read.All"]})
    user = _token({"tid": "bbb", "azp": "cli", "scp": "Policy.Read.All User.Read"})
    roles(app)
    roles(user)
    roles("not-a-jwt")
    assert seen == [app, user, "not-a-jwt"]
    grant = roles.grant("aaa")
    assert grant is not None
    assert (grant.app_id, grant.delegated) == ("app", False)
    assert grant.permissions == {"policy.read.all"}
    delegated = roles.grant("BBB")
    assert delegated is not None
    assert delegated.delegated
    assert roles.grant("ccc") is None


def test_a_person_signed_in_is_checked_for_scopes_and_directory_roles(tmp_path: Path) -> None:
    from ctsync.ops import preflight
    from ctsync.permissions import ROLE_IDS

    check = checker(tmp_path)
    roles = TokenRoles()
    security_admin = ROLE_IDS["Security Administrator"]
    for name in ("contoso", "fabrikam"):
        roles(
            _token(
                {
                    "tid": check.emulator.tenant(name).id,
                    "scp": "Policy.Read.All",
                    "wids": [security_admin],
                }
            )
        )
    report = check.run(lambda s: preflight(s, roles=roles))
    assert not report.ok
    missing = [f for f in report.findings if f.code == "permission.missing"]
    assert {f.severity for f in missing} == {"error"}
    assert "Policy.ReadWrite.CrossTenantAccess" in {f.subject for f in missing}
    # Security Administrator covers the partner settings in both tenants; the source's
    # configuration app and assignments want an application administrator role.
    lacking = [f for f in report.findings if f.code == "permission.role-missing"]
    assert {(f.tenant, f.subject) for f in lacking} == {
        ("contoso", "Cloud Application Administrator")
    }
    assert all("(or activate it in PIM)" in f.fix for f in lacking)


def test_a_global_administrator_with_the_scopes_passes(tmp_path: Path) -> None:
    from ctsync.ops import preflight
    from ctsync.permissions import ROLE_IDS, delegated_scopes

    check = checker(tmp_path)
    roles = TokenRoles()
    for name in ("contoso", "fabrikam"):
        roles(
            _token(
                {
                    "tid": check.emulator.tenant(name).id,
                    "scp": " ".join(delegated_scopes(["source", "target"])),
                    "wids": [ROLE_IDS["Global Administrator"]],
                }
            )
        )
    report = check.run(lambda s: preflight(s, roles=roles))
    codes = {f.code for f in report.findings if f.code.startswith("permission.")}
    assert not codes & {"permission.missing", "permission.role-missing"}
