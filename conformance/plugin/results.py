"""Each check's outcome, message, objects and evidence, and the results-<run>.json they make.

results-<run>.json, schema_version 1: {schema, schema_version, run, started_at, finished_at,
git {commit, dirty}, inputs [{name, source, sha256, objects}], environment {...},
phases [{name, seconds}], results [{test, control, tier, input, outcome, message, objects,
evidence, duration_s}], matrices [{name, tier, input, cells}]}.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from typing import Any

import pytest

from conformance.paths import REPO
from conformance.plugin.inputs import targets_checks
from conformance.plugin.state import STATE, RunState, control_of, now, tier_of
from conformance.static.gaps import fold
from conformance.static.manifests import Bundle
from conformance.static.rules import NothingToCheck

SCHEMA_VERSION = 1
SIGNOFF_RUN = "CORTEX_SIGNOFF_RUN"
OBJECT_REF = re.compile(r"^([A-Z][A-Za-z]+ [a-z0-9.-]+(?:/[a-z0-9.-]+)?)")


@pytest.fixture(scope="session")
def run_state(request: pytest.FixtureRequest) -> RunState:
    return request.config.stash[STATE]


@pytest.fixture
def evidence(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    """A list the test appends evidence to (command, status, exit_code, headers, note)."""
    items: list[dict[str, Any]] = []
    request.config.stash[STATE].evidence[request.node.nodeid] = items
    return items


@pytest.fixture(scope="session")
def record_matrix(request: pytest.FixtureRequest):
    state = request.config.stash[STATE]

    def record(name: str, tier: str, input_name: str, cells: list[dict[str, Any]]) -> None:
        state.matrices = [m for m in state.matrices
                          if (m["name"], m["tier"], m["input"]) != (name, tier, input_name)]
        state.matrices.append({"name": name, "tier": tier, "input": input_name, "cells": cells})
    return record


def holds(gaps: list[str]) -> None:
    """Fail the current check with its gaps, one per line, without a traceback.

    Gaps alike but for the object are folded in the message ("… and 9,998 more like it"); every
    object still goes to the results file.
    """
    __tracebackhide__ = True
    if gaps:
        failure = pytest.fail.Exception("\n".join(fold(gaps)), pytrace=False)
        failure.gaps = list(gaps)
        raise failure


def _nothing_to_check(item: pytest.Item, call: pytest.CallInfo, report: pytest.TestReport) -> None:
    """A rule that had nothing to look at ends its check as skipped with the reason, never passed."""
    if report.when == "call" and call.excinfo is not None and call.excinfo.errisinstance(NothingToCheck):
        path, line = item.reportinfo()[:2]
        report.outcome = "skipped"
        report.longrepr = (os.fspath(path), (line or 0) + 1, f"Skipped: nothing to check: {call.excinfo.value}")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    _nothing_to_check(item, call, report)
    control = control_of(item)
    if control is None:
        return report
    state = item.config.stash[STATE]
    spent = report.duration
    if report.when == "setup" and state.environment_seconds:
        spent, state.environment_seconds = max(0.0, spent - state.environment_seconds), 0.0
    state.durations[item.nodeid] = state.durations.get(item.nodeid, 0.0) + spent
    tier = tier_of(item)
    if tier:
        state.add_phase(tier, spent)
    recorded = next((r for r in state.results if r["test"] == item.nodeid), None)
    if recorded is not None and report.when == "teardown":
        recorded["duration_s"] = round(state.durations[item.nodeid], 6)
    if report.when == "call" or report.outcome != "passed":
        outcome = report.outcome
        if report.when != "call" and report.failed:
            outcome = "error"
        message = ""
        lines: list[str] = []
        if report.skipped and isinstance(report.longrepr, tuple):
            message = report.longrepr[2].removeprefix("Skipped: ")
        elif report.failed:
            exc = call.excinfo.value if call.excinfo else None
            message = getattr(exc, "msg", None) or (str(exc) if exc else report.longreprtext)
            lines = getattr(exc, "gaps", None) or []
        callspec = getattr(item, "callspec", None)
        bundle = callspec.params.get("bundle") if callspec else None
        state.results = [r for r in state.results if r["test"] != item.nodeid]
        state.results.append({
            "test": item.nodeid,
            "control": control,
            "tier": tier_of(item),
            "input": bundle.name if isinstance(bundle, Bundle) else (bundle or ""),
            "outcome": outcome,
            "message": message,
            "objects": sorted({m.group(1) for line in lines or message.splitlines() if (m := OBJECT_REF.match(line))}),
            "evidence": state.evidence.get(item.nodeid, []),
            "duration_s": round(state.durations[item.nodeid], 6),
        })
    return report


def _git() -> dict[str, Any]:
    def run(*args: str) -> str | None:
        proc = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=False)
        return proc.stdout.strip() if proc.returncode == 0 else None

    commit = run("rev-parse", "HEAD")
    status = run("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def _in_commit(source: str) -> bool:
    """Whether the commit holds the input as checked: tracked in git and unchanged (a --manifests file from
    elsewhere, or an edited overlay, is not what the commit holds)."""
    path = (REPO / source).resolve()
    if REPO not in path.parents and path != REPO:
        return False
    listed = subprocess.run(["git", "ls-files", "--", str(path)], cwd=REPO, capture_output=True, text=True,
                            check=False)
    changed = subprocess.run(["git", "status", "--porcelain", "--", str(path)], cwd=REPO, capture_output=True,
                             text=True, check=False)
    return listed.returncode == 0 and bool(listed.stdout.strip()) and changed.returncode == 0 \
        and not changed.stdout.strip()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = session.config.stash.get(STATE, None)
    if state is None or not state.results or session.config.option.collectonly or not targets_checks(session.config):
        return
    document = {
        "schema": "cortex-conformance/results",
        "schema_version": SCHEMA_VERSION,
        "run": state.run,
        "started_at": state.started_at,
        "finished_at": now(),
        "git": _git(),
        # Set by `nox -s signoff` for the checks and the catalogue alike: what makes them one sign-off run.
        "signoff_run": os.environ.get(SIGNOFF_RUN) or None,
        "inputs": [{"name": b.name, "source": b.source, "sha256": b.sha256, "objects": len(b.objects),
                    "in_commit": _in_commit(b.source)} for b in state.bundles],
        "environment": state.environment,
        "phases": [{"name": name, "seconds": round(seconds, 3)} for name, seconds in state.phases.items()],
        "results": state.results,
        "matrices": state.matrices,
    }
    state.report_dir.mkdir(parents=True, exist_ok=True)
    path = state.report_dir / f"results-{state.run}.json"
    path.write_text(json.dumps(document, indent=1) + "\n")
