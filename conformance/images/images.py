"""Images without a registry: from a root filesystem directory or from one static binary.

All calls go to the private dockerd (conformance.images.dockerd); nothing here pulls.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from conformance.errors import ConformanceError
from conformance.images import dockerd

NONROOT_UID = 65532
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


class ImageError(ConformanceError):
    """A docker step of an image build failed."""


@dataclass(frozen=True)
class ImageConfig:
    """What a Dockerfile would say beyond the files: all of it is optional."""

    entrypoint: Sequence[str] | None = None
    cmd: Sequence[str] | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    user: str | None = None
    workdir: str | None = None
    stop_signal: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)

    def changes(self) -> list[str]:
        """The Dockerfile instructions ``docker import --change`` accepts (STOPSIGNAL is not one)."""
        lines = [f"ENV {key}={json.dumps(value)}" for key, value in self.env.items()]
        lines += [f"LABEL {key}={json.dumps(value)}" for key, value in self.labels.items()]
        if self.entrypoint is not None:
            lines.append(f"ENTRYPOINT {json.dumps(list(self.entrypoint))}")
        if self.cmd is not None:
            lines.append(f"CMD {json.dumps(list(self.cmd))}")
        if self.user is not None:
            lines.append(f"USER {self.user}")
        if self.workdir is not None:
            lines.append(f"WORKDIR {self.workdir}")
        return lines


def docker(*args: str, stdin=None, daemon: dockerd.Daemon = dockerd.DAEMON,
           env: Mapping[str, str] | None = None) -> str:
    """Run the docker CLI against the private daemon; one-line error on failure."""
    cli = shutil.which("docker")
    if cli is None:
        raise ImageError("docker CLI not found on PATH")
    result = subprocess.run([cli, *args], env={**daemon.env(), **(env or {})}, stdin=stdin,
                            capture_output=True, check=False)
    if result.returncode != 0:
        lines = result.stderr.decode(errors="replace").strip().splitlines() or ["no output"]
        raise ImageError(f"docker {args[0]} failed: {lines[-1]}")
    return result.stdout.decode(errors="replace")


def image_id(ref: str) -> str | None:
    """The local image ID (config digest) of ``ref``, or None when the daemon lacks it."""
    try:
        return docker("image", "inspect", "--format", "{{.Id}}", ref).strip() or None
    except ImageError:
        return None


def image_from_rootfs(rootfs: Path, ref: str, config: ImageConfig = ImageConfig()) -> str:
    """Make ``ref`` from the directory ``rootfs`` as a single layer; returns the image ID."""
    argv = ["import"]
    for change in config.changes():
        argv += ["--change", change]
    tar = subprocess.Popen(
        ["tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-C", str(rootfs), "-cf", "-", "."],
        stdout=subprocess.PIPE,
    )
    try:
        docker(*argv, "-", ref, stdin=tar.stdout)
    finally:
        assert tar.stdout is not None
        tar.stdout.close()
        if tar.wait() != 0:
            raise ImageError(f"tar of {rootfs} failed with exit {tar.returncode}")
    if config.stop_signal:
        _add_metadata(ref, [f"STOPSIGNAL {config.stop_signal}"])
    found = image_id(ref)
    if found is None:
        raise ImageError(f"{ref} missing right after docker import")
    return found


def _add_metadata(ref: str, instructions: Sequence[str]) -> None:
    # A build with only metadata instructions runs no container, so it needs no network or runtime.
    with tempfile.TemporaryDirectory(prefix="cortex-meta-") as ctx:
        Path(ctx, "Dockerfile").write_text("\n".join([f"FROM {ref}", *instructions]) + "\n")
        docker("build", "-q", "-t", ref, ctx, env={"DOCKER_BUILDKIT": "0"})


def minimal_rootfs(root: Path, *, uid: int = NONROOT_UID, ca_bundle: bool = True) -> None:
    """The few files a static binary expects: passwd/group with a non-root user, /tmp, CA roots."""
    for sub in ("etc", "tmp", "home/nonroot"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    (root / "tmp").chmod(0o1777)
    os.chown(root / "home/nonroot", uid, uid)
    (root / "etc/passwd").write_text(
        f"root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:{uid}:{uid}:nonroot:/home/nonroot:/sbin/nologin\n")
    (root / "etc/group").write_text(f"root:x:0:\nnonroot:x:{uid}:\n")
    (root / "etc/nsswitch.conf").write_text("hosts: files dns\n")
    if ca_bundle and HOST_CA_BUNDLE.is_file():
        certs = root / "etc/ssl/certs"
        certs.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(HOST_CA_BUNDLE, certs / "ca-certificates.crt")


def image_from_binary(
    binary: Path,
    ref: str,
    *,
    dest: str | None = None,
    files: Mapping[str, Path] | None = None,
    config: ImageConfig | None = None,
    uid: int = NONROOT_UID,
) -> str:
    """A minimal image holding one static binary (plus ``files``: image path -> host path).

    The default entrypoint is the binary and the default user is ``uid`` (non-root), so the
    image passes Pod Security *restricted* without a securityContext override of the user.
    """
    dest = dest or f"/usr/local/bin/{binary.name}"
    with tempfile.TemporaryDirectory(prefix="cortex-rootfs-") as tmp:
        root = Path(tmp)
        minimal_rootfs(root, uid=uid)
        for image_path, host_path in {dest: binary, **(files or {})}.items():
            target = root / image_path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(host_path, target)
        cfg = config or ImageConfig(entrypoint=[dest], user=f"{uid}:{uid}")
        return image_from_rootfs(root, ref, cfg)


def save(refs: Sequence[str], path: Path) -> None:
    """docker save ``refs`` into one archive (the format ``ctr images import`` and ``kind load`` read)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    docker("save", "-o", str(path), *refs)


def ensure_loaded(ref: str, archive: Path, expected_id: str) -> bool:
    """Make the daemon hold ``ref`` at ``expected_id``, loading the cached archive if it does not.

    Returns True when a load was needed (a fresh data root, or the tag was moved).
    """
    if image_id(ref) == expected_id:
        return False
    if not archive.is_file():
        raise ImageError(f"{ref} is not in the daemon and its archive {archive} is missing")
    docker("load", "-q", "-i", str(archive))
    found = image_id(ref)
    if found != expected_id:
        raise ImageError(f"{archive} loaded {ref} as {found}, expected {expected_id}")
    return True
