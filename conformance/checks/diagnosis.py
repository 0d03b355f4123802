"""Name the known deviation a failure matches, when one does, and only when it matches everything reported.

A failing trajectory is replayed through each computable deviation of the catalogue
(:mod:`conformance.checks.deviations`); a deviation is named only when the deviated oracle holds every
quantity the candidate reports (weights, moments, averages, accumulators, the Nadam product, the step
counter) within its budget at every step: a deviation that explains the weights but not the averages is
not the deviation that happened.  A deviation whose outcome the oracle cannot compute (a step applied with an
Inf gradient leaves NaN weights) is named by its signature instead.
"""

from __future__ import annotations

import numpy as np
from optimizer_conformance.conformance.checks.compare import compare, iterations_finding, oracle_states
from optimizer_conformance.conformance.checks.deviations import DEVIATIONS, Deviation


def diagnose(spec: dict, states: list[dict]) -> str | None:
    """The id of the known deviation whose deviated oracle matches every reported quantity, if any."""
    unbounded = None
    for deviation in DEVIATIONS:
        if deviation.recognise is not None and deviation.recognise(spec, states):
            return deviation.id
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
            reported = [_as_deviation_names(state, deviation) for state in states]
            findings = compare(expected, reported)
        except (ValueError, ZeroDivisionError, ArithmeticError):
            continue  # includes a reported quantity the deviated oracle does not have: no match
        if findings and max(f.ratio for f in findings) <= 1.0 and _same_counters(expected, reported):
            return deviation.id
    return None


def _as_deviation_names(state: dict, deviation: Deviation) -> dict:
    return {deviation.renames.get(q, q): v for q, v in state.items()
            if q.split("/", 1)[0] not in deviation.unmodelled}


def _same_counters(expected: list[dict], reported: list[dict]) -> bool:
    return all(iterations_finding(k, state["iterations"], int(exact["iterations"].exact[0])).ratio == 0
               for k, (exact, state) in enumerate(zip(expected, reported), start=1) if "iterations" in state)


def _unbounded(states) -> int:
    return sum(int(np.sum(~np.isfinite(q.budget))) for state in states for name, q in state.items()
               if name.startswith("variables/"))
