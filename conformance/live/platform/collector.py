"""The trace collector in the live cluster: install it, and read traces back from its query API.

The collector is Jaeger v2 (an OpenTelemetry Collector with in-memory storage and a query API),
installed from fixtures/telemetry/ with the run's image under the name the mesh's otel-tracing
provider resolves, ``opentelemetry-collector.observability.svc.cluster.local:4317``. Checks read
traces through a port-forward to the Service's query port, with :class:`Jaeger`::

    with Jaeger(kube) as jaeger:                   # one port-forward for every call in the block
        spans = jaeger.wait_for_trace(trace_id, lambda s: any(x.service == "cortex-api" for x in s),
                                      timeout=15, what="a cortex-api span")

Envoy flushes spans every 5 s (tracing.opentelemetry.flush_interval_ms) unless told otherwise, and
the collector batches for 200 ms, so a wait for a trace needs at least about 6 s.
"""

from __future__ import annotations

import contextlib
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from conformance import paths
from conformance.errors import ConformanceError, WaitTimeout
from conformance.live.access.kube import Kube
from conformance.live.evidence import traces
from conformance.live.evidence.traces import Span
from conformance.static.manifests import render
from conformance.wait import wait_until

NAMESPACE = "observability"
NAME = "opentelemetry-collector"
SERVICE = f"service/{NAME}"
DEPLOYMENT = f"deployment/{NAME}"
QUERY_PORT = 16686
OTLP_GRPC_PORT = 4317
OTLP_HTTP_PORT = 4318
FIXTURES = paths.FIXTURES / "telemetry"
PLACEHOLDER_IMAGE = "cortex-conformance/collector"
# The address an application exports OTLP/HTTP to (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT).
OTLP_HTTP_TRACES = f"http://{NAME}.{NAMESPACE}.svc.cluster.local:{OTLP_HTTP_PORT}/v1/traces"
MAX_TRACES = 10000  # the memory store's max_traces (fixtures/telemetry/config_map.yaml)
HTTP_TIMEOUT = 15.0


class TelemetryError(ConformanceError):
    """The collector's query API failed or answered something that is not a trace; one line."""


# ---- install -----------------------------------------------------------------------------------------

def image_fields(ref: str) -> dict[str, str]:
    """A kustomize ``images:`` entry's new name and tag or digest for an image reference."""
    name, at, digest = ref.partition("@")
    fields: dict[str, str] = {}
    # A colon after the last slash is a tag; one before it is a registry's port.
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        name, fields["newTag"] = name[:colon], name[colon + 1:]
    if at:
        fields["digest"] = digest
    return {"newName": name, **fields}


def write_kustomization(work: Path, image: str) -> Path:
    """A kustomization in ``work``: fixtures/telemetry with the run's collector image."""
    root = work / "telemetry"
    root.mkdir(parents=True, exist_ok=True)
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [os.path.relpath(FIXTURES, root)],
        "images": [{"name": PLACEHOLDER_IMAGE, **image_fields(image)}],
    }
    (root / "kustomization.yaml").write_text(yaml.safe_dump(kustomization, sort_keys=False))
    return root


def install(kube: Kube, work: Path, *, image: str, timeout: float, evidence: Path | None = None) -> None:
    """Apply the collector with ``image`` and wait until it is rolled out (and so Ready).

    Idempotent (server-side apply). ``image`` must be in the nodes already (``kind load``) or
    pullable by them. A rollout that does not finish leaves the namespace's events, pods and
    logs under ``evidence/evidence/observability/``.
    """
    rendered = render(write_kustomization(work, image))
    kube.apply(rendered, what="the trace collector (fixtures/telemetry)")
    kube.rollout(NAMESPACE, DEPLOYMENT, timeout=timeout, evidence=evidence)


def missing(kube: Kube) -> list[str]:
    """What an existing cluster lacks of the collector (empty when the Service has endpoints to send to)."""
    result = kube.run("get", "endpointslices", "-n", NAMESPACE, "-l", f"kubernetes.io/service-name={NAME}",
                      "-o", "jsonpath={.items[*].endpoints[*].addresses[*]}", check=False)
    if result.returncode != 0 or not result.stdout.strip():
        return [f"a trace collector behind service {NAME} in {NAMESPACE} (the mesh's otel-tracing provider)"]
    return []


def uninstall(kube: Kube, *, timeout: float = 300) -> None:
    """Delete the collector's namespace and everything in it; an absent one is fine."""
    kube.run("delete", "namespace", NAMESPACE, "--ignore-not-found", "--wait=true", f"--timeout={int(timeout)}s",
             timeout=timeout + 30)


# ---- the query API -------------------------------------------------------------------------------------

def rfc3339(moment: datetime) -> str:
    """A time as the v3 search parameters take it (RFC 3339, UTC, fractional seconds)."""
    if moment.tzinfo is None:
        raise ValueError("give an aware datetime (UTC), not a naive one")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Jaeger:
    """Jaeger's api/v3 through a port-forward to the collector Service's query port.

    Used as a context manager, one port-forward serves every call in the block; otherwise each
    call opens and closes its own. ``base_url`` skips the port-forward (a collector on loopback).
    """

    def __init__(self, kube: Kube | None, *, base_url: str | None = None, timeout: float = HTTP_TIMEOUT) -> None:
        if kube is None and base_url is None:
            raise ValueError("Jaeger needs a Kube to port-forward through, or a base_url")
        self.kube = kube
        self.base_url = base_url.rstrip("/") if base_url else None
        self.timeout = timeout
        self._stack: contextlib.ExitStack | None = None

    def __enter__(self) -> Jaeger:
        if self.base_url is None:
            self._stack = contextlib.ExitStack()
            assert self.kube is not None
            port = self._stack.enter_context(self.kube.port_forward(NAMESPACE, SERVICE, QUERY_PORT))
            self.base_url = f"http://127.0.0.1:{port}"
        return self

    def __exit__(self, *exc: object) -> None:
        if self._stack is not None:
            self._stack.close()
            self._stack = None
            self.base_url = None

    @contextlib.contextmanager
    def _connected(self) -> Iterator[str]:
        if self.base_url is not None:
            yield self.base_url
            return
        with self:
            assert self.base_url is not None
            yield self.base_url

    def _get(self, base: str, path: str, params: dict[str, str] | None = None) -> tuple[int, Any]:
        url = base + path + ("?" + urllib.parse.urlencode(params) if params else "")
        try:
            with urllib.request.urlopen(url, timeout=self.timeout) as resp:  # noqa: S310 - loopback port-forward
                status, body = resp.status, resp.read()
        except urllib.error.HTTPError as err:
            status, body = err.code, err.read()
        except (urllib.error.URLError, OSError) as err:
            raise TelemetryError(f"the collector's query API ({path}) did not answer: {err}") from None
        try:
            doc = json.loads(body or b"null")
        except ValueError:
            raise TelemetryError(f"the collector's query API ({path}) answered {status} with non-JSON: "
                                 f"{body[:120]!r}") from None
        return status, doc

    @staticmethod
    def _spans(status: int, doc: Any, what: str) -> list[Span]:
        if status == 404:
            return []
        if status != 200:
            message = (doc or {}).get("error", {}).get("message") if isinstance(doc, dict) else None
            raise TelemetryError(f"{what}: the query API answered {status}: {message or json.dumps(doc)[:160]}")
        try:
            return traces.parse(doc)
        except traces.TraceFormatError as err:
            raise TelemetryError(f"{what}: {err}") from None

    def trace(self, trace_id: str) -> list[Span]:
        """Every span of ``trace_id`` the collector holds; empty when it holds none (404)."""
        with self._connected() as base:
            status, doc = self._get(base, f"/api/v3/traces/{urllib.parse.quote(trace_id.lower())}")
        return self._spans(status, doc, f"trace {trace_id}")

    def search(self, service: str, since: datetime, until: datetime, limit: int = 20, *,
               operation: str | None = None) -> list[list[Span]]:
        """The traces with a span of ``service`` that started between ``since`` and ``until``, one list each.

        Keep ``limit`` small: Jaeger's memory grows with the search depth and does not give it back.
        """
        if not 0 < limit < MAX_TRACES:
            raise ValueError(f"limit must be between 1 and {MAX_TRACES - 1} (the store's max_traces), not {limit}")
        params = {"query.service_name": service, "query.start_time_min": rfc3339(since),
                  "query.start_time_max": rfc3339(until), "query.num_traces": str(limit)}
        if operation:
            params["query.operation_name"] = operation
        with self._connected() as base:
            status, doc = self._get(base, "/api/v3/traces", params)
        return traces.by_trace(self._spans(status, doc, f"search for service {service}"))

    def services(self) -> list[str]:
        """The service names the collector has seen (an empty store answers ``{}``)."""
        with self._connected() as base:
            status, doc = self._get(base, "/api/v3/services")
        if status != 200 or not isinstance(doc, dict):
            raise TelemetryError(f"listing services: the query API answered {status}")
        return sorted(doc.get("services") or [])

    def wait_for_trace(self, trace_id: str, predicate: Callable[[list[Span]], bool], timeout: float, *,
                       what: str = "the expected spans", interval: float = 0.5) -> list[Span]:
        """Poll ``trace_id`` until ``predicate(spans)`` holds; return the spans.

        On timeout the WaitTimeout names the trace, ``what`` and the spans that did arrive, so a
        failing check says "got 1 span: istio-ingressgateway... " rather than only "timed out".
        """
        last: list[Span] = []

        def arrived() -> list[Span] | None:
            nonlocal last
            last = self.trace(trace_id)
            return last if last and predicate(last) else None

        with self._connected():
            try:
                return wait_until(f"trace {trace_id} in the collector to hold {what}", arrived, timeout=timeout,
                                  interval=interval)
            except WaitTimeout as err:
                seen = ", ".join(f"{s.service} {s.name!r} ({s.kind})" for s in last) or "no span at all"
                raise WaitTimeout(f"{err}; it holds {seen}") from None
