"""``ctsync plan``, ``ctsync apply`` and ``ctsync destroy``.

Each is one :class:`~ctsync.cli._common.Command`: one session from the first read to the last
write (one token per tenant, one journal), and for apply and destroy the config's lock, held
until the process ends, so two runs of one config never interleave.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, NoReturn

import click

from ctsync.cli._common import (
    Command,
    F,
    audit_option,
    config_option,
    confirm_or_exit,
    echo_json,
    fail,
    file_path,
    link_option,
    load_config,
    step_scope,
)
from ctsync.render.text import printable

if TYPE_CHECKING:
    from ctsync.config import DesiredState
    from ctsync.engine import ApplyReport, Event, Plan, Session
    from ctsync.ops import PreflightReport, TokenRoles

__all__ = ["apply", "destroy", "plan"]

#: A saved plan is a few KiB per link; a file this large is not one.
MAX_PLAN_BYTES: Final = 64 * 1024 * 1024


def _format_option(help_text: str) -> Callable[[F], F]:
    """``--format text|powershell`` (stored as ``fmt``)."""
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(["text", "powershell"]),
        default="text",
        show_default=True,
        help=help_text,
    )


def _render(plan: Plan, desired: DesiredState, fmt: str) -> str:
    if fmt == "powershell":
        from ctsync.render.powershell import plan_powershell

        ids = {name: t.tenant_id for name, t in desired.tenants.items()}
        clouds = {name: t.cloud.name for name, t in desired.tenants.items()}
        return plan_powershell(plan, tenant_ids=ids, clouds=clouds)
    from ctsync.render.plan import plan_text

    return plan_text(plan, colour=sys.stdout.isatty() and not os.environ.get("NO_COLOR"))


def _needs_attention(plan: Plan) -> bool:
    """Changes to make, or problems to fix (``--detailed-exitcode`` exits 2)."""
    return not plan.empty or bool(plan.problems)


@click.command("plan")
@config_option
@link_option
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="Exit 0 when there is nothing to do, 2 when there are changes (or problems such as "
    "duplicate apps to remove), 1 on error.",
)
@click.option(
    "--output",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Text for people, JSON for machines.",
)
@_format_option("With text output: the plan itself, or a Microsoft Graph PowerShell script.")
@click.option(
    "--out",
    type=file_path(dir_okay=False),
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
    if out is not None:
        _check_writable(out)
    with Command(desired, name="plan") as command:
        result = command.run(lambda session: make_plan(desired, session, links=links))
    if out is not None:
        _save(out, result)
    if output == "json":
        echo_json(result.to_dict())
    else:
        click.echo(_render(result, desired, fmt))
        if out is not None:
            click.echo(f"\nSaved the plan to {out}; apply it with `ctsync apply {out}`.")
    if result.blockers:
        fail(_blocked(result))
    if detailed_exitcode and _needs_attention(result):
        sys.exit(2)


def _blocked(plan_: Plan) -> str:
    count = len(plan_.blockers)
    return (
        f"{count} problem(s) above stop apply: ctsync will not guess about objects it does "
        "not manage. Resolve them as each says, then plan again"
    )


def _check_writable(out: Path) -> None:
    """Refuse ``--out`` before reading any tenant when the plan could not be saved there."""
    if out.is_dir():
        fail(f"--out {out}: is a directory; name a file")
    if not out.parent.is_dir():
        fail(f"--out {out}: the directory {out.parent} does not exist")
    if not os.access(out.parent, os.W_OK):
        fail(f"--out {out}: the directory {out.parent} is not writable")


def _save(out: Path, result: Plan) -> None:
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        tmp.write_text(json.dumps(result.to_dict(), indent=2) + "\n")
        tmp.replace(out)
    except OSError as exc:
        fail(f"could not save the plan to {out}: {exc.strerror or exc}")


def _progress(plan: Plan, output: str) -> tuple[AbstractContextManager[Any], Event | None]:
    """A progress bar on stderr for long applies at a terminal, and — for text output, at a
    terminal or not — a line on stderr each time a step waits (destroy waiting for a cycle to
    deprovision users), saying for what and how long it may take."""
    if output != "text":
        return nullcontext(), None

    if len(plan.steps) < 8 or not sys.stderr.isatty():

        def plain(kind: str, step: Any, outcome: Any) -> None:
            del step
            if kind == "wait":
                click.echo(f"waiting: {printable(str(outcome))}", err=True)

        return nullcontext(), plain
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from ctsync.cli._common import console

    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=console(stderr=True),
        transient=True,
    )
    task = progress.add_task("applying", total=len(plan.steps))

    def on_event(kind: str, step: Any, outcome: Any) -> None:
        if kind == "wait":
            progress.console.print(f"waiting: {printable(str(outcome))}", markup=False)
        elif kind == "end":
            progress.advance(task)

    return progress, on_event


def execute_in(
    command: Command, plan_: Plan, output: str, *, skipped_preflight: bool = False
) -> ApplyReport:
    """Run ``plan_`` in ``command``'s session: every write recorded under the plan's id."""
    from ctsync.engine import execute

    command.context.plan_id = plan_.id
    bar, on_event = _progress(plan_, output)
    if skipped_preflight and command.trail is not None:
        from ctsync.cli.preflight import record_skipped

        record_skipped(command.trail, command.desired, plan_)
    with bar:
        return command.run(
            lambda session: execute(plan_, session, scope=step_scope, on_event=on_event)
        )


async def _checked_plan(
    session: Session,
    links: tuple[str, ...],
    roles: TokenRoles,
    *,
    skip_preflight: bool,
) -> tuple[Plan | None, PreflightReport | None]:
    """The plan of the chosen links, and preflight's blocking checks unless skipped.

    Preflight reads live state and plans once; its plan is the one apply runs (the same
    ``wants`` → ``read_live`` → ``plan_changes`` as ``make_plan``). None when live state could
    not be read, which preflight reports as an error.
    """
    if skip_preflight:
        from ctsync.engine import make_plan

        return await make_plan(session.desired, session, links=links), None
    from ctsync.ops import preflight

    report = await preflight(session, links or None, roles=roles, blocking_only=True)
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
@click.argument("saved_plan", required=False, type=file_path(dir_okay=False))
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

    With SAVED_PLAN (from `ctsync plan --out`): the saved plan is the approval, not the
    program. ctsync plans again from the config and the tenants and applies only if that
    yields exactly the saved plan; anything else (the config or the tenants moved, the file
    was edited) is refused before any write.
    """
    from ctsync.ops import TokenRoles
    from ctsync.render.preflight import preflight_summary

    desired = load_config(config_path)
    saved, approved = _saved(saved_plan, desired) if saved_plan is not None else (None, None)
    if saved is not None:
        if links and tuple(links) != saved.links:
            fail(f"{saved_plan} was planned for {_links_text(saved.links)}; drop --link")
        links = saved.links
    roles = TokenRoles()
    with Command(desired, name="apply", writes=True, audit_db=audit_db, on_token=roles) as command:
        planned, checked = command.run(
            lambda session: _checked_plan(session, links, roles, skip_preflight=skip_preflight)
        )
        if checked is not None and not checked.ok:
            _refuse(planned, checked, output)
        assert planned is not None  # preflight reports an unreadable live state as an error
        if planned.blockers:
            if output == "json":
                echo_json({"plan": planned.to_dict(), "report": None})
            else:
                click.echo(_render(planned, desired, "text"))
            fail(f"apply refused, nothing was changed: {_blocked(planned)}")
        if checked is not None and output == "text":
            click.echo(f"Preflight (blocking checks): {preflight_summary(checked)}\n")
        if saved is not None:
            assert saved_plan is not None
            assert approved is not None
            _same_or_refuse(saved, approved, planned, saved_plan, desired)
        elif output == "text":
            click.echo(_render(planned, desired, "text"))
        if planned.empty:
            if output == "json":
                payload = {"plan": planned.to_dict(), "report": None}
                if checked is not None:
                    payload["preflight"] = checked.to_dict()
                echo_json(payload)
            return
        if saved is None:
            confirm_or_exit(planned, auto_approve=auto_approve, verb="apply")
        report = execute_in(command, planned, output, skipped_preflight=skip_preflight)
    _report(report, output, checked)


def _links_text(links: tuple[str, ...]) -> str:
    return "every link" if not links else "--link " + " --link ".join(links)


def _saved(path: Path, desired: DesiredState) -> tuple[Plan, dict[str, Any]]:
    """The saved plan at ``path`` and the JSON it was read from, read with care: nothing in it
    is trusted yet."""
    from ctsync.engine import Plan, PlanFileError

    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_PLAN_BYTES + 1)
    except FileNotFoundError:
        fail(f"{path}: no such plan file")
    except OSError as exc:
        fail(f"{path}: cannot read the plan: {exc.strerror or exc}")
    if len(raw) > MAX_PLAN_BYTES:
        fail(f"{path}: not a plan written by `ctsync plan --out` (larger than 64 MiB)")
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        why = "nested too deeply" if isinstance(exc, RecursionError) else "not JSON"
        fail(f"{path}: not a plan written by `ctsync plan --out` ({why})")
    if not isinstance(data, dict):
        fail(f"{path}: not a plan written by `ctsync plan --out` (not a JSON object)")
    try:
        loaded = Plan.from_dict(data)
    except PlanFileError as exc:
        fail(f"{path}: {exc}")
    if loaded.kind != "apply":
        fail(f"{path} is a {loaded.kind} plan; apply takes a plan from `ctsync plan --out`")
    if loaded.config_hash != desired.config_hash:
        fail(f"{path} was planned from another version of {desired.path}; plan again")
    if Path(loaded.config_path).resolve() != desired.path.resolve():
        fail(f"{path} was planned for the config {loaded.config_path}, not {desired.path}")
    return loaded, data


def _same_or_refuse(
    saved: Plan, approved: dict[str, Any], fresh: Plan, path: Path, desired: DesiredState
) -> None:
    """Apply a saved plan only if planning again yields exactly the file's content (the file
    is the approval): every key, every value, nothing more or less."""
    # Through JSON, as the file went: tuples become lists, nothing else changes.
    mine, theirs = json.loads(json.dumps(fresh.to_dict())), dict(approved)
    mine.pop("config_path")
    theirs.pop("config_path", None)
    if mine == theirs:
        return
    if saved.live_hash != fresh.live_hash:
        why = "live state has changed since it was planned"
    else:
        ours = {s.id: s.to_dict() for s in fresh.steps}
        old = {s.id: s.to_dict() for s in saved.steps}
        differ = sorted(k for k in ours.keys() | old.keys() if ours.get(k) != old.get(k))
        shown = ", ".join(differ[:3]) + (f" and {len(differ) - 3} more" if len(differ) > 3 else "")
        why = (
            f"its steps differ from the plan made now ({shown})"
            if differ
            else "it differs from the plan made now (was it edited?)"
        )
    fail(
        f"{path} does not match what ctsync plans now from {desired.path} and the tenants: "
        f"{why}. Nothing was changed. Run `ctsync plan --out {path}` again and review the "
        "new plan"
    )


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
@click.option(
    "--delete-adopted",
    is_flag=True,
    help="Also delete configurations the links adopted (made in the portal or by the MTO "
    "wizard). By default destroy pauses their jobs and releases them (removes ctsync's tags).",
)
@click.option(
    "--reset-default-policy",
    "reset_default",
    is_flag=True,
    help="Reset the default cross-tenant access policy of tenants whose default_access the "
    "destroyed links leave behind to Microsoft's defaults (resetToSystemDefault), settings "
    "ctsync did not make included. By default only ctsync's default settings go back.",
)
@click.option(
    "--duplicates",
    is_flag=True,
    help="Only delete the duplicate configuration apps `ctsync plan` reports for the links "
    "(other apps carrying a link's tag, with their jobs); the link itself stays.",
)
@click.option("--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
@_format_option(
    "powershell: print the teardown as a Microsoft Graph PowerShell script for a change "
    "board, and change nothing."
)
def destroy(
    config_path: Path,
    links: tuple[str, ...],
    audit_db: Path | None,
    auto_approve: bool,
    keep_users: bool,
    delete_adopted: bool,
    reset_default: bool,
    duplicates: bool,
    output: str,
    fmt: str,
) -> None:
    """Tear links down in the documented order, in both tenants.

    Unassign users and let a cycle deprovision them (unless --keep-users), delete the job and
    the configuration app, then identitySynchronization before the partner configuration.
    """
    from ctsync.engine import make_destroy_plan

    desired = load_config(config_path)
    with Command(desired, name="destroy", writes=True, audit_db=audit_db) as command:
        to_apply = command.run(
            lambda session: make_destroy_plan(
                desired,
                session,
                links=links,
                keep_users=keep_users,
                duplicates_only=duplicates,
                delete_adopted=delete_adopted,
                reset_default=reset_default,
            )
        )
        if fmt == "powershell":
            click.echo(_render(to_apply, desired, "powershell"))
            return
        if output == "text":
            click.echo(_render(to_apply, desired, "text"))
        if to_apply.empty:
            if output == "json":
                echo_json({"plan": to_apply.to_dict(), "report": None})
            return
        confirm_or_exit(to_apply, auto_approve=auto_approve, verb="destroy")
        report = execute_in(command, to_apply, output)
    _report(report, output)
