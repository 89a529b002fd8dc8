"""References that silently stop matching after a kustomize rewrite are caught.

Each case is a real overlay on top of overlays/dev, rendered by the pinned kubectl kustomize.
"""

from __future__ import annotations

import textwrap

import pytest

from conformance.paths import REPO
from conformance.static.manifests import load_overlay
from conformance.static.rules import RULES, load_all

load_all()

CASES = {
    # A name suffix renames the Service, but Istio hosts are plain strings kustomize leaves alone.
    "name-suffix": ("nameSuffix: -canary\n", {
        "gateway.routes_match_gateway_and_service": "cortex-api.cortex-dev.svc.cluster.local is not a Service",
        "mtls.no_tls_downgrade": "host cortex-api.cortex-dev.svc.cluster.local matches no Service",
    }),
    # Moving to another namespace leaves the FQDN hosts and the Vault binding behind.
    "namespace": ("namespace: cortex-staging\n", {
        "gateway.routes_match_gateway_and_service": "is not a Service in the manifests",
        "vault.secrets_from_vault_agent": "no pod runs as the ServiceAccount Vault binds",
    }),
    # A selector label rewrite reaches Deployments and Services, not Istio's own selectors.
    "selector-labels": ("labels:\n  - pairs:\n      app.kubernetes.io/name: cortex\n    includeSelectors: true\n", {
        "jwt.request_authentication": "no RequestAuthentication selects its pods",
        "jwt.principal_required_on_api": "no ALLOW AuthorizationPolicy applies",
    }),
}


@pytest.fixture
def overlay_on_dev(tmp_path):
    def make(extra: str):
        overlay = tmp_path / "overlay"
        overlay.mkdir()
        relative = (REPO / "overlays" / "dev").relative_to(REPO)
        depth = len(overlay.relative_to(overlay.anchor).parts)
        dev = "../" * depth + str((REPO / relative).relative_to(REPO.anchor))
        (overlay / "kustomization.yaml").write_text(textwrap.dedent(f"""\
            apiVersion: kustomize.config.k8s.io/v1beta1
            kind: Kustomization
            resources:
              - {dev}
            """) + extra)
        return load_overlay(overlay)
    return make


@pytest.mark.parametrize(("extra", "expected"), CASES.values(), ids=CASES.keys())
def test_rewrite_breaks_references(overlay_on_dev, extra, expected):
    """The rules that hold the references name what stopped matching."""
    bundle = overlay_on_dev(extra)
    for rule_name, fragment in expected.items():
        gaps = RULES[rule_name](bundle)
        assert any(fragment in gap for gap in gaps), f"{rule_name}: {gaps}"
