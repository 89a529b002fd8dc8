"""Sessions of cortex-conformance. `nox` alone runs lint, static and tests; options after `--`."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_venv = "yes"
nox.options.error_on_missing_interpreters = True

ROOT = Path(__file__).parent
PYPROJECT = nox.project.load_toml(ROOT / "pyproject.toml")
REPORTS = ROOT / "build" / "reports"


def _install(session: nox.Session, group: str) -> None:
    """Install a dependency group, skipping the work when the venv already holds exactly it."""
    requirements = nox.project.dependency_groups(PYPROJECT, group)
    digest = hashlib.sha256("\n".join(sorted(requirements)).encode()).hexdigest()
    marker = Path(session.virtualenv.location) / ".cortex-inputs"
    if marker.exists() and marker.read_text() == digest:
        return
    session.install(*requirements)
    marker.write_text(digest)


def _pytest(session: nox.Session, *args: str) -> None:
    session.run("python", "-m", "pytest", *args, *session.posargs)


def _schemas(session: nox.Session) -> None:
    session.run("python", "-m", "conformance.schema", "fetch", silent=True)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff, yamllint, and the manifest conventions (every overlay builds, no copies, key order)."""
    _install(session, "lint")
    session.run("ruff", "check", ".")
    session.run("yamllint", "-s", ".")
    session.run("python", "-m", "conformance.conventions")


@nox.session
def static(session: nox.Session) -> None:
    """Schema and static conformance checks on every overlay, or on `-- --manifests FILE`."""
    _install(session, "static")
    _schemas(session)
    _pytest(session, "conformance/checks", "-m", "static", "--run-name", "static")


@nox.session
def tests(session: nox.Session) -> None:
    """Unit tests of the suite itself, against real kustomize, OpenBao, Envoy and Go."""
    _install(session, "test")
    _schemas(session)
    if shutil.which("go") is None:
        session.warn("go is not on PATH: the stand-in tests will skip")
    _pytest(session, "tests")


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """Time render, schemas and every static check on dev and a 10x bundle, beside Checkov."""
    _install(session, "bench")
    _schemas(session)
    session.run("python", "-m", "conformance.bench", *session.posargs)


@nox.session(default=False, venv_backend="none")
def report(session: nox.Session) -> None:
    """Build report.html, report.md and report.json from the results in -- --report-dir DIR."""
    session.run("python", "-m", "conformance.report", *session.posargs)
