"""SEC: Pod Security Standard restricted, read-only roots, resources, pinned images, admission."""

import pytest

from conformance.plugin import holds
from conformance.rules import podsecurity

static = pytest.mark.static


@static
@pytest.mark.control("SEC-01")
def test_run_as_non_root(bundle):
    """SEC-01: every container runs with runAsNonRoot true and never as UID 0."""
    holds(podsecurity.run_as_non_root(bundle))


@static
@pytest.mark.control("SEC-01")
def test_high_user_and_group_ids(bundle):
    """SEC-01: our containers set a UID of at least 10000 and no root group."""
    holds(podsecurity.high_user_and_group_ids(bundle))


@static
@pytest.mark.control("SEC-01")
def test_no_privilege_escalation(bundle):
    """SEC-01: allowPrivilegeEscalation is false on every container."""
    holds(podsecurity.no_privilege_escalation(bundle))


@static
@pytest.mark.control("SEC-01")
def test_capabilities_dropped(bundle):
    """SEC-01: every container drops ALL capabilities and adds at most NET_BIND_SERVICE."""
    holds(podsecurity.capabilities_dropped(bundle))


@static
@pytest.mark.control("SEC-01")
def test_seccomp_confined(bundle):
    """SEC-01: seccomp is RuntimeDefault or Localhost for every container."""
    holds(podsecurity.seccomp_confined(bundle))


@static
@pytest.mark.control("SEC-01")
def test_unprivileged(bundle):
    """SEC-01: no container is privileged, changes procMount or runs as a host process."""
    holds(podsecurity.unprivileged(bundle))


@static
@pytest.mark.control("SEC-01")
def test_off_the_host(bundle):
    """SEC-01: no host network, PID or IPC namespace, no hostPath volume, no hostPort."""
    holds(podsecurity.off_the_host(bundle))


@static
@pytest.mark.control("SEC-01")
def test_restricted_volume_types(bundle):
    """SEC-01: volumes are only of the types restricted allows."""
    holds(podsecurity.restricted_volume_types(bundle))


@static
@pytest.mark.control("SEC-01")
def test_safe_sysctls_and_mac(bundle):
    """SEC-01: only safe sysctls; SELinux and AppArmor stay confined."""
    holds(podsecurity.safe_sysctls_and_mac(bundle))


@static
@pytest.mark.control("SEC-02")
def test_read_only_root_filesystem(bundle):
    """SEC-02: every container has readOnlyRootFilesystem true."""
    holds(podsecurity.read_only_root_filesystem(bundle))


@static
@pytest.mark.control("SEC-03")
def test_resources_bounded(bundle):
    """SEC-03: CPU and memory requests and limits on every container; emptyDirs have a sizeLimit."""
    holds(podsecurity.resources_bounded(bundle))


@static
@pytest.mark.control("SEC-04")
def test_images_pinned(bundle):
    """SEC-04: every image has a version tag or a digest, never latest."""
    holds(podsecurity.images_pinned(bundle))


@static
@pytest.mark.control("SEC-05")
def test_namespace_enforces_restricted(bundle):
    """SEC-05: every namespace with pods enforces Pod Security Admission restricted."""
    holds(podsecurity.namespace_enforces_restricted(bundle))


@static
@pytest.mark.control("SEC-06")
def test_service_account_token_not_mounted(bundle):
    """SEC-06: pods run as their own ServiceAccount, whose token is not auto-mounted."""
    holds(podsecurity.service_account_token_not_mounted(bundle))
