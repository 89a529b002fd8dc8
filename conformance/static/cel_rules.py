"""CRD validation rules (x-kubernetes-validations), evaluated as the API server does at create.

Kubernetes semantics kept here:
- a rule sits on a schema node and is evaluated for every value at that node, `self` bound to it;
- transition rules (those reading `oldSelf`) apply only to updates, so they are not evaluated;
- object properties CEL cannot spell are escaped as Kubernetes escapes them (`__dash__`, `__dot__`,
  `__slash__`, `__underscores__`, `__namespace__` for reserved words); map keys stay as they are;
- a rule that is false, or that fails to evaluate, rejects the object with the rule's message at
  the node's path (plus the rule's fieldPath).

Each distinct rule is compiled once per process. A rule that does not compile, or that calls a
function this runtime lacks, cannot be evaluated: it comes back as not evaluated, never as passed.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from conformance.static import cel_library
from conformance.static.cel_library import cel

RESERVED = frozenset({"true", "false", "null", "in", "as", "break", "const", "continue", "else", "for",
                      "function", "if", "import", "let", "loop", "package", "namespace", "return", "var",
                      "void", "while"})
_PLAIN = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_ACCESSIBLE = re.compile(r"^[a-zA-Z_.\-/][a-zA-Z0-9_.\-/]*$")


@dataclass(frozen=True)
class Compiled:
    source: str
    program: Any = None
    problem: str | None = None  # why the rule cannot be evaluated here
    transition: bool = False


@cache
def compile_rule(source: str) -> Compiled:
    try:
        program = cel.compile(source)
    except (ValueError, RuntimeError, TypeError) as exc:
        return Compiled(source, problem=f"does not compile: {str(exc).splitlines()[0]}")
    if {"oldSelf", "optionalOldSelf"} & set(program.variables()):
        return Compiled(source, transition=True)
    missing = sorted(f for f in program.functions()
                     if not cel_library.is_operator(f) and f not in cel_library.KNOWN)
    if missing:
        return Compiled(source, problem=f"calls {', '.join(missing)}, which this CEL runtime lacks")
    return Compiled(source, program)


@cache
def _context() -> cel.Context:
    return cel.Context(functions=cel_library.FUNCTIONS)


def escape(name: str) -> str:
    """A property name as CEL rules spell it (Kubernetes' escaping)."""
    if name in RESERVED:
        return f"__{name}__"
    if _PLAIN.match(name) and "__" not in name:
        return name
    if not _ACCESSIBLE.match(name):
        return name  # Kubernetes makes such properties inaccessible; no rule can name them
    return (name.replace("__", "__underscores__").replace(".", "__dot__").replace("-", "__dash__")
            .replace("/", "__slash__"))


def as_cel(value: Any, schema: dict[str, Any] | None) -> Any:
    """A YAML value as the API server hands it to CEL: JSON types, object properties escaped."""
    if isinstance(value, dict):
        props = (schema or {}).get("properties") or {}
        extra = (schema or {}).get("additionalProperties")
        out = {}
        for key, item in value.items():
            key = str(key)
            if key in props:
                out[escape(key)] = as_cel(item, props[key])
            else:
                out[key] = as_cel(item, extra if isinstance(extra, dict) else None)
        return out
    if isinstance(value, list):
        items = (schema or {}).get("items")
        return [as_cel(item, items if isinstance(items, dict) else None) for item in value]
    if isinstance(value, datetime.date):
        return value.isoformat()  # YAML reads unquoted dates as dates; the API server sees strings
    return value


@dataclass
class Outcome:
    """What the rules of one object said: violations (path parts, message) and rules not evaluated."""

    violations: list[tuple[list[Any], str]] = field(default_factory=list)
    not_evaluated: list[tuple[list[Any], str, str]] = field(default_factory=list)  # path, rule, problem


@dataclass
class RuleTree:
    """The nodes of a schema that carry rules, and the way down to them; nothing else is walked."""

    schema: dict[str, Any]
    rules: list[dict[str, Any]]
    properties: dict[str, RuleTree]
    additional: RuleTree | None
    items: RuleTree | None

    @classmethod
    def of(cls, schema: Any) -> RuleTree | None:
        if not isinstance(schema, dict):
            return None
        props = {name: tree for name, sub in (schema.get("properties") or {}).items()
                 if (tree := cls.of(sub)) is not None}
        additional, items = cls.of(schema.get("additionalProperties")), cls.of(schema.get("items"))
        rules = [r for r in schema.get("x-kubernetes-validations") or [] if isinstance(r, dict) and "rule" in r]
        if not (rules or props or additional or items):
            return None
        return cls(schema, rules, props, additional, items)

    def check(self, value: Any, path: list[Any] | None = None, outcome: Outcome | None = None) -> Outcome:
        path, outcome = path or [], outcome or Outcome()
        if self.rules and value is not None:
            self._evaluate(value, path, outcome)
        if isinstance(value, dict):
            for key, item in value.items():
                tree = self.properties.get(str(key)) or (None if str(key) in (self.schema.get("properties") or {})
                                                         else self.additional)
                if tree is not None:
                    tree.check(item, [*path, str(key)], outcome)
        elif isinstance(value, list) and self.items is not None:
            for index, item in enumerate(value):
                self.items.check(item, [*path, index], outcome)
        return outcome

    def _evaluate(self, value: Any, path: list[Any], outcome: Outcome) -> None:
        converted = as_cel(value, self.schema)
        for spec in self.rules:
            compiled = compile_rule(spec["rule"])
            if compiled.transition:
                continue
            where = [*path, spec["fieldPath"].lstrip(".")] if spec.get("fieldPath") else path
            if compiled.program is None:
                outcome.not_evaluated.append((where, compiled.source, compiled.problem or ""))
                continue
            context = _context()
            context.add_variable("self", converted)
            message = spec.get("message") or f"failed rule: {compiled.source}"
            try:
                result = compiled.program.execute(context)
            except Exception as exc:  # noqa: BLE001 - any evaluation error rejects the object, as in Kubernetes
                outcome.violations.append((where, f"{message} (the rule could not be evaluated: "
                                                  f"{str(exc).splitlines()[0]})"))
                continue
            if result is not True:
                outcome.violations.append((where, message))
