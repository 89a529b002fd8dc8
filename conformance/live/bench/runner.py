"""Benchmark of the live tier (`nox -s bench -- --live`): each phase and each family's live time.

Runs the live tier `--runs` times against the reused cluster (the first run creates it if needed),
each as `pytest conformance/checks -m live`, and reads the phases and per-check durations from the
results it records. Writes build/reports/bench-live.json (and keeps the previous one as
bench-live.previous.json) and prints a table beside the previous figures, so the next change can be
compared with this one.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from conformance.paths import REPO, REPORTS


def families(results: dict[str, Any]) -> dict[str, float]:
    """Seconds of live checks per control family (SEC, MTLS, ...), from one results document."""
    out: dict[str, float] = {}
    for result in results.get("results") or []:
        if result.get("tier") == "live":
            family = result["control"].split("-")[0]
            out[family] = out.get(family, 0.0) + float(result.get("duration_s") or 0.0)
    return out


def checks(results: dict[str, Any]) -> dict[str, float]:
    return {r["test"].split("::")[-1]: float(r.get("duration_s") or 0.0)
            for r in results.get("results") or [] if r.get("tier") == "live"}


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over the runs: wall, phases, families, checks; and whether every run passed."""
    def median_of(key: str) -> dict[str, float]:
        names = {n for run in runs for n in run[key]}
        return {n: round(statistics.median(run[key].get(n, 0.0) for run in runs), 1) for n in sorted(names)}

    return {"runs": len(runs), "passed": all(r["passed"] for r in runs),
            "wall_seconds": round(statistics.median(r["wall"] for r in runs), 1),
            "walls": [round(r["wall"], 1) for r in runs],
            "phases": median_of("phases"), "families": median_of("families"), "checks": median_of("checks")}


def one_run(args: argparse.Namespace, index: int) -> dict[str, Any]:
    report_dir = args.report_dir / "bench-live" / f"run-{index}"
    command = [sys.executable, "-m", "pytest", "conformance/checks", "-m", "live", "-q", "-p", "no:cacheprovider",
               "--run-name", "bench", "--report-dir", str(report_dir), *args.pytest_args]
    started = time.monotonic()
    proc = subprocess.run(command, cwd=REPO, check=False)
    wall = time.monotonic() - started
    path = report_dir / "results-bench.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    return {"wall": wall, "passed": proc.returncode == 0,
            "phases": {p["name"]: p["seconds"] for p in results.get("phases") or []},
            "families": families(results), "checks": checks(results)}


def table(now: dict[str, Any], before: dict[str, Any] | None) -> str:
    lines = ["| | before | now |", "|---|---:|---:|"]

    def row(label: str, new: float | None, old: float | None) -> None:
        lines.append(f"| {label} | {'' if old is None else f'{old:.1f} s'} | {'' if new is None else f'{new:.1f} s'} |")

    prev = before or {}
    row("wall (median)", now["wall_seconds"], prev.get("wall_seconds"))
    for key, title in (("phases", "phase"), ("families", "family")):
        for name in sorted(set(now[key]) | set(prev.get(key, {}))):
            row(f"{title} {name}", now[key].get(name), prev.get(key, {}).get(name))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m conformance.live.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="live runs on the reused cluster (median shown)")
    parser.add_argument("--report-dir", type=Path, default=REPORTS)
    parser.add_argument("pytest_args", nargs="*", help="passed on to pytest (e.g. --images build)")
    args = parser.parse_args(argv)
    runs = []
    for index in range(args.runs):
        print(f"bench: live run {index + 1}/{args.runs}", file=sys.stderr, flush=True)
        runs.append(one_run(args, index))
    summary = summarise(runs)
    target = args.report_dir / "bench-live.json"
    previous = json.loads(target.read_text()) if target.exists() else None
    if previous is not None:
        (args.report_dir / "bench-live.previous.json").write_text(json.dumps(previous, indent=1) + "\n")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(summary, indent=1) + "\n")
    print(table(summary, previous))
    print(f"bench: {summary['runs']} run(s), {'all passed' if summary['passed'] else 'NOT ALL PASSED'}; "
          f"walls {summary['walls']} -> {target}")
    return 0 if summary["passed"] else 1
