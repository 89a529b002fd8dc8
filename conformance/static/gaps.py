"""Gap lines as people read them: the same gap for ten thousand copies is said once, with a count.

A gap starts with the object it is about (`Deployment cortex-dev/cortex-api: ...`). Gaps that differ
only in that object's namespace and name are one finding repeated; a check's message shows the first
in full and folds the rest into "… and 9,998 more like it (Deployment cortex-dev/b, ...)". The
unfolded list stays in the results file, so nothing is lost to the report or to a script.
"""

from __future__ import annotations

import re
from collections.abc import Callable

OBJECT_REF = re.compile(r"^([A-Z][A-Za-z0-9]*) (?:([a-z0-9.-]+)/)?([a-z0-9][a-z0-9.-]*)(?=[ :])")
# Up to this many gaps alike are listed in full; a longer run is folded.
FOLD_ABOVE = 3
EXAMPLES = 3


def _shape(gap: str) -> tuple[str, str, str] | None:
    """(kind, the gap with the object's namespace and name blanked, "namespace/name") or None."""
    match = OBJECT_REF.match(gap)
    if match is None or "\n" in gap:
        return None
    kind, namespace, name = match.groups()
    rest = gap[match.end():].replace(name, "\0")
    if namespace:
        rest = rest.replace(namespace, "\1")
    return kind, rest, f"{namespace}/{name}" if namespace else name


def fold(gaps: list[str], where: Callable[[str], object] | None = None) -> list[str]:
    """The gaps in their order, each run of gaps alike but for the object folded into one line more.

    `where`, when given, names the source line of a gap (conformance.static.origins); it is asked only
    for the gaps shown in full and appended to them as `  [base/deployment.yaml:158]`.
    """
    if where is not None:
        full = set(gaps)
        return [f"{line}  [{where(line)}]" if line in full else line for line in fold(gaps)]
    groups: dict[object, list[int]] = {}
    shapes = [_shape(gap) for gap in gaps]
    for index, (gap, shape) in enumerate(zip(gaps, shapes, strict=True)):
        key = (shape[0], shape[1]) if shape else ("line", gap)
        groups.setdefault(key, []).append(index)
    lines = []
    for members in groups.values():
        if len(members) <= FOLD_ABOVE:
            lines += [gaps[i] for i in members]
            continue
        lines.append(gaps[members[0]])
        shape = shapes[members[0]]
        if shape is None:
            lines.append(f"  … and the same {len(members) - 1:,} more time(s)")
            continue
        others = list(dict.fromkeys(shapes[i][2] for i in members[1:] if shapes[i][2] != shape[2]))
        if not others:
            lines.append(f"  … and the same {len(members) - 1:,} more time(s)")
            continue
        examples = ", ".join(others[:EXAMPLES]) + (", ..." if len(others) > EXAMPLES else "")
        lines.append(f"  … and {len(members) - 1:,} more like it ({shape[0]} {examples})")
    return lines
