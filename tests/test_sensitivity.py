"""Precision that means what it says: the float64 column detects float32-level errors.

The float64 budgets model float64 rounding of each operation and nothing else (the README's arithmetic model):
Adam's ``pipeline/basic`` budget stays under 1e-12 relative, a port that computes in float32 while claiming
float64 fails every float64 pipeline check it is given, and a port that forms one quantity in float32 for
float64 variables fails the check that exercises it.
"""

import numpy as np
import pytest
from optimizer_conformance.conformance.cases.catalogue import pipeline_cases
from optimizer_conformance.conformance.checks.compare import oracle_states
from optimizer_conformance.conformance.model import PROFILES
from optimizer_conformance.fast_optimizers.conformance import NumpyAdapter

from tests.conftest import requires


def _relative_budget(algorithm: str, feature: str) -> float:
    case = next(c for c in pipeline_cases(algorithm, "float64", PROFILES["ci"]) if c.label == feature)
    worst = 0.0
    for state in oracle_states(case.spec):
        for name, q in state.items():
            if name.startswith("variables/"):
                exact = np.abs(q.as_float64().reshape(-1))
                budget = np.asarray(q.budget, dtype=float).reshape(-1)
                worst = max(worst, float(np.max(budget / np.maximum(exact, 1e-300))))
    return worst


@pytest.mark.parametrize("algorithm", ["adam", "adamw", "nadam", "adamax", "lamb", "schedule-free-adamw"])
def test_the_float64_budget_of_a_plain_trajectory_is_at_float64_level(algorithm):
    assert _relative_budget(algorithm, "basic") < 1e-12


class Float32ClaimingFloat64(NumpyAdapter):
    """The bundled implementation run in float32 while it reports float64 arrays."""

    algorithms = ("adam", "adamax")
    dtypes = ("float64",)

    def start(self, algorithm, config, variables, dtype, exclude):
        super().start(algorithm, config, variables, "float32", exclude)

    def state(self):
        return {q: np.asarray(v, dtype=np.float64) if q != "iterations" else v for q, v in super().state().items()}


@requires("numba")
def test_a_port_that_computes_in_float32_while_claiming_float64_fails_every_float64_pipeline_check():
    from optimizer_conformance.conformance.candidates.client import Candidate, Worker
    from optimizer_conformance.conformance.runner import Plan, run_plan

    with Worker(Candidate("tests.test_sensitivity:Float32ClaimingFloat64", "torch")) as worker:
        outcomes = run_plan(worker, Plan(["adam", "adamax"], ["float64"], PROFILES["quick"], ("pipeline",)))
    judged = [o for o in outcomes if o.not_applicable is None]
    assert len(judged) > 40
    passed = [f"{o.algorithm} {o.check}: {o.worst}" for o in judged if o.passed]
    assert not passed, "\n".join(passed)


def _precision_bugs():
    import importlib.util

    if importlib.util.find_spec("keras") is None or importlib.util.find_spec("jax") is None:
        return []
    import os

    os.environ.setdefault("KERAS_BACKEND", "jax")
    from tests.mutants.precision import PRECISION_BUGS

    return PRECISION_BUGS


@pytest.mark.keras
@requires("keras", "jax")
@pytest.mark.parametrize("bug", _precision_bugs(), ids=lambda c: c.__name__)
def test_one_quantity_formed_in_float32_fails_the_float64_check_that_exercises_it(bug):
    from optimizer_conformance.conformance.candidates.client import Candidate, Worker
    from optimizer_conformance.conformance.runner import Plan, find_item, run_item

    with Worker(Candidate(f"{bug.__module__}:{bug.__name__}", "jax")) as worker:
        (algorithm,) = worker.description["algorithms"]
        plan = Plan([algorithm], ["float64"], PROFILES["quick"], ("pipeline",), strict=True)
        (outcome,) = run_item(worker, plan, find_item(plan, algorithm, "float64", bug.expected_check))
    assert outcome.failed and outcome.worst is not None and outcome.worst.ratio > 1, (outcome.worst, outcome.error)


class ClaimsFloatxFloat64(NumpyAdapter):
    """The bundled implementation (which holds its learning rate in float32, as Keras under floatx float32 does)
    declaring floatx float64."""

    floatx = "float64"


@pytest.mark.keras
@requires("keras", "jax", "numba")
def test_floatx_is_a_parameter_keras_runs_under_it_and_a_port_is_held_to_what_it_declares():
    from optimizer_conformance.conformance.candidates.client import Candidate, Worker
    from optimizer_conformance.conformance.runner import Plan, find_item, run_item

    under_float64 = Plan(["adam"], ["float64"], PROFILES["quick"], ("pipeline",), floatx="float64")
    basic = find_item(under_float64, "adam", "float64", "pipeline/basic")
    with Worker(Candidate(None, "jax")) as worker:  # Keras under keras.config.set_floatx("float64")
        (keras_outcome,) = run_item(worker, under_float64, basic)
    assert keras_outcome.passed, (keras_outcome.worst, keras_outcome.error)
    with Worker(Candidate("optimizer_conformance.fast_optimizers.conformance:NumpyAdapter", "jax")) as worker:
        (declared_float32,) = run_item(worker, under_float64, basic)
    assert declared_float32.not_applicable and "declares floatx float32" in declared_float32.not_applicable
    with Worker(Candidate("tests.test_sensitivity:ClaimsFloatxFloat64", "jax")) as worker:
        (claimed,) = run_item(worker, under_float64, basic)
    assert claimed.failed and claimed.worst.ratio > 1, claimed.worst
