"""The oracle's own arithmetic is far more precise than any format it budgets for."""

import numpy as np
from gmpy2 import mpfr
from optimizer_conformance.conformance.cases.catalogue import BY_NAME
from optimizer_conformance.conformance.checks.compare import oracle_states

from tests.test_keras_agreement import AGREEMENT


def test_two_working_precisions_agree_far_below_float64_resolution():
    for name in AGREEMENT:
        s = BY_NAME[name].spec("float64")
        low, high = oracle_states(s, precision=113)[-1], oracle_states(s, precision=240)[-1]
        for quantity, q in high.items():
            for a, b in zip(low[quantity].exact, q.exact):
                scale = max(abs(b), mpfr(2) ** -1000)
                assert abs(a - b) / scale < mpfr(2) ** -100, (name, quantity)


def test_budgets_do_not_depend_on_the_working_precision():
    s = BY_NAME["nadam-basic"].spec("float32")
    low, high = oracle_states(s, precision=113)[-1], oracle_states(s, precision=240)[-1]
    for quantity, q in high.items():
        np.testing.assert_allclose(low[quantity].budget, q.budget, rtol=1e-12)
