"""SEC: Pod Security Standard restricted (which includes baseline), resources, images, admission.

The pod-level rules run unchanged on live pods as admitted (see checks/test_sec.py), so injected
sidecars are held to the same standard as the containers we write.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from conformance import fixtures
from conformance.static.manifests import Bundle, Container, PodTemplate
from conformance.static.rules import WORKLOADS, rule

# Pod Security Standards, Kubernetes v1.34.
RESTRICTED_VOLUME_TYPES = frozenset({
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected",
    "secret"})
ALLOWED_ADDED_CAPABILITIES = frozenset({"NET_BIND_SERVICE"})
SAFE_SYSCTLS = frozenset({
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes"})
SELINUX_TYPES = frozenset({"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"})
SECCOMP_TYPES = frozenset({"RuntimeDefault", "Localhost"})
MIN_ENFORCE_VERSION = (1, 25)

# A version-like tag: 1.2.3, v1.2, 1.19.0-rc.3, 142.0.7444.59. Floating tags (latest, stable, main)
# do not match.
VERSION_TAG = re.compile(r"^v?\d+(\.\d+)*([-+_.][0-9A-Za-z][0-9A-Za-z._+-]*)?$")


QUANTITY = re.compile(r"^(\d+(?:\.\d+)?)(m|k|M|G|T|Ki|Mi|Gi|Ti)?$")
MULTIPLIERS = {None: 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
               "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


def quantity(value) -> float | None:
    """A Kubernetes resource quantity as a number (250m -> 0.25, 64Mi -> 67108864)."""
    match = QUANTITY.match(str(value)) if value is not None else None
    return float(match.group(1)) * MULTIPLIERS[match.group(2)] if match else None


def containers(pod: PodTemplate) -> Iterator[Container]:
    return pod.containers()


def _effective(container: Container, key: str):
    value = container.security_context.get(key)
    return container.pod.security_context.get(key) if value is None else value


def pod_runs_as_non_root(pod: PodTemplate) -> list[str]:
    gaps = []
    for c in containers(pod):
        non_root = _effective(c, "runAsNonRoot")
        if non_root is False:
            gaps.append(f"{c.ref}: runAsNonRoot is false")
        elif non_root is not True:
            gaps.append(f"{c.ref}: runAsNonRoot is not set on the container or the pod")
        if _effective(c, "runAsUser") == 0:
            gaps.append(f"{c.ref}: runAsUser is 0 (root)")
    return gaps


def pod_uses_high_ids(pod: PodTemplate) -> list[str]:
    """Stricter than restricted, for the containers we write (injectors pick their own UIDs)."""
    gaps = []
    min_uid = fixtures.expectations("workload")["min_uid"]
    for c in containers(pod):
        uid = _effective(c, "runAsUser")
        if uid is None:
            gaps.append(f"{c.ref}: runAsUser is not set, so the image decides the UID")
        elif 0 < uid < min_uid:
            gaps.append(f"{c.ref}: runAsUser {uid} is below {min_uid} and may collide with a node user")
        if _effective(c, "runAsGroup") == 0:
            gaps.append(f"{c.ref}: runAsGroup is 0 (root group)")
    if pod.security_context.get("fsGroup") == 0:
        gaps.append(f"{pod.owner.ref}: pod fsGroup is 0 (root group)")
    return gaps


def pod_blocks_privilege_escalation(pod: PodTemplate) -> list[str]:
    gaps = []
    for c in containers(pod):
        value = c.security_context.get("allowPrivilegeEscalation")
        if value is not False:
            state = "true" if value else "not set (defaults to true)"
            gaps.append(f"{c.ref}: allowPrivilegeEscalation is {state}")
    return gaps


def pod_drops_capabilities(pod: PodTemplate) -> list[str]:
    gaps = []
    for c in containers(pod):
        caps = c.security_context.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            gaps.append(f"{c.ref}: capabilities.drop does not include ALL")
        extra = sorted(set(caps.get("add") or []) - ALLOWED_ADDED_CAPABILITIES)
        if extra:
            gaps.append(f"{c.ref}: capabilities.add has {', '.join(extra)} (only NET_BIND_SERVICE is allowed)")
    return gaps


def pod_confines_seccomp(pod: PodTemplate) -> list[str]:
    gaps = []
    pod_type = (pod.security_context.get("seccompProfile") or {}).get("type")
    if pod_type is not None and pod_type not in SECCOMP_TYPES:
        gaps.append(f"{pod.owner.ref}: pod seccompProfile.type is {pod_type}")
    for c in containers(pod):
        own = (c.security_context.get("seccompProfile") or {}).get("type")
        if own is not None and own not in SECCOMP_TYPES:
            gaps.append(f"{c.ref}: seccompProfile.type is {own}")
        elif own is None and pod_type is None:
            gaps.append(f"{c.ref}: seccompProfile is not set on the container or the pod")
    return gaps


def pod_is_unprivileged(pod: PodTemplate) -> list[str]:
    gaps = []
    for c in containers(pod):
        sc = c.security_context
        if sc.get("privileged"):
            gaps.append(f"{c.ref}: privileged is true")
        if sc.get("procMount", "Default") != "Default":
            gaps.append(f"{c.ref}: procMount is {sc['procMount']}")
        if (sc.get("windowsOptions") or {}).get("hostProcess"):
            gaps.append(f"{c.ref}: windowsOptions.hostProcess is true")
    if (pod.security_context.get("windowsOptions") or {}).get("hostProcess"):
        gaps.append(f"{pod.owner.ref}: pod windowsOptions.hostProcess is true")
    return gaps


def pod_stays_off_the_host(pod: PodTemplate) -> list[str]:
    gaps = []
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.spec.get(field):
            gaps.append(f"{pod.owner.ref}: {field} is true")
    if pod.spec.get("shareProcessNamespace"):
        gaps.append(f"{pod.owner.ref}: shareProcessNamespace is true, so every container can see and signal the "
                    "others' processes and read their memory and environment")
    for volume in pod.spec.get("volumes") or []:
        if "hostPath" in volume:
            path = (volume["hostPath"] or {}).get("path")
            gaps.append(f"{pod.owner.ref}: volume {volume.get('name')} is a hostPath ({path})")
    for c in containers(pod):
        for port in c.ports:
            if port.get("hostPort"):
                gaps.append(f"{c.ref}: port {port.get('containerPort')} binds hostPort {port['hostPort']}")
    return gaps


def pod_uses_restricted_volume_types(pod: PodTemplate) -> list[str]:
    gaps = []
    for volume in pod.spec.get("volumes") or []:
        kinds = set(volume) - {"name"}
        bad = sorted(kinds - RESTRICTED_VOLUME_TYPES)
        if bad:
            gaps.append(f"{pod.owner.ref}: volume {volume.get('name')} is of type {', '.join(bad)}, "
                        "not allowed under restricted")
    return gaps


def pod_has_safe_sysctls_and_mac(pod: PodTemplate) -> list[str]:
    gaps = []
    for sysctl in pod.security_context.get("sysctls") or []:
        if sysctl.get("name") not in SAFE_SYSCTLS:
            gaps.append(f"{pod.owner.ref}: sysctl {sysctl.get('name')} is not in the safe set")
    contexts = [(pod.owner.ref + " pod", pod.security_context)] + [(c.ref, c.security_context) for c in containers(pod)]
    for where, sc in contexts:
        selinux = sc.get("seLinuxOptions") or {}
        if selinux.get("type", "") not in SELINUX_TYPES:
            gaps.append(f"{where}: seLinuxOptions.type {selinux['type']} is not allowed")
        for field in ("user", "role"):
            if selinux.get(field):
                gaps.append(f"{where}: seLinuxOptions.{field} is set")
        if (sc.get("appArmorProfile") or {}).get("type") == "Unconfined":
            gaps.append(f"{where}: appArmorProfile.type is Unconfined")
    for key, value in pod.annotations.items():
        if key.startswith("container.apparmor.security.beta.kubernetes.io/") and value == "unconfined":
            gaps.append(f"{pod.owner.ref}: annotation {key} is unconfined")
    return gaps


def pod_has_read_only_root(pod: PodTemplate) -> list[str]:
    gaps = []
    for c in containers(pod):
        value = c.security_context.get("readOnlyRootFilesystem")
        if value is not True:
            gaps.append(f"{c.ref}: readOnlyRootFilesystem is {'false' if value is False else 'not set'}")
    return gaps


def pod_sets_resources(pod: PodTemplate) -> list[str]:
    gaps = []
    for c in pod.containers(("initContainers", "containers")):
        resources = c.spec.get("resources") or {}
        for kind in ("requests", "limits"):
            for resource in ("cpu", "memory"):
                if resource not in (resources.get(kind) or {}):
                    gaps.append(f"{c.ref}: resources.{kind}.{resource} is not set")
        for resource in ("cpu", "memory"):
            request = quantity((resources.get("requests") or {}).get(resource))
            limit = quantity((resources.get("limits") or {}).get(resource))
            if request is not None and limit is not None and request > limit:
                gaps.append(f"{c.ref}: resources.requests.{resource} is above its limit, which the API server refuses")
    return gaps


def pod_bounds_empty_dirs(pod: PodTemplate) -> list[str]:
    """Our own writable volumes are bounded; injectors' volumes are theirs (checked statically only)."""
    gaps = []
    for volume in pod.spec.get("volumes") or []:
        empty_dir = volume.get("emptyDir")
        if empty_dir is not None and "sizeLimit" not in empty_dir:
            medium = " (memory-backed, counts against the node's memory)" if empty_dir.get("medium") == "Memory" else ""
            gaps.append(f"{pod.owner.ref}: emptyDir volume {volume.get('name')} has no sizeLimit{medium}")
    return gaps


def image_pin_gap(image: str) -> str | None:
    if "@sha256:" in image:
        return None
    name = image.rsplit("/", 1)[-1]
    if ":" not in name:
        return "has no tag, so it floats to latest"
    tag = name.rsplit(":", 1)[1]
    if tag == "latest":
        return "uses the latest tag"
    if not VERSION_TAG.match(tag):
        return f"uses tag {tag!r}, which is not a version"
    return None


def pod_pins_images(pod: PodTemplate) -> list[str]:
    gaps = []
    for c in containers(pod):
        image = c.spec.get("image")
        if not image:
            gaps.append(f"{c.ref}: image is not set")
        elif (problem := image_pin_gap(image)) is not None:
            gaps.append(f"{c.ref}: image {image} {problem}")
    return gaps


def _for_every_pod(control: str, name: str, check):
    """Register a per-pod check as the rule `name` over every pod of a bundle."""
    def run(bundle: Bundle) -> list[str]:
        return [gap for pod in bundle.pods for gap in check(pod)]
    run.__name__ = name
    run.__doc__ = check.__doc__
    return rule(control, WORKLOADS)(run)


run_as_non_root = _for_every_pod("SEC-01", "run_as_non_root", pod_runs_as_non_root)
high_user_and_group_ids = _for_every_pod("SEC-01", "high_user_and_group_ids", pod_uses_high_ids)
no_privilege_escalation = _for_every_pod("SEC-01", "no_privilege_escalation", pod_blocks_privilege_escalation)
capabilities_dropped = _for_every_pod("SEC-01", "capabilities_dropped", pod_drops_capabilities)
seccomp_confined = _for_every_pod("SEC-01", "seccomp_confined", pod_confines_seccomp)
unprivileged = _for_every_pod("SEC-01", "unprivileged", pod_is_unprivileged)
off_the_host = _for_every_pod("SEC-01", "off_the_host", pod_stays_off_the_host)
restricted_volume_types = _for_every_pod("SEC-01", "restricted_volume_types", pod_uses_restricted_volume_types)
safe_sysctls_and_mac = _for_every_pod("SEC-01", "safe_sysctls_and_mac", pod_has_safe_sysctls_and_mac)
read_only_root_filesystem = _for_every_pod("SEC-02", "read_only_root_filesystem", pod_has_read_only_root)
resources_bounded = _for_every_pod("SEC-03", "resources_bounded", pod_sets_resources)
empty_dirs_bounded = _for_every_pod("SEC-03", "empty_dirs_bounded", pod_bounds_empty_dirs)
images_pinned = _for_every_pod("SEC-04", "images_pinned", pod_pins_images)

# The checks of SEC-01, for the live tier to run on pods as admitted.
RESTRICTED_POD_CHECKS = (
    pod_runs_as_non_root, pod_blocks_privilege_escalation, pod_drops_capabilities, pod_confines_seccomp,
    pod_is_unprivileged, pod_stays_off_the_host, pod_uses_restricted_volume_types,
    pod_has_safe_sysctls_and_mac)


def _version_tuple(text: str) -> tuple[int, ...] | None:
    match = re.fullmatch(r"v(\d+)\.(\d+)", text)
    return (int(match.group(1)), int(match.group(2))) if match else None


@rule("SEC-05", WORKLOADS)
def namespace_enforces_restricted(bundle: Bundle) -> list[str]:
    gaps = []
    for namespace in sorted({pod.namespace for pod in bundle.pods}):
        ns = bundle.get("Namespace", namespace)
        if ns is None:
            gaps.append(f"Namespace {namespace}: not declared, so nothing enforces Pod Security restricted")
            continue
        level = ns.labels.get("pod-security.kubernetes.io/enforce")
        if level != "restricted":
            gaps.append(f"{ns.ref}: label pod-security.kubernetes.io/enforce is {level or 'not set'}, not restricted")
        version = ns.labels.get("pod-security.kubernetes.io/enforce-version", "latest")
        parsed = _version_tuple(version)
        if version != "latest" and (parsed is None or parsed < MIN_ENFORCE_VERSION):
            gaps.append(f"{ns.ref}: enforce-version {version} predates the current restricted profile "
                        f"(use latest or v{MIN_ENFORCE_VERSION[0]}.{MIN_ENFORCE_VERSION[1]}+)")
    return gaps


@rule("SEC-06", WORKLOADS)
def service_account_token_not_mounted(bundle: Bundle) -> list[str]:
    gaps = []
    for pod in bundle.pods:
        account = pod.spec.get("serviceAccountName") or "default"
        sa = bundle.get("ServiceAccount", account, pod.namespace)
        if account == "default":
            gaps.append(f"{pod.owner.ref}: runs as the namespace's default ServiceAccount")
        elif sa is None:
            gaps.append(f"{pod.owner.ref}: serviceAccountName {account} is not declared in the manifests")
        pod_setting = pod.spec.get("automountServiceAccountToken")
        sa_setting = sa.doc.get("automountServiceAccountToken") if sa else None
        if pod_setting is True or (pod_setting is None and sa_setting is not False):
            gaps.append(f"{pod.owner.ref}: the ServiceAccount token is auto-mounted into every container "
                        "(set automountServiceAccountToken: false)")
    return gaps
