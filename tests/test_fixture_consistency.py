"""Numbers that data files must repeat (kind's port mappings, the gateway chart's node ports) agree
with the one definition in fixtures/expectations/workload.yaml."""

from __future__ import annotations

import pytest
import yaml

from conformance import fixtures, paths


@pytest.mark.parametrize("config", ["cluster.yaml", "cluster-single.yaml"])
def test_kind_publishes_the_gateway_node_ports(config):
    gateway = fixtures.workload().gateway
    doc = yaml.safe_load((paths.FIXTURES / "kind" / config).read_text())
    mappings = {m["containerPort"]: m for node in doc["nodes"] for m in node.get("extraPortMappings") or []}
    for scheme, node_port in gateway.node_ports.items():
        assert node_port in mappings, f"kind/{config} does not publish the {scheme} node port {node_port}"
        assert mappings[node_port]["hostPort"] == gateway.host_ports[scheme]
        assert mappings[node_port]["listenAddress"] == "127.0.0.1", "the gateway must listen on loopback only"


def test_gateway_chart_uses_the_node_ports():
    gateway = fixtures.workload().gateway
    values = yaml.safe_load((paths.FIXTURES / "istio" / "gateway.yaml").read_text())
    node_ports = {p["targetPort"]: p.get("nodePort") for p in values["service"]["ports"]}
    assert node_ports[80] == gateway.node_ports["http"]
    assert node_ports[443] == gateway.node_ports["https"]
    assert values["labels"].items() >= gateway.labels.items()


def test_network_expectations_name_the_same_gateway():
    gateway = fixtures.workload().gateway
    group = fixtures.expectations("network")["groups"]["ingress-gateway"]
    assert group["namespace"] == gateway.namespace
    assert group["labels"] == gateway.labels


def test_redis_receiver_admits_exactly_the_workload_identity():
    """MTLS-04 reads an answer from the stand-in Redis as cortex-api's identity over mTLS: its sidecar must admit
    exactly workload.yaml's service account, and the call's target must be the one the manifests dial."""
    spec = fixtures.workload()
    policy = yaml.safe_load((paths.FIXTURES / "clients" / "authorization_policy_redis.yaml").read_text())
    principals = [p for rule in policy["spec"]["rules"] for s in rule["from"] for p in s["source"]["principals"]]
    assert principals == [f"cluster.local/ns/{spec.namespace}/sa/{spec.service_account}"]
    redis = next(c for c in fixtures.expectations("live")["mtls"]["outbound"] if c["name"] == "redis")
    group = fixtures.expectations("network")["groups"]["redis"]
    host, port = redis["target"].rsplit(":", 1)
    assert host.split(".")[1] == group["namespace"] == policy["metadata"]["namespace"]
    assert f"{port}/TCP" in group["ports"]
