"""The golden trajectories of Keras's own optimizer tests (keras/src/optimizers/*_test.py).

Keras checks them with rtol = atol = 5e-4 (the goldens have four decimals),
so the oracle is held to the same tolerance here.
"""

import numpy as np
import pytest
from optimizer_conformance.reference import ReferenceOptimizer

FIRST = [0.01] * 10
GRADS = [0.1 * (i + 1) for i in range(10)]

ADAM_AMSGRAD = np.tile([[0.999], [0.9982], [0.9974], [0.9965], [0.9955]], (1, 10))
ADAMW = [
    [0.4998] * 10,
    [0.2486, 0.2475, 0.2463, 0.2451, 0.244, 0.2428, 0.2417, 0.2405, 0.2394, 0.2382],
    [0.1223, 0.1198, 0.1174, 0.1149, 0.1124, 0.11, 0.1075, 0.1051, 0.1027, 0.1003],
    [0.0586, 0.0549, 0.0512, 0.0475, 0.0439, 0.0402, 0.0366, 0.033, 0.0294, 0.0258],
    [0.0263, 0.0215, 0.0167, 0.012, 0.0073, 0.0026, -0.0021, -0.0067, -0.0113, -0.0159],
]
NADAM = [
    [0.4281] * 10,
    [-0.1738, -0.1731, -0.1726, -0.1723, -0.1721, -0.172, -0.1719, -0.1718, -0.1718, -0.1717],
    [-0.7115, -0.7103, -0.7096, -0.7092, -0.709, -0.7088, -0.7086, -0.7085, -0.7085, -0.7084],
    [-1.2335, -1.2322, -1.2313, -1.2309, -1.2306, -1.2304, -1.2302, -1.2301, -1.23, -1.2299],
    [-1.7492, -1.7478, -1.7469, -1.7464, -1.7461, -1.7459, -1.7457, -1.7456, -1.7455, -1.7454],
]


@pytest.mark.parametrize(
    "algorithm, config, golden",
    [
        ("adam", {"amsgrad": True}, ADAM_AMSGRAD),
        ("adamw", {"learning_rate": 1.0, "weight_decay": 0.5, "epsilon": 2.0}, ADAMW),
        ("nadam", {"learning_rate": 0.5, "beta_1": 0.5, "beta_2": 0.67, "epsilon": 1e-5}, NADAM),
    ],
)
def test_correctness_with_golden(algorithm, config, golden):
    opt = ReferenceOptimizer(algorithm, config)
    opt.build({"x": np.ones(10)})
    opt.apply([FIRST])
    for row in golden:
        np.testing.assert_allclose(opt.state()["variables/x"].as_float64(), row, rtol=5e-4, atol=5e-4)
        opt.apply([GRADS])


@pytest.mark.parametrize(
    "algorithm, config, expected",
    [
        ("adam", {"learning_rate": 0.5}, [0.5, 1.5, 2.5, 3.5]),
        ("adamw", {"learning_rate": 0.5}, [0.4980, 1.4960, 2.494, 3.492]),
        ("nadam", {"learning_rate": 0.5}, [0.4686, 1.4686, 2.4686, 3.4686]),
    ],
)
def test_single_step(algorithm, config, expected):
    opt = ReferenceOptimizer(algorithm, config)
    opt.build({"vars": [1.0, 2.0, 3.0, 4.0]})
    opt.apply([[1.0, 6.0, 7.0, 2.0]])
    np.testing.assert_allclose(opt.state()["variables/vars"].as_float64(), expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("algorithm", ["adam", "adamw", "nadam"])
def test_weight_decay_and_exclusion(algorithm):
    def decayed(exclude=None):
        opt = ReferenceOptimizer(algorithm, {"learning_rate": 1.0, "weight_decay": 0.004})
        opt.build([("var1", [2.0]), ("exclude", [2.0])])
        if exclude:
            opt.exclude_from_weight_decay(**exclude)
        for _ in range(3):  # Keras's test passes var1 through three optimizers
            opt.apply([[0.0], [0.0]])
        s = opt.state()
        return float(s["variables/var1"].exact[0]), float(s["variables/exclude"].exact[0])

    assert decayed()[0] == pytest.approx(1.9760959, abs=1e-6)
    assert decayed({"var_names": ["exclude"]})[1] == 2.0
    assert decayed({"var_list": ["exclude"]})[1] == 2.0


def test_clipping_goldens():
    from optimizer_conformance.reference.clipping import clip_by_norm, clip_by_value
    from optimizer_conformance.reference.formats import FLOAT32
    from optimizer_conformance.reference.tracked import Tracked

    g = [Tracked.element(100.0, FLOAT32)] * 2
    assert [float(x) for x in clip_by_norm(g, 1)] == pytest.approx([2**0.5 / 2] * 2)
    assert [float(x) for x in clip_by_value(g, 1)] == [1.0, 1.0]
