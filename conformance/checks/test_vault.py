"""VAULT: no secret in manifests; every secret from the Vault agent, for the bound account only."""

import pytest

from conformance.plugin import holds
from conformance.rules import vault

static = pytest.mark.static


@static
@pytest.mark.control("VAULT-01")
def test_no_plaintext_secrets(bundle):
    """VAULT-01: no Secret data, literal secret env, secret-shaped string or Kubernetes Secret mount."""
    holds(vault.no_plaintext_secrets(bundle))


@static
@pytest.mark.control("VAULT-02")
def test_secrets_from_vault_agent(bundle):
    """VAULT-02: the Vault agent renders every secret of fixtures/expectations/vault.yaml into the pod."""
    holds(vault.secrets_from_vault_agent(bundle))


@static
@pytest.mark.control("VAULT-03")
def test_role_bound_to_workload(bundle):
    """VAULT-03: the Vault role is bound to the workload's ServiceAccount and no other pod asks for it."""
    holds(vault.role_bound_to_workload(bundle))
