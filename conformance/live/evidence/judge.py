"""Pure judgements of live evidence: no cluster, no I/O, so every rule here has unit tests.

The checks gather evidence (probe results, API answers) and ask these functions for the gaps.
Each returns gaps as lines naming the object and what the cluster did; an empty list means the
requirement held. Evidence that does not let a judgement be made (nothing probed, no pod) is a
gap too: a check that could not look must never pass.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# Probe outcomes that mean the flow got through (the stand-in's `probe` vocabulary)...
ALLOWED_OUTCOMES = frozenset({"connected", "resolved", "nxdomain"})
# ...and those that mean a policy (or nothing listening) stopped it. Anything else (`error`: a failed
# `kubectl exec`, a batch with the wrong number of lines, no exit code; or a word the stand-in may learn
# later) observed nothing: the cell is unprobed with that reason, never blocked.
BLOCKED_OUTCOMES = frozenset({"refused", "timeout", "reset", "unreachable"})
DELIBERATELY_UNPROBED = "static tier decides:"


def flow(outcome: str | None) -> bool | None:
    """True: the flow got through; False: it was stopped; None: the probe observed neither."""
    if outcome in ALLOWED_OUTCOMES:
        return True
    if outcome in BLOCKED_OUTCOMES:
        return False
    return None


def answered(status: int | None, exit_code: int, error: str = "") -> str:
    """How an HTTP probe ended, for messages: `HTTP 200`, `no answer (curl exit 56)`, or, when curl never
    ran (`error`: kubectl exec failed), that the probe could not run at all."""
    if error:
        return f"no answer: the probe could not run ({error})"
    return f"HTTP {status}" if status is not None else f"no answer (curl exit {exit_code})"


def plaintext_refused(where: str, status: int | None, exit_code: int, expected_exits: Sequence[int],
                      note: str = "", errored: bool = False) -> list[str]:
    """MTLS-01: a client without a sidecar must get no HTTP answer, and fail the expected way.

    A different exit code is a gap too: exit 7 (connection refused) or 28 (timeout) means the
    NetworkPolicy or a dead pod stopped the probe, so mTLS was never exercised. A probe that never ran
    (`errored`: kubectl exec failed) exercised nothing either.
    """
    if errored or "NotFound" in note or "not found" in note:
        return [f"{where}: the plaintext client could not probe ({note or f'exit {exit_code}'}); mTLS was not "
                "exercised"]
    if status is not None:
        return [f"{where}: plaintext got HTTP {status}; STRICT mTLS must refuse it"]
    if exit_code not in expected_exits:
        return [f"{where}: plaintext ended with curl exit {exit_code}, not {' or '.join(map(str, expected_exits))} "
                f"(a reset by the server's sidecar), so the probe never reached mTLS{f': {note}' if note else ''}"]
    return []


@dataclass(frozen=True)
class Cell:
    """One cell of the expected network matrix and what a probe saw.

    `outcome` None: not probed, `reason` says why (a reason starting with DELIBERATELY_UNPROBED leaves
    the cell to the static tier). An outcome that is neither allowed nor blocked carries the probe's
    error in `reason`.
    """

    source: str
    destination: str
    port: str
    expected: bool
    outcome: str | None
    reason: str = ""

    @property
    def observed(self) -> bool | None:
        return flow(self.outcome)

    @property
    def deliberate(self) -> bool:
        return self.outcome is None and self.reason.startswith(DELIBERATELY_UNPROBED)

    @property
    def why_unobserved(self) -> str:
        """For a cell no probe observed: why, in words a report can show ("" for an observed cell)."""
        if self.observed is not None:
            return ""
        if self.outcome is None:
            return self.reason
        return f"the probe errored (outcome {self.outcome}), so the flow is unprobed, not blocked: " \
               f"{self.reason or 'no detail'}"


def matrix_gaps(cells: Iterable[Cell]) -> tuple[list[str], list[str], int]:
    """(mismatches, cells that should have been probed but were not, number of cells a probe observed).

    An errored probe counts with the unprobed cells, never as blocked: a row whose every cell is
    expected blocked would otherwise pass with nothing observed.
    """
    mismatches, unprobed, probed = [], [], 0
    for cell in cells:
        if cell.observed is None:
            if not cell.deliberate:
                unprobed.append(f"{cell.source} -> {cell.destination} {cell.port}: {cell.why_unobserved}")
            continue
        probed += 1
        if cell.observed != cell.expected:
            state = "allowed but not expected" if cell.observed else "expected but blocked"
            mismatches.append(f"NetworkPolicy flow {cell.source} -> {cell.destination} {cell.port}: {state} "
                              f"(probe outcome {cell.outcome})")
    return mismatches, unprobed, probed


def matrix_verdict(cells: Sequence[Cell], what: str) -> list[str]:
    """Every mismatch, every cell that could not be probed, and nothing probed at all, as gaps."""
    mismatches, unprobed, probed = matrix_gaps(cells)
    gaps = list(mismatches)
    if unprobed:
        gaps.append(f"{len(unprobed)} cell(s) of {what} could not be probed, so the matrix is not proven: "
                    + "; ".join(unprobed[:5]) + (f"; and {len(unprobed) - 5} more" if len(unprobed) > 5 else ""))
    if probed == 0:
        gaps.append(f"no cell of {what} was probed: nothing was observed")
    return gaps


def deferred_cells(cells: Iterable[Cell]) -> list[str]:
    """The cells left to the static tier on purpose, each named, grouped by why: evidence a report shows
    beside the live verdict, so a pass never reads as if the live tier had looked at them."""
    by_reason: dict[str, list[str]] = {}
    for c in cells:
        if c.deliberate:
            by_reason.setdefault(c.reason.removeprefix(DELIBERATELY_UNPROBED).strip(), []).append(
                f"{c.source} -> {c.destination} {c.port}")
    return [f"{', '.join(flows)}: not probed live; {why}" for why, flows in by_reason.items()]


def canary_gaps(where: str, before_outcome: str | None, before_note: str, after_outcome: str | None,
                after_note: str) -> list[str]:
    """NET-01: the canary connects before the deny and is blocked after it. A probe that errored on
    either side proves nothing: it is a gap naming the error, never "the deny works"."""
    if flow(before_outcome) is None:
        return [f"{where}: the canary's probe before any policy errored (outcome {before_outcome}: "
                f"{before_note or 'no detail'}), so enforcement could not be tested"]
    if not flow(before_outcome):
        return [f"{where}: the canary could not connect even before any policy ({before_outcome}); the cluster "
                "network itself is broken"]
    if flow(after_outcome) is None:
        return [f"{where}: the canary's probe after the deny policy errored (outcome {after_outcome}: "
                f"{after_note or 'no detail'}), so whether the CNI enforces NetworkPolicy is unknown"]
    if flow(after_outcome):
        return [f"{where}: the connection still succeeds under the deny policy, so the CNI does not enforce "
                "NetworkPolicy and no live network result can be trusted"]
    return []


def eviction_gaps(pdb: str, answers: Mapping[str, int], granted_expected: int) -> list[str]:
    """AVAIL-01: asked to evict every pod at once, the API grants exactly the budget, refuses the rest (429).

    `answers` maps each pod to the HTTP status of its eviction (201 granted, 429 refused).
    """
    if len(answers) < 2:
        return [f"{pdb}: only {len(answers)} pod(s) to evict; a budget shows only with two or more"]
    granted = sorted(p for p, s in answers.items() if s in (200, 201))
    refused = sorted(p for p, s in answers.items() if s == 429)
    other = {p: s for p, s in answers.items() if s not in (200, 201, 429)}
    gaps = [f"{pdb}: eviction of pod {p} answered HTTP {s}, neither granted nor refused by the budget"
            for p, s in sorted(other.items())]
    if len(granted) > granted_expected:
        gaps.append(f"{pdb}: {len(granted)} of {len(answers)} pods were evicted at once, more than the "
                    f"{granted_expected} the budget allows (is there a PodDisruptionBudget at all?)")
    elif len(granted) < granted_expected:
        gaps.append(f"{pdb}: only {len(granted)} of {len(answers)} pods could be evicted, fewer than "
                    f"{granted_expected}: the budget blocks voluntary disruption (a drain would hang)")
    if not refused and len(granted) < len(answers) and not other:
        gaps.append(f"{pdb}: no eviction was refused with 429")
    return gaps


def replica_gaps(hpa: str, spec: Mapping[str, Any], expected: Mapping[str, Any], deployment: str) -> list[str]:
    """HPA-01: the live HPA targets the Deployment with the expected bounds."""
    gaps = []
    target = spec.get("scaleTargetRef") or {}
    if (target.get("kind"), target.get("name")) != ("Deployment", deployment):
        gaps.append(f"{hpa}: scaleTargetRef is {target.get('kind')}/{target.get('name')}, not Deployment/{deployment}")
    for field, key in (("minReplicas", "min_replicas"), ("maxReplicas", "max_replicas")):
        if spec.get(field) != expected[key]:
            gaps.append(f"{hpa}: {field} is {spec.get(field)}, expected {expected[key]}")
    return gaps


def mutable_image(ref: str, mutable_tags: Iterable[str]) -> bool:
    """Whether an image reference names no fixed content: a mutable tag, or neither tag nor digest."""
    if "@sha256:" in ref:
        return False
    last = ref.rsplit("/", 1)[-1]
    return ":" not in last or last.rsplit(":", 1)[1] in set(mutable_tags)


def secret_file_gaps(where: str, path: str, seen: Mapping[str, Any] | None, expected: str, what: str,
                     known: Mapping[str, str]) -> list[str]:
    """VAULT-02: a file the agent rendered holds what the contract says, judged by digest only.

    `seen` is the stand-in's digest of the file ({sha256, bytes} or {error}), `expected` the sha256 of
    the contract's content (`what` describes it), `known` every digest of a value the suite wrote, so a
    wrong file is named (another key, another file's content) without its content ever being read.
    """
    if seen is None:
        return [f"{where}: {path} was not reported by the digest probe"]
    if seen.get("error") or not seen.get("sha256"):
        return [f"{where}: {path} is missing or unreadable ({seen.get('error') or 'no digest'})"]
    if seen["sha256"] == expected:
        return []
    holds = known.get(seen["sha256"])
    if holds is None:
        holds = ("an empty file" if not seen.get("bytes")
                 else f"{seen.get('bytes')} bytes matching no value the suite wrote")
    return [f"{where}: {path} does not hold what the contract renders ({what}); it holds {holds}"]
