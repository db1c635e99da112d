"""Preflight findings as a table for people: per link, errors first, each with its fix."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterable, Sequence

from ctsync.ops import Finding, PreflightReport, SmsSignInFix

__all__ = ["preflight_summary", "preflight_table", "sms_fix_table", "sms_fix_targets"]

_WIDTH = 100
_INDENT = " " * 11


def _wrapped(label: str, text: str) -> list[str]:
    return textwrap.wrap(
        text,
        width=_WIDTH,
        initial_indent=_INDENT + label,
        subsequent_indent=_INDENT + " " * len(label),
        break_on_hyphens=False,
        break_long_words=False,
    )


def _finding(finding: Finding, tenant_width: int, code_width: int, *, brief: bool) -> list[str]:
    head = (
        f"  {finding.severity.upper():<8} {finding.code:<{code_width}}  "
        f"{finding.tenant:<{tenant_width}}  {finding.subject or ''}"
    )
    lines = [head.rstrip()]
    lines += _wrapped("", finding.message)
    if brief:
        return lines
    lines += _wrapped("fix: ", finding.fix)
    policy = finding.data.get("policy")
    if policy is not None:
        lines.append(_INDENT + "policy: " + json.dumps(policy, separators=(",", ":")))
    return lines


def preflight_summary(report: PreflightReport) -> str:
    """One line: the counts, and what they mean for ``apply``."""
    counts = report.counts()
    text = (
        f"{counts['error']} error(s), {counts['warning']} warning(s), {counts['info']} info "
        f"in {len(report.links)} link(s)"
    )
    if report.ok:
        return f"{text}: apply may run."
    return (
        f"{text}: apply refuses to run until the errors are fixed "
        "(or it is given --skip-preflight)."
    )


def preflight_table(
    report: PreflightReport,
    *,
    severities: Iterable[str] | None = None,
    brief: bool = False,
    summary: bool = True,
) -> str:
    """Every finding (or those of ``severities``), grouped by link; ``brief`` leaves out the
    fixes, ``summary`` adds the closing line of counts."""
    wanted = set(severities) if severities is not None else None
    shown = [f for f in report.findings if wanted is None or f.severity in wanted]
    tenant_width = max((len(f.tenant) for f in shown), default=6)
    code_width = max((len(f.code) for f in shown), default=10)
    lines: list[str] = []
    for link in report.links:
        found = [f for f in shown if f.link == link]
        source, _, target = link.partition(":")
        lines.append(f"{source} → {target}")
        if not found:
            lines.append("  nothing found")
        for finding in found:
            lines += _finding(finding, tenant_width, code_width, brief=brief)
        lines.append("")
    if summary:
        lines.append(preflight_summary(report))
    return "\n".join(lines).rstrip("\n")


def sms_fix_targets(findings: Sequence[Finding]) -> str:
    """The users ``--fix sms-sign-in`` is about to change, for the approval prompt."""
    lines = [f"--fix sms-sign-in disables SMS sign-in for {len(findings)} user(s):"]
    lines += [
        f"  {f.subject or f.data.get('user_id')} in {f.tenant} (link {f.link})" for f in findings
    ]
    lines.append("Their numbers stay registered as a second factor.")
    return "\n".join(lines)


def sms_fix_table(fixes: Sequence[SmsSignInFix]) -> str:
    if not fixes:
        return "No user has SMS sign-in enabled: nothing to fix."
    lines = [
        f"  {'OK  ' if fix.ok else 'FAIL'} {fix.user} in {fix.tenant}"
        + (f": {fix.error}" if fix.error else ": SMS sign-in disabled")
        for fix in fixes
    ]
    done = sum(1 for fix in fixes if fix.ok)
    lines.append(f"SMS sign-in disabled for {done} of {len(fixes)} user(s).")
    return "\n".join(lines)
