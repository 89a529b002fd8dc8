"""SEC: Pod Security Standard restricted, read-only roots, resources, pinned images, admission.

PYTEST_DONT_REWRITE: checks fail through `holds`, never a bare assert, and rewriting costs start-up time.
"""

import pytest

from conformance import fixtures
from conformance.live.evidence import judge, observe
from conformance.plugin import holds
from conformance.static.rules import podsecurity

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
    """SEC-03: CPU and memory requests and limits on every container, requests within limits."""
    holds(podsecurity.resources_bounded(bundle))


@static
@pytest.mark.control("SEC-03")
def test_empty_dirs_bounded(bundle):
    """SEC-03: every emptyDir volume has a sizeLimit, memory-backed ones above all."""
    holds(podsecurity.empty_dirs_bounded(bundle))


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


# --- live: the pods as admitted ----------------------------------------------------------------------

live = pytest.mark.live


@live
@pytest.mark.control("SEC-01")
@pytest.mark.parametrize("check", podsecurity.RESTRICTED_POD_CHECKS,
                         ids=[c.__name__.removeprefix("pod_") for c in podsecurity.RESTRICTED_POD_CHECKS])
def test_admitted_pods_meet_restricted(admitted, check):
    """SEC-01: the pods as admitted, injected istio-proxy and vault-agent included, still meet restricted."""
    holds([gap for pod in admitted for gap in check(pod)])


@live
@pytest.mark.control("SEC-02")
def test_admitted_pods_read_only_root(admitted):
    """SEC-02: every admitted container, injected ones included, has a read-only root filesystem."""
    holds([gap for pod in admitted for gap in podsecurity.pod_has_read_only_root(pod)])


@live
@pytest.mark.control("SEC-03")
def test_admitted_pods_bounded(admitted):
    """SEC-03: every admitted container, injected ones included, has CPU and memory requests and limits."""
    holds([gap for pod in admitted for gap in podsecurity.pod_sets_resources(pod)])


def _expected_images(live) -> dict[str, str]:
    """Container name -> the image the run asked for: our stand-ins, and what the injectors add."""
    from conformance.live.platform import istio

    refs = live.images.refs
    proxy = istio.proxy_image(live.images.source)
    return {**{c: refs[c] for c in fixtures.workload().containers},
            "istio-proxy": proxy, "istio-validation": proxy,
            "vault-agent": refs["vault-agent"], "vault-agent-init": refs["vault-agent"]}


@live
@pytest.mark.control("SEC-04")
def test_running_images_are_the_pinned_ones(live, api_pods, evidence):
    """SEC-04: every admitted container, injected ones included, runs exactly the pinned image, never a mutable tag."""
    expected = _expected_images(live)
    mutable = observe.expectations()["images"]["mutable_tags"]
    gaps, seen = [], 0
    for pod in api_pods:
        name = f"Pod {pod['metadata']['namespace']}/{pod['metadata']['name']}"
        for container in pod["spec"].get("initContainers", []) + pod["spec"]["containers"]:
            seen += 1
            ref, cname = container["image"], container["name"]
            if judge.mutable_image(ref, mutable):
                gaps.append(f"{name} container {cname}: image {ref} has a mutable tag or none; it can change under "
                            "the same name")
            want = expected.get(cname)
            if want is None:
                gaps.append(f"{name} container {cname}: not a container the run expects (image {ref})")
            elif ref != want:
                gaps.append(f"{name} container {cname}: runs {ref}, not the pinned {want}")
    evidence.append({"note": f"{seen} container(s) of {len(api_pods)} pod(s) compared with the pinned images"})
    holds(gaps)


PRIVILEGED_POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: conformance-privileged-probe
  namespace: {namespace}
spec:
  containers:
    - name: probe
      image: {image}
      securityContext:
        privileged: true
"""


@live
@pytest.mark.control("SEC-05")
def test_api_server_rejects_privileged_pod(live, evidence):
    """SEC-05: Pod Security Admission refuses a privileged pod in the namespace (server-side dry run)."""
    namespace = fixtures.workload().namespace
    manifest = PRIVILEGED_POD.format(namespace=namespace, image=live.images.refs["conformance-client"])
    result = live.kube.run("create", "--dry-run=server", "-f", "-", input=manifest, check=False)
    evidence.append({"command": "kubectl create --dry-run=server -f <privileged pod>", "exit_code": result.returncode,
                     "note": (result.stderr or result.stdout).strip()[-300:]})
    if result.returncode == 0:
        pytest.fail(f"Namespace {namespace}: the API server admitted a privileged pod", pytrace=False)
    if 'violates PodSecurity "restricted' not in result.stderr:
        pytest.fail(f"Namespace {namespace}: the privileged pod was refused, but not by Pod Security restricted: "
                    f"{result.stderr.strip()[-200:]}", pytrace=False)
