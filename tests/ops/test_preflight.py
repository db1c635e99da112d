"""Preflight on the demo scenario: the real client, in process, against the emulator."""

from __future__ import annotations

import re
from pathlib import Path

from ctsync.audit import AuditContext, AuditTrail, recorder
from ctsync.emulator.scenarios import CTSYNC_PERMISSIONS
from ctsync.emulator.services.conditional_access import seed_policy
from ctsync.emulator.services.policies import service_default
from ctsync.engine.desired import b2b_setting
from ctsync.ops import FINDING_CODES, Finding, PreflightReport
from tests.ops.conftest import Checker, checker, snapshot

BOTH = [("contoso", "fabrikam"), ("contoso", "tailspin")]
ENUMERATED = "#microsoft.graph.conditionalAccessEnumeratedExternalTenants"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "preflight.md"


def _find(report: PreflightReport, code: str, **where: str) -> list[Finding]:
    return [
        f
        for f in report.findings
        if f.code == code and all(getattr(f, k) == v for k, v in where.items())
    ]


def _one(report: PreflightReport, code: str, **where: str) -> Finding:
    found = _find(report, code, **where)
    assert len(found) == 1, (code, where, [f.to_dict() for f in report.findings])
    return found[0]


def _codes(report: PreflightReport) -> set[str]:
    return {f.code for f in report.findings}


def test_demo_names_users_policies_and_writes_nothing(tmp_path: Path) -> None:
    check = checker(tmp_path, links=BOTH)
    before = snapshot(check.emulator)
    trail_path = tmp_path / "audit.sqlite"
    with AuditTrail(trail_path) as trail:
        context = AuditContext(config_hash="x")
        head = trail.export_head()
        report = check.check(observers=[recorder(trail, context)])
        assert trail.export_head() == head
        assert trail.records() == []
    assert check.writes == []
    assert snapshot(check.emulator) == before
    assert not [m for m, _ in check.requests if m not in {"GET", "POST", "batch:GET"}]
    assert all(url.endswith("/$batch") for m, url in check.requests if m == "POST")

    assert report.ok, [f.to_dict() for f in report.errors]
    link = "contoso:fabrikam"
    sms = _one(report, "user.sms-sign-in", link=link)
    assert (sms.severity, sms.tenant, sms.subject) == ("warning", "contoso", "isaiah@contoso.com")
    assert "skips" in sms.message
    assert "--fix sms-sign-in" in sms.fix
    assert _one(report, "user.no-mfa", link=link).subject == "diego@contoso.com"
    guest = _one(report, "user.external", link=link)
    assert guest.subject is not None
    assert guest.subject.startswith("jordan_")
    assert guest.severity == "warning"
    # Only the pilot group is in scope: Lynne (phone only) and Patti (disabled) are not in it.
    assert not _find(report, "user.phone-only")
    assert not _find(report, "user.disabled")

    # Fabrikam: its only MFA policy is report-only and covers guests, not the Members created.
    missing = _one(report, "ca.mfa-missing", link=link)
    assert (missing.severity, missing.tenant) == ("warning", "fabrikam")
    assert "b2bCollaborationMember" in missing.message
    body = missing.data["policy"]
    users = body["conditions"]["users"]["includeGuestsOrExternalUsers"]
    assert users["guestOrExternalUserTypes"] == "b2bCollaborationMember"
    assert users["externalTenants"]["members"] == [check.emulator.tenant("contoso").id]
    report_only = _one(report, "ca.report-only", link=link)
    assert report_only.severity == "info"
    assert "b2bCollaborationGuest" in report_only.message

    # Tailspin enforces MFA for Contoso's members: no gap, but an exclusion group, trusted MFA,
    # and a lapsed P1 (capabilityStatus Suspended) that Conditional Access needs.
    link = "contoso:tailspin"
    assert not _find(report, "ca.mfa-missing", link=link)
    excluded = _one(report, "ca.excluded-principals", link=link)
    assert "5d2f7c1e-8b3a-4f6d-9e2c-7a1b4c8d3e6f" in excluded.message
    assert _one(report, "ca.mfa-trusted", link=link).severity == "info"
    licence = _one(report, "ca.licence", link=link)
    assert "Suspended" in licence.message
    # Contoso's own P1 is enabled; the demo client holds every permission it needs.
    assert not _codes(report) & {"licence.p1-missing", "permission.missing", "permission.unknown"}
    assert set(FINDING_CODES) >= _codes(report)


def test_users_are_read_in_bulk(tmp_path: Path) -> None:
    check = checker(tmp_path, links=BOTH)
    check.check()
    report_calls = [u for m, u in check.requests if "userRegistrationDetails" in u]
    # Four filtered reads of the tenant-wide report (not one per user), shared by both links.
    assert len(report_calls) == 4
    assert all("%24filter=" in u or "$filter=" in u for u in report_calls)
    assert not [u for u in report_calls if re.search(r"userRegistrationDetails/[0-9a-f-]{36}", u)]
    # Phone methods only for the in-scope users with a mobile phone (Isaiah), once.
    phones = [u for m, u in check.requests if u.endswith("/authentication/phoneMethods")]
    assert phones == [f"/users/{_user_id(check, 'isaiah')}/authentication/phoneMethods"]


def _user_id(check: Checker, alias: str) -> str:
    tenant = check.emulator.tenant("contoso")
    return str(next(uid for uid, u in tenant.users.items() if u["mailNickname"] == alias))


def test_everyone_group_phone_only_disabled_nested_and_shared_mail(tmp_path: Path) -> None:
    check = checker(
        tmp_path, edit=lambda t: t.replace("{group: CTS-Pilot}", "{group: All Employees}")
    )
    contoso = check.emulator.tenant("contoso")
    contoso.users[_user_id(check, "nestor")]["mail"] = "Adele@contoso.com"
    report = check.check()
    phone_only = _one(report, "user.phone-only")
    assert (phone_only.severity, phone_only.subject) == ("info", "lynne@contoso.com")
    assert "not documented" in phone_only.message
    disabled = _one(report, "user.disabled")
    assert (disabled.severity, disabled.subject) == ("info", "patti@contoso.com")
    nested = _one(report, "scope.nested-group")
    assert (nested.severity, nested.subject) == ("info", "Engineering")
    shared = _one(report, "user.duplicate-mail")
    assert shared.severity == "warning"
    assert "adele@contoso.com" in shared.message
    assert "nestor@contoso.com" in shared.message
    # The SMS sign-in user is not also reported as phone-only.
    assert not _find(report, "user.phone-only", subject="isaiah@contoso.com")


def test_a_credential_missing_a_permission_is_named(tmp_path: Path) -> None:
    check = checker(tmp_path)
    contoso = check.emulator.tenant("contoso")
    full = next(iter(contoso.clients.values()))
    fewer = [
        p
        for p in CTSYNC_PERMISSIONS
        if p not in {"Synchronization.ReadWrite.All", "AuditLog.Read.All"}
    ]
    limited = check.emulator.add_client(contoso, permissions=fewer, display_name="ctsync-lite")
    check.edit(
        lambda t: t.replace(f"client_id: {full.client_id}", f"client_id: {limited.client_id}")
    )
    report = check.check()
    assert not report.ok
    missing = _one(report, "permission.missing", subject="Synchronization.ReadWrite.All")
    assert (missing.severity, missing.tenant) == ("error", "contoso")
    assert "contoso:fabrikam/job" in missing.data["steps"]
    read = _one(report, "permission.missing-read", subject="AuditLog.Read.All")
    assert read.severity == "warning"
    # Preflight's own read of the registration report fails, and says so.
    assert _one(report, "users.unreadable").subject == "AuditLog.Read.All"


def test_automatic_redemption_off_in_the_config_is_an_error(tmp_path: Path) -> None:
    check = checker(
        tmp_path,
        edit=lambda t: t.replace("automatic_redemption: true", "automatic_redemption: false"),
    )
    report = check.check(blocking_only=True)
    assert not report.ok
    error = _one(report, "redemption.off-in-config")
    assert (error.severity, error.tenant) == ("error", "fabrikam")
    assert "automatic_redemption: true" in error.fix
    # apply's checks run only what can block: no user or Conditional Access reads.
    assert not [u for _, u in check.requests if "userRegistrationDetails" in u]
    assert not [u for _, u in check.requests if "conditionalAccess" in u]


def _read_only_fabrikam(text: str) -> str:
    return text.replace("  fabrikam:\n", "  fabrikam:\n    managed: false\n", 1)


def test_a_read_only_target_whose_live_settings_block_sync_is_an_error(tmp_path: Path) -> None:
    check = checker(tmp_path, edit=_read_only_fabrikam)
    report = check.check()
    assert not report.ok
    inbound = _one(report, "redemption.inbound-blocked")
    assert (inbound.severity, inbound.tenant) == ("error", "fabrikam")
    assert "managed: false" in inbound.message
    assert _one(report, "sync.inbound-blocked").severity == "error"
    # Contoso is managed: its outbound setting is what the plan writes, so no finding.
    assert not _find(report, "redemption.outbound-blocked")


def test_a_read_only_target_set_up_right_passes(tmp_path: Path) -> None:
    check = checker(tmp_path)
    check.apply()
    check.edit(_read_only_fabrikam)
    report = check.check()
    assert report.ok, [f.to_dict() for f in report.errors]


def test_live_drift_in_a_managed_tenant_is_a_warning(tmp_path: Path) -> None:
    check = checker(tmp_path)
    check.apply()
    fabrikam = check.emulator.tenant("fabrikam")
    contoso_id = check.emulator.tenant("contoso").id
    fabrikam.access_policy.partners[contoso_id]["automaticUserConsentSettings"][
        "inboundAllowed"
    ] = False
    fabrikam.access_policy.identity_sync[contoso_id]["userSyncInbound"]["isSyncAllowed"] = False
    report = check.check()
    assert report.ok
    drift = _one(report, "redemption.inbound-drift")
    assert (drift.severity, drift.tenant) == ("warning", "fabrikam")
    assert "apply" in drift.fix
    assert _one(report, "sync.inbound-drift").severity == "warning"


def test_invitations_blocked_in_the_target_is_an_error(tmp_path: Path) -> None:
    check = checker(tmp_path, links=BOTH)
    check.emulator.tenant("tailspin").authorization_policy["allowInvitesFrom"] = "none"
    report = check.check(blocking_only=True)
    error = _one(report, "invitations.blocked")
    assert (error.severity, error.link, error.tenant) == ("error", "contoso:tailspin", "tailspin")
    assert not _find(report, "invitations.blocked", link="contoso:fabrikam")


def test_b2b_collaboration_blocked_by_default_or_by_the_config(tmp_path: Path) -> None:
    check = checker(tmp_path)
    default = service_default()
    default["b2bCollaborationInbound"] = b2b_setting("blocked")
    check.emulator.tenant("fabrikam").access_policy.default = default
    blocked = _one(check.check(blocking_only=True), "b2b.inbound-blocked")
    assert blocked.severity == "error"
    assert "default" in blocked.message
    assert "allow_all" in blocked.fix

    # The config asking for allow_all overrides the default in the partner configuration.
    check.edit(
        lambda t: t.replace(
            "      automatic_redemption: true",
            "      automatic_redemption: true\n      b2b_collaboration: {inbound: allow_all}",
        )
    )
    assert not _find(check.check(blocking_only=True), "b2b.inbound-blocked")

    check.edit(lambda t: t.replace("{inbound: allow_all}", "{outbound: block_all}"))
    outbound = _one(check.check(blocking_only=True), "b2b.outbound-blocked")
    assert (outbound.severity, outbound.tenant) == ("error", "contoso")
    assert "block_all" in outbound.message


def test_conditional_access_trust_exclusions_and_guest_links(tmp_path: Path) -> None:
    check = checker(
        tmp_path,
        links=BOTH,
        edit=lambda t: t.replace("inbound_trust: {mfa: true", "inbound_trust: {mfa: false"),
    )
    contoso_id = check.emulator.tenant("contoso").id
    seed_policy(
        check.emulator.tenant("fabrikam"),
        {
            "displayName": "Partners: MFA, except members",
            "state": "enabled",
            "conditions": {
                "applications": {"includeApplications": ["All"]},
                "users": {
                    "includeUsers": ["All"],
                    "excludeGuestsOrExternalUsers": {
                        "guestOrExternalUserTypes": "b2bCollaborationMember",
                        "externalTenants": {"@odata.type": ENUMERATED, "members": [contoso_id]},
                    },
                },
            },
            "grantControls": {"operator": "OR", "builtInControls": ["mfa"]},
        },
        now=check.emulator.clock.now(),
    )
    report = check.check()
    excluded = _one(report, "ca.excluded-external", link="contoso:fabrikam")
    assert excluded.severity == "warning"
    assert _one(report, "ca.mfa-missing", link="contoso:fabrikam").severity == "warning"
    untrusted = _one(report, "ca.mfa-not-trusted", link="contoso:tailspin")
    assert untrusted.severity == "warning"
    assert "register" in untrusted.message
    assert "inbound_trust.mfa: true" in untrusted.fix

    # A Guest link: Fabrikam's report-only policy now covers it (a warning), and the policy
    # above takes the guests in (it excludes members only), without trust.
    check.edit(lambda t: t.replace("user_type: Member", "user_type: Guest"))
    report = check.check(["contoso:fabrikam"])
    report_only = _one(report, "ca.report-only")
    assert report_only.severity == "warning"
    assert "enforces nothing" in report_only.message
    assert not _find(report, "ca.mfa-missing")
    assert _one(report, "ca.mfa-not-trusted").subject == "b2bCollaborationGuest"


def test_a_rollout_checks_the_users_of_its_current_stage(tmp_path: Path) -> None:
    check = checker(
        tmp_path,
        edit=lambda t: re.sub(
            r"assigned: \[\{group: CTS-Pilot\}\].*",
            "rollout: {pilot: CTS-Pilot, then: [Sales]}",
            t,
        ),
    )
    report = check.check()
    assert _one(report, "user.sms-sign-in").subject == "isaiah@contoso.com"
    # Patti (disabled) is in Sales, the next stage: not in scope yet.
    assert not _find(report, "user.disabled")


def test_an_assigned_group_that_does_not_exist_is_reported(tmp_path: Path) -> None:
    check = checker(tmp_path, edit=lambda t: t.replace("{group: CTS-Pilot}", "{group: Nobody}"))
    report = check.check()
    error = _one(report, "live.unreadable")
    assert error.severity == "error"
    assert "Nobody" in error.message
    assert report.plan is None


def test_permissions_are_unknown_without_a_token_tap(tmp_path: Path) -> None:
    from ctsync.ops import preflight

    check = checker(tmp_path)
    report = check.run(preflight)
    unknown = _find(report, "permission.unknown")
    assert {f.tenant for f in unknown} == {"contoso", "fabrikam"}
    assert all(f.severity == "info" for f in unknown)


def test_every_code_is_documented() -> None:
    text = DOCS.read_text()
    for code in FINDING_CODES:
        assert f"`{code}`" in text, code


def _group_sync(text: str) -> str:
    text = text.replace(
        "      actions: [create, update]\n", "      actions: [create, update]\n      groups: true\n"
    )
    return text + "\nbeta: [group_sync]\n"


def test_group_sync_warns_of_the_licence_and_a_read_only_target_must_allow_it(
    tmp_path: Path,
) -> None:
    check = checker(tmp_path, edit=_group_sync)
    report = check.check(blocking_only=True)
    licence = _one(report, "licence.group-sync")
    assert (licence.severity, licence.tenant) == ("warning", "contoso")
    assert "Entra ID Governance" in licence.message
    # A managed target gets groupSyncInbound from apply: no error.
    assert not _find(report, "groups.inbound-blocked")
    # Applied as a managed target, then read-only: it allows group sync, so it passes.
    check.apply()
    check.edit(_read_only_fabrikam)
    assert not _find(check.check(blocking_only=True), "groups.inbound-blocked")


def test_a_read_only_target_without_group_sync_allowed_is_an_error(tmp_path: Path) -> None:
    check = checker(tmp_path)
    check.apply()  # users only: the target allows user sync, not group sync
    check.edit(lambda t: _read_only_fabrikam(_group_sync(t)))
    report = check.check(blocking_only=True)
    assert not report.ok
    blocked = _one(report, "groups.inbound-blocked")
    assert (blocked.severity, blocked.tenant) == ("error", "fabrikam")
    assert "groupSyncInbound.isSyncAllowed = null" in blocked.message
    assert "PATCH /beta/policies/crossTenantAccessPolicy/partners/" in blocked.fix
    assert not _find(report, "sync.inbound-blocked")
