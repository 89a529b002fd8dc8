"""The GitHub Actions workflows users run on their own forge, checked without a forge.

Each workflow is parsed; every ``nox -s`` it runs must name a session of noxfile.py (read with
ast, never imported); actions are pinned to full version tags; the nightly matrix's node
images are the kind release's own digests. actionlint, where installed, checks the rest:
expressions, contexts, and the shell of every ``run:`` step through shellcheck.
"""

from __future__ import annotations

import ast
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).parents[1]
WORKFLOWS = REPO / ".github" / "workflows"
NOXFILE = REPO / "noxfile.py"
FILES = ("ci.yml", "nightly.yml", "release.yml")
PINNED_ACTION = re.compile(r"^[\w.-]+/[\w./-]+@v\d+\.\d+\.\d+$")
NODE_IMAGE = re.compile(r"^kindest/node:v(\d+\.\d+)\.\d+@sha256:[0-9a-f]{64}$")
# The node images in nightly.yml are the ones published with this kind release.
KIND_OF_NODE_IMAGES = "v0.30.0"


def _load(name: str) -> dict:
    data = yaml.safe_load((WORKFLOWS / name).read_text())
    # YAML 1.1 reads the bare key `on` as the boolean true.
    data["on"] = data.pop(True, data.get("on"))
    return data


def _steps(workflow: dict) -> list[dict]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


def _commands(script: str) -> list[list[str]]:
    """Each shell command line of a run script, as words; continuation lines are joined."""
    lines = script.replace("\\\n", " ").splitlines()
    return [shlex.split(line, comments=True) for line in lines if line.strip()]


def nox_calls(script: str) -> list[tuple[list[str], list[str]]]:
    """(sessions, posargs) of every nox invocation in a run script."""
    calls = []
    for words in _commands(script):
        if "nox" not in words:
            continue
        args = words[words.index("nox") + 1:]
        posargs = args[args.index("--") + 1:] if "--" in args else []
        args = args[:args.index("--")] if "--" in args else args
        sessions, taking = [], False
        for arg in args:
            if arg in ("-s", "--session", "--sessions"):
                taking = True
            elif arg.startswith("-"):
                taking = False
            elif taking:
                sessions.append(arg)
        calls.append((sessions, posargs))
    return calls


def noxfile_sessions(source: str) -> set[str]:
    """Names of the sessions a noxfile defines: functions decorated with nox.session."""
    sessions = set()
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.FunctionDef):
            continue
        for decorator in node.decorator_list:
            target = decorator.func if isinstance(decorator, ast.Call) else decorator
            is_session = (isinstance(target, ast.Attribute) and target.attr == "session"
                          and isinstance(target.value, ast.Name) and target.value.id == "nox") or (
                isinstance(target, ast.Name) and target.id == "session")
            if not is_session:
                continue
            name = node.name
            for keyword in getattr(decorator, "keywords", []):
                if keyword.arg == "name" and isinstance(keyword.value, ast.Constant):
                    name = keyword.value.value
            sessions.add(name)
    return sessions


def _all_nox_calls() -> list[tuple[str, str, list[str]]]:
    return [(name, step.get("name", step["run"][:40]), sessions)
            for name in FILES for step in _steps(_load(name)) if "run" in step
            for sessions, _ in nox_calls(step["run"])]


def _run_steps(workflow: dict, text: str) -> list[dict]:
    return [s for s in _steps(workflow) if text in s.get("run", "")]


# --- the parsing helpers themselves ------------------------------------------------------------------

def test_noxfile_parser_finds_every_decorator_form():
    """Plain, called and renamed @nox.session decorators, and a bare @session, all count."""
    source = (
        "import nox\nfrom nox import session\n"
        "@nox.session\ndef lint(s): ...\n"
        "@nox.session(python=False, default=False)\ndef conformance(s): ...\n"
        "@nox.session(name='hermetic', default=False)\ndef _hermetic(s): ...\n"
        "@session\ndef down(s): ...\n"
        "def _helper(s): ...\n")
    assert noxfile_sessions(source) == {"lint", "conformance", "hermetic", "down"}


def test_nox_call_parser_separates_sessions_and_posargs():
    """Sessions end at the next option or at --; what follows -- is passed on."""
    script = 'echo hi\nnox -s lint static \\\n  tests\nnox --session report -- --report-dir "$D" # why\n'
    assert nox_calls(script) == [(["lint", "static", "tests"], []), (["report"], ["--report-dir", "$D"])]


# --- every workflow ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", FILES)
def test_workflow_is_valid_yaml_with_jobs(name):
    """Each workflow parses, has a name, triggers and at least one job with steps."""
    workflow = _load(name)
    assert workflow["name"]
    assert workflow["on"]
    assert all(job.get("steps") for job in workflow["jobs"].values())


@pytest.mark.parametrize("name", FILES)
def test_actions_are_pinned_to_full_version_tags(name):
    """Every `uses:` names an exact release (vX.Y.Z), never a branch or a moving major tag."""
    unpinned = [s["uses"] for s in _steps(_load(name)) if "uses" in s and not PINNED_ACTION.match(s["uses"])]
    assert unpinned == [], f"{name}: actions not pinned to a full version tag: {unpinned}"


@pytest.mark.parametrize("name", FILES)
def test_every_job_has_a_timeout(name):
    """A hung cluster must not hold a runner for the forge's six-hour default."""
    missing = [job_id for job_id, job in _load(name)["jobs"].items() if "timeout-minutes" not in job]
    assert missing == [], f"{name}: jobs without timeout-minutes: {missing}"


@pytest.mark.parametrize(("workflow", "step", "sessions"), _all_nox_calls(),
                         ids=[f"{w}:{'+'.join(s)}" for w, _, s in _all_nox_calls()])
def test_nox_sessions_exist_in_the_noxfile(workflow, step, sessions):
    """Every session a workflow runs is defined in noxfile.py."""
    assert NOXFILE.is_file(), "noxfile.py is missing, yet the workflows run nox sessions"
    assert sessions, f"{workflow} step {step!r} runs nox without naming a session"
    unknown = sorted(set(sessions) - noxfile_sessions(NOXFILE.read_text()))
    assert unknown == [], f"{workflow} step {step!r} runs sessions noxfile.py lacks: {unknown}"


# --- ci.yml ---------------------------------------------------------------------------------------------

def test_ci_runs_the_fast_tiers_on_push_and_pull_request():
    """ci.yml runs `nox -s lint static tests` on every push and pull request."""
    workflow = _load("ci.yml")
    assert set(workflow["on"]) == {"push", "pull_request"}
    assert next(c for s in _steps(workflow) if "run" in s for c in nox_calls(s["run"])) == (
        ["lint", "static", "tests"], [])


def test_ci_publishes_junit():
    """ci.yml publishes the JUnit files the suite writes, even when tests failed."""
    publish = [s for s in _steps(_load("ci.yml")) if s.get("uses", "").startswith("mikepenz/action-junit-report@")]
    assert len(publish) == 1
    assert publish[0]["with"]["report_paths"].endswith("junit-*.xml")
    assert publish[0]["if"] == "${{ !cancelled() }}"


# --- nightly.yml ---------------------------------------------------------------------------------------

def _nightly_job() -> dict:
    return _load("nightly.yml")["jobs"]["conformance"]


def test_nightly_runs_on_a_schedule():
    """nightly.yml is triggered by a cron schedule (and by hand)."""
    triggers = _load("nightly.yml")["on"]
    assert triggers["schedule"][0]["cron"]
    assert "workflow_dispatch" in triggers


def test_nightly_matrix_covers_three_kubernetes_minors_and_the_pinned_istio():
    """The matrix is the last three Kubernetes minors times every Istio release versions.yaml pins."""
    pins = yaml.safe_load((REPO / "fixtures" / "versions.yaml").read_text())
    matrix = _nightly_job()["strategy"]["matrix"]
    assert matrix["kubernetes"] == ["1.32", "1.33", "1.34"]
    assert matrix["kubernetes"] == sorted(pins["kind"]["node_images"])
    assert matrix["istio"] == [str(pins["istio"]["version"])]
    assert _nightly_job()["strategy"]["fail-fast"] is False


def test_nightly_node_images_are_the_pinned_ones():
    """The matrix's node image per minor is the one fixtures/versions.yaml pins for it."""
    pins = yaml.safe_load((REPO / "fixtures" / "versions.yaml").read_text())
    include = {e["kubernetes"]: e["node_image"] for e in _nightly_job()["strategy"]["matrix"]["include"]}
    assert include == pins["kind"]["node_images"]


def _plugin_options() -> set[str]:
    """Every long option conformance.plugin registers, read by calling its hook with a recorder."""
    from conformance import plugin

    names: set[str] = set()

    class Group:
        def addoption(self, *flags, **_kwargs):
            names.update(flags)

    class Parser:
        def getgroup(self, *_args, **_kwargs):
            return Group()

    plugin.pytest_addoption(Parser())
    return names


def test_workflow_options_exist():
    """Every option a workflow passes after `--` is one the suite accepts (or the report's CLI)."""
    report_options = {"--report-dir", "--html-link", "--compare"}
    known = _plugin_options() | report_options
    for name in FILES:
        for step in _steps(_load(name)):
            for _sessions, posargs in nox_calls(step.get("run", "")):
                flags = {arg for arg in posargs if arg.startswith("--")}
                assert flags <= known, f"{name}: unknown options {sorted(flags - known)}"


def test_nightly_node_images_are_pinned_by_digest_per_minor():
    """Each Kubernetes minor maps to one kindest/node image of that minor, pinned by sha256."""
    include = _nightly_job()["strategy"]["matrix"]["include"]
    minors = {entry["kubernetes"]: NODE_IMAGE.match(entry["node_image"]) for entry in include}
    assert {k: m.group(1) if m else None for k, m in minors.items()} == {
        "1.32": "1.32", "1.33": "1.33", "1.34": "1.34"}


def test_nightly_default_minor_uses_the_pinned_node_image():
    """The 1.34 entry is the node image fixtures/versions.yaml pins, for the kind it pins."""
    pins = yaml.safe_load((REPO / "fixtures" / "versions.yaml").read_text())
    assert pins["kind"]["version"] == KIND_OF_NODE_IMAGES, (
        "kind was re-pinned: refresh the node image digests in nightly.yml from its release notes")
    include = {e["kubernetes"]: e["node_image"] for e in _nightly_job()["strategy"]["matrix"]["include"]}
    assert include["1.34"] == pins["kind"]["node_image"]


def test_nightly_passes_the_matrix_to_nox():
    """The conformance step hands the matrix to the suite as options after --."""
    calls = [c for s in _run_steps(_load("nightly.yml"), "nox -s conformance") for c in nox_calls(s["run"])]
    assert len(calls) == 1
    sessions, posargs = calls[0]
    options = dict(zip(posargs[::2], posargs[1::2], strict=False))
    assert sessions == ["conformance"]
    assert options["--kubernetes"] == "${{ matrix.kubernetes }}"
    assert options["--istio"] == "${{ matrix.istio }}"
    assert posargs[posargs.index("--node-image") + 1] == "${{ matrix.node_image }}"
    assert "--keep" in posargs


def test_nightly_exports_kind_logs_on_failure():
    """On failure the job runs `kind export logs` and uploads them."""
    steps = _steps(_load("nightly.yml"))
    export = [s for s in steps if "kind export logs" in s.get("run", "")]
    assert [s["if"] for s in export] == ["failure()"]
    uploads = [s for s in steps if s.get("uses", "").startswith("actions/upload-artifact@")
               and "kind-logs" in s["with"]["path"]]
    assert [s["if"] for s in uploads] == ["failure()"]


def test_nightly_uploads_the_report_and_writes_the_job_summary():
    """The report directory is an artifact and report.md goes to the job summary, pass or fail."""
    steps = _steps(_load("nightly.yml"))
    summary = [s for s in steps if "GITHUB_STEP_SUMMARY" in s.get("run", "")]
    assert len(summary) == 1
    assert "report.md" in summary[0]["run"]
    upload = [s for s in steps if s.get("uses", "").startswith("actions/upload-artifact@")
              and s["with"]["path"] == "${{ env.REPORT_DIR }}/"]
    assert [s["if"] for s in upload] == ["${{ !cancelled() }}"]


def test_nightly_always_deletes_the_cluster():
    """The cluster kept for log export is deleted whatever happened."""
    down = _run_steps(_load("nightly.yml"), "nox -s down")
    assert [s["if"] for s in down] == ["always()"]


# --- release.yml ---------------------------------------------------------------------------------------

def test_release_runs_on_version_tags():
    """release.yml starts on a pushed v* tag."""
    assert _load("release.yml")["on"] == {"push": {"tags": ["v*"]}}


def test_release_runs_conformance_after_the_fast_tiers():
    """The release job runs the full conformance run, gated on lint, static and tests."""
    jobs = _load("release.yml")["jobs"]
    assert jobs["conformance"]["needs"] == "offline"
    assert [c[0] for s in jobs["conformance"]["steps"] if "run" in s for c in nox_calls(s["run"])][:2] == [
        ["conformance"], ["report"]]


def test_release_attaches_the_report_to_the_release():
    """report.html is uploaded to the tag's release, with only the permission that needs."""
    job = _load("release.yml")["jobs"]["conformance"]
    attach = [s for s in job["steps"] if "gh release" in s.get("run", "")]
    assert len(attach) == 1
    assert "report.html" in attach[0]["run"]
    assert "if" not in attach[0], "a failing run must not attach its report to the release"
    assert job["permissions"] == {"contents": "write"}


# --- actionlint ------------------------------------------------------------------------------------------

def _actionlint() -> str | None:
    found = shutil.which("actionlint")
    if found:
        return found
    gobin = Path.home() / "go" / "bin" / "actionlint"
    return str(gobin) if gobin.is_file() else None


def test_actionlint_finds_nothing():
    """actionlint (with shellcheck when installed) reports no problem in any workflow."""
    actionlint = _actionlint()
    if actionlint is None:
        pytest.skip("actionlint is not installed (go install github.com/rhysd/actionlint/cmd/actionlint@v1.7.12)")
    proc = subprocess.run([actionlint, "-color=false", *(str(WORKFLOWS / f) for f in FILES)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
