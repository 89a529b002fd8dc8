"""Sessions of cortex-conformance. `nox` alone runs lint, static and tests; options after `--`."""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from pathlib import Path
from typing import NoReturn

import nox
import nox.command
from nox.logger import logger

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_venv = "yes"
nox.options.error_on_missing_interpreters = True

ROOT = Path(__file__).parent
PYPROJECT = nox.project.load_toml(ROOT / "pyproject.toml")
REPORTS = ROOT / "build" / "reports"


def _install(session: nox.Session, group: str) -> None:
    """Install a dependency group, skipping the work when the venv already holds exactly it.

    Packages are installed with their bytecode compiled: machines that set PYTHONDONTWRITEBYTECODE
    would otherwise compile pytest and every dependency again on each start (seconds per run).
    """
    requirements = nox.project.dependency_groups(PYPROJECT, group)
    digest = hashlib.sha256("\n".join(["bytecode", *sorted(requirements)]).encode()).hexdigest()
    marker = Path(session.virtualenv.location) / ".cortex-inputs"
    if marker.exists() and marker.read_text() == digest:
        return
    session.install(*requirements, env={"UV_COMPILE_BYTECODE": "1"})
    marker.write_text(digest)


def _compile(session: nox.Session) -> None:
    """Bytecode for the suite's own modules, for the same reason (a no-op when it is up to date)."""
    session.run("python", "-m", "compileall", "-q", "conformance", silent=True)


def _pytest(session: nox.Session, *args: str) -> None:
    session.run("python", "-m", "pytest", *args, *session.posargs)


def _exit(code: int, message: str) -> NoReturn:
    """End the nox run with `code`, the exit status the README documents for this session.

    nox turns every failed session into exit 1, session.error included. A session that raises
    SystemExit is not caught by nox (it catches Exception only), so nox's own exit status becomes
    `code`. Sessions queued after this one in the same nox run do not run, and nox prints no summary
    for the run, hence the line logged here.
    """
    logger.error(message)
    raise SystemExit(code)


def _schemas(session: nox.Session) -> None:
    session.run("python", "-m", "conformance.downloads", "schemas", silent=True)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff, yamllint, and the manifest conventions (every overlay builds, no copies, key order)."""
    _install(session, "lint")
    session.run("ruff", "check", ".")
    session.run("yamllint", "-s", ".")
    session.run("python", "-m", "conformance.static.conventions")


@nox.session
def static(session: nox.Session) -> None:
    """Schema and static conformance checks on every overlay, or on `-- --manifests FILE`."""
    _install(session, "static")
    _schemas(session)
    _compile(session)
    try:
        _pytest(session, "conformance/checks", "-m", "static", "--run-name", "static")
    except nox.command.CommandFailed as exc:
        # pytest's usage error: bad input (the plugin's one `ERROR:` line) or a misspelt option.
        if exc.return_code == 4:
            _exit(4, "Session static: bad input, see the ERROR: line above (exit 4)")
        raise


def _go_available() -> bool:
    """Go as conformance.images.gobuild finds it: on PATH, or where the official tarball puts it."""
    return shutil.which("go") is not None or Path("/usr/local/go/bin/go").is_file()


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


# Stages the unit tests render or run with, all built from the Go module proxy with no Docker:
# istio-charts (helm at the version istio's go.mod requires, and the pinned module's charts) and
# jaeger (the trace collector binary; about 25 minutes cold on 2 cores, so locally only in CI and
# otherwise listed as a skip CI would refuse). A name this checkout does not register is left out;
# the tests that need it then skip, which CI refuses. `python -m conformance.images` would start
# the private dockerd first (root, docker.io), which no unit test needs, hence stage.run.
_UNIT_TEST_STAGES = {"istio-charts": "always", "jaeger": "ci"}
_BUILD_STAGE = ("import sys; from conformance.errors import run_cli; from conformance.images import stage; "
                "names = [n for n in sys.argv[1:] if n in stage.REGISTRY]; "
                "sys.exit(run_cli(lambda: stage.run(names, progress=print), failure=1))")


def _unit_test_stages(session: nox.Session) -> None:
    """Build, or reuse from the cache, what the Istio chart and the collector tests need."""
    for name, when in _UNIT_TEST_STAGES.items():
        if when == "ci" and not _in_ci():
            continue
        try:
            session.run("python", "-c", _BUILD_STAGE, name)
        except nox.command.CommandFailed:
            # The tests that need it skip and say why; with CI=true those skips fail the run.
            session.warn(f"the {name} stage did not build (the error: line above; its log is logs/{name}.log "
                         "in the suite's cache): the tests that need it will skip")


@nox.session
def tests(session: nox.Session) -> None:
    """Unit tests of the suite itself, against real kustomize, OpenBao, Envoy, Go, helm and the Istio charts."""
    _install(session, "test")
    _schemas(session)
    if _go_available():
        _unit_test_stages(session)
    else:
        session.warn("go is not installed: the stand-in, Go build, Istio chart and collector tests will skip")
    REPORTS.mkdir(parents=True, exist_ok=True)
    # Test files after `--` (`nox -s tests -- tests/test_istio_waits.py`) replace the whole of tests/.
    named = any(not a.startswith("-") and (ROOT / a.split("::")[0]).exists() for a in session.posargs)
    _pytest(session, *([] if named else ["tests"]), f"--junitxml={REPORTS / 'junit-tests.xml'}")


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """Static tier beside Checkov (render, schemas, every check); `-- --live` times each live phase and family."""
    # The live group holds the static one, so both halves share one venv.
    _install(session, "live")
    _schemas(session)
    _compile(session)
    if "--live" in session.posargs:
        session.run("python", "-m", "conformance.live.bench", *[a for a in session.posargs if a != "--live"])
        return
    checkov_venv = Path(session.virtualenv.location).with_name("bench-checkov")
    checkov = checkov_venv / "bin" / "checkov"
    if not checkov.exists():
        session.run("uv", "venv", "-q", str(checkov_venv), external=True)
        session.run("uv", "pip", "install", "-q", "--python", str(checkov_venv / "bin" / "python"),
                    *nox.project.dependency_groups(PYPROJECT, "checkov"), external=True)
    session.run("python", "-m", "conformance.static.bench", "--checkov", str(checkov), *session.posargs)


# `python -m conformance.report` exits with its verdict: 0 PASS at the level required (or an INCOMPLETE
# accepted with --accept-incomplete), 1 FAIL, 3 INCOMPLETE, 4 a PASS short of the level required (say,
# no fault catalogue for a sign-off); 2 is bad input, never a verdict.
_REPORT_VERDICTS = {1: "FAIL", 3: "INCOMPLETE", 4: "a PASS short of the level required"}
_REPORT_BAD_INPUT = 2


def _report(session: nox.Session, *args: str) -> int:
    """Build the report and return its exit code: a verdict, or 2 when no report was written."""
    try:
        session.run("python", "-m", "conformance.report", *args)
    except nox.command.CommandFailed as exc:
        if exc.return_code not in _REPORT_VERDICTS:
            session.warn("no report was written: see the `error:` line above")
            return _REPORT_BAD_INPUT
        return exc.return_code
    return 0


# The report is the standard library only, so its venv stays empty: it exists so that `python` is the
# interpreter nox runs on, even where the system has no `python` (stock Debian and Ubuntu).
@nox.session(default=False)
def report(session: nox.Session) -> None:
    """Build report.html, report.md and report.json from -- --report-dir DIR; exits with the verdict (README)."""
    code = _report(session, *session.posargs)
    if code == _REPORT_BAD_INPUT:
        _exit(code, "Session report: bad input, no report was written (exit 2)")
    if code:
        _exit(code, f"Session report: the verdict is {_REPORT_VERDICTS[code]} (exit {code}): see the reasons "
                    "under it in report.html" + ("; `-- --accept-incomplete` accepts INCOMPLETE" if code == 3 else ""))


def _report_dir(posargs: list[str]) -> str:
    for i, arg in enumerate(posargs):
        if arg == "--report-dir" and i + 1 < len(posargs):
            return posargs[i + 1]
        if arg.startswith("--report-dir="):
            return arg.split("=", 1)[1]
    return str(REPORTS)


def _conformance(session: nox.Session, *extra: str) -> None:
    # --accept-incomplete is the report's option, not pytest's: a user who means to accept an
    # INCOMPLETE verdict (say, --target existing without Vault bootstrap) says so.
    accept = "--accept-incomplete" in session.posargs
    session.posargs[:] = [a for a in session.posargs if a != "--accept-incomplete"]
    _install(session, "live")
    _schemas(session)
    # No Docker check here: the build path installs docker.io and starts its own dockerd (as root), and
    # the pull path's preflight says in one line what is missing; a check here refused both.
    args = ["conformance/checks", "-m", "static or live", "--run-name", "conformance", *extra, *session.posargs]
    failed = None
    try:
        session.run("python", "-m", "pytest", *args)
    except nox.command.CommandFailed as exc:
        failed = exc
    # The report is built from whatever the run recorded, failures included.
    report_dir = _report_dir(session.posargs)
    # The live level is what this session sets out to prove: a faults.json of the same commit left by an
    # earlier `nox -s faults` shows in the report (at most live, not one run with these checks) but does not
    # turn this session's PASS into a failure. One of another commit is still refused (exit 2).
    code = _report(session, "--report-dir", report_dir, "--require", "live",
                   *(["--accept-incomplete"] if accept else []))
    if failed is not None:
        session.error(f"conformance failed (pytest {failed.reason}); the report is {report_dir}/report.html")
    if code == _REPORT_BAD_INPUT:
        session.error("no report was written: see the `error:` line above")
    if code:
        session.error(f"pytest passed but the report's verdict is {_REPORT_VERDICTS[code]} (for example a matrix "
                      f"cell not probed, or a check skipped): see {report_dir}/report.html")


@nox.session(default=False)
def cluster(session: nox.Session) -> None:
    """Create or reuse the kind cluster with Istio, Vault, the collector and metrics-server (kept)."""
    _install(session, "live")
    session.run("python", "-m", "conformance.live.environment", "up", *session.posargs)
    # The unit tests that need a cluster (a stuck pod must end a rollout wait early) run here, where one is.
    kubeconfig = Path(os.environ.get("CORTEX_CONFORMANCE_CACHE", Path.home() / ".cache" / "cortex-conformance"))
    session.run("python", "-m", "pytest", "tests/test_istio_waits.py", "-q", "-p", "no:cacheprovider",
                env={"CORTEX_KUBECONFIG": str(kubeconfig / "clusters" / "cortex-conformance" / "kubeconfig"),
                     "CORTEX_KUBE_CONTEXT": "kind-cortex-conformance"})


@nox.session(default=False)
def conformance(session: nox.Session) -> None:
    """Cluster, the dev overlay with stand-ins, static and live checks, report; -- --keep keeps it."""
    _conformance(session)


@nox.session(default=False)
def hermetic(session: nox.Session) -> None:
    """`conformance -- --images build`: every image built from package registries, nothing pulled."""
    _conformance(session, "--images", "build")


@nox.session(default=False)
def faults(session: nox.Session) -> None:
    """On the reused cluster: baseline, each fault of fixtures/faults.yaml (apply, live checks, undo), baseline."""
    _install(session, "live")
    _schemas(session)
    report_dir = _report_dir(session.posargs)
    try:
        session.run("python", "-m", "conformance.live.faults", *session.posargs)
    except nox.command.CommandFailed as exc:
        if exc.return_code != 1:
            raise
        session.error(f"the live tier could not prove it can fail: see {report_dir}/faults.json")


# The options of the conformance run that the fault catalogue takes too: the same images, nodes and report dir.
_FAULTS_OPTIONS = ("--images", "--nodes", "--kubernetes", "--istio", "--report-dir")


def _forwarded(posargs: list[str], names: tuple[str, ...]) -> list[str]:
    """The `names` options of posargs, with their values (`--name value` or `--name=value`)."""
    out: list[str] = []
    for i, arg in enumerate(posargs):
        if arg.split("=", 1)[0] in names:
            out += [arg] if "=" in arg else posargs[i:i + 2]
    return out


@nox.session(default=False)
def signoff(session: nox.Session) -> None:
    """Conformance, then the whole fault catalogue on the same cluster, then one report: the release verdict."""
    report_dir = Path(_report_dir(session.posargs))
    # Evidence belongs to one run: nothing an earlier run left may join this verdict.
    for stale in [*report_dir.glob("results-*.json"), *report_dir.glob("junit-*.xml"), report_dir / "faults.json"]:
        stale.unlink(missing_ok=True)
    shutil.rmtree(report_dir / "faults", ignore_errors=True)
    _install(session, "live")
    _schemas(session)
    if "--keep" not in session.posargs:
        session.posargs.append("--keep")  # the catalogue runs on the cluster the checks just used
    # One id for the checks and the catalogue: the report signs off only evidence made by one such run.
    env = {"CORTEX_SIGNOFF_RUN": os.environ.get("CORTEX_SIGNOFF_RUN") or uuid.uuid4().hex}
    failed = None
    try:
        session.run("python", "-m", "pytest", "conformance/checks", "-m", "static or live", "--run-name",
                    "conformance", *session.posargs, env=env)
    except nox.command.CommandFailed as exc:
        failed = exc
    try:
        session.run("python", "-m", "conformance.live.faults", *_forwarded(session.posargs, _FAULTS_OPTIONS), env=env)
    except nox.command.CommandFailed as exc:
        failed = failed or exc
    code = _report(session, "--report-dir", str(report_dir), "--require", "signoff")
    if code:
        _exit(code, f"Session signoff: no sign-off, the verdict is {_REPORT_VERDICTS.get(code, 'bad input')} "
                    f"(exit {code}): see {report_dir}/report.html")
    if failed is not None:
        session.error(f"no sign-off: {failed.reason}; see {report_dir}/report.html")


@nox.session(default=False)
def down(session: nox.Session) -> None:
    """Delete the kind cluster the suite created."""
    _install(session, "live")
    session.run("python", "-m", "conformance.live.environment", "down", *session.posargs)


@nox.session(default=False)
def images(session: nox.Session) -> None:
    """Build or reuse every hermetic image stage; `-- --bench` records cold and warm times per stage."""
    _install(session, "live")
    session.run("python", "-m", "conformance.images", *session.posargs)
