"""SCHEMA-01 per Kubernetes minor: an API or field the chosen minor does not serve fails there, with
what replaces it, and passes on a minor that serves it."""

from __future__ import annotations

import copy

import pytest

from conformance import fixtures
from conformance.paths import OVERLAYS
from conformance.static import lifecycle
from conformance.static.manifests import K8sObject, load_overlay

SERVICE_CIDR = {"apiVersion": "networking.k8s.io/v1beta1", "kind": "ServiceCIDR", "metadata": {"name": "extra"},
                "spec": {"cidrs": ["10.96.0.0/16"]}}


@pytest.fixture
def minor():
    def choose(value: str) -> None:
        fixtures.select(kubernetes=value)
    yield choose
    fixtures.select()


def _deployment_with(**pod_fields) -> K8sObject:
    dev = load_overlay(OVERLAYS / "dev")
    doc = copy.deepcopy(next(o for o in dev.objects if o.kind == "Deployment").doc)
    doc["spec"]["template"]["spec"].update(pod_fields)
    return K8sObject(doc, "test")


@pytest.mark.parametrize("version", ["1.35", "1.36", "1.37"])
def test_dev_overlay_is_current(minor, version):
    minor(version)
    assert lifecycle.gaps(load_overlay(OVERLAYS / "dev").objects) == []


def test_removed_api_names_the_version_to_use(minor):
    minor("1.37")
    assert lifecycle.gaps([K8sObject(SERVICE_CIDR, "test")]) == [
        "ServiceCIDR default/extra: apiVersion networking.k8s.io/v1beta1 is not served by Kubernetes 1.37 (only by "
        + ", ".join(m for m in fixtures.supported_minors() if m != "1.37") + "); use networking.k8s.io/v1"]
    minor("1.35")
    assert lifecycle.gaps([K8sObject(SERVICE_CIDR, "test")]) == []


def test_field_of_one_minor_fails_on_the_others(minor):
    """PodSpec.workloadRef exists only in 1.35 (1.36 replaced it with schedulingGroup)."""
    deployment = _deployment_with(workloadRef={"name": "w", "podGroup": "g"})
    minor("1.35")
    assert lifecycle.gaps([deployment]) == []
    minor("1.37")
    assert lifecycle.gaps([deployment]) == [
        "Deployment cortex-dev/cortex-api: spec.template.spec.workloadRef is a field of Kubernetes 1.35, not of 1.37: "
        "the API server of 1.37 drops or rejects it"]


def test_deprecated_field_quotes_the_replacement(minor):
    minor("1.37")
    assert lifecycle.gaps([_deployment_with(serviceAccount="cortex-api")]) == [
        "Deployment cortex-dev/cortex-api: spec.template.spec.serviceAccount is deprecated in Kubernetes 1.37: "
        "Use serviceAccountName instead."]
