"""The per-control lines at the end of a run: how many controls, which fail, where the results are."""

from __future__ import annotations

import pytest

from conformance.plugin.state import STATE
from conformance.report import matrices, outcomes
from conformance.report.document import RUN_TIERS


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    state = config.stash.get(STATE, None)
    if state is None or not state.results:
        return
    by_control: dict[str, dict[str, str]] = {}
    rank = {"passed": 0, "skipped": 1, "failed": 2, "error": 3}
    for result in state.results:
        tiers = by_control.setdefault(result["control"], {})
        previous = tiers.get(result["tier"])
        if previous is None or rank[result["outcome"]] > rank[previous]:
            tiers[result["tier"]] = result["outcome"]
    failed = sorted(c for c, tiers in by_control.items() if set(tiers.values()) & {"failed", "error"})
    # A control whose checks had nothing to look at (or could not run) has not passed: name it.
    unproven = sorted(c for c, tiers in by_control.items() if c not in failed and "skipped" in tiers.values())
    # Judged as the report judges this run alone, so the footer and the report cannot disagree: a run of
    # some controls (--controls) leaves the others not run, which is INCOMPLETE, not PASS.
    scope = sorted({*RUN_TIERS.get(state.run, []), *(r["tier"] for r in state.results)})
    rows = outcomes.control_rows(state.results, scope)
    verdict, _ = outcomes.verdict(rows, [matrices.summarise({**m, "run": state.run}) for m in state.matrices])
    level = "live" if "live" in scope else "static"
    terminalreporter.section("controls")
    terminalreporter.write_line(f"{len(by_control)} controls checked, {len(failed)} failing"
                                + (f": {', '.join(failed)}" if failed else "")
                                + (f"; {len(unproven)} not passed, skipped: {', '.join(unproven)}" if unproven else ""))
    terminalreporter.write_line(f"this run: {outcomes.headline(verdict, outcomes.coverage(state.results), level)} "
                                "(the verdict is the report's: `nox -s report`)")
    terminalreporter.write_line(f"results: {state.report_dir / f'results-{state.run}.json'}")
