"""A plan as text: grouped by link, then by tenant, each step with its field changes."""

from __future__ import annotations

import json
from typing import Any

from ctsync.engine.model import ApplyReport, Plan, Problem, Step
from ctsync.render.text import printable

__all__ = ["plan_text", "report_text"]

_SIGNS = {"create": "+", "update": "~", "delete": "-", "action": "!", "wait": "…"}


def _value(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, str):
        return printable(value)
    return json.dumps(value, separators=(", ", ": "))  # ASCII: controls come out escaped


def _group(step: Step) -> str:
    """The heading a step is shown under: its links, the multitenant organization, or (the
    default policy, the cloud settings) the tenant."""
    if step.links:
        return f"link {printable(', '.join(step.links))}"
    if step.resource.startswith("multiTenantOrganization"):
        return "multitenant organization"
    return "tenant-wide settings"


def _problems(problems: tuple[Problem, ...]) -> list[str]:
    lines: list[str] = []
    for problem in problems:
        label = "error" if problem.severity == "error" else "problem"
        lines.append(f"{label}: {printable(problem.message)}")
        lines.append(f"  fix: {printable(problem.remedy)}")
    return lines


#: ANSI colours of the signs on a terminal: green create, yellow update, red delete, cyan action.
_COLOURS = {"+": "32", "~": "33", "-": "31", "!": "36", "…": "36"}


def plan_text(plan: Plan, *, colour: bool = False) -> str:
    """Terraform-like: ``+`` create, ``~`` update, ``-`` delete, ``!`` action; ``colour``
    (a terminal, no ``NO_COLOR``) colours each step's sign and a destructive mark."""
    lines: list[str]
    if plan.empty:
        if plan.problems:
            lines = ["No changes to make, but ctsync found problems it will not fix by itself:"]
            lines.extend(_problems(plan.problems))
        else:
            lines = ["No changes. Both tenants of every link match the config."]
        lines.extend(f"note: {printable(n)}" for n in plan.notes)
        lines.extend(_handoff(plan.handoff))
        return "\n".join(lines)
    groups: dict[str, dict[str, list[Step]]] = {}
    for step in plan.steps:
        groups.setdefault(_group(step), {}).setdefault(step.tenant, []).append(step)
    lines = []
    for heading, tenants in groups.items():
        lines.append(heading)
        for tenant, steps in tenants.items():
            lines.append(f"  in tenant {printable(tenant)}:")
            for step in steps:
                mark = " (destructive)" if step.destructive else ""
                sign = _SIGNS.get(step.action, "?")
                if colour and sign in _COLOURS:
                    mark = f"\x1b[1;31m{mark}\x1b[0m" if mark else ""
                    sign = f"\x1b[{_COLOURS[sign]}m{sign}\x1b[0m"
                lines.append(f"    {sign} {printable(step.summary)}{mark}")
                lines.extend(
                    f"        {printable(change.field)}: "
                    f"{_value(change.old)} → {_value(change.new)}"
                    for change in step.changes
                )
    counts = plan.counts()
    lines.append("")
    lines.append(
        f"Plan: {counts['create']} to create, {counts['update']} to update, "
        f"{counts['delete']} to delete, {counts['action'] + counts['wait']} other steps."
    )
    if plan.destructive:
        lines.append(
            f"{len(plan.destructive)} destructive step(s) need approval "
            "(answer yes, or pass --auto-approve)."
        )
    lines.extend(_problems(plan.problems))
    lines.extend(f"note: {printable(n)}" for n in plan.notes)
    lines.extend(_handoff(plan.handoff))
    return "\n".join(lines)


def _handoff(steps: tuple[Step, ...]) -> list[str]:
    """The steps of read-only tenants, for their admins (ctsync does not run them)."""
    if not steps:
        return []
    lines = ["", "For the admins of read-only tenants (ctsync does not run these):"]
    tenants: dict[str, list[Step]] = {}
    for step in steps:
        tenants.setdefault(step.tenant, []).append(step)
    for tenant, mine in tenants.items():
        lines.append(f"  in tenant {printable(tenant)}:")
        for step in mine:
            lines.append(f"    {_SIGNS.get(step.action, '?')} {printable(step.summary)}")
            lines.extend(
                f"        {printable(change.field)}: {_value(change.old)} → {_value(change.new)}"
                for change in step.changes
            )
    return lines


def report_text(report: ApplyReport) -> str:
    steps = {s.id: s for s in report.plan.steps}
    lines = []
    for outcome in report.outcomes:
        step = steps[outcome.step_id]
        mark = {"done": "✓", "failed": "✗", "skipped": "·"}[outcome.status]
        line = f"{mark} [{printable(step.tenant)}] {printable(step.summary)}"
        if outcome.error:
            line += f"\n    {printable(outcome.error)}"
        lines.append(line)
    done = len(report.by_status("done"))
    failed = len(report.by_status("failed"))
    skipped = len(report.by_status("skipped"))
    verb = "Destroy" if report.plan.kind == "destroy" else "Apply"
    verdict = f"{verb} complete" if report.ok else f"{verb} incomplete"
    lines.append("")
    lines.append(
        f"{verdict}: {done} done, {failed} failed, {skipped} not run "
        f"({report.requests} Graph requests, {report.seconds:.1f} s)."
    )
    if not report.ok:
        lines.append(
            f"Fix the cause and run {verb.lower()} again: finished steps are not repeated."
        )
    return "\n".join(lines)
