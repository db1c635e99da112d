"""A plan as text: grouped by link, then by tenant, each step with its field changes."""

from __future__ import annotations

import json
from typing import Any

from ctsync.engine.model import ApplyReport, Plan, Step

__all__ = ["plan_text", "report_text"]

_SIGNS = {"create": "+", "update": "~", "delete": "-", "action": "!", "wait": "…"}


def _value(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(", ", ": "))


def _group(step: Step) -> str:
    return ", ".join(step.links) if step.links else "(no link)"


def plan_text(plan: Plan) -> str:
    """Terraform-like: ``+`` create, ``~`` update, ``-`` delete, ``!`` action."""
    lines: list[str]
    if plan.empty:
        lines = ["No changes. Both tenants of every link match the config."]
        lines.extend(f"note: {n}" for n in plan.notes)
        return "\n".join(lines)
    groups: dict[str, dict[str, list[Step]]] = {}
    for step in plan.steps:
        groups.setdefault(_group(step), {}).setdefault(step.tenant, []).append(step)
    lines = []
    for link, tenants in groups.items():
        lines.append(f"link {link}")
        for tenant, steps in tenants.items():
            lines.append(f"  in tenant {tenant}:")
            for step in steps:
                mark = " (destructive)" if step.destructive else ""
                lines.append(f"    {_SIGNS[step.action]} {step.summary}{mark}")
                lines.extend(
                    f"        {change.field}: {_value(change.old)} → {_value(change.new)}"
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
    lines.extend(f"note: {n}" for n in plan.notes)
    return "\n".join(lines)


def report_text(report: ApplyReport) -> str:
    steps = {s.id: s for s in report.plan.steps}
    lines = []
    for outcome in report.outcomes:
        step = steps[outcome.step_id]
        mark = {"done": "✓", "failed": "✗", "skipped": "·"}[outcome.status]
        line = f"{mark} [{step.tenant}] {step.summary}"
        if outcome.error:
            line += f"\n    {outcome.error}"
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
