"""What a run checks: every overlay (or the ones named), or rendered files; each check per input.

An input answers for every control unless fixtures/expectations/inputs.yaml scopes it (base/
answers only for what it defines). Bad input ends the run with one line before any check runs.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from conformance import fixtures
from conformance.errors import ConformanceError
from conformance.paths import CHECKS, OVERLAYS, REPO
from conformance.plugin.state import STATE, control_of
from conformance.static.manifests import Bundle, discover_overlays, load_file, load_overlay


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


def load_bundles(config: pytest.Config, strict: bool = False) -> list[Bundle]:
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


def targets_checks(config: pytest.Config) -> bool:
    """Whether this pytest run runs the conformance checks (and not only the suite's unit tests)."""
    if config.getoption("manifests") or config.getoption("overlay"):
        return True
    for arg in config.args:
        path = Path(arg.split("::")[0]).resolve()
        if path == CHECKS or CHECKS in path.parents or path in CHECKS.parents:
            return True
    return False


def pytest_sessionstart(session: pytest.Session) -> None:
    # Bad input ends the run here with one line ("ERROR: ...") instead of one error per module.
    if targets_checks(session.config):
        try:
            load_bundles(session.config, strict=True)
        except ConformanceError as exc:
            raise pytest.UsageError(str(exc)) from None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "bundle" in metafunc.fixturenames:
        control = control_of(metafunc.definition)
        bundles = [b for b in load_bundles(metafunc.config)
                   if (scope := _scope(b)) is None or control in scope]
        metafunc.parametrize("bundle", bundles, ids=[b.name for b in bundles], scope="session")
