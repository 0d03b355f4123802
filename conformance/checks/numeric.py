"""The numeric judgements: a candidate's states against the oracle, within the budgets the oracle derives.

* **trajectory**: every quantity at every step against the oracle run from the initial inputs (or against
  a golden fixture's stored exact values and budgets);
* **one-step**: every step against the oracle restarted from the candidate's *own* previous state, so an
  error shows at the step that made it, with that step's budget alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from optimizer_conformance.conformance.checks.compare import (
    built_oracle,
    check_coverage,
    compare,
    iterations_finding,
    oracle_states,
    worst_finding,
)
from optimizer_conformance.conformance.golden.format import Fixture
from optimizer_conformance.conformance.model import Case, Finding, JudgeError, decode, number, spec_inputs
from optimizer_conformance.reference import ReferenceOptimizer
from optimizer_conformance.reference.loss_scale import all_finite

# Integer counters: exact or not (budget 0). A counter difference is listed beside the state's worst finding,
# never in its place: a step counter off by one says little until the weights and moments it moved are shown.
COUNTERS = ("iterations",)


@dataclass(frozen=True)
class Judgement:
    """The worst finding over the rule's state (weights, moments, averages, accumulators), and every step at
    which a counter differs."""

    worst: Finding
    counters: list[Finding]
    findings: tuple[Finding, ...] = ()  # every quantity at every step

    @property
    def passed(self) -> bool:
        return self.worst.ratio <= 1.0 and not self.counters

    @property
    def headline(self) -> Finding:
        """What a failure leads with: the state's worst finding, or the first counter when the state is right."""
        return self.worst if self.worst.ratio > 1.0 or not self.counters else self.counters[0]


# The features whose effect can stay invisible in the variables, and the quantity that shows each: a check that
# exercises one judges it only if the candidate reports that quantity (a port that ignores use_ema keeps its
# weights right until an overwrite).  A candidate that lacks a feature declares it (``conformance_lacks``) and
# gets not applicable.
DEFINING_QUANTITIES = (
    ("the EMA", lambda spec: spec["config"].get("use_ema"), "average/"),
    ("the dynamic loss scale", lambda spec: spec.get("loss_scale_optimizer"), "dynamic_scale"),
)


def unjudged_features(spec: dict, states: list[dict]) -> list[str]:
    """What the spec exercises and no reported quantity shows: ``"the EMA was not judged: no average/… reported"``."""
    reported = {q for state in states for q in state}
    return [f"{feature} was not judged: no {prefix}{'…' if prefix.endswith('/') else ''} reported (report it in "
            "state(), or declare the feature lacking: conformance_lacks)"
            for feature, uses, prefix in DEFINING_QUANTITIES
            if uses(spec) and not any(q.startswith(prefix) for q in reported)]


def judge_trajectory(case: Case, states: list[dict]) -> Judgement:
    """Every quantity at every step; :class:`JudgeError` when the states are unjudgeable, or leave a feature
    the trajectory exercises unjudged."""
    unjudged = unjudged_features(case.spec, states) if case.spec is not None else []
    if unjudged:
        raise JudgeError("; ".join(unjudged))
    if case.fixture is not None:
        findings = judge_fixture(case.fixture, case.dtype, states)
    else:
        exact = oracle_states(case.spec)
        findings = compare(exact, states) + _iterations(exact, states[: len(case.spec["gradients"])])
    state = [f for f in findings if f.quantity not in COUNTERS]
    counters = [f for f in findings if f.quantity in COUNTERS and f.ratio > 1.0]
    return Judgement(max(state or findings, key=lambda f: f.ratio), counters, tuple(findings))


def trace(case: Case, states: list[dict], judgement: Judgement) -> dict:
    """What a report draws of a judged case: each quantity's worst ratio at every step, and the worst element's
    candidate and exact values along the steps (the numbers as the JSON carries them)."""
    ratios: dict[str, list] = {}
    for f in judgement.findings:
        if f.quantity not in COUNTERS:
            ratios.setdefault(f.quantity, []).append((f.step, number(f.ratio)))
    worst = judgement.worst
    candidate, exact = [], []
    for k, state in enumerate(states):
        values = state.get(worst.quantity)
        if values is None or k >= len(states):
            continue
        try:
            candidate.append(number(float(decode(values, (-1,))[worst.element])))
            if case.fixture is not None:
                exact.append(number(float(case.fixture.exact(k, worst.quantity)[worst.element])))
            else:
                exact.append(number(float(oracle_states(case.spec)[k][worst.quantity].exact[worst.element])))
        except (IndexError, KeyError, ValueError, TypeError):
            break
    return {"case": case.label, "ratios": {q: [r for _, r in sorted(steps)] for q, steps in ratios.items()},
            "element": {"quantity": worst.quantity, "element": worst.element, "candidate": candidate,
                        "exact": exact}}


def counter_problem(case: str, finding: Finding) -> str:
    return (f"{case}: {finding.quantity} after step {finding.step} is {finding.candidate:g}, "
            f"expected {finding.exact:g}")


def _iterations(exact: list[dict], states: list[dict]) -> list[Finding]:
    """Keras's public ``iterations`` (real updates: not micro-steps, not steps a loss scale skipped) after each
    step, where the candidate reports it."""
    return [iterations_finding(k, state["iterations"], int(expected["iterations"].exact[0]))
            for k, (state, expected) in enumerate(zip(states, exact), start=1) if "iterations" in state]


def judge_fixture(fixture: Fixture, dtype: str, states: list[dict[str, list[str]]]) -> list[Finding]:
    """The worst ratio of every quantity the candidate reports, at every state of a fixture."""
    doc = fixture.document
    if len(states) != len(doc["states"]):
        raise JudgeError(f"{fixture.path}: candidate recorded {len(states)} states, the fixture {len(doc['states'])}")
    findings = []
    for k, (expected, got) in enumerate(zip(doc["states"], states)):
        check_coverage(got, [*expected["exact"], "iterations"], k + 1)
        for quantity, values in got.items():
            if quantity == "iterations":
                findings.append(iterations_finding(k + 1, values, expected["iterations"]))
            else:
                findings.append(worst_finding(quantity, k + 1, decode(values, (-1,)), fixture.exact(k, quantity),
                                              fixture.budget(k, quantity, dtype)))
    return findings


def judge_one_step(case: Case, states: list[dict],
                   oracle: Callable[..., ReferenceOptimizer] = ReferenceOptimizer) -> Finding | None:
    """Each step from the candidate's own previous state: the state must hold every slot the rule needs.

    Judging stops at a state holding non-finite values (the oracle cannot restart from it; the trajectory
    check judges them): ``None`` when that is the first state.
    """
    spec = case.spec
    variables, gradients = spec_inputs(spec)
    raw_counts = _raw_counts(spec, gradients)
    worst = None
    for k in range(1, len(gradients)):
        opt = built_oracle(spec, oracle=oracle)
        shapes = {q: v.shape for q, v in opt.state().items()}
        needed = sorted(set(shapes) - {"iterations"})
        missing = [q for q in needed if q not in states[k - 1]]
        if missing:
            raise JudgeError(f"one-step restarts the oracle from the candidate's own state after each step and needs "
                             f"{', '.join(needed)}; the candidate reported {_names(states[k - 1])} (missing "
                             f"{', '.join(missing)}). Report them, or leave one-step out (--checks)")
        previous = {}
        for q in needed:
            flat = decode(states[k - 1][q], (-1,))
            if flat.size != int(np.prod(shapes[q])):
                raise JudgeError(f"{q} after step {k}: the candidate reported {flat.size} elements, expected "
                                 f"{int(np.prod(shapes[q]))} (shape {tuple(shapes[q])})")
            previous[q] = flat.reshape(shapes[q])
        if not all(np.isfinite(v).all() for v in previous.values()):
            break
        opt.restore(previous, raw_counts[k - 1])
        opt.apply(gradients[k])
        exact = opt.state()
        for quantity, values in states[k].items():
            if quantity not in exact or quantity == "iterations":
                continue
            q = exact[quantity]
            finding = worst_finding(quantity, k + 1, decode(values, (-1,)), q.exact, q.budget)
            if worst is None or finding.ratio > worst.ratio:
                worst = finding
    if worst is None and len(gradients) < 2:
        raise JudgeError("one-step needs a trajectory of at least two steps")
    return worst


def _raw_counts(spec: dict, gradients: list[list]) -> list[int]:
    """Keras's raw counter after each step: every call counts, but one a LossScaleOptimizer skips."""
    counts, total = [], 0
    for step in gradients:
        total += 1 if not spec.get("loss_scale_optimizer") or all_finite(step) else 0
        counts.append(total)
    return counts


def _names(state: dict) -> str:
    return ", ".join(sorted(state)) or "nothing"
