"""CEL rules of CRDs (x-kubernetes-validations): which Istio rules compile, and Kubernetes' semantics.

The runtime is the real one the static tier uses (common-expression-language); the Istio rules come
from the pinned istio.io/api CRDs as conformance.downloads caches them.
"""

from __future__ import annotations

import datetime

import pytest

from conformance.static import cel_library, cel_rules
from conformance.static.rules import validity


def _istio_rules() -> dict[str, str]:
    """Each distinct rule of the pinned Istio CRDs, with the first kind and field it sits on."""
    found: dict[str, str] = {}

    def walk(node, where: str) -> None:
        if not isinstance(node, dict):
            return
        for spec in node.get("x-kubernetes-validations") or []:
            found.setdefault(spec["rule"], where)
        for name, sub in (node.get("properties") or {}).items():
            walk(sub, f"{where}.{name}")
        walk(node.get("items"), f"{where}[]")
        walk(node.get("additionalProperties"), f"{where}[*]")

    for key, schema in sorted(validity.validator()._istio.items()):
        walk(schema, key.rpartition("/")[2])
    return found


ISTIO_RULES = _istio_rules()


def test_istio_crds_carry_rules():
    """The cache keeps the CEL rules (it dropped them before format 2), so there is something to evaluate."""
    assert len(ISTIO_RULES) >= 30


@pytest.mark.parametrize("rule", sorted(ISTIO_RULES), ids=[f"{ISTIO_RULES[r]}" for r in sorted(ISTIO_RULES)])
def test_istio_rule_compiles(rule):
    """Every rule of the pinned Istio CRDs compiles and calls only functions this runtime has."""
    compiled = cel_rules.compile_rule(rule)
    assert compiled.problem is None, f"{ISTIO_RULES[rule]}: `{rule}` {compiled.problem}"
    assert compiled.program is not None or compiled.transition


def test_each_rule_compiles_once(dev_bundle):
    """Validating again compiles nothing new: rules are compiled once per process."""
    validity.istio_schema(dev_bundle)
    before = cel_rules.compile_rule.cache_info().misses
    validity.istio_schema(dev_bundle)
    validity.istio_schema(dev_bundle)
    assert cel_rules.compile_rule.cache_info().misses == before


SCHEMA = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "x-kubernetes-validations": [
                {"rule": "has(self.ports) ? self.ports.all(k, int(k) > 0) : true", "message": "ports are numbers"},
                {"rule": "self.min <= self.max", "message": "min above max", "fieldPath": ".min"},
                {"rule": "self.min == oldSelf.min", "message": "min is immutable"},
            ],
            "properties": {
                "min": {"type": "integer"}, "max": {"type": "integer"},
                "ports": {"type": "object", "additionalProperties": {"type": "string"}},
                "items": {"type": "array", "items": {
                    "type": "object", "properties": {"namespace": {"type": "string"}, "x-y": {"type": "string"}},
                    "x-kubernetes-validations": [
                        {"rule": "!has(self.__namespace__) || self.__namespace__ == ''", "message": "no namespace"},
                        {"rule": "!has(self.x__dash__y) || self.x__dash__y.startsWith('a')", "message": "x-y"},
                    ]}},
                "size": {"type": "string", "x-kubernetes-validations": [{"rule": "quantity(self).sign() > 0"}]},
            },
        },
    },
}


def _check(value):
    return cel_rules.RuleTree.of(SCHEMA).check(value)


def test_violations_name_the_field_and_skip_transition_rules():
    """False rules give their message at the node's path (plus fieldPath); oldSelf rules are left alone."""
    outcome = _check({"spec": {"min": 3, "max": 2, "ports": {"80": "http"}}})
    assert outcome.violations == [(["spec", "min"], "min above max")]
    assert outcome.not_evaluated == []


def test_an_evaluation_error_rejects_like_the_api_server():
    """A rule that errors (int('http')) rejects the object, naming the rule's message and the error."""
    outcome = _check({"spec": {"min": 1, "max": 2, "ports": {"http": "x"}}})
    [(where, message)] = outcome.violations
    assert where == ["spec"]
    assert message.startswith("ports are numbers (the rule could not be evaluated")


def test_properties_are_escaped_as_kubernetes_escapes_them():
    """`namespace` is reserved in CEL and `x-y` has a dash: rules spell them __namespace__ and x__dash__y."""
    outcome = _check({"spec": {"min": 1, "max": 1, "items": [{"namespace": "other", "x-y": "b"}, {"x-y": "a"}]}})
    assert outcome.violations == [(["spec", "items", 0], "no namespace"), (["spec", "items", 0], "x-y")]


def test_a_rule_the_runtime_lacks_is_not_evaluated_not_passed():
    """quantity() is a Kubernetes library this runtime lacks: the rule comes back as not evaluated."""
    outcome = _check({"spec": {"min": 1, "max": 1, "size": "1Gi"}})
    assert outcome.violations == []
    [(where, rule, problem)] = outcome.not_evaluated
    assert (where, rule) == (["spec", "size"], "quantity(self).sign() > 0")
    assert "quantity" in problem
    assert "lacks" in problem


def test_a_rule_that_does_not_parse_is_not_evaluated():
    assert cel_rules.compile_rule("self.a ==").problem.startswith("does not compile")


def test_values_reach_cel_as_the_api_server_sends_them():
    """Integer map keys become strings and dates ISO strings, as after the API server's JSON round trip."""
    converted = cel_rules.as_cel({8080: {"at": datetime.date(2026, 1, 2)}}, None)
    assert converted == {"8080": {"at": "2026-01-02"}}


@pytest.mark.parametrize(("expression", "expected"), [
    ("isURL('https://auth.example.com/jwks') && url('https://a.example.com:8443/x?y=1').getScheme() == 'https'", True),
    ("url('https://a.example.com:8443/x').getHostname() == 'a.example.com'", True),
    ("url('https://a.example.com:8443/x').getPort() == '8443'", True),
    ("isURL('not a url')", False),
    ("isURL('/relative/path')", True),
    ("isIP('fd00:ec2::254') && !isIP('fd00::1%eth0') && isCIDR('10.0.0.0/8') && !isCIDR('10.0.0.1')", True),
    ("'unix:///run/x.sock'.substring(7, 8) == '/'", True),
    ("'abc-123'.find('[0-9]+') == '123'", True),
])
def test_kubernetes_library_functions(expression, expected):
    """The Kubernetes CEL functions the Istio rules call, as the API server answers them."""
    compiled = cel_rules.compile_rule(expression)
    assert compiled.problem is None
    context = cel_library.cel.Context(functions=cel_library.FUNCTIONS)
    context.add_variable("self", None)
    assert compiled.program.execute(context) is expected


def test_namespace_wide_peer_authentication_with_port_level_mtls(dev_bundle):
    """Istio rejects portLevelMtls without a workload selector at admission; SCHEMA-02 says so too."""
    from conformance.static.mutations import apply

    changed = apply(dev_bundle, [{"target": "PeerAuthentication/default", "path": "spec.portLevelMtls",
                                  "value": {"8080": {"mode": "STRICT"}}}])
    assert validity.istio_schema(changed) == ["PeerAuthentication cortex-dev/default: spec: portLevelMtls requires "
                                              "selector"]
