"""The GitHub Actions workflows users run on their own forge, checked without a forge.

Each workflow is parsed; every ``nox -s`` it runs must name a session of noxfile.py (read with
ast, never imported); ci.yml runs the README's test command (.ci/run); every action is pinned to a
commit SHA; Go comes from .go-version alone; the caches and the report steps are where a failing
verdict cannot hide; the nightly matrix is every supported pair fixtures/versions.yaml lists (read
by .github/workflows/nightly.py, run here for real); the fault catalogue runs weekly and its
faults.json is uploaded. actionlint checks the rest: expressions, contexts, and the shell of every
``run:`` step through shellcheck.
"""

from __future__ import annotations

import ast
import fnmatch
import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).parents[1]
WORKFLOWS = REPO / ".github" / "workflows"
NOXFILE = REPO / "noxfile.py"
VERSIONS = REPO / "fixtures" / "versions.yaml"
GO_VERSION_FILE = REPO / ".go-version"
FILES = ("ci.yml", "nightly.yml", "release.yml")

# Every action the workflows use, at one commit each, with the release it is: the release's tag as
# the action's own repository has it (all on Node 24). Confirm a bump with
# `git ls-remote https://github.com/OWNER/REPO TAG`.
_CACHE = ("27d5ce7f107fe9357f9df03efb73ab90386fccae", "v5.0.5")
ACTIONS = {
    "actions/checkout": ("3d3c42e5aac5ba805825da76410c181273ba90b1", "v7.0.1"),
    "actions/setup-python": ("5fda3b95a4ea91299a34e894583c3862153e4b97", "v7.0.0"),
    "actions/setup-go": ("b7ad1dad31e06c5925ef5d2fc7ad053ef454303e", "v7.0.0"),
    "actions/cache/restore": _CACHE,
    "actions/cache/save": _CACHE,
    "actions/upload-artifact": ("bbbca2ddaa5d8feaa63e36b76fdaad77386f024f", "v7.0.0"),
    "actions/download-artifact": ("3e5f45b2cfb9172054b4087a40e8e0b5a5461e7c", "v8.0.1"),
    "mikepenz/action-junit-report": ("d9f48fc87bc235f7e214acf696ca5abc0a986f16", "v6.4.2"),
    "github/codeql-action/upload-sarif": ("8aad20d150bbac5944a9f9d289da16a4b0d87c1e", "v4.36.2"),
}
USES_LINE = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<action>[\w.-]+/[\w./-]+)@(?P<ref>\S+)(?:\s+#\s*(?P<tag>\S+))?\s*$")
# A pull request from a fork: its token cannot write checks.
FROM_FORK = ("${{ github.event_name == 'pull_request' && "
             "github.event.pull_request.head.repo.full_name != github.repository }}")
SUITE_CACHE = "~/.cache/cortex-conformance"
REPORT_UPLOAD_PATH = "${{ env.REPORT_DIR }}/"


def _load(name: str) -> dict:
    data = yaml.safe_load((WORKFLOWS / name).read_text())
    # YAML 1.1 reads the bare key `on` as the boolean true.
    data["on"] = data.pop(True, data.get("on"))
    return data


def _steps(workflow: dict) -> list[dict]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


def _jobs() -> list[tuple[str, str, dict]]:
    return [(name, job_id, job) for name in FILES for job_id, job in _load(name)["jobs"].items()]


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


def _sessions_of(steps: list[dict]) -> list[list[str]]:
    return [sessions for s in steps if "run" in s for sessions, _ in nox_calls(s["run"])]


def _uses(step: dict, action: str) -> bool:
    return step.get("uses", "").startswith(f"{action}@")


def _nightly_script():
    spec = importlib.util.spec_from_file_location("nightly_workflow", WORKFLOWS / "nightly.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _versions() -> dict:
    return yaml.safe_load(VERSIONS.read_text())


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
def test_actions_are_pinned_to_commit_shas(name):
    """Every `uses:` names a 40-hex commit with its release beside it, the one pin of that action."""
    lines = [(i, m) for i, line in enumerate((WORKFLOWS / name).read_text().splitlines(), 1)
             if (m := USES_LINE.match(line))]
    parsed = [s["uses"] for s in _steps(_load(name)) if "uses" in s]
    assert len(lines) == len(parsed), f"{name}: a `uses:` the line check cannot read: {parsed}"
    for number, match in lines:
        action, ref, tag = match["action"], match["ref"], match["tag"]
        where = f"{name}:{number}: {action}@{ref}"
        assert re.fullmatch(r"[0-9a-f]{40}", ref), f"{where}: not pinned to a commit SHA"
        assert action in ACTIONS, f"{where}: an action this test does not know; add its SHA and release"
        assert (ref, tag) == ACTIONS[action], f"{where} # {tag}: the pin of {action} is {ACTIONS[action]}"


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


def _options_registered_by(pytest_addoption) -> set[str]:
    """Every long option a pytest_addoption hook registers, read by calling it with a recorder."""
    names: set[str] = set()

    class Group:
        def addoption(self, *flags, **_kwargs):
            names.update(flags)

    class Parser:
        def getgroup(self, *_args, **_kwargs):
            return Group()

    pytest_addoption(Parser())
    return names


def test_workflow_options_exist():
    """Every option a workflow passes after `--` is one the suite accepts (or the report's CLI)."""
    from conformance import plugin
    from conformance.report import cli
    from tests import conftest

    # The report's own parser says what it takes, so a new report option needs no change here.
    report_options = {o for o in cli._parser()._option_string_actions if o.startswith("--")}
    faults_options = {"--shard", "--only"}  # conformance.live.faults's own (the faults session passes them on)
    known = (_options_registered_by(plugin.pytest_addoption) | _options_registered_by(conftest.pytest_addoption)
             | report_options | faults_options)
    for name in FILES:
        for step in _steps(_load(name)):
            for _sessions, posargs in nox_calls(step.get("run", "")):
                flags = {arg.split("=")[0] for arg in posargs if arg.startswith("--")}
                assert flags <= known, f"{name}: unknown options {sorted(flags - known)}"


def test_go_version_comes_from_one_file():
    """Every setup-go reads .go-version and nothing else; scripts/setup checks the same file."""
    wanted = GO_VERSION_FILE.read_text().strip()
    assert re.fullmatch(r"1\.\d+(\.\d+)?", wanted), f".go-version holds {wanted!r}, not a Go release"
    setups = [(name, s) for name in FILES for s in _steps(_load(name)) if _uses(s, "actions/setup-go")]
    assert setups
    for name, step in setups:
        assert step["with"].get("go-version-file") == ".go-version", f"{name}: setup-go without .go-version"
        assert "go-version" not in step["with"], f"{name}: setup-go names a Go version of its own"
    for name in FILES:
        assert not re.search(r"^\s*go-version:", (WORKFLOWS / name).read_text(), re.MULTILINE), name
    assert ".go-version" in (REPO / "scripts" / "setup").read_text()
    assert f"Go {'.'.join(wanted.split('.')[:2])}" in (REPO / "README.md").read_text(), (
        "the README names another Go than .go-version")


def test_local_go_is_the_one_go_version_names():
    """The Go on this machine is the release the workflows install (GOTOOLCHAIN=local builds with it)."""
    go = shutil.which("go") or ("/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists() else None)
    if go is None:
        pytest.skip("go is not installed")
    have = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True, check=True).stdout.strip()
    wanted = GO_VERSION_FILE.read_text().strip()
    assert f"{have.removeprefix('go')}.".startswith(f"{wanted}."), f"go is {have}; .go-version says {wanted}"


def _builds(job: dict) -> bool:
    """A job that runs nox, Go or .ci/run, and so builds tools the caches keep."""
    return any(re.search(r"\bnox\b|\bgo install\b|\.ci/run", s.get("run", "")) for s in job["steps"])


@pytest.mark.parametrize(("name", "job_id", "job"), [j for j in _jobs() if _builds(j[2])],
                         ids=[f"{n}:{j}" for n, j, job in _jobs() if _builds(job)])
def test_jobs_that_build_set_up_go_and_cache_go_uv_and_the_built_tools(name, job_id, job):
    """Go from .go-version; module and build caches, uv's cache and the suite's tools, keyed on their inputs."""
    steps = job["steps"]
    assert any(_uses(s, "actions/setup-go") and s.get("id") == "go" for s in steps), f"{name}:{job_id}: no setup-go"
    caches = {s["with"]["path"].split()[0]: s["with"] for s in steps if _uses(s, "actions/cache/restore")}
    assert set(caches) == {"~/go/pkg/mod", "~/.cache/uv", SUITE_CACHE}, f"{name}:{job_id}: caches {sorted(caches)}"
    go, uv, suite = caches["~/go/pkg/mod"], caches["~/.cache/uv"], caches[SUITE_CACHE]
    assert "~/.cache/go-build" in go["path"].split()
    assert "steps.go.outputs.go-version" in go["key"]
    assert "fixtures/versions.yaml" in go["key"]
    assert "pyproject.toml" in uv["key"]
    for part in ("steps.go.outputs.go-version", "'fixtures/versions.yaml'", "'conformance/images/**'"):
        assert part in suite["key"], f"{name}:{job_id}: the built-tools cache key lacks {part}"
    # Stages are keyed inside the cache: a partial restore is safe and saves every unchanged stage.
    assert suite["key"].startswith(suite["restore-keys"])
    # A cluster's kubeconfig and the private dockerd's data never travel between runs.
    assert {f"!{SUITE_CACHE}/clusters", f"!{SUITE_CACHE}/docker"} <= set(suite["path"].split())
    first_cache = min(i for i, s in enumerate(steps) if _uses(s, "actions/cache/restore"))
    first_build = min(i for i, s in enumerate(steps) if re.search(r"\bnox\b|\bgo\b|\.ci/run", s.get("run", "")))
    assert first_cache < first_build, f"{name}:{job_id}: the caches are restored after the build started"


@pytest.mark.parametrize(("name", "job_id", "job"), [j for j in _jobs() if _builds(j[2])],
                         ids=[f"{n}:{j}" for n, j, job in _jobs() if _builds(job)])
def test_every_restored_cache_is_saved_whatever_the_outcome(name, job_id, job):
    """Each restore has a save of the same paths under its primary key, run on failure too, before the cluster goes."""
    steps = job["steps"]
    restores = {s["id"]: s for s in steps if _uses(s, "actions/cache/restore")}
    saves = [s for s in steps if _uses(s, "actions/cache/save")]
    assert len(saves) == len(restores) == 3, f"{name}:{job_id}"
    for save in saves:
        step_id = re.search(r"steps\.([\w-]+)\.outputs\.cache-primary-key", save["with"]["key"]).group(1)
        assert save["with"]["path"] == restores[step_id]["with"]["path"], f"{name}:{job_id}: {step_id}"
        assert save["if"].startswith("always()"), f"{name}:{job_id}: {step_id} is not saved when the job fails"
        assert f"steps.{step_id}.outputs.cache-hit != 'true'" in save["if"]
    assert min(steps.index(s) for s in saves) > max(steps.index(s) for s in restores.values())


def test_cache_keys_belong_to_one_workflow_and_job():
    """No two jobs share a key prefix: each cache holds what its own job builds."""
    prefixes: dict[str, str] = {}
    for name, job_id, job in _jobs():
        for step in job["steps"]:
            if _uses(step, "actions/cache/restore"):
                prefix = step["with"]["restore-keys"]
                assert step["with"]["key"].startswith(prefix)
                owner = prefixes.setdefault(prefix, f"{name}:{job_id}")
                assert owner == f"{name}:{job_id}", f"{name}:{job_id} shares cache key {prefix!r} with {owner}"
    matrix_keys = [p for p, owner in prefixes.items() if owner == "nightly.yml:conformance"]
    # A matrix cell's prefix carries its Kubernetes minor and Istio release.
    cell = _load("nightly.yml")["jobs"]["conformance"]["env"]["CACHE_PREFIX"]
    assert "matrix.kubernetes" in cell
    assert "matrix.istio" in cell
    assert matrix_keys
    assert all(p.startswith("${{ env.CACHE_PREFIX }}-") for p in matrix_keys), matrix_keys


@pytest.mark.parametrize(("name", "job_id", "job"), [j for j in _jobs() if _builds(j[2])],
                         ids=[f"{n}:{j}" for n, j, job in _jobs() if _builds(job)])
def test_jobs_get_nox_from_scripts_setup(name, job_id, job):
    """nox and uv come from scripts/setup (directly or through .ci/run), the one place they are pinned."""
    runs = [s.get("run", "") for s in job["steps"]]
    setup = next((i for i, r in enumerate(runs) if re.search(r"bash (scripts/setup|\.ci/run)", r)), None)
    assert setup is not None, f"{name}:{job_id}: neither scripts/setup nor .ci/run"
    first_nox = next((i for i, r in enumerate(runs) if nox_calls(r)), len(runs))
    assert setup <= first_nox, f"{name}:{job_id}: nox runs before scripts/setup"
    assert not [r for r in runs if re.search(r"pip install[^\n]*\b(nox|uv)==", r)], (
        f"{name}:{job_id}: installs nox or uv itself; scripts/setup pins them")


def test_pyyaml_pins_in_workflows_are_the_projects():
    """A workflow that reads versions.yaml before any venv exists installs the PyYAML pyproject.toml pins."""
    groups = tomllib.loads((REPO / "pyproject.toml").read_text())["dependency-groups"]
    pinned = {r for r in groups["static"] if isinstance(r, str) and r.startswith("pyyaml==")}
    found = {m for name in FILES for m in re.findall(r"pyyaml==[\w.]+", (WORKFLOWS / name).read_text())}
    assert found
    assert found <= pinned, f"workflows pin {found}, pyproject.toml {pinned}"


def _report_jobs() -> list[tuple[str, str, dict]]:
    return [j for j in _jobs() if any(c == ["report"] for c in _sessions_of(j[2]["steps"]))]


@pytest.mark.parametrize(("name", "job_id", "job"), _report_jobs(), ids=[f"{n}:{j}" for n, j, _ in _report_jobs()])
def test_report_steps_fail_on_a_bad_verdict_and_the_artifacts_still_upload(name, job_id, job):
    """`nox -s report` exits 1 FAIL, 2 no report, 3 INCOMPLETE: the step fails the job; summary and upload follow."""
    steps = job["steps"]
    report = [i for i, s in enumerate(steps) if ["report"] in _sessions_of([s])]
    for i in report:
        assert steps[i].get("if") == "${{ !cancelled() }}", f"{name}:{job_id}: the report runs only on success"
        assert "continue-on-error" not in steps[i], f"{name}:{job_id}: a FAIL verdict would not fail the job"
        assert "|| true" not in steps[i]["run"]
        assert "accept-incomplete" not in steps[i]["run"]
        # The step ends with nox's own code, and says which documented one it was.
        assert 'exit "$code"' in steps[i]["run"]
        for code, meaning in (("1", "FAIL"), ("2", "no report"), ("3", "INCOMPLETE")):
            assert re.search(rf"^\s*{code}\) echo \"::error::[^\n]*{meaning}", steps[i]["run"], re.M), (
                f"{name}:{job_id}: exit {code} ({meaning}) not named")
    summary = [i for i, s in enumerate(steps) if "GITHUB_STEP_SUMMARY" in s.get("run", "")]
    assert summary
    assert all(steps[i].get("if") == "always()" and i > report[-1] for i in summary)
    uploads = [i for i, s in enumerate(steps) if _uses(s, "actions/upload-artifact")
               and s["with"]["path"] == REPORT_UPLOAD_PATH]
    assert uploads
    assert all(steps[i]["if"] == "always()" and i > report[-1] for i in uploads), (
        f"{name}:{job_id}: the reports must upload whatever the verdict")


# --- ci.yml ---------------------------------------------------------------------------------------------

def test_ci_runs_once_per_pull_request():
    """pull_request for every PR (forks too), push only on main: a same-repository PR is not run twice."""
    triggers = _load("ci.yml")["on"]
    assert triggers["push"] == {"branches": ["main"]}
    assert triggers["pull_request"] is None


def test_ci_uploads_the_static_sarif():
    """static.sarif goes to code scanning after .ci/run, whatever the verdict, with the permission it needs."""
    job = _load("ci.yml")["jobs"]["offline"]
    upload = [s for s in job["steps"] if _uses(s, "github/codeql-action/upload-sarif")]
    assert len(upload) == 1
    assert upload[0]["with"]["sarif_file"].replace("${{ env.REPORT_DIR }}", "build/reports") == \
        "build/reports/static.sarif"
    assert upload[0]["if"].startswith("${{ !cancelled()")
    assert upload[0]["continue-on-error"] == FROM_FORK
    assert job["permissions"]["security-events"] == "write"


def test_ci_runs_the_readme_test_command():
    """ci.yml runs .ci/run, which is the README's `bash scripts/setup && nox`, on pushes to main and every PR."""
    workflow = _load("ci.yml")
    assert set(workflow["on"]) == {"push", "pull_request"}
    assert [s["run"] for s in _steps(workflow) if ".ci/run" in s.get("run", "")] == ["bash .ci/run"]
    assert [c for c in _sessions_of(_steps(workflow))] == [["report"]], (
        "ci.yml runs sessions of its own; the tiers come from .ci/run")
    commands = [line for line in (REPO / ".ci" / "run").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    assert commands[-1] == "bash scripts/setup && nox"
    assert "bash scripts/setup && nox " in (REPO / "README.md").read_text()


def test_ci_publishes_junit_of_the_static_tier_and_the_unit_tests():
    """The JUnit check reads junit-static.xml and the junit-tests.xml the tests session writes."""
    publish = [s for s in _steps(_load("ci.yml")) if _uses(s, "mikepenz/action-junit-report")]
    assert len(publish) == 1
    pattern = publish[0]["with"]["report_paths"].replace("${{ env.REPORT_DIR }}", "build/reports")
    assert fnmatch.fnmatch("build/reports/junit-tests.xml", pattern)
    assert fnmatch.fnmatch("build/reports/junit-static.xml", pattern)
    assert publish[0]["if"] == "${{ !cancelled() }}"
    tests_session = next(node for node in ast.parse(NOXFILE.read_text()).body
                         if isinstance(node, ast.FunctionDef) and node.name == "tests")
    assert "junit-tests.xml" in ast.unparse(tests_session), "nox -s tests writes no junit-tests.xml"


def test_checks_write_degrades_on_pull_requests_from_forks():
    """Only the JUnit job asks for checks: write; from a fork it annotates only and cannot fail the job."""
    asking = [(n, j) for n, j, job in _jobs() if (job.get("permissions") or {}).get("checks") == "write"]
    assert asking == [("ci.yml", "offline")]
    publish = next(s for s in _load("ci.yml")["jobs"]["offline"]["steps"]
                   if _uses(s, "mikepenz/action-junit-report"))
    assert publish["continue-on-error"] == FROM_FORK
    assert publish["with"]["annotate_only"] == FROM_FORK


# --- nightly.yml ---------------------------------------------------------------------------------------

NIGHTLY, WEEKLY = "17 2 * * *", "43 3 * * 6"


def test_nightly_runs_the_matrix_nightly_and_the_faults_weekly():
    """Two crons (the matrix, the fault catalogue) and a manual run that picks either."""
    triggers = _load("nightly.yml")["on"]
    assert [c["cron"] for c in triggers["schedule"]] == [NIGHTLY, WEEKLY]
    assert triggers["workflow_dispatch"]["inputs"]["faults"]["type"] == "boolean"
    jobs = _load("nightly.yml")["jobs"]
    assert f"github.event.schedule == '{NIGHTLY}'" in jobs["conformance"]["if"]
    assert "!inputs.faults" in jobs["conformance"]["if"]
    assert f"github.event.schedule == '{WEEKLY}'" in jobs["faults"]["if"]
    assert "inputs.faults" in jobs["faults"]["if"].replace("!inputs.faults", "")


def test_supported_pairs_reads_the_documented_shape():
    """Every minor times every release, sorted as versions (1.9 before 1.10), each with its kind and artifact;
    a minor the release's support list lacks is labelled "ahead of support"."""
    pairs = _nightly_script().supported_pairs({
        "kubernetes": {"default": "1.10", "minors": {"1.10": {"kind": "v0.33.0"}, "1.9": {"kind": "v0.30.0"}}},
        "istio": {"default": "1.31", "releases": {"1.31": {"kubernetes": ["1.9", "1.10"]},
                                                  "1.30": {"build": False, "kubernetes": ["1.9"]}}}})
    ok, ahead = {"support": "supported", "label": ""}, {"support": "ahead of support", "label": ", ahead of support"}
    assert pairs == [
        {"kubernetes": "1.9", "istio": "1.30", "kind": "v0.30.0", "artifact": "conformance-report-k8s1.9-istio1.30",
         **ok},
        {"kubernetes": "1.9", "istio": "1.31", "kind": "v0.30.0", "artifact": "conformance-report-k8s1.9-istio1.31",
         **ok},
        {"kubernetes": "1.10", "istio": "1.30", "kind": "v0.33.0",
         "artifact": "conformance-report-k8s1.10-istio1.30", **ahead},
        {"kubernetes": "1.10", "istio": "1.31", "kind": "v0.33.0",
         "artifact": "conformance-report-k8s1.10-istio1.31", **ok}]


def test_nightly_labels_cells_ahead_of_support_in_the_job_name():
    """A cell outside Istio's support table must not read as a supported one where the run lists its jobs."""
    job = _load("nightly.yml")["jobs"]["conformance"]
    assert job["name"].endswith("${{ matrix.label }})")
    cells = _matrix_outputs()["include"]
    ahead = {(c["kubernetes"], c["istio"]) for c in cells if c["support"] == "ahead of support"}
    assert ("1.37", "1.31") in ahead
    assert ("1.36", "1.31") not in ahead


def _matrix_outputs() -> dict[str, object]:
    """What the pins job writes to $GITHUB_OUTPUT, by running the script as the job does."""
    proc = subprocess.run([sys.executable, str(WORKFLOWS / "nightly.py"), "matrix"], cwd=REPO,
                          capture_output=True, text=True, timeout=60, check=True)
    return {k: json.loads(v) for k, _, v in (line.partition("=") for line in proc.stdout.splitlines())}


def test_nightly_matrix_is_every_supported_pair_of_versions_yaml():
    """The matrix is each Kubernetes minor times each Istio release versions.yaml lists, nothing else."""
    pins = _versions()
    outputs = _matrix_outputs()
    cells = outputs["include"]
    assert sorted((c["kubernetes"], c["istio"]) for c in cells) == sorted(
        (str(m), str(r)) for m in pins["kubernetes"]["minors"] for r in pins["istio"]["releases"])
    assert all(c["kind"] == pins["kubernetes"]["minors"][c["kubernetes"]]["kind"] for c in cells)
    assert len({c["artifact"] for c in cells}) == len(cells)
    assert (outputs["default"]["kubernetes"], outputs["default"]["istio"]) == (
        str(pins["kubernetes"]["default"]), str(pins["istio"]["default"]))


def test_nightly_matrix_comes_from_the_pins_job():
    """The cells are the pins job's output, computed from versions.yaml at run time: no list to keep in step."""
    jobs = _load("nightly.yml")["jobs"]
    pins = jobs["pins"]
    step = next(s for s in pins["steps"] if "nightly.py matrix" in s.get("run", ""))
    assert 'python .github/workflows/nightly.py matrix >> "$GITHUB_OUTPUT"' in step["run"]
    assert pins["outputs"] == {"include": f"${{{{ steps.{step['id']}.outputs.include }}}}",
                               "default": f"${{{{ steps.{step['id']}.outputs.default }}}}"}
    strategy = jobs["conformance"]["strategy"]
    assert strategy["fail-fast"] is False
    assert strategy["matrix"] == {"include": "${{ fromJSON(needs.pins.outputs.include) }}"}
    assert jobs["conformance"]["needs"] == "pins"


def test_nightly_passes_each_cell_to_nox_in_pull_mode():
    """The conformance step hands the cell to the suite; the minor and release pick their own pins."""
    steps = _load("nightly.yml")["jobs"]["conformance"]["steps"]
    calls = [c for s in steps if "nox -s conformance" in s.get("run", "") for c in nox_calls(s["run"])]
    assert len(calls) == 1
    sessions, posargs = calls[0]
    options = dict(zip(posargs[::2], posargs[1::2], strict=False))
    assert sessions == ["conformance"]
    assert options["--images"] == "pull"
    assert options["--kubernetes"] == "${{ matrix.kubernetes }}"
    assert options["--istio"] == "${{ matrix.istio }}"
    assert "--keep" in posargs
    kind = next(s for s in steps if "go install" in s.get("run", ""))
    assert kind["env"]["KIND_VERSION"] == "${{ matrix.kind }}"


def test_nightly_uploads_each_cells_report_and_a_summary_job_tables_them():
    """Each cell's report is an artifact named by the cell; a last job downloads them all and writes the table."""
    jobs = _load("nightly.yml")["jobs"]
    upload = [s for s in jobs["conformance"]["steps"] if _uses(s, "actions/upload-artifact")
              and s["with"]["path"] == REPORT_UPLOAD_PATH]
    assert [s["with"]["name"] for s in upload] == ["${{ matrix.artifact }}"]
    summary = jobs["summary"]
    assert set(summary["needs"]) == {"pins", "conformance"}
    assert summary["if"].startswith("always()")
    download = next(s for s in summary["steps"] if _uses(s, "actions/download-artifact"))
    assert download["with"]["pattern"] == f"{_nightly_script().ARTIFACT_PREFIX}*"
    table = next(s for s in summary["steps"] if "GITHUB_STEP_SUMMARY" in s.get("run", ""))
    assert table["env"]["CELLS"] == "${{ needs.pins.outputs.include }}"
    assert f"--reports {download['with']['path']}" in table["run"]
    assert table["if"] == "always()"


def test_summary_table_has_one_row_per_cell_with_its_verdict(tmp_path):
    """A passing cell, a failing one (its failed controls named) and one that wrote no report."""
    script = _nightly_script()
    minors = {"1.36": {"kind": "v0.33.0"}, "1.37": {"kind": "v0.33.0"}}
    cells = script.supported_pairs({"kubernetes": {"minors": minors}, "istio": {"releases": {
        "1.31": {"kubernetes": ["1.36"]}, "1.32": {"kubernetes": ["1.36", "1.37"]}}}})
    reports = {cells[0]["artifact"]: {"headline": "PASS", "controls": [{"id": "NET-01", "status": "passed"}]},
               cells[1]["artifact"]: {"headline": "FAIL", "controls": [
                   {"id": "MTLS-01", "status": "failed"}, {"id": "JWT-02", "status": "error"},
                   {"id": "NET-01", "status": "passed"}]},
               cells[2]["artifact"]: {"headline": "INCOMPLETE", "controls": [{"id": "VAULT-02", "status": "skipped"}]}}
    for artifact, doc in reports.items():
        (tmp_path / artifact).mkdir()
        (tmp_path / artifact / "report.json").write_text(json.dumps(doc))
    rows = [line for line in script.summary_table(cells, tmp_path).splitlines() if line.startswith("| 1.")]
    assert rows == [
        "| 1.36 | 1.31 | **PASS** | none | `conformance-report-k8s1.36-istio1.31` |",
        "| 1.36 | 1.32 | **FAIL** | JWT-02, MTLS-01 | `conformance-report-k8s1.36-istio1.32` |",
        "| 1.37 (ahead of support) | 1.31 | **INCOMPLETE** | none | `conformance-report-k8s1.37-istio1.31` |",
        "| 1.37 | 1.32 | **no report**: the cell ended before writing one (see its job log) | - "
        "| `conformance-report-k8s1.37-istio1.32` |"]


def test_nightly_exports_kind_logs_on_failure():
    """Every job that runs a cluster runs `kind export logs` on failure and uploads them."""
    for job_id in ("conformance", "faults"):
        steps = _load("nightly.yml")["jobs"][job_id]["steps"]
        export = [s for s in steps if "kind export logs" in s.get("run", "")]
        assert [s["if"] for s in export] == ["failure()"], job_id
        uploads = [s for s in steps if _uses(s, "actions/upload-artifact") and "kind-logs" in s["with"]["path"]]
        assert [s["if"] for s in uploads] == ["failure()"], job_id


@pytest.mark.parametrize("name", FILES)
def test_clusters_are_always_deleted(name):
    """A job that brings a cluster up (kept for log export or the catalogue) deletes it whatever happened."""
    for job_id, job in _load(name)["jobs"].items():
        sessions = [s for c in _sessions_of(job["steps"]) for s in c]
        if not {"cluster", "conformance"} & set(sessions):
            continue
        down = [s for s in job["steps"] if ["down"] in _sessions_of([s])]
        assert [s["if"] for s in down] == ["always()"], f"{name}:{job_id}"
        assert job["steps"][-1] is down[0], f"{name}:{job_id}: deleting the cluster is not the last step"


# --- the fault catalogue --------------------------------------------------------------------------------

def _faults_job() -> dict:
    return _load("nightly.yml")["jobs"]["faults"]


def _options(posargs: list[str]) -> dict[str, str]:
    return dict(zip(posargs[::2], posargs[1::2], strict=False))


def test_faults_job_runs_each_shard_on_its_own_cluster_after_the_conformance_run():
    """A matrix of shards 1..N, each: conformance (pull, kept cluster), then its shard on that cluster."""
    job = _faults_job()
    shards = job["strategy"]["matrix"]["shard"]
    assert shards == list(range(1, len(shards) + 1))
    assert job["strategy"]["fail-fast"] is False
    calls = [(sessions, posargs) for s in job["steps"] if "run" in s for sessions, posargs in nox_calls(s["run"])]
    order = [sessions[0] for sessions, _ in calls]
    assert order.index("conformance") < order.index("faults") < order.index("down")
    conformance = calls[order.index("conformance")][1]
    faults = _options(calls[order.index("faults")][1])
    assert "--keep" in conformance, "the shard must reuse the cluster the conformance run brought up"
    assert _options([a for a in conformance if a != "--keep"])["--images"] == faults["--images"] == "pull"
    assert faults["--shard"] == "${{ matrix.shard }}/${{ strategy.job-total }}"
    assert faults["--report-dir"] == "$REPORT_DIR"
    assert job["needs"] == "pins"
    kind = next(s for s in job["steps"] if "go install" in s.get("run", ""))
    assert kind["env"]["KIND_VERSION"] == "${{ fromJSON(needs.pins.outputs.default).kind }}"


def test_one_job_merges_the_shards_into_a_signoff_report():
    """After every shard (whatever each did): download them all, one report that must reach sign-off."""
    job = _load("nightly.yml")["jobs"]["faults-report"]
    assert set(job["needs"]) == {"pins", "faults"}
    assert job["if"].startswith("always()")
    download = next(s for s in job["steps"] if _uses(s, "actions/download-artifact"))
    assert download["with"]["pattern"] == "fault-shard-*"
    uploads = [s for s in _faults_job()["steps"] if _uses(s, "actions/upload-artifact")
               and s["with"]["path"] == REPORT_UPLOAD_PATH]
    assert [s["with"]["name"] for s in uploads] == ["fault-shard-${{ matrix.shard }}"]
    gather = next(s for s in job["steps"] if "faults-*-of-*.json" in s.get("run", ""))
    assert "results-conformance.json" in gather["run"]
    calls = [c for s in job["steps"] if "run" in s for c in nox_calls(s["run"])]
    assert [sessions for sessions, _ in calls] == [["report"]]
    report = _options(calls[0][1])
    assert report["--require"] == "signoff", "the headline is the fault-proven verdict, not a static one"
    assert report["--report-dir"] == "$REPORT_DIR"


def test_faults_job_uploads_faults_json_whatever_happened():
    """The directory faults.json is written to is uploaded, pass or fail."""
    env = _load("nightly.yml")["env"]
    uploads = [s for s in _faults_job()["steps"] if _uses(s, "actions/upload-artifact")
               and s["with"]["path"] == REPORT_UPLOAD_PATH]
    assert [s["if"] for s in uploads] == ["always()"]
    written = Path(env["REPORT_DIR"]) / "faults.json"
    uploaded = Path(uploads[0]["with"]["path"].replace("${{ env.REPORT_DIR }}", env["REPORT_DIR"]))
    assert written.parent == uploaded


def test_cluster_only_unit_tests_run_once_in_the_cluster_session():
    """tests/test_istio_waits.py, which the unit tier may skip, runs in `nox -s cluster` and in no workflow step."""
    cluster = next(node for node in ast.parse(NOXFILE.read_text()).body
                   if isinstance(node, ast.FunctionDef) and node.name == "cluster")
    assert "tests/test_istio_waits.py" in ast.unparse(cluster)
    assert ["cluster"] in _sessions_of(_faults_job()["steps"])
    assert not [s for name in FILES for s in _steps(_load(name)) if "test_istio_waits" in s.get("run", "")]
    expected = yaml.safe_load((REPO / "tests" / "expected_skips.yaml").read_text())["skips"]
    assert any(fnmatch.fnmatch("tests/test_istio_waits.py::test_x", e["test"]) for e in expected)


# --- release.yml ---------------------------------------------------------------------------------------

def test_release_runs_on_version_tags():
    """release.yml starts on a pushed v* tag."""
    assert _load("release.yml")["on"] == {"push": {"tags": ["v*"]}}


def test_release_signs_off_after_the_fast_tiers():
    """The release job runs the sign-off (conformance and the whole fault catalogue), gated on .ci/run, and
    its report must reach the sign-off level."""
    jobs = _load("release.yml")["jobs"]
    assert [s["run"] for s in jobs["offline"]["steps"] if ".ci/run" in s.get("run", "")] == ["bash .ci/run"]
    assert jobs["conformance"]["needs"] == "offline"
    assert _sessions_of(jobs["conformance"]["steps"])[:2] == [["signoff"], ["report"]]
    report = next(s["run"] for s in jobs["conformance"]["steps"] if "nox -s report" in s.get("run", ""))
    assert "--require signoff" in report


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
    gopath = os.environ.get("GOPATH") or str(Path.home() / "go")
    gobin = Path(gopath) / "bin" / "actionlint"
    return str(gobin) if gobin.is_file() else None


def test_actionlint_finds_nothing():
    """actionlint (with shellcheck when installed) reports no problem in any workflow."""
    actionlint = _actionlint()
    if actionlint is None:
        pytest.skip("actionlint is not installed (go install github.com/rhysd/actionlint/cmd/actionlint@v1.7.12)")
    proc = subprocess.run([actionlint, "-color=false", *(str(WORKFLOWS / f) for f in FILES)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
