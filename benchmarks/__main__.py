"""``python -m benchmarks [--quick] [B1 B2 B3 B4 B5 B6 P1 P5]``: run the benchmarks, print the
tables.

A full run (all of them, not ``--quick``) writes ``benchmarks/results.json`` and every figure of
``benchmarks/README.md`` (between its ``results`` and ``summary`` markers); other runs only print,
unless ``--json PATH`` is given.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from . import b1, b2, b3, b4, b5, b6, cycle, process
from .report import environment, summary, tables

HERE = Path(__file__).resolve().parent
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"
SUMMARY_BEGIN, SUMMARY_END = "<!-- summary:begin -->", "<!-- summary:end -->"
ALL = ("B1", "B2", "B3", "B4", "B5", "B6", "P1", "P5", "C1")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"{', '.join(ALL)} (default: all)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small sizes: B2 at N = 10 and 100, B4 with 10^4 entries (P = 500 only), "
        "B5 at N = 100, B6 with 200 users per job",
    )
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    args = parser.parse_args(argv)
    chosen = [n.upper() for n in args.names] or list(ALL)
    unknown = sorted(set(chosen) - set(ALL))
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)} (choose from {', '.join(ALL)})")

    b2_sizes = [10, 100] if args.quick else [100, 1000]
    # (T, M_total, page sizes): P = 1,000 only at T = 1 (at T = 50 it is two pages a tenant).
    b4_cases: list[tuple[int, int, list[int]]] = (
        [(1, 10_000, [500]), (50, 10_000, [500])]
        if args.quick
        else [(1, 100_000, [500, 1000]), (50, 100_000, [500])]
    )
    b5_size = 100 if args.quick else 1000
    b3_size = 10 if args.quick else 50
    b6_users = 200 if args.quick else 1000
    results: dict[str, Any] = {"environment": environment(), "quick": args.quick}
    began = time.perf_counter()
    for name in chosen:
        start = time.perf_counter()
        print(f"running {name} ...", flush=True)
        if name == "B1":
            results["B1"] = b1.run()
        elif name == "B2":
            results["B2"] = b2.run(b2_sizes)
        elif name == "B3":
            results["B3"] = b3.run(b3_size)
        elif name == "B4":
            results["B4"] = b4.run(b4_cases)
        elif name == "B5":
            results["B5"] = b5.run(b5_size)
        elif name == "B6":
            results["B6"] = b6.run(b6_users)
        elif name == "P1":
            results["P1"] = process.run_p1()
        elif name == "P5":
            results["P5"] = process.run_p5(b5_size)
        else:
            results["C1"] = run_c1(args.quick)
        results[name]["wall_seconds_benchmark"] = time.perf_counter() - start
    results["wall_seconds_total"] = time.perf_counter() - began

    text = tables(results)
    print()
    print(text)
    print(f"total wall time {results['wall_seconds_total']:.1f} s")

    full = not args.quick and set(chosen) == set(ALL)
    payload = json.dumps(results, indent=2, sort_keys=True, default=str) + "\n"
    if args.json:
        args.json.write_text(payload)
    if full:
        (HERE / "results.json").write_text(payload)
        _update_readme(HERE / "README.md", results, text)
    return 0


def run_c1(quick: bool) -> dict[str, Any]:
    """C1: the emulator's engine as a served process — a large initial cycle, and the
    per-request overhead as jobs grow (``cycle.py``)."""
    users = 10_000 if quick else 100_000
    jobs = [1, 10, 100] if quick else [1, 100, 1_000]
    result = cycle.measure_cycle(users)
    overhead = cycle.measure_request_overhead(jobs)
    reads = [row["read_server_cpu_ms"] for row in overhead.values()]
    flat = max(reads) <= 2 * min(reads) + 0.5
    return {
        "benchmark": "C1",
        "cycle": result,
        "overhead": overhead,
        "targets": {
            f"initial cycle of {users:,} users <= {cycle.CYCLE_SECONDS_TARGET:.0f} s": {
                "value": result["cycle_wall_seconds"],
                "met": result["cycle_wall_seconds"] <= cycle.CYCLE_SECONDS_TARGET,
            },
            f"server peak RSS <= {cycle.CYCLE_RSS_MB_TARGET:.0f} MB": {
                "value": result["server_peak_rss_mb"],
                "met": result["server_peak_rss_mb"] <= cycle.CYCLE_RSS_MB_TARGET,
            },
            "each user planned once": {
                "value": result["users_planned"],
                "met": result["users_planned"] <= result["users"],
            },
            f"per-request server CPU flat from {jobs[0]:,} to {jobs[-1]:,} jobs (ms)": {
                "value": max(reads),
                "met": flat,
            },
        },
    }


def _update_readme(path: Path, results: dict[str, Any], text: str) -> None:
    """Replace the figures between the markers; the prose around them is kept."""
    env = results["environment"]
    block = "\n".join(
        [
            BEGIN,
            f"Last full run: {env['date']}, commit `{env['commit']}`, Python {env['python']}, "
            f"{env['platform']}, {env['cpus']} CPUs; total wall time "
            f"{results['wall_seconds_total']:.0f} s. Raw figures: `results.json`.",
            "",
            text.rstrip(),
            END,
        ]
    )
    current = path.read_text() if path.exists() else f"# ctsync benchmarks\n\n{BEGIN}\n{END}\n"
    current = _replace(current, BEGIN, END, block)
    table = "\n".join(
        [
            SUMMARY_BEGIN,
            f"From the last full run ({env['date']}, commit `{env['commit']}`):",
            "",
            summary(results),
            SUMMARY_END,
        ]
    )
    current = _replace(current, SUMMARY_BEGIN, SUMMARY_END, table)
    path.write_text(current)


def _replace(text: str, begin: str, end: str, block: str) -> str:
    """``text`` with what lies between ``begin`` and ``end`` (markers included) replaced by
    ``block``; appended when the markers are missing."""
    if begin in text and end in text:
        head, _, rest = text.partition(begin)
        _, _, tail = rest.partition(end)
        return head + block + tail
    return text.rstrip() + "\n\n" + block + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
