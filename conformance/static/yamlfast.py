"""A faster safe YAML loader for large rendered bundles, with the results of yaml.safe_load.

libyaml (CSafeLoader) parses and composes in C, but still resolves every scalar's tag and builds
every object through PyYAML's general Python constructor, which is most of the time spent on a
large bundle. Rendered manifests repeat the same keys and values thousands of times and use no
merge keys or custom tags, so this loader remembers each scalar's resolved tag and builds plain
maps, sequences and strings directly; anything unusual (merge keys, !!set, !!omap, unknown tags)
goes through PyYAML's own constructor, so results and errors stay those of yaml.safe_load.
"""

from __future__ import annotations

from typing import Any, ClassVar

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_MERGE = "tag:yaml.org,2002:merge"

_Base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class FastSafeLoader(_Base):
    # Implicit tags depend only on the scalar's text and quoting (SafeLoader has no path
    # resolvers), so one resolution per distinct scalar is enough for the whole process.
    _resolved: ClassVar[dict[tuple[str, bool], str]] = {}

    def resolve(self, kind, value, implicit):
        if kind is ScalarNode and implicit[0]:
            key = (value, implicit[1])
            tag = self._resolved.get(key)
            if tag is None:
                tag = super().resolve(kind, value, implicit)
                if len(self._resolved) < 200_000:  # bounded: names and hashes differ per object
                    self._resolved[key] = tag
            return tag
        return super().resolve(kind, value, implicit)

    def construct_document(self, node: Node) -> Any:
        # Aliases compose to the same node object: build each collection once, as PyYAML does,
        # so that an alias-heavy document cannot blow up into copies. The memo is an argument, not
        # a closure's cell, so that nothing cyclic outlives the document while parse() pauses the GC.
        try:
            return self._build(node, {})
        finally:
            self.constructed_objects = {}
            self.recursive_objects = {}
            self.deep_construct = False

    def _build(self, node: Node, built: dict[int, Any]) -> Any:
        cls, tag = node.__class__, node.tag
        if cls is ScalarNode:
            if tag == _STR:
                return node.value
            constructor = self.yaml_constructors.get(tag)
            return constructor(self, node) if constructor is not None else self.construct_object(node, deep=True)
        done = built.get(id(node))
        if done is not None:
            return done
        if cls is SequenceNode and tag == _SEQ:
            items: list[Any] = []
            built[id(node)] = items
            items.extend(self._build(item, built) for item in node.value)
            return items
        if cls is MappingNode and tag == _MAP and not any(k.tag == _MERGE for k, _ in node.value):
            mapping: dict[Any, Any] = {}
            built[id(node)] = mapping
            for key_node, value_node in node.value:
                key = self._build(key_node, built)
                try:
                    hash(key)
                except TypeError:
                    raise ConstructorError("while constructing a mapping", node.start_mark,
                                           "found unhashable key", key_node.start_mark) from None
                mapping[key] = self._build(value_node, built)
            return mapping
        return self.construct_object(node, deep=True)
