"""Stage 1, the cluster: kind, the Kubernetes binaries and images, the CNI, and the kind node image."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from collections.abc import Mapping
from pathlib import Path
from string import Template
from typing import Any

from conformance.errors import ConformanceError
from conformance.images import gobuild, gomod, images, nodecheck, rootfs
from conformance.images.cache import file_digest
from conformance.images.stage import Context, Stage, go_version, register
from conformance.paths import FIXTURES, cache_root
from conformance.wait import wait_until

BUILD_FIXTURES = FIXTURES / "build"
KUBE_COMMANDS = ("kubeadm", "kubelet", "kubectl", "kube-apiserver", "kube-controller-manager",
                 "kube-scheduler", "kube-proxy")
CONTROL_PLANE_IMAGES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
NODE_PACKAGES = (
    "systemd", "systemd-sysv", "dbus", "containerd", "runc", "containernetworking-plugins",
    "iptables", "nftables", "ipset", "iproute2", "kmod", "conntrack", "ethtool", "socat", "util-linux",
    "mount", "libseccomp2", "procps", "ca-certificates", "curl", "pigz", "jq",
)
NET_PACKAGES = ("iptables", "ipset", "iproute2", "conntrack", "kmod", "ca-certificates")


def _b(ctx: Context) -> Mapping[str, Any]:
    return ctx.pins["build"]


def _k8s_version(ctx: Context) -> str:
    return ctx.pins["kubernetes"]["version"]


def _deb_cache() -> Path:
    return cache_root() / "debs"


def image_entry(out: Path, role: str, ref: str, image_id: str, *, in_node: bool) -> dict[str, Any]:
    archive = Path("images") / f"{role}.tar"
    images.save([ref], out / archive)
    return {"ref": ref, "id": image_id, "archive": str(archive), "in_node": in_node}


# ---- Go binaries ---------------------------------------------------------------------------------

def _kind_build(ctx: Context, out: Path) -> dict[str, Any]:
    version = ctx.pins["kind"]["version"]
    gobuild.install(["sigs.k8s.io/kind"], version, out / "bin", log=ctx.log("kind"))
    return {"files": {"kind": "bin/kind"}}


register(Stage(
    name="kind", group="cluster", summary="the kind CLI (go install sigs.k8s.io/kind)",
    inputs=lambda ctx: {"kind": ctx.pins["kind"]["version"], "go": go_version()},
    build=_kind_build,
))


def kubernetes_ldflags(version: str, build_date: str) -> str:
    """The version variables kubeadm and `kubectl version` read; kubeadm rejects v0.0.0."""
    major, minor = version.lstrip("v").split(".")[:2]
    values = {"gitVersion": version, "gitMajor": major, "gitMinor": minor, "gitTreeState": "clean",
              "buildDate": build_date}
    x = {f"{pkg}.{key}": value for pkg in ("k8s.io/client-go/pkg/version", "k8s.io/component-base/version")
         for key, value in values.items()}
    return gobuild.ldflags(x=x)


def _kubernetes_build(ctx: Context, out: Path) -> dict[str, Any]:
    version = _k8s_version(ctx)
    module = gobuild.download("k8s.io/kubernetes", version, log=ctx.log("kubernetes"))
    info = json.loads(module.gomod.with_suffix(".info").read_text())
    # Everything static, the kubelet included, so one compile of each shared package serves all.
    gobuild.wrapper_build(
        "k8s.io/kubernetes", version, [f"k8s.io/kubernetes/cmd/{cmd}" for cmd in KUBE_COMMANDS], out / "bin",
        workdir=out / "wrapper", log=ctx.log("kubernetes"),
        local_version=gomod.kubernetes_staging_version(version),
        ld=kubernetes_ldflags(version, info["Time"]),
    )
    return {"files": {cmd: f"bin/{cmd}" for cmd in KUBE_COMMANDS}, "version": version}


register(Stage(
    name="kubernetes", group="cluster", summary="kubeadm, kubelet, kubectl and the control-plane binaries",
    inputs=lambda ctx: {"version": _k8s_version(ctx), "go": go_version(), "cgo": False},
    build=_kubernetes_build,
))


def _etcd_build(ctx: Context, out: Path) -> dict[str, Any]:
    version = _b(ctx)["etcd"]
    ld = gobuild.ldflags(x={"go.etcd.io/etcd/api/v3/version.GitSHA": version})
    built = gobuild.wrapper_build("go.etcd.io/etcd/server/v3", version, ["go.etcd.io/etcd/server/v3"], out / "bin",
                                  workdir=out / "wrapper", log=ctx.log("etcd"),
                                  local_version=gomod.etcd_version(version), ld=ld)
    built[0].rename(out / "bin" / "etcd")
    return {"files": {"etcd": "bin/etcd"}, "version": version}


register(Stage(
    name="etcd", group="cluster", summary="etcd server (wrapper module over go.etcd.io/etcd/server/v3)",
    inputs=lambda ctx: {"etcd": _b(ctx)["etcd"], "go": go_version()},
    build=_etcd_build,
))


def _simple_install(stage: str, package: str, version_of, ld_of=None):
    def build(ctx: Context, out: Path) -> dict[str, Any]:
        version = version_of(ctx)
        ld = ld_of(version) if ld_of else gobuild.ldflags()
        (binary,) = gobuild.install([package], version, out / "bin", log=ctx.log(stage), ld=ld)
        return {"files": {binary.name: f"bin/{binary.name}"}, "version": version}

    return build


register(Stage(
    name="coredns", group="cluster", summary="CoreDNS at the version kubeadm expects",
    inputs=lambda ctx: {"coredns": _b(ctx)["coredns"], "go": go_version()},
    build=_simple_install("coredns", "github.com/coredns/coredns", lambda ctx: _b(ctx)["coredns"]),
))
register(Stage(
    name="crictl", group="cluster", summary="crictl (sigs.k8s.io/cri-tools)",
    inputs=lambda ctx: {"cri_tools": _b(ctx)["cri_tools"], "go": go_version()},
    build=_simple_install(
        "crictl", "sigs.k8s.io/cri-tools/cmd/crictl", lambda ctx: _b(ctx)["cri_tools"],
        lambda v: gobuild.ldflags(x={"sigs.k8s.io/cri-tools/pkg/version.Version": v}),
    ),
))
register(Stage(
    name="metrics-server", group="cluster", summary="metrics-server binary",
    inputs=lambda ctx: {"metrics_server": ctx.pins["metrics_server"]["version"], "go": go_version()},
    build=_simple_install(
        "metrics-server", "sigs.k8s.io/metrics-server/cmd/metrics-server",
        lambda ctx: ctx.pins["metrics_server"]["version"],
        lambda v: gobuild.ldflags(x={"sigs.k8s.io/metrics-server/pkg/version.gitVersion": v}),
    ),
))


def _kube_router_build(ctx: Context, out: Path) -> dict[str, Any]:
    version = _b(ctx)["kube_router"]
    floor = sorted(_b(ctx).get("kube_router_dependency_floor", {}).items())
    ld = gobuild.ldflags(x={"github.com/cloudnativelabs/kube-router/v2/pkg/version.Version": version})
    gobuild.wrapper_build("github.com/cloudnativelabs/kube-router/v2", version,
                          ["github.com/cloudnativelabs/kube-router/v2/cmd/kube-router"], out / "bin",
                          workdir=out / "wrapper", log=ctx.log("kube-router"), extra_requires=floor, ld=ld)
    return {"files": {"kube-router": "bin/kube-router"}, "version": version}


register(Stage(
    name="kube-router", group="cluster", summary="kube-router (CNI and NetworkPolicy enforcer)",
    inputs=lambda ctx: {"kube_router": _b(ctx)["kube_router"], "go": go_version(),
                        "floor": _b(ctx).get("kube_router_dependency_floor", {})},
    build=_kube_router_build,
))


def _pause_build(ctx: Context, out: Path) -> dict[str, Any]:
    version = _b(ctx)["pause"]
    module = gobuild.download("k8s.io/kubernetes", _k8s_version(ctx), log=ctx.log("pause"))
    source = module.dir / "build" / "pause" / "linux" / "pause.c"
    (out / "bin").mkdir()
    rootfs.run(["gcc", "-Os", "-Wall", "-Werror", "-static", f"-DVERSION=v{version}", "-o",
                str(out / "bin" / "pause"), str(source)], log=ctx.log("pause"), what="gcc -static pause.c")
    rootfs.run(["strip", str(out / "bin" / "pause")], log=ctx.log("pause"), what="strip pause")
    return {"files": {"pause": "bin/pause"}, "version": version}


register(Stage(
    name="pause", group="cluster", summary="pause, gcc -static from the kubernetes module's pause.c",
    inputs=lambda ctx: {"pause": _b(ctx)["pause"], "kubernetes": _k8s_version(ctx),
                        "gcc": subprocess.run(["gcc", "-dumpfullversion"], capture_output=True, text=True,
                                              check=False).stdout.strip()},
    build=_pause_build,
))


# ---- root filesystems ------------------------------------------------------------------------------

def _rootfs_stage(name: str, packages: tuple[str, ...], summary: str) -> Stage:
    def build(ctx: Context, out: Path) -> dict[str, Any]:
        rootfs.debootstrap(out / "rootfs", suite=_b(ctx)["debian_suite"], mirror=_b(ctx)["debian_mirror"],
                           include=packages, log=ctx.log(name), deb_cache=_deb_cache())
        return {"files": {"rootfs": "rootfs"}}

    return register(Stage(
        name=name, group="cluster", summary=summary,
        inputs=lambda ctx: {"suite": _b(ctx)["debian_suite"], "mirror": _b(ctx)["debian_mirror"],
                            "packages": sorted(packages)},
        build=build, background=True,
    ))


_rootfs_stage("rootfs-node", NODE_PACKAGES, "Debian rootfs for the kind node (systemd, containerd, runc, CNI)")
_rootfs_stage("rootfs-net", NET_PACKAGES, "Debian rootfs for kube-proxy and kube-router (iptables, ipset)")


def copy_tree(src: Path, dst: Path) -> None:
    """cp -a, hard-linking when possible: a rootfs copy then costs inodes, not gigabytes."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(["cp", "-a", "--reflink=auto", str(src), str(dst)], capture_output=True, text=True,
                            check=False)
    if result.returncode != 0:
        raise ConformanceError(f"copying {src} failed: {result.stderr.strip().splitlines()[-1:]}")


# ---- component images ------------------------------------------------------------------------------

def component_refs(ctx: Context) -> dict[str, str]:
    """The exact names kubeadm, kind and the manifests ask for, so nothing is ever pulled."""
    k8s = _k8s_version(ctx)
    b = _b(ctx)
    refs = {name: f"registry.k8s.io/{name}:{k8s}" for name in (*CONTROL_PLANE_IMAGES, "kube-proxy")}
    refs["etcd"] = f"registry.k8s.io/etcd:{b['etcd'].lstrip('v')}-0"
    refs["coredns"] = f"registry.k8s.io/coredns/coredns:{b['coredns']}"
    refs["pause"] = f"registry.k8s.io/pause:{b['pause']}"
    refs["metrics-server"] = f"registry.k8s.io/metrics-server/metrics-server:{ctx.pins['metrics_server']['version']}"
    refs["kube-router"] = f"docker.io/cloudnativelabs/kube-router:{b['kube_router']}"
    return refs


def _binary_image(binary: Path, ref: str, *, dest: str, user: str | None, entrypoint: bool = True) -> str:
    config = images.ImageConfig(entrypoint=[dest] if entrypoint else None, user=user)
    return images.image_from_binary(binary, ref, dest=dest, config=config)


def _rootfs_image(base: Path, work: Path, binary: Path, ref: str, dest: str) -> str:
    copy_tree(base, work)
    target = work / dest.lstrip("/")
    shutil.copy2(binary, target)
    image = images.image_from_rootfs(work, ref, images.ImageConfig(entrypoint=[dest]))
    shutil.rmtree(work)
    return image


def _component_images_build(ctx: Context, out: Path) -> dict[str, Any]:
    refs = component_refs(ctx)
    k8s = ctx.dep("kubernetes").path / "bin"
    result: dict[str, Any] = {}
    for name in CONTROL_PLANE_IMAGES:
        # kubeadm's static pods run these as root with an explicit command, like the upstream images.
        image = _binary_image(k8s / name, refs[name], dest=f"/usr/local/bin/{name}", user=None, entrypoint=False)
        result[name] = image_entry(out, name, refs[name], image, in_node=True)
    net = ctx.dep("rootfs-net").path / "rootfs"
    image = _rootfs_image(net, out / "work", k8s / "kube-proxy", refs["kube-proxy"], "/usr/local/bin/kube-proxy")
    result["kube-proxy"] = image_entry(out, "kube-proxy", refs["kube-proxy"], image, in_node=True)
    image = _rootfs_image(net, out / "work", ctx.path("kube-router", "bin/kube-router"), refs["kube-router"],
                          "/usr/local/bin/kube-router")
    result["kube-router"] = image_entry(out, "kube-router", refs["kube-router"], image, in_node=True)
    image = _binary_image(ctx.path("etcd", "bin/etcd"), refs["etcd"], dest="/usr/local/bin/etcd", user=None)
    result["etcd"] = image_entry(out, "etcd", refs["etcd"], image, in_node=True)
    # CoreDNS binds port 53: as root with only NET_BIND_SERVICE (kubeadm's Deployment drops the rest).
    image = _binary_image(ctx.path("coredns", "bin/coredns"), refs["coredns"], dest="/coredns", user=None)
    result["coredns"] = image_entry(out, "coredns", refs["coredns"], image, in_node=True)
    image = _binary_image(ctx.path("pause", "bin/pause"), refs["pause"], dest="/pause", user="65535:65535")
    result["pause"] = image_entry(out, "pause", refs["pause"], image, in_node=True)
    image = _binary_image(ctx.path("metrics-server", "bin/metrics-server"), refs["metrics-server"],
                          dest="/metrics-server", user="65534:65534")
    result["metrics-server"] = image_entry(out, "metrics-server", refs["metrics-server"], image, in_node=True)
    return {"images": result}


register(Stage(
    name="component-images", group="cluster",
    summary="control-plane, kube-proxy, etcd, CoreDNS, pause, metrics-server and kube-router images",
    inputs=lambda ctx: {"refs": component_refs(ctx), "layout": 1},
    deps=("kubernetes", "etcd", "coredns", "pause", "metrics-server", "kube-router", "rootfs-net"),
    build=_component_images_build,
))


# ---- the kind node image ---------------------------------------------------------------------------

# The platform's images, baked into the node beside Kubernetes' own: they change only with their pins,
# and `kind load` of each into each node cost minutes of every cold cluster (measured: 3 min of a
# 5 min 25 s cluster phase for 12 images on 3 nodes). Only the stand-ins, which change with the
# suite, are loaded per cluster.
PRELOADED_STAGES = ("istio-images", "vault-images", "telemetry-images")

def _kind_base_files(ctx: Context) -> Path:
    module = gobuild.download("sigs.k8s.io/kind", ctx.pins["kind"]["version"], log=ctx.log("node-image"))
    return module.dir / "images" / "base" / "files"


def _install_kind_files(files: Path, root: Path) -> None:
    """What kind's base Dockerfile COPYs, with its modes (the module cache is read-only)."""
    for src in sorted(files.rglob("*")):
        rel = src.relative_to(files)
        if rel.parts[0] == "LICENSES":
            continue
        dst = root / rel
        if src.is_dir():
            dst.mkdir(parents=True, exist_ok=True)
            dst.chmod(0o755)
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
        executable = rel.parts[:3] == ("usr", "local", "bin") or rel.parts[:2] == ("kind", "bin")
        dst.chmod(0o755 if executable else 0o644)


def _systemd_setup(root: Path, log: Path) -> None:
    """The systemd trimming of kind's base Dockerfile: only what a node needs starts."""
    for pattern in ("lib/systemd/system/sysinit.target.wants/systemd-tmpfiles-setup.service",
                    "lib/systemd/system/multi-user.target.wants/*", "etc/systemd/system/*.wants/*",
                    "lib/systemd/system/local-fs.target.wants/*", "lib/systemd/system/sockets.target.wants/*udev*",
                    "lib/systemd/system/sockets.target.wants/*initctl*", "lib/systemd/system/basic.target.wants/*"):
        for path in root.glob(pattern):
            path.unlink()
    with (root / "etc/systemd/journald.conf").open("a") as handle:
        handle.write("ReadKMsg=no\n")
    rootfs.chroot(root, "systemctl", "enable", "kubelet.service", "containerd.service", "undo-mount-hacks.service",
                  log=log)
    rootfs.chroot(root, "systemctl", "mask", "systemd-binfmt.service", log=log)
    (root / "etc/kubernetes/manifests").mkdir(parents=True, exist_ok=True)


def _containerd_config(root: Path, pause_ref: str) -> None:
    """kind's containerd config with our pause tag and OOM score adjustments clamped.

    Lowering a process's oom_score_adj needs CAP_SYS_RESOURCE, which this VM's bounding set
    lacks, so runc init dies ("can't get final child's PID from pipe: EOF") on every pod sandbox
    kubelet asks for at -998. restrict_oom_score_adj (meant for rootless) keeps each container at
    or above containerd's own score instead.
    """
    config = root / "etc/containerd/config.toml"
    replaced = {"sandbox_image": f'  sandbox_image = "{pause_ref}"',
                "restrict_oom_score_adj": "  restrict_oom_score_adj = true"}
    lines = []
    for line in config.read_text().splitlines():
        key = line.strip().split(" ", 1)[0]
        lines.append(replaced.get(key, line))
    config.write_text("\n".join(lines) + "\n")


def _cri_base_spec(root: Path, log: Path) -> None:
    # As kind's base image does: the default OCI spec plus the product_uuid hook, without rlimits.
    spec = json.loads(rootfs.chroot(root, "ctr", "oci", "spec", log=log))
    spec.setdefault("hooks", {}).setdefault("createContainer", []).append({"path": "/kind/bin/mount-product-files.sh"})
    spec.get("process", {}).pop("rlimits", None)
    (root / "etc/containerd/cri-base.json").write_text(json.dumps(spec, indent=2) + "\n")


class _Containerd:
    """A throwaway containerd on the host whose root is the node's /var/lib/containerd."""

    def __init__(self, root: Path, work: Path, log: Path):
        self.sock = work / "containerd.sock"
        self.log = log
        config = work / "containerd.toml"
        config.write_text(
            "version = 2\n"
            f'root = "{root}"\n'
            f'state = "{work / "state"}"\n'
            'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
            "[grpc]\n"
            f'  address = "{self.sock}"\n'
        )
        binary = shutil.which("containerd")
        if binary is None:
            raise ConformanceError("containerd not found on the host: install containerd (docker.io brings it)")
        handle = log.open("ab")
        self.proc = subprocess.Popen([binary, "--config", str(config)], stdout=handle, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        handle.close()
        wait_until(f"build containerd socket {self.sock}", self._ready, timeout=60, interval=0.3,
                   fail=lambda: None if self.proc.poll() is None else f"containerd exited, see {log}")

    def _ready(self) -> bool:
        return self.sock.exists() and subprocess.run(self.ctr("version"), capture_output=True,
                                                      check=False).returncode == 0

    def ctr(self, *args: str) -> list[str]:
        return ["ctr", "--address", str(self.sock), "--namespace", "k8s.io", *args]

    def import_archive(self, archive: Path) -> None:
        with archive.open("rb") as handle:
            rootfs.run(self.ctr("images", "import", "--label=io.cri-containerd.pinned=pinned", "--all-platforms",
                                "--no-unpack", "--digests", "-"),
                       log=self.log, what=f"ctr images import {archive.name}", stdin=handle.read())

    def image_names(self) -> list[str]:
        out = rootfs.run(self.ctr("images", "list", "-q"), log=self.log, what="ctr images list")
        return [line.strip() for line in out.splitlines() if line.strip()]

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=60)


def required_node_images(kubeadm: Path, version: str, refs: Mapping[str, str], log: Path) -> list[str]:
    """Everything a cluster from this node runs: kubeadm's own list plus the CNI and add-ons we ship."""
    listed = rootfs.run([str(kubeadm), "config", "images", "list", "--kubernetes-version", version],
                        log=log, what="kubeadm config images list")
    required = [line.strip() for line in listed.splitlines() if line.strip()]
    return sorted({*required, refs["pause"], refs["kube-router"], refs["metrics-server"]})


def node_ref(ctx: Context) -> str:
    return f"cortex.local/kind-node:{_k8s_version(ctx)}"


def _node_image_build(ctx: Context, out: Path) -> dict[str, Any]:
    log = ctx.log("node-image")
    refs = component_refs(ctx)
    root = out / "work" / "rootfs"
    copy_tree(ctx.dep("rootfs-node").path / "rootfs", root)
    _install_kind_files(_kind_base_files(ctx), root)
    for tool in ("containerd", "containerd-shim-runc-v2", "ctr"):
        link = root / "usr/local/bin" / tool
        if not link.exists():
            link.symlink_to(f"/usr/bin/{tool}")
    shutil.copy2(ctx.path("crictl", "bin/crictl"), root / "usr/local/bin/crictl")
    cni = root / "opt/cni/bin"
    cni.mkdir(parents=True, exist_ok=True)
    for plugin in (root / "usr/lib/cni").iterdir():
        shutil.copy2(plugin, cni / plugin.name)
    _containerd_config(root, refs["pause"])
    _cri_base_spec(root, log)
    _systemd_setup(root, log)
    k8s = ctx.dep("kubernetes").path / "bin"
    for cmd in ("kubeadm", "kubelet", "kubectl"):
        shutil.copy2(k8s / cmd, root / "usr/bin" / cmd)
        (root / "usr/bin" / cmd).chmod(0o755)
    (root / "kind/version").write_text(_k8s_version(ctx))
    manifests = root / "kind/manifests"
    manifests.mkdir(parents=True, exist_ok=True)
    cni_manifest = Template((BUILD_FIXTURES / "kube-router.yaml").read_text())
    (manifests / "default-cni.yaml").write_text(cni_manifest.substitute(KUBE_ROUTER_IMAGE=refs["kube-router"]))
    shutil.copyfile(BUILD_FIXTURES / "default-storage.yaml", manifests / "default-storage.yaml")

    containerd = _Containerd(root / "var/lib/containerd", out / "work", log)
    try:
        for stage in ("component-images", *PRELOADED_STAGES):
            for image in ctx.dep(stage).result["images"].values():
                containerd.import_archive(ctx.dep(stage).path / image["archive"])
        present = containerd.image_names()
    finally:
        containerd.stop()
    required = required_node_images(k8s / "kubeadm", _k8s_version(ctx), refs, log)
    nodecheck.assert_complete(required, present, node=node_ref(ctx))
    shutil.rmtree(out / "work" / "state", ignore_errors=True)
    rootfs.scrub(root)

    ref = node_ref(ctx)
    config = images.ImageConfig(entrypoint=["/usr/local/bin/entrypoint", "/sbin/init"], env={"container": "docker"},
                                stop_signal="SIGRTMIN+3")
    image = images.image_from_rootfs(root, ref, config)
    shutil.rmtree(out / "work")
    return {
        "images": {"node": image_entry(out, "node", ref, image, in_node=False)},
        "node_images": sorted(present),
        "files": {"kube-router-manifest": str(BUILD_FIXTURES / "kube-router.yaml")},
    }


register(Stage(
    name="node-image", group="cluster",
    summary="the kind node: Debian rootfs, kind base files, Kubernetes binaries, every image preloaded",
    inputs=lambda ctx: {
        "kind": ctx.pins["kind"]["version"], "kubernetes": _k8s_version(ctx), "refs": component_refs(ctx),
        "fixtures": {name: file_digest(BUILD_FIXTURES / name) for name in ("kube-router.yaml", "default-storage.yaml")},
        # The recipe's revision: raise it when the build code changes what the node contains.
        "layout": 3,  # 3: the platform images preloaded too
    },
    deps=("rootfs-node", "kubernetes", "crictl", "component-images", *PRELOADED_STAGES),
    build=_node_image_build,
))


def _metrics_server_manifests(ctx: Context, out: Path) -> dict[str, Any]:
    module = gobuild.download("sigs.k8s.io/metrics-server", ctx.pins["metrics_server"]["version"],
                              log=ctx.log("cluster-files"))
    return {"files": {"metrics-server-kustomize": str(module.dir / "manifests" / "overlays" / "release")}}


register(Stage(
    name="cluster-files", group="cluster",
    summary="where upstream manifests live in the module cache (metrics-server kustomize overlay)",
    inputs=lambda ctx: {"metrics_server": ctx.pins["metrics_server"]["version"]},
    build=_metrics_server_manifests,
))
