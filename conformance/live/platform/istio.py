"""Istio in the conformance cluster: istio-base, istiod, Istio CNI and the ingress gateway. (The
otel-tracing provider's collector is installed beside it: conformance.live.platform.collector.)

The charts and helm come from the istio module (stage ``istio-charts``); the values from
fixtures/istio/. The two image sources differ only in values: ``build`` points the charts at our
images (upstream Envoy, so istiod leaves Istio's own filters out: images-build.yaml) and ``pull``
at upstream's images of the pinned release (images-pull.yaml). Every wait is a server-side watch
(``kubectl rollout status``/``kubectl wait``) in short slices, so a pod that cannot start ends the
wait at once with its reason instead of at the deadline.

    python -m conformance.live.platform.istio install --images build --kubeconfig PATH [--context NAME]
    python -m conformance.live.platform.istio render --images build      # what install would apply
    python -m conformance.live.platform.istio uninstall --kubeconfig PATH
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from conformance import fixtures, paths
from conformance.errors import ConformanceError, PreflightError, WaitTimeout, run_cli
from conformance.live.access.kube import Kube, last_line
from conformance.wait import wait_until

SOURCES = ("build", "pull")
SYSTEM_NAMESPACE = "istio-system"
GATEWAY_NAMESPACE = fixtures.workload().gateway.namespace
GATEWAY_RELEASE = "istio-ingressgateway"
GATEWAY_LABELS = fixtures.workload().gateway.labels
GATEWAY_NODE_PORTS = fixtures.workload().gateway.node_ports
VALUES_DIR = paths.FIXTURES / "istio"
CRD_LABEL = "app.kubernetes.io/part-of=istio"
OTEL_NAMESPACE = "observability"
MESH_TELEMETRY = VALUES_DIR / "telemetry_mesh_default.yaml"
# Waiting states a pod does not leave by itself: an install that hits one has failed.
class IstioError(ConformanceError):
    """helm or kubectl failed while installing Istio; one line, naming the release or object."""


@dataclass(frozen=True)
class Release:
    name: str
    chart: str                      # relative to the module's manifests/charts
    namespace: str
    values: tuple[str, ...]         # files under fixtures/istio/; {source} is the image source
    workloads: tuple[str, ...] = ()  # kind/name that must finish rolling out


RELEASES = (
    Release("istio-base", "base", SYSTEM_NAMESPACE, ()),
    Release("istiod", "istio-control/istio-discovery", SYSTEM_NAMESPACE, ("istiod.yaml", "images-{source}.yaml"),
            ("deployment/istiod",)),
    # Before any sidecar pod: a pod created while the plugin is missing starts without redirection.
    Release("istio-cni", "istio-cni", SYSTEM_NAMESPACE, ("cni.yaml",), ("daemonset/istio-cni-node",)),
    Release(GATEWAY_RELEASE, "gateway", GATEWAY_NAMESPACE, ("gateway.yaml",), (f"deployment/{GATEWAY_RELEASE}",)),
)


@dataclass(frozen=True)
class Tools:
    """helm and the charts directory, both from the istio-charts build stage."""

    helm: Path
    charts: Path


def built_tools() -> Tools:
    """helm and charts from the stage cache; the one-line error says how to build them."""
    from conformance.images import stage

    entry = stage.cached(["istio-charts"]).get("istio-charts")
    if entry is None:
        raise PreflightError("helm and the Istio charts are not built for these pins: "
                             "run `python -m conformance.images --stage istio-charts`")
    files = entry.result["files"]
    return Tools(helm=entry.path / files["helm"], charts=Path(files["istio-charts"]))


def image_refs(source: str, pins: Mapping[str, Any] | None = None) -> dict[str, str]:
    """The images a cluster must hold before install: ours for build, none to preload for pull."""
    _check_source(source)
    if source == "pull":
        return {}
    from conformance.images.istio_stages import image_refs as built_refs

    return built_refs(pins or fixtures.pins())


def proxy_image(source: str, pins: Mapping[str, Any] | None = None) -> str:
    """The image the injector gives every sidecar (istio-proxy and the istio-validation init container)."""
    pins = pins or fixtures.pins()
    if source == "pull":
        return f"{pins['istio']['pull_hub']}/proxyv2:{pins['istio']['pull_tag']}"
    return image_refs(source, pins)["istio-proxy"]


def image_values(source: str, release: Release, pins: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The values that name images: derived from the pins, so they live here and not in fixtures/."""
    _check_source(source)
    pins = pins or fixtures.pins()
    if source == "pull":
        ist = pins["istio"]
        return {"global": {"hub": ist["pull_hub"], "tag": str(ist["pull_tag"])}}
    refs = image_refs(source, pins)
    # A value with a "/" is taken by the charts as a whole image reference, not hub/name:tag.
    if release.name == "istiod":
        # proxy_init names the image of the istio-validation init container that Istio CNI adds.
        return {"image": refs["istiod"], "global": {"proxy": {"image": refs["istio-proxy"]},
                                                    "proxy_init": {"image": refs["istio-proxy"]}}}
    if release.name == "istio-cni":
        return {"image": refs["istio-cni"]}
    return {}


def values_files(source: str, release: Release) -> list[Path]:
    files = [VALUES_DIR / name.format(source=source) for name in release.values]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise PreflightError(f"values file missing: {', '.join(missing)}")
    return files


def _check_source(source: str) -> None:
    if source not in SOURCES:
        raise PreflightError(f"unknown image source {source!r}: choose one of {', '.join(SOURCES)}")


def _helm(tools: Tools, args: Sequence[str], *, what: str, timeout: float = 300) -> str:
    if not tools.helm.is_file():
        raise PreflightError(f"helm not found at {tools.helm}: run `python -m conformance.images "
                             "--stage istio-charts`")
    with tempfile.TemporaryDirectory(prefix="cortex-helm-") as home:
        # helm keeps repositories and caches under $HOME; none of it is wanted between runs. The
        # user's kubeconfig stays the default for a Kube without one, as it is for kubectl.
        env = {"PATH": "/usr/bin:/bin", "HOME": home, "HELM_CACHE_HOME": f"{home}/cache",
               "HELM_CONFIG_HOME": f"{home}/config", "HELM_DATA_HOME": f"{home}/data",
               "KUBECONFIG": os.environ.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")}
        try:
            result = subprocess.run([str(tools.helm), *args], capture_output=True, text=True, check=False,
                                    env=env, timeout=timeout)
        except subprocess.TimeoutExpired as err:
            raise IstioError(f"{what} did not finish within {timeout:g}s") from err
    if result.returncode != 0:
        raise IstioError(f"{what} failed: {last_line(result.stderr)}")
    return result.stdout


def _takeover(tools: Tools) -> list[str]:
    """helm 4 applies server-side: an object another manager wrote last (a fault's undo re-creates the
    injector webhook with kubectl) conflicts. The platform on our cluster is ours, so helm takes it back."""
    version = _helm(tools, ["version", "--short"], what="helm version").strip()
    return ["--force-conflicts"] if version.startswith("v4") else []


def _helm_args(verb: Sequence[str], tools: Tools, release: Release, source: str, generated: Path) -> list[str]:
    args = [*verb, release.name, str(tools.charts / release.chart), "--namespace", release.namespace]
    for path in values_files(source, release):
        args += ["--values", str(path)]
    return [*args, "--values", str(generated)]


def _generated_values(tmp: Path, source: str, release: Release, pins: Mapping[str, Any]) -> Path:
    path = tmp / f"{release.name}-images.yaml"
    path.write_text(yaml.safe_dump(image_values(source, release, pins), sort_keys=True))
    return path


def render(source: str, *, tools: Tools | None = None, pins: Mapping[str, Any] | None = None) -> str:
    """Every release as ``helm template`` renders it, concatenated: what install applies, offline."""
    _check_source(source)
    tools = tools or built_tools()
    pins = pins or fixtures.pins()
    out = []
    with tempfile.TemporaryDirectory(prefix="cortex-istio-values-") as tmp:
        for release in RELEASES:
            generated = _generated_values(Path(tmp), source, release, pins)
            out.append(_helm(tools, _helm_args(["template"], tools, release, source, generated),
                             what=f"helm template {release.name}"))
    return "".join(out)


def wait_rolled_out(kube: Kube, namespace: str, workload: str, *, timeout: float) -> None:
    """``kubectl rollout status`` in slices, ending early on a stuck pod (Kube.rollout)."""
    kube.rollout(namespace, workload, timeout=timeout)


def save_evidence(kube: Kube, namespace: str, directory: Path) -> Path:
    """Events, pods and logs of ``namespace`` under ``directory``."""
    return kube.save_evidence(namespace, directory)


def _wait_crds(kube: Kube, *, timeout: float) -> None:
    def established() -> bool:
        result = kube.run("wait", "--for=condition=Established", "crd", "-l", CRD_LABEL, "--timeout=20s",
                              check=False, timeout=60)
        if "no matching resources" in result.stderr:
            # The chart labels its CRDs; none with the label means the selector is wrong, not slow.
            raise IstioError(f"istio-base installed no CRD labelled {CRD_LABEL}")
        return result.returncode == 0

    wait_until(f"the Istio CRDs ({CRD_LABEL}) to be Established", established, timeout=timeout, interval=0.5)


def install(
    kube: Kube,
    source: str,
    *,
    tools: Tools | None = None,
    pins: Mapping[str, Any] | None = None,
    timeout: float = 600,
    progress=lambda _message: None,
    evidence: Path | None = None,
) -> None:
    """Install or upgrade the four releases in order, waiting until each is rolled out.

    Idempotent: ``helm upgrade --install`` leaves an installed, unchanged release as it is. The
    images of ``image_refs(source)`` must already be in the cluster's nodes (``kind load``). With
    ``evidence`` (the report directory), a failed rollout leaves the namespace's events, pods and
    logs under ``evidence/evidence/<namespace>/``, as every other live-tier wait does.
    """
    _check_source(source)
    tools = tools or built_tools()
    pins = pins or fixtures.pins()
    with tempfile.TemporaryDirectory(prefix="cortex-istio-values-") as tmp:
        for release in RELEASES:
            progress(f"istio: {release.name} ({release.chart}) into {release.namespace}")
            generated = _generated_values(Path(tmp), source, release, pins)
            args = _helm_args(["upgrade", "--install"], tools, release, source, generated)
            _helm(tools, [*args, "--create-namespace", *_takeover(tools), *kube.helm_flags()],
                  what=f"helm install {release.name}")
            if release.name == "istio-base":
                _wait_crds(kube, timeout=timeout)
            for workload in release.workloads:
                try:
                    wait_rolled_out(kube, release.namespace, workload, timeout=timeout)
                except WaitTimeout as err:
                    if evidence is None:
                        raise
                    saved = save_evidence(kube, release.namespace, evidence)
                    raise WaitTimeout(f"{err}; events, pods and logs saved in {saved}") from err
    progress(f"istio: the mesh's default telemetry ({MESH_TELEMETRY.name})")
    kube.run("apply", "--server-side", "--field-manager=cortex-conformance", "-f", str(MESH_TELEMETRY))


def uninstall(kube: Kube, *, tools: Tools | None = None, timeout: float = 300) -> None:
    """Remove the releases in reverse order, then the two namespaces; absent ones are fine."""
    tools = tools or built_tools()
    for release in reversed(RELEASES):
        status = _helm_status(tools, kube, release)
        if status is not None:
            _helm(tools, ["uninstall", release.name, "--namespace", release.namespace, "--wait",
                          f"--timeout={int(timeout)}s", *kube.helm_flags()], what=f"helm uninstall {release.name}",
                  timeout=timeout + 30)
    for namespace in (OTEL_NAMESPACE, GATEWAY_NAMESPACE, SYSTEM_NAMESPACE):
        kube.run("delete", "namespace", namespace, "--ignore-not-found", "--wait=true",
                     f"--timeout={int(timeout)}s", timeout=timeout + 30)


def _helm_status(tools: Tools, kube: Kube, release: Release) -> str | None:
    try:
        out = _helm(tools, ["status", release.name, "--namespace", release.namespace, "-o", "json",
                            *kube.helm_flags()], what=f"helm status {release.name}")
    except IstioError:
        return None
    return json.loads(out).get("info", {}).get("status")


def missing(kube: Kube) -> list[str]:
    """What an existing cluster lacks of the Istio this suite needs (empty when all is there)."""
    gaps = []
    for release in RELEASES:
        for workload in release.workloads:
            kind, _, name = workload.partition("/")
            result = kube.run("get", kind, name, "-n", release.namespace, "-o", "name", check=False)
            if result.returncode != 0:
                gaps.append(f"{workload} in {release.namespace}")
    return gaps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m conformance.live.platform.istio",
                                     description="Install Istio (base, istiod, CNI, ingress gateway) into a cluster.")
    parser.add_argument("action", choices=["install", "uninstall", "render", "images"])
    parser.add_argument("--images", default="build", choices=SOURCES, help="image source (default: build)")
    parser.add_argument("--kubeconfig", type=Path, default=None, help="kubeconfig file (default: kubectl's)")
    parser.add_argument("--context", default=None, help="kube context (default: the current one)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for each rollout")
    args = parser.parse_args(argv)
    kube = Kube(kubeconfig=args.kubeconfig, context=args.context)

    def act() -> None:
        if args.action == "render":
            sys.stdout.write(render(args.images))
        elif args.action == "images":
            for ref in image_refs(args.images).values():
                print(ref)
        elif args.action == "install":
            install(kube, args.images, timeout=args.timeout, progress=lambda m: print(m, file=sys.stderr, flush=True))
            print(f"istio installed ({args.images} images); gateway node ports {GATEWAY_NODE_PORTS}")
        else:
            uninstall(kube, timeout=args.timeout)

    return run_cli(act, failure=1)


if __name__ == "__main__":
    sys.exit(main())
