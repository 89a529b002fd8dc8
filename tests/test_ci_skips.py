"""The CI rule on skips (tests/conftest.py), run for real: pytest in a scratch directory with a copy of
the conftest, a list of expected skips and tests that skip; and the repository's own list, checked
against the tests it names.
"""

from __future__ import annotations

import ast
import fnmatch
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
CONFTEST = REPO / "tests" / "conftest.py"
EXPECTED = REPO / "tests" / "expected_skips.yaml"

TESTS = """
import pytest

@pytest.fixture
def cluster():
    pytest.skip("no cluster: set THE_KUBECONFIG")

def test_needs_a_tool():
    pytest.skip("frobnicate is not installed")

def test_needs_a_cluster(cluster):
    pass

@pytest.mark.xfail(reason="known", strict=True)
def test_known_bug():
    assert False

def test_passes():
    pass
"""


def _run(tmp_path: Path, expected: list[dict], *args: str, ci: str | None = "true",
         tests: str = TESTS) -> subprocess.CompletedProcess[str]:
    shutil.copyfile(CONFTEST, tmp_path / "conftest.py")
    (tmp_path / "expected_skips.yaml").write_text(yaml.safe_dump({"skips": expected}))
    (tmp_path / "test_sample.py").write_text(textwrap.dedent(tests))
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_ADDOPTS")}
    env["PYTHONPATH"] = str(REPO)
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-ra", "--rootdir", str(tmp_path),
         "-c", str(tmp_path / "pytest.ini"), *args, str(tmp_path)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture
def ini(tmp_path: Path) -> Path:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    return tmp_path


def _entry(test: str, reason: str) -> dict:
    return {"test": test, "reason": reason, "why": "because"}


def test_in_ci_an_unlisted_skip_fails_with_one_line_naming_the_test_and_what_it_missed(ini):
    """CI=true: a skip no entry names fails the run; the line names the test and the skip's reason."""
    junit = ini / "junit.xml"
    proc = _run(ini, [_entry("test_sample.py::test_needs_a_cluster", "no cluster")], f"--junitxml={junit}")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    line = ("unexpected skip in CI: test_sample.py::test_needs_a_tool: frobnicate is not installed "
            "(make it run, or list it with why in tests/expected_skips.yaml)")
    assert f"FAILED test_sample.py::test_needs_a_tool - {line}" in proc.stdout
    assert "skips CI does not allow" in proc.stdout
    assert "1 failed, 1 passed, 1 skipped, 1 xfailed" in proc.stdout
    # The JUnit check sees it as a failure with the same line.
    assert f'message="{line}"' in junit.read_text()


def test_in_ci_listed_skips_pass(ini):
    """Every skip listed by test id (or pattern) and reason: the run passes and still lists the skips."""
    proc = _run(ini, [_entry("test_sample.py::test_needs_a_*", "not installed|no cluster")])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 passed, 2 skipped, 1 xfailed" in proc.stdout
    assert "SKIPPED [1] test_sample.py" in proc.stdout


def test_in_ci_a_listed_test_skipping_for_another_reason_fails(ini):
    """The entry allows one reason: the same test skipping because something else is missing fails."""
    proc = _run(ini, [_entry("test_sample.py::*", "no cluster")])
    assert proc.returncode == 1
    assert "test_needs_a_tool: frobnicate is not installed" in proc.stdout
    assert "test_needs_a_cluster" not in proc.stdout.split("skips CI does not allow")[1]


def test_in_ci_a_skip_in_a_fixture_is_an_error_naming_the_test(ini):
    """A fixture that skips (no cluster) makes the test an error in CI, with the same one line."""
    proc = _run(ini, [_entry("test_sample.py::test_needs_a_tool", "frobnicate")])
    assert proc.returncode == 1
    assert ("ERROR test_sample.py::test_needs_a_cluster - unexpected skip in CI: test_sample.py::"
            "test_needs_a_cluster: no cluster: set THE_KUBECONFIG") in proc.stdout


def test_in_ci_a_module_skipped_at_import_fails_the_run(ini):
    """A module-level skip has no test to fail: the run's exit status does."""
    proc = _run(ini, [], tests='import pytest\npytest.importorskip("no_such_module_here")\n')
    assert proc.returncode == 1, proc.stdout
    assert "unexpected skip in CI: test_sample.py: could not import 'no_such_module_here'" in proc.stdout


def test_locally_skips_are_allowed_and_the_ones_ci_refuses_are_listed(ini):
    """Without CI, nothing fails; the end of the run lists the skips CI would refuse."""
    proc = _run(ini, [_entry("test_sample.py::test_needs_a_cluster", "no cluster")], ci=None)
    assert proc.returncode == 0, proc.stdout
    assert "skips CI would refuse" in proc.stdout
    assert "test_sample.py::test_needs_a_tool: frobnicate is not installed" in proc.stdout


@pytest.mark.parametrize(("ci", "option", "code"), [
    ("false", None, 0), ("1", None, 1), (None, "--strict-skips=yes", 1), ("true", "--strict-skips=no", 0)])
def test_ci_variable_and_option(ini, ci, option, code):
    """CI=true/1 turns the rule on, CI=false/0 does not; --strict-skips yes|no overrides either."""
    proc = _run(ini, [], *([option] if option else []), ci=ci)
    assert proc.returncode == code, proc.stdout + proc.stderr


@pytest.mark.parametrize("entry", [{"test": "x"}, {"test": "x", "reason": "(", "why": "w"}, "x"])
def test_a_malformed_list_is_a_usage_error(ini, entry):
    """A broken entry stops the run with one line naming the list, never a silent allowance."""
    proc = _run(ini, [entry])
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert "expected_skips.yaml entry 1" in proc.stderr


# --- the repository's own list ------------------------------------------------------------------------

def _entries() -> list[dict]:
    return yaml.safe_load(EXPECTED.read_text())["skips"]


@pytest.mark.parametrize("entry", _entries(), ids=lambda e: e["test"])
def test_each_expected_skip_names_a_test_that_exists_and_says_why(entry):
    """Each entry names an existing test file and function (a pattern at least one), and why CI lacks it."""
    path, _, rest = entry["test"].partition("::")
    assert (REPO / path).is_file(), f"{entry['test']}: no file {path}"
    functions = {node.name for node in ast.walk(ast.parse((REPO / path).read_text()))
                 if isinstance(node, ast.FunctionDef) and node.name.startswith("test")}
    name = rest.split("[")[0]
    assert fnmatch.filter(functions, name), f"{entry['test']}: {path} has no test matching {name!r}"
    assert len(entry["why"].split()) >= 8, f"{entry['test']}: say why CI may lack what it needs"


@pytest.mark.parametrize("entry", _entries(), ids=lambda e: e["test"])
def test_each_expected_skip_reason_is_the_one_the_test_gives(entry):
    """The reason pattern appears in the test's file: the list cannot drift from the skip it allows."""
    path = entry["test"].partition("::")[0]
    source = (REPO / path).read_text()
    skips = [node for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Call)
             and ast.unparse(node.func) == "pytest.skip"]
    texts = [ast.unparse(call.args[0]) if call.args else "" for call in skips]
    assert any(re.search(entry["reason"], text) for text in texts), (
        f"{entry['test']}: no pytest.skip in {path} says {entry['reason']!r}: {texts}")
