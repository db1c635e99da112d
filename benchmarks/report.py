"""Rows for results.json, and the markdown tables of benchmarks/README.md."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctsync.engine import ExecuteOptions
from ctsync.graph import Pacer

from .common import Census, ToolRun, emulator_counts

if TYPE_CHECKING:
    from .naive import NaiveResult
    from .world import World

__all__ = ["environment", "naive_row", "tables", "tool_row"]


def tool_row(run: ToolRun, census: Census) -> dict[str, Any]:
    return {
        "sim_seconds": run.seconds,
        "plan_seconds": run.plan_seconds,
        "apply_seconds": run.apply_seconds,
        "wall_seconds": run.wall_seconds,
        "ok": run.ok,
        "failed": run.failed,
        "plan_steps": run.steps,
        "http_requests_client": run.client.get("attempts", 0),
        "http_requests_emulator": run.emulator.requests,
        "batch_subrequests": run.client.get("batch_items", 0),
        "throttled_429_received": run.client.get("throttled", 0),
        "throttled_429_emulator": run.emulator.throttled_429,
        "retries": run.client.get("retries", 0),
        "early_retries": run.emulator.early_retries,
        "requests_while_blocked": run.emulator.requests_while_blocked,
        "token_fetches": run.client.get("token_fetches", 0),
        "pacer_waited_seconds": run.pacer_waited,
        "hub": run.hub.as_dict(),
        "hub_ops": dict(sorted(run.hub.ops.items())),
        "spokes": run.spokes.as_dict(),
        "census": census.as_dict(),
    }


def naive_row(naive: NaiveResult, census: Census, world: World) -> dict[str, Any]:
    counts = emulator_counts(world)
    hub = world.meter.tenant(world.hub_id)
    return {
        "sim_seconds_to_start": naive.to_start,
        "sim_seconds_same_work": naive.same_work,
        "sim_seconds_on_demand": naive.on_demand,
        "sim_seconds_total": naive.total,
        "wall_seconds": naive.wall,
        "calls_per_link": naive.calls_per_link,
        "calls_to_start_per_link": naive.calls_to_start_per_link,
        "skipped_501": naive.skipped,
        "http_requests_client": naive.client_stats.get("attempts", 0),
        "http_requests_emulator": counts.requests,
        "throttled_429_received": naive.client_stats.get("throttled", 0),
        "early_retries": counts.early_retries,
        "requests_while_blocked": counts.requests_while_blocked,
        "token_fetches": naive.token_fetches,
        "hub": hub.as_dict(),
        "spokes": world.meter.total(exclude=world.hub_id).as_dict(),
        "census": census.as_dict(),
    }


def environment() -> dict[str, Any]:
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    except OSError:
        commit = ""
    options = ExecuteOptions()
    pacer = Pacer()
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "commit": commit or "unknown",
        "python": sys.version.split()[0],
        "platform": f"{platform.system()} {platform.machine()}",
        "cpus": os.cpu_count(),
        "latency_ms": 100,
        "quotas": "documented (graph-limits §1), token-bucket mode",
        "hub_size_class": "S (1 user; emulator and pacer agree)",
        "pacer_headroom": pacer.headroom,
        "execute_concurrency": options.concurrency,
        "execute_per_tenant": options.per_tenant,
    }


def _f(value: float, digits: int = 2) -> str:
    return f"{value:,.{digits}f}"


def _x(value: float) -> str:
    return f"{value:,.2f}×"


def _met(target: dict[str, Any]) -> str:
    return "**met**" if target["met"] else "**not met**"


def b1_table(r: dict[str, Any]) -> str:
    t, n = r["tool"], r["naive"]
    d = r["depth_round_trips"]
    fp, fr = r["floor_plan"], r["floor_reference"]
    calls = n["calls_to_start_per_link"]
    rows = [
        ("", "ctsync (plan + apply)", "naive walkthrough"),
        ("---", "---", "---"),
        (
            "simulated s, first call → start accepted",
            f"{_f(t['sim_seconds'])} (read+plan {_f(t['plan_seconds'])}, "
            f"apply {_f(t['apply_seconds'])})",
            f"{_f(n['sim_seconds_same_work'])} doing ctsync's work ({calls} calls; "
            f"{_f(n['sim_seconds_to_start'])} with provision on demand, "
            f"{_f(n['sim_seconds_total'])} with the S11 poll)",
        ),
        ("wall s", _f(t["wall_seconds"], 3), _f(n["wall_seconds"], 3)),
        (
            "HTTP requests (client / emulator)",
            f"{t['http_requests_client']} / {t['http_requests_emulator']}",
            f"{n['http_requests_client']} / {n['http_requests_emulator']}",
        ),
        ("$batch sub-requests", str(t["batch_subrequests"]), "0"),
        ("hub writes", str(t["hub"]["writes"]), str(n["hub"]["writes"])),
        (
            "429 received / early retries / sent while blocked",
            f"{t['throttled_429_received']} / {t['early_retries']} / {t['requests_while_blocked']}",
            f"{n['throttled_429_received']} / {n['early_retries']} / {n['requests_while_blocked']}",
        ),
        (
            "objects per link: complete / duplicates",
            f"{t['census']['complete']} / {t['census']['duplicates']}",
            f"{n['census']['complete']} / {n['census']['duplicates']}",
        ),
        ("token acquisitions (in-process, 0 s)", str(t["token_fetches"]), str(n["token_fetches"])),
    ]
    table = "\n".join("| " + " | ".join(row) + " |" for row in rows)
    per_step = ", ".join(f"{k} {v:g}" for k, v in d["per_step"].items())
    summary = [
        "",
        f"- Speed-up T_naive / T_ctsync: **{_x(r['speedup'])}** "
        f"(apply alone: {_x(r['speedup_apply_only'])}; against the "
        f"{n['calls_per_link']}-call walkthrough "
        f"incl. the poll: {_x(r['speedup_vs_full_walkthrough'])}).",
        f"- Plan floor: D = {d['read']:g} RT read + {d['apply_critical_path']:g} RT on the "
        f"plan's critical path = {d['total']:g} RT → {_f(fp['seconds'])} s; "
        f"efficiency {_f(r['efficiency_plan'])}.",
        f"- Reference floor (§6.2/§9, minimal set, 3 RT): {_f(fr['seconds'])} s; "
        f"efficiency {_f(r['efficiency_reference'])} "
        f"(ctsync takes {_x(1 / r['efficiency_reference'])} the floor).",
        f"- Round trips per step (measured): {per_step}.",
    ]
    return table + "\n" + "\n".join(summary)


def b2_table(r: dict[str, Any]) -> str:
    head = (
        "| N | hub bucket | ctsync s | naive s (same work) | speed-up "
        "| reference floor s (binding) "
        "| efficiency (reference) | plan floor s (binding) | efficiency (plan) "
        "| HTTP client / emulator | $batch sub-req. | hub writes / link | 429 | early retries "
        "| sent while blocked | complete / duplicates | wall s ctsync / naive |"
    )
    lines = [head, "|" + "---|" * 17]
    for row in r["rows"]:
        t, n = row["tool"], row["naive"]
        fr, fp = row["floor_reference"], row["floor_plan"]
        lines.append(
            "| "
            + " | ".join(
                [
                    f"{row['links']:,}",
                    row["hub_bucket"],
                    _f(t["sim_seconds"], 1),
                    _f(n["sim_seconds_same_work"], 1),
                    _x(row["speedup"]),
                    f"{_f(fr['seconds'], 1)} ({fr['binding']})",
                    f"**{_f(row['efficiency_reference'])}**",
                    f"{_f(fp['seconds'], 1)} ({fp['binding']})",
                    _f(row["efficiency_plan"]),
                    f"{t['http_requests_client']:,} / {t['http_requests_emulator']:,}",
                    f"{t['batch_subrequests']:,}",
                    _f(row["hub_writes_per_link"], 1),
                    str(t["throttled_429_received"]),
                    str(t["early_retries"]),
                    str(t["requests_while_blocked"]),
                    f"{t['census']['complete']:,} / {t['census']['duplicates']}",
                    f"{_f(t['wall_seconds'], 1)} / {_f(n['wall_seconds'], 1)}",
                ]
            )
            + " |"
        )
    return "\n".join(lines)


def b5_table(r: dict[str, Any]) -> str:
    t, n = r["tool"], r["naive"]
    fp, fr = r["floor_plan"], r["floor_reference"]
    rows = [
        ("", "ctsync (read-only plan)", "naive (5 GETs per link)"),
        ("---", "---", "---"),
        ("links", f"{r['links']:,}", f"{r['links']:,}"),
        ("simulated s", _f(t["sim_seconds"]), _f(n["sim_seconds"], 1)),
        ("wall s", _f(t["wall_seconds"], 1), _f(n["wall_seconds"], 1)),
        ("plan steps (must be 0)", str(t["plan_steps"]), "—"),
        (
            "HTTP requests (client / emulator)",
            f"{t['http_requests_client']:,} / {t['http_requests_emulator']:,}",
            f"{n['http_requests_client']:,} / {n['http_requests_emulator']:,}",
        ),
        ("$batch sub-requests", f"{t['batch_subrequests']:,}", "0"),
        (
            "RU per link (hub + spoke)",
            _f(t["ru_per_link"]),
            _f(n["ru_per_link"]),
        ),
        (
            "429 received / early retries / sent while blocked",
            f"{t['throttled_429_received']} / {t['early_retries']} / {t['requests_while_blocked']}",
            f"{n['throttled_429_received']} / {n['early_retries']} / {n['requests_while_blocked']}",
        ),
    ]
    table = "\n".join("| " + " | ".join(row) + " |" for row in rows)
    summary = [
        "",
        f"- Speed-up: **{_x(r['speedup'])}**.",
        f"- Plan floor (D = {r['depth_round_trips']} RT, {fp['calls']} hub round trips at "
        f"C = {fp['C']:g} batches in flight, hub RU {fp['scopes'][0]['W']:,} vs a "
        f"{fp['scopes'][0]['B_capacity']:,} RU bucket): {_f(fp['seconds'])} s "
        f"({fp['binding']}); efficiency {_f(r['efficiency_plan'])}.",
        f"- Reference floor (3 hub GETs per link in 20-wide batches, C = {fr['C']:g}): "
        f"{_f(fr['seconds'])} s ({fr['binding']}); efficiency {_f(r['efficiency_reference'])}.",
    ]
    return table + "\n" + "\n".join(summary)


def _s(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else _f(value, digits)


def b4_table(r: dict[str, Any]) -> str:
    head = (
        "| T | P | entries | pages / tenant | ctsync s | naive s | speed-up | floor s (binding) "
        "| efficiency | floor + 2-RT job lookup s | efficiency (with lookup) "
        "| ctsync HTTP (reports + identity) | naive HTTP | 429 ctsync / naive "
        "| early retries ctsync / naive | entries read once | wall s ctsync / naive |"
    )
    lines = [head, "|" + "---|" * 17]
    for case in r["cases"]:
        for row in case["rows"]:
            t, n = row["tool"], row["naive"]
            fl, fp = row["floor"], row["floor_with_locate"]
            once = t["entries"] == row["entries"] and t["unique_change_ids"] == row["entries"]
            lines.append(
                "| "
                + " | ".join(
                    [
                        f"{row['tenants']:,}",
                        f"{row['page_size']:,}",
                        f"{row['entries']:,}",
                        f"{row['pages_per_tenant']:,}",
                        _f(t["sim_seconds"], 1),
                        _f(n["sim_seconds"], 1),
                        _x(row["speedup"]),
                        f"{_f(fl['seconds'], 1)} ({row['floor_binding']})",
                        f"**{_f(row['efficiency'])}**",
                        _f(fp["seconds"], 1),
                        _f(row["efficiency_with_locate"]),
                        f"{t['http_requests']:,} ({t['reports_requests']:,} + "
                        f"{t['identity_requests']:,})",
                        f"{n['http_requests']:,}",
                        f"{t['throttled_429']} / {n['throttled_429']}",
                        f"{t['early_retries']} / {n['early_retries']}",
                        f"{t['unique_change_ids']:,} {'✓' if once else '✗'}",
                        f"{_f(t['wall_seconds'], 1)} / {_f(n['wall_seconds'], 1)}",
                    ]
                )
                + " |"
            )
    lines += [
        "",
        "Incremental run (`read_logs` with the full run's watermarks, ~1 % new entries):",
        "",
        "| T | new entries | ctsync s | HTTP (reports + identity) | share of the full run's "
        "HTTP | share of its reports requests | least possible share (1 page per tenant) "
        "| new entries read once |",
        "|" + "---|" * 8,
    ]
    for case in r["cases"]:
        inc = case["incremental"]
        lines.append(
            "| "
            + " | ".join(
                [
                    f"{case['tenants']:,}",
                    f"{inc['new_entries']:,}",
                    _f(inc["sim_seconds"], 1),
                    f"{inc['http_requests']:,} ({inc['reports_requests']:,} + "
                    f"{inc['identity_requests']:,})",
                    f"**{inc['fraction_of_full_http']:.1%}**",
                    f"**{inc['fraction_of_full_reports']:.1%}**",
                    f"{inc['floor_fraction_of_full_reports']:.1%}",
                    f"{inc['entries']:,} {'✓' if inc['all_new_read_once'] else '✗'}",
                ]
            )
            + " |"
        )
    return "\n".join(lines)


def b6_table(r: dict[str, Any]) -> str:
    q = r["quarantine"]
    rows = [
        ("", "measured (emulator clock, s after `ctsync start`)", "floor / reference"),
        ("---", "---", "---"),
        (
            "jobs × in-scope users",
            f"{r['jobs']} × {r['users_per_job']:,} ({r['create_failures_per_job']} per job "
            f"collide with an internal target user; `{r['broken_job']}` has redemption off)",
            "—",
        ),
        (
            "`ctsync start` (10 links) / first cycle due",
            f"{_f(r['start_command_seconds'])} / {_f(r['first_cycle_due_seconds'])}",
            "1 RT (0.1 s) with the job ids known",
        ),
        ("first user in a target", _s(r["first_user_seconds"], 2), "first cycle due"),
        (
            f"95 % of the healthy jobs' users ({r['t95_users']:,} of "
            f"{r['possible_per_healthy_job'] * (r['jobs'] - 1):,} creatable)",
            f"**{_s(r['t95_seconds'])}** (slowest job {_s(r['t95_per_job_max_seconds'])})",
            f"{_f(r['floor_t95_doc'], 1)} (§9: 0.6 s/object); "
            f"{_f(r['floor_t95_doc_create'], 1)} (creates at 2 × 0.6 s); "
            f"{_f(r['expected_t95_engine_model'], 1)} expected from the engine's "
            f"{r['engine_object_seconds'][0]:g}–{r['engine_object_seconds'][1]:g} s/object",
        ),
        (
            "quarantine of the broken job",
            f"{_s(q.get('at'))} ({q.get('reason')})" if q else "never",
            "end of its first cycle",
        ),
    ]
    table = "\n".join("| " + " | ".join(row) + " |" for row in rows)
    poll_head = (
        "| poll interval | polls | detected at s | detection delay s (intervals) "
        "| GETs per poll | GETs per job-hour | RU per hour | share of the hub's RU budget "
        "| 429 | healthy links reported unhealthy |"
    )
    lines = ["", poll_head, "|" + "---|" * 10]
    for p in r["pollers"]:
        delay = p["detection_delay"]
        lines.append(
            "| "
            + " | ".join(
                [
                    f"{p['interval_seconds']:g} s",
                    str(p["polls"]),
                    _s(p["detected_at"]),
                    "never"
                    if delay is None
                    else f"**{_f(delay, 1)}** ({_f(p['detection_delay_in_intervals'])})",
                    _f(p["gets_per_poll"], 0),
                    _f(p["gets_per_job_hour"], 0),
                    _f(p["ru_per_hour"], 0),
                    f"**{p['ru_fraction_of_hub_budget']:.3%}**",
                    str(p["throttled_429"]),
                    f"{p['false_alarms']} (from {_s(p['first_false_alarm_at'], 0)} s)"
                    if p["false_alarms"]
                    else "0",
                ]
            )
            + " |"
        )
    budget = r["hub_ru_budget_per_hour"]
    lines += [
        "",
        f"- Hub RU budget: {budget:,.0f} RU per hour (size class {r['hub_size_class']}, "
        "3,500 RU / 10 s; the emulator and the pacer both budget S).",
        f"- Users created per spoke: {', '.join(str(v) for v in r['created_per_spoke'].values())}.",
    ]
    return table + "\n" + "\n".join(lines)


def _proc(run: dict[str, Any], *, server: bool = True) -> list[str]:
    cells = [_f(run["wall"], 2), _f(run["cpu"], 2), f"{run['peak_rss_mb']:.0f}"]
    if server:
        cells += [_f(run["server_cpu"], 2), f"{run['server_peak_rss_mb']:.0f}"]
    else:
        cells += ["—", "—"]
    return cells


_PROC_HEAD = (
    "| process | wall s | CPU s | peak RSS MB | server CPU s | server peak RSS MB |\n"
    "|---|---|---|---|---|---|"
)


def p1_table(r: dict[str, Any]) -> str:
    rows = [
        ("`ctsync validate` (start-up: imports, config; no network)", r["validate"], False),
        (
            f"`ctsync apply --auto-approve` ({r['requests']['ctsync']} Graph calls)",
            r["apply"],
            True,
        ),
        (f"naive walkthrough script ({r['requests']['naive']} Graph calls)", r["naive"], True),
        ("`ctsync apply` under the served 2 s replication lag", r["apply_with_lag"], True),
    ]
    lines = [_PROC_HEAD]
    for label, run, server in rows:
        lines.append("| " + " | ".join([label, *_proc(run, server=server)]) + " |")
    lines += [
        "",
        f"- At {r['latency_ms']} ms latency, whole processes: naive / ctsync = "
        f"**{_x(r['speedup'])}**.",
    ]
    if r.get("walls"):
        repeats = r.get("repeats", len(r["walls"]["apply"]))
        lines.append(
            f"- Each process ran {repeats} times, interleaved; the table shows each one's "
            "median run. Wall s of every run: "
            + "; ".join(
                f"{name} {', '.join(_f(w, 2) for w in r['walls'][name])}"
                for name in ("validate", "apply", "naive")
            )
            + "."
        )
    return "\n".join(lines)


def p5_table(r: dict[str, Any]) -> str:
    lines = [
        _PROC_HEAD,
        "| "
        + " | ".join(
            [
                f"setup: `ctsync apply` of {r['links']:,} links (0 ms, quotas off)",
                *_proc(r["setup_apply"]),
            ]
        )
        + " |",
        "| "
        + " | ".join(
            [
                f"`ctsync plan` over {r['links']:,} links, nothing to change "
                f"({r['latency_ms']} ms, quotas on; {r['requests']:,} Graph calls)",
                *_proc(r["plan"]),
            ]
        )
        + " |",
        "",
        f"- Client CPU per link: {_f(r['client_cpu_ms_per_link'], 1)} ms.",
    ]
    return "\n".join(lines)


def b3_table(r: dict[str, Any]) -> str:
    faults = r["faults"]
    lines = [
        "| run | simulated s | steps planned | ok | first failures |",
        "|---|---|---|---|---|",
    ]
    for i, run in enumerate(r["runs"], 1):
        first = "; ".join(f.split(": ")[0] for f in run["failed"]) or "—"
        lines.append(
            f"| {i} | {_f(run['seconds'], 1)} | {run['steps']} | {'yes' if run['ok'] else 'no'} "
            f"| {first} |"
        )
    census = r["census"]
    lines += [
        "",
        f"- Faults: {faults['rate_429']:.0%} 429 (Retry-After {faults['retry_after'][0]}–"
        f"{faults['retry_after'][1]} s), {faults['rate_503']:.0%} 503, {faults['rate_500']:.0%} "
        f"500, {faults['rate_drop']:.0%} connections reset after the service acted, "
        f"{faults['replication_lag']:g} s replication lag; N = {r['links']:,} links.",
        f"- Converged in {r['runs_needed']} runs, {_f(r['sim_seconds'], 1)} simulated s "
        f"(fault-free: {_f(r['sim_seconds_fault_free'], 1)} s); then a plan of "
        f"{r['plan_steps_after']} steps.",
        f"- Requests {r['requests']:,}; wasted {r['wasted_requests']:,} "
        f"({r['wasted_share']:.0%}): {r['throttled_429']:,} 429, {r['injected_faults']:,} "
        f"5xx/resets, {r['not_found_404']:,} 404 while objects replicated.",
        f"- Links complete {census['complete']:,} / {r['links']:,}, duplicates "
        f"{census['duplicates']}, early retries {r['early_retries']}.",
    ]
    return "\n".join(lines)


def c1_table(r: dict[str, Any]) -> str:
    c = r["cycle"]
    lines = [
        "| initial cycle | value |",
        "|---|---|",
        f"| users in scope | {c['users']:,.0f} |",
        f"| wall s, `start` to the cycle completed | {_f(c['cycle_wall_seconds'], 1)} |",
        f"| server CPU s over the cycle | {_f(c['cycle_server_cpu_seconds'], 1)} |",
        f"| server peak RSS MB (seed included) | {c['server_peak_rss_mb']:.0f} |",
        f"| the next unrelated request after `start`, ms | {_f(c['next_request_ms'], 1)} |",
        f"| users planned / in the target / escrowed | {c['users_planned']:,.0f} / "
        f"{c['target_users']:,.0f} / {c['escrowed']:,.0f} |",
        "",
        "| jobs | read ms | read server CPU ms | write + read ms | write + read server CPU ms "
        "| jobs visited by reads |",
        "|---|---|---|---|---|---|",
    ]
    for jobs, row in r["overhead"].items():
        lines.append(
            f"| {int(jobs):,} | {_f(row['read_ms'])} | {_f(row['read_server_cpu_ms'])} "
            f"| {_f(row['write_then_read_ms'])} | {_f(row['write_then_read_server_cpu_ms'])} "
            f"| {row['jobs_visited_by_reads']:.0f} |"
        )
    return "\n".join(lines)


def _target_rows(name: str, result: dict[str, Any]) -> list[dict[str, Any]]:
    if name == "B4":
        return list(result["cases"])
    return list(result.get("rows") or [result])


def summary(results: dict[str, Any]) -> str:
    """Every target of every benchmark run, one row each: what the README's summary shows."""
    lines = ["| benchmark | target | result | verdict |", "|---|---|---|---|"]
    for name in ("B1", "B2", "B3", "B4", "B5", "B6", "P1", "P5", "C1"):
        if name not in results:
            continue
        for row in _target_rows(name, results[name]):
            label = (
                f"N = {row['links']:,}, hub bucket {row['hub_bucket']}: "
                if "hub_bucket" in row
                else ""
            )
            for goal, target in row["targets"].items():
                value = target["value"]
                shown = _f(value) if isinstance(value, float) else str(value)
                lines.append(f"| {name} | {label}{goal} | {shown} | {_met(target)} |")
    return "\n".join(lines)


def tables(results: dict[str, Any]) -> str:
    out: list[str] = []
    if "B1" in results:
        out += ["### B1", "", b1_table(results["B1"]), ""]
    if "B2" in results:
        out += ["### B2", "", b2_table(results["B2"]), ""]
    if "B3" in results:
        out += ["### B3", "", b3_table(results["B3"]), ""]
    if "B4" in results:
        out += ["### B4", "", b4_table(results["B4"]), ""]
    if "B5" in results:
        out += ["### B5", "", b5_table(results["B5"]), ""]
    if "B6" in results:
        out += ["### B6", "", b6_table(results["B6"]), ""]
    if "P1" in results:
        out += ["### P1: one link, whole processes", "", p1_table(results["P1"]), ""]
    if "P5" in results:
        out += ["### P5: drift check, whole processes", "", p5_table(results["P5"]), ""]
    if "C1" in results:
        out += ["### C1: the emulator's engine, served", "", c1_table(results["C1"]), ""]
    for name in ("B1", "B2", "B3", "B4", "B5", "B6", "P1", "P5", "C1"):
        if name not in results:
            continue
        out += [f"#### {name} targets", ""]
        rows = _target_rows(name, results[name])
        for row in rows:
            label = (
                f"N = {row['links']:,}, hub bucket {row['hub_bucket']}: "
                if "hub_bucket" in row
                else ""
            )
            for goal, target in row["targets"].items():
                value = target["value"]
                shown = _f(value) if isinstance(value, float) else str(value)
                out.append(f"- {label}{goal}: {shown} → {_met(target)}")
        out.append("")
    return "\n".join(out)
