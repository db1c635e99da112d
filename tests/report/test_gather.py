"""Gathering a report in-process: the real client against the demo emulator, simulated time, an
audit trail written by a real apply. One link applied and cycled, one blocked by preflight."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from ctsync.audit import AuditContext, AuditTrail, audit_step, intent_recorder, recorder
from ctsync.engine import Session, execute, make_plan
from ctsync.graph import WriteRecord
from ctsync.ops import TokenRoles
from ctsync.ops.report import Report, gather_report
from tests.engine.conftest import Bench, make_bench

APPLIED = "contoso:fabrikam"
BLOCKED = "contoso:tailspin"  # Tailspin allows no guest invitations: a preflight error


def _applied(tmp_path: Path) -> Bench:
    bench = make_bench(tmp_path, links=[("contoso", "fabrikam"), ("contoso", "tailspin")])
    # What `ctsync demo` shows too: Tailspin's administrator switched guest invitations off.
    bench.emulator.tenant("tailspin").authorization_policy["allowInvitesFrom"] = "none"

    async def go(session: Session) -> None:
        plan = await make_plan(session.desired, session, links=[APPLIED])
        report = await execute(plan, session)
        assert report.ok, report.to_dict()

    bench.run(go)
    bench.emulator.run_cycles()
    return bench


def _gather(bench: Bench, audit: Path, links: list[str] | None = None) -> Report:
    now = bench.emulator.clock.now()
    roles = TokenRoles()
    writes: list[WriteRecord] = []
    report = bench.run(
        lambda s: gather_report(
            s, links, since=now - timedelta(days=7), audit_path=audit, roles=roles, now=now
        ),
        on_token=roles,
        observers=[writes.append],
    )
    assert writes == [], "a report writes nothing to any tenant"
    return report


def test_a_report_holds_status_preflight_drift_and_logs_per_link(tmp_path: Path) -> None:
    bench = _applied(tmp_path)
    report = _gather(bench, tmp_path / "no-trail.sqlite")
    links = {link.key: link for link in report.links}
    assert set(links) == {APPLIED, BLOCKED}
    assert [t.name for t in report.tenants] == ["contoso", "fabrikam", "tailspin"]

    applied = links[APPLIED]
    assert applied.status is not None
    assert applied.status.set_up
    assert applied.status.last_cycle is not None
    assert applied.steps == []  # applied: no drift
    assert applied.activity["created"] >= 4  # the pilot's members
    assert applied.health in {"healthy", "warning"}
    assert applied.asks["user_type"] == "Member"
    assert applied.asks["scope"] == ["group CTS-Pilot"]

    blocked = links[BLOCKED]
    assert blocked.status is not None
    assert not blocked.status.set_up
    assert blocked.steps, "a link never applied plans its whole setup"
    assert any(f.severity == "error" for f in blocked.findings)
    assert blocked.health == "failing"
    assert any("preflight error" in r for r in blocked.reasons)
    assert any("no sync job yet" in r for r in blocked.reasons)

    # The log window: a bucket per day, adding up to what each link did.
    assert len(report.days) == 8
    assert sum(d.counts["created"] for d in report.days) == applied.activity["created"]
    assert report.log_entries >= applied.activity["created"]
    reasons = report.top_reasons()
    assert reasons
    assert all(r["fix"] for r in reasons if r["meaning"])
    assert report.unavailable == {}
    assert not report.audit_present  # no trail yet is no error
    assert not (tmp_path / "no-trail.sqlite").exists()  # and reading it made none
    assert report.to_dict()["health"]["failing"] == 1


def test_a_report_lists_the_audit_trails_recent_writes(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite"
    bench = make_bench(tmp_path, links=[("contoso", "fabrikam")])
    trail = AuditTrail(path, now=bench.emulator.clock.now)
    context = AuditContext(config_hash=bench.desired().config_hash)

    async def go(session: Session) -> None:
        plan = await make_plan(session.desired, session)
        with audit_step(link=APPLIED, step="apply"):
            assert (await execute(plan, session)).ok

    with trail:
        bench.run(
            go,
            observers=[recorder(trail, context)],
            intent_observers=[intent_recorder(trail, context)],
        )
    report = _gather(bench, path)
    assert report.audit_present
    assert report.audit_writes
    first = report.audit_writes[0]
    assert first.tenant in {"contoso", "fabrikam"}  # the config's name, not the tenant id
    assert first.method in {"POST", "PATCH", "PUT", "DELETE"}
    assert first.status is not None
    assert report.audit_writes[0].seq > report.audit_writes[-1].seq  # most recent first


def test_a_report_of_one_link_reads_only_that_link(tmp_path: Path) -> None:
    bench = _applied(tmp_path)
    report = _gather(bench, tmp_path / "none.sqlite", links=[APPLIED])
    assert [link.key for link in report.links] == [APPLIED]
    assert [t.name for t in report.tenants] == ["contoso", "fabrikam"]
