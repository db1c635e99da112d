"""``ctsync plan``, ``ctsync apply`` and ``ctsync destroy``."""

from __future__ import annotations

import json
import sys
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from ctsync.cli._common import (
    audit_option,
    audit_path,
    config_option,
    confirm_or_exit,
    echo_json,
    fail,
    link_option,
    load_config,
    open_trail,
    run,
    session_for,
    step_scope,
)

if TYPE_CHECKING:
    from ctsync.config import DesiredState
    from ctsync.engine import ApplyReport, Event, Plan
    from ctsync.ops import PreflightReport

__all__ = ["apply", "destroy", "plan"]


def _render(plan: Plan, desired: DesiredState, fmt: str) -> str:
    if fmt == "powershell":
        from ctsync.render.powershell import plan_powershell

        ids = {name: t.tenant_id for name, t in desired.tenants.items()}
        return plan_powershell(plan, tenant_ids=ids)
    from ctsync.render.plan import plan_text

    return plan_text(plan)


@click.command("plan")
@config_option
@link_option
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="Exit 0 when there is nothing to do, 2 when there are changes, 1 on error.",
)
@click.option(
    "--output",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Text for people, JSON for machines.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "powershell"]),
    default="text",
    show_default=True,
    help="With text output: the plan itself, or a Microsoft Graph PowerShell script.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Save the plan here for `ctsync apply PLAN`.",
)
def plan(
    config_path: Path,
    links: tuple[str, ...],
    detailed_exitcode: bool,
    output: str,
    fmt: str,
    out: Path | None,
) -> None:
    """Show what apply would change in both tenants of every link. Writes nothing."""
    from ctsync.engine import make_plan

    desired = load_config(config_path)

    async def go() -> Plan:
        async with session_for(desired) as session:
            return await make_plan(desired, session, links=links)

    result = run(go())
    if out is not None:
        out.write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    if output == "json":
        echo_json(result.to_dict())
    else:
        click.echo(_render(result, desired, fmt))
        if out is not None:
            click.echo(f"\nSaved the plan to {out}; apply it with `ctsync apply {out}`.")
    if detailed_exitcode and not result.empty:
        sys.exit(2)


def _progress(plan: Plan, output: str) -> tuple[AbstractContextManager[Any], Event | None]:
    """A progress bar on stderr for long applies at a terminal; nothing otherwise."""
    if output != "text" or len(plan.steps) < 8 or not sys.stderr.isatty():
        return nullcontext(), None
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    task = progress.add_task("applying", total=len(plan.steps))

    def on_event(kind: str, step: Any, outcome: Any) -> None:
        del step, outcome
        if kind == "end":
            progress.advance(task)

    return progress, on_event


def _execute(
    plan_: Plan,
    desired: DesiredState,
    audit_db: Path | None,
    output: str,
    *,
    skipped_preflight: bool = False,
) -> ApplyReport:
    from ctsync.audit import AuditContext
    from ctsync.engine import execute

    trail = open_trail(audit_path(desired, audit_db))
    context = AuditContext(plan_id=plan_.id, config_hash=desired.config_hash)
    bar, on_event = _progress(plan_, output)

    async def go() -> ApplyReport:
        async with session_for(desired, trail=trail, context=context) as session:
            return await execute(plan_, session, scope=step_scope, on_event=on_event)

    with trail, bar:
        if skipped_preflight:
            from ctsync.cli.preflight import record_skipped

            record_skipped(trail, desired, plan_)
        return run(go())


def _checked_plan(
    desired: DesiredState, links: tuple[str, ...], *, skip_preflight: bool
) -> tuple[Plan | None, PreflightReport | None]:
    """The plan of the chosen links, and preflight's blocking checks unless skipped.

    Preflight reads live state and plans once; its plan is the one apply runs (the same
    ``wants`` → ``read_live`` → ``plan_changes`` as ``make_plan``). None when live state could
    not be read, which preflight reports as an error.
    """
    if skip_preflight:
        from ctsync.engine import make_plan

        async def plain() -> Plan:
            async with session_for(desired) as session:
                return await make_plan(desired, session, links=links)

        return run(plain()), None
    from ctsync.cli.preflight import checking_session
    from ctsync.ops import TokenRoles, preflight

    roles = TokenRoles()

    async def checked() -> PreflightReport:
        async with checking_session(desired, roles) as session:
            return await preflight(session, links or None, roles=roles, blocking_only=True)

    report = run(checked())
    return report.plan, report


def _refuse(plan_: Plan | None, checked: PreflightReport, output: str) -> NoReturn:
    """Stop before any change when preflight found an error."""
    from ctsync.render.preflight import preflight_table

    if output == "json":
        echo_json(
            {
                "preflight": checked.to_dict(),
                "plan": plan_.to_dict() if plan_ else None,
                "report": None,
            }
        )
    else:
        click.echo(preflight_table(checked, severities=("error",), summary=False))
    errors = len(checked.errors)
    fail(
        f"apply refused: preflight found {errors} error(s) (above; `ctsync preflight` shows "
        "everything). Fix them, or pass --skip-preflight to apply anyway. Nothing was changed."
    )


def _report(report: ApplyReport, output: str, checked: PreflightReport | None = None) -> None:
    from ctsync.render.plan import report_text

    if output == "json":
        payload = {"plan": report.plan.to_dict(), "report": report.to_dict()}
        if checked is not None:
            payload["preflight"] = checked.to_dict()
        echo_json(payload)
    else:
        click.echo(report_text(report))
    if not report.ok:
        sys.exit(1)


@click.command("apply")
@config_option
@link_option
@audit_option
@click.option("--auto-approve", is_flag=True, help="Apply without asking (for CI).")
@click.option(
    "--skip-preflight",
    is_flag=True,
    help="Apply even if preflight's blocking checks would refuse; recorded in the audit trail.",
)
@click.option("--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.argument("saved_plan", required=False, type=click.Path(dir_okay=False, path_type=Path))
def apply(
    config_path: Path,
    links: tuple[str, ...],
    audit_db: Path | None,
    auto_approve: bool,
    skip_preflight: bool,
    output: str,
    saved_plan: Path | None,
) -> None:
    """Make both tenants of every link match the config.

    Runs preflight's blocking checks first (the tenant pair and permissions; see `ctsync
    preflight`) and refuses, changing nothing, when one finds an error — unless
    --skip-preflight, which the audit trail records.

    With SAVED_PLAN (from `ctsync plan --out`), apply exactly that plan — refused if the config
    or the live state has changed since it was made.
    """
    from ctsync.render.preflight import preflight_summary

    desired = load_config(config_path)
    planned, checked = _checked_plan(desired, links, skip_preflight=skip_preflight)
    if checked is not None and not checked.ok:
        _refuse(planned, checked, output)
    assert planned is not None  # preflight reports an unreadable live state as an error
    current = planned
    if checked is not None and output == "text":
        click.echo(f"Preflight (blocking checks): {preflight_summary(checked)}\n")
    if saved_plan is not None:
        to_apply = _saved(saved_plan)
        if to_apply.config_hash != desired.config_hash:
            fail(f"{saved_plan} was planned from another version of {desired.path}; plan again")
        if to_apply.live_hash != current.live_hash:
            fail(
                f"live state has changed since {saved_plan} was planned; "
                "run `ctsync plan` again and review the new plan"
            )
    else:
        to_apply = current
        if output == "text":
            click.echo(_render(to_apply, desired, "text"))
        if to_apply.empty:
            if output == "json":
                payload = {"plan": to_apply.to_dict(), "report": None}
                if checked is not None:
                    payload["preflight"] = checked.to_dict()
                echo_json(payload)
            return
        confirm_or_exit(to_apply, auto_approve=auto_approve, verb="apply")
    report = _execute(to_apply, desired, audit_db, output, skipped_preflight=skip_preflight)
    _report(report, output, checked)


def _saved(path: Path) -> Plan:
    from ctsync.engine import Plan

    try:
        data = json.loads(path.read_text())
        loaded = Plan.from_dict(data)
    except FileNotFoundError:
        fail(f"{path}: no such plan file")
    except (ValueError, KeyError, TypeError) as exc:
        fail(f"{path}: not a plan written by `ctsync plan --out` ({exc})")
    if loaded.kind != "apply":
        fail(f"{path} is a {loaded.kind} plan; apply takes a plan from `ctsync plan --out`")
    return loaded


@click.command("destroy")
@config_option
@link_option
@audit_option
@click.option("--auto-approve", is_flag=True, help="Destroy without asking (for CI).")
@click.option(
    "--keep-users",
    is_flag=True,
    help="Leave the synced users in the target: skip scoping them out before deleting the job.",
)
@click.option("--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def destroy(
    config_path: Path,
    links: tuple[str, ...],
    audit_db: Path | None,
    auto_approve: bool,
    keep_users: bool,
    output: str,
) -> None:
    """Tear links down in the documented order, in both tenants.

    Unassign users and let a cycle deprovision them (unless --keep-users), delete the job and
    the configuration app, then identitySynchronization before the partner configuration.
    """
    from ctsync.engine import make_destroy_plan

    desired = load_config(config_path)

    async def make() -> Plan:
        async with session_for(desired) as session:
            return await make_destroy_plan(desired, session, links=links, keep_users=keep_users)

    to_apply = run(make())
    if output == "text":
        click.echo(_render(to_apply, desired, "text"))
    if to_apply.empty:
        if output == "json":
            echo_json({"plan": to_apply.to_dict(), "report": None})
        return
    confirm_or_exit(to_apply, auto_approve=auto_approve, verb="destroy")
    _report(_execute(to_apply, desired, audit_db, output), output)
