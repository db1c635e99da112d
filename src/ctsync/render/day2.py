"""Day-2 results as text: on-demand provisioning, job changes, status, log audits."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

from ctsync.ops import JobChange, LinkStatus, LogReport, OnDemandResult

__all__ = ["jobs_text", "logs_csv", "logs_text", "on_demand_text", "status_text"]


def on_demand_text(results: Sequence[OnDemandResult]) -> str:
    lines = []
    for r in results:
        name = f"group {r.user}" if r.object_type == "Group" else r.user
        lines.append(f"{name} ({r.link}): {r.status}" + (f", {r.action}" if r.action else ""))
        if r.error:
            lines.append(f"  error: {r.error}")
        lines.extend(
            f"  [{step.kind or '-':10}] {step.status:8} {step.description}" for step in r.steps
        )
        if r.explanation:
            lines.append(f"  → {r.explanation}")
    return "\n".join(lines)


def jobs_text(changes: Sequence[JobChange]) -> str:
    return "\n".join(
        f"{c.link}: {c.action} — schedule {c.before['schedule']} → {c.after['schedule']}, "
        f"status {c.before['status']} → {c.after['status']}"
        for c in changes
    )


def _cycle(last: dict[str, Any] | None) -> str:
    if not last:
        return "no cycle yet"
    seconds = f", {last['seconds']:.0f} s" if last.get("seconds") is not None else ""
    error = f", error {last['error']}" if last.get("error") else ""
    return (
        f"{last['state']} at {last['ended'] or last['began']}{seconds}: "
        f"{last.get('exported') or 0} exported, {last.get('escrowed') or 0} escrowed{error}"
    )


def status_text(items: Sequence[LinkStatus]) -> str:
    lines = []
    for s in items:
        mark = "OK  " if s.healthy else "FAIL"
        if not s.set_up:
            lines.append(f"{mark} {s.link}: not set up")
            lines.extend(f"     {p}" for p in s.problems)
            continue
        lines.append(f"{mark} {s.link}: schedule {s.schedule}, status {s.code}")
        lines.append(f"     last cycle: {_cycle(s.last_cycle)}")
        if s.synchronized is not None:
            lines.append(f"     users synchronized: {s.synchronized}")
        if s.synchronized_groups is not None:
            lines.append(f"     groups synchronized: {s.synchronized_groups}")
        if s.steady_state_last:
            lines.append(f"     steady state since {s.steady_state_last}")
        if s.quarantine:
            q = s.quarantine
            lines.append(f"     QUARANTINED ({q['reason']}) since {q['since']}: {q['meaning']}")
            if q.get("error"):
                lines.append(f"     error {q['error']}: {q.get('message') or ''}".rstrip())
            lines.append(f"     remedy: {q['remedy']}")
        if s.next_cycle:
            lines.append(f"     next cycle: {s.next_cycle}")
        lines.extend(f"     problem: {p}" for p in s.problems if not s.quarantine)
    return "\n".join(lines)


def logs_text(report: LogReport, *, summary: bool) -> str:
    if summary:
        rows = report.summary()
        if not rows:
            return "No provisioning log entries."
        lines = [f"{len(report.entries)} entries:"]
        for row in rows:
            reason = f" {row['reason']}" if row["reason"] else ""
            lines.append(f"  {row['count']:>6}  {row['action']:<12} {row['status']:<8}{reason}")
            if row["meaning"]:
                lines.append(f"          means: {row['meaning']}")
                lines.append(f"          fix:   {row['fix']}")
        return "\n".join(lines)
    if not report.entries:
        return "No provisioning log entries."
    return "\n".join(
        f"{e.time} {e.link} {e.action:<12} {e.status:<8} {e.source_user or e.source_id or '-'}"
        + (f"  [{e.reason}]" if e.reason else "")
        for e in report.entries
    )


def logs_csv(report: LogReport) -> str:
    out = io.StringIO()
    fields = [
        "time",
        "link",
        "action",
        "status",
        "reason",
        "source_user",
        "source_id",
        "target_id",
        "cycle_id",
        "change_id",
        "message",
        "object_type",
    ]
    writer = csv.DictWriter(out, fieldnames=fields)
    writer.writeheader()
    for e in report.entries:
        writer.writerow({k: v for k, v in e.to_dict().items() if k in fields})
    return out.getvalue()
