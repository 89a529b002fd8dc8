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
