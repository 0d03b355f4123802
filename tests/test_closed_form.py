"""Cases whose exact result is known in closed form."""

import gmpy2
import numpy as np
import pytest
from gmpy2 import mpfr
from optimizer_conformance.reference import run


@pytest.mark.parametrize("algorithm", ["adam", "adamw"])
@pytest.mark.parametrize("lr", [0.001, 0.5, 0.0625])
def test_adam_first_step_without_epsilon_moves_by_learning_rate_times_sign(algorithm, lr):
    grads = [0.5, -3.0, 1e-3, -2.5e-5]
    theta = [1.0, -2.0, 0.25, 4.0]
    config = {"learning_rate": lr, "epsilon": 0.0}
    if algorithm == "adamw":
        config["weight_decay"] = 0.0
    q = run(algorithm, config, {"w": theta}, [[grads]], dtype="float64").state()["variables/w"]
    eta = _held(lr)  # Keras holds a float learning rate in a float32 variable: η is that float32 number
    for x, t, g in zip(q.exact, theta, grads):
        # m₁ = (1−β₁)g, v₁ = (1−β₂)g², α₁ = η√(1−β₂)/(1−β₁): the step is exactly η·sign(g).
        assert abs(x - (mpfr(t) - eta * (1 if g > 0 else -1))) < mpfr(2) ** -100


def test_adamw_first_step_decays_then_steps():
    lr, wd = 0.1, 0.25
    q = run("adamw", {"learning_rate": lr, "weight_decay": wd, "epsilon": 0.0}, {"w": [2.0]}, [[[3.0]]],
            dtype="float64").state()["variables/w"]
    eta = _held(lr)
    expected = mpfr(2.0) * (1 - mpfr(wd) * eta) - eta
    assert abs(q.exact[0] - expected) < mpfr(2) ** -100


def test_nadam_momentum_product_is_the_running_product_of_the_schedule():
    steps = 7
    opt = run("nadam", {}, {"w": [1.0]}, [[[0.1]]] * steps)
    expected = mpfr(1)
    for t in range(1, steps + 1):
        expected *= mpfr(0.9) * (1 - mpfr(0.5) * mpfr(0.96) ** t)
    assert abs(opt.state()["u_product"].exact[0] - expected) < mpfr(2) ** -100


def test_legacy_nadam_uses_the_slow_schedule():
    opt = run("nadam-legacy", {}, {"w": [1.0]}, [[[0.1]]])
    mu_1 = mpfr(0.9) * (1 - mpfr(0.5) * gmpy2.exp(mpfr(0.004) * gmpy2.log(mpfr(0.96))))
    assert abs(opt.state()["momentum_cache"].exact[0] - mu_1) < mpfr(2) ** -100
    assert abs(float(mu_1) - 0.450073) < 1e-6


def test_zero_gradient_leaves_adam_where_it_is():
    q = run("adam", {}, {"w": [1.5, -2.0]}, [[[0.0, 0.0]]] * 3).state()["variables/w"]
    assert [float(x) for x in q.exact] == [1.5, -2.0]


def test_empty_gradient_list_is_a_no_op_that_does_not_count():
    from optimizer_conformance.reference import ReferenceOptimizer

    opt = ReferenceOptimizer("adam")
    opt.build({"w": [1.0]})
    opt.apply([])
    assert opt.iterations == 0


def test_accumulation_uses_the_mean_and_counts_real_updates():
    from optimizer_conformance.reference import ReferenceOptimizer

    opt = ReferenceOptimizer("adam", {"gradient_accumulation_steps": 2, "epsilon": 0.0, "learning_rate": 0.5})
    opt.build({"w": [0.0]})
    opt.apply([[1.0]])
    assert opt.iterations == 0 and opt.raw_iterations == 1
    assert float(opt.state()["variables/w"].exact[0]) == 0.0
    opt.apply([[3.0]])
    assert opt.iterations == 1
    # mean gradient 2.0 > 0: the first Adam step (epsilon 0) moves by exactly -lr.
    assert float(opt.state()["variables/w"].exact[0]) == -0.5
    assert float(opt.state()["gradient_accumulator/w"].exact[0]) == 0.0


def test_ema_first_step_copies_the_updated_weights():
    opt = run("adam", {"use_ema": True, "ema_momentum": 0.5, "epsilon": 0.0, "learning_rate": 0.25},
              {"w": [1.0]}, [[[1.0]], [[1.0]]])
    s = opt.state()
    # step 1: θ₁ = 0.75, avg₁ = θ₁; step 2: θ₂ = 0.5, avg₂ = ½·0.75 + ½·0.5
    assert float(s["variables/w"].exact[0]) == 0.5
    assert float(s["average/w"].exact[0]) == 0.625


def test_none_gradient_skips_the_variable_but_not_the_counter():
    opt = run("adam", {"learning_rate": 0.1, "epsilon": 0.0}, [("a", [1.0]), ("b", [2.0])], [[[1.0], None]])
    s = opt.state()
    assert float(s["variables/b"].exact[0]) == 2.0
    assert s["variables/a"].exact[0] == 1 - _held(0.1)
    assert opt.iterations == 1


def test_callable_learning_rate_is_called_at_every_step():
    calls = []

    def lr():
        calls.append(1)
        return 0.25

    q = run("adam", {"learning_rate": lr, "epsilon": 0.0}, {"w": [1.0]}, [[[2.0]]] * 2,
            dtype="float64").state()["variables/w"]
    assert len(calls) == 2
    # The first step moves by exactly lr·sign(g); the second by lr·√(1−β₂²)/(1−β₁²)·m/√v = lr as well (g constant).
    assert float(q.exact[0]) == 0.5


def test_schedule_is_fed_the_raw_counter_not_real_updates():
    from optimizer_conformance.reference import ReferenceOptimizer

    lr = {"class_name": "PiecewiseConstantDecay", "config": {"boundaries": [0], "values": [0.5, 0.25]}}
    opt = ReferenceOptimizer("adam", {"learning_rate": lr, "epsilon": 0.0, "gradient_accumulation_steps": 2})
    opt.build({"w": [0.0]})
    opt.apply([[1.0]])
    opt.apply([[1.0]])
    # Raw counter k = 1 > 0 at the first real update: 0.25.  Fed ⌊k/S⌋ = 0 it would be 0.5.
    assert float(opt.state()["variables/w"].exact[0]) == -0.25


def _held(lr: float) -> mpfr:
    """A float learning rate as Keras holds it: the float32 number in its floatx variable, exactly."""
    return mpfr(float(np.float32(lr)))
