"""``ctsync preflight``: will cross-tenant sync work for each link? Writes nothing — except
``--fix sms-sign-in``, after approval and recorded in the audit trail."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ctsync.cli._common import (
    Command,
    audit_option,
    config_option,
    echo_json,
    fail,
    link_option,
    load_config,
    output_option,
)

if TYPE_CHECKING:
    from ctsync.audit import AuditTrail
    from ctsync.config import DesiredState
    from ctsync.engine import Plan
    from ctsync.ops import Finding, PreflightReport, SmsSignInFix

__all__ = ["preflight", "record_skipped"]

FIX_STEP = "preflight.fix.sms-sign-in"
SKIP_STEP = "preflight.skipped"


def _check(desired: DesiredState, links: tuple[str, ...]) -> PreflightReport:
    from ctsync.ops import TokenRoles
    from ctsync.ops import preflight as check

    roles = TokenRoles()
    with Command(desired, name="preflight", on_token=roles) as command:
        return command.run(lambda session: check(session, links or None, roles=roles))


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
    from ctsync.ops import disable_sms_sign_in

    with Command(desired, name="preflight --fix", writes=True, audit_db=audit_db) as command:
        return command.run(lambda session: disable_sms_sign_in(session, targets))


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
