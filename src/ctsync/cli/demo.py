"""``ctsync demo``: the main job on a built-in emulator, start to finish, in a few seconds.

An in-process emulator holds the demo tenants (Contoso, Fabrikam, Tailspin Toys). The demo
writes a config for it, runs preflight — Tailspin's administrator has switched guest invitations
off, an error that would make apply refuse, beside warnings and advice about users and
Conditional Access — lets that administrator switch them back on, plans, applies (every Graph
write recorded in an audit trail), shows what both tenants now hold, plans again (nothing left
to do), and verifies the trail.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ctsync.cli._common import console as rich_console
from ctsync.cli._common import file_path, need_emulator

if TYPE_CHECKING:
    from ctsync.config import DesiredState
    from ctsync.emulator import Emulator
    from ctsync.engine import ApplyReport, Plan
    from ctsync.ops import LinkStatus, LogReport, PreflightReport

__all__ = ["demo"]

LINKS = [("contoso", "fabrikam"), ("contoso", "tailspin")]
#: The demo's blocking problem: Tailspin allows no guest invitations, until its admin fixes it.
BLOCKED_TENANT = "tailspin"


@dataclass
class _Demo:
    config: Path
    preflight: PreflightReport | None = None
    preflight_after: PreflightReport | None = None
    provisioned: dict[str, list[str]] = field(default_factory=dict)
    statuses: list[LinkStatus] = field(default_factory=list)
    logs: LogReport | None = None
    plan: Plan | None = None
    report: ApplyReport | None = None
    replan: Plan | None = None
    tenants: list[dict[str, Any]] = field(default_factory=list)
    audit: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


def _write_config(emulator: Emulator, directory: Path) -> Path:
    from ctsync.config import init_from_emulator
    from ctsync.emulator.server import ServerAddress, info_document

    address = ServerAddress(
        authority="https://login.microsoftonline.com",
        graph_url="https://graph.microsoft.com/v1.0",
        control_url="https://graph.microsoft.com/_emulator",
        ca_cert=None,
        info_file=None,
    )
    path = directory / "ctsync.yaml"
    text = init_from_emulator(info_document(emulator, address), links=LINKS, path=path)
    path.write_text(text)
    return path


def _summary(emulator: Emulator) -> list[dict[str, Any]]:
    from ctsync.emulator.core.control import state

    return [
        {
            "tenant": t["name"],
            "partners": len(t["partners"]),
            "identity_synchronization": len(t["identity_synchronization"]),
            "configuration_apps": t["service_principals"],
            "assignments": t["app_role_assignments"],
            "jobs": ", ".join(j["schedule"] for j in t["synchronization_jobs"]) or "-",
        }
        for t in state(emulator)["tenants"]
    ]


async def _run(result: _Demo, emulator: Emulator, desired: DesiredState) -> None:
    from ctsync.audit import Actor, AuditContext, AuditTrail, default_audit_path, recorder
    from ctsync.cli._common import step_scope
    from ctsync.cli._inprocess import InProcess
    from ctsync.engine import execute, make_plan
    from ctsync.ops import TokenRoles, preflight, read_logs, statuses

    here = InProcess(emulator)
    invitations = emulator.tenant(BLOCKED_TENANT).authorization_policy
    invitations["allowInvitesFrom"] = "none"
    roles = TokenRoles()
    async with here.session(desired, on_token=roles) as checker:
        result.preflight = await preflight(checker, roles=roles)
        # Tailspin's administrator allows invitations again (in the Entra admin center).
        invitations["allowInvitesFrom"] = "everyone"
        result.preflight_after = await preflight(checker, roles=roles, blocking_only=True)
    async with here.session(desired) as reader:
        result.plan = await make_plan(desired, reader)
    with AuditTrail(default_audit_path(desired.path)) as trail:
        context = AuditContext(plan_id=result.plan.id, config_hash=desired.config_hash)
        async with here.session(
            desired,
            observers=[recorder(trail, context)],
            on_token=lambda token: context.add_actor(Actor.from_access_token(token)),
        ) as writer:
            result.report = await execute(result.plan, writer, scope=step_scope)
        async with here.session(desired) as reader:
            result.replan = await make_plan(desired, reader)
        result.audit = trail.verify().to_dict()
    result.tenants = _summary(emulator)
    # The jobs' first cycle: the provisioning service (emulated) creates the pilot users.
    emulator.run_cycles()
    result.provisioned = _provisioned(emulator)
    async with here.session(desired) as reader:
        result.statuses = await statuses(reader, desired.links)
        result.logs = await read_logs(reader, desired.links)


def _provisioned(emulator: Emulator) -> dict[str, list[str]]:
    """B2B users CTS created in each target, by display name."""
    out: dict[str, list[str]] = {}
    for _, target in LINKS:
        tenant = emulator.tenant(target)
        out[target] = sorted(
            str(u.get("displayName"))
            for u in tenant.users.values()
            if u.get("creationType") == "Invitation" and not u.get("deletedDateTime")
        )
    return out


@click.command("demo")
@click.option(
    "--dir",
    "directory",
    type=file_path(file_okay=False),
    default=None,
    help="Keep the demo's config and audit trail here (default: a temporary directory).",
)
@click.option("--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def demo(directory: Path | None, output: str) -> None:
    """Run the main job on a built-in, in-process emulator (no network, no Azure tenant).

    Writes a config linking Contoso to Fabrikam and Tailspin Toys, runs preflight (an error,
    warnings and advice), lets Tailspin's admin fix the error, plans, applies with an audit trail,
    shows both sides, plans again, and verifies the trail.
    """
    need_emulator("jwt")
    from ctsync.config import load
    from ctsync.emulator import Emulator

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ctsync-demo-") as scratch:
        where = directory or Path(scratch)
        where.mkdir(parents=True, exist_ok=True)
        emulator = Emulator(scenario="demo")
        config = _write_config(emulator, where)
        result = _Demo(config=config)
        asyncio.run(_run(result, emulator, load(config)))
        result.seconds = time.perf_counter() - started
        if output == "json":
            _json(result)
        else:
            _text(result)
    if result.report is None or not result.report.ok:
        raise SystemExit(1)


def _json(result: _Demo) -> None:
    assert result.preflight is not None
    assert result.preflight_after is not None
    assert result.plan is not None
    assert result.report is not None
    assert result.replan is not None
    click.echo(
        json.dumps(
            {
                "config": str(result.config),
                "preflight": result.preflight.to_dict(),
                "preflight_after_fix": result.preflight_after.to_dict(),
                "plan": result.plan.to_dict(),
                "report": result.report.to_dict(),
                "replan_steps": len(result.replan.steps),
                "tenants": result.tenants,
                "audit": result.audit,
                "provisioned": result.provisioned,
                "status": [s.to_dict() for s in result.statuses],
                "log_summary": result.logs.summary() if result.logs else [],
                "seconds": round(result.seconds, 3),
            },
            indent=2,
        )
    )


def _text(result: _Demo) -> None:
    from rich.markup import escape
    from rich.table import Table

    from ctsync.render.plan import plan_text, report_text
    from ctsync.render.preflight import preflight_summary, preflight_table

    assert result.preflight is not None
    assert result.preflight_after is not None
    assert result.plan is not None
    assert result.report is not None
    assert result.replan is not None
    # Data is never markup or emoji codes: a tag `ctsync:link:…` stays text, a display name
    # with `[bold]` is printed as written.
    console = rich_console()
    console.rule("[bold]ctsync demo[/] — an in-process emulator with Contoso, Fabrikam, Tailspin")
    console.print(
        f"1. Wrote [bold]{escape(str(result.config))}[/] (links contoso → fabrikam, "
        "contoso → tailspin)"
    )
    console.print(
        "\n2. [bold]ctsync preflight[/]: will sync work? (Tailspin's admin has switched guest "
        "invitations off)\n"
    )
    console.print(preflight_table(result.preflight, brief=True), markup=False, soft_wrap=True)
    console.print("(`ctsync preflight` also shows the fix of each finding.)")
    console.print(
        f"\n3. Tailspin's admin allows invitations again; [bold]preflight[/] as apply runs it: "
        f"{escape(preflight_summary(result.preflight_after))}"
    )
    console.print("\n4. [bold]ctsync plan[/]: what changes in both tenants of every link\n")
    console.print(plan_text(result.plan), markup=False)
    console.print("\n5. [bold]ctsync apply --auto-approve[/]\n")
    console.print(report_text(result.report), markup=False)
    table = Table(
        "tenant",
        "partner configs",
        "inbound sync policies",
        "CTS apps",
        "assignments",
        "jobs",
        title="6. What the tenants hold now",
    )
    for row in result.tenants:
        table.add_row(*(escape(str(v)) for v in row.values()))
    console.print()
    console.print(table)
    verdict = "no changes" if result.replan.empty else f"{len(result.replan.steps)} steps"
    console.print(f"\n7. [bold]ctsync plan[/] again: {verdict} — apply is idempotent.")
    audit = result.audit
    console.print(
        f"8. [bold]ctsync audit verify[/]: {audit.get('count')} writes recorded, "
        f"chain {'intact' if audit.get('ok') else 'BROKEN'}."
    )
    console.print(
        "\n9. The jobs' first provisioning cycle runs (every 40 minutes; here on the "
        "emulator's clock):"
    )
    for target, users in result.provisioned.items():
        console.print(f"   {target}: {len(users)} users created — {', '.join(users)}", markup=False)
    from ctsync.render.day2 import logs_text, status_text

    console.print("\n10. [bold]ctsync status[/]\n")
    console.print(status_text(result.statuses), markup=False)
    if result.logs is not None:
        console.print("\n11. [bold]ctsync logs --summary[/]: what the provisioning service did\n")
        console.print(logs_text(result.logs, summary=True), markup=False)
    console.print(
        f"\nDone in {result.seconds:.1f} s. Against a served emulator: `ctsync emulator serve "
        "--info-file emu.json`, then `ctsync init --from-emulator emu.json`."
    )
