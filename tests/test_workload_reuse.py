"""A kept workload is reused when only what running pods take in place changed (workload/changes.in_place_changes)."""

from conformance.live.workload.changes import in_place_changes

DIGESTS = {"clients": "c", "platform": "p", "overlay": "o1"}
OBJECTS = {"Deployment/cortex-dev/cortex-api": "d1", "AuthorizationPolicy/cortex-dev/cortex-api": "a1",
           "Namespace//cortex-dev": "n1"}
RECORD = {**DIGESTS, "objects": OBJECTS}


def test_unchanged_workload_is_reused_as_it_is():
    assert in_place_changes(RECORD, DIGESTS, OBJECTS) == set()


def test_changed_policy_and_pod_template_are_applied_in_place():
    now = {**OBJECTS, "AuthorizationPolicy/cortex-dev/cortex-api": "a2", "Deployment/cortex-dev/cortex-api": "d2",
           "NetworkPolicy/cortex-dev/new": "x"}
    assert in_place_changes(RECORD, {**DIGESTS, "overlay": "o2"}, now) == {
        "AuthorizationPolicy/cortex-dev/cortex-api", "Deployment/cortex-dev/cortex-api", "NetworkPolicy/cortex-dev/new"}


def test_removed_object_is_a_change_too():
    now = {k: v for k, v in OBJECTS.items() if not k.startswith("AuthorizationPolicy")}
    assert in_place_changes(RECORD, {**DIGESTS, "overlay": "o2"}, now) == {"AuthorizationPolicy/cortex-dev/cortex-api"}


def test_what_running_pods_cannot_take_starts_over():
    """What pods read only when they start (a namespace's labels, a ConfigMap, a ServiceAccount, a
    ProxyConfig); other clients or another platform, no record, or a record without per-object digests:
    start over."""
    overlay = {**DIGESTS, "overlay": "o2"}
    assert in_place_changes(RECORD, overlay, {**OBJECTS, "Namespace//cortex-dev": "n2"}) is None
    assert in_place_changes(RECORD, overlay, {**OBJECTS, "ConfigMap/cortex-dev/x": "m"}) is None
    assert in_place_changes(RECORD, overlay, {**OBJECTS, "ServiceAccount/cortex-dev/cortex-api": "s"}) is None
    assert in_place_changes(RECORD, overlay, {**OBJECTS, "ProxyConfig/cortex-dev/cortex-api": "p"}) is None
    assert in_place_changes(RECORD, {**DIGESTS, "platform": "p2"}, OBJECTS) is None
    assert in_place_changes(RECORD, {**DIGESTS, "clients": "c2"}, OBJECTS) is None
    assert in_place_changes(None, DIGESTS, OBJECTS) is None
    assert in_place_changes({**DIGESTS, "overlay": "old"}, overlay, OBJECTS) is None
