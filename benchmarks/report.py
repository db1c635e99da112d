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
            f"{_f(n['sim_seconds_to_start'])} ({calls} calls; "
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
        f"(apply alone: {_x(r['speedup_apply_only'])}; against the 13-call walkthrough "
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
        "| N | hub bucket | ctsync s | naive s | speed-up | reference floor s (binding) "
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
                    _f(n["sim_seconds_to_start"], 1),
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


def tables(results: dict[str, Any]) -> str:
    out: list[str] = []
    if "B1" in results:
        out += ["### B1", "", b1_table(results["B1"]), ""]
    if "B2" in results:
        out += ["### B2", "", b2_table(results["B2"]), ""]
    if "B5" in results:
        out += ["### B5", "", b5_table(results["B5"]), ""]
    for name in ("B1", "B2", "B5"):
        if name not in results:
            continue
        out += [f"#### {name} targets", ""]
        rows = results[name].get("rows") or [results[name]]
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
