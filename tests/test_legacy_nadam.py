"""The legacy TF Nadam rule against real implementations of the same algorithm.

``torch.optim.NAdam(momentum_decay=0.004)`` is Dozat's Nadam with the legacy
schedule ``β₁(1 − ½·0.96^(0.004 t))``; it keeps its momentum product in
float32 and computes the scalar coefficients in float64, so it is compared
with the oracle's float32 budgets.
"""

import numpy as np
from optimizer_conformance.conformance.cases import inputs
from optimizer_conformance.reference import run

from tests.conftest import requires


@requires("torch")
def test_torch_nadam_with_the_legacy_schedule_is_inside_the_float32_budget():
    import torch

    rng = inputs.generator("legacy-nadam/torch")
    theta0 = inputs.held(inputs.centered(rng, (32,), 1), "float32").astype(np.float32)
    grads = [inputs.held(inputs.spread(rng, (32,), -10, 0), "float32").astype(np.float32) for _ in range(8)]
    lr, eps = 2.0**-6, 1e-7
    p = torch.nn.Parameter(torch.tensor(theta0))
    opt = torch.optim.NAdam([p], lr=lr, eps=eps, momentum_decay=0.004, foreach=False)
    states = []
    oracle = run("nadam-legacy", {"learning_rate": lr, "epsilon": eps}, {"w": theta0}, [[g] for g in grads],
                 callback=lambda k, o: states.append(o.state()))
    assert oracle.iterations == len(grads)
    for g, exact in zip(grads, states):
        p.grad = torch.tensor(g)
        opt.step()
        assert np.max(exact["variables/w"].ratios(p.detach().numpy())) <= 1.0
        m = opt.state[p]["exp_avg"].numpy()
        assert np.max(exact["momentum/w"].ratios(m)) <= 1.0


def test_legacy_and_keras3_nadam_differ_by_far_more_than_the_budget():
    rng = inputs.generator("legacy-nadam/keras3")
    theta0 = inputs.centered(rng, (16,), 1)
    grads = [[inputs.centered(rng, (16,), 1)] for _ in range(5)]
    legacy = run("nadam-legacy", {"learning_rate": 0.01}, {"w": theta0}, grads).state()["variables/w"]
    keras3 = run("nadam", {"learning_rate": 0.01}, {"w": theta0}, grads).state()["variables/w"]
    ratios = legacy.ratios(keras3.as_float64())
    assert np.min(ratios) > 10 and np.median(ratios) > 100
