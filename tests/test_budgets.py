"""The budgets are sound (an honest port passes) and sharp (every porting bug fails, and is small)."""

import numpy as np
import pytest
from optimizer_conformance.conformance.cases import inputs
from optimizer_conformance.reference import FLOAT32, run

from tests.numpy_port import BUGS, run_port

N = 64


def _data(seed, steps, spike=False):
    """Float32 parameters and gradients over 2**-10 to 2**1, from the harness's one input generator."""
    rng = inputs.generator(f"budgets/{seed}")
    theta = inputs.held(inputs.centered(rng, (N,), 1), "float32").astype(np.float32)
    grads = [[inputs.spread(rng, (N,), -10, 1)] for _ in range(steps)]
    if spike:
        grads = inputs.spiked(grads)
    return theta, [inputs.held(g, "float32").astype(np.float32) for (g,) in grads]


def _worst(algorithm, config, dtype, bug=None, steps=6, spike=False, seed=0):
    theta, grads = _data(seed, steps, spike)
    opt_states = []
    run(algorithm, config, {"w": theta}, [[g] for g in grads], dtype=dtype,
        callback=lambda k, opt: opt_states.append(opt.state()))
    port = run_port(algorithm, config, theta, grads, dtype, bug=bug)
    worst = 0.0
    for exact, candidate in zip(opt_states, port):
        for name, values in candidate.items():
            worst = max(worst, float(np.max(exact[name].ratios(values))))
    return worst


CASES = {
    "epsilon-inside-sqrt": ("adam", {"learning_rate": 0.1, "epsilon": 0.1}, {}),
    "step-count-plus-one": ("adam", {"learning_rate": 0.01}, {}),
    "amsgrad-ignored": ("adam", {"learning_rate": 0.01, "amsgrad": True}, {"spike": True}),
    "weight-decay-not-scaled-by-learning-rate": ("adamw", {"learning_rate": 0.01, "weight_decay": 0.1}, {}),
    "weight-decay-after-update": ("adamw", {"learning_rate": 0.1, "weight_decay": 0.5}, {}),
    "legacy-schedule-in-nadam": ("nadam", {"learning_rate": 0.01}, {}),
    "ema-momentum-on-first-step": ("adam", {"learning_rate": 0.01, "use_ema": True, "ema_momentum": 0.9}, {}),
    "accumulation-sums": ("adam", {"learning_rate": 0.01, "gradient_accumulation_steps": 2, "epsilon": 0.5}, {}),
    "velocity-weight-is-beta": ("adam", {"learning_rate": 0.01}, {}),
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_honest_port_is_inside_budget(case, dtype):
    algorithm, config, options = CASES[case]
    assert _worst(algorithm, config, dtype, **options) <= 1.0


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("bug", BUGS)
def test_every_porting_bug_exceeds_the_budget(bug, dtype):
    algorithm, config, options = CASES[bug]
    assert _worst(algorithm, config, dtype, bug=bug, **options) > 10.0


def test_float32_budgets_are_small_multiples_of_float32_rounding():
    theta, grads = _data(1, 1)
    s = run("adam", {"learning_rate": 2.0**-7}, {"w": theta}, [[grads[0]]]).state()
    u = FLOAT32.unit_roundoff
    for name, beta in (("momentum/w", 0.9), ("velocity/w", 0.999)):
        q = s[name]
        relative = q.budget / np.abs(q.as_float64())
        # What 1 − [β]_float32 may legitimately differ from 1 − β by (note A of the semantics:
        # 1.29e-5 relative for β₂ = 0.999), plus a handful of roundings.
        beta_gap = abs(float(np.float32(beta)) - beta) / (1 - beta)
        assert np.max(relative) < beta_gap + 10 * u, name
    q = s["variables/w"]
    step = np.abs(q.as_float64() - theta.astype(np.float64))
    # The step inherits the condition number κ = β₂/(1 − β₂) ≈ 10³ of 1 − β₂ᵗ at t = 1 (a one-ulp
    # pow error moves it by κ ulps); beyond that, a few roundings of θ itself.
    kappa = 0.999 / (1 - 0.999)
    assert np.all(q.budget < step * (2 * kappa + 200) * u + 4 * u * np.abs(theta))


def test_budget_grows_with_cancellation_not_with_step_count():
    theta, grads = _data(2, 1)
    states = []
    run("adam", {"learning_rate": 0.01}, {"w": theta}, [[grads[0]]] * 200,
        callback=lambda k, o: states.append(o.state()))
    m = [np.max(s["momentum/w"].budget / np.abs(s["momentum/w"].as_float64())) for s in states]
    # The moment updates contract their error (factor β per step): the relative budget settles.
    assert m[-1] < 2 * m[20]
