"""Custom resources of other groups are checked against their CustomResourceDefinition: one in the
bundle, or one given with --crd; without either, the gap says how to supply it."""

from __future__ import annotations

import textwrap

import pytest

from conformance.errors import InputError
from conformance.static import crds
from conformance.static.manifests import Bundle, parse
from conformance.static.rules import validity

CRD = textwrap.dedent("""\
    apiVersion: apiextensions.k8s.io/v1
    kind: CustomResourceDefinition
    metadata:
      name: foos.example.com
    spec:
      group: example.com
      names: {kind: Foo, listKind: FooList, plural: foos, singular: foo}
      scope: Namespaced
      versions:
        - name: v1
          served: true
          storage: true
          schema:
            openAPIV3Schema:
              type: object
              properties:
                spec:
                  type: object
                  x-kubernetes-validations:
                    - {rule: "self.replicas <= self.maxReplicas", message: replicas must not exceed maxReplicas}
                  properties:
                    replicas: {type: integer}
                    maxReplicas: {type: integer}
    """)

FOO = textwrap.dedent("""\
    apiVersion: example.com/v1
    kind: Foo
    metadata: {name: a, namespace: cortex-dev}
    spec: {replicas: 1, maxReplicas: 2}
    """)


def bundle(*documents: str) -> Bundle:
    text = "---\n".join(documents)
    return Bundle("test", "test", text, parse(text, "test"))


@pytest.fixture(autouse=True)
def no_given_crds():
    """--crd state is per process: each test starts without any and leaves none behind."""
    crds.GIVEN.clear()
    yield
    crds.GIVEN.clear()


def test_without_its_crd_the_gap_says_how_to_supply_it():
    assert validity.kubernetes_schema(bundle(FOO)) == [
        "Foo cortex-dev/a: no schema for example.com/v1 Foo: its CustomResourceDefinition is neither in the "
        "manifests nor given with --crd FILE|DIR (or the kind or apiVersion is misspelled)"]


def test_a_crd_in_the_bundle_is_its_schema():
    """The valid Foo passes; its CRD (a Kubernetes object) validates too."""
    assert validity.kubernetes_schema(bundle(CRD, FOO)) == []


def test_the_crd_schema_is_strict_and_its_cel_rules_hold():
    broken = FOO.replace("spec: {replicas: 1, maxReplicas: 2}", "spec: {replicas: 3, maxReplicas: 2, replica: 1}")
    gaps = validity.kubernetes_schema(bundle(CRD, broken))
    assert "Foo cortex-dev/a: spec: Additional properties are not allowed ('replica' was unexpected)" in gaps
    assert "Foo cortex-dev/a: spec: replicas must not exceed maxReplicas" in gaps


def test_crd_given_as_a_file_or_a_directory(tmp_path):
    (tmp_path / "crds").mkdir()
    (tmp_path / "crds" / "foo.yaml").write_text(CRD)
    assert crds.use([tmp_path / "crds"]) == 1
    assert validity.kubernetes_schema(bundle(FOO)) == []
    assert crds.use([tmp_path / "crds" / "foo.yaml"]) == 1
    assert validity.kubernetes_schema(bundle(FOO)) == []


def test_a_crd_in_the_bundle_wins_over_a_given_one(tmp_path):
    """The bundle's CRD is the one applied with its objects."""
    (tmp_path / "old.yaml").write_text(CRD.replace("maxReplicas: {type: integer}", "maxReplicas: {type: string}"))
    crds.use([tmp_path / "old.yaml"])
    assert validity.kubernetes_schema(bundle(FOO))  # the given CRD says maxReplicas is a string
    assert validity.kubernetes_schema(bundle(CRD, FOO)) == []


@pytest.mark.parametrize(("content", "message"), [
    (None, "does not exist"),
    ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n", "no CustomResourceDefinition with a schema in it"),
    (b"\x89PNG\r\n\x1a\n\xd0\xff", "is not a text YAML file"),
    ("kind: [\n", "invalid YAML"),
], ids=["missing", "no-crd", "binary", "invalid-yaml"])
def test_a_bad_crd_path_is_one_line(tmp_path, content, message):
    path = tmp_path / "crd.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(InputError, match=message) as caught:
        crds.use([path])
    assert "\n" not in str(caught.value)


def test_a_crd_whose_schema_cannot_compile_is_a_gap_not_a_traceback():
    broken = CRD.replace("replicas: {type: integer}", "replicas: {type: integer, pattern: '(['}")
    gaps = validity.kubernetes_schema(bundle(broken, FOO))
    assert any(g.startswith("Foo cortex-dev/a: the schema of example.com/v1/Foo in its CustomResourceDefinition "
                            "cannot be used") for g in gaps), gaps


def test_a_rule_the_runtime_lacks_is_said_once_for_all_objects():
    """Rules that cannot be evaluated fail the check, once per rule however many objects it applies to."""
    lacking = CRD.replace('{rule: "self.replicas <= self.maxReplicas", message: replicas must not exceed maxReplicas}',
                          '{rule: "quantity(self.size).isGreaterThan(quantity(\'1Gi\'))"}')
    others = [FOO.replace("name: a", f"name: f{i}") for i in range(3)]
    gaps = validity.kubernetes_schema(bundle(lacking, FOO, *others))
    assert gaps == ["Foo cortex-dev/a: spec: CEL rule `quantity(self.size).isGreaterThan(quantity('1Gi'))` was not "
                    "evaluated (it calls isGreaterThan, quantity, which this CEL runtime lacks), so this object and "
                    "3 more object(s) went unchecked against it"]


def test_builtin_groups_never_take_a_custom_schema():
    """A look-alike group (apps.example.com) is a custom resource, not apps/v1."""
    lookalike = FOO.replace("example.com/v1", "apps.example.com/v1").replace("kind: Foo", "kind: Deployment")
    [gap] = validity.kubernetes_schema(bundle(lookalike))
    assert "its CustomResourceDefinition is neither in the manifests nor given with --crd" in gap
