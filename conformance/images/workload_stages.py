"""Stage 3, the workload: the stand-in images of the four containers and the conformance client.

One static binary built from standin serves every role; each image differs only in the
entrypoint that fixes its role (standin/images.yaml). The client image adds the binary to
the Debian client rootfs, so probe pods have both `standin probe` and real curl (whose exit codes
the MTLS evidence records).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

from conformance.images import gobuild, images, rootfs
from conformance.images.cache import file_digest, input_key
from conformance.images.cluster_stages import copy_tree, image_entry
from conformance.images.stage import Context, Stage, go_version, register
from conformance.paths import STANDIN, cache_root

SOURCE = STANDIN
CLIENT_PACKAGES = ("curl", "ca-certificates")
SPEC = SOURCE / "images.yaml"


def _source_digests() -> dict[str, str]:
    return {p.name: file_digest(p) for p in sorted(SOURCE.iterdir()) if p.is_file()}


def source_tag() -> str:
    """A tag that changes whenever the stand-in's source does."""
    return input_key(_source_digests())[:12]


def _binary_build(ctx: Context, out: Path) -> dict[str, Any]:
    (out / "bin").mkdir()
    gobuild._run([gobuild.go_binary(), "build", "-ldflags", gobuild.ldflags(), "-o", str(out / "bin" / "standin"),
                  "."], cwd=SOURCE, env=gobuild.go_env(), log=ctx.log("standin-binary"), what="go build standin")
    return {"files": {"standin": "bin/standin"}}


register(Stage(
    name="standin-binary", group="workload", summary="the stand-in server (standin), static",
    inputs=lambda ctx: {"source": _source_digests(), "go": go_version()},
    build=_binary_build,
))


def _client_rootfs_build(ctx: Context, out: Path) -> dict[str, Any]:
    rootfs.debootstrap(out / "rootfs", suite=ctx.pins["build"]["debian_suite"],
                       mirror=ctx.pins["build"]["debian_mirror"], include=CLIENT_PACKAGES,
                       log=ctx.log("rootfs-client"), deb_cache=cache_root() / "debs")
    return {"files": {"rootfs": "rootfs"}}


register(Stage(
    name="rootfs-client", group="workload", summary="Debian minbase with curl and CA roots, for probe pods",
    inputs=lambda ctx: {"suite": ctx.pins["build"]["debian_suite"], "mirror": ctx.pins["build"]["debian_mirror"],
                        "packages": sorted(CLIENT_PACKAGES)},
    build=_client_rootfs_build, background=True,
))


def image_refs() -> dict[str, str]:
    spec = yaml.safe_load(SPEC.read_text())
    tag = source_tag()
    refs = {role: f"cortex.local/standin-{role}:{tag}" for role in spec["images"] if role != "client"}
    refs["conformance-client"] = f"cortex.local/conformance-client:{tag}"
    return refs


def _images_build(ctx: Context, out: Path) -> dict[str, Any]:
    spec = yaml.safe_load(SPEC.read_text())
    uid = int(str(spec["user"]).split(":")[0])
    binary = ctx.path("standin-binary", "bin/standin")
    refs = image_refs()
    result: dict[str, Any] = {}
    for role, image in spec["images"].items():
        if role == "client":
            continue
        config = images.ImageConfig(entrypoint=list(image["entrypoint"]), user=spec["user"])
        image_id = images.image_from_binary(binary, refs[role], dest=spec["binary"], config=config, uid=uid)
        result[role] = image_entry(out, role, refs[role], image_id, in_node=False)
        result[role]["replaces"] = image["replaces"]

    work = out / "work"
    copy_tree(ctx.dep("rootfs-client").path / "rootfs", work)
    rootfs.add_user(work, "conformance", uid, log=ctx.log("workload-images"))
    target = work / spec["binary"].lstrip("/")
    shutil.copy2(binary, target)
    target.chmod(0o755)
    client = images.ImageConfig(entrypoint=list(spec["images"]["client"]["entrypoint"]), user=spec["user"],
                                workdir="/")
    image_id = images.image_from_rootfs(work, refs["conformance-client"], client)
    shutil.rmtree(work)
    result["conformance-client"] = image_entry(out, "conformance-client", refs["conformance-client"], image_id,
                                               in_node=False)
    return {"images": result}


register(Stage(
    name="workload-images", group="workload",
    summary="stand-in images of the four containers and the client image (curl + standin)",
    inputs=lambda ctx: {"refs": image_refs(), "spec": file_digest(SPEC), "layout": 1},
    deps=("standin-binary", "rootfs-client"),
    build=_images_build,
))
