"""What a run checks: every overlay (or the ones named), or rendered files; each check per input.

An input answers for every control unless fixtures/expectations/inputs.yaml scopes it (base/
answers only for what it defines). Bad input ends the run with one line before any check runs; a
large file shows its progress while it loads, and an input without the workload says so first, once.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from conformance import fixtures, progress
from conformance.errors import ConformanceError, InputError
from conformance.paths import CHECKS, OVERLAYS, REPO
from conformance.plugin.state import STATE, control_of
from conformance.static.manifests import Bundle, Loading, discover_overlays, load_file, load_overlay

# Files from this size on take seconds to parse (about 400 Deployments), so their loading is shown.
LARGE_INPUT = 4 << 20


def _overlay_path(name: str) -> Path:
    path = Path(name)
    if not path.exists() and (OVERLAYS / name).exists():
        return OVERLAYS / name
    return path


def _inputs(config: pytest.Config) -> list[tuple[str, Path]]:
    manifests = [Path(p) for p in config.getoption("manifests")]
    if manifests:
        return [("file", p) for p in manifests]
    overlays = config.getoption("overlay")
    if overlays:
        return [("overlay", _overlay_path(o)) for o in overlays]
    scoped = [("overlay", REPO / spec["path"]) for spec in fixtures.expectations("inputs").values()]
    return scoped + [("overlay", p) for p in discover_overlays()]


def _scope(bundle: Bundle) -> set[str] | None:
    """The controls an input answers for; None means all of them."""
    spec = fixtures.expectations("inputs").get(bundle.name)
    if spec is None or Path(bundle.source) != Path(spec["path"]):
        return None
    return set(spec["controls"])


class _Terminal:
    """The progress display's stream: pytest's terminal, past its output capture."""

    def __init__(self, config: pytest.Config) -> None:
        self.writer = config.get_terminal_writer()
        self.capture = config.pluginmanager.getplugin("capturemanager")

    def write(self, text: str) -> None:
        if self.capture is None:
            self.writer.write(text, flush=True)
            return
        with self.capture.global_and_fixture_disabled():
            self.writer.write(text, flush=True)

    def flush(self) -> None:
        """Every write is flushed already."""

    def isatty(self) -> bool:
        return self.writer.hasmarkup


KUSTOMIZATION_NAMES = ("kustomization.yaml", "kustomization.yml", "Kustomization")


def _kustomization_given_as_manifests(path: Path) -> bool:
    """A kustomization file named where rendered manifests belong (its name, or its kind, says so)."""
    if path.name in KUSTOMIZATION_NAMES:
        return True
    try:
        head = path.read_text(encoding="utf-8", errors="replace")[:4096]
    except OSError:
        return False
    return "kustomize.config.k8s.io/" in head and "kind: Kustomization" in head


def _load(config: pytest.Config, kind: str, path: Path) -> Bundle:
    if kind != "file":
        return load_overlay(path)
    # Asked only when a file fails to load, so a good input pays nothing for it.
    try:
        return _load_file(config, path)
    except ConformanceError:
        if path.is_file() and _kustomization_given_as_manifests(path):
            raise InputError(f"{path} is a kustomization, not rendered manifests: use --overlay {path.parent} "
                             f"(or render it first: kubectl kustomize {path.parent})") from None
        if path.name in KUSTOMIZATION_NAMES:
            # Named so, but not here (nox runs from the repository's root): still a kustomization.
            raise InputError(f"--manifests takes rendered manifests, not a {path.name}: use --overlay DIR, the "
                             "directory that holds it (for example --overlay overlays/dev)") from None
        raise


def _load_file(config: pytest.Config, path: Path) -> Bundle:
    size = path.stat().st_size if path.is_file() else 0
    if size < LARGE_INPUT:
        return load_file(path)
    # Parsing a 100 MB bundle takes a minute or more: say what is happening (a heartbeat line every
    # 30 s off a terminal), with how many documents are done.
    display = progress.current() or progress.Progress(stream=_Terminal(config))
    loading = Loading(expected=0)
    with display.step(f"loading {path} ({size / 1e6:,.0f} MB)", detail=lambda: str(loading)):
        return load_file(path, loading)


def load_bundles(config: pytest.Config, strict: bool = False) -> list[Bundle]:
    state = config.stash[STATE]
    if not state.bundles:
        started = time.perf_counter()
        try:
            state.bundles = [_load(config, kind, p) for kind, p in _inputs(config)]
        except ConformanceError as exc:
            if strict:
                raise
            pytest.exit(f"error: {exc}", returncode=2)
        state.add_phase("render", time.perf_counter() - started)
    return state.bundles


def targets_checks(config: pytest.Config) -> bool:
    """Whether this pytest run runs the conformance checks (and not only the suite's unit tests)."""
    if config.getoption("manifests") or config.getoption("overlay"):
        return True
    for arg in config.args:
        path = Path(arg.split("::")[0]).resolve()
        if path == CHECKS or CHECKS in path.parents or path in CHECKS.parents:
            return True
    return False


def _wanted_outside(config: pytest.Config, scope: set[str]) -> list[str]:
    """The selected static controls (all of them without --controls) that lie outside `scope`."""
    from conformance import controls

    wanted = config.getoption("controls")
    chosen = [c.id for c in controls.CATALOGUE if controls.STATIC in c.tiers and (
        not wanted or c.id in wanted.split(",") or c.family in wanted.split(","))]
    return [c for c in chosen if c not in scope]


def uncovered(config: pytest.Config, bundles: list[Bundle]) -> str | None:
    """Why these inputs cannot be judged as asked, in one line naming the fix, or None.

    An input that inputs.yaml scopes (base/) answers for only some controls; given alone, every other
    check would be parametrized over nothing. An overlay whose namespaces the closed-world expectations do
    not describe has nothing to be held to: everything in it would read as unexpected.
    """
    from conformance.static import closed_world

    scopes = [_scope(b) for b in bundles]
    if bundles and all(scope is not None for scope in scopes):
        union = set().union(*scopes)
        outside = _wanted_outside(config, union)
        if outside:
            names = ", ".join(b.source for b in bundles)
            return (f"{names} answers only for the controls fixtures/expectations/inputs.yaml lists for it, not for "
                    f"{', '.join(outside[:4])}{' ...' if len(outside) > 4 else ''}: run `nox -s static` with no "
                    "--overlay (base is checked beside every overlay), add `--overlay dev`, or pick its controls "
                    "with --controls")
    for (kind, _path), bundle, scope in zip(_inputs(config), bundles, scopes, strict=False):
        if kind != "overlay" or scope is not None:
            continue
        missing = closed_world.undescribed(bundle)
        if missing:
            return (f"overlay {bundle.source} governs namespace(s) {', '.join(missing)}, which "
                    f"{closed_world.EXPECTATIONS_FILE} does not describe: list there the objects and fields each may "
                    "hold, or check another overlay")
    return None


def absent_workload(bundles: list[Bundle]) -> list[str]:
    """One line per input that lacks the workload of fixtures/expectations/workload.yaml."""
    name = fixtures.expectations("workload")["name"]
    return [f"{bundle.name}: Deployment {name} is not in the manifests (fixtures/expectations/workload.yaml names "
            "it), so the checks that examine it fail or have nothing to check"
            for bundle in bundles if bundle.get("Deployment", name) is None]


@pytest.hookimpl(trylast=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    # Bad input ends the run here with one line ("ERROR: ...") instead of one error per module.
    if targets_checks(session.config):
        try:
            bundles = load_bundles(session.config, strict=True)
        except ConformanceError as exc:
            raise pytest.UsageError(str(exc)) from None
        problem = uncovered(session.config, bundles)
        if problem is not None:
            raise pytest.UsageError(problem)
        # Said once and first, rather than inferred from twenty failures and silent skips.
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        for line in absent_workload(bundles):
            if reporter is not None:
                reporter.write_line(f"WARNING: {line}", yellow=True, bold=True)
            else:
                print(f"WARNING: {line}", file=sys.stderr)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "bundle" in metafunc.fixturenames:
        control = control_of(metafunc.definition)
        bundles = [b for b in load_bundles(metafunc.config)
                   if (scope := _scope(b)) is None or control in scope]
        metafunc.parametrize("bundle", bundles, ids=[b.name for b in bundles], scope="session")
