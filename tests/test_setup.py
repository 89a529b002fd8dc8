"""scripts/setup on the distribution's own Python, run for real.

Debian 12 and Ubuntu 24.04 mark their Python externally managed (PEP 668), so `pip install` into it
fails and it has no `python` command. The setup runs here with PATH cut down so that /usr/bin/python3
is the only Python (this machine's first `python3` is a pyenv build, which would hide the problem),
into a temporary tools venv and link directory; then the linked `nox` must run, and `nox -s report`
must find its `python` in a session venv.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DISTRIBUTION_PYTHON = Path("/usr/bin/python3")
NOX_VERSION = next(line.split("=", 1)[1] for line in (REPO / "scripts" / "setup").read_text().splitlines()
                   if line.startswith("NOX_VERSION="))


def _environment(path: list[str], **extra: str) -> dict[str, str]:
    """The caller's environment without anything that points at another Python."""
    drop = ("PATH", "VIRTUAL_ENV", "PYTHONHOME", "PYTHONPATH", "NOX_CURRENT_SESSION", "CONDA_PREFIX")
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("PYENV")}
    env["PATH"] = os.pathsep.join(path)
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def tools(tmp_path_factory) -> tuple[Path, list[str]]:
    """scripts/setup run with only the distribution's Python on PATH: (link directory, that PATH)."""
    if not DISTRIBUTION_PYTHON.is_file():
        pytest.skip(f"no distribution Python at {DISTRIBUTION_PYTHON} (not Debian or Ubuntu)")
    root = tmp_path_factory.mktemp("setup")
    link_dir = root / "bin"
    # Go where the setup's Go check looks (setup-go's toolcache, or the official tarball's place).
    go = shutil.which("go") or "/usr/local/go/bin/go"
    path = [str(link_dir), str(Path(go).parent), "/usr/bin", "/bin"]
    proc = subprocess.run(["bash", str(REPO / "scripts" / "setup")], cwd=REPO, capture_output=True, text=True,
                          timeout=600, check=False,
                          env=_environment(path, CORTEX_TOOLS_VENV=str(root / "venv"), CORTEX_TOOLS_BIN=str(link_dir)))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return link_dir, path


def test_only_the_distribution_python_is_on_the_test_path(tools):
    """The premise: the setup saw /usr/bin/python3 as `python3`, and no `python` at all."""
    _, path = tools
    assert shutil.which("python3", path=os.pathsep.join(path)) in (str(DISTRIBUTION_PYTHON), "/bin/python3")
    assert Path(shutil.which("python3", path=os.pathsep.join(path))).resolve() == DISTRIBUTION_PYTHON.resolve()


def test_setup_builds_the_tools_venv_on_the_distribution_python(tools):
    """The tools venv's interpreter is the distribution's, not the first python3 of the caller's PATH."""
    link_dir, _ = tools
    venv = Path(os.readlink(link_dir / "nox")).parents[1]
    home = dict(line.split(" = ", 1) for line in (venv / "pyvenv.cfg").read_text().splitlines() if " = " in line)
    assert Path(home["home"]) == DISTRIBUTION_PYTHON.parent


def test_nox_is_reachable_through_the_link_directory(tools):
    """`nox --version` from the link directory on PATH, as a fresh shell finds it, is the pinned release."""
    link_dir, path = tools
    proc = subprocess.run(["nox", "--version"], capture_output=True, text=True, timeout=60, check=False,
                          env=_environment(path))
    assert shutil.which("nox", path=os.pathsep.join(path)) == str(link_dir / "nox")
    assert (proc.returncode, (proc.stdout + proc.stderr).strip()) == (0, NOX_VERSION)


def test_setup_again_changes_nothing(tools):
    """A second run finds the tools ready: no venv rebuilt, the links left as they are."""
    link_dir, path = tools
    venv = Path(os.readlink(link_dir / "nox")).parents[1]
    before = (venv / "pyvenv.cfg").stat().st_mtime_ns, (venv / "bin" / "nox").stat().st_mtime_ns
    proc = subprocess.run(["bash", str(REPO / "scripts" / "setup")], cwd=REPO, capture_output=True, text=True,
                          timeout=300, check=False,
                          env=_environment(path, CORTEX_TOOLS_VENV=str(venv), CORTEX_TOOLS_BIN=str(link_dir)))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert ((venv / "pyvenv.cfg").stat().st_mtime_ns, (venv / "bin" / "nox").stat().st_mtime_ns) == before


def test_report_session_runs_where_there_is_no_python_command(tools, tmp_path):
    """`nox -s report` runs in a venv: with no `python` on PATH it reaches the report, which says bad input (2)."""
    _, path = tools
    proc = subprocess.run(["nox", "--envdir", str(tmp_path / "envs"), "-s", "report", "--",
                           "--report-dir", str(tmp_path)], cwd=REPO, capture_output=True, text=True,
                          timeout=300, check=False, env=_environment(path))
    assert "not found" not in proc.stdout + proc.stderr
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "error: no results-*.json" in proc.stdout + proc.stderr
