"""Staged rollout: widen a link's scope to its next stage only when the current one is clean.

A link whose scope declares ``rollout`` is applied at stage 0 (the pilot group). The stage and
the time it began are recorded on the configuration app (``ctsync:stage:<k>:<time>``), so the
tenant itself says where the rollout stands. The gate reads the job's status and the
provisioning logs since the stage began: enough cycles must have run, the share of failed
entries must not exceed the limit, and the job must not be quarantined.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ctsync.config import LinkSpec
from ctsync.engine import Plan, Session, make_plan
from ctsync.engine.desired import parse_stage_tag
from ctsync.errors import ConfigError
from ctsync.ops.locate import locate
from ctsync.ops.logs import read_logs
from ctsync.ops.status import summarize

__all__ = ["Gate", "check_gate", "promotion_plan"]


@dataclass
class Gate:
    """Whether a link may move to its next rollout stage, and exactly why not."""

    link: str
    stage: int
    next_stage: int | None
    stage_began: str | None
    cycles: int
    min_cycles: int
    entries: int
    failures: int
    max_failure_rate: float
    quarantined: bool
    reasons: list[str] = field(default_factory=list)
    next_scope: str | None = None

    @property
    def failure_rate(self) -> float:
        return self.failures / self.entries if self.entries else 0.0

    @property
    def open(self) -> bool:
        return not self.reasons

    def to_dict(self) -> dict[str, Any]:
        return {
            "link": self.link,
            "stage": self.stage,
            "next_stage": self.next_stage,
            "next_scope": self.next_scope,
            "stage_began": self.stage_began,
            "cycles_since": self.cycles,
            "min_cycles": self.min_cycles,
            "entries_since": self.entries,
            "failures_since": self.failures,
            "failure_rate": round(self.failure_rate, 4),
            "max_failure_rate": self.max_failure_rate,
            "quarantined": self.quarantined,
            "open": self.open,
            "reasons": self.reasons,
        }


def _time(text: str | None) -> datetime | None:
    if not text or text.startswith("0001-"):
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def check_gate(session: Session, link: LinkSpec) -> Gate:
    """Read the link's stage, status and logs; say whether promoting is allowed."""
    rollout = link.sync.rollout
    if rollout is None:
        msg = f"link {link.key} has no rollout in its scope: there is nothing to promote"
        raise ConfigError(msg)
    where = await locate(session, link)
    client = session.client(link.source)
    sp = (
        await client.get(f"/servicePrincipals/{where.sp_id}", params={"$select": "id,tags"})
    ).json_object()
    recorded = parse_stage_tag(sp.get("tags"))
    stage, began_text = recorded if recorded else (0, None)
    began = _time(began_text)
    last = stage + 1 >= rollout.stages
    status = summarize(link.key, where.job)
    # The stage's time has whole seconds and the log filter only `gt`: step back one second so
    # entries of the very second the stage began count.
    report = await read_logs(session, [link], since=began - timedelta(seconds=1) if began else None)
    counted = [e for e in report.entries if e.status in {"success", "failure"}]
    failures = sum(1 for e in counted if e.status == "failure")
    cycles = {e.cycle_id for e in report.entries if e.cycle_id}
    ran = _time((status.last_cycle or {}).get("began"))
    if ran is not None and (began is None or ran >= began) and not cycles:
        cycles = {"last"}  # a quiet cycle writes no log rows but still counts
    gate = Gate(
        link=link.key,
        stage=stage,
        next_stage=None if last else stage + 1,
        stage_began=began_text,
        cycles=len(cycles),
        min_cycles=rollout.min_cycles,
        entries=len(counted),
        failures=failures,
        max_failure_rate=rollout.max_failure_rate,
        quarantined=status.quarantine is not None,
        next_scope=None if last else rollout.describe(stage + 1),
    )
    if last:
        gate.reasons.append(f"already at the last stage ({rollout.describe(stage)})")
    if gate.cycles < rollout.min_cycles:
        gate.reasons.append(
            f"{gate.cycles} provisioning cycle(s) since stage {stage} began; the gate needs "
            f"{rollout.min_cycles} (cycles run every 40 minutes after `ctsync start`)"
        )
    if gate.failure_rate > rollout.max_failure_rate:
        gate.reasons.append(
            f"{failures} of {gate.entries} provisioning entries since stage {stage} began "
            f"failed ({gate.failure_rate:.1%}), over the gate's {rollout.max_failure_rate:.1%}; "
            "see `ctsync logs --status failure --summary`"
        )
    if gate.quarantined:
        reason = (status.quarantine or {}).get("reason")
        gate.reasons.append(f"the job is quarantined ({reason}); see `ctsync status`")
    return gate


async def promotion_plan(session: Session, link: LinkSpec) -> tuple[Gate, Plan | None]:
    """The gate, and — when it is open — the plan that widens the scope to the next stage."""
    gate = await check_gate(session, link)
    if not gate.open or gate.next_stage is None:
        return gate, None
    plan = await make_plan(
        session.desired, session, links=[link.key], stages={link.key: gate.next_stage}
    )
    return gate, plan
