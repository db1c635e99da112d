"""``ctsync preflight``: will cross-tenant sync work for each link? Writes nothing — except
``--fix sms-sign-in``, after approval and recorded in the audit trail."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ctsync.cli._common import (
    audit_option,
    audit_path,
    config_option,
    echo_json,
    fail,
    link_option,
    load_config,
    open_trail,
    output_option,
    run,
    session_for,
)

if TYPE_CHECKING:
    from ctsync.audit import AuditTrail
    from ctsync.config import DesiredState
    from ctsync.engine import Plan, Session
    from ctsync.ops import Finding, PreflightReport, SmsSignInFix, TokenRoles

__all__ = ["checking_session", "preflight", "record_skipped"]

FIX_STEP = "preflight.fix.sms-sign-in"
SKIP_STEP = "preflight.skipped"


def checking_session(desired: DesiredState, roles: TokenRoles) -> Session:
    """A read-only session whose tokens ``roles`` sees (the permission check needs them)."""
    from ctsync.engine import Session

    return Session(desired, on_token=roles)


def _check(desired: DesiredState, links: tuple[str, ...]) -> PreflightReport:
    from ctsync.ops import TokenRoles
    from ctsync.ops import preflight as check

    roles = TokenRoles()

    async def go() -> PreflightReport:
        async with checking_session(desired, roles) as session:
            return await check(session, links or None, roles=roles)

    return run(go())


def _approve(targets: list[Finding], *, auto_approve: bool) -> None:
    from ctsync.render.preflight import sms_fix_targets

    click.echo(sms_fix_targets(targets), err=True)
    if auto_approve:
        return
    if not sys.stdin.isatty():
        fail("--fix changes users and needs approval: run it in a terminal, or add --auto-approve")
    answer = click.prompt(
        "Disable SMS sign-in for these users? Only 'yes' will be accepted",
        default="",
        show_default=False,
        err=True,
    )
    if answer.strip() != "yes":
        fail("fix cancelled; nothing was changed")


def _fix(
    desired: DesiredState, audit_db: Path | None, targets: list[Finding]
) -> list[SmsSignInFix]:
    from ctsync.audit import AuditContext
    from ctsync.ops import disable_sms_sign_in

    trail = open_trail(audit_path(desired, audit_db))
    context = AuditContext(config_hash=desired.config_hash)

    async def go() -> list[SmsSignInFix]:
        async with session_for(desired, trail=trail, context=context) as session:
            return await disable_sms_sign_in(session, targets)

    with trail:
        return run(go())


@click.command("preflight")
@config_option
@link_option
@audit_option
@click.option(
    "--fix",
    "fix",
    type=click.Choice(["sms-sign-in"]),
    default=None,
    help="Disable SMS sign-in for the users found with it (they would be skipped), after "
    "approval; each change is recorded in the audit trail.",
)
@click.option("--auto-approve", is_flag=True, help="With --fix: change without asking (for CI).")
@output_option("table", "json")
def preflight(
    config_path: Path,
    links: tuple[str, ...],
    audit_db: Path | None,
    fix: str | None,
    auto_approve: bool,
    output: str,
) -> None:
    """Check that cross-tenant sync will work for each link, once apply has run.

    Judges the tenant pair (automatic redemption, inbound sync, B2B collaboration, invitation
    settings, licences, quota, permissions), Conditional Access in the target, and every user
    in scope (SMS sign-in, MFA, guests, shared mail, disabled accounts). Writes nothing. Exits
    1 when a finding is an error (what makes apply refuse); warnings alone exit 0.
    """
    from ctsync.render.preflight import preflight_table, sms_fix_table

    desired = load_config(config_path)
    report = _check(desired, links)
    fixes: list[SmsSignInFix] | None = None
    if output == "json" and fix is None:
        echo_json(report.to_dict())
    elif output != "json":
        click.echo(preflight_table(report))
    if fix == "sms-sign-in":
        targets = report.sms_sign_in_users()
        fixes = []
        if targets:
            _approve(targets, auto_approve=auto_approve)
            fixes = _fix(desired, audit_db, targets)
        if output == "json":
            echo_json({**report.to_dict(), "fixes": [f.to_dict() for f in fixes]})
        else:
            click.echo()
            click.echo(sms_fix_table(fixes))
    if not report.ok or (fixes is not None and not all(f.ok for f in fixes)):
        sys.exit(1)


def record_skipped(trail: AuditTrail, desired: DesiredState, plan: Plan) -> None:
    """A ``NOTE`` record per link of ``plan``: apply ran with ``--skip-preflight``.

    Not a Graph write: method ``NOTE``, path ``-``, step ``preflight.skipped``, so ``audit
    show`` lists the bypass beside the writes it let through.
    """
    links = sorted({key for step in plan.steps for key in step.links})
    for key in links:
        source = desired.tenants[key.partition(":")[0]]
        trail.append(
            actor_tenant=source.tenant_id,
            method="NOTE",
            path="-",
            link=key,
            step=SKIP_STEP,
            body={"flag": "--skip-preflight", "meaning": "apply ran without its preflight checks"},
            plan_id=plan.id,
            config_hash=desired.config_hash,
        )
