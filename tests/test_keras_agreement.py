"""The oracle agrees with real Keras 3 on all three backends, eager and compiled, float32 and float64.

Each backend runs in its own subprocess (Keras chooses its backend once per
process).  Every quantity Keras exposes (variables, momentums, velocities,
velocity_hat, the Nadam momentum product, EMA averages, accumulators) is
compared at every step with the oracle computed from the same inputs: every
difference must lie inside its budget.
"""

import pytest

from conformance.scenarios import SCENARIOS, spec
from conformance.trajectory import compare, oracle_states, run_keras
from tests.conftest import requires

RUNS = [
    ("tensorflow", "eager", ("keras", "tensorflow")),
    ("tensorflow", "function", ("keras", "tensorflow")),
    ("tensorflow", "jit", ("keras", "tensorflow")),
    ("jax", "eager", ("keras", "jax")),
    ("jax", "jit", ("keras", "jax")),
    ("torch", "eager", ("keras", "torch")),
]


@pytest.mark.keras
@pytest.mark.parametrize(
    "backend, mode",
    [pytest.param(b, m, marks=requires(*mods), id=f"{b}-{m}") for b, m, mods in RUNS],
)
def test_every_keras_difference_is_inside_its_budget(backend, mode):
    specs = [(name, dtype, spec(name, dtype, compile=mode)) for name in SCENARIOS for dtype in ("float32", "float64")]
    results = run_keras([s for *_, s in specs], backend)
    failures, compared = [], 0
    for (name, dtype, s), result in zip(specs, results):
        findings = compare(oracle_states(s), result["states"])
        compared += len(findings)
        failures += [f"{name} [{dtype}]: {f}" for f in findings if not f.ratio <= 1.0]
    assert compared > 0
    assert not failures, "\n".join(failures)
