"""Debian root filesystems from the Debian archive: debootstrap for systems, .deb extraction for one tool."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from conformance.errors import ConformanceError, PreflightError

# Nothing in these trees belongs in an image: caches, logs and the package lists apt just read.
_SCRUB = ("var/cache/apt/archives/*.deb", "var/lib/apt/lists/*", "var/log/*.log", "var/log/apt/*",
          "var/cache/debconf/*-old", "usr/share/doc/*", "usr/share/man/*", "usr/share/info/*")


class RootfsError(ConformanceError):
    """debootstrap or a chroot step failed."""


def _need(tool: str, package: str) -> str:
    found = shutil.which(tool)
    if found:
        return found
    apt = shutil.which("apt-get")
    if apt is None:
        raise PreflightError(f"{tool} not found and apt-get is missing: install {package}")
    result = subprocess.run([apt, "install", "-y", "-qq", package], capture_output=True, text=True, check=False)
    found = shutil.which(tool)
    if result.returncode != 0 or not found:
        raise PreflightError(f"{tool} not found and 'apt-get install {package}' failed")
    return found


def run(argv: Sequence[str], *, log: Path, what: str, stdin: bytes | None = None) -> str:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as handle:
        handle.write(f"$ {' '.join(argv)}\n".encode())
        handle.flush()
        result = subprocess.run(list(argv), input=stdin, stdout=subprocess.PIPE, stderr=handle, check=False)
        handle.write(result.stdout)
    if result.returncode != 0:
        tail = [line for line in log.read_text(errors="replace").splitlines() if line.strip()][-1:]
        raise RootfsError(f"{what} failed (exit {result.returncode}): {tail[0] if tail else ''} [log: {log}]")
    return result.stdout.decode(errors="replace")


def debootstrap(
    target: Path,
    *,
    suite: str,
    mirror: str,
    include: Sequence[str],
    log: Path,
    deb_cache: Path,
    variant: str = "minbase",
) -> None:
    """A Debian ``suite`` tree at ``target``; downloaded .debs are kept in ``deb_cache`` for the next tree."""
    tool = _need("debootstrap", "debootstrap")
    deb_cache.mkdir(parents=True, exist_ok=True)
    argv = [tool, f"--variant={variant}", f"--cache-dir={deb_cache}"]
    if include:
        argv.append("--include=" + ",".join(include))
    run([*argv, suite, str(target), mirror], log=log, what=f"debootstrap {suite} into {target}")
    scrub(target)


def scrub(root: Path) -> None:
    for pattern in _SCRUB:
        for path in root.glob(pattern):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()


def chroot(root: Path, *argv: str, log: Path) -> str:
    return run(["chroot", str(root), *argv], log=log, what=f"chroot {root.name}: {' '.join(argv)}")


def add_user(root: Path, name: str, uid: int, *, log: Path) -> None:
    chroot(root, "groupadd", "--gid", str(uid), name, log=log)
    chroot(root, "useradd", "--uid", str(uid), "--gid", str(uid), "--create-home", "--shell", "/bin/sh", name, log=log)


def extract_debs(packages: Sequence[str], target: Path, *, log: Path) -> None:
    """Unpack Debian packages (no scripts run) into ``target``: for a single static tool like busybox."""
    apt = _need("apt-get", "apt")
    with tempfile.TemporaryDirectory(prefix="cortex-debs-") as tmp:
        run(["sh", "-c", f"cd {tmp} && {apt} download {' '.join(packages)}"], log=log,
            what=f"apt-get download {' '.join(packages)}")
        for deb in sorted(Path(tmp).glob("*.deb")):
            run(["dpkg-deb", "-x", str(deb), str(target)], log=log, what=f"dpkg-deb -x {deb.name}")
