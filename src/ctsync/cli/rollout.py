"""``ctsync promote``: widen a staged rollout to its next stage when the gate holds."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ctsync.cli._common import (
    Command,
    audit_option,
    config_option,
    confirm_or_exit,
    echo_json,
    load_config,
)
from ctsync.cli.day2 import _links
from ctsync.cli.reconcile import _render, execute_in

if TYPE_CHECKING:
    from ctsync.ops.rollout import Gate

__all__ = ["promote"]


def _gate_text(gate: Gate) -> str:
    lines = [
        f"{gate.link}: stage {gate.stage} since {gate.stage_began or 'the first apply'}; "
        f"{gate.cycles} cycle(s), {gate.failures}/{gate.entries} failed entries "
        f"({gate.failure_rate:.1%}, gate {gate.max_failure_rate:.1%})"
        + (", quarantined" if gate.quarantined else "")
    ]
    if gate.open:
        lines.append(f"Gate open: stage {gate.next_stage} adds {gate.next_scope}.")
    else:
        lines.append("Not promoted:")
        lines.extend(f"  - {reason}" for reason in gate.reasons)
    return "\n".join(lines)


@click.command("promote")
@config_option
@audit_option
@click.option("--link", "link_key", required=True, metavar="SOURCE:TARGET")
@click.option("--auto-approve", is_flag=True, help="Promote without asking (for CI).")
@click.option("--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def promote(
    config_path: Path, audit_db: Path | None, link_key: str, auto_approve: bool, output: str
) -> None:
    """Move a link's staged rollout to its next stage, if the current stage is clean.

    The gate (from the config's scope.rollout.gate) needs enough provisioning cycles since the
    stage began, a failure rate within the limit, and no quarantine. Exits 1 when it does not
    hold, saying exactly why.
    """
    from ctsync.ops.rollout import promotion_plan

    desired = load_config(config_path)
    link = _links(desired, (link_key,))[0]

    with Command(desired, name="promote", writes=True, audit_db=audit_db) as command:
        gate, plan = command.run(lambda session: promotion_plan(session, link))
        if plan is None:
            if output == "json":
                echo_json({"gate": gate.to_dict(), "plan": None, "report": None})
            else:
                click.echo(_gate_text(gate))
            sys.exit(1)
        if output == "text":
            click.echo(_gate_text(gate))
            click.echo(_render(plan, desired, "text"))
        confirm_or_exit(plan, auto_approve=auto_approve, verb="promote")
        report = execute_in(command, plan, output)
    if output == "json":
        echo_json({"gate": gate.to_dict(), "plan": plan.to_dict(), "report": report.to_dict()})
    else:
        from ctsync.render.plan import report_text

        click.echo(report_text(report))
    if not report.ok:
        sys.exit(1)
