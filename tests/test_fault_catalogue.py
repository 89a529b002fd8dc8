"""fixtures/faults.yaml: well formed, every live control proven by a fault, every overlay change applicable.

The catalogue itself runs on a cluster (`nox -s faults`); these tests make sure it can: a mutation
that names an object or field the overlay does not have would otherwise only fail there.
"""

from __future__ import annotations

import pytest
import yaml

from conformance.errors import InputError
from conformance.live.faults import actions, catalogue
from conformance.paths import OVERLAYS
from conformance.static import mutations
from conformance.static.manifests import load_overlay

FAULTS = catalogue.load()


def test_every_live_control_has_a_fault():
    assert catalogue.uncovered(FAULTS) == []


def test_the_catalogue_has_what_the_issue_asks_for():
    names = {f.name for f in FAULTS}
    assert {"permissive-workload-mtls", "allow-all-in-root-namespace", "injection-off", "injector-webhook-gone",
            "cni-enforcement-stopped", "ingress-open-to-everyone", "readiness-never-passes", "liveness-removed",
            "metrics-server-down", "hpa-target-gone", "sidecar-without-cpu-request", "pdb-deleted",
            "vault-injector-down", "vault-sealed", "http-redirect-removed", "certificate-for-another-host",
            "jwks-rotated", "other-issuer-everywhere", "audience-typo"} <= names


@pytest.mark.parametrize("fault", [f for f in FAULTS if f.overlay], ids=lambda f: f.name)
def test_overlay_change_applies_to_the_dev_overlay(fault):
    dev = load_overlay(OVERLAYS / "dev")
    changed = mutations.apply(dev, list(fault.overlay))
    assert [o.doc for o in changed.objects] != [o.doc for o in dev.objects], f"{fault.name} changes nothing"


@pytest.mark.parametrize("fault", [f for f in FAULTS if f.cluster], ids=lambda f: f.name)
def test_cluster_steps_name_known_actions(fault):
    for step in fault.cluster:
        if "call" in step:
            call = step["call"]
            assert (call if isinstance(call, str) else call["name"]) in actions.CALLS


def test_a_fault_runs_the_checks_of_its_expected_controls_only():
    """The kill is judged on the expected controls' checks; a disruptive one runs only where expected."""
    fault = next(f for f in FAULTS if f.name == "pdb-deleted")
    assert fault.controls() == ["AVAIL-01"]
    assert all(f.controls() == list(f.expect) for f in FAULTS)


@pytest.mark.parametrize(("entry", "message"), [
    ({"name": "x", "description": "d", "expect": ["NOPE-01"], "overlay": [{}]}, "unknown control NOPE-01"),
    ({"name": "x", "description": "d", "expect": ["JWT-03"], "overlay": [{}]}, "has no live check"),
    ({"name": "x", "description": "d", "expect": ["JWT-02"], "because": {"JWT-02": "x"}},
     "neither overlay nor cluster"),
    ({"name": "x", "description": "d", "expect": ["JWT-02"], "overlay": [{}]}, "because must give each expected"),
    ({"name": "x", "description": "d", "expect": ["JWT-02"], "because": {"JWT-02": " "}, "overlay": [{}]},
     "because must give each expected"),
    ({"name": "X y", "description": "d", "expect": ["JWT-02"], "overlay": [{}]}, "lower-case words"),
    ({"name": "x", "description": "d", "expect": ["JWT-02"], "because": {"JWT-02": "x"},
      "cluster": [{"apply": {}, "scale": {}}]}, "exactly"),
])
def test_bad_entries_are_one_line(tmp_path, entry, message):
    path = tmp_path / "faults.yaml"
    path.write_text(yaml.safe_dump({"faults": [entry]}))
    with pytest.raises(InputError, match=message):
        catalogue.load(path)
