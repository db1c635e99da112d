"""Day-2 work against the emulator's provisioning engine: status, cycles, logs, on demand,
job control, quarantine — the real client, the in-process emulator, simulated time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ctsync.engine import Session, execute, make_plan
from ctsync.ops import (
    Watermarks,
    control_jobs,
    provision_users,
    read_logs,
    statuses,
)
from tests.engine.conftest import Bench, make_bench


def _applied(tmp_path: Path, **kwargs: Any) -> Bench:
    bench = make_bench(tmp_path, links=[("contoso", "fabrikam")], **kwargs)

    async def go(session: Session) -> None:
        report = await execute(await make_plan(session.desired, session), session)
        assert report.ok

    bench.run(go)
    return bench


def _target_users(bench: Bench) -> dict[str, dict[str, Any]]:
    fabrikam = bench.emulator.tenant("fabrikam")
    return {
        u["displayName"]: u
        for u in fabrikam.users.values()
        if u.get("creationType") == "Invitation" and not u.get("deletedDateTime")
    }


def test_a_cycle_provisions_the_pilot_and_status_says_so(tmp_path: Path) -> None:
    bench = _applied(tmp_path)
    link = bench.desired().links

    before = bench.run(lambda s: statuses(s, link))[0]
    assert before.set_up
    assert before.schedule == "Active"
    assert before.last_cycle is None
    assert before.healthy

    bench.emulator.run_cycles()
    users = _target_users(bench)
    # Pilot members who are internal members and not SMS sign-in enabled.
    assert set(users) == {"Adele Vance", "Alex Wilber", "Megan Bowen", "Diego Siciliani"}
    adele = users["Adele Vance"]
    assert adele["userPrincipalName"] == "adele_contoso.com#EXT#@fabrikam.onmicrosoft.com"
    assert adele["userType"] == "Member"
    assert adele["externalUserState"] == "Accepted"

    after = bench.run(lambda s: statuses(s, link))[0]
    assert after.code == "Active"
    assert after.healthy
    assert after.last_cycle is not None
    assert after.last_cycle["state"] in {"Succeeded", "EntryLevelErrors"}
    assert after.next_cycle is not None


def test_logs_say_why_each_user_was_skipped(tmp_path: Path) -> None:
    bench = _applied(tmp_path)
    bench.emulator.run_cycles()
    links = bench.desired().links
    report = bench.run(lambda s: read_logs(s, links))
    by_user: dict[str, set[str | None]] = {}
    for entry in report.entries:
        by_user.setdefault(entry.source_user or "", set()).add(entry.reason)
    assert "isaiah@contoso.com" in by_user
    assert "jordan_northwind.example#EXT#@contoso.onmicrosoft.com" in by_user
    summary = report.summary()
    created = [r for r in summary if r["action"] == "create" and r["status"] == "success"]
    assert created
    assert created[0]["count"] == 4
    skipped = [r for r in summary if r["status"] == "skipped"]
    assert skipped
    assert all(r["reason"] for r in skipped)

    failures = bench.run(lambda s: read_logs(s, links, status="failure"))
    assert failures.entries == []


def test_incremental_log_audit_reads_only_what_is_new(tmp_path: Path) -> None:
    bench = _applied(tmp_path)
    bench.emulator.run_cycles()
    links = bench.desired().links
    marks = Watermarks(tmp_path / ".ctsync" / "logs-watermark.json")
    first = bench.run(lambda s: read_logs(s, links, watermarks=marks))
    marks.save()
    assert first.entries
    again = bench.run(lambda s: read_logs(s, links, watermarks=Watermarks(marks.path)))
    assert again.entries == []
    # A change in the source shows up, alone, in the next incremental read.
    contoso = bench.emulator.tenant("contoso")
    megan = next(u for u in contoso.users.values() if u["mailNickname"] == "megan")
    megan["jobTitle"] = "VP Marketing"
    bench.emulator.clock.advance(41 * 60)
    later = bench.run(lambda s: read_logs(s, links, watermarks=Watermarks(marks.path)))
    assert {e.source_user for e in later.entries} == {"megan@contoso.com"}
    assert {e.action for e in later.entries} == {"update"}


@pytest.mark.parametrize("shape", ["cts", "reference"])
def test_provision_on_demand_explains_each_outcome(tmp_path: Path, shape: str) -> None:
    bench = _applied(tmp_path)
    bench.emulator.provisioning.on_demand_shape = shape
    link = bench.desired().links[0]
    results = bench.run(
        lambda s: provision_users(
            s, link, ["adele@contoso.com", "isaiah@contoso.com", "nobody@contoso.com"]
        )
    )
    adele, isaiah, nobody = results
    assert adele.status.lower() == "success"
    assert adele.ok
    assert [s.kind.lower() for s in adele.steps][:2] == ["import", "scoping"]
    assert isaiah.status.lower() == "skipped"
    assert isaiah.reason == "SmsSignInEnabled"
    assert isaiah.explanation is not None
    assert "skipped: SMS sign-in is enabled" in isaiah.explanation
    assert nobody.error is not None
    assert not nobody.ok
    assert "Adele Vance" in _target_users(bench)


def test_on_demand_lists_are_paced_to_five_per_ten_seconds(tmp_path: Path) -> None:
    bench = _applied(tmp_path)
    link = bench.desired().links[0]
    users = ["adele@contoso.com", "alex@contoso.com", "megan@contoso.com", "diego@contoso.com"]
    results = bench.run(lambda s: provision_users(s, link, users * 3))
    assert len(results) == 12
    assert all(r.ok for r in results)
    assert bench.emulator.traffic.stats()["throttled_429_total"] == 0
    # 12 calls at 5 per 10 s (95 % headroom) cannot finish in under ~14 s of simulated time.
    assert bench.clock.monotonic() > 13


def test_pause_start_restart(tmp_path: Path) -> None:
    bench = _applied(tmp_path)
    links = bench.desired().links
    paused = bench.run(lambda s: control_jobs(s, links, "pause"))[0]
    assert paused.after == {"schedule": "Paused", "status": "Paused"}
    started = bench.run(lambda s: control_jobs(s, links, "start"))[0]
    assert started.after["schedule"] == "Active"
    restarted = bench.run(lambda s: control_jobs(s, links, "restart", reset=["full"]))[0]
    assert restarted.action == "restart (Watermark, Escrows, QuarantineState)"


def test_quarantine_is_reported_with_its_remedy(tmp_path: Path) -> None:
    bench = _applied(tmp_path)
    contoso, fabrikam = bench.emulator.tenant("contoso"), bench.emulator.tenant("fabrikam")
    # Someone turns automatic redemption off in the target.
    fabrikam.access_policy.partners[contoso.id]["automaticUserConsentSettings"] = {
        "inboundAllowed": False,
        "outboundAllowed": None,
    }
    bench.emulator.run_cycles()
    status = bench.run(lambda s: statuses(s, bench.desired().links))[0]
    assert not status.healthy
    assert status.code == "Quarantine"
    assert status.quarantine is not None
    assert status.quarantine["reason"] == "EncounteredQuarantineException"
    assert "ctsync start" in status.quarantine["remedy"]

    # apply repairs the policy; start clears the quarantine.
    async def repair(session: Session) -> None:
        plan = await make_plan(session.desired, session)
        assert [s.resource for s in plan.steps] == ["partner"]
        assert (await execute(plan, session)).ok
        await control_jobs(session, session.desired.links, "start")

    bench.run(repair)
    bench.emulator.run_cycles()
    assert bench.run(lambda s: statuses(s, bench.desired().links))[0].healthy


def test_status_of_a_link_not_set_up(tmp_path: Path) -> None:
    bench = make_bench(tmp_path, links=[("contoso", "fabrikam")])
    status = bench.run(lambda s: statuses(s, bench.desired().links))[0]
    assert not status.set_up
    assert not status.healthy
    assert "ctsync apply" in status.problems[0]


def test_policy_failure_is_named_in_status_and_on_demand(tmp_path: Path) -> None:
    bench = _applied(tmp_path)
    contoso, fabrikam = bench.emulator.tenant("contoso"), bench.emulator.tenant("fabrikam")
    fabrikam.access_policy.partners[contoso.id]["automaticUserConsentSettings"] = {
        "inboundAllowed": False,
        "outboundAllowed": None,
    }
    bench.emulator.run_cycles()
    status = bench.run(lambda s: statuses(s, bench.desired().links))[0]
    assert status.quarantine is not None
    assert status.quarantine["error"] == "AzureDirectoryB2BManagementPolicyCheckFailure"
    link = bench.desired().links[0]
    failed = bench.run(lambda s: provision_users(s, link, ["adele@contoso.com"]))[0]
    assert failed.status.lower() == "failure"
    assert not failed.ok
    assert failed.reason == "AzureDirectoryB2BManagementPolicyCheckFailure"
    assert failed.explanation is not None
    assert "automatic redemption" in failed.explanation


def test_log_summary_counts_match_the_emulators_records(tmp_path: Path) -> None:
    bench = _applied(tmp_path)
    bench.emulator.run_cycles()
    links = bench.desired().links
    report = bench.run(lambda s: read_logs(s, links))
    stored = bench.emulator.tenant("contoso").provisioning_log.entries
    assert sum(row["count"] for row in report.summary()) == len(stored) == len(report.entries)
    by_status: dict[str, int] = {}
    for record in stored:
        status = record["provisioningStatusInfo"]["status"]
        by_status[status] = by_status.get(status, 0) + 1
    summed: dict[str, int] = {}
    for row in report.summary():
        summed[row["status"]] = summed.get(row["status"], 0) + row["count"]
    assert summed == by_status


def test_entry_level_errors_are_not_a_failing_link(tmp_path: Path) -> None:
    """A user who collides with an internal target user fails on every cycle; the link keeps
    working for everyone else, so status reports the escrow but does not fail the link."""
    bench = _applied(tmp_path)
    fabrikam = bench.emulator.tenant("fabrikam")
    fabrikam.users["collider"] = {
        **next(iter(fabrikam.users.values())),
        "id": "collider",
        "displayName": "Adele Vance (Fabrikam)",
        "mail": "adele@contoso.com",
        "userPrincipalName": "adele.v@fabrikam.com",
    }
    for _ in range(3):
        bench.emulator.run_cycles()
        bench.emulator.clock.advance(60)
    status = bench.run(lambda s: statuses(s, bench.desired().links))[0]
    assert status.healthy, status.problems
    assert status.last_cycle is not None
    assert status.last_cycle["state"] == "EntryLevelErrors"
    assert status.escrowed >= 1
    assert status.successive_failures == 0


def test_incremental_audit_keeps_entries_written_in_the_marks_second(tmp_path: Path) -> None:
    """Log times have whole seconds: an entry written in the same second as the last one read,
    after the read, must still be read next time — once."""
    bench = _applied(tmp_path)
    bench.emulator.run_cycles()
    links = bench.desired().links
    marks = Watermarks(tmp_path / ".ctsync" / "logs-watermark.json")
    first = bench.run(lambda s: read_logs(s, links, watermarks=marks))
    marks.save()
    store = bench.emulator.tenant("contoso").provisioning_log.entries
    newest = max(store, key=lambda r: r["activityDateTime"])
    late = {**newest, "id": "late-in-the-same-second", "changeId": "late"}
    store.append(late)
    later = bench.run(lambda s: read_logs(s, links, watermarks=marks))
    marks.save()
    assert [e.id for e in later.entries] == ["late-in-the-same-second"]
    assert first.entries
    again = bench.run(lambda s: read_logs(s, links, watermarks=Watermarks(marks.path)))
    assert again.entries == []


def test_status_of_many_links_reads_each_source_tenant_once(tmp_path: Path) -> None:
    bench = make_bench(tmp_path, links=[("contoso", "fabrikam"), ("contoso", "tailspin")])

    async def apply_one(session: Session) -> None:
        plan = await make_plan(session.desired, session, links=["contoso:fabrikam"])
        assert (await execute(plan, session)).ok

    bench.run(apply_one)
    before = bench.emulator.stats["requests"]
    items = bench.run(lambda s: statuses(s, bench.desired().links))
    by_link = {i.link: i for i in items}
    assert by_link["contoso:fabrikam"].set_up
    assert by_link["contoso:fabrikam"].healthy
    assert not by_link["contoso:tailspin"].set_up
    assert "ctsync apply" in by_link["contoso:tailspin"].problems[0]
    # One paged list of the managed apps and one $batch of their jobs: not two GETs per link.
    assert bench.emulator.stats["requests"] - before == 2


def test_page_size_sets_how_many_entries_each_request_reads(tmp_path: Path) -> None:
    bench = _applied(tmp_path)
    bench.emulator.run_cycles()
    links = bench.desired().links
    small = bench.run(lambda s: read_logs(s, links, page_size=5))
    whole = bench.run(lambda s: read_logs(s, links))
    assert [e.id for e in small.entries] == [e.id for e in whole.entries]
    assert small.pages["contoso:fabrikam"] == -(-len(whole.entries) // 5)
    assert whole.pages["contoso:fabrikam"] == 1
