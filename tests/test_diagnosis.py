"""Every deviation of the catalogue can be named: its own numbers, reported as a candidate would, get its id."""

import dataclasses

import pytest
from optimizer_conformance.conformance.cases.catalogue import pipeline_cases
from optimizer_conformance.conformance.checks.compare import compare, oracle_states
from optimizer_conformance.conformance.checks.deviations import DEVIATIONS
from optimizer_conformance.conformance.checks.diagnosis import diagnose
from optimizer_conformance.conformance.model import PROFILES, encode
from optimizer_conformance.reference.rules import ALGORITHMS, RULES, translation

CASES = [c for a in ALGORITHMS for c in pipeline_cases(a, "float64", PROFILES["quick"])]
# And each golden trajectory's arguments on its rule's basic and none-gradients cases (torch's NAdam with Keras 3's
# schedule: Keras's Nadam computes it, but for one step count).
CASES += [dataclasses.replace(c, spec={**c.spec, "config": {**c.spec["config"], **golden.config}},
                              label=f"{c.label}, {golden.name}")
          for c in CASES if c.label in ("basic", "none-gradients") for golden in RULES[c.algorithm].corpus]
# Deviations that round a quantity more coarsely (a float32 momentum product): the same exact values, wider budgets.
PRECISION_ONLY = {"momentum-product-in-float32", "adamax-sparse-max-by-increment"}


def _reported(deviation, spec):
    """The deviated oracle's states in float64, under the names the candidate of ``spec``'s rule reports."""
    deviated_spec, oracle = deviation.deviate(spec)
    own_name = {deviated: reported for reported, deviated in deviation.renames.items()}
    states = [{own_name.get(q, q): encode(v.as_float64()) for q, v in state.items()}
              for state in oracle_states(deviated_spec, oracle=oracle)]
    if deviation.restate is not None:  # Keras's rule in another library's dialect: its names
        states = [translation.from_keras(state, spec["algorithm"]) for state in states]
    return states


def _exercising(deviation):
    """The first catalogue case where the deviation changes what the specification computes."""
    for case in CASES:
        if deviation.deviate(case.spec) is None:
            continue
        states = _reported(deviation, case.spec)
        try:
            if max((f.ratio for f in compare(oracle_states(case.spec), states)), default=0) > 1:
                return case, states
        except ValueError:  # a quantity the specification does not have: changed, too
            return case, states
    return None, None


@pytest.mark.parametrize("deviation", [d for d in DEVIATIONS if d.deviate is not None], ids=lambda d: d.id)
def test_each_computable_deviation_is_named_from_its_own_numbers(deviation):
    case, states = _exercising(deviation)
    if case is None and deviation.id in PRECISION_ONLY:
        pytest.skip("its oracle computes the same exact values with wider budgets: named from the real library's "
                    "own numbers in test_real_libraries")
    assert case is not None, f"no pipeline case exercises {deviation.id}"
    assert diagnose(case.spec, states) == deviation.id, case.label
