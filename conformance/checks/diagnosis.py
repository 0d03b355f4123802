"""Name the known deviation a failure matches, when one does.

A failing trajectory is replayed through each computable deviation of the catalogue
(:mod:`conformance.checks.deviations`); when the candidate's weights lie inside the budgets of a deviated
oracle at every step, the report names that deviation.
"""

from __future__ import annotations

import numpy as np
from optimizer_conformance.conformance.checks.compare import compare, oracle_states
from optimizer_conformance.conformance.checks.deviations import DEVIATIONS


def diagnose(spec: dict, states: list[dict]) -> str | None:
    """The id of the known deviation whose deviated oracle the candidate matches on this trajectory, if any."""
    # The weights are what a bug changes observably; a deviated oracle need not keep the same slots
    # (summing is averaging a scaled gradient, but the accumulator then holds scaled values).
    weights = [{q: v for q, v in s.items() if q.startswith("variables/")} for s in states]
    unbounded = None
    for deviation in DEVIATIONS:
        if deviation.deviate is None:
            continue
        try:
            deviated = deviation.deviate(spec)
            if deviated is None:
                continue
            deviated_spec, oracle = deviated
            expected = oracle_states(deviated_spec, oracle=oracle)
            if unbounded is None:
                unbounded = _unbounded(oracle_states(spec))
            if _unbounded(expected) > unbounded:
                continue  # a deviation that leaves weights unconstrained (t = 0, say) would match anything
            findings = compare(expected, weights)
        except (ValueError, ZeroDivisionError, ArithmeticError):
            continue
        if findings and max(f.ratio for f in findings) <= 1.0:
            return deviation.id
    return None


def _unbounded(states) -> int:
    return sum(int(np.sum(~np.isfinite(q.budget))) for state in states for name, q in state.items()
               if name.startswith("variables/"))
