"""Name the known deviation a failure matches, when one does, and only when it matches everything reported.

A failing trajectory is replayed through each computable deviation of the catalogues
(:mod:`conformance.checks.deviations`, :mod:`conformance.checks.upstream`); a deviation is named only when the
deviated oracle holds every quantity the candidate reports (weights, moments, averages, accumulators, the Nadam
product, the step counter) within its budget at every step: a deviation that explains the weights but not the
averages is not the deviation that happened.  A deviation whose outcome the oracle cannot compute (a step applied
with an Inf gradient leaves NaN weights) is named by its signature instead.
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
from optimizer_conformance.conformance.checks.compare import (
    LARGE_ELEMENTS,
    compare,
    elements_of,
    iterations_finding,
    oracle_states,
)
from optimizer_conformance.conformance.checks.deviations import Deviation, combined
from optimizer_conformance.conformance.checks.numeric import judge_one_step
from optimizer_conformance.conformance.checks.upstream import KNOWN
from optimizer_conformance.conformance.model import Case
from optimizer_conformance.reference.rules import translation


def diagnose(spec: dict, states: list[dict], first: tuple[Deviation, ...] = (), only_first: bool = False
             ) -> str | None:
    """The id of the known deviation (a porting bug or an upstream bug) whose deviated oracle matches every
    reported quantity, if any; those in ``first`` (the upstream bugs the candidate's library has) are tried
    first, and with ``only_first`` alone (is this failure one the library is known to have?).

    A large trajectory (the scale check's) is tried on ``first`` alone, each deviated oracle on whole arrays: a
    porting bug shows in the small trajectories of the other checks, where every deviation is tried."""
    large = elements_of(spec) >= LARGE_ELEMENTS
    only_first = only_first or large
    specified = oracle_states(spec)
    try:
        honest = max((f.ratio for f in compare(specified, states)), default=0.0) <= 1.0
    except (ValueError, ZeroDivisionError, ArithmeticError):
        honest = False
    if honest and _same_counters(specified, states):
        return None  # the specification holds it: no deviation to name (a deviated oracle may hold it too)
    unbounded = _unbounded(specified)
    tried_first = {d.id for d in first}
    rest = () if only_first else tuple(d for d in KNOWN if d.id not in tried_first)
    for deviation in first + composed(first) + rest:
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
            if deviation.upstream is None and _unbounded(expected) > unbounded \
                    and 2 * _unbounded(expected) > _elements(expected):
                # A porting deviation that leaves most weights unconstrained (t = 0, say) would match anything.  An
                # upstream bug may: Keras's bfloat16 Adam forms 1 − β₂ᵗ = 0 there, which no budget can bound.
                continue
            reported = [_as_deviation_names(state, deviation) if deviation.restate is None
                        else deviation.restate(spec, deviated_spec, state) for state in states]
            if any(state is None for state in reported):
                continue
            findings = compare(expected, reported)
        except (ValueError, ZeroDivisionError, ArithmeticError):
            continue  # includes a reported quantity the deviated oracle does not have: no match
        except (TypeError, AttributeError, NotImplementedError):
            if large:  # a deviated oracle written for MPFR numbers alone: it cannot say
                continue
            raise
        if findings and max(f.ratio for f in findings) <= 1.0 and _same_counters(expected, reported):
            return deviation.id
    return _through_keras(spec, states, first, only_first)


def _through_keras(spec: dict, states: list[dict], first: tuple[Deviation, ...], only_first: bool) -> str | None:
    """Another library's rule whose Keras equivalent, deviated, holds the states: the candidate computes Keras's rule
    with a deviation of it (optax's AMSGrad in torch's dialect: Keras's Adam with ε after the bias correction and
    the max over the corrected velocity), named ``as-keras-<rule> + <deviation>``."""
    translated = translation.keras_spec(spec) if translation.keras_rules(spec["algorithm"]) else None
    if not isinstance(translated, dict):
        return None
    reported = [translation.to_keras(state, spec["algorithm"], translated["algorithm"]) for state in states]
    if any(state is None for state in reported):
        return None
    found = diagnose(translated, reported, first, only_first)
    return None if found is None else f"as-keras-{translated['algorithm']} + {found}"


def composed(bugs: tuple[Deviation, ...]) -> tuple[Deviation, ...]:
    """Every combination of two or more of ``bugs`` at once, as one deviation ``"a + b"``: a library can have several
    bugs that meet in one trajectory (Keras 3.15 on torch: schedule-free AdamW's x from the new z, and float64
    clipping in float32)."""
    usable = [b for b in bugs if b.deviate is not None]
    return tuple(Deviation(" + ".join(b.id for b in group), "; and ".join(b.description for b in group),
                           _all_of(group), upstream=group[0].upstream)
                 for size in range(2, len(usable) + 1) for group in itertools.combinations(usable, size))


def _all_of(group: tuple[Deviation, ...]):
    def deviate(spec: dict):
        oracles = []
        for bug in group:
            deviated = bug.deviate(spec)
            if deviated is None:
                return None
            spec, oracle = deviated
            oracles.append(oracle)
        return spec, combined(oracles)
    return deviate


def diagnose_one_step(case: Case, states: list[dict], candidates: tuple[Deviation, ...]) -> str | None:
    """The id of the deviation among ``candidates`` whose deviated oracle, restarted from the candidate's own state
    at each step, holds every step within its budget (one-step's judgement, deviated)."""
    for deviation in candidates + composed(candidates):
        deviated = deviation.deviate(case.spec) if deviation.deviate is not None else None
        if deviated is None:
            continue
        deviated_spec, oracle = deviated
        try:
            finding = judge_one_step(dataclasses.replace(case, spec=deviated_spec), states, oracle)
        except (ValueError, ZeroDivisionError, ArithmeticError):
            continue
        if finding is None or finding.ratio <= 1.0:
            return deviation.id
    return None


def _as_deviation_names(state: dict, deviation: Deviation) -> dict:
    return {deviation.renames.get(q, q): v for q, v in state.items()
            if q.split("/", 1)[0] not in deviation.unmodelled}


def _same_counters(expected: list[dict], reported: list[dict]) -> bool:
    return all(iterations_finding(k, state["iterations"], int(exact["iterations"].exact[0])).ratio == 0
               for k, (exact, state) in enumerate(zip(expected, reported), start=1) if "iterations" in state)


def _elements(states) -> int:
    return sum(int(np.size(q.budget)) for state in states for name, q in state.items() if name.startswith("variables/"))


def _unbounded(states) -> int:
    return sum(int(np.sum(~np.isfinite(q.budget))) for state in states for name, q in state.items()
               if name.startswith("variables/"))
