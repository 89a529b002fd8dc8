"""Telemetry: the live tier's trace collector, Jaeger v2, built from its Go module.

``./cmd/jaeger`` of ``github.com/jaegertracing/jaeger`` is Jaeger v2, an OpenTelemetry Collector
distribution (OTLP receivers, the batch processor) with in-memory trace storage and a query API.
``go install`` refuses the module because its go.mod replaces github.com/Shopify/sarama, so it is
built in a wrapper module that restates that replace (gobuild.wrapper_build). The image holds the
static binary where upstream's image has it, so fixtures/telemetry/ runs either one unchanged; the
configuration comes from a ConfigMap at run time, never from the image.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from conformance.errors import ConformanceError
from conformance.images import gobuild, images
from conformance.images.cluster_stages import image_entry
from conformance.images.stage import Context, Stage, go_version, register

PACKAGE = "cmd/jaeger"
# Upstream's image layout (cmd/jaeger/Dockerfile): the binary at this path, UID 10001, and every
# listener on all interfaces (the config reads ${env:JAEGER_LISTEN_HOST}).
BINARY_IN_IMAGE = "/cmd/jaeger/jaeger-linux"
JAEGER_UID = 10001
IMAGE_ENV = {"JAEGER_LISTEN_HOST": "0.0.0.0"}  # noqa: S104 - a pod's listeners, as upstream's image sets
IMAGE_LAYOUT = 1


def telemetry_pins(ctx_or_pins: Context | Mapping[str, Any]) -> Mapping[str, Any]:
    pins = ctx_or_pins.pins if isinstance(ctx_or_pins, Context) else ctx_or_pins
    return pins["telemetry"]


def module_of(pins: Context | Mapping[str, Any]) -> tuple[str, str]:
    path, _, version = telemetry_pins(pins)["jaeger_module"].partition("@")
    return path, version


def release(pins: Context | Mapping[str, Any]) -> str:
    """The Jaeger v2 release cut from the pinned module version (v2.13.0 for v1.76.0)."""
    return str(telemetry_pins(pins)["jaeger_version"])


def image_refs(pins: Context | Mapping[str, Any]) -> dict[str, str]:
    return {"collector": f"cortex.local/jaeger:{release(pins).lstrip('v')}"}


def pull_image(pins: Context | Mapping[str, Any]) -> str:
    """Upstream's image of the same release, for ``--images pull``."""
    return str(telemetry_pins(pins)["pull_image"])


def version_ldflags(pins: Context | Mapping[str, Any]) -> str:
    """What `jaeger version` and the build-info metric report: the v2 tag, as upstream's Makefile sets."""
    path, _version = module_of(pins)
    return gobuild.ldflags(x={f"{path}/internal/version.latestVersion": release(pins)})


def _jaeger_build(ctx: Context, out: Path) -> dict[str, Any]:
    path, version = module_of(ctx)
    log = ctx.log("jaeger")
    (binary,) = gobuild.wrapper_build(path, version, [f"{path}/{PACKAGE}"], out / "bin", workdir=out / "wrapper",
                                      log=log, ld=version_ldflags(ctx), cgo=False)
    reported = subprocess.run([str(binary), "version"], capture_output=True, text=True, check=False, timeout=60)
    try:
        git_version = json.loads(reported.stdout.strip().splitlines()[-1])["gitVersion"]
    except (IndexError, KeyError, ValueError):
        git_version = None
    if git_version != release(ctx):
        raise ConformanceError(f"the built jaeger reports version {git_version!r}, expected {release(ctx)} "
                               f"(`jaeger version` said: {(reported.stdout + reported.stderr).strip()[:200]})")
    return {"files": {"jaeger": f"bin/{binary.name}"}, "version": git_version, "module": f"{path}@{version}"}


register(Stage(
    name="jaeger", group="telemetry",
    summary="Jaeger v2 (cmd/jaeger, an OpenTelemetry Collector with a query API) in a wrapper module",
    inputs=lambda ctx: {"module": telemetry_pins(ctx)["jaeger_module"], "release": release(ctx),
                        "package": PACKAGE, "go": go_version()},
    build=_jaeger_build,
))


def _telemetry_images_build(ctx: Context, out: Path) -> dict[str, Any]:
    refs = image_refs(ctx)
    binary = ctx.path("jaeger", ctx.dep("jaeger").result["files"]["jaeger"])
    config = images.ImageConfig(entrypoint=[BINARY_IN_IMAGE], env=IMAGE_ENV, user=f"{JAEGER_UID}:{JAEGER_UID}",
                                labels={"org.opencontainers.image.version": release(ctx),
                                        "org.opencontainers.image.source": "https://github.com/jaegertracing/jaeger"})
    image = images.image_from_binary(binary, refs["collector"], dest=BINARY_IN_IMAGE, config=config,
                                     uid=JAEGER_UID)
    return {"images": {"collector": image_entry(out, "collector", refs["collector"], image, in_node=False)}}


register(Stage(
    name="telemetry-images", group="telemetry",
    summary="the collector image: the static jaeger binary, UID 10001, config from a mounted ConfigMap",
    inputs=lambda ctx: {"refs": image_refs(ctx), "uid": JAEGER_UID, "env": IMAGE_ENV, "layout": IMAGE_LAYOUT},
    deps=("jaeger",),
    build=_telemetry_images_build,
))
